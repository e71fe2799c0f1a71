package io.xpuflow.runtime.tokenizer;

/**
 * UTF-8 decoding with the replacement rule of Rust's {@code String::from_utf8_lossy}, which the Hugging Face
 * decoders use: each maximal invalid subsequence becomes one U+FFFD.
 *
 * <p>A stream decoder must not turn the first bytes of a character that the next token will complete into
 * U+FFFD, so decoding can instead leave such an incomplete tail out and report it.
 */
final class Utf8 {
    static final char REPLACEMENT = '\uFFFD';

    private Utf8() {}

    /**
     * Classifies the bytes starting at {@code i}: {@code n > 0} a well-formed character of n bytes; {@code 0}
     * the start of a well-formed character cut off by {@code length}; {@code -n} an invalid sequence whose
     * maximal subpart is n bytes (replaced by one U+FFFD).
     */
    private static int classify(byte[] bytes, int i, int length) {
        int b0 = bytes[i] & 0xFF;
        if (b0 < 0x80) {
            return 1;
        }
        int need;
        int lo = 0x80;
        int hi = 0xBF;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            need = 1;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            need = 2;
            if (b0 == 0xE0) {
                lo = 0xA0; // no overlong forms
            } else if (b0 == 0xED) {
                hi = 0x9F; // no surrogates
            }
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            need = 3;
            if (b0 == 0xF0) {
                lo = 0x90;
            } else if (b0 == 0xF4) {
                hi = 0x8F; // nothing above U+10FFFF
            }
        } else {
            return -1; // continuation byte, C0, C1 or F5..FF
        }
        for (int k = 1; k <= need; k++) {
            if (i + k >= length) {
                return 0;
            }
            int b = bytes[i + k] & 0xFF;
            if (b < lo || b > hi) {
                return -k;
            }
            lo = 0x80;
            hi = 0xBF;
        }
        return need + 1;
    }

    private static int codePoint(byte[] bytes, int i, int n) {
        int cp = n == 1 ? bytes[i] : (bytes[i] & (0x7F >> n));
        for (int k = 1; k < n; k++) {
            cp = (cp << 6) | (bytes[i + k] & 0x3F);
        }
        return cp;
    }

    /**
     * Decodes {@code bytes[0, length)} into {@code out}, replacing invalid sequences.
     *
     * @param holdIncompleteTail if the bytes end inside a character that more bytes could still complete,
     *     leave that tail out instead of replacing it
     * @return the number of bytes left out at the end as an incomplete character (0 if none or not held)
     */
    static int decode(byte[] bytes, int length, StringBuilder out, boolean holdIncompleteTail) {
        int i = 0;
        while (i < length) {
            int n = classify(bytes, i, length);
            if (n > 0) {
                out.appendCodePoint(codePoint(bytes, i, n));
                i += n;
            } else if (n == 0) {
                if (holdIncompleteTail) {
                    return length - i;
                }
                out.append(REPLACEMENT);
                i = length;
            } else {
                out.append(REPLACEMENT);
                i += -n;
            }
        }
        return 0;
    }

    /**
     * Whether the bytes are well-formed UTF-8.
     *
     * @param allowIncompleteTail accept bytes that end inside a character that more bytes could complete
     */
    static boolean isWellFormed(byte[] bytes, int length, boolean allowIncompleteTail) {
        int i = 0;
        while (i < length) {
            int n = classify(bytes, i, length);
            if (n > 0) {
                i += n;
            } else {
                return n == 0 && allowIncompleteTail;
            }
        }
        return true;
    }

    /** Replaces each unpaired surrogate by U+FFFD: a Java string may hold them, UTF-8 cannot. */
    static String replaceLoneSurrogates(String s) {
        int n = s.length();
        StringBuilder sb = null;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                if (sb != null) {
                    sb.append(c).append(s.charAt(i + 1));
                }
                i++;
            } else if (Character.isSurrogate(c)) {
                if (sb == null) {
                    sb = new StringBuilder(n).append(s, 0, i);
                }
                sb.append(REPLACEMENT);
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? s : sb.toString();
    }
}
