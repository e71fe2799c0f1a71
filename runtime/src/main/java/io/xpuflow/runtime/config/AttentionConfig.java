package io.xpuflow.runtime.config;

/**
 * Self-attention of one layer.
 *
 * @param window sliding layers: a query at position p sees keys p-window+1 .. p; 0 for full layers
 * @param headDimQk query/key head size (may differ from the value head size, as in MiMo: 192 / 128)
 * @param rotaryDim NeoX rotate-half RoPE on the first rotaryDim dims of every q and k head
 * @param rope rotary frequencies (theta and scaling)
 * @param sink a learned per-head logit added to the softmax that carries no value (MiMo SWA)
 * @param qkvBias q/k/v projections have biases (Qwen2)
 * @param qkNorm per-head RMSNorm of q and k before RoPE (Qwen3)
 * @param scale multiplies q·k (usually headDimQk^-0.5)
 * @param valueScale multiplies v before it is cached (MiMo: 0.707)
 */
public record AttentionConfig(
        AttentionKind kind,
        int window,
        int numHeads,
        int numKvHeads,
        int headDimQk,
        int headDimV,
        int rotaryDim,
        RopeConfig rope,
        boolean sink,
        boolean qkvBias,
        boolean qkNorm,
        double scale,
        double valueScale) {

    public enum AttentionKind { FULL, SLIDING }

    public boolean sliding() {
        return kind == AttentionKind.SLIDING;
    }

    /** Layers with equal keys can share one KV block table. */
    public String kvGroupKey() {
        return sliding() ? "sliding-" + window : "full";
    }
}
