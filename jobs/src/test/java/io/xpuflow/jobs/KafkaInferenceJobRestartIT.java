package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A crash as it happens to a local job: {@code bin/xpuflow-job} (the README's command, a JVM of its own
 * with a local Flink inside) killed with SIGKILL twice while it serves sampled prompts, and started again
 * each time by the same command. With {@code --checkpoint-dir} the next start resumes from the latest
 * completed checkpoint, and a {@code read_committed} reader sees every prompt answered exactly once, with
 * the text the engine gives it without any failure (sampling is seeded from the request id).
 *
 * <p>An integration test: it runs {@code jobs/target/xpuflow-cli.jar}, so after {@code package}.
 */
class KafkaInferenceJobRestartIT {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaInferenceJobRestartIT.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path STORIES = Fixtures.model("stories260k").toAbsolutePath();
    private static final Path LAUNCHER = Path.of("..", "bin", "xpuflow-job").toAbsolutePath().normalize();
    private static final int PROMPTS = 300;
    /** Prompts in the input topic when the job starts; the rest follow at {@link #PROMPTS_PER_SECOND}. */
    private static final int FIRST_PROMPTS = 60;
    private static final int PROMPTS_PER_SECOND = 8;
    private static final int MAX_TOKENS = 128;
    private static final String[] STARTS = {"Once upon a time", "Lily and Tom went to the park", "The little dog",
            "Ben had a red ball"};

    private final List<Process> jobs = new ArrayList<>();
    private final List<Thread> feeders = new ArrayList<>();

    /** What a run gave: outputs committed when each kill happened, and in the end. */
    record Figures(int prompts, List<Integer> committedAtKills, int records, int distinct, int duplicates, int lost,
                   Map<String, String> textById) {}

    @AfterEach
    void stopJobs() throws InterruptedException {
        for (Thread t : feeders) {
            t.interrupt();
            t.join(10_000);
        }
        for (Process p : jobs) {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void killedTwiceAndStartedAgainByTheSameCommandEveryPromptIsAnsweredOnceWithTheTextOfAFailureFreeRun(
            @TempDir Path work) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            Figures f = run(kafka, work, "restart", List.of("--checkpoint-dir", work.resolve("checkpoints").toString()));
            assertThat(f.duplicates()).as("duplicates").isZero();
            assertThat(f.lost()).as("lost").isZero();
            assertThat(f.records()).isEqualTo(PROMPTS);
            assertThat(f.committedAtKills()).allSatisfy(c -> assertThat(c).isBetween(1, PROMPTS - 1));
            Map<String, String> solo = soloTexts();
            assertThat(f.textById()).containsExactlyInAnyOrderEntriesOf(solo);
            assertThat(kafka.readAllCommitted("restart-dlq", Duration.ofSeconds(30))).isEmpty();
        }
        // the second and third start resumed by themselves from a checkpoint of the run before
        assertThat(Files.readString(work.resolve("restart-1.log"))).contains("No completed checkpoint in");
        for (int start = 2; start <= 3; start++) {
            assertThat(Files.readString(work.resolve("restart-" + start + ".log")))
                    .contains("Resuming from the latest completed checkpoint").doesNotContain("Starting without state");
        }
    }

    /**
     * The same crash without state, for the figures the README quotes (run on demand with
     * {@code -Dxpuflow.restart.compare=true}): committed offsets with this default {@code max.poll.records},
     * and with Kafka's 500 as before; and a restore with Kafka's 500. Only the warning and the restore are checked:
     * what is lost or repeated without state depends on timing.
     */
    @Test
    @EnabledIfSystemProperty(named = "xpuflow.restart.compare", matches = "true")
    @Timeout(value = 15, unit = TimeUnit.MINUTES)
    void withoutStateOrWithKafkasDefaultPollSizeForTheFigures(@TempDir Path work) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            Figures committed = run(kafka, work, "committed", List.of());
            Figures before = run(kafka, work, "poll500", List.of("--consumer-property", "max.poll.records=500"));
            // and with state but Kafka's 500: restoring does not depend on the group's offsets
            Figures restored = run(kafka, work, "restored500", List.of("--consumer-property", "max.poll.records=500",
                    "--checkpoint-dir", work.resolve("checkpoints").toString()));
            LOG.info("without state: {}", summary(committed));
            LOG.info("without state, max.poll.records=500: {}", summary(before));
            LOG.info("with --checkpoint-dir, max.poll.records=500: {}", summary(restored));
            assertThat(restored.duplicates() + restored.lost()).isZero();
        }
        assertThat(Files.readString(work.resolve("committed-2.log"))).contains("WARN")
                .contains("Starting without state from the committed offsets of consumer group 'committed'");
    }

    private static String summary(Figures f) {
        return "prompts " + f.prompts() + ", kills " + f.committedAtKills().size() + ", committed at each kill "
                + f.committedAtKills() + ", records " + f.records() + ", duplicates " + f.duplicates() + ", lost " + f.lost();
    }

    /**
     * Produces the prompts to {@code <name>-in} (a fifth at once, the rest over half a minute), starts the
     * job, kills it with SIGKILL once a quarter of the
     * prompts is answered and again once another sixth of outputs is committed after the first kill, starts it
     * again each time with the same command,
     * and reads the output until every prompt is answered or nothing more comes for 30 s.
     */
    private Figures run(EmbeddedKafka kafka, Path work, String name, List<String> extraArgs) throws Exception {
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < PROMPTS; i++) {
            records.add(Map.entry("k" + i, "{\"id\":\"" + name + "-" + i + "\",\"prompt\":\"" + STARTS[i % STARTS.length]
                    + "\",\"max_tokens\":" + MAX_TOKENS + ",\"ignore_eos\":true}"));
        }
        // the prompts arrive over about half a minute, as a stream would: the job is paced by its input, so
        // both kills land half way however fast the engine is (all at once, stories260k answers 300
        // prompts within a few seconds, before a restarted JVM could be killed again)
        JobTopics.create(kafka, name, 2, records.subList(0, FIRST_PROMPTS));
        Thread feeder = new Thread(() -> {
            try {
                for (int i = FIRST_PROMPTS; i < PROMPTS; i += PROMPTS_PER_SECOND) {
                    Thread.sleep(1000);
                    kafka.produceStrings(name + "-in", records.subList(i, Math.min(PROMPTS, i + PROMPTS_PER_SECOND)));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt(); // the test is over
            } catch (IllegalStateException e) {
                if (!Thread.currentThread().isInterrupted()) {
                    throw e;
                }
            }
        }, name + "-feeder");
        feeder.setDaemon(true);
        feeder.start();
        feeders.add(feeder);
        List<String> command = new ArrayList<>(List.of(LAUNCHER.toString(), "--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", name + "-in", "--output-topic", name + "-out", "--dead-letter-topic", name + "-dlq",
                "--model", STORIES.toString(), "--consumer-group", name, "--transactional-id-prefix", name,
                "--starting-offsets", "committed", "--checkpoint-interval", "500ms", "--temperature", "0.8",
                "--threads", "1", "--kv-cache-memory", "32"));
        command.addAll(extraArgs);
        String out = name + "-out";

        List<Integer> committedAtKills = new ArrayList<>();
        int start = 1;
        for (int kill = 1; kill <= 2; kill++, start++) {
            Process job = start(work, name + "-" + start, command);
            // the second kill once the second start has added outputs of its own (not during its start-up)
            int target = kill == 1 ? PROMPTS / 4 : Math.min(committedAtKills.get(0) + PROMPTS / 6, PROMPTS - 40);
            awaitCommitted(kafka, out, target, job, work.resolve(name + "-" + start + ".log"));
            job.destroyForcibly(); // SIGKILL: the launcher execs java, so this is the JVM of the job itself
            assertThat(job.waitFor(30, TimeUnit.SECONDS)).isTrue();
            int committed = kafka.readAllCommitted(out, Duration.ofSeconds(30)).size();
            LOG.info("{}: killed start {} with {} outputs committed, group offsets {}", name, start, committed,
                    kafka.committedOffsets(name));
            committedAtKills.add(committed);
        }
        Process last = start(work, name + "-" + start, command);
        awaitQuiet(kafka, out, last, work.resolve(name + "-" + start + ".log"));
        Thread.sleep(3000); // a few more checkpoints: anything written twice would be committed by now

        List<ConsumerRecord<byte[], byte[]>> all = kafka.readAllCommitted(out, Duration.ofSeconds(30));
        Map<String, String> textById = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : all) {
            JsonNode n = JSON.readTree(r.value());
            textById.put(n.get("id").asText(), n.get("text").asText());
        }
        last.destroy();
        assertThat(last.waitFor(60, TimeUnit.SECONDS)).isTrue();
        keepLogs(work, name);
        Figures f = new Figures(PROMPTS, committedAtKills, all.size(), textById.size(), all.size() - textById.size(),
                PROMPTS - textById.size(), textById);
        LOG.info("{}: {}", name, summary(f));
        return f;
    }

    /** {@code bin/xpuflow-job} with {@code command}'s arguments, output to {@code work/<name>.log}. */
    private Process start(Path work, String name, List<String> command) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(work.toFile()).redirectErrorStream(true)
                .redirectOutput(work.resolve(name + ".log").toFile());
        // this JVM's JavaCPP settings (its cache in the module's target/, not the shared ~/.javacpp) and the JDK
        pb.environment().put("XPUFLOW_JAVA_OPTS", ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("-Dorg.bytedeco")).collect(Collectors.joining(" ")) + " -Xmx1g");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        jobs.add(p);
        return p;
    }

    /** Keeps the job logs of a run in {@code target/restart-it/} for a look after the test (its work dir goes). */
    private static void keepLogs(Path work, String name) throws IOException {
        Path kept = Files.createDirectories(Path.of("target", "restart-it"));
        try (var files = Files.list(work)) {
            for (Path f : files.filter(f -> f.getFileName().toString().startsWith(name + "-")).toList()) {
                Files.copy(f, kept.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    /** Waits until {@code topic} holds {@code count} committed records. */
    private static void awaitCommitted(EmbeddedKafka kafka, String topic, int count, Process job, Path log) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (kafka.readAllCommitted(topic, Duration.ofSeconds(30)).size() < count) {
            assertThat(job.isAlive()).as("job running; %s", tail(log)).isTrue();
            assertThat(System.nanoTime()).as("%d outputs within 3 minutes; %s", count, tail(log)).isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    /** Waits until every prompt has an output, or nothing new was committed for 30 s. */
    private static void awaitQuiet(EmbeddedKafka kafka, String topic, Process job, Path log) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(4).toNanos();
        int seen = -1;
        long changed = System.nanoTime();
        while (System.nanoTime() < deadline) {
            List<ConsumerRecord<byte[], byte[]>> all = kafka.readAllCommitted(topic, Duration.ofSeconds(30));
            long distinct = all.stream().map(r -> id(r.value())).distinct().count();
            if (distinct == PROMPTS) {
                return;
            }
            if (all.size() != seen) {
                seen = all.size();
                changed = System.nanoTime();
            } else if (System.nanoTime() - changed > Duration.ofSeconds(30).toNanos()) {
                return;
            }
            assertThat(job.isAlive()).as("job running; %s", tail(log)).isTrue();
            Thread.sleep(500);
        }
    }

    private static String id(byte[] result) {
        try {
            return JSON.readTree(result).get("id").asText();
        } catch (IOException e) {
            throw new IllegalStateException("not JSON: " + new String(result, StandardCharsets.UTF_8), e);
        }
    }

    /** The text the engine generates for each prompt on its own, without any failure. */
    private static Map<String, String> soloTexts() {
        Map<String, String> out = new HashMap<>();
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(EngineSpec.of(STORIES.toString()).withThreads(1).toOptions())) {
            List<GenerationHandle> handles = new ArrayList<>();
            for (int i = 0; i < PROMPTS; i++) {
                handles.add(lease.engine().submit(GenerationRequest.ofText("restart-" + i, STARTS[i % STARTS.length],
                        SamplingParams.builder().maxTokens(MAX_TOKENS).ignoreEos(true).temperature(0.8).build())));
            }
            for (GenerationHandle h : handles) {
                var r = h.result().join();
                out.put(r.id(), r.text());
            }
        }
        return out;
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return "\n==> " + log.getFileName() + " <==\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 40),
                    lines.size()));
        } catch (IOException e) {
            return "(" + log + " unreadable: " + e.getMessage() + ")";
        }
    }
}
