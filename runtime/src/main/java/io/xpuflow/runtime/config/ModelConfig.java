package io.xpuflow.runtime.config;

import java.util.List;
import java.util.Objects;

/**
 * The one normalised description of a causal language model that every architecture adapter
 * produces from its {@code config.json}: what the engine needs to know, in the engine's terms.
 *
 * @param architecture the Hugging Face architecture name it was read from
 * @param layers decoder layers, in order
 * @param mtpLayers multi-token-prediction layers (MiMo); empty if the model has none
 * @param tieWordEmbeddings the LM head reuses the embedding matrix
 * @param eosTokenIds token ids that end a generation (may be empty)
 * @param quantization FP8 block quantisation of the weights, or null
 */
public record ModelConfig(
        String architecture,
        int vocabSize,
        int hiddenSize,
        double normEps,
        List<LayerConfig> layers,
        List<LayerConfig> mtpLayers,
        boolean tieWordEmbeddings,
        int maxPositionEmbeddings,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        Fp8Quantization quantization) {

    /** Far above any released model (MiMo-V2.5-Pro has 70 layers); rejects absurd configs before allocating. */
    public static final int MAX_LAYERS = 4096;

    /**
     * The largest hidden size the device accepts ({@code xpu_model_create}); checked with the config so that a
     * config.json asking for more is a {@link ModelConfigException} naming the field, not a device error.
     */
    public static final int MAX_HIDDEN_SIZE = 1 << 24;

    /**
     * Far above any released model (128 heads of 256 at most): bounds what is allocated per layer from the config
     * alone (RoPE tables of head size / 2 floats) before the weights are checked against it.
     */
    public static final int MAX_HEADS = 1 << 16;
    public static final int MAX_HEAD_DIM = 1 << 16;

    public ModelConfig {
        Objects.requireNonNull(architecture, "architecture");
        layers = List.copyOf(layers);
        mtpLayers = List.copyOf(mtpLayers);
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    public int numLayers() {
        return layers.size();
    }

    /** The same model with these MTP layers (their count is often known only from the checkpoint). */
    public ModelConfig withMtpLayers(List<LayerConfig> mtp) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, normEps, layers, mtp, tieWordEmbeddings,
                maxPositionEmbeddings, bosTokenId, eosTokenIds, quantization);
    }

    /** Number of layers with a mixture-of-experts FFN. */
    public int numMoeLayers() {
        return (int) layers.stream().filter(l -> l.ffn() instanceof FfnConfig.Moe).count();
    }

    /** One decoder (or MTP) layer: attention then FFN, both pre-norm with residuals. */
    public record LayerConfig(AttentionConfig attention, FfnConfig ffn) {
        public LayerConfig {
            Objects.requireNonNull(attention, "attention");
            Objects.requireNonNull(ffn, "ffn");
        }
    }

    /**
     * FP8 E4M3 block quantisation: weight {@code [r, c]} = code × {@code weight_scale_inv[r / blockRows, c / blockCols]}.
     *
     * @param ignoredLayers module names left unquantised (their weights keep a plain dtype)
     */
    public record Fp8Quantization(int blockRows, int blockCols, List<String> ignoredLayers) {
        public Fp8Quantization {
            ignoredLayers = List.copyOf(ignoredLayers);
        }
    }
}
