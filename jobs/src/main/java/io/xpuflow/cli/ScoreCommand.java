package io.xpuflow.cli;

import io.xpuflow.runtime.checkpoint.SafetensorsWriter;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code xpuflow score}: logits at every prompt position (exact mode), written as safetensors. */
@Command(name = "score", description = "Write the logits of every prompt position (and MTP logits) to a safetensors file.")
final class ScoreCommand implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    FormatOptions formats = new FormatOptions();

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "DIR", description = "Checkpoint directory (config.json + safetensors).")
    Path model;

    @Option(names = "--prompt-ids", required = true, paramLabel = "IDS", converter = PromptIds.Converter.class,
            description = "Comma-separated token ids.")
    PromptIds prompt;

    @Option(names = "--out", required = true, paramLabel = "FILE",
            description = "Output: 'logits' F32 [T, vocab], with --mtp also 'mtp_logits' F32 [T-1, vocab] and, when the "
                    + "checkpoint has two MTP layers, 'mtp1_logits' F32 [T-2, vocab] (layer 1 chained on layer 0).")
    Path out;

    @Option(names = "--mtp", description = "Also run MTP layer 0: row j takes the hidden state at j and token j+1; "
            + "and MTP layer 1 if present: row j takes layer 0's output at j and token j+2.")
    boolean mtp;

    @Override
    public Integer call() {
        int steps = 256;
        try (LoadedModel m = LoadedModel.load(model, formats.applyTo(new LoadOptions(common.threads, steps, 1)));
             ModelRunner runner = new ModelRunner(m, Math.max(1, prompt.ids().length), 1)) {
            ModelRunner.Scores s = runner.score(prompt.ids(), mtp, false);
            int vocab = m.config().vocabSize();
            SafetensorsWriter w = new SafetensorsWriter().addFloats("logits", flatten(s.logits(), vocab),
                    s.logits().length, vocab);
            if (mtp) {
                w.addFloats("mtp_logits", flatten(s.mtpLogits(), vocab), s.mtpLogits().length, vocab);
                if (s.mtp1Logits() != null) {
                    w.addFloats("mtp1_logits", flatten(s.mtp1Logits(), vocab), s.mtp1Logits().length, vocab);
                }
            }
            w.write(out);
            spec.commandLine().getOut().printf("wrote logits [%d, %d]%s to %s%n", s.logits().length, vocab,
                    (mtp ? " and mtp_logits [" + s.mtpLogits().length + ", " + vocab + "]" : "")
                    + (s.mtp1Logits() != null ? " and mtp1_logits [" + s.mtp1Logits().length + ", " + vocab + "]" : ""), out);
        }
        return 0;
    }

    private static float[] flatten(float[][] rows, int width) {
        float[] flat = new float[rows.length * width];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, flat, i * width, width);
        }
        return flat;
    }
}
