package io.xpuflow.jobs;

import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.function.Consumer;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Runs a {@link KafkaInferencePipeline} in a local Flink MiniCluster ({@link LocalFlink}: bound to
 * loopback only) against an embedded broker and hands every committed output record to a callback as
 * it becomes visible (read_committed), for the demo and the pipeline benchmark.
 */
public final class LocalPipelineRun {
    private LocalPipelineRun() {}

    /**
     * Executes the pipeline and, on the calling thread, follows {@code topics} until {@code expected}
     * records arrived or the job ended and {@code drain} passed. Then a bounded job is waited for (a failure
     * surfaces here) and an unbounded one, which would run forever, is cancelled.
     *
     * @return the records seen
     */
    public static int run(EmbeddedKafka kafka, KafkaInferencePipeline pipeline, int parallelism, Duration checkpointInterval,
                          List<String> topics, int expected, Duration drain, Consumer<ConsumerRecord<byte[], byte[]>> onRecord)
            throws Exception {
        StreamExecutionEnvironment env = LocalFlink.environment(parallelism, new Configuration());
        env.enableCheckpointing(checkpointInterval.toMillis(), CheckpointingMode.EXACTLY_ONCE);
        pipeline.addTo(env);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(EmbeddedKafka.MAX_RECORD_BYTES));
        int seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (String topic : topics) {
                consumer.partitionsFor(topic).forEach(pi -> partitions.add(new TopicPartition(topic, pi.partition())));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            JobClient job = env.executeAsync("xpuflow local pipeline");
            long endedAt = 0;
            while (seen < expected) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    onRecord.accept(r);
                    seen++;
                }
                if (endedAt == 0 && job.getJobStatus().get().isGloballyTerminalState()) {
                    endedAt = System.nanoTime();
                    job.getJobExecutionResult().get(); // surfaces a failed job
                }
                if (endedAt != 0 && System.nanoTime() - endedAt > drain.toNanos()) {
                    break;
                }
            }
            if (!job.getJobStatus().get().isGloballyTerminalState()) {
                if (pipeline.source().getBoundedness() == Boundedness.CONTINUOUS_UNBOUNDED) {
                    job.cancel().get(); // a streaming job never ends by itself; what it wrote is committed already
                } else {
                    job.getJobExecutionResult().get();
                }
            }
        }
        return seen;
    }
}
