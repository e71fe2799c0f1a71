package io.xpuflow.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.Fixtures.GoldenPrompt;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The accuracy contract of the fast weight formats, measured against the exact mode on every fixture:
 * top-1 agreement of the logits at every position, mean KL(exact || fast) of the next-token
 * distributions, and greedy continuations that may part only after a step whose exact-mode margin is
 * small. The bounds are what the formats reach here, a little loosened, so a kernel that loses accuracy
 * fails.
 */
class FastFormatAccuracyTest {
    /**
     * @param minTop1 top-1 agreement over all positions
     * @param maxMeanKl mean KL over the positions every MoE layer routed to the same experts in both modes
     *     (the precision of the kernels; a token whose experts differ takes other weights altogether)
     * @param maxMeanKlAll mean KL over all positions
     * @param flipMargin a greedy continuation may differ from the exact one only after a step whose exact
     *     margin (top-1 minus top-2 logit) is below this
     */
    record Bound(double minTop1, double maxMeanKl, double maxMeanKlAll, double flipMargin) {}

    static final Map<String, Bound> BF16 = Map.of(
            "stories260k", new Bound(0.99, 1e-3, 1e-3, 0.05),
            "mixtral-stories260k", new Bound(0.99, 1e-3, 1e-3, 0.05),
            "tiny-mimo-v2", new Bound(0.99, 1e-3, 1e-3, 0.05),
            "tiny-mimo-v2-fp8", new Bound(0.98, 1e-3, 0.05, 0.05));

    static final Map<String, Bound> INT8 = Map.of(
            "stories260k", new Bound(0.98, 2e-3, 2e-3, 0.25),
            "mixtral-stories260k", new Bound(0.98, 3e-3, 2e-3, 0.25),
            "tiny-mimo-v2", new Bound(0.93, 5e-3, 0.12, 0.25),
            "tiny-mimo-v2-fp8", new Bound(0.88, 5e-3, 0.12, 0.25));

    private static final Map<String, String> MEASURED = new ConcurrentSkipListMap<>();

    static Stream<Arguments> cases() {
        return Stream.of(
                BF16.keySet().stream().sorted().map(f -> Arguments.of(f, WeightFormat.BF16, KvCacheDtype.BF16, BF16.get(f))),
                INT8.keySet().stream().sorted().map(f -> Arguments.of(f, WeightFormat.INT8, KvCacheDtype.BF16, INT8.get(f))),
                // the fast attention over an FP32 cache, and the exact weights with a BF16 cache
                Stream.of(Arguments.of("tiny-mimo-v2", WeightFormat.BF16, KvCacheDtype.F32, BF16.get("tiny-mimo-v2")),
                        Arguments.of("tiny-mimo-v2", WeightFormat.EXACT, KvCacheDtype.BF16, BF16.get("tiny-mimo-v2"))))
                .flatMap(s -> s);
    }

    @AfterAll
    static void report() {
        MEASURED.forEach((k, v) -> System.out.println("[fast-format] " + k + ": " + v));
    }

    @ParameterizedTest(name = "{0} {1} weights, {2} KV cache")
    @MethodSource("cases")
    void logitsAndGreedyStayCloseToTheExactMode(String fixture, WeightFormat format, KvCacheDtype kv, Bound bound) {
        List<int[]> texts = new ArrayList<>();
        for (GoldenPrompt p : Fixtures.golden(fixture)) {
            int[] t = java.util.Arrays.copyOf(p.ids(), p.ids().length + p.greedy().length);
            System.arraycopy(p.greedy(), 0, t, p.ids().length, p.greedy().length);
            texts.add(t);
        }
        int positions = 0;
        int agree = 0;
        double kl = 0;
        double worstKl = 0;
        int sameRoute = 0;
        double klSameRoute = 0;
        try (LoadedModel exact = load(fixture, WeightFormat.EXACT, KvCacheDtype.F32); LoadedModel fast = load(fixture, format, kv);
             ModelRunner e = new ModelRunner(exact, 512, 1); ModelRunner f = new ModelRunner(fast, 512, 4)) {
            boolean moe = exact.config().numMoeLayers() > 0;
            for (int[] t : texts) {
                ModelRunner.Scores se = e.score(t, false, moe);
                ModelRunner.Scores sf = f.score(t, false, moe);
                int flip = moe ? firstRoutingDifference(se.experts(), sf.experts()) : Integer.MAX_VALUE;
                for (int i = 0; i < t.length; i++) {
                    positions++;
                    agree += argmax(se.logits()[i]) == argmax(sf.logits()[i]) ? 1 : 0;
                    double d = kl(se.logits()[i], sf.logits()[i]);
                    kl += d;
                    worstKl = Math.max(worstKl, d);
                    if (i < flip) {
                        sameRoute++;
                        klSameRoute += d;
                    }
                }
            }
            // batch invariance in the fast format: prompts together give the bits they give alone
            List<ModelRunner.Scores> together = f.scoreBatch(texts.subList(0, Math.min(4, texts.size())), false, false);
            for (int i = 0; i < together.size(); i++) {
                float[][] alone = f.score(texts.get(i), false, false).logits();
                for (int j = 0; j < alone.length; j++) {
                    assertThat(together.get(i).logits()[j]).as("%s %s text %d position %d in a batch", fixture, format, i, j)
                            .containsExactly(alone[j]);
                }
            }
            // greedy: equal to the exact mode's until a step whose exact margin is small, or until a token whose
            // experts (a discrete choice like the argmax) differ between the modes
            for (GoldenPrompt p : Fixtures.golden(fixture)) {
                int n = p.greedy().length;
                int[] want = e.generateGreedy(p.ids(), n, true);
                int[] got = f.generateGreedy(p.ids(), n, true);
                int[] seq = java.util.Arrays.copyOf(p.ids(), p.ids().length + n);
                System.arraycopy(want, 0, seq, p.ids().length, n);
                ModelRunner.Scores se = e.score(seq, false, moe);
                ModelRunner.Scores sf = f.score(seq, false, moe);
                int firstRouteFlip = moe ? firstRoutingDifference(se.experts(), sf.experts()) : Integer.MAX_VALUE;
                for (int i = 0; i < n; i++) {
                    if (got[i] != want[i]) {
                        int position = p.ids().length - 1 + i;
                        assertThat(margin(se.logits()[position]) < bound.flipMargin() || firstRouteFlip <= position)
                                .as("%s %s p%d: greedy token %d differs (%d vs %d) at an exact margin of %.3f with the"
                                        + " same experts so far", fixture, format, p.index(), i, got[i], want[i],
                                        margin(se.logits()[position])).isTrue();
                        break;
                    }
                }
            }
        }
        double top1 = (double) agree / positions;
        double meanKl = kl / positions;
        double meanKlSameRoute = klSameRoute / sameRoute;
        MEASURED.put(fixture + " " + format.optionValue() + " weights, " + kv.optionValue() + " KV", String.format("top-1 agreement %.4f over %d positions,"
                + " mean KL %.3g (worst %.3g); %d positions with the exact mode's experts: mean KL %.3g", top1, positions,
                meanKl, worstKl, sameRoute, meanKlSameRoute));
        assertThat(top1).as("%s %s: top-1 agreement with the exact mode", fixture, format).isGreaterThanOrEqualTo(bound.minTop1());
        assertThat(meanKlSameRoute).as("%s %s: mean KL(exact || fast) with the same experts", fixture, format)
                .isLessThanOrEqualTo(bound.maxMeanKl());
        assertThat(meanKl).as("%s %s: mean KL(exact || fast)", fixture, format).isLessThanOrEqualTo(bound.maxMeanKlAll());
    }

    /** The first position at which some MoE layer chose another set of experts, or {@code Integer.MAX_VALUE}. */
    static int firstRoutingDifference(int[][][] a, int[][][] b) {
        int first = Integer.MAX_VALUE;
        for (int l = 0; l < a.length; l++) {
            for (int t = 0; t < a[l].length && t < first; t++) {
                int[] x = a[l][t].clone();
                int[] y = b[l][t].clone();
                java.util.Arrays.sort(x);
                java.util.Arrays.sort(y);
                if (!java.util.Arrays.equals(x, y)) {
                    first = t;
                }
            }
        }
        return first;
    }

    static LoadedModel load(String fixture, WeightFormat format, KvCacheDtype kv) {
        return LoadedModel.load(Fixtures.model(fixture), new LoadOptions(2, 64, 4, format, kv));
    }

    static int argmax(float[] v) {
        return GoldenFixturesTest.argmax(v);
    }

    static float margin(float[] v) {
        float best = Float.NEGATIVE_INFINITY;
        float second = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            if (x > best) {
                second = best;
                best = x;
            } else if (x > second) {
                second = x;
            }
        }
        return best - second;
    }

    /** KL(p || q) of the softmax distributions of two logit rows, in nats. */
    static double kl(float[] p, float[] q) {
        double[] lp = logSoftmax(p);
        double[] lq = logSoftmax(q);
        double s = 0;
        for (int i = 0; i < p.length; i++) {
            s += Math.exp(lp[i]) * (lp[i] - lq[i]);
        }
        return Math.max(0, s);
    }

    static double[] logSoftmax(float[] v) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : v) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : v) {
            sum += Math.exp(x - max);
        }
        double log = max + Math.log(sum);
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i] - log;
        }
        return out;
    }
}
