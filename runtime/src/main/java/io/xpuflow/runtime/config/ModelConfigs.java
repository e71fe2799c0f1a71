package io.xpuflow.runtime.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;

/** Finds the adapter for a checkpoint's architecture and reads its {@code config.json}. */
public final class ModelConfigs {
    private static final List<ArchitectureAdapter> ADAPTERS = List.of(new MiMoV2Adapter(), new LlamaFamilyAdapter());
    private static final Map<String, ArchitectureAdapter> BY_NAME = ADAPTERS.stream()
            .flatMap(a -> a.architectures().stream().map(n -> Map.entry(n, a)))
            .collect(Collectors.toUnmodifiableMap(Map.Entry::getKey, Map.Entry::getValue));

    private ModelConfigs() {}

    /** A parsed configuration with the adapter that read it. */
    public record Parsed(ModelConfig config, ArchitectureAdapter adapter, ConfigReader reader) {}

    /** Every architecture name an adapter exists for. */
    public static TreeSet<String> supportedArchitectures() {
        return new TreeSet<>(BY_NAME.keySet());
    }

    /** Reads {@code dir/config.json}, picks the adapter by {@code architectures[0]} and checks the result. */
    public static Parsed read(Path dir) {
        ConfigReader reader = ConfigReader.read(dir.resolve("config.json"));
        String arch = reader.architecture();
        if (arch == null) {
            throw reader.error("architectures", "is missing; supported: " + supportedArchitectures());
        }
        ArchitectureAdapter adapter = BY_NAME.get(arch);
        if (adapter == null) {
            throw reader.error("architectures", "names unknown architecture " + ConfigReader.quote(arch) + "; supported: " + supportedArchitectures());
        }
        checkActivation(reader);
        ModelConfig config = adapter.parse(reader);
        check(reader, config);
        return new Parsed(config, adapter, reader);
    }

    /** Adds the MTP layers the checkpoint holds ({@code hasTensor}) to a parsed configuration. */
    public static Parsed withMtp(Parsed parsed, java.util.function.Predicate<String> hasTensor) {
        int n = parsed.adapter().countMtpLayers(parsed.reader(), hasTensor);
        if (n == 0) {
            return parsed;
        }
        List<ModelConfig.LayerConfig> mtp = java.util.stream.IntStream.range(0, n)
                .mapToObj(i -> parsed.adapter().mtpLayer(parsed.reader(), parsed.config(), i))
                .collect(Collectors.toList());
        ModelConfig config = parsed.config().withMtpLayers(mtp);
        check(parsed.reader(), config);
        return new Parsed(config, parsed.adapter(), parsed.reader());
    }

    /**
     * The FFN activation names ({@code transformers}' ACT2FN keys) the engine implements: every supported
     * architecture has a SwiGLU feed-forward, {@code down(silu(gate x) * up x)}, and {@code swish} is SiLU too.
     */
    static final Set<String> ACTIVATIONS = Set.of("silu", "swish");

    /**
     * {@code hidden_act}: absent means SiLU (the default of every supported family's HF config class); any other
     * activation is refused rather than run as SiLU, which would give wrong logits without any error.
     */
    static void checkActivation(ConfigReader r) {
        String act = r.string("hidden_act", "silu");
        if (!ACTIVATIONS.contains(act)) {
            throw r.error("hidden_act", "is " + ConfigReader.quote(act) + ", which the engine does not implement "
                    + "(supported: " + new TreeSet<>(ACTIVATIONS) + ", the SwiGLU feed-forward's SiLU)");
        }
    }

    /** Cross-field rules every adapter's output must satisfy. */
    static void check(ConfigReader r, ModelConfig c) {
        Function<Integer, String> where = l -> l < c.numLayers() ? "layer " + l : "MTP layer " + (l - c.numLayers());
        List<ModelConfig.LayerConfig> all = new java.util.ArrayList<>(c.layers());
        all.addAll(c.mtpLayers());
        for (int l = 0; l < all.size(); l++) {
            AttentionConfig a = all.get(l).attention();
            if (a.numHeads() <= 0 || a.numKvHeads() <= 0 || a.headDimQk() <= 0 || a.headDimV() <= 0) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": head counts and sizes must be positive: " + a);
            }
            if (a.numHeads() > ModelConfig.MAX_HEADS || a.numKvHeads() > ModelConfig.MAX_HEADS
                    || a.headDimQk() > ModelConfig.MAX_HEAD_DIM || a.headDimV() > ModelConfig.MAX_HEAD_DIM) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": head counts and sizes beyond the supported "
                        + "maximum of " + ModelConfig.MAX_HEADS + " heads of " + ModelConfig.MAX_HEAD_DIM + ": " + a);
            }
            if (a.numHeads() % a.numKvHeads() != 0) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": " + a.numHeads()
                        + " attention heads are not a multiple of " + a.numKvHeads() + " KV heads");
            }
            if (a.sliding() && a.window() <= 0) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": sliding window must be positive, was " + a.window());
            }
            if (!(a.rope().theta() > 0) || Double.isInfinite(a.rope().theta())) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": rope theta must be positive, was " + a.rope().theta());
            }
            if (all.get(l).ffn() instanceof FfnConfig.Moe m && (m.topK() > m.numExperts() || m.topK() <= 0)) {
                throw new ModelConfigException(r.file(), where.apply(l) + ": top-" + m.topK() + " of " + m.numExperts() + " experts");
            }
        }
        if (c.hiddenSize() > ModelConfig.MAX_HIDDEN_SIZE) {
            throw r.error("hidden_size", c.hiddenSize() + " is beyond the supported maximum of " + ModelConfig.MAX_HIDDEN_SIZE);
        }
        if (!(c.normEps() > 0) || Double.isInfinite(c.normEps())) {
            throw new ModelConfigException(r.file(), "normalisation epsilon must be positive and finite, was " + c.normEps());
        }
        for (int id : c.eosTokenIds()) {
            if (id < 0 || id >= c.vocabSize()) {
                throw new ModelConfigException(r.file(), "'eos_token_id' " + id + " is outside the vocabulary of " + c.vocabSize());
            }
        }
    }
}
