package io.xpuflow.connector.sql;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.connector.options.OptionReaders;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;

/**
 * The options of the {@code xpuflow} model provider ({@code CREATE MODEL ... WITH (...)}); the same keys,
 * prefixed with {@value #JOB_PARAMETER_PREFIX}, configure {@link LlmGenerateFunction} through Flink job
 * parameters. Engine options decide which shared engine a TaskManager opens (equal options share one,
 * see {@link io.xpuflow.runtime.engine.EngineRegistry}); sampling options are the defaults for every row.
 *
 * <p>Besides {@link #MODEL_PATH}, every option is generated from the one definition of the engine and
 * sampling options ({@link EngineOptionDefs}, {@link SamplingOptionDefs}) that take {@link Surface#SQL}: the
 * key is the option's {@link Option#key()} ({@code max-tokens}), the description and default are the
 * definition's, and the value is read by {@link OptionReaders#fromText} as on the command lines. The options
 * are declared as strings to Flink so that Flink's own parsers (which read a plain memory size as bytes and
 * {@code 10.0} as no integer in some places but not others) never see them first.
 */
public final class XpuFlowOptions {
    /** Prefix of {@link LlmGenerateFunction}'s job parameters: {@code xpuflow.model-path}, ... */
    public static final String JOB_PARAMETER_PREFIX = "xpuflow.";

    public static final ConfigOption<String> MODEL_PATH = ConfigOptions.key("model-path").stringType().noDefaultValue()
            .withDescription("Checkpoint directory (config.json, safetensors, tokenizer.json) as seen by the"
                    + " TaskManagers. Required.");

    /** The engine options of {@link EngineOptionDefs} that SQL takes, by definition. */
    static final Map<Option<?>, ConfigOption<?>> ENGINE = configOptions(EngineOptionDefs.ALL);

    /** The sampling options of {@link SamplingOptionDefs} that SQL takes, by definition. */
    static final Map<Option<?>, ConfigOption<?>> SAMPLING = configOptions(SamplingOptionDefs.ALL);

    static final Set<ConfigOption<?>> ENGINE_OPTIONS = Set.copyOf(ENGINE.values());

    static final Set<ConfigOption<?>> SAMPLING_OPTIONS = Set.copyOf(SAMPLING.values());

    private XpuFlowOptions() {}

    /** The Flink option of each definition that SQL takes: same key, description and default (as text). */
    private static Map<Option<?>, ConfigOption<?>> configOptions(List<Option<?>> definitions) {
        Map<Option<?>, ConfigOption<?>> out = new LinkedHashMap<>();
        for (Option<?> o : definitions) {
            if (!o.on(Surface.SQL)) {
                continue;
            }
            String description = o.description() + " " + OptionReaders.textSyntax(o).substring(0, 1).toUpperCase()
                    + OptionReaders.textSyntax(o).substring(1) + (o.type().isList() ? ", separated by ';'." : ".");
            ConfigOptions.TypedConfigOptionBuilder<String> b = ConfigOptions.key(o.key()).stringType();
            out.put(o, o.defaultText().isEmpty() ? b.noDefaultValue().withDescription(description)
                    : b.defaultValue(o.defaultText()).withDescription(description));
        }
        return Collections.unmodifiableMap(out);
    }

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
        String modelPath = config.get(MODEL_PATH);
        if (modelPath == null || modelPath.isBlank()) {
            throw new ValidationException(names.describe(MODEL_PATH)
                    + " is required: the model's checkpoint directory as seen by the TaskManagers");
        }
        return EngineSpec.of(modelPath,
                EngineOptionDefs.apply(EngineOptions.builder(Path.of(modelPath)), read(config, ENGINE, names)).build());
    }

    /**
     * The sampling defaults in {@code config}, checked one option at a time.
     *
     * @throws ValidationException naming the first option whose value is out of range
     */
    static SamplingDefaults samplingDefaults(ReadableConfig config, OptionNames names) {
        Map<Option<?>, Object> values = read(config, SAMPLING, names);
        try {
            return SamplingDefaults.of(SamplingOptionDefs.apply(SamplingParams.builder(), values).build());
        } catch (IllegalArgumentException e) { // a rule of two options (min-tokens <= max-tokens)
            throw new ValidationException("Invalid sampling options: " + e.getMessage(), e);
        }
    }

    /** Every option of {@code options} in {@code config} (its default when unset), read and checked. */
    private static Map<Option<?>, Object> read(ReadableConfig config, Map<Option<?>, ConfigOption<?>> options,
                                               OptionNames names) {
        Map<Option<?>, Object> values = new LinkedHashMap<>();
        options.forEach((definition, configOption) -> {
            @SuppressWarnings("unchecked")
            String text = config.get((ConfigOption<String>) configOption);
            if (text == null) {
                return; // unset, no default (seed)
            }
            try {
                values.put(definition, OptionReaders.fromText(definition, text, configOption.key()));
            } catch (IllegalArgumentException e) {
                throw new ValidationException("Invalid value for " + names.describe(configOption) + ": " + e.getMessage(), e);
            }
        });
        return values;
    }

    /**
     * The keys of every option here ({@link #MODEL_PATH} and the generated ones); a key that is none of them
     * gets the message of {@link OptionReaders#unknown}, naming the nearest key.
     */
    static List<String> keys() {
        List<String> keys = new ArrayList<>();
        keys.add(MODEL_PATH.key());
        ENGINE.values().forEach(o -> keys.add(o.key()));
        SAMPLING.values().forEach(o -> keys.add(o.key()));
        return keys;
    }

    /**
     * The options found among the job parameters (keys {@value #JOB_PARAMETER_PREFIX}{@code <option>}), as
     * a configuration under the plain option keys.
     *
     * @param jobParameter the value of a job parameter, or null when it is not set
     */
    static ReadableConfig fromJobParameters(Function<String, String> jobParameter) {
        Map<String, String> found = new HashMap<>();
        for (String key : keys()) {
            String v = jobParameter.apply(JOB_PARAMETER_PREFIX + key);
            if (v != null) {
                found.put(key, v);
            }
        }
        return Configuration.fromMap(found);
    }
}
