package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URL;
import java.net.URLClassLoader;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code flink run} of {@code xpuflow-job.jar} on a standalone session cluster: a JobManager and a
 * TaskManager in JVMs of their own whose class path holds Flink and nothing of ours, the job submitted by
 * Flink's own command-line client, the natives loaded on the TaskManager from the job jar by Flink's
 * user-code class loader — the set-up of a real deployment, which the MiniCluster tests (one JVM, one
 * class loader) do not reach. The two set-ups the README describes: the jar only in the job (a job that
 * ends, then two at once, each with its own class loader, natives and engine), and the jar in the
 * cluster's class path with parent-first class loading (two jobs at once sharing one engine). And a
 * failure as it happens in production: the TaskManager killed with SIGKILL in the middle of a job.
 *
 * <p>An integration test: it needs the shaded jar, so it runs after {@code package} ({@code mvn verify}).
 */
class StandaloneClusterIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path STORIES = Fixtures.model("stories260k").toAbsolutePath();
    private static final Duration STARTUP = Duration.ofMinutes(2);
    /** What LlmEngine logs once when it opens ("Engine on DIR: max model length 512, ..."). */
    private static final String ENGINE_OPENED = ": max model length ";

    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stopCluster() throws InterruptedException {
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void inTheJobJarEachJobLoadsTheNativesInItsOwnClassLoaderAndHasItsOwnEngine(@TempDir Path work) throws Exception {
        String classpath = flinkOnlyClasspath();
        // the cluster's checkpoint interval, which the first job (no --checkpoint-interval) keeps
        startCluster(work, classpath, List.of("execution.checkpointing.interval: 300ms"));
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            // a bounded job that ends (its class loader is released), then two streaming jobs at once; the
            // first takes its parallelism from flink run -p 2 and its interval from the cluster, not from flags
            Process first = submit(work, classpath, kafka, "first", 2, true, true);
            assertThat(first.waitFor(3, TimeUnit.MINUTES)).as("flink run of the first job finished").isTrue();
            assertThat(first.exitValue()).as("flink run exit code; %s", logs(work)).isZero();
            checkOutputs(kafka, "first");
            assertThat(Files.readString(work.resolve("client-first.log")))
                    .contains("Checkpointing every 300 ms (execution.checkpointing.interval of Flink's configuration)");
            runTwoStreamingJobsAtOnce(work, classpath, kafka);

            // a usage error is an exception flink run reports (the client's main is Flink's, not ours)
            Process bad = start(work, "client-bad", classpath, List.of(), "org.apache.flink.client.cli.CliFrontend",
                    "run", "-c", KafkaInferenceJob.class.getName(), jobJar().toString(), "--input-topic", "in");
            assertThat(bad.waitFor(3, TimeUnit.MINUTES)).as("flink run of a bad command line returned").isTrue();
            assertThat(bad.exitValue()).isNotZero();
            assertThat(Files.readString(work.resolve("client-bad.log")))
                    .contains("The program finished with the following exception")
                    .contains("Missing required options").contains("Usage: kafka-inference-job");
        }
        // the first job's two subtasks (flink run -p 2) shared one engine; the two later jobs, each in its own
        // class loader with its own copy of the natives (JavaCPP extracts them per job jar), had one engine each
        String taskManagerLog = Files.readString(work.resolve("taskmanager.log"));
        assertThat(count(taskManagerLog, "uses the shared engine for")).isEqualTo(4);
        assertThat(count(taskManagerLog, ENGINE_OPENED)).isEqualTo(3);
    }

    @Test
    void inTheClustersLibTheNativesLoadOnceAndConcurrentJobsShareOneEngine(@TempDir Path work) throws Exception {
        // the README's set-up for several jobs per TaskManager: the jar in lib/ (here: on the class path of
        // both processes) and parent-first class loading, so that the copies in the submitted jar are not used
        // (parent-first for our packages alone is not enough: the Kafka connector, parent-first as part of
        // org.apache.flink, and the Kafka client classes in serialized job state must come from one loader)
        String classpath = flinkOnlyClasspath() + File.pathSeparator + jobJar();
        startCluster(work, classpath, List.of("classloader.resolve-order: parent-first"));
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            runTwoStreamingJobsAtOnce(work, classpath, kafka);
        }
        String taskManagerLog = Files.readString(work.resolve("taskmanager.log"));
        assertThat(count(taskManagerLog, "uses the shared engine for")).isEqualTo(2);
        assertThat(count(taskManagerLog, ENGINE_OPENED)).as("one engine for both jobs").isEqualTo(1);
    }

    @Test
    void aTaskManagerKilledMidJobIsReplacedAndEveryPromptIsAnsweredOnceAsWithoutTheFailure(@TempDir Path work)
            throws Exception {
        String classpath = flinkOnlyClasspath();
        // a lost TaskManager noticed within seconds, and restarts of the job until a new one is there
        Process taskManager = startCluster(work, classpath, List.of("heartbeat.interval: 500", "heartbeat.timeout: 4000",
                "restart-strategy.type: fixed-delay", "restart-strategy.fixed-delay.attempts: 100",
                "restart-strategy.fixed-delay.delay: 1 s"));
        int prompts = 40;
        String[] starts = {"Once upon a time", "Lily and Tom went to the park", "The little dog", "Ben had a red ball"};
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < prompts; i++) {
            // sampled, no seed: a replay must draw the same tokens from the seed derived from the id
            records.add(Map.entry("k" + i, "{\"id\":\"crash-" + i + "\",\"prompt\":\"" + starts[i % starts.length]
                    + "\",\"max_tokens\":96,\"ignore_eos\":true,\"temperature\":0.8}"));
        }
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            // prompts keep arriving, as in a stream: the job is busy when the TaskManager dies however fast
            // the engine is, and half of them come only after the kill (at most 20 before it)
            JobTopics.create(kafka, "crash", 2, records.subList(0, 8));
            CountDownLatch killed = new CountDownLatch(1);
            Thread feeder = new Thread(() -> {
                try {
                    for (int i = 8; i < prompts; i++) {
                        if (i == prompts / 2) {
                            killed.await();
                        }
                        Thread.sleep(300);
                        kafka.produceStrings("crash-in", records.subList(i, i + 1));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "crash-feeder");
            feeder.setDaemon(true);
            feeder.start();
            // two requests in flight at a time, so that the job is still busy when the TaskManager dies
            Process client = submit(work, classpath, kafka, "crash", 1, true, List.of("--async-capacity", "2"));
            assertThat(client.waitFor(3, TimeUnit.MINUTES)).as("flink run -d returned").isTrue();
            assertThat(kafka.readCommitted("crash-out", 4, Duration.ofMinutes(2))).as("first results committed").hasSizeGreaterThanOrEqualTo(4);

            taskManager.destroyForcibly(); // SIGKILL: no shutdown hook, open transactions and requests in flight are lost
            assertThat(taskManager.waitFor(30, TimeUnit.SECONDS)).isTrue();
            int committedAtKill = kafka.readAllCommitted("crash-out", Duration.ofSeconds(30)).size();
            killed.countDown();
            assertThat(committedAtKill).as("the job was killed half way").isLessThan(prompts);
            startTaskManager(work, classpath, "taskmanager-2");

            List<ConsumerRecord<byte[], byte[]>> out = kafka.readCommitted("crash-out", prompts, Duration.ofMinutes(3));
            assertThat(out).as("%s", logs(work)).hasSize(prompts);
            Thread.sleep(1500); // a few more checkpoints: anything duplicated would be committed by now
            out = kafka.readAllCommitted("crash-out", Duration.ofSeconds(30));
            Map<String, String> textById = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : out) {
                JsonNode n = JSON.readTree(r.value());
                assertThat(textById.put(n.get("id").asText(), n.get("text").asText())).as("duplicate %s", n.get("id")).isNull();
            }
            assertThat(textById).hasSize(prompts);
            // the same text as the engine generates for each request on its own, without any failure
            try (EngineRegistry.Lease lease = EngineRegistry.acquire(EngineSpec.of(STORIES.toString()).withThreads(1)
                    .toOptions())) {
                for (int i = 0; i < prompts; i++) {
                    GenerationResult solo = lease.engine().submit(GenerationRequest.ofText("crash-" + i,
                            starts[i % starts.length], SamplingParams.builder().maxTokens(96).ignoreEos(true)
                                    .temperature(0.8).build())).result().join();
                    assertThat(textById.get("crash-" + i)).as("crash-%d", i).isEqualTo(solo.text());
                }
            }
            assertThat(kafka.readAllCommitted("crash-dlq", Duration.ofSeconds(30))).isEmpty();
        }
        // the job really failed over: restarted, and served the rest from the new TaskManager
        assertThat(Files.readString(work.resolve("jobmanager.log"))).contains("switched from state RUNNING to RESTARTING");
        assertThat(Files.readString(work.resolve("taskmanager-2.log"))).contains("uses the shared engine for");
    }

    /** Jobs "left" and "right", one slot each, submitted detached; they serve until the cluster stops. */
    private void runTwoStreamingJobsAtOnce(Path work, String classpath, EmbeddedKafka kafka) throws Exception {
        List<Process> clients = List.of(submit(work, classpath, kafka, "left", 1, false),
                submit(work, classpath, kafka, "right", 1, false));
        for (Process client : clients) {
            assertThat(client.waitFor(3, TimeUnit.MINUTES)).as("flink run -d returned").isTrue();
            assertThat(client.exitValue()).as("flink run exit code; %s", logs(work)).isZero();
        }
        checkOutputs(kafka, "left");
        checkOutputs(kafka, "right");
    }

    private static Path jobJar() {
        Path jobJar = Path.of("target", "xpuflow-job.jar").toAbsolutePath();
        assertThat(jobJar).as("built by 'mvn package'").isRegularFile();
        return jobJar;
    }

    /** A JobManager and a TaskManager of two slots, each in its own JVM with {@code classpath}; returns the TaskManager. */
    private Process startCluster(Path work, String classpath, List<String> extraConfig) throws Exception {
        Path conf = Files.createDirectories(work.resolve("conf"));
        int restPort = freePort();
        List<String> config = new ArrayList<>(List.of(
                "jobmanager.rpc.address: localhost",
                "jobmanager.rpc.port: " + freePort(),
                "jobmanager.bind-host: localhost",
                "jobmanager.memory.process.size: 1g",
                "rest.address: localhost",
                "rest.bind-address: localhost",
                "rest.port: " + restPort,
                "taskmanager.host: localhost",
                "taskmanager.bind-host: localhost",
                "taskmanager.numberOfTaskSlots: 2",
                // what Flink's start scripts compute and pass to a TaskManager they launch
                "taskmanager.cpu.cores: 2",
                "taskmanager.memory.task.heap.size: 512m",
                "taskmanager.memory.task.off-heap.size: 0m",
                "taskmanager.memory.network.min: 64m",
                "taskmanager.memory.network.max: 64m",
                "taskmanager.memory.managed.size: 64m",
                "taskmanager.memory.framework.heap.size: 128m",
                "taskmanager.memory.framework.off-heap.size: 128m",
                "taskmanager.memory.jvm-metaspace.size: 256m",
                "taskmanager.memory.jvm-overhead.min: 192m",
                "taskmanager.memory.jvm-overhead.max: 192m",
                "parallelism.default: 1"));
        config.addAll(extraConfig);
        Files.writeString(conf.resolve("config.yaml"), String.join("\n", config) + "\n", StandardCharsets.UTF_8);
        processes.add(start(work, "jobmanager", classpath, List.of(),
                "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint", "--configDir", conf.toString()));
        Process taskManager = startTaskManager(work, classpath, "taskmanager");
        awaitTaskManager(restPort, work);
        return taskManager;
    }

    private Process startTaskManager(Path work, String classpath, String name) throws IOException {
        Process p = start(work, name, classpath, List.of("-Xmx1g"), "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                "--configDir", work.resolve("conf").toString());
        processes.add(p);
        return p;
    }

    /**
     * Produces six prompts and a bad record to {@code <run>-in} and submits the job with Flink's client:
     * attached and bounded (the client returns when the job is done), or detached and streaming.
     */
    private Process submit(Path work, String classpath, EmbeddedKafka kafka, String run, int parallelism,
                           boolean attachedAndBounded) throws Exception {
        return submit(work, classpath, kafka, run, parallelism, attachedAndBounded, false);
    }

    /**
     * As above; {@code flinkSettings}: the parallelism as {@code flink run -p} and no {@code --parallelism} or
     * {@code --checkpoint-interval} on the job's command line (the cluster's interval applies).
     */
    private Process submit(Path work, String classpath, EmbeddedKafka kafka, String run, int parallelism,
                           boolean attachedAndBounded, boolean flinkSettings) throws Exception {
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            records.add(Map.entry("k" + i, "{\"id\":\"" + run + "-" + i + "\",\"prompt\":\"Once upon a time " + i + "\"}"));
        }
        records.add(Map.entry("bad", "{\"id\":\"" + run + "-bad\",\"prompt\":\"x\",\"temperature\":-1}"));
        JobTopics.create(kafka, run, 2, records);
        List<String> extra = new ArrayList<>(List.of("--max-tokens", "8"));
        if (attachedAndBounded) {
            extra.add("--bounded");
        }
        if (flinkSettings) {
            return submit(work, classpath, kafka, run, List.of("-p", Integer.toString(parallelism)), !attachedAndBounded, extra);
        }
        return submit(work, classpath, kafka, run, parallelism, !attachedAndBounded, extra);
    }

    /** {@code flink run [-d] -c KafkaInferenceJob xpuflow-job.jar} over the topics of {@code run}, and {@code extraArgs}. */
    private Process submit(Path work, String classpath, EmbeddedKafka kafka, String run, int parallelism, boolean detached,
                           List<String> extraArgs) throws Exception {
        List<String> jobArgs = new ArrayList<>(List.of("--parallelism", Integer.toString(parallelism),
                "--checkpoint-interval", "300ms"));
        jobArgs.addAll(extraArgs);
        return submit(work, classpath, kafka, run, List.of(), detached, jobArgs);
    }

    /** {@code flink run RUN_OPTIONS [-d] -c KafkaInferenceJob xpuflow-job.jar} over the topics of {@code run}, and {@code extraArgs}. */
    private Process submit(Path work, String classpath, EmbeddedKafka kafka, String run, List<String> runOptions,
                           boolean detached, List<String> extraArgs) throws Exception {
        List<String> args = new ArrayList<>(List.of("run"));
        args.addAll(runOptions);
        if (detached) {
            args.add("-d");
        }
        args.addAll(List.of("-c", KafkaInferenceJob.class.getName(), jobJar().toString(),
                "--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", run + "-in", "--output-topic", run + "-out",
                "--dead-letter-topic", run + "-dlq", "--model", STORIES.toString(), "--threads", "1",
                "--kv-cache-memory", "32mb", "--consumer-group", run, "--transactional-id-prefix", run));
        args.addAll(extraArgs);
        Process client = start(work, "client-" + run, classpath, List.of(), "org.apache.flink.client.cli.CliFrontend",
                args.toArray(String[]::new));
        processes.add(client);
        return client;
    }

    /** Six completions of eight tokens and one dead letter, committed. */
    private static void checkOutputs(EmbeddedKafka kafka, String run) throws IOException {
        List<ConsumerRecord<byte[], byte[]>> out = kafka.readCommitted(run + "-out", 6, Duration.ofMinutes(1));
        assertThat(out).hasSize(6);
        for (ConsumerRecord<byte[], byte[]> r : out) {
            JsonNode n = JSON.readTree(r.value());
            assertThat(n.get("id").asText()).startsWith(run + "-");
            assertThat(n.at("/usage/completion_tokens").asInt()).isEqualTo(8);
            assertThat(n.get("text").asText()).isNotBlank();
        }
        JsonNode error = JSON.readTree(kafka.readCommitted(run + "-dlq", 1, Duration.ofMinutes(1)).get(0).value());
        assertThat(error.at("/error/code").asText()).isEqualTo("INVALID_PARAM");
    }

    private static long count(String log, String text) {
        return log.lines().filter(l -> l.contains(text)).count();
    }

    private static URL toUrl(Path p) {
        try {
            return p.toUri().toURL();
        } catch (java.net.MalformedURLException e) {
            throw new IllegalArgumentException(p.toString(), e);
        }
    }

    /**
     * This JVM's class path less everything of ours and what the job jar brings: what a Flink distribution's
     * {@code lib/} holds, more or less (Flink's modules and their dependencies, a logging backend).
     */
    private static String flinkOnlyClasspath() {
        // by directory in the local repository, by file name for the reactor's own jars (failsafe puts
        // target/*.jar, not target/classes, on the class path)
        List<String> ours = List.of("/io/xpuflow/", "/org/bytedeco/", "/org/apache/kafka/", "/flink-connector-kafka/",
                "/com/hubspot/", "/info/picocli/", "/org/junit/", "/org/assertj/", "/target/classes", "/target/test-classes",
                "/xpuflow-", "/javacpp-", "/kafka-", "/kafka_");
        String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(entry -> ours.stream().noneMatch(entry.replace(File.separatorChar, '/')::contains))
                .collect(Collectors.joining(File.pathSeparator));
        try (URLClassLoader cluster = new URLClassLoader(Arrays.stream(classpath.split(File.pathSeparator))
                .map(e -> toUrl(Path.of(e))).toArray(URL[]::new), ClassLoader.getPlatformClassLoader())) {
            assertThat(cluster.loadClass("org.apache.flink.runtime.taskexecutor.TaskManagerRunner")).isNotNull();
            assertThatThrownBy(() -> cluster.loadClass(KafkaInferenceJob.class.getName()))
                    .as("the cluster's class path must not hold our code").isInstanceOf(ClassNotFoundException.class);
            assertThatThrownBy(() -> cluster.loadClass("org.bytedeco.javacpp.Loader")).isInstanceOf(ClassNotFoundException.class);
        } catch (IOException | ClassNotFoundException e) {
            throw new IllegalStateException("cannot check the cluster's class path", e);
        }
        return classpath;
    }

    private Process start(Path work, String name, String classpath, List<String> jvmOptions, String mainClass,
                          String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        // what a Flink distribution's config.yaml puts in env.java.opts.all for Java 17
        for (String pkg : List.of("java.util", "java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio",
                "sun.nio.ch", "java.text", "java.time", "java.util.concurrent", "java.util.concurrent.atomic",
                "java.util.concurrent.locks")) {
            command.add("--add-opens=java.base/" + pkg + "=ALL-UNNAMED");
        }
        for (String pkg : List.of("sun.net.util", "sun.nio.ch", "sun.net.www")) {
            command.add("--add-exports=java.base/" + pkg + "=ALL-UNNAMED");
        }
        // the JavaCPP settings this JVM runs with (see the README's TaskManager settings)
        ManagementFactory.getRuntimeMXBean().getInputArguments().stream().filter(a -> a.startsWith("-Dorg.bytedeco"))
                .forEach(command::add);
        command.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
        command.addAll(List.of("-cp", classpath, mainClass));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).directory(work.toFile()).redirectErrorStream(true)
                .redirectOutput(work.resolve(name + ".log").toFile());
        pb.environment().put("FLINK_CONF_DIR", work.resolve("conf").toString());
        return pb.start();
    }

    /** Waits until the TaskManager is registered (and no cluster process died). */
    private void awaitTaskManager(int restPort, Path work) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + STARTUP.toNanos();
        while (System.nanoTime() < deadline) {
            for (Process p : processes) {
                assertThat(p.isAlive()).as("cluster process died; %s", logs(work)).isTrue();
            }
            try {
                String body = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + restPort + "/taskmanagers"))
                        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
                if (JSON.readTree(body).path("taskmanagers").size() == 1) {
                    return;
                }
            } catch (IOException notYet) {
                // the REST endpoint is not up yet
            }
            Thread.sleep(500);
        }
        throw new AssertionError("no TaskManager registered within " + STARTUP + "; " + logs(work));
    }

    /** The tail of every process log, for a failure message. */
    private static String logs(Path work) {
        StringBuilder sb = new StringBuilder();
        try (var files = Files.list(work)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".log")).sorted().toList()) {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                sb.append("\n==> ").append(f.getFileName()).append(" <==\n")
                        .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size())));
            }
        } catch (IOException e) {
            sb.append("(logs unreadable: ").append(e.getMessage()).append(')');
        }
        return sb.toString();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
