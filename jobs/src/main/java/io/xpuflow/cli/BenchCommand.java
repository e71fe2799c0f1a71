package io.xpuflow.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.device.Device;
import io.xpuflow.device.Roofline;
import io.xpuflow.device.TraceEvent;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow bench}: engine throughput and single-stream latency, reported as vLLM's benchmarks do
 * (see {@link BenchReport} for what every benchmark prints around its own figures).
 */
@Command(name = "bench", description = "Measure the serving engine.",
        subcommands = {BenchCommand.Throughput.class, BenchCommand.Latency.class, BenchPipeline.class,
                BenchSweep.class, BenchRoofline.class})
final class BenchCommand implements Runnable {
    static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a benchmark is required: throughput, latency, pipeline, sweep or roofline");
    }

    /** Options of every benchmark. */
    static final class Workload {
        @Option(names = "--input-len", defaultValue = "128", paramLabel = "N", description = "Prompt tokens per request (default ${DEFAULT-VALUE}).")
        int inputLen;

        @Option(names = "--output-len", defaultValue = "128", paramLabel = "N", description = "Generated tokens per request (default ${DEFAULT-VALUE}).")
        int outputLen;

        @Option(names = "--seed", defaultValue = "0", paramLabel = "N", description = "Seed of the random prompts (default ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--output-json", paramLabel = "FILE", description = "Also write the header, the results and"
                + " the latency percentiles as one JSON document to FILE.")
        Path outputJson;
    }

    /** {@code --prompt}: real text as every request's prompt (latency and throughput). */
    static final class PromptText {
        @Option(names = "--prompt", paramLabel = "TEXT", description = {"Every request's prompt is TEXT (the model's"
                + " tokenizer, with its start token) instead of --input-len random token ids: the model then continues"
                + " text it predicts well, as speculative decoding's drafts need."})
        String text;

        /** {@code w} with the prompt, once the engine (and its tokenizer) is open; {@code w} itself without one. */
        BenchWorkload applyTo(BenchWorkload w, LlmEngine engine, CommandLine.Model.CommandSpec spec) {
            if (text == null) {
                return w;
            }
            if (engine.tokenizer().isEmpty()) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--prompt needs a tokenizer, and "
                        + engine.options().modelDir() + " has no tokenizer.json; leave it out for random prompt ids");
            }
            try {
                return w.withPrompt(engine.tokenizer().get().encode(text, true));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
            }
        }
    }

    /** Throughput figures of one run over a workload, and the latency percentiles of its requests. */
    record ThroughputResult(int requests, long totalTokens, long outputTokens, double seconds,
                            BenchReport.RequestLatencies latencies) {
        double requestsPerSecond() {
            return requests / seconds;
        }

        double totalTokensPerSecond() {
            return totalTokens / seconds;
        }

        double outputTokensPerSecond() {
            return outputTokens / seconds;
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("elapsed_time", seconds);
            o.put("num_requests", requests);
            o.put("total_num_tokens", totalTokens);
            o.put("requests_per_second", requestsPerSecond());
            o.put("tokens_per_second", totalTokensPerSecond());
            o.put("output_tokens_per_second", outputTokensPerSecond());
            latencies.putJson(o);
            return o;
        }

        /** vLLM's summary line. */
        String line() {
            return String.format("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s",
                    requestsPerSecond(), totalTokensPerSecond(), outputTokensPerSecond());
        }
    }

    /**
     * The first line of every benchmark: how the model was placed and how long loading took (loading is
     * left out of the timed figures), e.g. {@code Model: bf16 weights, 1302.4 MiB resident (BF16 checkpoint),
     * KV cache bf16, loaded in 3.21 s}.
     */
    static String placementLine(LlmEngine engine) {
        LoadedModel.Placement p = engine.placement();
        return String.format(Locale.ROOT, "Model: %s weights, %.1f MiB resident (%s checkpoint), KV cache %s, loaded in %.2f s",
                p.weightFormat().optionValue(), p.weightBytes() / (double) (1 << 20), p.storedDtype(),
                p.kvCacheDtype().optionValue(), p.loadNanos() / 1e9);
    }

    /** The same figures in a benchmark's JSON line. */
    static void putPlacement(ObjectNode o, LlmEngine engine) {
        LoadedModel.Placement p = engine.placement();
        o.put("weight_format", p.weightFormat().optionValue());
        o.put("kv_cache_dtype", p.kvCacheDtype().optionValue());
        o.put("weight_bytes", p.weightBytes());
        o.put("load_time", p.loadNanos() / 1e9);
    }

    /** Submits every request at once and times until the last finishes (model loading excluded). */
    static ThroughputResult runThroughput(LlmEngine engine, BenchWorkload workload) {
        List<GenerationRequest> requests = workload.requests(engine.config().vocabSize());
        long start = System.nanoTime();
        List<GenerationHandle> handles = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) {
            handles.add(engine.submit(r));
        }
        long outputTokens = 0;
        List<GenerationResult> results = new ArrayList<>(handles.size());
        for (GenerationHandle h : handles) {
            GenerationResult r = h.result().join();
            results.add(r);
            outputTokens += r.usage().completionTokens();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new ThroughputResult(requests.size(), (long) requests.size() * workload.inputLen() + outputTokens,
                outputTokens, seconds, BenchReport.RequestLatencies.of(results));
    }

    @Command(name = "throughput", description = "Offline throughput: N random prompts submitted at once.")
    static final class Throughput implements Callable<Integer> {
        @Mixin
        XpuFlowCli.Common common = new XpuFlowCli.Common();

        @Mixin
        EngineArgs engineArgs = new EngineArgs();

        @Mixin
        Workload workload = new Workload();

        @Option(names = {"-n", "--num-prompts"}, defaultValue = "64", paramLabel = "N", description = "Requests (default ${DEFAULT-VALUE}).")
        int numPrompts;

        @Mixin
        PromptText prompt = new PromptText();

        @Mixin
        Progress.Options progress = new Progress.Options();

        @Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            BenchWorkload w = workload(spec, numPrompts, workload);
            BenchReport.checkOutputJson(spec, workload.outputJson);
            try (LlmEngine engine = Progress.openEngine(engineArgs.toOptions(common.threads), spec, progress)) {
                w = prompt.applyTo(w, engine, spec);
                PrintWriter out = spec.commandLine().getOut();
                ObjectNode header = BenchReport.header("throughput", engine, w);
                BenchReport.printHeader(out, engine, header);
                ThroughputResult t;
                long before = engine.metrics().requestsFinished();
                try (Progress shown = Progress.items(spec.commandLine().getErr(), progress.mode(), "Benchmark",
                        w.numPrompts(), "requests", () -> engine.metrics().requestsFinished() - before)) {
                    t = runThroughput(engine, w);
                }
                out.println(t.line());
                t.latencies().print(out, "");
                ObjectNode o = t.toJson();
                o.put("input_len", w.inputLen());
                o.put("output_len", w.outputLen());
                putPlacement(o, engine);
                out.println(o);
                BenchReport.writeJson(workload.outputJson, header, o);
            }
            return 0;
        }
    }

    @Command(name = "latency", description = "Single-stream latency: prefill and decode speed of one request at a time.")
    static final class Latency implements Callable<Integer> {
        @Mixin
        XpuFlowCli.Common common = new XpuFlowCli.Common();

        @Mixin
        EngineArgs engineArgs = new EngineArgs();

        @Mixin
        Workload workload = new Workload();

        @Option(names = "--num-iters", defaultValue = "3", paramLabel = "N", description = "Measured runs (default ${DEFAULT-VALUE}); one warm-up run precedes them.")
        int iterations;

        @Mixin
        PromptText prompt = new PromptText();

        @Option(names = "--roofline", description = {"Measure this machine's limits first (bench roofline) and print each"
                + " figure as a fraction of its limit: decode as the weight and KV bytes it reads per token (from the"
                + " device profiler) times tokens/s over the read bandwidth, prefill as its flops per token times"
                + " tokens/s over the weight format's arithmetic peak."})
        boolean roofline;

        @Mixin
        Progress.Options progress = new Progress.Options();

        @Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if (iterations <= 0) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--num-iters must be positive, was " + iterations);
            }
            BenchWorkload w = workload(spec, iterations + 1, workload);
            BenchReport.checkOutputJson(spec, workload.outputJson);
            engineArgs.disablePrefixCaching(); // every run must compute its whole prompt
            Roofline limits = null;
            if (roofline) {
                try (Device device = Device.open("cpu", common.threads)) {
                    limits = Roofline.measure(device, Roofline.DEFAULT_READ_BYTES);
                }
            }
            try (LlmEngine engine = Progress.openEngine(engineArgs.toOptions(common.threads), spec, progress)) {
                w = prompt.applyTo(w, engine, spec);
                PrintWriter out = spec.commandLine().getOut();
                ObjectNode header = BenchReport.header("latency", engine, w);
                BenchReport.printHeader(out, engine, header);
                List<GenerationRequest> requests = w.requests(engine.config().vocabSize());
                AtomicInteger finished = new AtomicInteger();
                List<GenerationResult> measured = new ArrayList<>(iterations);
                double prefillMs = 0;
                double decodeMs = 0;
                double totalMs = 0;
                List<TraceEvent> events = new ArrayList<>();
                try (Progress shown = Progress.items(spec.commandLine().getErr(), progress.mode(),
                        "Benchmark (1 warm-up run)", requests.size(), "requests", finished::get)) {
                    for (int i = 0; i < requests.size(); i++) {
                        if (i == 1 && limits != null) {
                            engine.profile(PROFILE_EVENTS);
                        }
                        GenerationResult r = engine.submit(requests.get(i)).result().join();
                        finished.incrementAndGet();
                        if (i == 0) {
                            continue; // warm-up
                        }
                        measured.add(r);
                        if (limits != null) {
                            events.addAll(engine.readProfile().events());
                        }
                        prefillMs += r.timings().timeToFirstTokenMs();
                        decodeMs += r.timings().totalMs() - r.timings().timeToFirstTokenMs();
                        totalMs += r.timings().totalMs();
                    }
                }
                prefillMs /= iterations;
                decodeMs /= iterations;
                totalMs /= iterations;
                double prefillTps = w.inputLen() / (prefillMs / 1e3);
                double decodeTps = w.outputLen() > 1 ? (w.outputLen() - 1) / (decodeMs / 1e3) : 0;
                out.printf("Prefill: %.1f tokens/s (%d prompt tokens in %.1f ms, time to first token)%n", prefillTps,
                        w.inputLen(), prefillMs);
                out.printf("Decode: %.1f tokens/s (%.2f ms per output token over %d tokens)%n", decodeTps,
                        w.outputLen() > 1 ? decodeMs / (w.outputLen() - 1) : 0, w.outputLen());
                out.printf("Latency: %.1f ms per request (mean of %d)%n", totalMs, iterations);
                BenchReport.RequestLatencies latencies = BenchReport.RequestLatencies.of(measured);
                latencies.print(out, "");
                ObjectNode o = JSON.createObjectNode();
                o.put("input_len", w.inputLen());
                o.put("output_len", w.outputLen());
                o.put("num_iters", iterations);
                o.put("prefill_tokens_per_second", prefillTps);
                o.put("decode_tokens_per_second", decodeTps);
                o.put("avg_latency_ms", totalMs);
                BenchReport.speculative(out, o, engine, measured);
                latencies.putJson(o);
                if (limits != null) {
                    Map<Boolean, List<TraceEvent>> byKind = ProfileSummary.splitByStepRows(events, 1);
                    double decodeBytesPerToken = ProfileSummary.of(byKind.get(true)).totalBytes()
                            / (iterations * (w.outputLen() - 1.0));
                    double prefillFlopsPerToken = ProfileSummary.of(byKind.get(false)).totalFlops()
                            / (iterations * (double) w.inputLen());
                    double readFraction = decodeBytesPerToken * decodeTps / 1e9 / limits.readGBps();
                    double peak = limits.peakFor(engine.placement().weightFormat());
                    double computeFraction = prefillFlopsPerToken * prefillTps / 1e9 / peak;
                    out.printf("Roofline: read %.1f GB/s, %s peak %.0f GFLOP/s (%d threads)%n", limits.readGBps(),
                            engine.placement().weightFormat().optionValue(), peak, limits.threads());
                    out.printf("Decode reads %.1f MB per token: %.1f GB/s, %.0f%% of the read bandwidth%n",
                            decodeBytesPerToken / 1e6, decodeBytesPerToken * decodeTps / 1e9, 100 * readFraction);
                    out.printf("Prefill computes %.2f GFLOP per token: %.0f GFLOP/s, %.0f%% of the arithmetic peak%n",
                            prefillFlopsPerToken / 1e9, prefillFlopsPerToken * prefillTps / 1e9, 100 * computeFraction);
                    o.set("roofline", BenchRoofline.toJson(limits));
                    o.put("decode_bytes_per_token", decodeBytesPerToken);
                    o.put("decode_fraction_of_read_bandwidth", readFraction);
                    o.put("prefill_flops_per_token", prefillFlopsPerToken);
                    o.put("prefill_fraction_of_peak", computeFraction);
                }
                putPlacement(o, engine);
                out.println(o);
                BenchReport.writeJson(workload.outputJson, header, o);
            }
            return 0;
        }
    }

    /** Profiler events kept per measured request of {@code bench latency --roofline}. */
    static final int PROFILE_EVENTS = 4_000_000;

    static BenchWorkload workload(CommandLine.Model.CommandSpec spec, int numPrompts, Workload w) {
        try {
            return new BenchWorkload(numPrompts, w.inputLen, w.outputLen, w.seed);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
    }
}
