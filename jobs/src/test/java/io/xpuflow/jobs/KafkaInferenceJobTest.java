package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.DataOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.ApplicationID;
import org.apache.flink.core.execution.DefaultExecutorServiceLoader;
import org.apache.flink.client.program.StreamContextEnvironment;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.core.execution.RecoveryClaimMode;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
            KafkaInferenceJob.commandLine(job).parseArgs("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", "in",
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
    void weightFormatAndKvCacheDtypeReachTheEngineSpec() {
        String[] common = {"--bootstrap-servers", "localhost:9092", "--input-topic", "in", "--output-topic", "out",
                "--model", "/models/m"};
        KafkaInferenceJob job = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(job).parseArgs(common);
        assertThat(job.engineSpec().weightFormat()).isNull(); // auto: chosen from the checkpoint on the TaskManager
        assertThat(job.engineSpec().kvCacheDtype()).isNull();
        assertThat(job.engineSpec().logStatsInterval()).isEqualTo(Duration.ofSeconds(10));

        job = new KafkaInferenceJob();
        List<String> args = new ArrayList<>(List.of(common));
        args.addAll(List.of("--weight-format", "bf16", "--kv-cache-dtype", "F32", "--log-stats-interval", "0"));
        KafkaInferenceJob.commandLine(job).parseArgs(args.toArray(String[]::new));
        assertThat(job.engineSpec()).isEqualTo(EngineSpec.of("/models/m").withThreads(0).withWeightFormat(WeightFormat.BF16)
                .withKvCacheDtype(KvCacheDtype.F32).withLogStatsInterval(Duration.ZERO));

        List<String> bad = new ArrayList<>(List.of(common));
        bad.addAll(List.of("--weight-format", "q4"));
        assertThatThrownBy(() -> KafkaInferenceJob.commandLine(new KafkaInferenceJob()).parseArgs(bad.toArray(String[]::new)))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("Invalid value for option '--weight-format'")
                .hasMessageContaining("'--weight-format' must be one of auto, exact, bf16, int8, was q4");
    }

    /** Runs the job with the common arguments and {@code args} on a local environment of parallelism 1, to its end. */
    private static void runBounded(EmbeddedKafka kafka, String run, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic",
                run + "-in", "--output-topic", run + "-out", "--dead-letter-topic", run + "-dlq", "--model",
                Fixtures.model("stories260k").toString(), "--checkpoint-interval", "200ms", "--bounded", "--threads", "1",
                "--kv-cache-memory", "32", "--consumer-group", run, "--transactional-id-prefix", run));
        all.addAll(List.of(args));
        KafkaInferenceJob job = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(job).parseArgs(all.toArray(String[]::new));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
        job.configure(env);
        env.execute(run);
    }

    @Test
    void orderedKeepsTheInputOrderTimeoutsBecomeErrorRecordsAndLatestSkipsTheBacklog() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            // the longest generation first: finished in arrival order only because of --ordered
            List<Map.Entry<String, String>> records = new ArrayList<>();
            int[] maxTokens = {48, 32, 16, 8, 4, 1};
            for (int i = 0; i < maxTokens.length; i++) {
                records.add(Map.entry("k" + i, "{\"id\":\"o-" + i + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":"
                        + maxTokens[i] + ",\"ignore_eos\":true}"));
            }
            JobTopics.create(kafka, "ordered", 1, records);
            runBounded(kafka, "ordered", "--ordered");
            assertThat(kafka.readAllCommitted("ordered-out", Duration.ofSeconds(30)))
                    .extracting(r -> new ObjectMapper().readTree(r.value()).get("id").asText())
                    .containsExactly("o-0", "o-1", "o-2", "o-3", "o-4", "o-5");

            List<Map.Entry<String, String>> long400 = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                long400.add(Map.entry("k" + i, "{\"id\":\"s-" + i + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":400,"
                        + "\"ignore_eos\":true}"));
            }
            JobTopics.create(kafka, "slow", 1, long400);
            runBounded(kafka, "slow", "--timeout", "1ms", "--timeout-policy", "emit-error");
            // 400 tokens cannot finish within 1 ms; only a task thread starved for longer than the whole
            // generation (a heavily loaded machine) lets a result beat its timer. Either way every id
            // comes out exactly once, and what timed out is a TIMEOUT error record.
            List<String> finished = new ArrayList<>();
            for (var r : kafka.readAllCommitted("slow-out", Duration.ofSeconds(30))) {
                finished.add(new ObjectMapper().readTree(r.value()).get("id").asText());
            }
            List<String> timedOut = new ArrayList<>();
            for (var r : kafka.readAllCommitted("slow-dlq", Duration.ofSeconds(30))) {
                JsonNode error = new ObjectMapper().readTree(r.value());
                assertThat(error.at("/error/code").asText()).isEqualTo("TIMEOUT");
                timedOut.add(error.at("/id").asText());
            }
            assertThat(timedOut).isNotEmpty();
            List<String> all = new ArrayList<>(finished);
            all.addAll(timedOut);
            assertThat(all).containsExactlyInAnyOrder("s-0", "s-1", "s-2");

            JobTopics.create(kafka, "late", 1, records);
            runBounded(kafka, "late", "--starting-offsets", "LATEST"); // bounded at the latest offsets: nothing to do
            assertThat(kafka.readAllCommitted("late-out", Duration.ofSeconds(30))).isEmpty();
            assertThat(kafka.readAllCommitted("late-dlq", Duration.ofSeconds(30))).isEmpty();
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
        KafkaInferenceJob.commandLine(job).parseArgs("--bootstrap-servers", "localhost:9092", "--input-topic", "in", "--output-topic",
                "out", "--model", "/m", "--delivery-guarantee", "at-least-once");
        assertThat(job.pipeline().deliveryGuarantee()).isEqualTo(DeliveryGuarantee.AT_LEAST_ONCE);
    }

    /** A checkpoint's {@code _metadata} as Flink writes it (no operator state), last modified at {@code millis}. */
    private static void checkpoint(Path dir, long id, long millis) throws Exception {
        Files.createDirectories(dir);
        try (DataOutputStream out = new DataOutputStream(Files.newOutputStream(dir.resolve("_metadata")))) {
            Checkpoints.storeCheckpointMetadata(new CheckpointMetadata(id, List.of(), List.of()), out);
        }
        Files.setLastModifiedTime(dir.resolve("_metadata"), FileTime.fromMillis(millis));
    }

    @Test
    void theLatestCheckpointIsTheNewestReadableMetadataInAnyJobsDirectory(@TempDir Path dir) throws Exception {
        String uri = KafkaInferenceJob.uri(dir.toString());
        assertThat(KafkaInferenceJob.latestCheckpoint(uri)).isEmpty();
        assertThat(KafkaInferenceJob.latestCheckpoint(KafkaInferenceJob.uri(dir.resolve("absent").toString()))).isEmpty();
        checkpoint(dir.resolve("job-a/chk-7"), 7, 1_000_000);
        checkpoint(dir.resolve("job-b/chk-3"), 3, 2_000_000); // a later run that started afresh: newer, lower number
        Files.createDirectories(dir.resolve("job-b/chk-4"));   // in progress when the job died: no _metadata
        Files.createDirectories(dir.resolve("job-b/shared"));
        assertThat(KafkaInferenceJob.latestCheckpoint(uri)).hasValueSatisfying(p -> assertThat(p).endsWith("job-b/chk-3"));
        // metadata cut short is skipped for the next newest
        Files.createDirectories(dir.resolve("job-b/chk-5"));
        Files.write(dir.resolve("job-b/chk-5/_metadata"), new byte[] {1, 2, 3});
        Files.setLastModifiedTime(dir.resolve("job-b/chk-5/_metadata"), FileTime.fromMillis(3_000_000));
        assertThat(KafkaInferenceJob.latestCheckpoint(uri)).hasValueSatisfying(p -> assertThat(p).endsWith("job-b/chk-3"));
    }

    @Test
    void aCheckpointDirIsRetainedAndResumedInClaimModeAnExplicitRestoreIsNotClaimed(@TempDir Path dir) throws Exception {
        String[] common = {"--bootstrap-servers", "localhost:9092", "--input-topic", "in", "--output-topic", "out", "--model",
                "/m"};
        KafkaInferenceJob fresh = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(fresh).parseArgs(concat(common, "--checkpoint-dir", dir.toString()));
        Configuration c = fresh.flinkSettings();
        assertThat(c.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY)).isEqualTo(dir.toUri().toString());
        assertThat(c.get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION))
                .isEqualTo(ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        assertThat(c.getOptional(StateRecoveryOptions.SAVEPOINT_PATH)).isEmpty();

        checkpoint(dir.resolve("job/chk-2"), 2, System.currentTimeMillis());
        KafkaInferenceJob again = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(again).parseArgs(concat(common, "--checkpoint-dir", dir.toString()));
        c = again.flinkSettings();
        assertThat(c.get(StateRecoveryOptions.SAVEPOINT_PATH)).endsWith("job/chk-2");
        assertThat(c.get(StateRecoveryOptions.RESTORE_MODE)).isEqualTo(RecoveryClaimMode.CLAIM);

        KafkaInferenceJob explicit = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(explicit).parseArgs(concat(common, "--checkpoint-dir", dir.toString(), "--restore-from",
                "/savepoints/sp-1"));
        c = explicit.flinkSettings();
        assertThat(c.get(StateRecoveryOptions.SAVEPOINT_PATH)).isEqualTo("/savepoints/sp-1");
        assertThat(c.get(StateRecoveryOptions.RESTORE_MODE)).isEqualTo(RecoveryClaimMode.NO_CLAIM);
    }

    private static String[] concat(String[] a, String... b) {
        List<String> all = new ArrayList<>(List.of(a));
        all.addAll(List.of(b));
        return all.toArray(String[]::new);
    }

    private static final String[] COMMON = {"--bootstrap-servers", "localhost:9092", "--input-topic", "in",
            "--output-topic", "out", "--model", "/m"};

    /** The job of {@code COMMON} and {@code args}, its pipeline added to the environment it chose, not executed. */
    private static StreamExecutionEnvironment built(String... args) throws Exception {
        KafkaInferenceJob job = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(job).parseArgs(concat(COMMON, args));
        StreamExecutionEnvironment env = job.environment(job.flinkSettings());
        job.configure(env);
        return env;
    }

    /**
     * Runs {@code test} with this JVM's execution environment set up as {@code flink run} sets it (Flink's own
     * {@link StreamContextEnvironment}) over a cluster configuration of {@code cluster}.
     */
    private static void underFlinkRun(Configuration cluster, ThrowingRunnable test) throws Exception {
        StreamContextEnvironment.setAsContext(new DefaultExecutorServiceLoader(), cluster,
                KafkaInferenceJobTest.class.getClassLoader(), 1, 1, true, new ApplicationID(), null, List.of());
        try {
            test.run();
        } finally {
            StreamContextEnvironment.unsetAsContext();
        }
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void aLocalRunDefaultsToParallelismOneAndTenSecondCheckpointsFlagsWin() throws Exception {
        StreamExecutionEnvironment env = built();
        assertThat(env).isInstanceOf(LocalStreamEnvironment.class);
        assertThat(env.getParallelism()).isEqualTo(1);
        assertThat(env.getCheckpointInterval()).isEqualTo(10_000);
        assertThat(env.getCheckpointingConsistencyMode()).isEqualTo(CheckpointingMode.EXACTLY_ONCE);

        env = built("--parallelism", "3", "--checkpoint-interval", "2s");
        assertThat(env.getParallelism()).isEqualTo(3);
        assertThat(env.getCheckpointInterval()).isEqualTo(2_000);
    }

    @Test
    void underFlinkRunTheClustersParallelismAndIntervalAreKept() throws Exception {
        Configuration cluster = new Configuration();
        cluster.set(CoreOptions.DEFAULT_PARALLELISM, 3); // what flink run -p 3 sets, or the cluster's config.yaml
        cluster.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofSeconds(30));
        underFlinkRun(cluster, () -> {
            assertThat(KafkaInferenceJob.runByFlink()).isTrue();
            StreamExecutionEnvironment env = built();
            assertThat(env).isInstanceOf(StreamContextEnvironment.class);
            assertThat(env.getParallelism()).isEqualTo(3);
            assertThat(env.getCheckpointInterval()).isEqualTo(30_000);
            assertThat(env.getCheckpointingConsistencyMode()).isEqualTo(CheckpointingMode.EXACTLY_ONCE);

            env = built("--parallelism", "2", "--checkpoint-interval", "5s"); // the job's flags win
            assertThat(env.getParallelism()).isEqualTo(2);
            assertThat(env.getCheckpointInterval()).isEqualTo(5_000);
        });
        assertThat(KafkaInferenceJob.runByFlink()).isFalse();
    }

    @Test
    void underFlinkRunWithoutAnIntervalTheJobCheckpointsEveryTenSeconds() throws Exception {
        Configuration cluster = new Configuration();
        cluster.set(CoreOptions.DEFAULT_PARALLELISM, 4);
        underFlinkRun(cluster, () -> {
            StreamExecutionEnvironment env = built();
            assertThat(env.getParallelism()).isEqualTo(4);
            assertThat(env.getCheckpointInterval()).isEqualTo(10_000);
        });
    }

    @Test
    void exactlyOnceRefusesNoCheckpointsAndAtLeastOnceCheckpointModes() throws Exception {
        assertThatThrownBy(() -> built("--checkpoint-interval", "0")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("--checkpoint-interval 0 turns checkpoints off, but --delivery-guarantee"
                        + " exactly-once commits its Kafka transactions at checkpoints");
        StreamExecutionEnvironment env = built("--checkpoint-interval", "0", "--delivery-guarantee", "at-least-once");
        assertThat(env.getCheckpointConfig().isCheckpointingEnabled()).isFalse();

        Configuration cluster = new Configuration();
        cluster.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofSeconds(30));
        cluster.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.AT_LEAST_ONCE);
        underFlinkRun(cluster, () -> {
            assertThatThrownBy(() -> built()).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("--delivery-guarantee exactly-once needs EXACTLY_ONCE checkpoints, but Flink's"
                            + " execution.checkpointing.mode is AT_LEAST_ONCE. Set it to EXACTLY_ONCE, or choose"
                            + " --delivery-guarantee at-least-once.");
            assertThat(built("--delivery-guarantee", "at-least-once").getCheckpointInterval()).isEqualTo(30_000);
        });
    }

    /**
     * Under {@code flink run} (and in application mode, inside the JobManager) main must not end the JVM: a
     * usage error is an exception Flink reports. Were it to call System.exit, this test's JVM would end and the
     * run fail.
     */
    @Test
    void underFlinkRunMainThrowsUsageErrorsInsteadOfExiting() throws Exception {
        underFlinkRun(new Configuration(), () -> {
            assertThatThrownBy(() -> KafkaInferenceJob.main(new String[] {"--input-topic", "in"}))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("Missing required options")
                    .hasMessageContaining("Usage: kafka-inference-job");
            assertThatThrownBy(() -> KafkaInferenceJob.main(concat(COMMON, "--kv-cache-memory", "lots")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'--kv-cache-memory' must be a memory size such as 512mb, 4gb or 512");
            KafkaInferenceJob.main(new String[] {"--help"}); // prints the usage and returns
        });
    }

    @Test
    void sizesAndDurationsUseFlinksSyntax() throws Exception {
        KafkaInferenceJob job = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(job).parseArgs(concat(COMMON, "--kv-cache-memory", "4gb", "--timeout", "90 s",
                "--log-stats-interval", "1min", "--checkpoint-interval", "PT15S"));
        assertThat(job.engineSpec().kvCacheBytes()).isEqualTo(4L << 30);
        assertThat(job.timeout).isEqualTo(Duration.ofSeconds(90));
        assertThat(job.engineSpec().logStatsInterval()).isEqualTo(Duration.ofMinutes(1));
        assertThat(job.checkpointInterval).isEqualTo(Duration.ofSeconds(15));
        KafkaInferenceJob plain = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(plain).parseArgs(concat(COMMON, "--kv-cache-memory", "32"));
        assertThat(plain.engineSpec().kvCacheBytes()).isEqualTo(32L << 20); // a plain number stays MiB
        KafkaInferenceJob defaults = new KafkaInferenceJob();
        KafkaInferenceJob.commandLine(defaults).parseArgs(COMMON);
        assertThat(defaults.engineSpec().kvCacheBytes()).isEqualTo(512L << 20);
        assertThatThrownBy(() -> KafkaInferenceJob.commandLine(new KafkaInferenceJob())
                .parseArgs(concat(COMMON, "--timeout", "soon")))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("Invalid value for option '--timeout'")
                .hasMessageContaining("'soon' is not a duration such as 500ms, 10s, 5min, 1h or PT10S");
    }
}
