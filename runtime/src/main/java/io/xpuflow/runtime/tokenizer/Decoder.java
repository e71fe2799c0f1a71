package io.xpuflow.runtime.tokenizer;

import io.xpuflow.runtime.tokenizer.Normalizer.TextPattern;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code decoder} of a {@code tokenizer.json}: turns the vocabulary strings of the ids back into text.
 * As in Hugging Face each decoder maps a list of token strings to a list of strings (a chain), and the text
 * is their concatenation.
 */
interface Decoder {
    List<String> decodeChain(List<String> tokens, State state);

    /**
     * One decode call. In streaming mode the decoders that turn bytes into text leave out an incomplete UTF-8
     * character at the very end (which the next token may complete) and say so, instead of writing U+FFFD.
     */
    final class State {
        final boolean streaming;
        boolean incompleteTail;

        State(boolean streaming) {
            this.streaming = streaming;
        }
    }

    static Decoder parse(JsonField json) {
        if (json.isAbsent()) {
            return null;
        }
        String type = json.type();
        switch (type) {
            case "Sequence": {
                List<Decoder> parts = new ArrayList<>();
                for (JsonField f : json.get("decoders").elements()) {
                    Decoder d = parse(f);
                    if (d != null) {
                        parts.add(d);
                    }
                }
                return new Sequence(List.copyOf(parts));
            }
            case "ByteLevel":
                return new ByteLevel();
            case "Replace":
                return new Replace(TextPattern.parse(json.get("pattern")), json.get("content").text());
            case "ByteFallback":
                return new ByteFallback();
            case "Fuse":
                return new Fuse();
            case "Strip":
                return new Strip(json.get("content").text(), json.get("start").index(), json.get("stop").index());
            case "Metaspace": {
                PreTokenizer.Metaspace m = PreTokenizer.Metaspace.parse(json);
                return new Metaspace(m.replacement(), !m.prependScheme().equals("never"));
            }
            default:
                throw json.get("type").error("decoder type '" + type + "' is not supported (supported: Sequence, "
                        + "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)");
        }
    }

    record Sequence(List<Decoder> decoders) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            for (Decoder d : decoders) {
                tokens = d.decodeChain(tokens, state);
            }
            return tokens;
        }
    }

    /**
     * Byte-level BPE: every character stands for a byte; the bytes of all tokens together are UTF-8. A token
     * with a character outside the alphabet (an added token such as {@code "<think>\n"}) contributes its own
     * UTF-8 bytes, as in Hugging Face.
     */
    record ByteLevel() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            for (String t : tokens) {
                boolean spelled = true;
                for (int i = 0; i < t.length(); i++) {
                    if (ByteLevelAlphabet.byteOf(t.charAt(i)) < 0) {
                        spelled = false;
                        break;
                    }
                }
                if (spelled) {
                    for (int i = 0; i < t.length(); i++) {
                        bytes.write(ByteLevelAlphabet.byteOf(t.charAt(i)));
                    }
                } else {
                    byte[] raw = t.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    bytes.write(raw, 0, raw.length);
                }
            }
            byte[] b = bytes.toByteArray();
            StringBuilder sb = new StringBuilder(b.length);
            if (Utf8.decode(b, b.length, sb, state.streaming) > 0) {
                state.incompleteTail = true;
            }
            return List.of(sb.toString());
        }
    }

    record Replace(TextPattern pattern, String content) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                out.add(pattern.replaceAll(t, content));
            }
            return out;
        }
    }

    /**
     * SentencePiece byte fallback: a run of {@code <0xNN>} tokens is UTF-8 for one or more characters. A run
     * that is not valid UTF-8 becomes one U+FFFD per byte token (Hugging Face's rule, kept so that decodes
     * agree).
     */
    record ByteFallback() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            List<String> out = new ArrayList<>(tokens.size());
            byte[] run = new byte[16];
            int runLength = 0;
            for (int k = 0; k <= tokens.size(); k++) {
                int b = k < tokens.size() ? byteOf(tokens.get(k)) : -1;
                if (b >= 0) {
                    if (runLength == run.length) {
                        run = java.util.Arrays.copyOf(run, run.length * 2);
                    }
                    run[runLength++] = (byte) b;
                    continue;
                }
                if (runLength > 0) {
                    boolean last = k == tokens.size();
                    flush(run, runLength, last && state.streaming, state, out);
                    runLength = 0;
                }
                if (k < tokens.size()) {
                    out.add(tokens.get(k));
                }
            }
            return out;
        }

        private static void flush(byte[] run, int length, boolean holdTail, State state, List<String> out) {
            if (Utf8.isWellFormed(run, length, false)) {
                StringBuilder sb = new StringBuilder(length);
                Utf8.decode(run, length, sb, false);
                out.add(sb.toString());
            } else if (holdTail && Utf8.isWellFormed(run, length, true)) {
                // valid so far, cut off inside a character: the next token may complete it
                StringBuilder sb = new StringBuilder(length);
                Utf8.decode(run, length, sb, true);
                out.add(sb.toString());
                state.incompleteTail = true;
            } else {
                for (int i = 0; i < length; i++) {
                    out.add(String.valueOf(Utf8.REPLACEMENT));
                }
            }
        }

        /** The byte of a {@code <0xNN>} token, or -1. */
        private static int byteOf(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
                return -1;
            }
            int hi = Character.digit(token.charAt(3), 16);
            int lo = Character.digit(token.charAt(4), 16);
            return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        }
    }

    /** Joins all tokens into one string. */
    record Fuse() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            return List.of(String.join("", tokens));
        }
    }

    /** Removes up to {@code start} leading and {@code stop} trailing copies of {@code content} from each token. */
    record Strip(String content, int start, int stop) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                int from = 0;
                for (int i = 0; i < start && t.startsWith(content, from); i++) {
                    from += content.length();
                }
                int to = t.length();
                for (int i = 0; i < stop && to - content.length() >= from && t.startsWith(content, to - content.length());
                        i++) {
                    to -= content.length();
                }
                out.add(t.substring(from, to));
            }
            return out;
        }
    }

    /** SentencePiece's word marker back to spaces; the first token loses its markers (the prepended space). */
    record Metaspace(String replacement, boolean prefixSpace) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens, State state) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                String t = tokens.get(i);
                out.add(i == 0 && prefixSpace ? t.replace(replacement, "") : t.replace(replacement, " "));
            }
            return out;
        }
    }
}
