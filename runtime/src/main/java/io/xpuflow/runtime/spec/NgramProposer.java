package io.xpuflow.runtime.spec;

/**
 * Prompt-lookup drafting: proposes as drafts the tokens that followed the most recent earlier occurrence
 * of the request's last n tokens (prompt and output together), on the bet that text repeats itself
 * (code edits, quoting, summaries of the prompt). It needs no model, so the drafts cost only the
 * verification.
 *
 * <p>The longest suffix of length {@code maxN} down to {@code minN} that occurred before wins; among
 * occurrences of that length the most recent one, as the nearest context is the likeliest to continue the
 * same way. Up to k tokens that followed it are proposed, fewer when the occurrence is close to the end.
 *
 * <p>Runs every step for every speculating request, so it allocates nothing: one backward scan that
 * compares at most {@code maxN} tokens per position and stops at the most recent full-length match.
 * Stateless and thread-safe.
 */
public final class NgramProposer {
    private final int minN;
    private final int maxN;

    /**
     * @param minN shortest suffix to look up (>= 1); shorter matches are too weak a signal to draft from
     * @param maxN longest suffix to look up (>= minN)
     */
    public NgramProposer(int minN, int maxN) {
        if (minN < 1 || maxN < minN) {
            throw new IllegalArgumentException("need 1 <= ngram min <= ngram max, was " + minN + " and " + maxN);
        }
        this.minN = minN;
        this.maxN = maxN;
    }

    /**
     * Writes up to {@code k} draft tokens into {@code out[0 ..)} and returns how many.
     *
     * @param tokens the request's tokens, prompt then output, in {@code tokens[0 .. length)}
     * @return 0 when no suffix of at least {@code minN} tokens occurred earlier
     */
    public int propose(int[] tokens, int length, int k, int[] out) {
        if (length < 0 || length > tokens.length) {
            throw new IllegalArgumentException("length " + length + " not in [0, " + tokens.length + "]");
        }
        if (k <= 0 || length < minN + 1) {
            return 0;
        }
        int last = length - 1;
        int bestLen = 0;
        int bestEnd = -1;
        // end: the position an earlier occurrence ends at, aligned with the last token; it must leave at
        // least one token after it to propose, hence end <= last - 1
        for (int end = last - 1; end >= minN - 1; end--) {
            int m = 0;
            int limit = Math.min(maxN, end + 1);
            while (m < limit && tokens[end - m] == tokens[last - m]) {
                m++;
            }
            if (m > bestLen) {
                bestLen = m;
                bestEnd = end;
                if (m == maxN) {
                    break; // nothing longer can be found and anything further back is less recent
                }
            }
        }
        if (bestLen < minN) {
            return 0;
        }
        int n = Math.min(Math.min(k, out.length), last - bestEnd);
        System.arraycopy(tokens, bestEnd + 1, out, 0, n);
        return n;
    }

    public int minN() {
        return minN;
    }

    public int maxN() {
        return maxN;
    }
}
