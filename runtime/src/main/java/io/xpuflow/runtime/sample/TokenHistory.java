package io.xpuflow.runtime.sample;

import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * What the penalties of one request look at: which tokens occurred in its prompt or output
 * (repetition penalty) and how often each was generated (presence and frequency penalties).
 * Updated once per generated token; not thread-safe.
 */
public final class TokenHistory {
    private final BitSet seen = new BitSet();
    private final Map<Integer, Integer> generated = new HashMap<>();
    private int numGenerated;

    public TokenHistory(int[] prompt) {
        for (int id : prompt) {
            seen.set(id);
        }
    }

    public void addGenerated(int id) {
        seen.set(id);
        generated.merge(id, 1, Integer::sum);
        numGenerated++;
    }

    /**
     * An independent copy: speculative verification scores each draft position with the drafts before it
     * counted as generated, without touching the request's own history until the outcome is known.
     */
    public TokenHistory copy() {
        TokenHistory c = new TokenHistory(new int[0]);
        c.seen.or(seen);
        c.generated.putAll(generated);
        c.numGenerated = numGenerated;
        return c;
    }

    public int numGenerated() {
        return numGenerated;
    }

    BitSet seen() {
        return seen;
    }

    Map<Integer, Integer> generated() {
        return generated;
    }
}
