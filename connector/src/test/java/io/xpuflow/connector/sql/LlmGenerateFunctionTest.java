package io.xpuflow.connector.sql;

import static io.xpuflow.connector.sql.SqlTestSupport.MODEL_PATH;
import static io.xpuflow.connector.sql.SqlTestSupport.PROMPTS;
import static io.xpuflow.connector.sql.SqlTestSupport.SPEC;
import static io.xpuflow.connector.sql.SqlTestSupport.TOO_LONG;
import static io.xpuflow.connector.sql.SqlTestSupport.messages;
import static io.xpuflow.connector.sql.SqlTestSupport.reference;
import static org.apache.flink.table.api.DataTypes.FIELD;
import static org.apache.flink.table.api.DataTypes.INT;
import static org.apache.flink.table.api.DataTypes.ROW;
import static org.apache.flink.table.api.DataTypes.STRING;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.testutil.ReportedMetrics;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@code LLM_GENERATE} on a MiniCluster with the real model. */
class LlmGenerateFunctionTest {
    static final ReportedMetrics REPORTED = new ReportedMetrics();

    @RegisterExtension
    static final MiniClusterExtension MINI = REPORTED.miniCluster(2);

    StreamExecutionEnvironment env;
    StreamTableEnvironment tEnv;
    JobID lastJob;

    @BeforeEach
    void setUp() {
        env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        tEnv = StreamTableEnvironment.create(env);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            rows.add(Row.of(i, PROMPTS.get(i)));
        }
        tEnv.createTemporaryView("prompts", tEnv.fromValues(ROW(FIELD("id", INT()), FIELD("prompt", STRING())), rows));
    }

    private Map<Integer, Row> collectById(String sql) throws Exception {
        Map<Integer, Row> byId = new HashMap<>();
        TableResult result = tEnv.executeSql(sql);
        lastJob = result.getJobClient().orElseThrow().getJobID();
        // the iterator ends with the (bounded) job
        result.collect().forEachRemaining(r -> byId.put(r.<Integer>getFieldAs(0), r));
        return byId;
    }

    @Test
    void completionsEqualTheEnginesOwnWithDefaultAndPerRowOptions() throws Exception {
        tEnv.createTemporarySystemFunction("LLM_GENERATE", new LlmGenerateFunction(SPEC));
        Map<Integer, Row> byId = collectById("SELECT id, LLM_GENERATE(prompt), LLM_GENERATE(prompt, '{\"max_tokens\": 5}'),"
                + " LLM_GENERATE(prompt, '{\"max_tokens\": 8, \"temperature\": 0.8, \"top_p\": 0.9, \"stop\": \".\"}')"
                + " FROM prompts");

        assertThat(byId).hasSize(PROMPTS.size());
        SamplingParams sampled = SamplingParams.builder().maxTokens(8).temperature(0.8).topP(0.9).stop(List.of("."))
                .build();
        for (int i = 0; i < PROMPTS.size(); i++) {
            String p = PROMPTS.get(i);
            String greedy16 = reference(SPEC, p, SamplingParams.greedy(16)).text();
            String greedy5 = reference(SPEC, p, SamplingParams.greedy(5)).text();
            assertThat(greedy16).startsWith(greedy5).isNotEqualTo(greedy5);
            assertThat(byId.get(i)).isEqualTo(Row.of(i, greedy16, greedy5, reference(SPEC, p, sampled).text()));
        }
        assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isZero();
    }

    @Test
    void badRowsGiveNullAndTheOtherRowsTheirCompletions() throws Exception {
        tEnv.createTemporarySystemFunction("LLM_GENERATE", new LlmGenerateFunction(SPEC, SamplingDefaults.of(SamplingDefaults.ENGINE.toBuilder()
                .maxTokens(6).build())));
        // from a DataStream, so that NULLs are values at run time and not literals the planner sees
        List<Row> rows = List.of(
                Row.of(0, "Once upon a time", "{\"max_tokens\": 4}"),
                Row.of(1, "Once upon a time", "{\"max_tokens\": 4"),        // not JSON
                Row.of(2, "Once upon a time", "[4]"),                       // not an object
                Row.of(3, "Once upon a time", "{\"max_token\": 4}"),        // unknown field
                Row.of(4, "Once upon a time", "{\"top_p\": 2}"),            // out of range
                Row.of(5, "Once upon a time", "{\"max_tokens\": \"4\"}"),   // wrong type
                Row.of(6, TOO_LONG, "{}"),                                  // longer than the context
                Row.of(7, null, "{}"),                                      // NULL in, NULL out
                Row.of(8, "The cat sat", null),                             // likewise
                Row.of(9, "The cat sat", "{}"));                            // empty options: the defaults
        tEnv.createTemporaryView("inputs", tEnv.fromDataStream(env.fromData(rows, Types.ROW_NAMED(
                new String[] {"id", "prompt", "options"}, Types.INT, Types.STRING, Types.STRING))));
        Map<Integer, Row> byId = collectById("SELECT id, LLM_GENERATE(prompt, options) FROM inputs");

        assertThat(byId).hasSize(10);
        assertThat(byId.get(0)).isEqualTo(Row.of(0, reference(SPEC, "Once upon a time", SamplingParams.greedy(4)).text()));
        for (int id = 1; id <= 8; id++) {
            assertThat(byId.get(id)).as("row %d", id).isEqualTo(Row.of(id, null));
        }
        assertThat(byId.get(9)).isEqualTo(Row.of(9, reference(SPEC, "The cat sat", SamplingParams.greedy(6)).text()));
        // rows 1-6 count as errors (a NULL argument is SQL's NULL, not an error); rows 0 and 9 reach the engine
        assertThat(REPORTED.sum(lastJob, "errorsTotal")).isEqualTo(6);
        assertThat(REPORTED.sum(lastJob, "errors.PROMPT_TOO_LONG")).isEqualTo(1);
        assertThat(REPORTED.sum(lastJob, "requests")).isEqualTo(2);
    }

    @Test
    void registeredByClassNameTheEngineComesFromJobParameters() throws Exception {
        tEnv.getConfig().addJobParameter("xpuflow.model-path", MODEL_PATH);
        tEnv.getConfig().addJobParameter("xpuflow.threads", "1");
        tEnv.getConfig().addJobParameter("xpuflow.kv-cache-memory", "16mb");
        tEnv.getConfig().addJobParameter("xpuflow.max-model-len", "64");
        tEnv.getConfig().addJobParameter("xpuflow.max-tokens", "7");
        tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION LLM_GENERATE AS '" + LlmGenerateFunction.class.getName() + "'");
        Map<Integer, Row> byId = collectById("SELECT id, LLM_GENERATE(prompt) FROM prompts");

        for (int i = 0; i < PROMPTS.size(); i++) {
            assertThat(byId.get(i)).isEqualTo(Row.of(i, reference(SPEC, PROMPTS.get(i), SamplingParams.greedy(7)).text()));
        }
    }

    @Test
    void withoutAModelTheJobFailsNamingTheJobParameter() {
        tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION LLM_GENERATE AS '" + LlmGenerateFunction.class.getName() + "'");
        assertThatThrownBy(() -> runIntoBlackhole("SELECT id, LLM_GENERATE(prompt) FROM prompts"))
                .satisfies(e -> assertThat(messages(e)).contains("LLM_GENERATE needs a model: set the job parameter"
                        + " 'xpuflow.model-path'"));

        tEnv.getConfig().addJobParameter("xpuflow.model-path", MODEL_PATH);
        tEnv.getConfig().addJobParameter("xpuflow.temperature", "warm");
        assertThatThrownBy(() -> runIntoBlackhole("SELECT id, LLM_GENERATE(prompt) FROM prompts"))
                .satisfies(e -> assertThat(messages(e)).contains("Invalid value for job parameter 'xpuflow.temperature'"));
    }

    /**
     * Runs a query that is expected to fail into a blackhole sink. Not into the collect sink: when a job
     * fails while its tasks start, Flink 2.3 may cancel the collect sink before it opened, its close then
     * throws a NullPointerException in the task's failure handler, and that fatal error takes the
     * MiniCluster's only TaskManager down with it (every later test of the class would hang).
     */
    private void runIntoBlackhole(String query) throws Exception {
        tEnv.executeSql("CREATE TEMPORARY TABLE IF NOT EXISTS discard (id INT, completion STRING)"
                + " WITH ('connector' = 'blackhole')");
        tEnv.executeSql("INSERT INTO discard " + query).await();
    }
}
