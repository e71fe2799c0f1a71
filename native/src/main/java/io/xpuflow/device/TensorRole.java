package io.xpuflow.device;

/** Roles of weight tensors ({@code xpu_tensor_role}); the ordinal is the native code. */
public enum TensorRole {
    EMBED,
    FINAL_NORM,
    LM_HEAD,
    ATTN_NORM,
    Q,
    K,
    V,
    O,
    Q_BIAS,
    K_BIAS,
    V_BIAS,
    Q_NORM,
    K_NORM,
    SINK,
    FFN_NORM,
    GATE,
    UP,
    DOWN,
    ROUTER,
    ROUTER_BIAS,
    EXPERT_GATE,
    EXPERT_UP,
    EXPERT_DOWN,
    SHARED_GATE,
    SHARED_UP,
    SHARED_DOWN,
    SHARED_EXPERT_GATE,
    MTP_ENORM,
    MTP_HNORM,
    MTP_EH_PROJ,
    MTP_FINAL_NORM;

    /** True for roles that belong to the whole model rather than to one layer. */
    public boolean isModelWide() {
        return this == EMBED || this == FINAL_NORM || this == LM_HEAD;
    }

    public boolean isPerExpert() {
        return this == EXPERT_GATE || this == EXPERT_UP || this == EXPERT_DOWN;
    }
}
