package io.xpuflow.runtime.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.xpuflow.device.TensorRole;
import io.xpuflow.runtime.config.AttentionConfig.AttentionKind;
import io.xpuflow.runtime.config.ModelConfig.LayerConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Xiaomi MiMo-V2 ({@code MiMoV2FlashForCausalLM}, and {@code MiMoV2ForCausalLM} with split q/k/v):
 * hybrid layers from {@code hybrid_layer_pattern} (1 = sliding window with a per-head sink logit,
 * 0 = full attention), separate head counts, q/k and v head sizes and RoPE thetas per layer type,
 * partial rotary dims, V scaled by {@code attention_value_scale}, sigmoid-routed experts with a
 * correction bias, and MTP layers ({@code model.mtp.layers.N}) that use the sliding-window type.
 * See shared/notes/mimo-v2-architecture.md for the math and its sources.
 */
public final class MiMoV2Adapter implements ArchitectureAdapter {

    @Override
    public Set<String> architectures() {
        return Set.of("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM");
    }

    @Override
    public ModelConfig parse(ConfigReader c) {
        if ("fused_qkv".equals(c.string("attention_projection_layout", "split"))) {
            throw c.error("attention_projection_layout", "'fused_qkv' is not supported yet; only split q/k/v projections");
        }
        int hidden = c.requirePositive("hidden_size");
        int vocab = c.requirePositive("vocab_size");
        int numLayers = c.requireCount("num_hidden_layers", ModelConfig.MAX_LAYERS);
        double eps = c.has("layernorm_epsilon") ? c.positiveNumber("layernorm_epsilon", 1e-5) : c.positiveNumber("rms_norm_eps", 1e-5);

        List<Integer> pattern = c.intList("hybrid_layer_pattern");
        if (pattern == null) {
            pattern = new ArrayList<>();
            for (int l = 0; l < numLayers; l++) {
                pattern.add(0);
            }
        }
        if (pattern.size() != numLayers) {
            throw c.error("hybrid_layer_pattern", "has " + pattern.size() + " entries for " + numLayers + " layers");
        }
        List<Integer> moeFreq = moeLayers(c, numLayers);

        AttentionConfig full = attention(c, AttentionKind.FULL);
        AttentionConfig swa = pattern.contains(1) ? attention(c, AttentionKind.SLIDING) : null;
        List<LayerConfig> layers = new ArrayList<>(numLayers);
        for (int l = 0; l < numLayers; l++) {
            int kind = pattern.get(l);
            if (kind != 0 && kind != 1) {
                throw c.error("hybrid_layer_pattern", "entry " + l + " is " + kind + ", expected 0 (full) or 1 (sliding window)");
            }
            FfnConfig ffn = moeFreq.get(l) != 0 ? moe(c) : new FfnConfig.Dense(c.requirePositive("intermediate_size"));
            layers.add(new LayerConfig(kind == 1 ? swa : full, ffn));
        }

        ModelConfig.Fp8Quantization quant = quantization(c);
        Integer bos = c.has("bos_token_id") ? c.requireInt("bos_token_id") : null;
        return new ModelConfig(c.architecture(), vocab, hidden, eps, layers, List.of(),
                c.bool("tie_word_embeddings", false), c.integer("max_position_embeddings", 262144), bos,
                c.idList("eos_token_id"), quant);
    }

    private static List<Integer> moeLayers(ConfigReader c, int numLayers) {
        JsonNode node = c.node("moe_layer_freq");
        List<Integer> out = new ArrayList<>(numLayers);
        if (node == null || node.isInt()) {
            // DeepSeek style: every freq-th layer after the first first_k_dense_replace layers is MoE
            int freq = node == null ? (c.has("n_routed_experts") ? 1 : 0) : node.asInt();
            int firstDense = c.integer("first_k_dense_replace", 0);
            for (int l = 0; l < numLayers; l++) {
                out.add(freq > 0 && l >= firstDense && (l - firstDense) % freq == 0 ? 1 : 0);
            }
            return out;
        }
        List<Integer> list = c.intList("moe_layer_freq");
        if (list.size() != numLayers) {
            throw c.error("moe_layer_freq", "has " + list.size() + " entries for " + numLayers + " layers");
        }
        return list;
    }

    /** Attention of one layer type: full-layer fields, or their {@code swa_} counterparts. */
    private static AttentionConfig attention(ConfigReader c, AttentionKind kind) {
        boolean sliding = kind == AttentionKind.SLIDING;
        String p = sliding ? "swa_" : "";
        int heads = sliding ? c.positive("swa_num_attention_heads", c.requirePositive("num_attention_heads"))
                : c.requirePositive("num_attention_heads");
        int kvHeads = sliding ? c.positive("swa_num_key_value_heads", c.requirePositive("num_key_value_heads"))
                : c.requirePositive("num_key_value_heads");
        int headDim = sliding ? c.positive("swa_head_dim", c.requirePositive("head_dim")) : c.requirePositive("head_dim");
        int vHeadDim = sliding ? c.positive("swa_v_head_dim", c.positive("v_head_dim", headDim)) : c.positive("v_head_dim", headDim);
        if (heads % kvHeads != 0) {
            throw c.error(p + "num_attention_heads", heads + " is not a multiple of " + p + "num_key_value_heads " + kvHeads);
        }
        double theta = sliding ? c.positiveNumber("swa_rope_theta", c.positiveNumber("rope_theta", 10000.0))
                : c.positiveNumber("rope_theta", 10000.0);
        int rotaryDim = Rotary.dim(c, headDim, c.positiveNumber("partial_rotary_factor", 1.0));
        int window = 0;
        if (sliding) {
            // HF remote code reads sliding_window, vLLM/SGLang sliding_window_size; they agree in every release
            String field = c.has("sliding_window") ? "sliding_window" : "sliding_window_size";
            window = c.requireInt(field);
            if (window <= 0) {
                throw c.error(field, "must be positive for sliding-window layers, was " + window);
            }
        }
        boolean sink = c.bool(sliding ? "add_swa_attention_sink_bias" : "add_full_attention_sink_bias", false);
        double valueScale = c.positiveNumber("attention_value_scale", 1.0);
        return new AttentionConfig(kind, window, heads, kvHeads, headDim, vHeadDim, rotaryDim,
                new RopeConfig(theta, Rotary.scaling(c)), sink, c.bool("attention_bias", false), false,
                1.0 / Math.sqrt(headDim), valueScale);
    }

    private static FfnConfig.Moe moe(ConfigReader c) {
        int experts = c.requirePositive("n_routed_experts");
        int topK = c.requirePositive("num_experts_per_tok");
        if (topK > experts) {
            throw c.error("num_experts_per_tok", topK + " exceeds n_routed_experts " + experts);
        }
        String scoring = c.string("scoring_func", "softmax");
        FfnConfig.Scoring s = switch (scoring) {
            case "sigmoid" -> FfnConfig.Scoring.SIGMOID;
            case "softmax" -> FfnConfig.Scoring.SOFTMAX;
            default -> throw c.error("scoring_func", ConfigReader.quote(scoring) + " is not supported (sigmoid or softmax)");
        };
        int groups = c.positive("n_group", 1);
        int topkGroups = c.positive("topk_group", groups);
        if (experts % groups != 0) {
            throw c.error("n_group", groups + " does not divide n_routed_experts " + experts);
        }
        if (topkGroups > groups || topkGroups * (experts / groups) < topK) {
            throw c.error("topk_group", topkGroups + " of " + groups + " groups cannot hold top-" + topK + " experts");
        }
        String method = c.string("topk_method", "greedy");
        boolean bias = "noaux_tc".equals(method);
        int moeInter = c.requirePositive("moe_intermediate_size");
        int shared = c.integer("n_shared_experts", 0);
        if (shared < 0) {
            throw c.error("n_shared_experts", "must not be negative, was " + shared);
        }
        double scaling = c.positiveNumber("routed_scaling_factor", 1.0);
        return new FfnConfig.Moe(experts, topK, moeInter, s, groups, topkGroups, c.bool("norm_topk_prob", true), bias,
                scaling, shared * moeInter, false);
    }

    private static ModelConfig.Fp8Quantization quantization(ConfigReader c) {
        JsonNode q = c.node("quantization_config");
        if (q == null) {
            return null;
        }
        if (!q.isObject()) {
            throw c.error("quantization_config", "must be an object, was " + ConfigReader.brief(q));
        }
        String method = q.path("quant_method").asText("");
        if (!method.equals("fp8")) {
            throw c.error("quantization_config.quant_method", ConfigReader.quote(method) + " is not supported (fp8)");
        }
        String fmt = q.path("fmt").asText("e4m3");
        if (!fmt.equals("e4m3")) {
            throw c.error("quantization_config.fmt", ConfigReader.quote(fmt) + " is not supported (e4m3)");
        }
        int br = 128;
        int bc = 128;
        JsonNode block = q.get("weight_block_size");
        if (block != null && !block.isNull()) {
            if (!block.isArray() || block.size() != 2 || !block.get(0).isIntegralNumber() || !block.get(1).isIntegralNumber()
                    || !block.get(0).canConvertToInt() || !block.get(1).canConvertToInt()
                    || block.get(0).asInt() <= 0 || block.get(1).asInt() <= 0) {
                throw c.error("quantization_config.weight_block_size", "must be two positive integers, was " + ConfigReader.brief(block));
            }
            br = block.get(0).asInt();
            bc = block.get(1).asInt();
        }
        List<String> ignored = new ArrayList<>();
        JsonNode ig = q.get("ignored_layers");
        if (ig != null && ig.isArray()) {
            ig.forEach(n -> ignored.add(n.asText()));
        }
        return new ModelConfig.Fp8Quantization(br, bc, ignored);
    }

    @Override
    public int countMtpLayers(ConfigReader c, Predicate<String> hasTensor) {
        int n = 0;
        while (hasTensor.test(mtpPrefix(n) + "eh_proj.weight")) {
            n++;
        }
        return n;
    }

    @Override
    public LayerConfig mtpLayer(ConfigReader c, ModelConfig model, int index) {
        // MTP blocks use the sliding-window attention type and a dense FFN of intermediate_size
        return new LayerConfig(attention(c, AttentionKind.SLIDING), new FfnConfig.Dense(c.requirePositive("intermediate_size")));
    }

    private static String mtpPrefix(int i) {
        return "model.mtp.layers." + i + ".";
    }

    @Override
    public String tensorName(ModelConfig config, TensorRole role, int layer, int expert) {
        if (role.isModelWide()) {
            return HfNames.modelWide(config, role);
        }
        if (layer < config.numLayers()) {
            return HfNames.layer("model.layers." + layer + ".", role, expert);
        }
        String p = mtpPrefix(layer - config.numLayers());
        return switch (role) {
            case FFN_NORM -> p + "pre_mlp_layernorm.weight";
            case MTP_ENORM -> p + "enorm.weight";
            case MTP_HNORM -> p + "hnorm.weight";
            case MTP_EH_PROJ -> p + "eh_proj.weight";
            case MTP_FINAL_NORM -> p + "final_layernorm.weight";
            default -> HfNames.layer(p, role, expert);
        };
    }
}
