package io.xpuflow.cli;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow compare}: the precision-alignment tool. Runs the same tokens in a fast weight format
 * and in the exact mode and prints, per layer and sub-layer, how far the outputs moved and where they
 * first part beyond a threshold.
 */
@Command(name = "compare", description = {"Run the same tokens in a fast weight format and in the exact mode; print"
        + " per layer and sub-layer max |delta|, relative error, cosine similarity and router agreement, and the"
        + " first place the two diverge."})
final class CompareCommand implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "DIR", description = "Checkpoint directory.")
    Path model;

    @Option(names = "--prompt-ids", required = true, paramLabel = "IDS", converter = PromptIds.Converter.class,
            description = "Comma-separated token ids.")
    PromptIds prompt;

    @Option(names = "--weight-format", required = true, paramLabel = "FORMAT",
            description = "The fast format to compare with the exact mode: bf16 or int8.")
    String weightFormat;

    @Option(names = "--kv-cache-dtype", paramLabel = "DTYPE", defaultValue = "bf16",
            description = "KV cache of the fast side: f32 or bf16 (default ${DEFAULT-VALUE}).")
    String kvCacheDtype;

    @Option(names = "--threshold", paramLabel = "X", defaultValue = "0.01",
            description = "Relative L2 error that counts as diverged (default ${DEFAULT-VALUE}).")
    double threshold;

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        WeightFormat format;
        KvCacheDtype kv;
        try {
            format = WeightFormat.parse(weightFormat);
            kv = KvCacheDtype.parse(kvCacheDtype);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        if (format == WeightFormat.EXACT) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--weight-format must be a fast format (bf16 or"
                    + " int8): the exact mode is the reference it is compared with");
        }
        int[] ids = prompt.ids();
        try (LoadedModel exact = LoadedModel.load(model, new LoadOptions(common.threads, ids.length, 1,
                     WeightFormat.EXACT, KvCacheDtype.F32));
             LoadedModel fast = LoadedModel.load(model, new LoadOptions(common.threads, ids.length, 1, format, kv));
             ModelRunner e = new ModelRunner(exact, ids.length, 1);
             ModelRunner f = new ModelRunner(fast, ids.length, 1)) {
            ModelRunner.Taps want = e.scoreWithTaps(ids);
            ModelRunner.Taps got = f.scoreWithTaps(ids);
            FormatComparison c = FormatComparison.of(exact.config(), want, got, threshold);
            print(c, FormatComparison.top1Agreement(want, got), format, kv, ids.length);
        }
        return 0;
    }

    private void print(FormatComparison c, double top1, WeightFormat format, KvCacheDtype kv, int tokens) {
        PrintWriter out = spec.commandLine().getOut();
        out.printf("%s weights with a %s KV cache against the exact mode, %d tokens%n", format.optionValue(),
                kv.optionValue(), tokens);
        out.printf("%-6s %-13s %12s %12s %12s%n", "layer", "output", "max |delta|", "rel. error", "cosine");
        for (FormatComparison.Row r : c.rows()) {
            String layer = r.layer() >= 0 ? Integer.toString(r.layer()) : "-";
            if (r.router()) {
                out.printf("%-6s %-13s %s%n", layer, r.part(),
                        String.format("same experts for %.1f%% of tokens", 100 * r.agreement()));
            } else {
                out.printf("%-6s %-13s %12.4g %12.4g %12.6f%n", layer, r.part(), r.maxAbs(), r.relativeError(),
                        r.cosine());
            }
        }
        out.printf("top-1 agreement of the logits: %.1f%%%n", 100 * top1);
        out.println(c.firstDivergence().map(r -> String.format("first divergence beyond %.3g: layer %s %s (relative"
                        + " error %.4g)", threshold, r.layer() >= 0 ? r.layer() : "-", r.part(), r.relativeError()))
                .orElse(String.format("no output diverges beyond %.3g", threshold)));
    }
}
