package io.xpuflow.runtime.spec;

import java.util.Arrays;
import java.util.Locale;

/**
 * Speculative decoding of an engine.
 *
 * @param method where drafts come from; {@link Method#NONE} turns speculation off, and the other fields
 *     are then ignored (normalized to 0 drafts)
 * @param numSpeculativeTokens k, the drafts proposed per step (1..{@link #MAX_SPECULATIVE_TOKENS}): each
 *     is one more position to verify, and beyond 4 the chance that all before it were accepted is too
 *     small to pay for it
 * @param adaptive let each request lower k, or switch speculation off, while its drafts are rejected
 *     (see {@link AdaptiveDraftLength}); with false every step drafts k
 * @param ngramMin shortest suffix {@link NgramProposer} looks up (used by {@link Method#NGRAM})
 * @param ngramMax longest suffix {@link NgramProposer} looks up
 */
public record SpeculativeConfig(Method method, int numSpeculativeTokens, boolean adaptive, int ngramMin,
                                int ngramMax) {
    /** Where drafts come from. */
    public enum Method {
        /** The model's own multi-token-prediction head(s). */
        MTP,
        /** Prompt lookup: the tokens that followed an earlier occurrence of the latest n-gram. */
        NGRAM,
        /** No speculation. */
        NONE;

        /** Parses {@code mtp}, {@code ngram} or {@code none}, in any case. */
        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.name().equalsIgnoreCase(s == null ? "" : s.trim())) {
                    return m;
                }
            }
            throw new IllegalArgumentException("'speculative-method' must be one of "
                    + Arrays.toString(values()).toLowerCase(Locale.ROOT) + ", was " + s);
        }
    }

    public static final int MAX_SPECULATIVE_TOKENS = 4;
    /** Longest n-gram that may be configured: longer suffixes almost never recur verbatim. */
    public static final int MAX_NGRAM = 16;
    public static final int DEFAULT_NGRAM_MIN = 1;
    public static final int DEFAULT_NGRAM_MAX = 3;

    /** Speculation off. */
    public static final SpeculativeConfig NONE = new SpeculativeConfig(Method.NONE, 0, false,
            DEFAULT_NGRAM_MIN, DEFAULT_NGRAM_MAX);

    public SpeculativeConfig {
        if (method == null) {
            throw new IllegalArgumentException("'speculative-method' must be set (mtp, ngram or none)");
        }
        if (method == Method.NONE) {
            numSpeculativeTokens = 0;
            adaptive = false;
        } else if (numSpeculativeTokens < 1 || numSpeculativeTokens > MAX_SPECULATIVE_TOKENS) {
            throw new IllegalArgumentException("'num-speculative-tokens' must be in [1, " + MAX_SPECULATIVE_TOKENS
                    + "] with speculative method " + method.name().toLowerCase(Locale.ROOT) + ", was "
                    + numSpeculativeTokens);
        }
        if (ngramMin < 1 || ngramMin > MAX_NGRAM) {
            throw new IllegalArgumentException("'ngram-min' must be in [1, " + MAX_NGRAM + "], was " + ngramMin);
        }
        if (ngramMax < ngramMin || ngramMax > MAX_NGRAM) {
            throw new IllegalArgumentException("'ngram-max' must be in [ngram-min = " + ngramMin + ", "
                    + MAX_NGRAM + "], was " + ngramMax);
        }
    }

    /** MTP drafting of k tokens, adaptive. */
    public static SpeculativeConfig mtp(int numSpeculativeTokens) {
        return new SpeculativeConfig(Method.MTP, numSpeculativeTokens, true, DEFAULT_NGRAM_MIN, DEFAULT_NGRAM_MAX);
    }

    /** N-gram drafting of k tokens from suffixes of 3 down to 1 tokens, adaptive. */
    public static SpeculativeConfig ngram(int numSpeculativeTokens) {
        return new SpeculativeConfig(Method.NGRAM, numSpeculativeTokens, true, DEFAULT_NGRAM_MIN, DEFAULT_NGRAM_MAX);
    }

    public boolean enabled() {
        return method != Method.NONE;
    }

    public SpeculativeConfig withAdaptive(boolean a) {
        return new SpeculativeConfig(method, numSpeculativeTokens, a, ngramMin, ngramMax);
    }

    public SpeculativeConfig withNgram(int min, int max) {
        return new SpeculativeConfig(method, numSpeculativeTokens, adaptive, min, max);
    }
}
