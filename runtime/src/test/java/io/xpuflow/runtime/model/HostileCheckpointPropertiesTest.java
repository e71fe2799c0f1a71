package io.xpuflow.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.checkpoint.CheckpointException;
import io.xpuflow.runtime.config.ModelConfigException;
import io.xpuflow.runtime.config.ModelConfigs;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile checkpoints, generated: random byte flips in safetensors headers and random substitutions of header
 * values (dtype, shape, offsets) and {@code config.json} numbers (expert counts and groups, head sizes, layer
 * patterns; zero, negative, huge, fractional, wrong types) always end in a {@link CheckpointException} or
 * {@link ModelConfigException} naming a file of the model, or in a model that loads and runs a forward step —
 * never in another exception, and never in a crash of the JVM (the native device trusts what the loader
 * checked). Run under {@code -Pasan}, an out-of-bounds access in the native code is a test failure too.
 *
 * <p>Each property runs a fixed number of tries per seed; every try draws its case from its own seeded
 * generator, and a failure names the seed, the try and the case seed that reproduce it.
 */
class HostileCheckpointPropertiesTest {
    private static final JsonMapper JSON = new JsonMapper();
    private static final LoadOptions OPTIONS = new LoadOptions(1, 8, 1);
    private static final List<String> FIXTURES = List.of("tiny-mimo-v2", "tiny-mimo-v2-fp8", "stories260k",
            "mixtral-stories260k");

    private static Path root;

    @BeforeAll
    static void createRoot() throws IOException {
        Path target = Path.of("target");
        Files.createDirectories(target);
        root = Files.createTempDirectory(target.toAbsolutePath(), "hostile-checkpoints");
    }

    @AfterAll
    static void deleteRoot() throws IOException {
        deleteTree(root);
    }

    // ---------------------------------------------------------------- properties

    static LongStream seeds() {
        return LongStream.of(0x5eed1L, 0x5eed2L, 0x5eed3L, 0x5eed4L);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void headerByteFlips(long seed) {
        forEachCase(seed, 50, r -> headerByteFlips(fixture(r), flips(r)));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void headerValueSubstitutions(long seed) {
        forEachCase(seed, 50, r -> headerValueSubstitutions(fixture(r), edits(r, 5)));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void configValueSubstitutions(long seed) {
        forEachCase(seed, 100, r -> configValueSubstitutions(fixture(r), edits(r, 3)));
    }

    /** The config reader alone, many more times: no native code, so cheap. */
    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void configReaderAlone(long seed) {
        forEachCase(seed, 250, r -> configReaderAlone(fixture(r), edits(r, 3)));
    }

    /** One try of a property, on the case its generator draws. */
    interface Case {
        void run(SplittableRandom random) throws IOException;
    }

    /** Runs {@code tries} cases drawn from {@code seed}; a failure names what reproduces it. */
    private static void forEachCase(long seed, int tries, Case body) {
        SplittableRandom seeds = new SplittableRandom(seed);
        for (int i = 0; i < tries; i++) {
            long caseSeed = seeds.nextLong();
            try {
                body.run(new SplittableRandom(caseSeed));
            } catch (IOException | RuntimeException | AssertionError e) {
                throw new AssertionError("seed " + seed + ", try " + (i + 1) + " of " + tries + ", case seed " + caseSeed
                        + "L: " + e, e);
            }
        }
    }

    private static void headerByteFlips(String fixture, List<long[]> flips) throws IOException {
        byte[] file = weights(fixture);
        long headerEnd = 8 + ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        for (long[] flip : flips) {
            // position as a fraction of the header (length field included), then xor with a non-zero byte
            int at = (int) (flip[0] % headerEnd);
            file[at] ^= (byte) flip[1];
        }
        loadsOrFailsCleanly(copyWith(fixture, file, null));
    }

    private static void headerValueSubstitutions(String fixture, List<Edit> edits) throws IOException {
        byte[] file = weights(fixture);
        int headerLength = (int) ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        ObjectNode header = (ObjectNode) JSON.readTree(Arrays.copyOfRange(file, 8, 8 + headerLength));
        List<String> names = new ArrayList<>();
        header.fieldNames().forEachRemaining(n -> {
            if (!n.equals("__metadata__")) {
                names.add(n);
            }
        });
        for (Edit e : edits) {
            ObjectNode entry = (ObjectNode) header.get(names.get(e.target() % names.size()));
            apply(entry, e);
        }
        byte[] newHeader = JSON.writeValueAsBytes(header);
        ByteBuffer out = ByteBuffer.allocate(8 + newHeader.length + file.length - 8 - headerLength)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(newHeader.length).put(newHeader).put(file, 8 + headerLength, file.length - 8 - headerLength);
        loadsOrFailsCleanly(copyWith(fixture, out.array(), null));
    }

    private static void configValueSubstitutions(String fixture, List<Edit> edits) throws IOException {
        ObjectNode config = (ObjectNode) JSON.readTree(Fixtures.model(fixture).resolve("config.json").toFile());
        for (Edit e : edits) {
            String key = CONFIG_KEYS.get(e.target() % CONFIG_KEYS.size());
            ObjectNode owner = config;
            if (key.startsWith("quantization_config.")) {
                if (!(config.get("quantization_config") instanceof ObjectNode q)) {
                    continue;
                }
                owner = q;
                key = key.substring("quantization_config.".length());
            }
            owner.set(key, substitute(owner.get(key), e));
        }
        loadsOrFailsCleanly(copyWith(fixture, null, JSON.writeValueAsBytes(config)));
    }

    private static void configReaderAlone(String fixture, List<Edit> edits) throws IOException {
        ObjectNode config = (ObjectNode) JSON.readTree(Fixtures.model(fixture).resolve("config.json").toFile());
        for (Edit e : edits) {
            String key = CONFIG_KEYS.get(e.target() % CONFIG_KEYS.size());
            if (!key.contains(".")) {
                config.set(key, substitute(config.get(key), e));
            }
        }
        Path dir = Files.createTempDirectory(root, fixture);
        try {
            Files.write(dir.resolve("config.json"), JSON.writeValueAsBytes(config));
            try {
                ModelConfigs.read(dir);
            } catch (ModelConfigException expected) {
                assertThat(expected.getMessage()).startsWith(dir.resolve("config.json").toString());
            }
        } finally {
            deleteTree(dir);
        }
    }

    // ---------------------------------------------------------------- the check

    /** Loads the directory: a model that loads must also run a step; a refusal must be ours and name the model. */
    private static void loadsOrFailsCleanly(Path dir) throws IOException {
        try {
            try (LoadedModel model = LoadedModel.load(dir, OPTIONS); ModelRunner runner = new ModelRunner(model, 8, 1)) {
                int vocab = model.config().vocabSize();
                ModelRunner.Scores s = runner.score(new int[] {0, vocab / 2, vocab - 1}, false, false);
                assertThat(s.logits()).hasNumberOfRows(3);
            } catch (CheckpointException | ModelConfigException expected) {
                assertThat(expected.getMessage()).as("the message names the model's file").contains(dir.toString());
            }
        } finally {
            deleteTree(dir);
        }
    }

    // ---------------------------------------------------------------- generators

    /** One substitution: which entry or key ({@code target}), which part of it ({@code part}), which value. */
    record Edit(int target, int part, int value, long scale) {}

    /** Config fields the loader and the kernels size things by. */
    private static final List<String> CONFIG_KEYS = List.of("vocab_size", "hidden_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "v_head_dim", "swa_num_attention_heads",
            "swa_num_key_value_heads", "swa_head_dim", "swa_v_head_dim", "intermediate_size", "moe_intermediate_size",
            "n_routed_experts", "num_local_experts", "num_experts", "num_experts_per_tok", "n_group", "topk_group",
            "n_shared_experts", "routed_scaling_factor", "sliding_window", "sliding_window_size",
            "max_position_embeddings", "partial_rotary_factor", "rope_theta", "swa_rope_theta", "layernorm_epsilon",
            "rms_norm_eps", "attention_value_scale", "hybrid_layer_pattern", "moe_layer_freq", "first_k_dense_replace",
            "eos_token_id", "bos_token_id", "tie_word_embeddings", "scoring_func", "topk_method", "hidden_act",
            "rope_scaling", "norm_topk_prob", "add_swa_attention_sink_bias", "add_full_attention_sink_bias",
            "quantization_config.weight_block_size", "quantization_config.fmt", "architectures");

    private static final List<Object> NUMBERS = List.of(0L, 1L, 2L, 3L, 7L, 8L, 16L, 64L, 65536L, -1L, -8L,
            (long) Integer.MAX_VALUE, (long) Integer.MIN_VALUE, 1L << 31, 1L << 32, 1L << 40, Long.MAX_VALUE,
            Long.MIN_VALUE, 1.5, -0.5, 1e-300, 1e300, 0.0);

    private static final List<String> STRINGS = List.of("", "x", "BF16", "F8_E4M3", "F32", "F16", "I64", "U8",
            "F64", "BOOL", "silu", "gelu", "sigmoid", "softmax", "noaux_tc", "e4m3", "LlamaForCausalLM",
            "MiMoV2FlashForCausalLM", "MixtralForCausalLM");

    private static final long[] SCALES = {-1L, 0L, 2L, 3L, 1000L};

    private static String fixture(SplittableRandom r) {
        return FIXTURES.get(r.nextInt(FIXTURES.size()));
    }

    /** One to four (position, xor mask) pairs; the position is taken modulo the header's length. */
    private static List<long[]> flips(SplittableRandom r) {
        List<long[]> flips = new ArrayList<>();
        for (int n = 1 + r.nextInt(4); n > 0; n--) {
            flips.add(new long[] {r.nextLong(0, Long.MAX_VALUE / 2), r.nextLong(1, 256)});
        }
        return flips;
    }

    private static List<Edit> edits(SplittableRandom r, int max) {
        List<Edit> edits = new ArrayList<>();
        for (int n = 1 + r.nextInt(max); n > 0; n--) {
            edits.add(new Edit(r.nextInt(10_001), r.nextInt(10), r.nextInt(10_001), SCALES[r.nextInt(SCALES.length)]));
        }
        return edits;
    }

    /** A replacement for a header entry's dtype, shape or offsets. */
    private static void apply(ObjectNode entry, Edit e) {
        JsonNodeFactory f = JSON.getNodeFactory();
        switch (e.part() % 6) {
            case 0 -> entry.set("dtype", e.value() % 4 == 0 ? number(e) : f.textNode(STRINGS.get(e.value() % STRINGS.size())));
            case 1, 2 -> {
                // one dimension of the shape, scaled or replaced
                if (entry.get("shape") instanceof ArrayNode shape && !shape.isEmpty()) {
                    int i = e.value() % shape.size();
                    shape.set(i, substitute(shape.get(i), e));
                } else {
                    entry.set("shape", number(e));
                }
            }
            case 3 -> {
                // a dimension added or removed
                if (entry.get("shape") instanceof ArrayNode shape) {
                    if (e.value() % 2 == 0 && !shape.isEmpty()) {
                        shape.remove(shape.size() - 1);
                    } else {
                        shape.add(e.value() % 2 == 0 ? 1 : e.scale());
                    }
                }
            }
            case 4 -> {
                if (entry.get("data_offsets") instanceof ArrayNode offsets && offsets.size() == 2) {
                    int i = e.value() % 2;
                    offsets.set(i, substitute(offsets.get(i), e));
                }
            }
            default -> entry.set(e.value() % 2 == 0 ? "data_offsets" : "shape", e.value() % 3 == 0
                    ? f.arrayNode() : e.value() % 3 == 1 ? f.nullNode() : f.textNode("x"));
        }
    }

    /** A value in place of {@code old}: scaled or shifted, or one of the pools of numbers and strings. */
    private static JsonNode substitute(JsonNode old, Edit e) {
        JsonNodeFactory f = JSON.getNodeFactory();
        switch (e.part() % 8) {
            case 0, 1 -> {
                if (old != null && old.isIntegralNumber()) {
                    long v = old.asLong();
                    return f.numberNode(switch (e.value() % 4) {
                        case 0 -> v * e.scale();
                        case 1 -> v + e.scale();
                        case 2 -> v - 1;
                        default -> e.scale() == 0 ? v : v / e.scale();
                    });
                }
                return number(e);
            }
            case 2, 3, 4 -> {
                return number(e);
            }
            case 5 -> {
                return f.textNode(STRINGS.get(e.value() % STRINGS.size()));
            }
            case 6 -> {
                // lists: of numbers (layer patterns, block sizes, eos ids), empty, nested
                ArrayNode a = f.arrayNode();
                int n = e.value() % 9;
                for (int i = 0; i < n; i++) {
                    a.add(i % 3 == 2 ? e.scale() : i % 2);
                }
                return a;
            }
            default -> {
                return switch (e.value() % 4) {
                    case 0 -> f.nullNode();
                    case 1 -> f.booleanNode(true);
                    case 2 -> f.objectNode().put("type", "linear").put("factor", e.scale());
                    default -> f.booleanNode(false);
                };
            }
        }
    }

    private static JsonNode number(Edit e) {
        Object v = NUMBERS.get(e.value() % NUMBERS.size());
        return v instanceof Long l ? JSON.getNodeFactory().numberNode(l) : JSON.getNodeFactory().numberNode((Double) v);
    }

    // ---------------------------------------------------------------- files

    private static final Map<String, byte[]> WEIGHTS = new ConcurrentHashMap<>();

    /** A fresh copy of the fixture's model.safetensors (read once per fixture). */
    private static byte[] weights(String fixture) {
        return WEIGHTS.computeIfAbsent(fixture, f -> {
            try {
                return Files.readAllBytes(Fixtures.model(f).resolve("model.safetensors"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).clone();
    }

    /** A fresh directory with the fixture's files, model.safetensors and config.json replaced where given. */
    private static Path copyWith(String fixture, byte[] safetensors, byte[] config) throws IOException {
        Path dir = Files.createTempDirectory(root, fixture);
        Path from = Fixtures.model(fixture);
        for (String name : List.of("config.json", "model.safetensors")) {
            Files.copy(from.resolve(name), dir.resolve(name));
        }
        if (safetensors != null) {
            Files.write(dir.resolve("model.safetensors"), safetensors);
        }
        if (config != null) {
            Files.write(dir.resolve("config.json"), config);
        }
        return dir;
    }

    private static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
