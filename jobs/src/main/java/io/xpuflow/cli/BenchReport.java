package io.xpuflow.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.device.Devices;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;

/**
 * What every engine benchmark reports besides its own figures, so that two runs can be compared: a
 * header naming the model, the formats, the kernels, the engine options and the workload, printed before
 * the run, and the per-request latency percentiles after it; {@code --output-json} writes both with the
 * results as one document.
 */
final class BenchReport {
    private BenchReport() {}

    /**
     * The header as JSON: every setting that changes the figures. Read from the open engine rather than
     * from the command line, so it states what ran (the resolved formats, the thread count of "all cores",
     * prefix caching as the pipeline's operator sets it).
     */
    static ObjectNode header(String benchmark, LlmEngine engine, BenchWorkload w) {
        EngineOptions options = engine.options();
        ObjectNode o = BenchCommand.JSON.createObjectNode();
        o.put("benchmark", benchmark);
        o.put("model", options.modelDir().toString());
        o.put("architecture", engine.config().architecture());
        o.put("checkpoint_dtype", engine.placement().storedDtype().toString());
        BenchCommand.putPlacement(o, engine);
        o.put("cpu_isa", Devices.cpuIsa());
        o.put("threads", threads(options));
        o.put("max_num_seqs", options.maxNumSeqs());
        o.put("max_num_batched_tokens", options.maxNumBatchedTokens());
        o.put("kv_cache_memory_mib", options.kvCacheBytes() >> 20);
        o.put("max_model_len", engine.maxModelLen());
        o.put("prefix_caching", options.enablePrefixCaching());
        SpeculativeConfig spec = options.speculative();
        o.put("speculative_method", spec.method().name().toLowerCase(Locale.ROOT));
        o.put("num_speculative_tokens", spec.numSpeculativeTokens());
        o.put("speculative_adaptive", spec.adaptive());
        o.put("num_prompts", w.numPrompts());
        o.put("input_len", w.inputLen());
        o.put("output_len", w.outputLen());
        o.put("seed", w.seed());
        o.put("prompt", w.promptIds() == null ? "random" : "text");
        return o;
    }

    /**
     * Speculative decoding of the measured requests, when the engine speculates: drafts verified and
     * accepted (from their usage), and the mean accepted length (tokens per verification step, the bonus
     * token included) over every verification of the run, warm-up included.
     */
    static void speculative(PrintWriter out, ObjectNode o, LlmEngine engine, List<GenerationResult> measured) {
        if (!engine.options().speculative().enabled()) {
            return;
        }
        long drafted = 0;
        long accepted = 0;
        for (GenerationResult r : measured) {
            drafted += r.usage().draftTokens();
            accepted += r.usage().acceptedTokens();
        }
        double rate = drafted == 0 ? 0 : (double) accepted / drafted;
        double meanLength = engine.metrics().speculative().meanAcceptedLength();
        out.printf(Locale.ROOT, "Speculative (%s, k %d%s): %d drafted, %d accepted, acceptance rate %.1f%%, mean"
                        + " accepted length %.2f%n", engine.options().speculative().method().name().toLowerCase(Locale.ROOT),
                engine.options().speculative().numSpeculativeTokens(),
                engine.options().speculative().adaptive() ? " adaptive" : "", drafted, accepted, 100 * rate, meanLength);
        o.put("speculative_method", engine.options().speculative().method().name().toLowerCase(Locale.ROOT));
        o.put("num_speculative_tokens", engine.options().speculative().numSpeculativeTokens());
        o.put("draft_tokens", drafted);
        o.put("accepted_tokens", accepted);
        o.put("acceptance_rate", rate);
        o.put("mean_accepted_length", meanLength);
    }

    /** The resolved thread count: 0 means every core, as {@link io.xpuflow.device.Device#open} resolves it. */
    static int threads(EngineOptions options) {
        return options.threads() > 0 ? options.threads() : Runtime.getRuntime().availableProcessors();
    }

    /** ", speculative mtp k=2 adaptive" (or "fixed"); "" without speculative decoding, as before it existed. */
    private static String speculative(ObjectNode h) {
        String method = h.path("speculative_method").asText("none");
        return method.equals("none") ? "" : String.format(Locale.ROOT, ", speculative %s k=%d %s", method,
                h.get("num_speculative_tokens").asInt(), h.get("speculative_adaptive").asBoolean() ? "adaptive" : "fixed");
    }

    /** Prints the header: the placement line first (as before), then the run's settings. */
    static void printHeader(PrintWriter out, LlmEngine engine, ObjectNode h) {
        out.println(BenchCommand.placementLine(engine));
        out.printf(Locale.ROOT, "Model dir: %s (%s), %s kernels, %d threads%n", h.get("model").asText(),
                h.get("architecture").asText(), h.get("cpu_isa").asText(), h.get("threads").asInt());
        out.printf(Locale.ROOT, "Engine options: max-num-seqs %d, max-num-batched-tokens %d, kv-cache-memory %d MiB,"
                        + " max-model-len %d, prefix caching %s%s%n", h.get("max_num_seqs").asInt(),
                h.get("max_num_batched_tokens").asInt(), h.get("kv_cache_memory_mib").asLong(),
                h.get("max_model_len").asInt(), h.get("prefix_caching").asBoolean() ? "on" : "off",
                speculative(h));
        if (h.get("prompt").asText().equals("text")) {
            out.printf(Locale.ROOT, "Workload: %d prompts of the --prompt text (%d tokens), %d output tokens%n",
                    h.get("num_prompts").asInt(), h.get("input_len").asInt(), h.get("output_len").asInt());
        } else {
            out.printf(Locale.ROOT, "Workload: %d prompts, %d input tokens, %d output tokens, seed %d%n",
                    h.get("num_prompts").asInt(), h.get("input_len").asInt(), h.get("output_len").asInt(),
                    h.get("seed").asLong());
        }
        out.flush();
    }

    /**
     * Mean and percentiles of a few tens to hundreds of values. Computed exactly, by sorting, with the
     * linear interpolation of {@code numpy.percentile} (what vLLM's benchmark_serving reports), rather than
     * with a histogram library: at these counts a sort costs nothing and a histogram's bucketing would
     * only round the figures.
     */
    record Percentiles(int count, double mean, double p50, double p90, double p99) {
        static Percentiles of(double[] values) {
            if (values.length == 0) {
                throw new IllegalArgumentException("no values");
            }
            double[] sorted = values.clone();
            Arrays.sort(sorted);
            double sum = 0;
            for (double v : sorted) {
                sum += v;
            }
            return new Percentiles(sorted.length, sum / sorted.length, at(sorted, 50), at(sorted, 90), at(sorted, 99));
        }

        private static double at(double[] sorted, double percent) {
            double position = percent / 100 * (sorted.length - 1);
            int below = (int) Math.floor(position);
            int above = Math.min(below + 1, sorted.length - 1);
            return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
        }

        String line(String label) {
            return String.format(Locale.ROOT, "%-5s ms: mean %.2f, p50 %.2f, p90 %.2f, p99 %.2f (%d requests)", label,
                    mean, p50, p90, p99, count);
        }

        /** vLLM's names: {@code mean_ttft_ms}, {@code p50_ttft_ms}, ... */
        void putJson(ObjectNode o, String name) {
            o.put("mean_" + name + "_ms", mean);
            o.put("p50_" + name + "_ms", p50);
            o.put("p90_" + name + "_ms", p90);
            o.put("p99_" + name + "_ms", p99);
        }
    }

    /**
     * Time to first token, time per output token after the first, and end-to-end latency of each request,
     * from its {@link GenerationResult.Timings} (measured by the engine from the request's submission).
     * TPOT leaves out requests of one output token, which have none (as vLLM does); {@code tpot} is
     * {@code null} when every request had one.
     */
    record RequestLatencies(Percentiles ttft, Percentiles tpot, Percentiles e2e) {
        static RequestLatencies of(List<GenerationResult.Timings> timings, List<Integer> outputTokens) {
            double[] ttft = new double[timings.size()];
            double[] e2e = new double[timings.size()];
            List<Double> tpot = new ArrayList<>();
            for (int i = 0; i < timings.size(); i++) {
                GenerationResult.Timings t = timings.get(i);
                ttft[i] = t.timeToFirstTokenMs();
                e2e[i] = t.totalMs();
                if (outputTokens.get(i) > 1) {
                    tpot.add(t.timePerOutputTokenMs());
                }
            }
            return new RequestLatencies(Percentiles.of(ttft),
                    tpot.isEmpty() ? null : Percentiles.of(tpot.stream().mapToDouble(Double::doubleValue).toArray()),
                    Percentiles.of(e2e));
        }

        static RequestLatencies of(List<GenerationResult> results) {
            return of(results.stream().map(GenerationResult::timings).toList(),
                    results.stream().map(r -> r.usage().completionTokens()).toList());
        }

        void print(PrintWriter out, String prefix) {
            out.println(prefix + ttft.line("TTFT"));
            out.println(prefix + (tpot != null ? tpot.line("TPOT") : "TPOT  ms: none (one output token per request)"));
            out.println(prefix + e2e.line("E2E"));
        }

        void putJson(ObjectNode o) {
            ttft.putJson(o, "ttft");
            if (tpot != null) {
                tpot.putJson(o, "tpot");
            }
            e2e.putJson(o, "e2el");
        }
    }

    /**
     * A usage error, before anything runs, when {@code --output-json} cannot be written: a run can take
     * minutes, and its figures should not be lost to a typo.
     */
    static void checkOutputJson(CommandLine.Model.CommandSpec spec, Path file) {
        if (file == null) {
            return;
        }
        Path parent = file.toAbsolutePath().getParent();
        if (Files.isDirectory(file) || parent == null || !Files.isDirectory(parent)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--output-json must name a file in an existing directory, was " + file);
        }
    }

    /** {@code --output-json}: the header and the results as one document, {@code {"header": ..., "results": ...}}. */
    static void writeJson(Path file, ObjectNode header, ObjectNode results) {
        if (file == null) {
            return;
        }
        ObjectNode doc = BenchCommand.JSON.createObjectNode();
        doc.set("header", header);
        doc.set("results", results);
        try {
            BenchCommand.JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), doc);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
