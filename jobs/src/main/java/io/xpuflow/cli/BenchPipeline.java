package io.xpuflow.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.jobs.LocalPipelineRun;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow bench pipeline}: the {@code bench throughput} workload twice, once straight into the
 * engine and once through Kafka → Flink → Kafka (embedded broker, local MiniCluster, exactly-once
 * sink), on the same shared engine. The pipeline is timed from the moment its first request reaches the
 * engine to the moment its last result is committed and read back (read_committed), so job start-up and
 * model loading are left out of both figures while Kafka, serialisation, the async operator and the
 * transactional commit are in. That end-to-end time is split into the time the engine had requests and
 * the wait for the checkpoint that commits the last results, and two ratios are printed: end to end, and
 * while the engine had requests (what the pipeline costs the engine's throughput; the commit wait is a
 * latency a run pays once).
 */
@Command(name = "pipeline", description = "Throughput of the engine alone and through Kafka -> Flink -> Kafka, and their ratio.")
final class BenchPipeline implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    EngineArgs engineArgs = new EngineArgs();

    @Mixin
    BenchCommand.Workload workload = new BenchCommand.Workload();

    @Option(names = {"-n", "--num-prompts"}, defaultValue = "64", paramLabel = "N", description = "Requests (default ${DEFAULT-VALUE}).")
    int numPrompts;

    // --checkpoint-interval-ms is the old name: a plain number is milliseconds in Flink's syntax too
    @Option(names = {"--checkpoint-interval", "--checkpoint-interval-ms"}, defaultValue = "500ms", paramLabel = "DURATION",
            converter = FlinkSyntax.DurationConverter.class,
            description = "Checkpoint interval of the job, e.g. 500ms or 2s; results are committed at checkpoints"
                    + " (default ${DEFAULT-VALUE}).")
    Duration checkpointInterval;

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        BenchWorkload w = BenchCommand.workload(spec, numPrompts, workload);
        BenchReport.checkOutputJson(spec, workload.outputJson);
        EngineSpec engineSpec = engineArgs.toSpec(common.threads);
        PrintWriter out = spec.commandLine().getOut();
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(engineSpec.toOptions())) {
            LlmEngine engine = lease.engine();
            ObjectNode header = BenchReport.header("pipeline", engine, w);
            BenchReport.printHeader(out, engine, header);
            Tokenizer tokenizer = engine.tokenizer().orElse(null);
            int vocab = engine.config().vocabSize();
            // distinct prompts for the two runs, so the second cannot reuse the first one's prefix cache
            List<BenchPrompt> direct = prompts(tokenizer, vocab, w, w.seed());
            List<BenchPrompt> pipedPrompts = prompts(tokenizer, vocab, w, w.seed() + 1);

            // warm-up (JIT, page cache), untimed, with prompts of its own
            runDirect(engine, prompts(tokenizer, vocab, w, w.seed() + 2).subList(0, Math.min(8, w.numPrompts())),
                    Math.min(16, w.outputLen()));
            BenchCommand.ThroughputResult alone = runDirect(engine, direct, w.outputLen());
            out.println("Engine:   " + alone.line());
            alone.latencies().print(out, "Engine:   ");
            out.flush();
            PipelineResult piped;
            try (EmbeddedKafka kafka = EmbeddedBroker.start(common.verbose == CliLogging.Verbosity.ALL)) {
                // warm-up of the pipeline's own code (Flink, Kafka clients, JSON), untimed as the engine's was:
                // on two cores the JIT compiling it would otherwise take a share from the engine's threads
                runPipeline(kafka, "warmup", engine, engineSpec, prompts(tokenizer, vocab, w, w.seed() + 3)
                        .subList(0, Math.min(8, w.numPrompts())), Math.min(16, w.outputLen()));
                piped = runPipeline(kafka, "bench", engine, engineSpec, pipedPrompts, w.outputLen());
            }
            BenchCommand.ThroughputResult viaKafka = piped.throughput();
            out.println("Pipeline: " + viaKafka.line());
            viaKafka.latencies().print(out, "Pipeline: ");
            out.printf("Pipeline: %.3f s = %.3f s with requests in the engine + %.3f s until the last checkpoint committed%n",
                    viaKafka.seconds(), piped.engineBusySeconds(), piped.commitWaitSeconds());
            double ratio = viaKafka.outputTokensPerSecond() / alone.outputTokensPerSecond();
            // what the pipeline costs the engine while it works; the commit wait is latency, paid once per
            // run (a long-running job overlaps it with the next checkpoint's work)
            double busyRatio = alone.seconds() / piped.engineBusySeconds() * viaKafka.outputTokens() / alone.outputTokens();
            out.printf("Pipeline / engine output tokens/s: %.3f end to end, %.3f while the engine had requests%n", ratio,
                    busyRatio);
            ObjectNode o = JSON.createObjectNode();
            o.set("engine", alone.toJson());
            ObjectNode pipelineJson = viaKafka.toJson();
            pipelineJson.put("engine_busy_time", piped.engineBusySeconds());
            pipelineJson.put("commit_wait_time", piped.commitWaitSeconds());
            o.set("pipeline", pipelineJson);
            o.put("ratio", ratio);
            o.put("busy_ratio", busyRatio);
            o.put("input_len", w.inputLen());
            o.put("output_len", w.outputLen());
            BenchCommand.putPlacement(o, engine);
            out.println(o);
            BenchReport.writeJson(workload.outputJson, header, o);
        }
        return 0;
    }

    /** A prompt as text (what a producer usually sends) or, for a model without a tokenizer, as token ids. */
    private record BenchPrompt(String text, int[] ids) {
        GenerationRequest request(String id, SamplingParams params) {
            return text != null ? GenerationRequest.ofText(id, text, params) : GenerationRequest.ofTokens(id, ids, params);
        }

        Object json() {
            return text != null ? text : ids;
        }
    }

    /**
     * Prompts of {@code inputLen} random token ids, decoded to text when the model has a tokenizer (text
     * exercises the pipeline's tokenization as real producers do; it may re-encode to a slightly different
     * length, the same in both runs).
     */
    private static List<BenchPrompt> prompts(Tokenizer tokenizer, int vocab, BenchWorkload w, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<BenchPrompt> out = new ArrayList<>();
        for (int i = 0; i < w.numPrompts(); i++) {
            int[] ids = new int[w.inputLen()];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = random.nextInt(vocab);
            }
            out.add(tokenizer != null ? new BenchPrompt(tokenizer.decode(ids, true), null) : new BenchPrompt(null, ids));
        }
        return out;
    }

    private static SamplingParams params(int outputLen) {
        return SamplingParams.builder().maxTokens(outputLen).ignoreEos(true).build();
    }

    private static BenchCommand.ThroughputResult runDirect(LlmEngine engine, List<BenchPrompt> prompts, int outputLen) {
        long start = System.nanoTime();
        List<GenerationHandle> handles = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            handles.add(engine.submit(prompts.get(i).request("direct-" + i, params(outputLen))));
        }
        long total = 0;
        long output = 0;
        List<GenerationResult> results = new ArrayList<>(handles.size());
        for (GenerationHandle h : handles) {
            GenerationResult r = h.result().join();
            results.add(r);
            total += r.usage().promptTokens() + r.usage().completionTokens();
            output += r.usage().completionTokens();
        }
        return new BenchCommand.ThroughputResult(prompts.size(), total, output, (System.nanoTime() - start) / 1e9,
                BenchReport.RequestLatencies.of(results));
    }

    /**
     * A pipeline run: the throughput from the first request reaching the engine to the last result read
     * back committed, and how much of that time the engine had requests.
     */
    record PipelineResult(BenchCommand.ThroughputResult throughput, double engineBusySeconds) {
        /** From the engine's last request to the last committed result: mostly waiting for a checkpoint. */
        double commitWaitSeconds() {
            return throughput.seconds() - engineBusySeconds;
        }
    }

    /**
     * When the engine first and last worked for the pipeline, sampled every millisecond by a daemon thread
     * that sleeps in between, so that it takes no measurable CPU from the run it observes. A sample counts
     * as busy when the engine holds requests or ran a step since the previous sample (a step that began and
     * ended between two samples is not missed). The busy span is at least one sampling interval.
     */
    private static final class EngineActivity implements Runnable {
        private static final long INTERVAL_NANOS = 1_000_000;

        private final LlmEngine engine;
        private final Thread thread;
        private final long stepsBefore;
        private volatile boolean stopped;
        private volatile long firstBusy;
        private volatile long lastBusy;

        private EngineActivity(LlmEngine engine) {
            this.engine = engine;
            this.stepsBefore = engine.metrics().steps();
            this.thread = new Thread(this, "bench-engine-activity");
            thread.setDaemon(true);
        }

        static EngineActivity watch(LlmEngine engine) {
            EngineActivity a = new EngineActivity(engine);
            a.thread.start();
            return a;
        }

        @Override
        public void run() {
            long steps = stepsBefore;
            while (!stopped) {
                var m = engine.metrics();
                if (m.running() + m.waiting() > 0 || m.steps() != steps) {
                    long now = System.nanoTime();
                    if (firstBusy == 0) {
                        firstBusy = now - INTERVAL_NANOS; // the work began after the previous, idle sample
                    }
                    lastBusy = now;
                }
                steps = m.steps();
                LockSupport.parkNanos(INTERVAL_NANOS);
            }
        }

        void stop() throws InterruptedException {
            stopped = true;
            thread.join();
            if (firstBusy == 0) {
                throw new IllegalStateException("the pipeline's requests never reached the engine");
            }
        }

        long firstBusyNanos() {
            return firstBusy;
        }

        long lastBusyNanos() {
            return lastBusy;
        }
    }

    private PipelineResult runPipeline(EmbeddedKafka kafka, String name, LlmEngine engine, EngineSpec engineSpec,
                                       List<BenchPrompt> prompts, int outputLen) throws Exception {
        String in = name + "-prompts";
        String out = name + "-results";
        kafka.createTopic(in, 1);
        kafka.createTopic(out, 1);
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("id", name + "-" + i);
            r.put("prompt", prompts.get(i).json());
            records.add(Map.entry(name + "-" + i, JSON.writeValueAsString(r)));
        }
        kafka.produceStrings(in, records);
        KafkaInferencePipeline pipeline = KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                .inputTopic(in).outputTopic(out).consumerGroup("xpuflow-" + name).transactionalIdPrefix("xpuflow-" + name)
                .bounded(false).engine(engineSpec).asyncCapacity(Math.max(1, prompts.size()))
                .samplingDefaults(SamplingDefaults.of(params(outputLen))).build();
        EngineActivity activity = EngineActivity.watch(engine);
        long[] totals = new long[3]; // total tokens, output tokens, errors
        long[] lastSeen = new long[1]; // when the last result became visible; job shutdown is not timed
        // each result's engine timings, as the pipeline writes them (from the request's submission to the
        // engine: the time in Kafka and in the async operator's queue before it is not in them)
        List<GenerationResult.Timings> timings = new ArrayList<>();
        List<Integer> outputTokens = new ArrayList<>();
        int seen = LocalPipelineRun.run(kafka, pipeline, 1, checkpointInterval, List.of(out),
                records.size(), Duration.ofSeconds(10), r -> {
                    try {
                        JsonNode n = JSON.readTree(r.value());
                        if (n.has("error")) {
                            totals[2]++;
                        }
                        totals[0] += n.at("/usage/prompt_tokens").asLong() + n.at("/usage/completion_tokens").asLong();
                        totals[1] += n.at("/usage/completion_tokens").asLong();
                        if (!n.has("error")) {
                            timings.add(new GenerationResult.Timings(n.at("/timings/queue_ms").asDouble(),
                                    n.at("/timings/ttft_ms").asDouble(), n.at("/timings/tpot_ms").asDouble(),
                                    n.at("/timings/total_ms").asDouble()));
                            outputTokens.add(n.at("/usage/completion_tokens").asInt());
                        }
                        lastSeen[0] = System.nanoTime();
                    } catch (IOException e) {
                        totals[2]++;
                    }
                });
        long end = lastSeen[0];
        activity.stop();
        if (seen != records.size() || totals[2] > 0) {
            throw new IllegalStateException("pipeline returned " + seen + " of " + records.size() + " results, "
                    + totals[2] + " of them errors");
        }
        double seconds = (end - activity.firstBusyNanos()) / 1e9;
        double busySeconds = (activity.lastBusyNanos() - activity.firstBusyNanos()) / 1e9;
        return new PipelineResult(new BenchCommand.ThroughputResult(seen, totals[0], totals[1], seconds,
                BenchReport.RequestLatencies.of(timings, outputTokens)), busySeconds);
    }
}
