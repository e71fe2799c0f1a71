package io.xpuflow.connector.sql;

import io.xpuflow.connector.records.SamplingDefaults;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.operators.EngineSpec;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.CatalogModel;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ObjectIdentifier;
import org.apache.flink.table.catalog.ResolvedCatalogModel;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.ml.ModelProvider;
import org.junit.jupiter.api.Test;

/** Options and schemas of the {@code xpuflow} model provider; nothing here loads a model. */
class XpuFlowModelProviderFactoryTest {
    static final ObjectIdentifier ID = ObjectIdentifier.of("cat", "db", "story");
    static final ResolvedSchema PROMPT = ResolvedSchema.of(Column.physical("prompt", DataTypes.STRING()));
    static final ResolvedSchema COMPLETION = ResolvedSchema.of(Column.physical("completion", DataTypes.STRING()));

    static ModelProvider create(Map<String, String> options, ResolvedSchema input, ResolvedSchema output) {
        Map<String, String> all = new HashMap<>(options);
        all.put("provider", "xpuflow");
        CatalogModel model = CatalogModel.of(Schema.newBuilder().fromResolvedSchema(input).build(),
                Schema.newBuilder().fromResolvedSchema(output).build(), all, null);
        ModelProviderFactory factory = FactoryUtil.discoverFactory(
                XpuFlowModelProviderFactoryTest.class.getClassLoader(), ModelProviderFactory.class, "xpuflow");
        return FactoryUtil.createModelProvider(factory, ID, ResolvedCatalogModel.of(model, input, output),
                new Configuration(), XpuFlowModelProviderFactoryTest.class.getClassLoader(), true);
    }

    static ModelProvider create(Map<String, String> options) {
        return create(options, PROMPT, COMPLETION);
    }

    static Map<String, String> with(String... kv) {
        Map<String, String> m = new HashMap<>(Map.of("model-path", "/models/m"));
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    @Test
    void optionsBecomeEngineSettingsAndSamplingDefaults() {
        ModelProvider p = create(with("threads", "2", "kv-cache-memory", "32mb", "max-num-seqs", "8",
                "max-num-batched-tokens", "128", "max-model-len", "256", "max-tokens", "5", "temperature", "0.5",
                "top-p", "0.9", "top-k", "40", "min-p", "0.05", "seed", "7", "stop", "The end;\"\n\"",
                "presence-penalty", "0.1", "frequency-penalty", "0.2", "repetition-penalty", "1.1", "ignore-eos", "true",
                "weight-format", "BF16", "kv-cache-dtype", "f32"));
        assertThat(p).isInstanceOf(XpuFlowModelProvider.class);
        XpuFlowModelProvider x = (XpuFlowModelProvider) p;
        assertThat(x.modelName()).isEqualTo("cat.db.story");
        assertThat(x.engine()).isEqualTo(new EngineSpec("/models/m", 2, 32L << 20, 8, 128, 256, WeightFormat.BF16,
                KvCacheDtype.F32));
        assertThat(x.sampling()).isEqualTo(SamplingDefaults.of(io.xpuflow.runtime.sample.SamplingParams.builder()
                .maxTokens(5).temperature(0.5).topP(0.9).topK(40).minP(0.05).seed(7L).stop(List.of("The end", "\n"))
                .presencePenalty(0.1).frequencyPenalty(0.2).repetitionPenalty(1.1).ignoreEos(true).build()));
    }

    @Test
    void defaultsAreTheEnginesAndGreedySixteenTokens() {
        XpuFlowModelProvider x = (XpuFlowModelProvider) create(with());
        assertThat(x.engine()).isEqualTo(EngineSpec.of("/models/m"));
        assertThat(x.engine().weightFormat()).isNull(); // auto: chosen from the checkpoint when it loads
        assertThat(x.engine().kvCacheDtype()).isNull();
        assertThat(((XpuFlowModelProvider) create(with("weight-format", "auto", "kv-cache-dtype", "AUTO"))).engine())
                .isEqualTo(EngineSpec.of("/models/m"));
        assertThat(x.sampling()).isEqualTo(SamplingDefaults.ENGINE);
        assertThat(x.columns()).isEqualTo(new ModelColumns(1, 0, -1, -1, -1, -1, 0));
    }

    @Test
    void missingModelPathIsNamed() {
        assertThatThrownBy(() -> create(Map.of("temperature", "0.5")))
                .isInstanceOf(ValidationException.class)
                .satisfies(e -> assertThat(messages(e)).contains("model-path"));
    }

    @Test
    void badValuesNameTheOption() {
        assertRejected(with("temperature", "-1"), "Invalid value for option 'temperature' of model 'cat.db.story'",
                "'temperature' must be a finite number >= 0, was -1.0");
        assertRejected(with("temperature", "hot"), "temperature", "hot");
        assertRejected(with("top-p", "1.5"), "option 'top-p'", "(0, 1]");
        assertRejected(with("max-tokens", "0"), "option 'max-tokens'", "'max-tokens' must be >= 1");
        assertRejected(with("stop", "a;;b"), "option 'stop'", "non-empty strings");
        assertRejected(with("max-num-seqs", "0"), "option 'max-num-seqs'", "'max-num-seqs' must be in [1, 4096], was 0");
        assertRejected(with("kv-cache-memory", "0"), "option 'kv-cache-memory'", "must be a memory size above zero, was 0");
        assertRejected(with("kv-cache-memory", "lots"), "kv-cache-memory", "lots");
        assertRejected(with("weight-format", "fp4"), "Invalid value for option 'weight-format' of model 'cat.db.story'",
                "'weight-format' must be one of auto, exact, bf16, int8, was fp4");
        assertRejected(with("kv-cache-dtype", "f16"), "Invalid value for option 'kv-cache-dtype' of model 'cat.db.story'",
                "'kv-cache-dtype' must be one of auto, f32, bf16, was f16");
        assertRejected(with("temprature", "0.5"), "unknown option 'temprature'; did you mean 'temperature'?");
    }

    @Test
    void inputMustBeOneStringColumn() {
        assertRejected(PROMPT_TWICE(), COMPLETION, "INPUT must be exactly one STRING column, the prompt, but is"
                + " (prompt STRING, id INT)");
        assertRejected(ResolvedSchema.of(Column.physical("prompt", DataTypes.INT())), COMPLETION,
                "INPUT must be exactly one STRING column");
    }

    @Test
    void outputNeedsExactlyOneCompletionColumnBesidesTheRecognisedOnes() {
        assertRejected(PROMPT, ResolvedSchema.of(Column.physical("finish_reason", DataTypes.STRING())),
                "OUTPUT must have exactly one STRING column for the completion besides the recognised ones, but has"
                        + " none");
        assertRejected(PROMPT, ResolvedSchema.of(Column.physical("completion", DataTypes.STRING()),
                        Column.physical("summary", DataTypes.STRING())), "but has completion, summary",
                "recognised by name are finish_reason STRING, prompt_tokens INT, completion_tokens INT and error STRING");
        assertRejected(PROMPT, ResolvedSchema.of(Column.physical("score", DataTypes.DOUBLE())),
                "OUTPUT column 'score' holds the completion and must be a STRING, but is DOUBLE");
        assertRejected(PROMPT, ResolvedSchema.of(Column.physical("completion", DataTypes.STRING()),
                Column.physical("prompt_tokens", DataTypes.STRING())), "'prompt_tokens' must be INT or BIGINT");
        assertRejected(PROMPT, ResolvedSchema.of(Column.physical("completion", DataTypes.STRING().notNull())),
                "'completion' must be nullable (no NOT NULL): a row that cannot be generated gets NULL");
    }

    @Test
    void recognisedOutputColumnsInAnyOrder() {
        XpuFlowModelProvider x = (XpuFlowModelProvider) create(with(), PROMPT, ResolvedSchema.of(
                Column.physical("completion_tokens", DataTypes.BIGINT()),
                Column.physical("finish_reason", DataTypes.STRING()),
                Column.physical("error", DataTypes.STRING()),
                Column.physical("text", DataTypes.VARCHAR(1000)),
                Column.physical("prompt_tokens", DataTypes.INT())));
        assertThat(x.columns()).isEqualTo(new ModelColumns(5, 3, 1, 4, 0, 2, 2));
    }

    @Test
    void sqlUsersSeeTheMessageWhenTheQueryIsPlanned() {
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.executeSql("CREATE TEMPORARY VIEW prompts AS SELECT * FROM (VALUES ('Once')) AS t(prompt)");
        tEnv.executeSql("CREATE MODEL story INPUT (prompt STRING) OUTPUT (completion STRING)"
                + " WITH ('provider' = 'xpuflow', 'model-path' = '/models/m', 'temperature' = '-0.5')");
        assertThatThrownBy(() -> tEnv.explainSql(
                "SELECT * FROM ML_PREDICT(TABLE prompts, MODEL story, DESCRIPTOR(prompt))"))
                .satisfies(e -> assertThat(messages(e)).contains("Invalid value for option 'temperature' of model"
                        + " 'default_catalog.default_database.story'"));


        tEnv.executeSql("CREATE MODEL fast INPUT (prompt STRING) OUTPUT (completion STRING)"
                + " WITH ('provider' = 'xpuflow', 'model-path' = '/models/m', 'weight-format' = 'fp8')");
        assertThatThrownBy(() -> tEnv.explainSql(
                "SELECT * FROM ML_PREDICT(TABLE prompts, MODEL fast, DESCRIPTOR(prompt))"))
                .isInstanceOf(ValidationException.class)
                .satisfies(e -> assertThat(messages(e)).contains("Invalid value for option 'weight-format' of model"
                        + " 'default_catalog.default_database.fast': 'weight-format' must be one of auto, exact, bf16, int8, was fp8"));
    }

    @Test
    void llmGenerateTakesTheFormatsFromJobParameters() {
        Map<String, String> params = Map.of("xpuflow.model-path", "/models/m", "xpuflow.weight-format", "exact",
                "xpuflow.kv-cache-dtype", "bf16");
        assertThat(XpuFlowOptions.engineSpec(XpuFlowOptions.fromJobParameters(params::get),
                XpuFlowOptions.OptionNames.ofJobParameters()))
                .isEqualTo(EngineSpec.of("/models/m").withWeightFormat(WeightFormat.EXACT).withKvCacheDtype(KvCacheDtype.BF16));

        Map<String, String> bad = Map.of("xpuflow.model-path", "/models/m", "xpuflow.kv-cache-dtype", "int8");
        assertThatThrownBy(() -> XpuFlowOptions.engineSpec(XpuFlowOptions.fromJobParameters(bad::get),
                XpuFlowOptions.OptionNames.ofJobParameters()))
                .isInstanceOf(ValidationException.class)
                .hasMessage("Invalid value for job parameter 'xpuflow.kv-cache-dtype': 'kv-cache-dtype' must be one of"
                        + " auto, f32, bf16, was int8");
    }

    private static ResolvedSchema PROMPT_TWICE() {
        return ResolvedSchema.of(Column.physical("prompt", DataTypes.STRING()), Column.physical("id", DataTypes.INT()));
    }

    private static void assertRejected(Map<String, String> options, String... parts) {
        assertThatThrownBy(() -> create(options)).isInstanceOf(ValidationException.class)
                .satisfies(e -> assertThat(messages(e)).contains(parts));
    }

    private static void assertRejected(ResolvedSchema input, ResolvedSchema output, String... parts) {
        assertThatThrownBy(() -> create(with(), input, output)).isInstanceOf(ValidationException.class)
                .satisfies(e -> assertThat(messages(e)).contains(parts));
    }

    /** Every message of the cause chain, since Flink wraps the factory's exception. */
    static String messages(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append('\n');
        }
        return sb.toString();
    }
}
