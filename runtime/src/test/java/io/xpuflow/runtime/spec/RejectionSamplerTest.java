package io.xpuflow.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.sample.Sampler;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.sample.TokenHistory;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RejectionSamplerTest {
    static final int V = 5;
    static final TokenHistory EMPTY = new TokenHistory(new int[0]);

    /** Rows of logits whose softmax is each given distribution (0 becomes -infinity). */
    static FloatBuffer rows(double[]... dists) {
        int vocab = dists[0].length;
        float[] l = new float[dists.length * vocab];
        for (int r = 0; r < dists.length; r++) {
            for (int i = 0; i < vocab; i++) {
                l[r * vocab + i] = dists[r][i] > 0 ? (float) Math.log(dists[r][i]) : Float.NEGATIVE_INFINITY;
            }
        }
        return FloatBuffer.wrap(l);
    }

    static RejectionSampler.Verification verify(FloatBuffer logits, int vocab, SamplingParams p, TokenHistory h,
                                                long seed, int... drafts) {
        return new RejectionSampler(new Sampler(vocab), vocab)
                .verify(logits, 0, drafts, drafts.length, p, h, List.of(), new SplittableRandom(seed));
    }

    static final SamplingParams GREEDY = SamplingParams.greedy(16);
    static final SamplingParams SAMPLE = SamplingParams.builder().temperature(1).maxTokens(16).build();

    // ---- greedy

    @Test
    void greedyAcceptsTheDraftsMatchingEachArgmaxThenTheBonusToken() {
        double[] a = {0.1, 0.6, 0.1, 0.1, 0.1};
        double[] b = {0.1, 0.1, 0.6, 0.1, 0.1};
        double[] c = {0.6, 0.1, 0.1, 0.1, 0.1};
        FloatBuffer l = rows(a, b, c);
        RejectionSampler.Verification all = verify(l, V, GREEDY, EMPTY, 1, 1, 2);
        assertThat(all.accepted()).isEqualTo(2);
        assertThat(all.tokens()).containsExactly(1, 2, 0);

        RejectionSampler.Verification second = verify(l, V, GREEDY, EMPTY, 1, 1, 3);
        assertThat(second.accepted()).isEqualTo(1);
        assertThat(second.tokens()).containsExactly(1, 2);

        RejectionSampler.Verification first = verify(l, V, GREEDY, EMPTY, 1, 4, 2);
        assertThat(first.accepted()).isZero();
        assertThat(first.tokens()).containsExactly(1);

        RejectionSampler.Verification none = verify(l, V, GREEDY, EMPTY, 1);
        assertThat(none.accepted()).isZero();
        assertThat(none.tokens()).containsExactly(1);
    }

    /**
     * Property over seeded random rows, drafts and penalties: greedy verification emits exactly the tokens
     * plain greedy decoding produces from the same rows, one at a time with the history updated, and
     * accepts the longest prefix of drafts equal to them.
     */
    @Test
    void greedyVerificationEqualsPlainGreedyDecoding() {
        SplittableRandom rnd = new SplittableRandom(7);
        int vocab = 8;
        for (int trial = 0; trial < 2000; trial++) {
            int k = 1 + rnd.nextInt(4);
            float[] l = new float[(k + 1) * vocab];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) (rnd.nextGaussian() * 2);
            }
            FloatBuffer logits = FloatBuffer.wrap(l);
            SamplingParams p = SamplingParams.builder().maxTokens(16)
                    .repetitionPenalty(rnd.nextBoolean() ? 1 : 1 + 2 * rnd.nextDouble())
                    .presencePenalty(rnd.nextBoolean() ? 0 : 2 * rnd.nextDouble())
                    .frequencyPenalty(rnd.nextBoolean() ? 0 : 2 * rnd.nextDouble())
                    .minTokens(rnd.nextInt(4)).build();
            int[] prompt = {rnd.nextInt(vocab), rnd.nextInt(vocab)};
            List<Integer> eos = List.of(rnd.nextInt(vocab));
            // plain greedy decoding of k + 1 tokens, row i scoring token i
            Sampler plainSampler = new Sampler(vocab);
            TokenHistory plainHistory = new TokenHistory(prompt);
            int[] plain = new int[k + 1];
            for (int i = 0; i <= k; i++) {
                List<Integer> suppressed = i < p.minTokens() ? eos : List.of();
                plain[i] = plainSampler.sample(logits, i * vocab, p, plainHistory, suppressed, 0).tokenId();
                plainHistory.addGenerated(plain[i]);
            }
            int[] drafts = new int[k];
            for (int i = 0; i < k; i++) {
                drafts[i] = rnd.nextInt(3) > 0 ? plain[i] : rnd.nextInt(vocab);
            }
            int expectAccepted = 0;
            while (expectAccepted < k && drafts[expectAccepted] == plain[expectAccepted]) {
                expectAccepted++;
            }
            TokenHistory history = new TokenHistory(prompt);
            RejectionSampler.Verification v = new RejectionSampler(new Sampler(vocab), vocab)
                    .verify(logits, 0, drafts, k, p, history, eos, new SplittableRandom(trial));
            assertThat(v.accepted()).as("trial %d", trial).isEqualTo(expectAccepted);
            assertThat(v.tokens()).as("trial %d", trial).containsExactly(Arrays.copyOf(plain, expectAccepted + 1));
            assertThat(history.numGenerated()).as("the request's history is left alone").isZero();
        }
    }

    @Test
    void logprobsOfEmittedTokensAreThosePlainSamplingReports() {
        double[] a = {0.1, 0.6, 0.1, 0.1, 0.1};
        double[] b = {0.1, 0.1, 0.6, 0.1, 0.1};
        FloatBuffer l = rows(a, b);
        SamplingParams p = SamplingParams.builder().maxTokens(8).logprobs(2).build();
        RejectionSampler.Verification v = verify(l, V, p, EMPTY, 1, 1);
        assertThat(v.samples()).hasSize(2);
        assertThat(v.samples().get(0).logprob()).isCloseTo((float) Math.log(0.6), org.assertj.core.data.Offset.offset(1e-5f));
        assertThat(v.samples().get(0).topIds()).containsExactly(1, 0);
        assertThat(v.samples().get(1).tokenId()).isEqualTo(2);
        assertThat(v.samples().get(1).topIds()).containsExactly(2, 0);
    }

    @Test
    void draftsOutsideTheVocabularyAreRefused() {
        FloatBuffer l = rows(new double[] {0.5, 0.5, 0, 0, 0}, new double[] {0.5, 0.5, 0, 0, 0});
        assertThatThrownBy(() -> verify(l, V, SAMPLE, EMPTY, 1, 9)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("draft token 9");
    }

    // ---- sampling: the emitted tokens follow the target distribution

    /** Pearson's chi-square of observed counts against expected probabilities (cells with p = 0 must be empty). */
    static double chiSquare(long[] counts, double[] p) {
        long n = Arrays.stream(counts).sum();
        double chi = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                assertThat(counts[i]).as("count of token %d, which has probability 0", i).isZero();
                continue;
            }
            double e = n * p[i];
            chi += (counts[i] - e) * (counts[i] - e) / e;
        }
        return chi;
    }

    /** Chi-square quantiles at 0.999 for 1..6 degrees of freedom: a false alarm once in a thousand seeds. */
    static final double[] CHI_999 = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46};

    static void assertFollows(long[] counts, double[] p) {
        int df = (int) Arrays.stream(p).filter(x -> x > 0).count() - 1;
        if (df == 0) {
            chiSquare(counts, p); // only checks that no impossible token appeared
            return;
        }
        assertThat(chiSquare(counts, p)).as("chi-square of %s against %s", Arrays.toString(counts), Arrays.toString(p))
                .isLessThan(CHI_999[df]);
    }

    static final int TRIALS = 20_000;

    @Test
    void theFirstEmittedTokenFollowsTheTargetWhateverTheDraft() {
        double[] p = {0.4, 0.3, 0.2, 0.1, 0.0};
        FloatBuffer l = rows(p, p);
        // likely, unlikely and impossible drafts
        for (int draft : new int[] {0, 3, 4}) {
            long[] counts = new long[V];
            for (int seed = 0; seed < TRIALS; seed++) {
                counts[verify(l, V, SAMPLE, EMPTY, seed, draft).tokens()[0]]++;
            }
            assertFollows(counts, p);
        }
    }

    @Test
    void aCertainDraftIsAlwaysAcceptedAndAnImpossibleOneNever() {
        double[] certain = {0, 1, 0, 0, 0};
        double[] p = {0.4, 0.3, 0.2, 0.1, 0.0};
        for (int seed = 0; seed < 2000; seed++) {
            RejectionSampler.Verification v = verify(rows(certain, p), V, SAMPLE, EMPTY, seed, 1);
            assertThat(v.accepted()).isEqualTo(1);
            RejectionSampler.Verification w = verify(rows(p, p), V, SAMPLE, EMPTY, seed, 4);
            assertThat(w.accepted()).isZero();
            assertThat(w.tokens()[0]).isNotEqualTo(4);
        }
    }

    /**
     * Two drafts over a "model" whose distribution depends on the position only: p0 for the first token,
     * p1 for the second. When verification emits one token the second comes from the next (plain) step,
     * sampled from p1. Both tokens, and the pair, must follow the target.
     */
    @Test
    void theSecondTokenFollowsTheTargetToo() {
        double[] p0 = {0.4, 0.3, 0.2, 0.1, 0.0};
        double[] p1 = {0.05, 0.15, 0.0, 0.5, 0.3};
        double[] p2 = {0.2, 0.2, 0.2, 0.2, 0.2};
        FloatBuffer l = rows(p0, p1, p2);
        int[][] draftChoices = {{0, 3}, {0, 2}, {4, 3}, {2, 1}};
        for (int[] drafts : draftChoices) {
            long[] first = new long[V];
            long[] second = new long[V];
            long[] pairs = new long[V * V];
            Sampler plain = new Sampler(V);
            for (int seed = 0; seed < TRIALS; seed++) {
                SplittableRandom random = new SplittableRandom(seed);
                RejectionSampler.Verification v = new RejectionSampler(new Sampler(V), V)
                        .verify(l, 0, drafts, drafts.length, SAMPLE, EMPTY, List.of(), random);
                int[] t = v.tokens();
                int t1 = t.length >= 2 ? t[1] : plain.sample(l, V, SAMPLE, EMPTY, List.of(), random.nextDouble()).tokenId();
                first[t[0]]++;
                second[t1]++;
                pairs[t[0] * V + t1]++;
            }
            assertFollows(first, p0);
            assertFollows(second, p1);
            double[] joint = new double[V * V];
            for (int a = 0; a < V; a++) {
                for (int b = 0; b < V; b++) {
                    joint[a * V + b] = p0[a] * p1[b];
                }
            }
            // 16 cells: the 0.999 quantile for 15 degrees of freedom
            assertThat(chiSquare(pairs, joint)).as("pairs with drafts %s", Arrays.toString(drafts)).isLessThan(37.70);
        }
    }

    /**
     * With a presence penalty the second token's distribution depends on the first: verification must
     * score position 1 with draft 0 in the history, so the pair follows p0(a) · p1(b | a) as plain
     * sampling of two tokens would.
     */
    @Test
    void pairsFollowTheTargetWhenPenaltiesDependOnTheFirstToken() {
        double[] p0 = {0.4, 0.3, 0.2, 0.1, 0.0};
        double[] p1 = {0.3, 0.3, 0.1, 0.2, 0.1};
        FloatBuffer l = rows(p0, p1, p1);
        SamplingParams p = SamplingParams.builder().temperature(1).presencePenalty(1.5).maxTokens(8).build();
        double[] joint = new double[V * V];
        float[] cond = new float[V];
        Sampler ref = new Sampler(V);
        for (int a = 0; a < V; a++) {
            TokenHistory h = new TokenHistory(new int[0]);
            h.addGenerated(a);
            ref.probabilities(l, V, p, h, List.of(), cond);
            for (int b = 0; b < V; b++) {
                joint[a * V + b] = p0[a] * cond[b];
            }
        }
        for (int[] drafts : new int[][] {{0, 0}, {1, 3}, {0, 1}}) {
            long[] pairs = new long[V * V];
            for (int seed = 0; seed < TRIALS; seed++) {
                SplittableRandom random = new SplittableRandom(seed);
                int[] t = new RejectionSampler(new Sampler(V), V)
                        .verify(l, 0, drafts, drafts.length, p, EMPTY, List.of(), random).tokens();
                int second = t[1 % t.length];
                if (t.length == 1) {
                    TokenHistory h = new TokenHistory(new int[0]);
                    h.addGenerated(t[0]);
                    second = ref.sample(l, V, p, h, List.of(), random.nextDouble()).tokenId();
                }
                pairs[t[0] * V + second]++;
            }
            // 4 x 5 possible cells: the 0.999 quantile for 19 degrees of freedom
            assertThat(chiSquare(pairs, joint)).as("pairs with drafts %s", Arrays.toString(drafts)).isLessThan(43.82);
        }
    }

    /**
     * The acceptance test uses the processed distribution: with top-k 2 and temperature 2 a draft outside
     * the top 2 is never accepted, and the emitted token follows the processed distribution as
     * {@link Sampler#probabilities} gives it.
     */
    @Test
    void theTargetIsTheProcessedDistribution() {
        double[] raw = {0.4, 0.3, 0.2, 0.1, 0.0};
        FloatBuffer l = rows(raw, raw);
        SamplingParams p = SamplingParams.builder().temperature(2).topK(2).maxTokens(8).build();
        float[] processed = new float[V];
        new Sampler(V).probabilities(l, 0, p, EMPTY, List.of(), processed);
        double[] expect = new double[V];
        for (int i = 0; i < V; i++) {
            expect[i] = processed[i];
        }
        assertThat(expect[2]).isZero();
        long[] counts = new long[V];
        for (int seed = 0; seed < TRIALS; seed++) {
            RejectionSampler.Verification v = verify(l, V, p, EMPTY, seed, 2);
            assertThat(v.accepted()).isZero();
            counts[v.tokens()[0]]++;
        }
        assertFollows(counts, expect);
    }

    /** Position 1 is scored with draft 0 counted as generated: a presence penalty makes it unlikely again. */
    @Test
    void laterPositionsSeeEarlierDraftsInTheHistory() {
        double[] a = {0.1, 0.6, 0.1, 0.1, 0.1};
        FloatBuffer l = rows(a, a, a);
        SamplingParams p = SamplingParams.builder().maxTokens(8).presencePenalty(2).build();
        // greedy: row 1 without the penalty would pick 1 again; with draft 0 = 1 in its history it does not
        RejectionSampler.Verification v = verify(l, V, p, EMPTY, 1, 1, 1);
        assertThat(v.accepted()).isEqualTo(1);
        assertThat(v.tokens()).containsExactly(1, 0);
        // min_tokens: the end token is suppressed at position 0 (0 generated) but not at position 1
        double[] endLikely = {0.1, 0.1, 0.1, 0.1, 0.6};
        RejectionSampler.Verification w = new RejectionSampler(new Sampler(V), V).verify(rows(a, endLikely),
                0, new int[] {1}, 1, SamplingParams.builder().maxTokens(8).minTokens(1).build(), EMPTY, List.of(4),
                new SplittableRandom(1));
        assertThat(w.tokens()).containsExactly(1, 4);
    }

    @Test
    void withoutDraftsVerificationIsPlainSamplingDrawForDraw() {
        double[] p0 = {0.4, 0.3, 0.2, 0.1, 0.0};
        FloatBuffer l = rows(p0);
        Sampler plain = new Sampler(V);
        for (int seed = 0; seed < 500; seed++) {
            int expect = plain.sample(l, 0, SAMPLE, EMPTY, List.of(), new SplittableRandom(seed).nextDouble()).tokenId();
            assertThat(verify(l, V, SAMPLE, EMPTY, seed).tokens()).containsExactly(expect);
        }
    }

    @Test
    void theSameSeedGivesTheSameOutcome() {
        double[] p0 = {0.4, 0.3, 0.2, 0.1, 0.0};
        double[] p1 = {0.05, 0.15, 0.0, 0.5, 0.3};
        FloatBuffer l = rows(p0, p1, p0);
        List<String> runs = new ArrayList<>();
        for (int rep = 0; rep < 2; rep++) {
            StringBuilder b = new StringBuilder();
            for (int seed = 0; seed < 200; seed++) {
                b.append(Arrays.toString(verify(l, V, SAMPLE, EMPTY, seed, 0, 3).tokens()));
            }
            runs.add(b.toString());
        }
        assertThat(runs.get(0)).isEqualTo(runs.get(1));
        // and does not depend on which sampler instance (another request's scratch) ran before
        RejectionSampler shared = new RejectionSampler(new Sampler(V), V);
        shared.verify(rows(p1, p1), 0, new int[] {3}, 1, SAMPLE, EMPTY, Set.of(), new SplittableRandom(99));
        RejectionSampler.Verification again = shared.verify(l, 0, new int[] {0, 3}, 2, SAMPLE, EMPTY, List.of(),
                new SplittableRandom(5));
        assertThat(again.tokens()).containsExactly(verify(l, V, SAMPLE, EMPTY, 5, 0, 3).tokens());
    }
}
