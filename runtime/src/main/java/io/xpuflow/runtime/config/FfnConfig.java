package io.xpuflow.runtime.config;

/** The feed-forward block of a layer: a dense SwiGLU or a mixture of SwiGLU experts. */
public sealed interface FfnConfig permits FfnConfig.Dense, FfnConfig.Moe {

    /** {@code down(silu(gate x) * up x)} with {@code intermediateSize} units. */
    record Dense(int intermediateSize) implements FfnConfig {}

    /**
     * Routed experts.
     *
     * @param scoring softmax (Mixtral, Qwen) or sigmoid (DeepSeek-V3, MiMo) router scores
     * @param numGroups group-limited routing: experts form numGroups groups ...
     * @param topkGroups ... of which the best topkGroups stay eligible (1 group: plain top-k)
     * @param normTopkProb renormalise the selected weights to sum to 1
     * @param correctionBias a per-expert bias added to the scores for selection only
     * @param routedScaling multiplies the weighted expert sum
     * @param sharedIntermediateSize units of an always-on shared expert; 0 for none
     * @param sharedExpertGate the shared expert's output is gated by sigmoid(w·x) (Qwen2-MoE)
     */
    record Moe(
            int numExperts,
            int topK,
            int intermediateSize,
            Scoring scoring,
            int numGroups,
            int topkGroups,
            boolean normTopkProb,
            boolean correctionBias,
            double routedScaling,
            int sharedIntermediateSize,
            boolean sharedExpertGate) implements FfnConfig {}

    enum Scoring { SOFTMAX, SIGMOID }
}
