package io.xpuflow.runtime.config;

import io.xpuflow.device.TensorRole;
import io.xpuflow.runtime.config.AttentionConfig.AttentionKind;
import io.xpuflow.runtime.config.ModelConfig.LayerConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Llama, Mistral, Mixtral, Qwen2, Qwen2-MoE, Qwen3 and Qwen3-MoE: one attention type per model (full, or
 * Mistral-style sliding window for every layer), RoPE on the whole head, optional q/k/v biases
 * (Qwen2) or q/k norms (Qwen3), dense SwiGLU or softmax-routed experts.
 */
public final class LlamaFamilyAdapter implements ArchitectureAdapter {

    private enum Family { LLAMA, MISTRAL, MIXTRAL, QWEN2, QWEN2_MOE, QWEN3, QWEN3_MOE }

    @Override
    public Set<String> architectures() {
        return Set.of("LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Qwen2ForCausalLM",
                "Qwen2MoeForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM");
    }

    private static Family family(String architecture) {
        return switch (architecture) {
            case "MistralForCausalLM" -> Family.MISTRAL;
            case "MixtralForCausalLM" -> Family.MIXTRAL;
            case "Qwen2ForCausalLM" -> Family.QWEN2;
            case "Qwen2MoeForCausalLM" -> Family.QWEN2_MOE;
            case "Qwen3ForCausalLM" -> Family.QWEN3;
            case "Qwen3MoeForCausalLM" -> Family.QWEN3_MOE;
            default -> Family.LLAMA;
        };
    }

    @Override
    public ModelConfig parse(ConfigReader c) {
        String arch = c.architecture();
        Family family = family(arch);
        int hidden = c.requirePositive("hidden_size");
        int vocab = c.requirePositive("vocab_size");
        int numLayers = c.requireCount("num_hidden_layers", ModelConfig.MAX_LAYERS);
        int heads = c.requirePositive("num_attention_heads");
        int kvHeads = c.positive("num_key_value_heads", heads);
        if (heads % kvHeads != 0) {
            throw c.error("num_attention_heads", heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        if (hidden % heads != 0 && !c.has("head_dim")) {
            throw c.error("hidden_size", hidden + " is not divisible by num_attention_heads " + heads + " and no head_dim is given");
        }
        int headDim = c.positive("head_dim", hidden / heads);
        double eps = c.positiveNumber("rms_norm_eps", 1e-6);
        double partial = c.positiveNumber("partial_rotary_factor", 1.0);
        int rotaryDim = Rotary.dim(c, headDim, partial);
        RopeConfig rope = new RopeConfig(c.positiveNumber("rope_theta", 10000.0), Rotary.scaling(c));
        if (c.bool("mlp_bias", false)) {
            throw c.error("mlp_bias", "true is not supported (no MLP biases in the engine)");
        }
        boolean qkvBias = family == Family.QWEN2 || family == Family.QWEN2_MOE;
        if (c.bool("attention_bias", false)) {
            if (family == Family.LLAMA || family == Family.MISTRAL || family == Family.MIXTRAL) {
                throw c.error("attention_bias", "true is not supported for " + arch + " (it also biases o_proj)");
            }
            qkvBias = true;
        }
        boolean qkNorm = family == Family.QWEN3 || family == Family.QWEN3_MOE;

        List<LayerConfig> layers = new ArrayList<>(numLayers);
        for (int l = 0; l < numLayers; l++) {
            int window = slidingWindow(c, family, l);
            AttentionConfig attn = new AttentionConfig(window > 0 ? AttentionKind.SLIDING : AttentionKind.FULL, window,
                    heads, kvHeads, headDim, headDim, rotaryDim, rope, false, qkvBias, qkNorm,
                    1.0 / Math.sqrt(headDim), 1.0);
            layers.add(new LayerConfig(attn, ffn(c, family, l)));
        }
        List<Integer> eos = c.idList("eos_token_id");
        Integer bos = c.has("bos_token_id") ? c.requireInt("bos_token_id") : null;
        return new ModelConfig(arch, vocab, hidden, eps, layers, List.of(),
                c.bool("tie_word_embeddings", false), c.integer("max_position_embeddings", 4096), bos, eos, null);
    }

    private static int slidingWindow(ConfigReader c, Family family, int layer) {
        if (!c.has("sliding_window")) {
            return 0;
        }
        int window = c.requireInt("sliding_window");
        if (window <= 0) {
            throw c.error("sliding_window", "must be positive or null, was " + window);
        }
        return switch (family) {
            case MISTRAL, MIXTRAL -> window;
            // Qwen applies it only when use_sliding_window is set, and only from max_window_layers on
            case QWEN2, QWEN2_MOE, QWEN3, QWEN3_MOE ->
                    c.bool("use_sliding_window", false) && layer >= c.integer("max_window_layers", 0) ? window : 0;
            case LLAMA -> 0;
        };
    }

    private static FfnConfig ffn(ConfigReader c, Family family, int layer) {
        switch (family) {
            case MIXTRAL -> {
                int experts = c.requirePositive("num_local_experts");
                int topK = c.requirePositive("num_experts_per_tok");
                checkTopK(c, topK, experts);
                return new FfnConfig.Moe(experts, topK, c.requirePositive("intermediate_size"), FfnConfig.Scoring.SOFTMAX,
                        1, 1, true, false, 1.0, 0, false);
            }
            case QWEN2_MOE, QWEN3_MOE -> {
                List<Integer> mlpOnly = c.intList("mlp_only_layers");
                int step = c.positive("decoder_sparse_step", 1);
                int experts = c.requirePositive("num_experts");
                boolean sparse = (mlpOnly == null || !mlpOnly.contains(layer)) && experts > 0 && (layer + 1) % step == 0;
                if (!sparse) {
                    return new FfnConfig.Dense(c.requirePositive("intermediate_size"));
                }
                int topK = c.requirePositive("num_experts_per_tok");
                checkTopK(c, topK, experts);
                int shared = family == Family.QWEN2_MOE ? c.integer("shared_expert_intermediate_size", 0) : 0;
                if (shared < 0) {
                    throw c.error("shared_expert_intermediate_size", "must not be negative, was " + shared);
                }
                // Qwen2MoeConfig and Qwen3MoeConfig both default norm_topk_prob to false (released
                // Qwen3-MoE configs set it to true explicitly)
                return new FfnConfig.Moe(experts, topK, c.requirePositive("moe_intermediate_size"),
                        FfnConfig.Scoring.SOFTMAX, 1, 1, c.bool("norm_topk_prob", false), false, 1.0,
                        shared, shared > 0);
            }
            default -> {
                return new FfnConfig.Dense(c.requirePositive("intermediate_size"));
            }
        }
    }

    private static void checkTopK(ConfigReader c, int topK, int experts) {
        if (topK > experts) {
            throw c.error("num_experts_per_tok", topK + " exceeds the " + experts + " experts");
        }
    }

    @Override
    public String tensorName(ModelConfig config, TensorRole role, int layer, int expert) {
        if (role.isModelWide()) {
            return HfNames.modelWide(config, role);
        }
        String prefix = "model.layers." + layer + ".";
        if (config.architecture().equals("MixtralForCausalLM")) {
            String moe = prefix + "block_sparse_moe.";
            switch (role) {
                case ROUTER: return moe + "gate.weight";
                case EXPERT_GATE: return moe + "experts." + expert + ".w1.weight";
                case EXPERT_UP: return moe + "experts." + expert + ".w3.weight";
                case EXPERT_DOWN: return moe + "experts." + expert + ".w2.weight";
                default: break;
            }
        }
        return switch (role) {
            case SHARED_GATE -> prefix + "mlp.shared_expert.gate_proj.weight";
            case SHARED_UP -> prefix + "mlp.shared_expert.up_proj.weight";
            case SHARED_DOWN -> prefix + "mlp.shared_expert.down_proj.weight";
            case SHARED_EXPERT_GATE -> prefix + "mlp.shared_expert_gate.weight";
            default -> HfNames.layer(prefix, role, expert);
        };
    }
}
