package io.xpuflow.device;

/**
 * One layer of a device model ({@code xpu_layer_params}); see {@code xpuflow.h} for every field.
 *
 * @param sliding sliding-window attention: a query at position p sees keys p-window+1 .. p
 * @param rotaryDim NeoX rotate-half on the first rotaryDim dims of every q and k head
 * @param kvGroup the block table this layer reads
 * @param moe a mixture-of-experts FFN (else dense SwiGLU of intermediateSize)
 * @param sigmoidScoring router scores by sigmoid (else softmax)
 * @param numExpertGroups group-limited routing: experts form this many groups, of which the best
 *     {@code topkGroups} stay eligible (1: plain top-k)
 * @param sharedIntermediateSize 0: no shared expert
 */
public record LayerParams(
        boolean sliding,
        long window,
        long numHeads,
        long numKvHeads,
        long headDimQk,
        long headDimV,
        long rotaryDim,
        boolean hasSink,
        boolean hasQkvBias,
        boolean hasQkNorm,
        long kvGroup,
        boolean moe,
        long intermediateSize,
        long numExperts,
        long topK,
        long moeIntermediateSize,
        boolean sigmoidScoring,
        long numExpertGroups,
        long topkGroups,
        boolean normTopkProb,
        boolean hasCorrectionBias,
        long sharedIntermediateSize,
        boolean hasSharedExpertGate,
        double attnScale,
        double valueScale,
        double routedScaling) {}
