package io.xpuflow.runtime.tokenizer;

/**
 * GPT-2's reversible byte-to-character table, used by byte-level BPE (GPT-2, Qwen2/3, MiMo, Llama 3).
 *
 * <p>Every byte gets a printable, non-whitespace character so that a vocabulary stored as JSON strings can
 * spell any byte sequence: the printable Latin-1 bytes stand for themselves and the other 68 bytes (controls,
 * space, DEL, NBSP, soft hyphen) are shifted to U+0100 and up, in byte order. So a space is {@code Ġ} (U+0120)
 * and a newline {@code Ċ} (U+010A).
 */
final class ByteLevelAlphabet {
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by character (all are below U+0144); -1 where the character stands for no byte. */
    private static final int[] CHAR_TO_BYTE = new int[0x144];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + shifted++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevelAlphabet() {}

    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a character stands for, or -1 if it is not one of the 256 characters of the alphabet. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** The UTF-8 bytes of {@code s}, each spelled as its alphabet character. */
    static String encode(String s) {
        byte[] bytes = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(out);
    }
}
