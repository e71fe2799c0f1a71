package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.runtime.testutil.Fixtures;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The job's documented arguments drive a real pipeline: broker in-process, Flink local. */
class KafkaInferenceJobTest {
    @Test
    void argumentsBuildAWorkingExactlyOncePipeline() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            kafka.createTopic("in", 2);
            kafka.createTopic("out", 1);
            kafka.createTopic("dlq", 1);
            List<Map.Entry<String, String>> records = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                records.add(Map.entry("k" + i, "{\"id\":\"r" + i + "\",\"prompt\":\"Once upon a time " + i + "\"}"));
            }
            records.add(Map.entry("bad", "{\"id\":\"bad\",\"prompt\":\"x\",\"max_tokens\":-1}"));
            kafka.produceStrings("in", records);

            KafkaInferenceJob job = new KafkaInferenceJob();
            new CommandLine(job).parseArgs("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", "in",
                    "--output-topic", "out", "--dead-letter-topic", "dlq", "--model", Fixtures.model("stories260k").toString(),
                    "--parallelism", "2", "--checkpoint-interval", "300ms", "--bounded", "--threads", "1",
                    "--kv-cache-memory", "32", "--max-tokens", "6", "--temperature", "0.7",
                    // client properties reach the source and the sink (harmless values: the broker is local)
                    "--kafka-property", "client.dns.lookup=use_all_dns_ips", "--consumer-property", "max.poll.records=7",
                    "--producer-property", "linger.ms=1", "--delivery-guarantee", "exactly-once");
            assertThat(job.kafkaProperties).containsEntry("client.dns.lookup", "use_all_dns_ips");
            assertThat(job.consumerProperties).containsEntry("max.poll.records", "7");
            assertThat(job.producerProperties).containsEntry("linger.ms", "1");
            assertThat(job.pipeline().deliveryGuarantee()).isEqualTo(DeliveryGuarantee.EXACTLY_ONCE);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2);
            job.configure(env);
            env.execute("test");

            ObjectMapper json = new ObjectMapper();
            Map<String, JsonNode> results = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : kafka.readCommitted("out", 10, Duration.ofSeconds(30))) {
                JsonNode n = json.readTree(r.value());
                results.put(n.get("id").asText(), n);
            }
            assertThat(results).hasSize(10);
            assertThat(results.values()).allSatisfy(n -> assertThat(n.at("/usage/completion_tokens").asInt()).isEqualTo(6));
            List<ConsumerRecord<byte[], byte[]>> errors = kafka.readCommitted("dlq", 1, Duration.ofSeconds(30));
            assertThat(json.readTree(errors.get(0).value()).at("/error/code").asText()).isEqualTo("INVALID_PARAM");
        }
    }

    @Test
    void deliveryGuaranteesAreFlinksNames() {
        KafkaInferenceJob.GuaranteeConverter c = new KafkaInferenceJob.GuaranteeConverter();
        assertThat(c.convert("at-least-once")).isEqualTo(DeliveryGuarantee.AT_LEAST_ONCE);
        assertThat(c.convert("NONE")).isEqualTo(DeliveryGuarantee.NONE);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> c.convert("twice"))
                .hasMessage("'twice' is not a delivery guarantee: exactly-once, at-least-once or none");
        KafkaInferenceJob job = new KafkaInferenceJob();
        new CommandLine(job).parseArgs("--bootstrap-servers", "localhost:9092", "--input-topic", "in", "--output-topic",
                "out", "--model", "/m", "--delivery-guarantee", "at-least-once");
        assertThat(job.pipeline().deliveryGuarantee()).isEqualTo(DeliveryGuarantee.AT_LEAST_ONCE);
    }

    @Test
    void durationsAcceptUnitsAndIso() {
        KafkaInferenceJob.DurationConverter c = new KafkaInferenceJob.DurationConverter();
        assertThat(c.convert("500ms")).isEqualTo(Duration.ofMillis(500));
        assertThat(c.convert("10s")).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.convert("5m")).isEqualTo(Duration.ofMinutes(5));
        assertThat(c.convert("PT2S")).isEqualTo(Duration.ofSeconds(2));
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> c.convert("soon"))
                .hasMessageContaining("'soon' is not a duration");
    }
}
