package io.xpuflow.runtime.reference;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Arch;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against {@link ReferenceModel} on random checkpoints of shapes it has never seen
 * ({@link RandomCheckpoint}): logits at every prompt position, MTP logits, the routing trace, greedy
 * generation through the KV cache, and chunked prefill.
 *
 * <p>Routing is compared token by token except where the reference's choice hangs on a gap below
 * {@link #TIE} (two selection scores, or two group scores, that close could legitimately order either
 * way under float rounding); such tokens are counted, not compared. Each MoE spec must also show that
 * its correction bias and its group limit actually changed some choices, so that an engine ignoring
 * them would fail.
 */
class ReferenceComparisonTest {
    static final double TOLERANCE = 1e-4;
    static final double TIE = 1e-4;
    static final double FLIP_MARGIN = 1e-3;
    static final int GENERATE = 20;

    @TempDir
    static Path tmp;

    private static final Map<String, Path> DIRS = new ConcurrentHashMap<>();
    private static final Map<String, String> SUMMARY = new ConcurrentSkipListMap<>();

    static Stream<Spec> specs() {
        return Stream.of(
                Spec.of("mimo-3-dense-then-moe-prompt-90", Arch.MIMO).seed(11).vocab(160).layers(6).prompt(90)
                        .swaPattern(0, 1, 1, 0, 1, 1).moePattern(0, 0, 0, 1, 1, 1)
                        .attention(4, 1, 32, 16).swaAttention(4, 2, 32, 16).partialRotary(0.5).theta(5e6, 1e4)
                        .window(6).sinks(true, false).valueScale(0.707).experts(8, 2, 32).mtp(1),
                Spec.of("mimo-16-experts-4-groups-noaux", Arch.MIMO).seed(12).hidden(48).layers(3).prompt(32)
                        .swaPattern(0, 1, 1).moePattern(0, 1, 1).attention(4, 2, 16, 16).swaAttention(4, 4, 16, 16)
                        .window(8).valueScale(0.707).experts(16, 4, 16).groups(4, 2).routedScaling(2.5)
                        .dtype(DType.F32).mtp(1),
                Spec.of("mimo-softmax-4-groups-max", Arch.MIMO).seed(13).hidden(48).layers(3).prompt(32)
                        .swaPattern(1, 0, 1).moePattern(1, 1, 1).window(5).experts(12, 3, 16)
                        .routing("softmax", "group_limited_greedy").groups(4, 2).normTopk(false),
                Spec.of("mimo-softmax-noaux-4-groups", Arch.MIMO).seed(14).hidden(48).layers(2).prompt(24)
                        .swaPattern(1, 0).moePattern(1, 1).window(6).experts(16, 3, 16)
                        .routing("softmax", "noaux_tc").groups(4, 2).dtype(DType.F32),
                Spec.of("mimo-head-dims-40-24-rotary-12", Arch.MIMO).seed(15).vocab(100).hidden(56).layers(4).prompt(36)
                        .swaPattern(0, 1, 1, 0).moePattern(0, 1, 1, 1).attention(3, 1, 40, 24).swaAttention(6, 2, 20, 36)
                        .partialRotary(0.3).theta(5e6, 1e4).window(4).valueScale(0.707).experts(8, 2, 24).mtp(1),
                Spec.of("mimo-window-3-prompt-40", Arch.MIMO).seed(16).layers(4).prompt(40)
                        .swaPattern(1, 1, 0, 1).moePattern(0, 1, 0, 1).window(3).valueScale(0.707).experts(8, 2, 16)
                        .dtype(DType.F32).mtp(1),
                Spec.of("mimo-window-1-no-sink-prompt-40", Arch.MIMO).seed(17).layers(3).prompt(40)
                        .swaPattern(1, 1, 1).moePattern(0, 0, 1).window(1).sinks(false, false).valueScale(0.5)
                        .experts(8, 2, 16).mtp(1),
                Spec.of("mimo-fp8-16x16-on-40-72", Arch.MIMO).seed(18).vocab(96).hidden(40).intermediate(72).layers(3)
                        .prompt(32).swaPattern(0, 1, 1).moePattern(0, 1, 1).attention(3, 1, 20, 12).swaAttention(2, 2, 20, 28)
                        .partialRotary(0.4).window(6).valueScale(0.707).experts(8, 2, 24).fp8(16, 16).mtp(1),
                Spec.of("mimo-fp8-8x32-shared-2-mtp", Arch.MIMO).seed(19).vocab(120).hidden(72).intermediate(40).layers(3)
                        .prompt(40).swaPattern(1, 0, 1).moePattern(0, 1, 1).attention(4, 2, 24, 16).swaAttention(6, 3, 24, 20)
                        .window(7).valueScale(0.707).experts(8, 3, 20).shared(1).fp8(8, 32).mtp(2),
                Spec.of("mimo-f16-tied-shared-full-sink", Arch.MIMO).seed(20).layers(3).prompt(30)
                        .swaPattern(0, 1, 0).moePattern(0, 1, 1).window(5).sinks(true, true).valueScale(0.6)
                        .experts(8, 2, 16).shared(2).tie(true).dtype(DType.F16).mtp(1),
                Spec.of("mimo-window-20-over-kv-blocks-top-1", Arch.MIMO).seed(28).hidden(48).layers(3).prompt(70)
                        .swaPattern(1, 0, 1).moePattern(0, 1, 1).attention(4, 2, 16, 16).swaAttention(4, 2, 16, 16)
                        .window(20).valueScale(0.707).experts(4, 1, 16).mtp(1),
                // more expert groups than a fixed-size stack array in the router once held
                Spec.of("mimo-4096-experts-in-2048-groups", Arch.MIMO).seed(30).hidden(16).layers(2).prompt(16)
                        .swaPattern(0, 1).moePattern(0, 1).attention(2, 1, 8, 8).swaAttention(2, 1, 8, 8).window(4)
                        .experts(4096, 2, 2).groups(2048, 4),
                Spec.of("llama-odd-sizes-hidden-30-vocab-97", Arch.LLAMA).seed(29).vocab(97).hidden(30).layers(2).prompt(33)
                        .attention(3, 1, 10, 10).intermediate(45).dtype(DType.F32),
                Spec.of("llama-gqa-llama3-rope-tied", Arch.LLAMA).seed(21).vocab(200).hidden(48).layers(3).prompt(40)
                        .attention(6, 2, 12, 12).intermediate(80).llama3(8, 1, 4, 32).tie(true).dtype(DType.F32),
                Spec.of("llama-bf16-untied-no-head-dim", Arch.LLAMA).seed(22).vocab(300).hidden(64).layers(2).prompt(32)
                        .attention(8, 8, 8, 8).noHeadDimKey().theta(5e5, 5e5),
                Spec.of("mixtral-window-5-f16", Arch.MIXTRAL).seed(23).hidden(48).layers(3).prompt(40)
                        .attention(4, 2, 12, 12).intermediate(40).experts(6, 2, 40).window(5).dtype(DType.F16),
                Spec.of("qwen3-qk-norm-head-24", Arch.QWEN3).seed(24).layers(3).prompt(32)
                        .attention(4, 2, 24, 24).theta(1e6, 1e6).tie(true),
                Spec.of("qwen2-qkv-bias", Arch.QWEN2).seed(25).vocab(150).hidden(48).layers(2).prompt(32)
                        .attention(6, 2, 8, 8).theta(1e6, 1e6).dtype(DType.F32),
                Spec.of("qwen3-moe-default-norm", Arch.QWEN3_MOE).seed(26).hidden(48).layers(3).prompt(32)
                        .attention(4, 2, 16, 16).experts(8, 2, 24).mlpOnly(0).normTopk(null),
                Spec.of("qwen2-moe-shared-gate", Arch.QWEN2_MOE).seed(27).hidden(48).layers(2).prompt(32)
                        .attention(4, 2, 12, 12).experts(6, 2, 16).shared(2).normTopk(true).dtype(DType.F32));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("specs")
    void logitsMtpAndRoutingFollowTheReference(Spec spec) {
        Path dir = checkpoint(spec);
        ReferenceModel ref = ReferenceModel.load(dir);
        int[] prompt = RandomCheckpoint.prompt(spec);
        ReferenceModel.Forward f = ref.forward(prompt);
        ModelRunner.Scores s;
        try (LoadedModel model = load(dir, 64); ModelRunner runner = new ModelRunner(model, prompt.length, 1)) {
            s = runner.score(prompt, ref.hasMtp(), ref.numMoeLayers() > 0);
        }
        double err = maxError(s.logits(), f.logits());
        note(spec, "logits", err);
        assertThat(err).as("%s: max |engine - reference| over logits at all %d positions = %.3g", spec, prompt.length, err)
                .isLessThanOrEqualTo(TOLERANCE);
        if (ref.hasMtp()) {
            double mtpErr = maxError(s.mtpLogits(), ref.mtpLogits(prompt, f.normedHidden()));
            note(spec, "mtp", mtpErr);
            assertThat(mtpErr).as("%s: max |engine - reference| over MTP logits = %.3g", spec, mtpErr)
                    .isLessThanOrEqualTo(TOLERANCE);
        }
        if (ref.numMoeLayers() > 0) {
            checkRouting(spec, "routing", s.experts(), f.routes());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("specs")
    void greedyGenerationFollowsTheReference(Spec spec) {
        Path dir = checkpoint(spec);
        ReferenceModel ref = ReferenceModel.load(dir);
        int[] prompt = RandomCheckpoint.prompt(spec);
        int[] got;
        try (LoadedModel model = load(dir, 64); ModelRunner runner = new ModelRunner(model, prompt.length + GENERATE, 1)) {
            got = runner.generateGreedy(prompt, GENERATE, true);
        }
        assertThat(got).as("%s: generated tokens", spec).hasSize(GENERATE);
        int[] seq = prompt;
        double smallest = Double.POSITIVE_INFINITY;
        for (int i = 0; i < GENERATE; i++) {
            double[][] logits = ref.forward(seq).logits(); // full recompute every step
            double[] last = logits[logits.length - 1];
            int best = argmax(last);
            double margin = last[best] - secondBest(last, best);
            smallest = Math.min(smallest, margin);
            if (got[i] != best) {
                assertThat(margin).as("%s: step %d generated %d, the reference's argmax is %d at a top-2 margin of %.3g",
                        spec, i, got[i], best, margin).isLessThan(FLIP_MARGIN);
                note(spec, "greedy", "flip at step " + i + " (margin " + String.format("%.2g", margin) + ")");
                return; // after a legitimate flip the continuations part
            }
            seq = append(seq, best);
        }
        note(spec, "greedy", "20/20 (smallest margin " + String.format("%.2g", smallest) + ")");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("specs")
    void chunkedPrefillGivesTheSameResults(Spec spec) {
        Path dir = checkpoint(spec);
        ReferenceModel ref = ReferenceModel.load(dir);
        int[] prompt = RandomCheckpoint.prompt(spec);
        boolean moe = ref.numMoeLayers() > 0;
        ModelRunner.Scores whole;
        ModelRunner.Scores chunked;
        try (LoadedModel model = load(dir, 64); ModelRunner runner = new ModelRunner(model, prompt.length, 1)) {
            whole = runner.score(prompt, ref.hasMtp(), moe);
        }
        try (LoadedModel model = load(dir, 5); ModelRunner runner = new ModelRunner(model, prompt.length, 1)) {
            chunked = runner.score(prompt, ref.hasMtp(), moe);
        }
        double diff = maxError(chunked.logits(), toDouble(whole.logits()));
        note(spec, "chunk5-vs-64", diff);
        assertThat(diff).as("%s: max |chunks of 5 - one step| over logits = %.3g", spec, diff).isLessThanOrEqualTo(1e-5);
        ReferenceModel.Forward f = ref.forward(prompt);
        double err = maxError(chunked.logits(), f.logits());
        assertThat(err).as("%s: chunks of 5, max |engine - reference| = %.3g", spec, err).isLessThanOrEqualTo(TOLERANCE);
        if (ref.hasMtp()) {
            double mtpErr = maxError(chunked.mtpLogits(), ref.mtpLogits(prompt, f.normedHidden()));
            assertThat(mtpErr).as("%s: chunks of 5, MTP max |engine - reference| = %.3g", spec, mtpErr)
                    .isLessThanOrEqualTo(TOLERANCE);
        }
        if (moe) {
            checkRouting(spec, "chunked routing", chunked.experts(), f.routes());
        }
    }

    @AfterAll
    static void printSummary() {
        SUMMARY.forEach((k, v) -> System.out.println("[reference] " + k + ": " + v));
    }

    // --- helpers -------------------------------------------------------------------------------

    private void checkRouting(Spec spec, String what, int[][][] got, List<ReferenceModel.Route[]> want) {
        assertThat(got.length).as("%s: MoE layers in the trace", spec).isEqualTo(want.size());
        int compared = 0;
        int ties = 0;
        boolean biasMattered = false;
        boolean groupsMattered = false;
        for (int m = 0; m < want.size(); m++) {
            for (int t = 0; t < want.get(m).length; t++) {
                ReferenceModel.Route r = want.get(m)[t];
                biasMattered |= r.biasChanged();
                groupsMattered |= r.groupsChanged();
                if (r.margin() < TIE) {
                    ties++;
                    continue;
                }
                assertThat(got[m][t]).as("%s: %s, MoE layer %d token %d experts (best first)", spec, what, m, t)
                        .containsExactly(r.experts());
                compared++;
            }
        }
        note(spec, what, compared + " compared, " + ties + " near-ties skipped");
        assertThat(compared).as("%s: routing decisions compared", spec).isGreaterThan(ties * 10);
        if (spec.arch == Arch.MIMO && spec.topkMethod.equals("noaux_tc")) {
            assertThat(biasMattered).as("%s: the correction bias changed no choice; the spec tests nothing", spec).isTrue();
        }
        if (spec.nGroup > 1) {
            assertThat(groupsMattered).as("%s: the group limit changed no choice; the spec tests nothing", spec).isTrue();
        }
    }

    /** A step of more rows than one MoE chunk (512): the experts run chunk by chunk, each row as alone. */
    @Test
    void aStepLongerThanOneMoeChunkFollowsTheReference() {
        Spec spec = Spec.of("mimo-moe-step-of-600-rows", Arch.MIMO).seed(31).vocab(64).hidden(16).layers(2).prompt(600);
        Path dir = checkpoint(spec);
        ReferenceModel ref = ReferenceModel.load(dir);
        int[] prompt = RandomCheckpoint.prompt(spec);
        ReferenceModel.Forward f = ref.forward(prompt);
        ModelRunner.Scores s;
        try (LoadedModel model = load(dir, prompt.length); ModelRunner runner = new ModelRunner(model, prompt.length, 1)) {
            s = runner.score(prompt, false, true);
        }
        double err = maxError(s.logits(), f.logits());
        assertThat(err).as("%s: max |engine - reference| over logits at all %d positions in one step = %.3g", spec,
                prompt.length, err).isLessThanOrEqualTo(TOLERANCE);
    }

    private static Path checkpoint(Spec spec) {
        return DIRS.computeIfAbsent(spec.name, n -> RandomCheckpoint.write(tmp, spec));
    }

    private static LoadedModel load(Path dir, int stepTokens) {
        return LoadedModel.load(dir, new LoadOptions(2, stepTokens, 1, WeightFormat.EXACT, null));
    }

    private static void note(Spec spec, String what, Object value) {
        String v = value instanceof Double d ? String.format("%.2e", d) : value.toString();
        SUMMARY.merge(spec.name, what + "=" + v, (a, b) -> a + ", " + b);
    }

    static double maxError(float[][] got, double[][] want) {
        assertThat(got.length).as("rows").isEqualTo(want.length);
        double worst = 0;
        for (int t = 0; t < got.length; t++) {
            assertThat(got[t].length).as("row %d length", t).isEqualTo(want[t].length);
            for (int v = 0; v < got[t].length; v++) {
                double d = Math.abs(got[t][v] - want[t][v]);
                if (Double.isNaN(d)) {
                    return d;
                }
                worst = Math.max(worst, d);
            }
        }
        return worst;
    }

    static double[][] toDouble(float[][] a) {
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = new double[a[i].length];
            for (int j = 0; j < a[i].length; j++) {
                out[i][j] = a[i][j];
            }
        }
        return out;
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static double secondBest(double[] v, int best) {
        double s = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v.length; i++) {
            if (i != best) {
                s = Math.max(s, v[i]);
            }
        }
        return s;
    }

    static int[] append(int[] a, int x) {
        int[] out = java.util.Arrays.copyOf(a, a.length + 1);
        out[a.length] = x;
        return out;
    }
}
