package io.xpuflow.runtime.config;

import io.xpuflow.device.TensorRole;

/**
 * Tensor names shared by the Llama-style Hugging Face layouts (Llama, Qwen, MiMo, DeepSeek):
 * {@code model.layers.N.self_attn.q_proj.weight} and friends.
 */
final class HfNames {
    private HfNames() {}

    static String modelWide(ModelConfig config, TensorRole role) {
        return switch (role) {
            case EMBED -> "model.embed_tokens.weight";
            case FINAL_NORM -> "model.norm.weight";
            case LM_HEAD -> config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
            default -> throw new IllegalArgumentException(role + " is not model-wide");
        };
    }

    /** Name of a per-layer tensor under {@code prefix} (e.g. "model.layers.3."). */
    static String layer(String prefix, TensorRole role, int expert) {
        return switch (role) {
            case ATTN_NORM -> prefix + "input_layernorm.weight";
            case Q -> prefix + "self_attn.q_proj.weight";
            case K -> prefix + "self_attn.k_proj.weight";
            case V -> prefix + "self_attn.v_proj.weight";
            case O -> prefix + "self_attn.o_proj.weight";
            case Q_BIAS -> prefix + "self_attn.q_proj.bias";
            case K_BIAS -> prefix + "self_attn.k_proj.bias";
            case V_BIAS -> prefix + "self_attn.v_proj.bias";
            case Q_NORM -> prefix + "self_attn.q_norm.weight";
            case K_NORM -> prefix + "self_attn.k_norm.weight";
            case SINK -> prefix + "self_attn.attention_sink_bias";
            case FFN_NORM -> prefix + "post_attention_layernorm.weight";
            case GATE -> prefix + "mlp.gate_proj.weight";
            case UP -> prefix + "mlp.up_proj.weight";
            case DOWN -> prefix + "mlp.down_proj.weight";
            case ROUTER -> prefix + "mlp.gate.weight";
            case ROUTER_BIAS -> prefix + "mlp.gate.e_score_correction_bias";
            case EXPERT_GATE -> prefix + "mlp.experts." + expert + ".gate_proj.weight";
            case EXPERT_UP -> prefix + "mlp.experts." + expert + ".up_proj.weight";
            case EXPERT_DOWN -> prefix + "mlp.experts." + expert + ".down_proj.weight";
            case SHARED_GATE -> prefix + "mlp.shared_experts.gate_proj.weight";
            case SHARED_UP -> prefix + "mlp.shared_experts.up_proj.weight";
            case SHARED_DOWN -> prefix + "mlp.shared_experts.down_proj.weight";
            default -> null;
        };
    }
}
