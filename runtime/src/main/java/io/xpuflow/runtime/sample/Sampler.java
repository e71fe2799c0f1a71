package io.xpuflow.runtime.sample;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Collection;

/**
 * Turns one row of logits into a token, as a pure function of the logits, the request's
 * {@link SamplingParams}, its {@link TokenHistory} and one uniform draw from the request's own
 * random generator. Nothing here depends on which other requests share the step, so a request
 * produces the same tokens alone or in any batch.
 *
 * <p>Order: penalties, suppression of end tokens before {@code minTokens}, then greedy argmax, or
 * temperature, min-p, top-k, top-p and a draw from what is left. Log-probabilities are those of the
 * raw model output, as OpenAI and vLLM report them.
 *
 * <p>One sampler per engine thread: its scratch arrays are reused, so it is not thread-safe.
 */
public final class Sampler {
    /**
     * A sampled token.
     *
     * @param logprob log-probability of the token under the raw logits (NaN when not asked for)
     * @param topIds most likely alternatives under the raw logits, best first (empty when not asked for)
     */
    public record Sample(int tokenId, float logprob, int[] topIds, float[] topLogprobs) {}

    private static final int[] NO_IDS = new int[0];
    private static final float[] NO_LOGPROBS = new float[0];

    private final int vocab;
    private final float[] work;     // [vocab] adjusted logits, then probabilities
    private final long[] order;     // candidates as (probability bits, ~id) for sorting, best first after sort
    private final int[] candidates; // [vocab] surviving token ids

    public Sampler(int vocabSize) {
        this.vocab = vocabSize;
        this.work = new float[vocabSize];
        this.order = new long[vocabSize];
        this.candidates = new int[vocabSize];
    }

    /**
     * Samples from {@code logits[offset .. offset + vocab)}.
     *
     * @param suppressed token ids that may not be produced now (end-of-sequence and stop ids while
     *     fewer than {@code minTokens} were generated); may be empty
     * @param uniform a draw in [0, 1) from the request's generator (unused when greedy)
     * @throws SamplingException when the row holds NaN or +infinity, or no token can be chosen (every
     *     token suppressed or at -infinity)
     */
    public Sample sample(FloatBuffer logits, int offset, SamplingParams p, TokenHistory history,
                         Collection<Integer> suppressed, double uniform) {
        logits.get(offset, work, 0, vocab);
        checkFinite();
        RawLogprobs raw = p.logprobs() > 0 ? rawLogprobs(p.logprobs()) : null;
        process(p, history, suppressed);
        int token = p.isGreedy() ? argmax(work) : draw(p, uniform);
        return raw == null ? new Sample(token, Float.NaN, NO_IDS, NO_LOGPROBS)
                : raw.sample(token, logits.get(offset + token));
    }

    /**
     * Writes into {@code probs[0 .. vocab)} the distribution that {@link #sample} draws from for the same
     * arguments: penalties, suppression, temperature, min-p, top-k and top-p applied, the surviving
     * weights normalized to sum to 1, every other token at exactly 0. A greedy request's distribution is a
     * point mass (1) on the token {@code sample} returns. There is one definition of this processing, used
     * by both methods, so a caller that needs the probabilities themselves (speculative decoding's
     * acceptance test) sees exactly the distribution plain sampling follows.
     *
     * @throws SamplingException as {@link #sample} does
     */
    public void probabilities(FloatBuffer logits, int offset, SamplingParams p, TokenHistory history,
                              Collection<Integer> suppressed, float[] probs) {
        logits.get(offset, work, 0, vocab);
        checkFinite();
        process(p, history, suppressed);
        Arrays.fill(probs, 0, vocab, 0f);
        if (p.isGreedy()) {
            probs[argmax(work)] = 1f;
            return;
        }
        int n = filter(p);
        double mass = 0;
        for (int i = 0; i < n; i++) {
            mass += work[candidates[i]];
        }
        for (int i = 0; i < n; i++) {
            probs[candidates[i]] = (float) (work[candidates[i]] / mass);
        }
    }

    /**
     * The {@link Sample} that {@link #sample} reports when it chooses {@code token} from this row: its
     * log-probability and top alternatives under the raw logits when the request asked for them. For a
     * token chosen by other means (accepted speculative drafts), so it carries the same log-probabilities
     * plain sampling would have reported.
     *
     * @throws SamplingException when the row holds NaN or +infinity
     */
    public Sample describe(FloatBuffer logits, int offset, int token, SamplingParams p) {
        if (p.logprobs() == 0) {
            return new Sample(token, Float.NaN, NO_IDS, NO_LOGPROBS);
        }
        logits.get(offset, work, 0, vocab);
        checkFinite();
        return rawLogprobs(p.logprobs()).sample(token, logits.get(offset + token));
    }

    /** Log-softmax normalizer and top alternatives of the raw row in {@code work}. */
    private record RawLogprobs(double max, double logSum, int[] topIds, float[] top) {
        Sample sample(int token, float chosenRaw) {
            return new Sample(token, (float) (chosenRaw - max - logSum), topIds, top);
        }
    }

    private RawLogprobs rawLogprobs(int k) {
        double rawMax = max(work);
        double rawLogSum = logSumExp(work, rawMax);
        int[] rawTopIds = topIndices(work, k);
        float[] rawTop = new float[rawTopIds.length];
        for (int i = 0; i < rawTopIds.length; i++) {
            rawTop[i] = (float) (work[rawTopIds[i]] - rawMax - rawLogSum);
        }
        return new RawLogprobs(rawMax, rawLogSum, rawTopIds, rawTop);
    }

    /** Penalties and suppression on the raw row in {@code work}, then the check that a token is left. */
    private void process(SamplingParams p, TokenHistory history, Collection<Integer> suppressed) {
        applyPenalties(p, history);
        for (int id : suppressed) {
            work[id] = Float.NEGATIVE_INFINITY;
        }
        // a token is chosen only among finite logits: with all of them at -infinity, greedy would
        // silently return token 0 (suppressed or not) and a draw would have no distribution to draw from
        if (max(work) == Float.NEGATIVE_INFINITY) {
            throw new SamplingException("no token can be chosen: every one of the " + vocab + " tokens is "
                    + (suppressed.isEmpty() ? "at -infinity" : "suppressed (" + suppressed.size()
                    + " end or stop ids before min_tokens) or at -infinity"));
        }
    }

    private void applyPenalties(SamplingParams p, TokenHistory h) {
        if (p.repetitionPenalty() != 1) {
            float r = (float) p.repetitionPenalty();
            for (int id = h.seen().nextSetBit(0); id >= 0 && id < vocab; id = h.seen().nextSetBit(id + 1)) {
                work[id] = work[id] > 0 ? work[id] / r : work[id] * r;
            }
        }
        if (p.presencePenalty() != 0 || p.frequencyPenalty() != 0) {
            h.generated().forEach((id, count) -> {
                if (id < vocab) {
                    work[id] -= (float) (p.frequencyPenalty() * count + p.presencePenalty());
                }
            });
        }
    }

    /** Temperature, min-p, top-k, top-p, then the token where the uniform draw falls. */
    private int draw(SamplingParams p, double uniform) {
        int n = filter(p);
        double mass = 0;
        for (int i = 0; i < n; i++) {
            mass += work[candidates[i]];
        }
        double target = uniform * mass;
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += work[candidates[i]];
            if (target < cum) {
                return candidates[i];
            }
        }
        return candidates[n - 1]; // in case of rounding errors
    }

    /**
     * Temperature, min-p, top-k and top-p on the processed row in {@code work}: leaves the unnormalized
     * weights in {@code work} and the surviving ids in {@code candidates[0 .. n)} (best first when top-k or
     * top-p sorted them, else by id), and returns n (at least 1).
     */
    private int filter(SamplingParams p) {
        float mx = max(work); // finite: checked by sample()
        double invT = 1.0 / p.temperature();
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            float e = (float) Math.exp((work[i] - mx) * invT);
            work[i] = e;
            total += e;
        }
        // min-p is relative to the most likely token, whose weight is exactly 1 here
        float floor = (float) p.minP();
        int n = 0;
        for (int i = 0; i < vocab; i++) {
            if (work[i] > 0 && work[i] >= floor) {
                candidates[n++] = i;
            }
        }
        boolean sorted = p.topK() > 0 || p.topP() < 1;
        if (sorted) {
            // sort descending by weight, ties to the lower id: key = weight bits (positive floats sort
            // like their bits) then the complemented id
            for (int i = 0; i < n; i++) {
                int id = candidates[i];
                order[i] = ((long) Float.floatToRawIntBits(work[id]) << 32) | (~id & 0xffffffffL);
            }
            Arrays.sort(order, 0, n);
            for (int i = 0; i < n; i++) {
                candidates[i] = ~(int) order[n - 1 - i];
            }
            if (p.topK() > 0) {
                n = Math.min(n, p.topK());
            }
            if (p.topP() < 1) {
                double kept = 0;
                for (int i = 0; i < n; i++) {
                    kept += work[candidates[i]];
                }
                double cum = 0;
                int keep = n;
                for (int i = 0; i < n; i++) {
                    cum += work[candidates[i]];
                    if (cum >= p.topP() * kept) {
                        keep = i + 1;
                        break;
                    }
                }
                n = keep;
            }
        }
        if (n == 0) {
            // cannot happen with finite logits (the most likely token has weight 1); kept as a clear error
            // rather than an index out of bounds should the arithmetic above ever change
            throw new SamplingException("no candidate token left after temperature " + p.temperature()
                    + ", min_p " + p.minP() + ", top_k " + p.topK() + ", top_p " + p.topP());
        }
        return n;
    }

    /**
     * NaN or +infinity anywhere in the row means the forward pass went wrong for this sequence (a NaN
     * weight, an overflow); sampling from it would pick an arbitrary token (greedy: the first one) or fail
     * on an empty candidate list, so it is reported instead. -infinity is a legitimate "never".
     */
    private void checkFinite() {
        for (int i = 0; i < vocab; i++) {
            float x = work[i];
            if (x != x || x == Float.POSITIVE_INFINITY) {
                int count = 0;
                for (int j = i; j < vocab; j++) {
                    if (work[j] != work[j] || work[j] == Float.POSITIVE_INFINITY) {
                        count++;
                    }
                }
                throw new SamplingException("the model produced non-finite logits: " + x + " for token " + i
                        + " (" + count + " of " + vocab + " logits are NaN or +infinity)");
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

    private static float max(float[] v) {
        float m = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            m = Math.max(m, x);
        }
        return m;
    }

    private static double logSumExp(float[] v, double max) {
        double s = 0;
        for (float x : v) {
            s += Math.exp(x - max);
        }
        return Math.log(s);
    }

    /** Indices of the k largest values, best first, ties to the lower index. */
    private static int[] topIndices(float[] v, int k) {
        k = Math.min(k, v.length);
        int[] best = new int[k];
        Arrays.fill(best, -1);
        for (int i = 0; i < v.length; i++) {
            if (best[k - 1] >= 0 && !(v[i] > v[best[k - 1]])) {
                continue;
            }
            int j = k - 1;
            while (j > 0 && (best[j - 1] < 0 || v[i] > v[best[j - 1]])) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = i;
        }
        return best;
    }
}
