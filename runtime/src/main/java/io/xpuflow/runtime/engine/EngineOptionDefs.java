package io.xpuflow.runtime.engine;

import static io.xpuflow.runtime.options.Surface.CLI;
import static io.xpuflow.runtime.options.Surface.JOB_FLAG;
import static io.xpuflow.runtime.options.Surface.SQL;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * The one definition of every engine option (names as vLLM's engine arguments): the SQL model options, the
 * Kafka job's flags and the CLI's engine flags are generated from {@link #ALL}, and {@link EngineOptions}
 * takes its defaults and ranges from here. The model path is not among them: each surface has its own
 * required argument for it.
 *
 * <p><b>Adding an option</b> is one {@link #define} statement below (name, type, default, rule, description,
 * the surfaces that take it, a valid and an invalid example, and how it sets an {@link EngineOptions.Builder}),
 * plus its field in {@link EngineOptions}. The CLI then has the flag; for the SQL options and the Kafka job's
 * flags (which ship an {@code io.xpuflow.operators.EngineSpec} to the TaskManagers) the spec must carry the
 * field too ({@code EngineSpec.of(modelPath, EngineOptions)} copies it), which is why {@code block_size} and
 * {@code enable_prefix_caching} are CLI-only. The README's table ({@code OptionsTable}) and the cross-surface
 * test ({@code OptionSurfacesTest}) pick the option up by themselves.
 */
public final class EngineOptionDefs {
    private static final List<Option<?>> OPTIONS = new ArrayList<>();
    private static final Map<Option<?>, BiConsumer<EngineOptions.Builder, Object>> SETTERS = new HashMap<>();

    public static final Option<Integer> THREADS = define(Option.integer("threads").defaultValue(0)
            .rule(v -> true, "an integer (0 or less: every core)")
            .description("Kernel threads of the engine; 0 or less: every core (of the TaskManager).")
            .surfaces(SQL, JOB_FLAG) // the CLI's --threads is a global option of every subcommand
            .examples(4, "four"), EngineOptions.Builder::threads);

    public static final Option<Long> KV_CACHE_MEMORY = define(Option.memorySize("kv_cache_memory")
            .defaultValue(512L << 20, "512mb")
            .description("KV cache budget of the engine, e.g. 64mb or 4gb (a plain number is MiB); decides how many"
                    + " tokens of how many requests fit at once.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(64L << 20, "lots"), EngineOptions.Builder::kvCacheBytes);

    public static final Option<Integer> BLOCK_SIZE = define(Option.integer("block_size").defaultValue(16)
            .rule(v -> v >= 1 && v <= 1024, "in [1, 1024]")
            .description("Tokens per KV cache block.")
            .surfaces(CLI)
            .examples(32, 0), EngineOptions.Builder::blockSize);

    public static final Option<Integer> MAX_NUM_SEQS = define(Option.integer("max_num_seqs").defaultValue(64)
            .rule(v -> v >= 1 && v <= 4096, "in [1, 4096]")
            .description("Most requests running at once in the engine.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(8, 0), EngineOptions.Builder::maxNumSeqs);

    public static final Option<Integer> MAX_NUM_BATCHED_TOKENS = define(Option.integer("max_num_batched_tokens")
            .defaultValue(256)
            .rule(v -> v >= 1 && v <= 1 << 16, "in [1, 65536]")
            .description("Token budget of one engine step, prefill chunks and decode tokens together.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(512, 70000), EngineOptions.Builder::maxNumBatchedTokens);

    public static final Option<Integer> MAX_MODEL_LEN = define(Option.integer("max_model_len").defaultValue(0)
            .rule(v -> v >= 0, ">= 0 (0: the model's own)")
            .description("Longest sequence, prompt plus completion; 0: the model's own, lowered to what the KV"
                    + " budget holds. Longer prompts get an error result.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(128, -1), EngineOptions.Builder::maxModelLen);

    public static final Option<Boolean> ENABLE_PREFIX_CACHING = define(Option.bool("enable_prefix_caching")
            .defaultValue(true)
            .description("Reuse the KV of full blocks whose token prefix was seen before.")
            .surfaces(CLI) // operators always cache prefixes
            .examples(false, "maybe"), EngineOptions.Builder::enablePrefixCaching);

    public static final Option<String> WEIGHT_FORMAT = define(Option.choice("weight_format",
                    List.of(WeightFormat.AUTO, "exact", "bf16", "int8")).defaultValue(WeightFormat.AUTO)
            .description("What matrix products compute in: auto (bf16 for BF16 and FP8 checkpoints, exact"
                    + " otherwise), exact (FP32, the reference), bf16 or int8.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples("bf16", "fp8"), (b, v) -> b.weightFormat(WeightFormat.parseOrAuto(v)));

    public static final Option<String> KV_CACHE_DTYPE = define(Option.choice("kv_cache_dtype",
                    List.of(WeightFormat.AUTO, "f32", "bf16")).defaultValue(WeightFormat.AUTO)
            .description("Element type of the KV cache: auto (f32 with exact weights, bf16 otherwise), f32 or bf16.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples("f32", "fp8"), (b, v) -> b.kvCacheDtype(KvCacheDtype.parseOrAuto(v)));

    public static final Option<Duration> LOG_STATS_INTERVAL = define(Option.duration("log_stats_interval")
            .defaultValue(Duration.ofSeconds(10), "10s")
            .description("How often the engine logs its stats line at INFO while it works (as vLLM's); 0: never.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(Duration.ofSeconds(30), "-1s"), EngineOptions.Builder::logStatsInterval);

    public static final Option<String> SPECULATIVE_METHOD = define(Option.choice("speculative_method",
                    List.of("none", "mtp", "ngram")).defaultValue("none")
            .description("Speculative decoding (new): where the drafts come from that one step verifies together;"
                    + " mtp: the checkpoint's multi-token-prediction layers (needs a checkpoint that has them),"
                    + " ngram: prompt lookup (the tokens that followed an earlier occurrence of the latest 1 to 3"
                    + " tokens), none: off.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples("mtp", "eagle"), (b, v) -> b.speculativeMethod(SpeculativeConfig.Method.parse(v)));

    public static final Option<Integer> NUM_SPECULATIVE_TOKENS = define(Option.integer("num_speculative_tokens")
            .defaultValue(2)
            .rule(v -> v >= 1 && v <= SpeculativeConfig.MAX_SPECULATIVE_TOKENS,
                    "in [1, " + SpeculativeConfig.MAX_SPECULATIVE_TOKENS + "]")
            .description("Drafts proposed per step (k) with a speculative_method other than none; ignored with"
                    + " none.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(3, 5), EngineOptions.Builder::numSpeculativeTokens);

    public static final Option<Boolean> SPECULATIVE_ADAPTIVE = define(Option.bool("speculative_adaptive")
            .defaultValue(true)
            .description("Let each request draft fewer tokens, or none, while its drafts are rejected, and more"
                    + " again as they are accepted; false: every step drafts num_speculative_tokens. Ignored with"
                    + " speculative_method none.")
            .surfaces(SQL, JOB_FLAG, CLI)
            .examples(false, "maybe"), EngineOptions.Builder::speculativeAdaptive);

    /** Every engine option, in the order of the documentation. */
    public static final List<Option<?>> ALL = List.copyOf(OPTIONS);

    private EngineOptionDefs() {}

    @SuppressWarnings("unchecked")
    private static <T> Option<T> define(Option.Builder<T> builder, BiConsumer<EngineOptions.Builder, T> setter) {
        Option<T> option = builder.build();
        OPTIONS.add(option);
        SETTERS.put(option, (b, v) -> setter.accept(b, (T) v));
        return option;
    }

    /**
     * The values of other options that {@code option} needs to take effect: {@code num_speculative_tokens} and
     * {@code speculative_adaptive} only matter with a {@code speculative_method} other than none (and are
     * ignored without one); empty for the other options. For tests that set one option at a time.
     */
    public static Map<Option<?>, Object> takesEffectWith(Option<?> option) {
        return option == NUM_SPECULATIVE_TOKENS || option == SPECULATIVE_ADAPTIVE
                ? Map.of(SPECULATIVE_METHOD, "mtp") : Map.of();
    }

    /** Sets {@code values} (option → parsed value) on {@code builder}; a {@code null} value leaves the builder's. */
    public static EngineOptions.Builder apply(EngineOptions.Builder builder, Map<Option<?>, ?> values) {
        values.forEach((option, value) -> {
            if (value != null) {
                BiConsumer<EngineOptions.Builder, Object> setter = SETTERS.get(option);
                if (setter == null) {
                    throw new IllegalArgumentException("'" + option + "' is not an engine option");
                }
                setter.accept(builder, option.cast(value));
            }
        });
        return builder;
    }
}
