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
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
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
 * transactional commit are in.
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

    @Option(names = "--num-prompts", defaultValue = "64", paramLabel = "N", description = "Requests (default ${DEFAULT-VALUE}).")
    int numPrompts;

    @Option(names = "--checkpoint-interval-ms", defaultValue = "500", paramLabel = "MS",
            description = "Checkpoint interval of the job; results are committed at checkpoints (default ${DEFAULT-VALUE}).")
    long checkpointMs;

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        BenchWorkload w = BenchCommand.workload(spec, numPrompts, workload);
        EngineSpec engineSpec = new EngineSpec(engineArgs.model.toString(), common.threads, engineArgs.kvCacheMib << 20,
                engineArgs.maxNumSeqs, engineArgs.maxNumBatchedTokens, engineArgs.maxModelLen);
        PrintWriter out = spec.commandLine().getOut();
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(engineSpec.toOptions())) {
            LlmEngine engine = lease.engine();
            Tokenizer tokenizer = engine.tokenizer().orElseThrow(() -> new IllegalArgumentException("bench pipeline sends"
                    + " text prompts as JSON records: " + engineArgs.model + " needs a tokenizer.json"));
            // distinct prompts for the two runs, so the second cannot reuse the first one's prefix cache
            List<String> direct = prompts(tokenizer, engine.config().vocabSize(), w, w.seed());
            List<String> piped = prompts(tokenizer, engine.config().vocabSize(), w, w.seed() + 1);

            // warm-up (JIT, page cache), untimed, with prompts of its own
            runDirect(engine, prompts(tokenizer, engine.config().vocabSize(), w, w.seed() + 2).subList(0, Math.min(8, w.numPrompts())),
                    Math.min(16, w.outputLen()));
            BenchCommand.ThroughputResult alone = runDirect(engine, direct, w.outputLen());
            out.println("Engine:   " + alone.line());
            out.flush();
            BenchCommand.ThroughputResult viaKafka = runPipeline(engine, engineSpec, piped, w.outputLen());
            out.println("Pipeline: " + viaKafka.line());
            double ratio = viaKafka.outputTokensPerSecond() / alone.outputTokensPerSecond();
            out.printf("Pipeline / engine output tokens/s: %.3f%n", ratio);
            ObjectNode o = JSON.createObjectNode();
            o.set("engine", alone.toJson());
            o.set("pipeline", viaKafka.toJson());
            o.put("ratio", ratio);
            o.put("input_len", w.inputLen());
            o.put("output_len", w.outputLen());
            out.println(o);
        }
        return 0;
    }

    /** Text prompts of about {@code inputLen} tokens: random ids, decoded. */
    private static List<String> prompts(Tokenizer tokenizer, int vocab, BenchWorkload w, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < w.numPrompts(); i++) {
            int[] ids = new int[w.inputLen()];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = random.nextInt(vocab);
            }
            out.add(tokenizer.decode(ids, true));
        }
        return out;
    }

    private static SamplingParams params(int outputLen) {
        return SamplingParams.builder().maxTokens(outputLen).ignoreEos(true).build();
    }

    private static BenchCommand.ThroughputResult runDirect(LlmEngine engine, List<String> prompts, int outputLen) {
        long start = System.nanoTime();
        List<GenerationHandle> handles = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            handles.add(engine.submit(GenerationRequest.ofText("direct-" + i, prompts.get(i), params(outputLen))));
        }
        long total = 0;
        long output = 0;
        for (GenerationHandle h : handles) {
            var u = h.result().join().usage();
            total += u.promptTokens() + u.completionTokens();
            output += u.completionTokens();
        }
        return new BenchCommand.ThroughputResult(prompts.size(), total, output, (System.nanoTime() - start) / 1e9);
    }

    private BenchCommand.ThroughputResult runPipeline(LlmEngine engine, EngineSpec engineSpec, List<String> prompts,
                                                      int outputLen) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedBroker.start(common.verbose)) {
            kafka.createTopic("bench-prompts", 1);
            kafka.createTopic("bench-results", 1);
            List<Map.Entry<String, String>> records = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("id", "pipe-" + i);
                r.put("prompt", prompts.get(i));
                records.add(Map.entry("pipe-" + i, JSON.writeValueAsString(r)));
            }
            kafka.produceStrings("bench-prompts", records);
            KafkaInferencePipeline pipeline = KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                    .inputTopic("bench-prompts").outputTopic("bench-results").consumerGroup("xpuflow-bench").bounded(true)
                    .engine(engineSpec).asyncCapacity(Math.max(1, prompts.size()))
                    .samplingDefaults(SamplingDefaults.of(params(outputLen))).build();
            // the engine marks when the pipeline's first request arrives
            AtomicLong firstArrival = new AtomicLong();
            Thread watcher = new Thread(() -> {
                while (firstArrival.get() == 0 && !Thread.currentThread().isInterrupted()) {
                    var m = engine.metrics();
                    if (m.running() + m.waiting() > 0) {
                        firstArrival.set(System.nanoTime());
                        return;
                    }
                    Thread.onSpinWait();
                }
            }, "bench-first-arrival");
            watcher.setDaemon(true);
            watcher.start();
            long[] totals = new long[3]; // total tokens, output tokens, errors
            int seen = LocalPipelineRun.run(kafka, pipeline, 1, Duration.ofMillis(checkpointMs), List.of("bench-results"),
                    records.size(), Duration.ofSeconds(10), r -> {
                        try {
                            JsonNode n = JSON.readTree(r.value());
                            if (n.has("error")) {
                                totals[2]++;
                            }
                            totals[0] += n.at("/usage/prompt_tokens").asLong() + n.at("/usage/completion_tokens").asLong();
                            totals[1] += n.at("/usage/completion_tokens").asLong();
                        } catch (java.io.IOException e) {
                            totals[2]++;
                        }
                    });
            long end = System.nanoTime();
            watcher.interrupt();
            if (seen != records.size() || totals[2] > 0) {
                throw new IllegalStateException("pipeline returned " + seen + " of " + records.size() + " results, "
                        + totals[2] + " of them errors");
            }
            return new BenchCommand.ThroughputResult(seen, totals[0], totals[1], (end - firstArrival.get()) / 1e9);
        }
    }
}
