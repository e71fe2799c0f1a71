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
