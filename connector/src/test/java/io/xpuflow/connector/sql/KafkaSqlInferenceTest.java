package io.xpuflow.connector.sql;

import io.xpuflow.connector.kafka.EmbeddedKafka;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import static io.xpuflow.connector.sql.SqlTestSupport.MODEL_PATH;
import static io.xpuflow.connector.sql.SqlTestSupport.EXAMPLE_SCRIPT;
import static io.xpuflow.connector.sql.SqlTestSupport.assertExampleOutputs;
import static io.xpuflow.connector.sql.SqlTestSupport.byId;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * (d) {@code ML_PREDICT} and {@code LLM_GENERATE} over Kafka SQL tables with exactly-once sinks, on a real
 * in-process broker: runs the example script {@code examples/src/main/sql/kafka-ml-predict.sql} as it is,
 * with only the broker address, the model directory and the checkpoint interval replaced, and checks with
 * a {@code read_committed} consumer that every prompt has exactly one completion, equal to the engine's own.
 */
class KafkaSqlInferenceTest {
    static final ObjectMapper JSON = new ObjectMapper();
    /** {@code SET 'key' = 'value'}: a SQL client command, not a statement {@code executeSql} takes. */
    static final Pattern SET = Pattern.compile("SET\\s+'([^']+)'\\s*=\\s*'([^']*)'", Pattern.CASE_INSENSITIVE);

    @RegisterExtension
    static final MiniClusterExtension MINI = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());

    static final java.time.Duration READ_TIMEOUT = java.time.Duration.ofMinutes(2);
    static EmbeddedKafka broker;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = EmbeddedKafka.start();
    }

    @AfterAll
    static void stopBroker() throws Exception {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void exampleScriptServesEveryPromptExactlyOnceThroughMlPredictAndLlmGenerate() throws Exception {
        List<String> prompts = new ArrayList<>(SqlTestSupport.PROMPTS);
        prompts.addAll(List.of("Ben found a shiny", "The little fish swam", "Mom said it was time", "A big tree"));
        broker.createTopic("prompts", 2);
        broker.createTopic("completions", 1);
        broker.createTopic("stories", 1);
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            records.add(Map.entry("p" + i, JSON.createObjectNode().put("id", "p" + i).put("prompt", prompts.get(i)).toString()));
        }
        broker.produceStrings("prompts", records);

        String script = Files.readString(EXAMPLE_SCRIPT)
                .replace("localhost:9092", broker.bootstrapServers())
                .replace("/opt/xpuflow/models/stories260k", MODEL_PATH)
                .replace("'execution.checkpointing.interval' = '10s'", "'execution.checkpointing.interval' = '500ms'");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(env);
        TableResult last = null;
        for (String statement : statements(script)) {
            Matcher set = SET.matcher(statement);
            if (set.matches()) {
                tEnv.getConfig().set(set.group(1), set.group(2)); // what the SQL client does with SET
            } else {
                last = tEnv.executeSql(statement);
            }
        }
        assertThat(last).isNotNull();
        last.await(); // the statement set's job: bounded source, final checkpoint commits the transactions

        Map<String, JsonNode> completions = byId(broker.readCommitted("completions", prompts.size(), READ_TIMEOUT));
        Map<String, JsonNode> stories = byId(broker.readCommitted("stories", prompts.size(), READ_TIMEOUT));
        assertExampleOutputs(prompts, completions, stories);
    }


    /**
     * The statements of a SQL script: split at a {@code ;} ending a line, except inside
     * {@code EXECUTE STATEMENT SET BEGIN ... END;}; {@code --} comments dropped (the script has no
     * {@code --} inside string literals).
     */
    static List<String> statements(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean inSet = false;
        for (String line : script.split("\n")) {
            int comment = line.indexOf("--");
            String code = (comment >= 0 ? line.substring(0, comment) : line).stripTrailing();
            if (code.isBlank()) {
                continue;
            }
            current.append(code).append('\n');
            if (code.strip().equalsIgnoreCase("EXECUTE STATEMENT SET")) {
                inSet = true;
            }
            if (inSet ? code.strip().equalsIgnoreCase("END;") : code.endsWith(";")) {
                String statement = current.toString().strip();
                out.add(statement.substring(0, statement.length() - 1));
                current.setLength(0);
                inSet = false;
            }
        }
        assertThat(current.toString()).as("text after the last statement").isBlank();
        return out;
    }
}
