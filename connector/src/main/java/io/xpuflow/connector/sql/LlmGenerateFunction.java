package io.xpuflow.connector.sql;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.GenerationFailure;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.functions.AsyncScalarFunction;
import org.apache.flink.table.functions.FunctionContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code LLM_GENERATE(prompt [, options_json])}: the completion of {@code prompt} as a STRING, computed
 * asynchronously on the TaskManager's shared engine (see {@link EngineClient}).
 *
 * <p>Where the engine comes from:
 * <ul>
 *   <li>registered with settings, {@code tEnv.createTemporarySystemFunction("LLM_GENERATE",
 *       new LlmGenerateFunction(EngineSpec.of("/models/m")))};</li>
 *   <li>registered by class name ({@code CREATE FUNCTION LLM_GENERATE AS
 *       'io.xpuflow.connector.sql.LlmGenerateFunction'}): from the job parameters
 *       {@code xpuflow.model-path} (required), {@code xpuflow.threads}, {@code xpuflow.kv-cache-memory},
 *       ..., and sampling defaults {@code xpuflow.max-tokens}, {@code xpuflow.temperature}, ... — the
 *       keys of {@link XpuFlowOptions} with the {@code xpuflow.} prefix. Set them with
 *       {@code tEnv.getConfig().addJobParameter(...)} or in SQL with
 *       {@code SET 'pipeline.global-job-parameters' = 'xpuflow.model-path:/models/m,xpuflow.threads:4'}.
 *       A missing or invalid one fails the job at start with a message naming it.</li>
 * </ul>
 * A model declared with {@code CREATE MODEL} and this function with the same engine settings share one
 * engine per TaskManager.
 *
 * <p>{@code options_json} carries per-row sampling fields by their OpenAI names ({@link SamplingJson}).
 * Rows are never allowed to stop the job: invalid options JSON, a prompt too long for the context or an
 * engine failure give a NULL result and a WARN log line. A NULL prompt or options argument gives NULL:
 * Flink does not call an async scalar function with a NULL argument (write
 * {@code COALESCE(options, '{}')} for "the defaults when NULL").
 * Flink's {@code table.exec.async-scalar.timeout} (default 3 min) still fails the job when one row takes
 * longer; raise it for long generations.
 *
 * <p>Request ids and seeds come from a hash of the prompt ({@link RequestIds}), so a replay after a
 * failover produces the same completion.
 */
public class LlmGenerateFunction extends AsyncScalarFunction {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(LlmGenerateFunction.class);

    private final EngineSpec spec;
    private final SamplingDefaults sampling;

    private transient EngineClient client;
    private transient SamplingDefaults defaults;
    private transient SamplingParams defaultParams;
    private transient volatile ParsedOptions lastOptions;

    /** The last options JSON seen and what it gave; usually every row passes the same literal. */
    private record ParsedOptions(String json, SamplingParams params, InvalidInputException error) {}

    /** Engine and sampling defaults from the job parameters ({@code xpuflow.*}). */
    public LlmGenerateFunction() {
        this.spec = null;
        this.sampling = null;
    }

    /** This engine, greedy 16-token defaults. */
    public LlmGenerateFunction(EngineSpec spec) {
        this(spec, SamplingDefaults.ENGINE);
    }

    public LlmGenerateFunction(EngineSpec spec, SamplingDefaults sampling) {
        this.spec = Objects.requireNonNull(spec, "spec");
        this.sampling = Objects.requireNonNull(sampling, "sampling");
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        if (spec != null) {
            defaults = sampling;
            client = EngineClient.open(spec, "the model path of LLM_GENERATE's EngineSpec", context.getMetricGroup());
        } else {
            ReadableConfig config = XpuFlowOptions.fromJobParameters(key -> context.getJobParameter(key, null));
            XpuFlowOptions.OptionNames names = XpuFlowOptions.OptionNames.ofJobParameters();
            String modelPathKey = XpuFlowOptions.JOB_PARAMETER_PREFIX + XpuFlowOptions.MODEL_PATH.key();
            if (config.getOptional(XpuFlowOptions.MODEL_PATH).isEmpty()) {
                throw new ValidationException("LLM_GENERATE needs a model: set the job parameter '" + modelPathKey
                        + "' (SET 'pipeline.global-job-parameters' = '" + modelPathKey + ":/path/to/model' in SQL,"
                        + " tEnv.getConfig().addJobParameter(...) in Java), or register new LlmGenerateFunction(spec)");
            }
            EngineSpec fromParameters = XpuFlowOptions.engineSpec(config, names);
            defaults = XpuFlowOptions.samplingDefaults(config, names);
            client = EngineClient.open(fromParameters, "job parameter '" + modelPathKey + "'", context.getMetricGroup());
        }
        defaultParams = defaults.toParams();
    }

    /** The completion of {@code prompt} with the default sampling settings. */
    public void eval(CompletableFuture<String> result, String prompt) {
        generate(result, prompt, defaultParams);
    }

    /**
     * The completion of {@code prompt} with the options of {@code optionsJson} over the defaults (null: the
     * defaults; SQL never gets here with NULL, see the class comment).
     */
    public void eval(CompletableFuture<String> result, String prompt, String optionsJson) {
        if (optionsJson == null) {
            generate(result, prompt, defaultParams);
            return;
        }
        ParsedOptions parsed = lastOptions;
        if (parsed == null || !parsed.json().equals(optionsJson)) {
            try {
                parsed = new ParsedOptions(optionsJson, SamplingJson.parse(optionsJson, defaults), null);
            } catch (InvalidInputException e) {
                parsed = new ParsedOptions(optionsJson, null, e);
            }
            lastOptions = parsed;
        }
        if (parsed.error() != null) {
            client.rowError(parsed.error().code());
            LOG.warn("LLM_GENERATE returns NULL for a row ({}): {}", parsed.error().code(), parsed.error().getMessage());
            result.complete(null);
            return;
        }
        generate(result, prompt, parsed.params());
    }

    private void generate(CompletableFuture<String> result, String prompt, SamplingParams params) {
        if (prompt == null) {
            result.complete(null);
            return;
        }
        client.generate(prompt, params).whenComplete((r, e) -> {
            if (e == null) {
                result.complete(r.text());
            } else {
                GenerationFailure f = GenerationFailure.of(e);
                LOG.warn("LLM_GENERATE returns NULL for a row ({}): {}", f.code(), f.message());
                result.complete(null);
            }
        });
    }

    @Override
    public void close() throws Exception {
        if (client != null) {
            client.close();
            client = null;
        }
    }
}
