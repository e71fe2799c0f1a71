package io.xpuflow.connector.sql;

import static io.xpuflow.connector.sql.SqlTestSupport.MODEL_OPTIONS;
import static io.xpuflow.connector.sql.SqlTestSupport.PROMPTS;
import static io.xpuflow.connector.sql.SqlTestSupport.SPEC;
import static io.xpuflow.connector.sql.SqlTestSupport.TOO_LONG;
import static io.xpuflow.connector.sql.SqlTestSupport.reference;
import static org.apache.flink.table.api.DataTypes.FIELD;
import static org.apache.flink.table.api.DataTypes.INT;
import static org.apache.flink.table.api.DataTypes.ROW;
import static org.apache.flink.table.api.DataTypes.STRING;
import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.testutil.ReportedMetrics;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@code CREATE MODEL ... 'provider' = 'xpuflow'} and {@code ML_PREDICT} on a MiniCluster with the real model. */
class MlPredictTest {
    static final ReportedMetrics REPORTED = new ReportedMetrics();

    @RegisterExtension
    static final MiniClusterExtension MINI = REPORTED.miniCluster(2);

    StreamTableEnvironment tEnv;
    JobID lastJob;

    @BeforeEach
    void setUp() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        tEnv = StreamTableEnvironment.create(env);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            rows.add(Row.of(i, PROMPTS.get(i)));
        }
        rows.add(Row.of(100, TOO_LONG));
        rows.add(Row.of(101, null));
        tEnv.createTemporaryView("prompts", tEnv.fromValues(ROW(FIELD("id", INT()), FIELD("prompt", STRING())), rows));
    }

    private Map<Integer, Row> collectById(String sql) throws Exception {
        Map<Integer, Row> byId = new HashMap<>();
        TableResult result = tEnv.executeSql(sql);
        lastJob = result.getJobClient().orElseThrow().getJobID();
        // the iterator ends with the (bounded) job
        result.collect().forEachRemaining(r -> byId.put(r.<Integer>getFieldAs("id"), r));
        return byId;
    }

    @Test
    void asyncPredictGivesTheEnginesOwnGreedyOutputAndErrorRowsForBadPrompts() throws Exception {
        tEnv.executeSql("CREATE MODEL story INPUT (prompt STRING)"
                + " OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT, error STRING)"
                + " WITH (" + MODEL_OPTIONS + ", 'max-tokens' = '12')");
        Map<Integer, Row> byId = collectById("SELECT id, completion, finish_reason, prompt_tokens, completion_tokens, error"
                + " FROM ML_PREDICT(TABLE prompts, MODEL story, DESCRIPTOR(prompt),"
                + " MAP['async', 'true', 'max-concurrent-operations', '8'])");

        assertThat(byId).hasSize(PROMPTS.size() + 2);
        for (int i = 0; i < PROMPTS.size(); i++) {
            GenerationResult expected = reference(SPEC, PROMPTS.get(i), SamplingParams.greedy(12));
            assertThat(expected.text()).isNotEmpty();
            assertThat(byId.get(i)).isEqualTo(Row.of(i, expected.text(), expected.finishReason().wireName(),
                    expected.usage().promptTokens(), expected.usage().completionTokens(), null));
        }
        Row tooLong = byId.get(100);
        assertThat(tooLong.getField("completion")).isNull();
        assertThat(tooLong.getField("finish_reason")).isEqualTo("error: PROMPT_TOO_LONG");
        assertThat(tooLong.<String>getFieldAs("error")).contains("max model length of 64");
        assertThat(tooLong.getField("prompt_tokens")).isNull();
        Row nullPrompt = byId.get(101);
        assertThat(nullPrompt.getField("completion")).isNull();
        assertThat(nullPrompt.getField("finish_reason")).isEqualTo("error: MISSING_FIELD");
        assertThat(nullPrompt.getField("error")).isEqualTo("the prompt is NULL");

        // the same metrics as the DataStream operator's, summed over the ML_PREDICT subtasks
        long outputTokens = byId.values().stream().filter(r -> r.getField("completion_tokens") != null)
                .mapToLong(r -> r.<Integer>getFieldAs("completion_tokens")).sum();
        assertThat(REPORTED.sum(lastJob, "requests")).isEqualTo(PROMPTS.size());
        assertThat(REPORTED.sum(lastJob, "outputTokens")).isEqualTo(outputTokens);
        assertThat(REPORTED.sum(lastJob, "timeToFirstTokenUs")).isEqualTo(PROMPTS.size());
        assertThat(REPORTED.sum(lastJob, "errors.PROMPT_TOO_LONG")).isEqualTo(1);
        assertThat(REPORTED.sum(lastJob, "errors.MISSING_FIELD")).isEqualTo(1);
        assertThat(REPORTED.sum(lastJob, "errorsTotal")).isEqualTo(2);

        assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isZero(); // every subtask released it
    }

    @Test
    void syncPredictWithSamplingDefaultsReproducesTheEngineUnderThePromptsRequestId() throws Exception {
        // temperature > 0 and no seed: each row is seeded from its request id, a hash of the prompt, so the
        // engine given the same id samples the same tokens
        tEnv.executeSql("CREATE MODEL sampled INPUT (prompt STRING) OUTPUT (text STRING)"
                + " WITH (" + MODEL_OPTIONS + ", 'max-tokens' = '10', 'temperature' = '0.9', 'top-k' = '20')");
        Map<Integer, Row> byId = collectById("SELECT id, text FROM ML_PREDICT(TABLE prompts, MODEL sampled,"
                + " DESCRIPTOR(prompt), MAP['async', 'false'])");

        SamplingParams sampling = SamplingParams.builder().maxTokens(10).temperature(0.9).topK(20).build();
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertThat(byId.get(i)).isEqualTo(Row.of(i, reference(SPEC, PROMPTS.get(i), sampling).text()));
        }
        assertThat(byId.get(100)).isEqualTo(Row.of(100, null)); // without error columns only the NULL tells
        assertThat(byId.get(101)).isEqualTo(Row.of(101, null));
    }
}
