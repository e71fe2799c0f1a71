package io.xpuflow.connector.sql;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.sample.SamplingParams;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;

/**
 * The options of the {@code xpuflow} model provider ({@code CREATE MODEL ... WITH (...)}); the same keys,
 * prefixed with {@value #JOB_PARAMETER_PREFIX}, configure {@link LlmGenerateFunction} through Flink job
 * parameters. Engine options decide which shared engine a TaskManager opens (equal options share one,
 * see {@link io.xpuflow.runtime.engine.EngineRegistry}); sampling options are the defaults for every row.
 * Names and meanings follow vLLM's engine arguments and OpenAI's sampling fields, with dashes.
 */
public final class XpuFlowOptions {
    /** Prefix of {@link LlmGenerateFunction}'s job parameters: {@code xpuflow.model-path}, ... */
    public static final String JOB_PARAMETER_PREFIX = "xpuflow.";

    private static final EngineOptions ENGINE_DEFAULTS = EngineOptions.builder(Path.of(".")).build();
    private static final SamplingDefaults SAMPLING_DEFAULTS = SamplingDefaults.ENGINE;

    // ------------------------------------------------------------------------------------------ engine

    public static final ConfigOption<String> MODEL_PATH = ConfigOptions.key("model-path").stringType().noDefaultValue()
            .withDescription("Checkpoint directory (config.json, safetensors, tokenizer.json) as seen by the"
                    + " TaskManagers. Required.");

    public static final ConfigOption<Integer> THREADS = ConfigOptions.key("threads").intType()
            .defaultValue(ENGINE_DEFAULTS.threads())
            .withDescription("Kernel threads of the engine; 0 or less: every core of the TaskManager.");

    public static final ConfigOption<MemorySize> KV_CACHE_MEMORY = ConfigOptions.key("kv-cache-memory").memoryType()
            .defaultValue(new MemorySize(ENGINE_DEFAULTS.kvCacheBytes()))
            .withDescription("KV cache budget of the engine, e.g. '64mb' or '2gb'; decides how many tokens of how"
                    + " many requests fit at once.");

    public static final ConfigOption<Integer> MAX_NUM_SEQS = ConfigOptions.key("max-num-seqs").intType()
            .defaultValue(ENGINE_DEFAULTS.maxNumSeqs())
            .withDescription("Most requests running at once in the engine (1 to 4096).");

    public static final ConfigOption<Integer> MAX_NUM_BATCHED_TOKENS = ConfigOptions.key("max-num-batched-tokens")
            .intType().defaultValue(ENGINE_DEFAULTS.maxNumBatchedTokens())
            .withDescription("Token budget of one engine step, prefill chunks and decode tokens together (1 to 65536).");

    public static final ConfigOption<Integer> MAX_MODEL_LEN = ConfigOptions.key("max-model-len").intType()
            .defaultValue(ENGINE_DEFAULTS.maxModelLen())
            .withDescription("Longest sequence, prompt plus completion; 0: the model's own, lowered to what the KV"
                    + " budget holds. Longer prompts get an error result.");

    public static final ConfigOption<String> WEIGHT_FORMAT = ConfigOptions.key("weight-format").stringType()
            .defaultValue(WeightFormat.AUTO)
            .withDescription("What matrix products compute in: auto (bf16 for BF16 and FP8 checkpoints, exact"
                    + " otherwise), exact (FP32, the reference), bf16 or int8.");

    public static final ConfigOption<String> KV_CACHE_DTYPE = ConfigOptions.key("kv-cache-dtype").stringType()
            .defaultValue(WeightFormat.AUTO)
            .withDescription("Element type of the KV cache: auto (f32 with exact weights, bf16 otherwise), f32 or"
                    + " bf16.");

    // ---------------------------------------------------------------------------------------- sampling

    public static final ConfigOption<Integer> MAX_TOKENS = ConfigOptions.key("max-tokens").intType()
            .defaultValue(SAMPLING_DEFAULTS.maxTokens()).withDescription("Tokens to generate at most per row (>= 1).");

    public static final ConfigOption<Double> TEMPERATURE = ConfigOptions.key("temperature").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.temperature())
            .withDescription("0 decodes greedily (the default, reproducible); otherwise logits are divided by it"
                    + " before sampling.");

    public static final ConfigOption<Double> TOP_P = ConfigOptions.key("top-p").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.topP())
            .withDescription("Nucleus sampling: keep the most likely tokens whose probability reaches top-p, in (0, 1].");

    public static final ConfigOption<Integer> TOP_K = ConfigOptions.key("top-k").intType()
            .defaultValue(SAMPLING_DEFAULTS.topK()).withDescription("Keep the top-k most likely tokens; 0: off.");

    public static final ConfigOption<Double> MIN_P = ConfigOptions.key("min-p").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.minP())
            .withDescription("Drop tokens less likely than min-p times the most likely one, in [0, 1]; 0: off.");

    public static final ConfigOption<Long> SEED = ConfigOptions.key("seed").longType().noDefaultValue()
            .withDescription("One seed for every row; unset: each row's seed derives from a hash of its prompt, so"
                    + " a replay reproduces its completion.");

    public static final ConfigOption<List<String>> STOP = ConfigOptions.key("stop").stringType().asList()
            .noDefaultValue()
            .withDescription("Strings that end a completion (not included in it), separated by ';'. Entries are trimmed;"
                    + " double-quote one to keep a ';' or surrounding whitespace, e.g. 'The end;\"<newline>\"'.");

    public static final ConfigOption<Double> PRESENCE_PENALTY = ConfigOptions.key("presence-penalty").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.presencePenalty())
            .withDescription("Subtracted once from the logit of every token already generated, in [-2, 2].");

    public static final ConfigOption<Double> FREQUENCY_PENALTY = ConfigOptions.key("frequency-penalty").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.frequencyPenalty())
            .withDescription("Subtracted from a token's logit once per time it was generated, in [-2, 2].");

    public static final ConfigOption<Double> REPETITION_PENALTY = ConfigOptions.key("repetition-penalty").doubleType()
            .defaultValue(SAMPLING_DEFAULTS.repetitionPenalty())
            .withDescription("Divides positive (multiplies negative) logits of tokens in the prompt or output; 1: off.");

    public static final ConfigOption<Boolean> IGNORE_EOS = ConfigOptions.key("ignore-eos").booleanType()
            .defaultValue(SAMPLING_DEFAULTS.ignoreEos())
            .withDescription("Keep generating past end-of-sequence tokens (until max-tokens or a stop string).");

    static final Set<ConfigOption<?>> ENGINE_OPTIONS =
            Set.of(THREADS, KV_CACHE_MEMORY, MAX_NUM_SEQS, MAX_NUM_BATCHED_TOKENS, MAX_MODEL_LEN, WEIGHT_FORMAT,
                    KV_CACHE_DTYPE);

    static final Set<ConfigOption<?>> SAMPLING_OPTIONS = Set.of(MAX_TOKENS, TEMPERATURE, TOP_P, TOP_K, MIN_P, SEED,
            STOP, PRESENCE_PENALTY, FREQUENCY_PENALTY, REPETITION_PENALTY, IGNORE_EOS);

    private XpuFlowOptions() {}

    /** How an error message names an option: a model's WITH option or a job parameter. */
    @FunctionalInterface
    interface OptionNames {
        String describe(ConfigOption<?> option);

        static OptionNames ofModel(String model) {
            return o -> "option '" + o.key() + "' of model '" + model + "'";
        }

        static OptionNames ofJobParameters() {
            return o -> "job parameter '" + JOB_PARAMETER_PREFIX + o.key() + "'";
        }
    }

    /**
     * The engine settings in {@code config}, checked one option at a time so that the error names the
     * option that is wrong.
     *
     * @throws ValidationException for a missing model path or a value the engine does not accept
     */
    static EngineSpec engineSpec(ReadableConfig config, OptionNames names) {
        String modelPath = get(config, MODEL_PATH, names);
        if (modelPath == null || modelPath.isBlank()) {
            throw new ValidationException(names.describe(MODEL_PATH)
                    + " is required: the model's checkpoint directory as seen by the TaskManagers");
        }
        int threads = get(config, THREADS, names);
        long kvBytes = get(config, KV_CACHE_MEMORY, names).getBytes();
        int maxNumSeqs = get(config, MAX_NUM_SEQS, names);
        int maxNumBatchedTokens = get(config, MAX_NUM_BATCHED_TOKENS, names);
        int maxModelLen = get(config, MAX_MODEL_LEN, names);
        checkEngine(names, KV_CACHE_MEMORY, b -> b.kvCacheBytes(kvBytes));
        checkEngine(names, MAX_NUM_SEQS, b -> b.maxNumSeqs(maxNumSeqs));
        checkEngine(names, MAX_NUM_BATCHED_TOKENS, b -> b.maxNumBatchedTokens(maxNumBatchedTokens));
        WeightFormat weightFormat = parse(config, WEIGHT_FORMAT, names, WeightFormat::parseOrAuto);
        KvCacheDtype kvCacheDtype = parse(config, KV_CACHE_DTYPE, names, KvCacheDtype::parseOrAuto);
        return new EngineSpec(modelPath, threads, kvBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype);
    }

    /**
     * The sampling defaults in {@code config}, checked one option at a time.
     *
     * @throws ValidationException naming the first option whose value is out of range
     */
    static SamplingDefaults samplingDefaults(ReadableConfig config, OptionNames names) {
        int maxTokens = get(config, MAX_TOKENS, names);
        double temperature = get(config, TEMPERATURE, names);
        double topP = get(config, TOP_P, names);
        int topK = get(config, TOP_K, names);
        double minP = get(config, MIN_P, names);
        Long seed = get(config, SEED, names);
        List<String> stop = get(config, STOP, names);
        double presence = get(config, PRESENCE_PENALTY, names);
        double frequency = get(config, FREQUENCY_PENALTY, names);
        double repetition = get(config, REPETITION_PENALTY, names);
        boolean ignoreEos = get(config, IGNORE_EOS, names);
        checkSampling(names, MAX_TOKENS, b -> b.maxTokens(maxTokens));
        checkSampling(names, TEMPERATURE, b -> b.temperature(temperature));
        checkSampling(names, TOP_P, b -> b.topP(topP));
        checkSampling(names, TOP_K, b -> b.topK(topK));
        checkSampling(names, MIN_P, b -> b.minP(minP));
        checkSampling(names, STOP, b -> b.stop(stop));
        checkSampling(names, PRESENCE_PENALTY, b -> b.presencePenalty(presence));
        checkSampling(names, FREQUENCY_PENALTY, b -> b.frequencyPenalty(frequency));
        checkSampling(names, REPETITION_PENALTY, b -> b.repetitionPenalty(repetition));
        return SamplingDefaults.of(SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP)
                .topK(topK).minP(minP).seed(seed).stop(stop).presencePenalty(presence).frequencyPenalty(frequency)
                .repetitionPenalty(repetition).ignoreEos(ignoreEos).build());
    }

    /**
     * The options found among the job parameters (keys {@value #JOB_PARAMETER_PREFIX}{@code <option>}), as
     * a configuration under the plain option keys.
     *
     * @param jobParameter the value of a job parameter, or null when it is not set
     */
    static ReadableConfig fromJobParameters(Function<String, String> jobParameter) {
        Map<String, String> found = new HashMap<>();
        String path = jobParameter.apply(JOB_PARAMETER_PREFIX + MODEL_PATH.key());
        if (path != null) {
            found.put(MODEL_PATH.key(), path);
        }
        for (Set<ConfigOption<?>> group : List.of(ENGINE_OPTIONS, SAMPLING_OPTIONS)) {
            for (ConfigOption<?> o : group) {
                String v = jobParameter.apply(JOB_PARAMETER_PREFIX + o.key());
                if (v != null) {
                    found.put(o.key(), v);
                }
            }
        }
        return Configuration.fromMap(found);
    }

    private static <T> T get(ReadableConfig config, ConfigOption<T> option, OptionNames names) {
        try {
            return config.get(option);
        } catch (IllegalArgumentException e) {
            // a value that does not parse as the option's type (only possible for job parameters: the
            // model provider's helper checks types first)
            throw new ValidationException("Invalid value for " + names.describe(option) + ": " + e.getMessage(), e);
        }
    }

    /** A string option parsed by {@code parser}, whose {@link IllegalArgumentException} names the accepted values. */
    private static <T> T parse(ReadableConfig config, ConfigOption<String> option, OptionNames names,
                               Function<String, T> parser) {
        String value = get(config, option, names);
        try {
            return parser.apply(value);
        } catch (IllegalArgumentException e) {
            throw new ValidationException("Invalid value for " + names.describe(option) + ": " + e.getMessage(), e);
        }
    }

    private static void checkEngine(OptionNames names, ConfigOption<?> option, UnaryOperator<EngineOptions.Builder> set) {
        try {
            set.apply(EngineOptions.builder(Path.of("."))).build();
        } catch (IllegalArgumentException e) {
            throw new ValidationException("Invalid value for " + names.describe(option) + ": " + e.getMessage(), e);
        }
    }

    private static void checkSampling(OptionNames names, ConfigOption<?> option,
                                      UnaryOperator<SamplingParams.Builder> set) {
        try {
            set.apply(SamplingParams.builder()).build();
        } catch (IllegalArgumentException e) {
            throw new ValidationException("Invalid value for " + names.describe(option) + ": " + e.getMessage(), e);
        }
    }
}
