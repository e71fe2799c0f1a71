package io.xpuflow.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.device.Devices;
import io.xpuflow.jobs.LocalFlink;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.runtime.execution.ExecutionState;
import org.apache.flink.runtime.executiongraph.AccessExecutionGraph;
import org.apache.flink.runtime.executiongraph.AccessExecutionVertex;
import org.apache.flink.runtime.jobmaster.JobResult;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow demo}: the whole path on one machine, narrated as it happens. An embedded Kafka broker,
 * the bundled stories260k model, a local Flink job (Kafka source → LLM async operator → exactly-once Kafka
 * sink) with Flink's web UI on loopback, and a handful of prompts produced one per checkpoint interval;
 * each completion is printed as soon as the checkpoint that commits it completes (a {@code read_committed}
 * consumer), then a summary. With {@code --keep-running} broker and job stay up for one's own prompts
 * until Ctrl-C.
 */
@Command(name = "demo", description = {
        "Embedded Kafka + a local Flink job on the bundled model, narrated: broker, model, job and Flink's web UI"
                + " as they come up, then prompts produced one per checkpoint interval and each completion printed"
                + " as the checkpoint that commits it completes (exactly once, read_committed), then a summary.",
        "--keep-running keeps broker and job up for your own prompts (xpuflow produce) until Ctrl-C."})
final class DemoCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> PROMPTS = List.of(
            "Once upon a time, there was a little dog named",
            "Lily and Ben went to the park. They saw",
            "The sun was shining and the birds were",
            "Tom had a red ball. One day,",
            "A little girl found a box in the garden. Inside the box",
            "The cat wanted to play with the fish, but");
    static final String BROKEN = "{\"id\": \"broken\", \"prompt\": ";
    static final String INPUT = "prompts";
    static final String OUTPUT = "completions";
    static final String ERRORS = "prompt-errors";

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    FormatOptions formats = new FormatOptions();

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR", description = "Checkpoint directory (default: the bundled models/stories260k).")
    Path model;

    @Option(names = "--max-tokens", defaultValue = "48", paramLabel = "N", description = "Tokens per completion (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", paramLabel = "T", description = "Sampling temperature (default ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--checkpoint-interval", defaultValue = "1s", paramLabel = "DURATION",
            converter = FlinkSyntax.DurationConverter.class,
            description = "Checkpoint interval of the job, so how often completions are committed and become visible;"
                    + " the demo's prompts are produced one per interval (default ${DEFAULT-VALUE}).")
    Duration checkpointInterval;

    @Option(names = "--web-port", defaultValue = "0", paramLabel = "PORT",
            description = "Port of Flink's web UI and REST API, on 127.0.0.1 only (default: a free port; the URL is printed).")
    int webPort;

    @Option(names = "--keep-running", description = "After the demo's prompts keep broker and job running for your own"
            + " prompts (the command to send one is printed) until Ctrl-C or SIGTERM.")
    boolean keepRunning;

    @Option(names = "--no-progress", description = "No elapsed-time line while the broker starts (on a terminal).")
    boolean noProgress;

    private PrintWriter out;
    private long startNanos;
    /** Counted down by Ctrl-C or SIGTERM: the demo stops, closing job, Flink and broker. */
    private final CountDownLatch stop = new CountDownLatch(1);
    /** Counted down when call() has closed everything: the fallback shutdown hook waits for it. */
    private final CountDownLatch closed = new CountDownLatch(1);

    /** Exit code of a demo stopped before it answered its prompts (as a shell reports SIGINT). */
    static final int INTERRUPTED = 130;

    @Override
    public Integer call() throws Exception {
        if (webPort < 0 || webPort > 65535) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--web-port must be 0 to 65535, was " + webPort);
        }
        if (checkpointInterval.isZero() || checkpointInterval.isNegative()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--checkpoint-interval must be positive: exactly-once output is committed at checkpoints");
        }
        Path dir = model != null ? model : bundledModel();
        out = spec.commandLine().getOut();
        startNanos = System.nanoTime();
        // Ctrl-C and SIGTERM are taken over while the demo runs: a JVM shutdown would run Kafka's test kit's own
        // hook, which deletes the broker's directories under the running broker (which then halts the JVM with
        // a screen of errors), so the demo closes job, Flink and broker first and then exits normally. A signal
        // during a step that blocks (the broker's start, the model's load) takes effect when the step is done.
        List<Runnable> restore = onSignals(List.of("INT", "TERM"), stop::countDown);
        // any other way out of the JVM (SIGHUP, System.exit elsewhere): stop all the same, as far as it gets
        Thread hook = new Thread(() -> {
            stop.countDown();
            try {
                closed.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "xpuflow-demo-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            int code = run(dir);
            if (stopping()) {
                phase("Stopped: job cancelled, Flink and the broker closed");
            }
            return code;
        } finally {
            restore.forEach(Runnable::run);
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs already and waits for the close
            }
            closed.countDown();
        }
    }

    private boolean stopping() {
        return stop.getCount() == 0;
    }

    /** Says that the demo stops now; returns {@link #INTERRUPTED}. */
    private int interrupted() {
        out.println(); // after the terminal's "^C"
        phase("Stopping: cancelling the job, then closing Flink and the broker ...");
        return INTERRUPTED;
    }

    private int run(Path dir) throws Exception {
        EmbeddedKafka kafka;
        phase("Starting an embedded Kafka broker ...");
        // on a terminal a line counting the seconds while the broker starts; elsewhere the phase lines say enough
        Progress.Mode mode = Progress.Mode.forStdout(noProgress) == Progress.Mode.TERMINAL ? Progress.Mode.TERMINAL
                : Progress.Mode.OFF;
        try (Progress p = Progress.elapsed(out, mode, "Starting the broker")) {
            kafka = EmbeddedBroker.start(common.verbose == CliLogging.Verbosity.ALL);
        }
        try (kafka) {
            kafka.createTopic(INPUT, 1);
            kafka.createTopic(OUTPUT, 1);
            kafka.createTopic(ERRORS, 1);
            phase("Broker ready at %s (topics %s, %s, %s)", kafka.bootstrapServers(), INPUT, OUTPUT, ERRORS);
            if (stopping()) {
                return interrupted();
            }

            EngineSpec engineSpec = formats.applyTo(EngineSpec.of(dir.toString()).withThreads(common.threads)
                    .withKvCacheBytes(64L << 20));
            phase("Loading the model from %s ...", dir);
            // the job's operator leases the engine of the same options from the same JVM-wide registry, so this
            // load is the one the job serves with; held until the job is gone
            try (EngineRegistry.Lease lease = EngineRegistry.acquire(engineSpec.toOptions())) {
                LlmEngine engine = lease.engine();
                LoadedModel.Placement p = engine.placement();
                phase("Model loaded: %s (%s), %s weights (%s checkpoint, %s), KV cache %s, %s kernels, in %d ms",
                        modelName(dir), engine.config().architecture(), p.weightFormat().optionValue(), p.storedDtype(),
                        InitRandomCommand.bytes(p.weightBytes()), p.kvCacheDtype().optionValue(), Devices.cpuIsa(),
                        p.loadNanos() / 1_000_000);
                return stopping() ? interrupted() : runJob(kafka, engineSpec, dir);
            }
        }
    }

    private int runJob(EmbeddedKafka kafka, EngineSpec engineSpec, Path dir) throws Exception {
        KafkaInferencePipeline pipeline = KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                .inputTopic(INPUT).outputTopic(OUTPUT).deadLetterTopic(ERRORS).consumerGroup("xpuflow-demo")
                .engine(engineSpec)
                .samplingDefaults(SamplingDefaults.of(SamplingParams.builder().maxTokens(maxTokens)
                        .temperature(temperature).build()))
                .build();
        StreamExecutionEnvironment env = LocalFlink.environment(1, new Configuration());
        env.enableCheckpointing(checkpointInterval.toMillis(), CheckpointingMode.EXACTLY_ONCE);
        pipeline.addTo(env);
        StreamGraph graph = env.getStreamGraph();
        graph.setJobName("xpuflow demo: " + INPUT + " -> " + modelName(dir) + " -> " + OUTPUT);

        phase("Starting a local Flink cluster (in this process, on 127.0.0.1) ...");
        try (MiniCluster flink = LocalFlink.startCluster(1, webPort, new Configuration());
             KafkaProducer<String, String> producer = producer(kafka.bootstrapServers());
             KafkaConsumer<byte[], byte[]> consumer = committedReader(kafka.bootstrapServers())) {
            String webUi = stripSlash(flink.getRestAddress().get().toString()) + "/";
            phase("Flink web UI: %s", webUi);
            phase("Submitting the job ...");
            JobID job = flink.submitJob(graph.getJobGraph(DemoCommand.class.getClassLoader(), new JobID())).get().getJobID();
            awaitRunning(flink, job);
            if (stopping()) {
                int code = interrupted();
                flink.cancelJob(job).get();
                return code;
            }
            phase("Job running: %s (%s -> LLM -> %s, errors -> %s; exactly once, a checkpoint every %s)", job, INPUT,
                    OUTPUT, ERRORS, interval());

            List<Map.Entry<String, String>> records = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                String id = "story-" + (i + 1);
                records.add(Map.entry(id, JSON.writeValueAsString(Map.of("id", id, "prompt", PROMPTS.get(i)))));
            }
            records.add(Map.entry("broken", BROKEN));
            phase("Producing %d prompts to '%s', one every %s; completions are printed as the checkpoint that commits"
                    + " them completes", records.size(), INPUT, interval());
            phase("Waiting for the first exactly-once commit ...");

            Map<String, Long> producedAt = new HashMap<>();
            Stats stats = new Stats();
            long pace = checkpointInterval.toNanos();
            long nextSend = System.nanoTime();
            int sent = 0;
            while (stats.seen < records.size() && !stopping()) {
                if (sent < records.size() && System.nanoTime() >= nextSend) {
                    Map.Entry<String, String> r = records.get(sent++);
                    producer.send(new ProducerRecord<>(INPUT, r.getKey(), r.getValue())).get();
                    producedAt.put(r.getKey(), System.nanoTime());
                    phase("> %s: %s", r.getKey(), r.getKey().equals("broken")
                            ? r.getValue() + "  (malformed JSON: goes to the dead-letter topic)"
                            : PROMPTS.get(sent - 1));
                    nextSend += pace;
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                    show(r, producedAt, stats);
                }
                failIfEnded(flink, job);
            }
            if (stopping()) {
                int code = interrupted();
                flink.cancelJob(job).get();
                return code;
            }
            double span = (stats.lastNanos - stats.firstProducedNanos(producedAt)) / 1e9;
            phase("Done: %d of %d records answered exactly once (%d completions, %d to the dead-letter topic) in"
                            + " %.1f s; prompt to committed output %.1f to %.1f s (a checkpoint every %s)",
                    stats.seen, records.size(), stats.completions, stats.errors, span, stats.minLatency / 1e9,
                    stats.maxLatency / 1e9, interval());
            if (keepRunning) {
                return keepRunning(kafka, flink, job, webUi, consumer, producedAt, stats);
            }
            flink.cancelJob(job).get(); // an unbounded job never ends by itself; what it wrote is committed already
            return 0;
        }
    }

    /** --keep-running: prints how to send prompts, then shows completions as they commit until stopped. */
    private int keepRunning(EmbeddedKafka kafka, MiniCluster flink, JobID job, String webUi,
                            KafkaConsumer<byte[], byte[]> consumer, Map<String, Long> producedAt, Stats stats)
            throws Exception {
        String bootstrap = kafka.bootstrapServers();
        String launcher = launcher();
        out.printf("%nStill running (--keep-running) until Ctrl-C: broker %s, job %s, web UI %s%n", bootstrap, job, webUi);
        out.printf("Send a prompt, from another terminal:%n");
        out.printf("  %s produce --bootstrap %s --topic %s --id my-1 --prompt 'Once upon a time'%n", launcher, bootstrap,
                INPUT);
        out.printf("or any Kafka producer, one JSON request per record (README, Kafka records), e.g. with Kafka's tools:%n");
        out.printf("  echo '{\"id\": \"my-2\", \"prompt\": \"The dog ran\", \"max_tokens\": 32}' | kafka-console-producer.sh"
                + " --bootstrap-server %s --topic %s%n", bootstrap, INPUT);
        out.printf("Completions are printed here as they commit; elsewhere read them with read_committed, e.g.%n");
        out.printf("  kafka-console-consumer.sh --bootstrap-server %s --topic %s --isolation-level read_committed"
                + " --from-beginning%n%n", bootstrap, OUTPUT);
        out.flush();

        while (!stopping()) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                show(r, producedAt, stats);
            }
            failIfEnded(flink, job);
        }
        interrupted();
        flink.cancelJob(job).get();
        return 0; // the way a --keep-running demo ends
    }

    /**
     * Runs {@code action} on each of these signals instead of the JVM's shutdown; returns what puts the JVM's
     * handlers back. A signal the JVM does not let a program handle (-Xrs, a platform without it) is left as it is.
     */
    @SuppressWarnings("restriction")
    private static List<Runnable> onSignals(List<String> names, Runnable action) {
        List<Runnable> restore = new ArrayList<>();
        for (String name : names) {
            try {
                sun.misc.Signal signal = new sun.misc.Signal(name);
                sun.misc.SignalHandler previous = sun.misc.Signal.handle(signal, s -> action.run());
                restore.add(() -> sun.misc.Signal.handle(signal, previous));
            } catch (IllegalArgumentException | UnsupportedOperationException unavailable) {
                // the JVM's handler stays; the shutdown hook still stops the demo
            }
        }
        return restore;
    }

    /** "1 s", "500 ms": the checkpoint interval as the narration says it. */
    private String interval() {
        return org.apache.flink.util.TimeUtils.formatWithHighestUnit(checkpointInterval);
    }

    /** Prints one committed output record, with how long after its prompt it became visible. */
    private void show(ConsumerRecord<byte[], byte[]> r, Map<String, Long> producedAt, Stats stats) {
        long now = System.nanoTime();
        String key = r.key() == null ? "?" : new String(r.key(), StandardCharsets.UTF_8);
        if (stats.seen == 0) {
            phase("First exactly-once commit: outputs are visible to read_committed consumers from now on");
        }
        stats.seen++;
        stats.lastNanos = now;
        Long produced = producedAt.get(key);
        String after = "";
        if (produced != null) {
            long latency = now - produced;
            stats.minLatency = Math.min(stats.minLatency, latency);
            stats.maxLatency = Math.max(stats.maxLatency, latency);
            after = String.format(Locale.ROOT, " (+%.1f s)", latency / 1e9);
        }
        try {
            JsonNode n = JSON.readTree(r.value());
            if (r.topic().equals(ERRORS)) {
                stats.errors++;
                phase("! %s: %s: %s%s", key, n.at("/error/code").asText(), n.at("/error/message").asText(), after);
            } else {
                stats.completions++;
                phase("< %s [%s, %d tokens, %.0f ms]: %s%s", n.path("id").asText(), n.path("finish_reason").asText(),
                        n.at("/usage/completion_tokens").asInt(), n.at("/timings/total_ms").asDouble(),
                        n.path("text").asText().strip().replaceAll("\\s*\\R\\s*", " / "), after);
            }
        } catch (java.io.IOException e) {
            phase("? %s", new String(r.value(), StandardCharsets.UTF_8));
        }
    }

    /** What the demo counted of the outputs it saw. */
    private static final class Stats {
        int seen;
        int completions;
        int errors;
        long lastNanos;
        long minLatency = Long.MAX_VALUE;
        long maxLatency;

        long firstProducedNanos(Map<String, Long> producedAt) {
            return producedAt.values().stream().mapToLong(Long::longValue).min().orElse(lastNanos);
        }
    }

    /** A line of the narration: the time since the demo started, then the text. */
    private void phase(String format, Object... args) {
        double t = (System.nanoTime() - startNanos) / 1e9;
        out.printf(Locale.ROOT, "[%5.1fs] %s%n", t, String.format(Locale.ROOT, format, args));
        out.flush();
    }

    /** Waits until every task of the job is running (or the job failed to start, or the demo is stopped). */
    private void awaitRunning(MiniCluster flink, JobID job) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline && !stopping()) {
            failIfEnded(flink, job);
            if (flink.getJobStatus(job).get() == JobStatus.RUNNING) {
                AccessExecutionGraph graph = flink.getExecutionGraph(job).get();
                boolean all = true;
                for (AccessExecutionVertex v : graph.getAllExecutionVertices()) {
                    all &= v.getExecutionState() == ExecutionState.RUNNING;
                }
                if (all) {
                    return;
                }
            }
            Thread.sleep(50);
        }
        if (stopping()) {
            return;
        }
        throw new IllegalStateException("the Flink job " + job + " did not start within 120 s");
    }

    /** Throws the job's failure when it ended (a demo job ends only when cancelled). */
    private static void failIfEnded(MiniCluster flink, JobID job) throws Exception {
        JobStatus status = flink.getJobStatus(job).get();
        if (status.isGloballyTerminalState()) {
            JobResult result = flink.requestJobResult(job).get();
            Throwable cause = result.getSerializedThrowable()
                    .map(t -> (Throwable) t.deserializeError(DemoCommand.class.getClassLoader())).orElse(null);
            throw new IllegalStateException("the Flink job ended: " + status
                    + (cause == null ? "" : ": " + XpuFlowCli.oneLine(cause)), cause);
        }
    }

    private static KafkaProducer<String, String> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    /** A read_committed consumer of the output and dead-letter topics, from their beginning. */
    private static KafkaConsumer<byte[], byte[]> committedReader(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(EmbeddedKafka.MAX_RECORD_BYTES));
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : List.of(OUTPUT, ERRORS)) {
            consumer.partitionsFor(topic).forEach(pi -> partitions.add(new TopicPartition(topic, pi.partition())));
        }
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    private static String stripSlash(String s) {
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    /** bin/xpuflow as the user can run it: under xpuflow.home when the launcher set it. */
    private static String launcher() {
        String home = System.getProperty("xpuflow.home");
        return home == null ? "bin/xpuflow" : Path.of(home, "bin", "xpuflow").toString();
    }

    /** The name results carry in their model field: the model directory's name. */
    private static String modelName(Path dir) {
        Path name = dir.toAbsolutePath().normalize().getFileName();
        return name == null ? dir.toString() : name.toString();
    }

    /** models/stories260k next to the launcher (bin/..), or under the working directory. */
    static Path bundledModel() {
        String home = System.getProperty("xpuflow.home");
        for (Path candidate : new Path[] {home == null ? null : Path.of(home, "models", "stories260k"), Path.of("models", "stories260k")}) {
            if (candidate != null && Files.isRegularFile(candidate.resolve("config.json"))) {
                return candidate;
            }
        }
        throw new IllegalStateException("bundled model models/stories260k not found (run from the repository root or pass --model DIR)");
    }
}
