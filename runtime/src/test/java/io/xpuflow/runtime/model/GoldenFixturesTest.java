package io.xpuflow.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.device.Devices;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.Fixtures.GoldenPrompt;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Exact mode against the golden outputs of the independent FP32 reference: logits within 1e-3 at
 * every position, greedy continuations, MoE routing and MTP logits, for every fixture checkpoint.
 */
class GoldenFixturesTest {
    static final double LOGIT_TOLERANCE = 1e-3;
    static final float FLIP_MARGIN = 0.01f;

    static Stream<String> fixtures() {
        return Stream.of("stories260k", "mixtral-stories260k", "tiny-mimo-v2", "tiny-mimo-v2-fp8", "stories260k-mtp");
    }

    @AfterEach
    void restoreIsa() {
        Devices.forceCpuIsa(bestIsa());
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsRoutingAndMtpMatchTheReference(String fixture) {
        try (LoadedModel model = load(fixture, 64); ModelRunner runner = new ModelRunner(model, 256, 8)) {
            boolean mimo = !model.config().mtpLayers().isEmpty();
            for (GoldenPrompt p : Fixtures.golden(fixture)) {
                ModelRunner.Scores s = runner.score(p.ids(), mimo, p.experts() != null);
                assertClose(fixture + " p" + p.index() + " logits", s.logits(), p.logits());
                if (p.experts() != null) {
                    assertRouting(fixture + " p" + p.index(), s.experts(), p.experts(), p.ids().length);
                }
                if (p.mtpLogits() != null) {
                    assertClose(fixture + " p" + p.index() + " mtp_logits", s.mtpLogits(), p.mtpLogits());
                }
                if (p.mtp1Logits() != null) {
                    assertClose(fixture + " p" + p.index() + " mtp1_logits", s.mtp1Logits(), p.mtp1Logits());
                } else {
                    assertThat(s.mtp1Logits()).as(fixture + " has fewer than two MTP layers").isNull();
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void greedyContinuationsMatchTheReference(String fixture) {
        try (LoadedModel model = load(fixture, 64); ModelRunner runner = new ModelRunner(model, 256, 1)) {
            for (GoldenPrompt p : Fixtures.golden(fixture)) {
                int[] got = runner.generateGreedy(p.ids(), p.greedy().length, true);
                assertGreedy(fixture + " p" + p.index(), got, p.greedy(), p.margins());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void promptsBatchedInOneStepGiveTheSameLogitsAsAlone(String fixture) {
        List<GoldenPrompt> golden = Fixtures.golden(fixture);
        try (LoadedModel model = load(fixture, 128); ModelRunner runner = new ModelRunner(model, 256, 8)) {
            List<int[]> prompts = new ArrayList<>();
            golden.forEach(p -> prompts.add(p.ids()));
            List<ModelRunner.Scores> together = runner.scoreBatch(prompts, false, false);
            for (int i = 0; i < prompts.size(); i++) {
                ModelRunner.Scores alone = runner.score(prompts.get(i), false, false);
                // same arithmetic per row whatever else is in the step: bit-identical
                assertThat(together.get(i).logits()).as("prompt %d", i).isDeepEqualTo(alone.logits());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 7, 16})
    void chunkedPrefillMatchesTheReferenceAcrossWindowBoundaries(int stepTokens) {
        // tiny-mimo-v2 has a window of 8; p2 has 37 tokens, so chunks cut the window everywhere
        GoldenPrompt p = Fixtures.golden("tiny-mimo-v2").get(2);
        try (LoadedModel model = load("tiny-mimo-v2", stepTokens); ModelRunner runner = new ModelRunner(model, 128, 1)) {
            ModelRunner.Scores s = runner.score(p.ids(), true, true);
            assertClose("chunk " + stepTokens, s.logits(), p.logits());
            assertClose("chunk " + stepTokens + " mtp", s.mtpLogits(), p.mtpLogits());
            assertRouting("chunk " + stepTokens, s.experts(), p.experts(), p.ids().length);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 64})
    void chainedMtpLogitsMatchTheReferenceInChunksAndBatches(int stepTokens) {
        // layer 1 runs in an MTP-only step after each chunk, over every prompt of the step at once
        List<GoldenPrompt> golden = Fixtures.golden("stories260k-mtp").subList(0, 4);
        try (LoadedModel model = load("stories260k-mtp", stepTokens); ModelRunner runner = new ModelRunner(model, 256, 4)) {
            List<int[]> prompts = new ArrayList<>();
            golden.forEach(p -> prompts.add(p.ids()));
            List<ModelRunner.Scores> got = runner.scoreBatch(prompts, true, false);
            for (int i = 0; i < golden.size(); i++) {
                GoldenPrompt p = golden.get(i);
                assertClose("chunk " + stepTokens + " p" + i + " mtp", got.get(i).mtpLogits(), p.mtpLogits());
                assertClose("chunk " + stepTokens + " p" + i + " mtp1", got.get(i).mtp1Logits(), p.mtp1Logits());
            }
            // chained logits only when MTP is asked for
            assertThat(runner.score(golden.get(0).ids(), false, false).mtp1Logits()).isNull();
        }
    }

    @Test
    void incrementalDecodingEqualsFullRecomputeAcrossTheSlidingWindow() {
        GoldenPrompt p = Fixtures.golden("tiny-mimo-v2").get(1);
        try (LoadedModel model = load("tiny-mimo-v2", 64); ModelRunner runner = new ModelRunner(model, 128, 1)) {
            int steps = 30; // 20 + 30 positions: the window of 8 slides many times, blocks of 16 are freed
            int[] generated = runner.generateGreedy(p.ids(), steps, true);
            int[] seq = p.ids();
            for (int i = 0; i < steps; i++) {
                float[][] logits = runner.score(seq, false, false).logits();
                assertThat(argmax(logits[logits.length - 1])).as("step %d", i).isEqualTo(generated[i]);
                seq = append(seq, generated[i]);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"scalar", "avx2", "avx512", "avx512bf16"})
    void everyKernelPathMatchesTheReference(String isa) {
        if (!supported(isa)) {
            return; // this CPU lacks the instruction set; the path is covered where it exists
        }
        Devices.forceCpuIsa(isa);
        assertThat(Devices.cpuIsa()).isEqualTo(isa);
        for (String fixture : List.of("tiny-mimo-v2-fp8", "stories260k")) {
            GoldenPrompt p = Fixtures.golden(fixture).get(2);
            try (LoadedModel model = load(fixture, 64); ModelRunner runner = new ModelRunner(model, 256, 1)) {
                assertClose(fixture + " " + isa, runner.score(p.ids(), false, false).logits(), p.logits());
            }
        }
    }

    // --- helpers -------------------------------------------------------------------------------

    static LoadedModel load(String fixture, int stepTokens) {
        return LoadedModel.load(Fixtures.model(fixture), new LoadOptions(2, stepTokens, 8, WeightFormat.EXACT, null));
    }

    static void assertClose(String what, float[][] got, float[] want) {
        int vocab = got[0].length;
        assertThat(got.length * vocab).as(what + " size").isEqualTo(want.length);
        double worst = 0;
        int worstAt = -1;
        for (int t = 0; t < got.length; t++) {
            for (int v = 0; v < vocab; v++) {
                double d = Math.abs(got[t][v] - want[t * vocab + v]);
                if (!(d <= worst)) {
                    worst = d;
                    worstAt = t * vocab + v;
                }
            }
        }
        assertThat(worst).as("%s: max |diff| at position %d token %d", what, worstAt / vocab, worstAt % vocab)
                .isLessThanOrEqualTo(LOGIT_TOLERANCE);
    }

    static void assertRouting(String what, int[][][] got, long[] want, int tokens) {
        int layers = got.length;
        int k = got[0][0].length;
        assertThat((long) layers * tokens * k).as(what + " routing size").isEqualTo(want.length);
        for (int m = 0; m < layers; m++) {
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < k; j++) {
                    assertThat(got[m][t][j]).as("%s: MoE layer %d token %d choice %d", what, m, t, j)
                            .isEqualTo((int) want[(m * tokens + t) * k + j]);
                }
            }
        }
    }

    /** Equal, except that a flip is tolerated at a step whose reference margin is below {@link #FLIP_MARGIN}. */
    static void assertGreedy(String what, int[] got, int[] want, float[] margins) {
        assertThat(got).as(what + " length").hasSameSizeAs(want);
        for (int i = 0; i < want.length; i++) {
            if (got[i] != want[i]) {
                assertThat(margins[i]).as("%s: token %d differs (%d vs %d) at a margin of %f", what, i, got[i], want[i],
                        margins[i]).isLessThan(FLIP_MARGIN);
                return; // after a legitimate flip the continuations differ
            }
        }
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static int[] append(int[] a, int x) {
        int[] out = java.util.Arrays.copyOf(a, a.length + 1);
        out[a.length] = x;
        return out;
    }

    static boolean supported(String isa) {
        String before = Devices.cpuIsa();
        try {
            Devices.forceCpuIsa(isa);
            return true;
        } catch (io.xpuflow.device.DeviceException e) {
            return false;
        } finally {
            Devices.forceCpuIsa(before);
        }
    }

    static String bestIsa() {
        for (String isa : List.of("avx512bf16", "avx512", "avx2")) {
            if (supported(isa)) {
                return isa;
            }
        }
        return "scalar";
    }
}
