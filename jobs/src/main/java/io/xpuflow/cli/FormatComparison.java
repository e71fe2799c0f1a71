package io.xpuflow.cli;

import io.xpuflow.runtime.config.FfnConfig;
import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.model.ModelRunner.Taps;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The same tokens in a fast weight format and in the exact mode, set side by side sub-layer by
 * sub-layer: how far each output moved (max |delta|, relative L2 error, cosine similarity), how
 * often the routers chose the same experts, and the first place the two part beyond a threshold.
 */
record FormatComparison(List<Row> rows, Optional<Row> firstDivergence) {

    /**
     * One compared output. For router rows {@code agreement} is the fraction of tokens whose expert set
     * is the same in both modes and the error fields are NaN.
     */
    record Row(int layer, String part, double maxAbs, double relativeError, double cosine, double agreement) {
        boolean router() {
            return Double.isNaN(relativeError);
        }
    }

    static FormatComparison of(ModelConfig config, Taps exact, Taps fast, double threshold) {
        List<Row> rows = new ArrayList<>();
        int moe = 0;
        for (int l = 0; l < config.numLayers(); l++) {
            rows.add(compare(l, "attention", exact.attention()[l], fast.attention()[l]));
            boolean isMoe = config.layers().get(l).ffn() instanceof FfnConfig.Moe;
            if (isMoe) {
                rows.add(routers(l, exact.scores().experts()[moe], fast.scores().experts()[moe]));
                moe++;
            }
            rows.add(compare(l, isMoe ? "moe" : "ffn", exact.ffn()[l], fast.ffn()[l]));
        }
        rows.add(compare(-1, "final hidden", exact.hidden(), fast.hidden()));
        rows.add(compare(-1, "logits", exact.scores().logits(), fast.scores().logits()));
        Optional<Row> first = rows.stream().filter(r -> !r.router() && r.relativeError() > threshold).findFirst();
        return new FormatComparison(List.copyOf(rows), first);
    }

    /** Top-1 agreement of the logits over the positions. */
    static double top1Agreement(Taps exact, Taps fast) {
        float[][] a = exact.scores().logits();
        float[][] b = fast.scores().logits();
        int same = 0;
        for (int t = 0; t < a.length; t++) {
            same += argmax(a[t]) == argmax(b[t]) ? 1 : 0;
        }
        return (double) same / a.length;
    }

    static Row compare(int layer, String part, float[][] want, float[][] got) {
        double maxAbs = 0;
        double diff2 = 0;
        double want2 = 0;
        double got2 = 0;
        double dot = 0;
        for (int t = 0; t < want.length; t++) {
            for (int i = 0; i < want[t].length; i++) {
                double w = want[t][i];
                double g = got[t][i];
                maxAbs = Math.max(maxAbs, Math.abs(w - g));
                diff2 += (w - g) * (w - g);
                want2 += w * w;
                got2 += g * g;
                dot += w * g;
            }
        }
        double rel = want2 == 0 ? (diff2 == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(diff2 / want2);
        double cos = want2 == 0 || got2 == 0 ? (want2 == got2 ? 1 : 0) : dot / Math.sqrt(want2 * got2);
        return new Row(layer, part, maxAbs, rel, cos, Double.NaN);
    }

    static Row routers(int layer, int[][] want, int[][] got) {
        int same = 0;
        for (int t = 0; t < want.length; t++) {
            int[] a = want[t].clone();
            int[] b = got[t].clone();
            Arrays.sort(a);
            Arrays.sort(b);
            same += Arrays.equals(a, b) ? 1 : 0;
        }
        return new Row(layer, "router", Double.NaN, Double.NaN, Double.NaN, (double) same / want.length);
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
