package io.xpuflow.runtime.sample;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.nio.FloatBuffer;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
    /** Logits whose softmax is exactly {0.5, 0.3, 0.2} (plus negligible tokens at -inf). */
    static FloatBuffer probs(double... p) {
        float[] l = new float[p.length];
        for (int i = 0; i < p.length; i++) {
            l[i] = p[i] > 0 ? (float) Math.log(p[i]) : Float.NEGATIVE_INFINITY;
        }
        return FloatBuffer.wrap(l);
    }

    static SamplingParams.Builder params() {
        return SamplingParams.builder().temperature(1.0);
    }

    static int sample(Sampler s, FloatBuffer logits, SamplingParams p, double u) {
        return s.sample(logits, 0, p, new TokenHistory(new int[0]), List.of(), u).tokenId();
    }

    @Test
    void greedyTakesTheArgmaxWithTiesToTheLowerId() {
        Sampler s = new Sampler(4);
        FloatBuffer l = FloatBuffer.wrap(new float[] {1f, 3f, 3f, 2f});
        assertThat(sample(s, l, SamplingParams.greedy(4), 0.99)).isEqualTo(1);
    }

    @Test
    void theUniformDrawIsInvertedThroughTheDistribution() {
        Sampler s = new Sampler(3);
        FloatBuffer l = probs(0.5, 0.3, 0.2);
        SamplingParams p = params().build();
        assertThat(sample(s, l, p, 0.0)).isEqualTo(0);
        assertThat(sample(s, l, p, 0.49)).isEqualTo(0);
        assertThat(sample(s, l, p, 0.51)).isEqualTo(1);
        assertThat(sample(s, l, p, 0.79)).isEqualTo(1);
        assertThat(sample(s, l, p, 0.81)).isEqualTo(2);
        assertThat(sample(s, l, p, 0.999999)).isEqualTo(2);
    }

    @Test
    void frequenciesFollowTheTemperatureScaledSoftmax() {
        Sampler s = new Sampler(3);
        FloatBuffer l = probs(0.5, 0.3, 0.2);
        SamplingParams p = params().temperature(2.0).build();
        double[] expect = {Math.sqrt(0.5), Math.sqrt(0.3), Math.sqrt(0.2)};
        double z = expect[0] + expect[1] + expect[2];
        int[] counts = new int[3];
        SplittableRandom rng = new SplittableRandom(42);
        int n = 40000;
        for (int i = 0; i < n; i++) {
            counts[sample(s, l, p, rng.nextDouble())]++;
        }
        for (int t = 0; t < 3; t++) {
            assertThat(counts[t] / (double) n).isCloseTo(expect[t] / z, within(0.01));
        }
    }

    @Test
    void topKTopPAndMinPCutTheTail() {
        Sampler s = new Sampler(4);
        FloatBuffer l = probs(0.4, 0.3, 0.2, 0.1);
        for (double u = 0; u < 1; u += 0.01) {
            assertThat(sample(s, l, params().topK(1).build(), u)).isEqualTo(0);
            assertThat(sample(s, l, params().topK(2).build(), u)).isIn(0, 1);
            assertThat(sample(s, l, params().topP(0.65).build(), u)).isIn(0, 1);  // 0.4 + 0.3 reach 0.65
            assertThat(sample(s, l, params().topP(0.4).build(), u)).isEqualTo(0);
            assertThat(sample(s, l, params().minP(0.55).build(), u)).isIn(0, 1);  // 0.2 < 0.4 * 0.55
            assertThat(sample(s, l, params().minP(0.6).build(), u)).isIn(0, 1);   // 0.3 >= 0.24
            assertThat(sample(s, l, params().minP(0.8).build(), u)).isEqualTo(0); // 0.3 < 0.32
        }
        // top-p renormalises after top-k: of {0.4, 0.3} the first is 57%
        assertThat(sample(s, l, params().topK(2).topP(0.5).build(), 0.9)).isEqualTo(0);
    }

    @Test
    void penaltiesChangeTheLogitsOfSeenTokens() {
        Sampler s = new Sampler(3);
        FloatBuffer l = FloatBuffer.wrap(new float[] {2.0f, 1.9f, -1f});
        TokenHistory h = new TokenHistory(new int[] {0});
        // repetition: 2.0 / 1.2 < 1.9
        assertThat(s.sample(l, 0, SamplingParams.builder().repetitionPenalty(1.2).build(), h, List.of(), 0).tokenId())
                .isEqualTo(1);
        TokenHistory g = new TokenHistory(new int[0]);
        g.addGenerated(0);
        assertThat(s.sample(l, 0, SamplingParams.builder().presencePenalty(0.2).build(), g, List.of(), 0).tokenId())
                .isEqualTo(1);
        assertThat(s.sample(l, 0, SamplingParams.builder().frequencyPenalty(0.05).build(), g, List.of(), 0).tokenId())
                .isEqualTo(0);
        g.addGenerated(0);
        g.addGenerated(0);
        assertThat(s.sample(l, 0, SamplingParams.builder().frequencyPenalty(0.05).build(), g, List.of(), 0).tokenId())
                .isEqualTo(1);
    }

    @Test
    void suppressedTokensAreNeverChosen() {
        Sampler s = new Sampler(3);
        FloatBuffer l = FloatBuffer.wrap(new float[] {5f, 1f, 0f});
        TokenHistory h = new TokenHistory(new int[0]);
        assertThat(s.sample(l, 0, SamplingParams.greedy(4), h, Set.of(0), 0).tokenId()).isEqualTo(1);
        for (double u = 0; u < 1; u += 0.05) {
            assertThat(s.sample(l, 0, params().build(), h, Set.of(0), u).tokenId()).isNotEqualTo(0);
        }
    }

    @Test
    void logprobsAreThoseOfTheRawLogits() {
        Sampler s = new Sampler(4);
        FloatBuffer l = FloatBuffer.wrap(new float[] {1f, 3f, 2f, 0f});
        Sampler.Sample r = s.sample(l, 0, SamplingParams.builder().logprobs(2).temperature(0).repetitionPenalty(2)
                .build(), new TokenHistory(new int[] {1}), List.of(), 0);
        double lse = Math.log(Math.exp(1) + Math.exp(3) + Math.exp(2) + Math.exp(0));
        assertThat(r.tokenId()).isEqualTo(2); // the penalty moved the choice ...
        assertThat(r.logprob()).isCloseTo((float) (2 - lse), within(1e-6f)); // ... not the reported logprobs
        assertThat(r.topIds()).containsExactly(1, 2);
        assertThat(r.topLogprobs()[0]).isCloseTo((float) (3 - lse), within(1e-6f));
    }

    @Test
    void readsItsRowAtAnOffset() {
        Sampler s = new Sampler(2);
        FloatBuffer l = FloatBuffer.wrap(new float[] {9f, 0f, 0f, 1f});
        assertThat(s.sample(l, 2, SamplingParams.greedy(1), new TokenHistory(new int[0]), List.of(), 0).tokenId())
                .isEqualTo(1);
    }

    @Test
    void nonFiniteLogitsAreASamplingExceptionWhateverTheParameters() {
        Sampler s = new Sampler(4);
        TokenHistory h = new TokenHistory(new int[0]);
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            FloatBuffer l = FloatBuffer.wrap(new float[] {1f, bad, 2f, 0f});
            for (SamplingParams p : List.of(SamplingParams.greedy(4), params().build(), params().topK(2).topP(0.5).build(),
                    params().logprobs(2).build())) {
                assertThatThrownBy(() -> s.sample(l, 0, p, h, List.of(), 0.3))
                        .isInstanceOf(SamplingException.class)
                        .hasMessageContainingAll("non-finite logits", String.valueOf(bad), "token 1", "1 of 4");
            }
        }
        // -infinity is a legitimate "never" and stays allowed
        FloatBuffer masked = FloatBuffer.wrap(new float[] {Float.NEGATIVE_INFINITY, 1f, Float.NEGATIVE_INFINITY, 0f});
        assertThat(s.sample(masked, 0, params().build(), h, List.of(), 0.2).tokenId()).isIn(1, 3);
    }

    @Test
    void noTokenLeftIsASamplingExceptionNotAnIndexError() {
        Sampler s = new Sampler(3);
        TokenHistory h = new TokenHistory(new int[0]);
        FloatBuffer l = FloatBuffer.wrap(new float[] {5f, 1f, 0f});
        for (SamplingParams p : List.of(SamplingParams.greedy(4), params().build(), params().minP(0.5).topK(1).build())) {
            assertThatThrownBy(() -> s.sample(l, 0, p, h, Set.of(0, 1, 2), 0.5))
                    .isInstanceOf(SamplingException.class).hasMessageContainingAll("no token can be chosen", "suppressed");
        }
        FloatBuffer allMasked = FloatBuffer.wrap(new float[] {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.NEGATIVE_INFINITY});
        assertThatThrownBy(() -> s.sample(allMasked, 0, params().build(), h, List.of(), 0.5))
                .isInstanceOf(SamplingException.class).hasMessageContaining("at -infinity");
    }

    @Test
    void absurdParametersAreRejectedByName() {
        assertThatThrownBy(() -> SamplingParams.builder().temperature(Double.NaN).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("temperature", "NaN");
        assertThatThrownBy(() -> SamplingParams.builder().maxTokens(-3).build()).hasMessageContainingAll("max_tokens", "-3");
        assertThatThrownBy(() -> SamplingParams.builder().topP(0).build()).hasMessageContaining("top_p");
        assertThatThrownBy(() -> SamplingParams.builder().minTokens(20).maxTokens(10).build()).hasMessageContaining("min_tokens");
        assertThatThrownBy(() -> SamplingParams.builder().logprobs(21).build()).hasMessageContaining("logprobs");
        assertThatThrownBy(() -> SamplingParams.builder().stop(List.of("")).build()).hasMessageContaining("stop");
        assertThatThrownBy(() -> SamplingParams.builder().presencePenalty(3).build()).hasMessageContaining("presence_penalty");
    }

    /**
     * probabilities() is the distribution sample() draws from: over a fine grid of uniform draws, each
     * token comes out for a share of the grid equal to its probability; the processing (penalties,
     * suppression, temperature, min-p, top-k, top-p) is varied over seeded random rows.
     */
    @Test
    void probabilitiesAreTheDistributionSampleDrawsFrom() {
        SplittableRandom rnd = new SplittableRandom(3);
        int vocab = 6;
        int grid = 20_000;
        for (int trial = 0; trial < 200; trial++) {
            float[] l = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                l[i] = (float) (rnd.nextGaussian() * 2);
            }
            FloatBuffer logits = FloatBuffer.wrap(l);
            boolean greedy = rnd.nextInt(5) == 0;
            SamplingParams p = SamplingParams.builder().temperature(greedy ? 0 : 0.3 + 2 * rnd.nextDouble())
                    .topK(rnd.nextInt(vocab)).topP(rnd.nextBoolean() ? 1 : 0.3 + 0.7 * rnd.nextDouble())
                    .minP(rnd.nextBoolean() ? 0 : 0.2 * rnd.nextDouble())
                    .repetitionPenalty(rnd.nextBoolean() ? 1 : 1.5).presencePenalty(rnd.nextBoolean() ? 0 : 0.5)
                    .build();
            TokenHistory h = new TokenHistory(new int[] {rnd.nextInt(vocab)});
            h.addGenerated(rnd.nextInt(vocab));
            List<Integer> suppressed = rnd.nextBoolean() ? List.of(rnd.nextInt(vocab)) : List.of();
            Sampler s = new Sampler(vocab);
            float[] probs = new float[vocab];
            s.probabilities(logits, 0, p, h, suppressed, probs);
            double[] share = new double[vocab];
            for (int g = 0; g < grid; g++) {
                share[s.sample(logits, 0, p, h, suppressed, (g + 0.5) / grid).tokenId()] += 1.0 / grid;
            }
            double total = 0;
            for (int i = 0; i < vocab; i++) {
                total += probs[i];
                assertThat(share[i]).as("trial %d token %d", trial, i).isCloseTo(probs[i], within(2.0 / grid + 1e-6));
                if (probs[i] == 0) {
                    assertThat(share[i]).isZero();
                }
            }
            assertThat(total).isCloseTo(1.0, within(1e-5));
        }
    }

    @Test
    void describeReportsTheLogprobsSampleWould() {
        Sampler s = new Sampler(3);
        FloatBuffer l = probs(0.5, 0.3, 0.2);
        SamplingParams p = params().logprobs(2).build();
        Sampler.Sample drawn = s.sample(l, 0, p, new TokenHistory(new int[0]), List.of(), 0.6);
        Sampler.Sample described = s.describe(l, 0, drawn.tokenId(), p);
        assertThat(described.tokenId()).isEqualTo(1);
        assertThat(described.logprob()).isEqualTo(drawn.logprob());
        assertThat(described.topIds()).containsExactly(drawn.topIds());
        assertThat(described.topLogprobs()).containsExactly(drawn.topLogprobs());
        assertThat(s.describe(l, 0, 2, params().build()).logprob()).isNaN();
    }

    @Test
    void aCopiedHistoryIsIndependent() {
        TokenHistory h = new TokenHistory(new int[] {1});
        h.addGenerated(2);
        TokenHistory c = h.copy();
        c.addGenerated(3);
        assertThat(h.numGenerated()).isEqualTo(1);
        assertThat(c.numGenerated()).isEqualTo(2);
        assertThat(h.seen().get(3)).isFalse();
        assertThat(c.seen().get(1)).isTrue();
        assertThat(c.generated()).containsEntry(2, 1).containsEntry(3, 1);
    }
}
