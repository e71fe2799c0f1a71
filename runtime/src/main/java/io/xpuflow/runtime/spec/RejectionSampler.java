package io.xpuflow.runtime.spec;

import io.xpuflow.runtime.sample.Sampler;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.sample.TokenHistory;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Speculative verification of one request: from the target model's logits at the k+1 verified positions
 * and the k draft tokens, decides how many drafts are accepted and which token follows them.
 *
 * <p>Drafts are proposed greedily (n-gram lookup, MTP argmax), so the draft distribution q at each
 * position is a point mass on the draft token. Only that case is supported: the acceptance test
 * {@code min(1, p(d) / q(d))} becomes {@code p(d)}, and the residual distribution
 * {@code normalize(max(0, p - q))} becomes p with the draft token removed. A drafter that samples would
 * need its q rows passed in; that is not needed by any drafter here and left out rather than untested.
 *
 * <ul>
 *   <li>Greedy request (temperature 0): drafts are accepted while each equals the argmax of its row;
 *   the first row whose argmax differs (or row k when all matched) gives the next token. The tokens
 *   are exactly those plain greedy decoding produces, and no random draw is used.</li>
 *   <li>Sampling request: draft i is accepted with probability {@code p_i(d_i)}; on rejection the next
 *   token is drawn from p_i without d_i, renormalized; with all k accepted the bonus token is drawn
 *   from p_k as plain sampling does. By the standard argument (Leviathan et al., Chen et al. 2023) every
 *   emitted token follows the target distribution exactly.</li>
 * </ul>
 *
 * <p>p_i is the request's processed distribution as {@link Sampler} computes it for plain sampling
 * (penalties, suppression before {@code min_tokens}, temperature, min-p, top-k, top-p), with the history
 * at position i counting drafts 0..i-1 as generated. Uniform draws come from the request's own
 * generator, so the outcome depends only on the request (batch-invariant) and replays with its seed. A
 * seeded request does not reproduce the tokens of plain sampling with the same seed (speculation draws
 * a different number of uniforms), only their distribution; with no drafts, verification is plain
 * sampling, draw for draw.
 *
 * <p>The caller adds the emitted tokens to the request's history, and cuts them at an end or stop
 * token or at {@code max_tokens}: tokens after that point are discarded, as plain decoding would never
 * have produced them.
 *
 * <p>One instance per engine thread (it shares the {@link Sampler}'s scratch); not thread-safe.
 */
public final class RejectionSampler {
    /**
     * Outcome of one verification.
     *
     * @param accepted drafts accepted, 0..k
     * @param samples the emitted tokens, {@code accepted + 1} of them: the accepted drafts, then the
     *     correction (a rejected draft's replacement) or bonus token; each with the log-probabilities plain
     *     sampling reports for it
     */
    public record Verification(int accepted, List<Sampler.Sample> samples) {
        public Verification {
            samples = List.copyOf(samples);
        }

        /** The emitted token ids, in order. */
        public int[] tokens() {
            int[] t = new int[samples.size()];
            for (int i = 0; i < t.length; i++) {
                t[i] = samples.get(i).tokenId();
            }
            return t;
        }
    }

    private final Sampler sampler;
    private final int vocab;
    private final float[] probs;

    public RejectionSampler(Sampler sampler, int vocabSize) {
        this.sampler = sampler;
        this.vocab = vocabSize;
        this.probs = new float[vocabSize];
    }

    /**
     * Verifies {@code numDrafts} drafts of one request.
     *
     * @param logits the target model's logits; row i (0..numDrafts) is at {@code offset + i * vocab} and
     *     scores the token after the request's tokens plus drafts 0..i-1
     * @param drafts the draft tokens, {@code drafts[0 .. numDrafts)}
     * @param history the request's history before this step (not modified)
     * @param suppressedEarly end and stop ids, suppressed at positions where fewer than
     *     {@code minTokens} tokens would have been generated
     * @param random the request's own generator (unused when greedy)
     * @throws io.xpuflow.runtime.sample.SamplingException as {@link Sampler#sample} does for a row
     */
    public Verification verify(FloatBuffer logits, int offset, int[] drafts, int numDrafts, SamplingParams p,
                               TokenHistory history, Collection<Integer> suppressedEarly, SplittableRandom random) {
        if (numDrafts < 0 || numDrafts > drafts.length) {
            throw new IllegalArgumentException("numDrafts " + numDrafts + " not in [0, " + drafts.length + "]");
        }
        List<Sampler.Sample> out = new ArrayList<>(numDrafts + 1);
        // a copy only when penalties read the history: otherwise the history is not looked at, and
        // copying it (a vocabulary-sized bit set) every step would be wasted
        TokenHistory h = numDrafts > 0 && p.hasPenalties() ? history.copy() : history;
        int generated = history.numGenerated();
        for (int i = 0; i <= numDrafts; i++) {
            int row = offset + i * vocab;
            Collection<Integer> suppressed = generated + i < p.minTokens() ? suppressedEarly : List.of();
            if (i == numDrafts) {
                // every draft accepted (or none proposed): the bonus token is a plain sample of row k
                double uniform = p.isGreedy() ? 0 : random.nextDouble();
                out.add(sampler.sample(logits, row, p, h, suppressed, uniform));
                return new Verification(numDrafts, out);
            }
            int d = drafts[i];
            if (d < 0 || d >= vocab) {
                throw new IllegalArgumentException("draft token " + d + " at position " + i
                        + " outside the vocabulary of " + vocab);
            }
            if (p.isGreedy()) {
                Sampler.Sample s = sampler.sample(logits, row, p, h, suppressed, 0);
                out.add(s);
                if (s.tokenId() != d) {
                    return new Verification(i, out);
                }
            } else {
                sampler.probabilities(logits, row, p, h, suppressed, probs);
                // accept with probability min(1, p(d) / q(d)) = p(d) for a point-mass q; u < 1 always, so
                // p(d) = 1 always accepts and p(d) = 0 never does
                if (random.nextDouble() < probs[d]) {
                    out.add(sampler.describe(logits, row, d, p));
                } else {
                    int t = drawResidual(d, random.nextDouble());
                    out.add(sampler.describe(logits, row, t, p));
                    return new Verification(i, out);
                }
            }
            if (h != history) {
                h.addGenerated(d);
            }
        }
        throw new AssertionError("unreachable");
    }

    /**
     * A draw from {@code normalize(max(0, p - q))} with q the point mass on {@code rejected}: p without
     * the rejected token. Its mass is {@code 1 - p(rejected) > 0} since a token with p = 1 is never
     * rejected.
     */
    private int drawResidual(int rejected, double uniform) {
        double mass = 0;
        for (int t = 0; t < vocab; t++) {
            if (t != rejected) {
                mass += probs[t];
            }
        }
        double target = uniform * mass;
        double cum = 0;
        int last = -1;
        for (int t = 0; t < vocab; t++) {
            if (t != rejected && probs[t] > 0) {
                cum += probs[t];
                last = t;
                if (target < cum) {
                    return t;
                }
            }
        }
        // last < 0: p(rejected) fell short of 1 only by float rounding and every other token is at 0, so
        // the distribution is the point mass on the rejected token itself
        return last < 0 ? rejected : last; // last: in case of rounding errors
    }
}
