package io.xpuflow.connector.kafka;

import static io.xpuflow.connector.kafka.PipelineTests.bytes;
import static io.xpuflow.connector.kafka.PipelineTests.json;
import static io.xpuflow.connector.kafka.PipelineTests.text;
import static io.xpuflow.connector.kafka.PipelineTests.withoutTimings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A task failure after a completed checkpoint, while outputs sit in an open Kafka transaction: after
 * the restart, a {@code read_committed} reader sees every request exactly once, byte-identical (less
 * timings) to a run without failure, although the requests are sampled (temperature > 0) without a
 * seed: the seed comes from the request id, so a replayed request regenerates the same text.
 *
 * <p>The failure is placed without timing assumptions: the job first serves the early half of the
 * input and reads on (its stopping offsets lie beyond); the test waits for a completed checkpoint and
 * only then writes the late half; once 20 late outputs went through, the next checkpoint of a subtask
 * that wrote some of them fails, so its transaction, with records in it, is aborted and the job
 * restarts from the previous checkpoint.
 */
@ExtendWith(EmbeddedKafkaExtension.class)
class ExactlyOnceRecoveryTest {
    @RegisterExtension
    static final MiniClusterExtension MINI = PipelineTests.miniCluster();

    private static final Logger LOG = LoggerFactory.getLogger(ExactlyOnceRecoveryTest.class);

    static final Duration WAIT = Duration.ofMinutes(2);
    static final int REQUESTS = 160;
    static final int FAIL_AFTER_LATE_OUTPUTS = 20;

    static final CountDownLatch CHECKPOINT_COMPLETED = new CountDownLatch(1);
    static final AtomicInteger LATE_OUTPUTS = new AtomicInteger();
    static final AtomicBoolean FAILED = new AtomicBoolean();

    /**
     * Passes outputs through and fails once, in the snapshot of a checkpoint, when late outputs have
     * been written since the last one: the sink has flushed them into the checkpoint's transaction
     * just before (Flink flushes the writer before the barrier, before any operator's snapshot), so
     * the aborted transaction really holds records, which read_committed readers must not see.
     */
    static final class FailOnceAfterCheckpoint implements MapFunction<OutputRecord, OutputRecord>, CheckpointedFunction,
            CheckpointListener {
        private transient int lateSinceSnapshot;

        @Override
        public OutputRecord map(OutputRecord r) {
            if (r.requestId().startsWith("late-")) {
                LATE_OUTPUTS.incrementAndGet();
                lateSinceSnapshot++;
            }
            return r;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) {
            if (lateSinceSnapshot > 0 && LATE_OUTPUTS.get() >= FAIL_AFTER_LATE_OUTPUTS && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure in checkpoint " + context.getCheckpointId() + " after "
                        + lateSinceSnapshot + " outputs went into its transaction");
            }
            lateSinceSnapshot = 0;
        }

        @Override
        public void initializeState(FunctionInitializationContext context) {}

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            CHECKPOINT_COMPLETED.countDown();
        }
    }

    static List<EmbeddedKafka.KeyValue> requests(String phase, int from, int to) {
        List<EmbeddedKafka.KeyValue> out = new ArrayList<>();
        for (int i = from; i < to; i++) {
            // sampled, no seed: the engine seeds each request from its id
            out.add(EmbeddedKafka.KeyValue.of("k-" + i, "{\"id\": \"" + phase + "-" + i + "\", \"prompt\": \"Once upon a time"
                    + (i % 7 == 0 ? "" : " there was a " + (i % 2 == 0 ? "cat" : "boy") + " " + i) + "\", \"max_tokens\": "
                    + (10 + i % 13) + ", \"temperature\": 0.9, \"top_p\": 0.95}"));
        }
        return out;
    }

    static List<EmbeddedKafka.KeyValue> allRequests() {
        List<EmbeddedKafka.KeyValue> all = new ArrayList<>(requests("early", 0, REQUESTS / 2));
        all.addAll(requests("late", REQUESTS / 2, REQUESTS));
        return all;
    }

    static KafkaInferencePipeline.Builder pipeline(EmbeddedKafka kafka, String name) {
        return KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                .inputTopic(name + "-in").outputTopic(name + "-out").consumerGroup(name).transactionalIdPrefix(name + "-tx")
                .engine(PipelineTests.SPEC).asyncCapacity(8).transactionTimeout(Duration.ofMinutes(2));
    }

    @Test
    void aFailureAfterACheckpointLosesAndDuplicatesNothing(EmbeddedKafka kafka) throws Exception {
        // the reference: the same requests in a run without failure
        kafka.createTopic("ref-in", 2);
        kafka.createTopic("ref-out", 2);
        kafka.produce("ref-in", allRequests());
        StreamExecutionEnvironment refEnv = PipelineTests.env(300, new Configuration());
        pipeline(kafka, "ref").bounded(true).build(refEnv);
        refEnv.execute("reference");
        Map<String, byte[]> reference = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : kafka.readAllCommitted("ref-out", WAIT)) {
            reference.put(json(r.value()).get("id").asText(), r.value());
        }
        assertThat(reference).hasSize(REQUESTS);

        // the run with a failure: the job stops at offsets that only exist once the late half is written
        kafka.createTopic("rec-in", 2);
        kafka.createTopic("rec-out", 2);
        Map<TopicPartition, Long> stop = new HashMap<>(Map.of(new TopicPartition("rec-in", 0), 0L, new TopicPartition("rec-in", 1), 0L));
        for (EmbeddedKafka.KeyValue kv : allRequests()) {
            stop.merge(new TopicPartition("rec-in", BuiltInPartitioner.partitionForKey(kv.key(), 2)), 1L, Long::sum);
        }
        kafka.produce("rec-in", requests("early", 0, REQUESTS / 2));

        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
        StreamExecutionEnvironment env = PipelineTests.env(300, conf);
        // composed from the pipeline's public pieces, with the failure between inference and sink
        KafkaInferencePipeline p = pipeline(kafka, "rec").stoppingOffsets(OffsetsInitializer.offsets(stop)).build();
        p.generate(env.fromSource(p.source(), WatermarkStrategy.noWatermarks(), "kafka rec-in"))
                .map(new FailOnceAfterCheckpoint()).name("fail once")
                .sinkTo(p.sink());
        JobClient job = env.executeAsync("recovery");

        assertThat(CHECKPOINT_COMPLETED.await(2, TimeUnit.MINUTES)).as("a checkpoint completed").isTrue();
        kafka.produce("rec-in", requests("late", REQUESTS / 2, REQUESTS));
        job.getJobExecutionResult().get(3, TimeUnit.MINUTES);
        assertThat(FAILED).as("the failure was injected").isTrue();

        List<ConsumerRecord<byte[], byte[]>> committed = kafka.readAllCommitted("rec-out", WAIT);
        Map<String, byte[]> byId = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : committed) {
            String id = json(r.value()).get("id").asText();
            assertThat(byId.put(id, r.value())).as("second committed output of %s", id).isNull();
            assertThat(text(r.key())).isEqualTo("k-" + id.substring(id.indexOf('-') + 1));
        }
        assertThat(byId).hasSize(REQUESTS).containsOnlyKeys(reference.keySet());
        for (Map.Entry<String, byte[]> e : byId.entrySet()) {
            JsonNode got = withoutTimings(e.getValue());
            assertThat(got).as(e.getKey()).isEqualTo(withoutTimings(reference.get(e.getKey())));
        }
        // sampling did pick different continuations for different ids (not all greedy by accident)
        assertThat(byId.values().stream().map(v -> json(v).get("text").asText()).distinct().count()).isGreaterThan(REQUESTS / 2);
        // the aborted transaction held records: an uncommitted reader sees them, read_committed did not
        List<ConsumerRecord<byte[], byte[]>> uncommitted = kafka.readUncommitted("rec-out", REQUESTS + 1, WAIT);
        LOG.info("read_uncommitted sees at least {} records in rec-out, read_committed {}", uncommitted.size(), committed.size());
        assertThat(uncommitted).hasSizeGreaterThan(REQUESTS);
    }
}
