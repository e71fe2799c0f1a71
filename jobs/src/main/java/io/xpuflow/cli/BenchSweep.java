package io.xpuflow.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow bench sweep}: llama-bench's table over concurrent streams 1, 2, 4, ... up to
 * {@code --max-streams}. For each count, {@code pp}: that many random prompts of {@code --input-len}
 * tokens submitted at once with one output token each (the first token comes from the prefill's own
 * logits), prompt tokens over the wall time; {@code tg}: that many one-token prompts generating
 * {@code --output-len} tokens each, the tokens after the first over the wall time after the last first
 * token (the aggregate decode speed of that many streams). Each figure is the mean and standard
 * deviation of {@code --repetitions} runs, after one untimed warm-up of each test. The tg runs' requests also
 * give each count's TTFT and TPOT percentiles; {@code --chart FILE.png} draws both as a chart.
 */
@Command(name = "sweep", description = "Prefill (pp) and decode (tg) tokens/s over 1, 2, 4, ... concurrent streams, as a llama-bench table.")
final class BenchSweep implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    EngineArgs engineArgs = new EngineArgs();

    @Mixin
    BenchCommand.Workload workload = new BenchCommand.Workload();

    @Option(names = "--max-streams", defaultValue = "8", paramLabel = "N",
            description = "Largest number of concurrent streams; the sweep doubles from 1 up to it (default ${DEFAULT-VALUE}).")
    int maxStreams;

    @Option(names = {"-r", "--repetitions"}, defaultValue = "3", paramLabel = "N",
            description = "Timed runs of each test, reported as mean ± standard deviation (default ${DEFAULT-VALUE}).")
    int repetitions;

    @Option(names = "--chart", paramLabel = "FILE.png",
            description = "Also draw the sweep as a PNG chart: tokens/s and TTFT/TPOT percentiles over concurrent streams.")
    Path chart;

    @Spec
    CommandLine.Model.CommandSpec spec;

    /**
     * Latency percentiles of one stream count, over the requests of its tg runs: time to first token and
     * time per output token after the first, in milliseconds.
     */
    record LatencyRow(int streams, BenchReport.Percentiles ttft, BenchReport.Percentiles tpot) {
        ObjectNode toJson() {
            ObjectNode o = BenchCommand.JSON.createObjectNode();
            o.put("streams", streams);
            ttft.putJson(o, "ttft");
            tpot.putJson(o, "tpot");
            return o;
        }
    }

    /** One row of the table. */
    record Row(int streams, String test, double mean, double stddev) {
        ObjectNode toJson() {
            ObjectNode o = BenchCommand.JSON.createObjectNode();
            o.put("streams", streams);
            o.put("test", test);
            o.put("tokens_per_second", mean);
            o.put("stddev", stddev);
            return o;
        }
    }

    @Override
    public Integer call() {
        if (maxStreams <= 0 || maxStreams > engineArgs.maxNumSeqs()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--max-streams must be between 1 and"
                    + " --max-num-seqs (" + engineArgs.maxNumSeqs() + "), was " + maxStreams);
        }
        if (repetitions <= 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--repetitions must be positive, was " + repetitions);
        }
        if (workload.outputLen < 2) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--output-len must be at least 2 (tg times the tokens after the first), was " + workload.outputLen);
        }
        BenchWorkload w = BenchCommand.workload(spec, maxStreams, workload);
        BenchReport.checkOutputJson(spec, workload.outputJson);
        if (chart != null && !chart.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--chart writes a PNG file: give a name ending"
                    + " in .png, was " + chart);
        }
        engineArgs.disablePrefixCaching(); // repeated runs must compute their whole prompts
        try (LlmEngine engine = LlmEngine.open(engineArgs.toOptions(common.threads))) {
            PrintWriter out = spec.commandLine().getOut();
            ObjectNode header = BenchReport.header("sweep", engine, w);
            BenchReport.printHeader(out, engine, header);
            int vocab = engine.config().vocabSize();
            long seed = w.seed();
            // warm-up (JIT, page cache), untimed
            prefill(engine, new BenchWorkload(1, w.inputLen(), 1, seed++), vocab);
            run(engine, new BenchWorkload(1, 1, w.outputLen(), seed++).requests(vocab));

            String model = engine.options().modelDir().getFileName() + " " + engine.config().architecture();
            String format = engine.placement().weightFormat().optionValue() + ", KV " + engine.placement().kvCacheDtype().optionValue();
            int threads = BenchReport.threads(engine.options());
            out.println();
            out.println("| model | format | threads | streams | test | t/s |");
            out.println("| --- | --- | ---: | ---: | ---: | ---: |");
            List<Row> rows = new ArrayList<>();
            List<LatencyRow> latencies = new ArrayList<>();
            for (int streams = 1; streams <= maxStreams; streams *= 2) {
                double[] pp = new double[repetitions];
                double[] tg = new double[repetitions];
                for (int r = 0; r < repetitions; r++) {
                    pp[r] = prefill(engine, new BenchWorkload(streams, w.inputLen(), 1, seed++), vocab);
                }
                List<GenerationResult> decoded = new ArrayList<>();
                for (int r = 0; r < repetitions; r++) {
                    List<GenerationResult> results = run(engine, new BenchWorkload(streams, 1, w.outputLen(), seed++)
                            .requests(vocab));
                    tg[r] = decodeTokensPerSecond(results);
                    decoded.addAll(results);
                }
                BenchReport.RequestLatencies l = BenchReport.RequestLatencies.of(decoded);
                latencies.add(new LatencyRow(streams, l.ttft(), l.tpot()));
                for (Row row : List.of(row(streams, "pp" + w.inputLen(), pp), row(streams, "tg" + w.outputLen(), tg))) {
                    rows.add(row);
                    out.printf(Locale.ROOT, "| %s | %s | %d | %d | %s | %.2f ± %.2f |%n", model, format, threads,
                            row.streams(), row.test(), row.mean(), row.stddev());
                    out.flush();
                }
            }
            out.println();
            out.println("| streams | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms |");
            out.println("| ---: | ---: | ---: | ---: | ---: |");
            for (LatencyRow l : latencies) {
                out.printf(Locale.ROOT, "| %d | %.2f | %.2f | %.3f | %.3f |%n", l.streams(), l.ttft().p50(), l.ttft().p99(),
                        l.tpot().p50(), l.tpot().p99());
            }
            out.println();
            ObjectNode o = BenchCommand.JSON.createObjectNode();
            ArrayNode array = o.putArray("results");
            rows.forEach(row -> array.add(row.toJson()));
            ArrayNode latencyArray = o.putArray("latencies");
            latencies.forEach(l -> latencyArray.add(l.toJson()));
            o.put("input_len", w.inputLen());
            o.put("output_len", w.outputLen());
            o.put("repetitions", repetitions);
            BenchCommand.putPlacement(o, engine);
            if (chart != null) {
                SweepChart.write(chart, model + ", " + format + ", " + threads + " threads, pp" + w.inputLen() + " / tg"
                        + w.outputLen(), rows, latencies);
                out.println("Chart written to " + chart);
            }
            out.println(o);
            BenchReport.writeJson(workload.outputJson, header, o);
        }
        return 0;
    }

    /** Mean and sample standard deviation (0 for one run), as llama-bench prints them. */
    static Row row(int streams, String test, double[] values) {
        double mean = 0;
        for (double v : values) {
            mean += v;
        }
        mean /= values.length;
        double squares = 0;
        for (double v : values) {
            squares += (v - mean) * (v - mean);
        }
        return new Row(streams, test, mean, values.length > 1 ? Math.sqrt(squares / (values.length - 1)) : 0);
    }

    /** Prompt tokens per second of {@code w}'s prompts submitted at once, one output token each. */
    private static double prefill(LlmEngine engine, BenchWorkload w, int vocab) {
        long start = System.nanoTime();
        run(engine, w.requests(vocab));
        return (double) w.numPrompts() * w.inputLen() / ((System.nanoTime() - start) / 1e9);
    }

    /**
     * Output tokens after the first per second of one tg run, over the time from the last stream's first
     * token to the end: the first tokens come from the (tiny) prefill, which this test leaves out. Every
     * request of the run was submitted at once, so their end-to-end times share one start.
     */
    private static double decodeTokensPerSecond(List<GenerationResult> results) {
        double seconds = 0;
        double lastFirstToken = 0;
        long tokens = 0;
        for (GenerationResult r : results) {
            seconds = Math.max(seconds, r.timings().totalMs() / 1e3);
            lastFirstToken = Math.max(lastFirstToken, r.timings().timeToFirstTokenMs() / 1e3);
            tokens += r.usage().completionTokens() - 1;
        }
        return tokens / (seconds - lastFirstToken);
    }

    private static List<GenerationResult> run(LlmEngine engine, List<GenerationRequest> requests) {
        List<GenerationHandle> handles = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) {
            handles.add(engine.submit(r));
        }
        List<GenerationResult> results = new ArrayList<>(handles.size());
        for (GenerationHandle h : handles) {
            results.add(h.result().join());
        }
        return results;
    }
}
