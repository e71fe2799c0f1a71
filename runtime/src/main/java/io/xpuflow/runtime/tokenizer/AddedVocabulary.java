package io.xpuflow.runtime.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code added_tokens} of a {@code tokenizer.json} (special tokens such as {@code <|im_start|>}, and
 * others such as {@code <think>}): found in the text before BPE sees it, so they always become their own id
 * and are never split or merged.
 *
 * <p>Matching is leftmost-longest, like the Aho-Corasick automaton of Hugging Face. Tokens marked
 * {@code normalized: false} are matched in the raw text; those marked {@code normalized: true} are matched,
 * in their normalized spelling, in the text after normalization. {@code lstrip}/{@code rstrip} let a token
 * swallow the whitespace beside it; {@code single_word} only matches a token standing alone.
 */
final class AddedVocabulary {
    /** One entry of {@code added_tokens}. */
    record AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip, boolean singleWord,
                      boolean normalized) {}

    /** A stretch of text, or an added token ({@code tokenId >= 0}); {@code start} is its offset in the input. */
    record Segment(String text, int tokenId, int start) {
        boolean isToken() {
            return tokenId >= 0;
        }
    }

    private final List<AddedToken> tokens;
    private final Trie raw = new Trie();
    private final Trie normalized = new Trie();

    AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
        this.tokens = List.copyOf(tokens);
        for (int i = 0; i < this.tokens.size(); i++) {
            AddedToken t = this.tokens.get(i);
            if (t.content().isEmpty()) {
                continue; // an empty token would match everywhere
            }
            if (t.normalized() && normalizer != null) {
                normalized.add(normalizer.normalize(t.content()), i);
            } else if (t.normalized()) {
                normalized.add(t.content(), i);
            } else {
                raw.add(t.content(), i);
            }
        }
    }

    static AddedVocabulary parse(JsonField json, Normalizer normalizer) {
        List<AddedToken> tokens = new ArrayList<>();
        if (!json.isAbsent()) {
            for (JsonField t : json.elements()) {
                boolean special = t.get("special").bool(false);
                tokens.add(new AddedToken(t.get("id").index(), t.get("content").text(), special,
                        t.get("lstrip").bool(false), t.get("rstrip").bool(false), t.get("single_word").bool(false),
                        t.get("normalized").bool(!special)));
            }
        }
        return new AddedVocabulary(tokens, normalizer);
    }

    List<AddedToken> tokens() {
        return tokens;
    }

    boolean hasNormalizedTokens() {
        return !normalized.isEmpty();
    }

    /** Splits raw text on the tokens matched before normalization. */
    List<Segment> splitRaw(String text) {
        return split(text, raw);
    }

    /** Splits normalized text on the tokens matched after normalization. */
    List<Segment> splitNormalized(String text) {
        return split(text, normalized);
    }

    private List<Segment> split(String text, Trie trie) {
        List<Segment> out = new ArrayList<>();
        int n = text.length();
        int segStart = 0;
        int i = 0;
        while (i < n && !trie.isEmpty()) {
            int best = -1;
            int bestEnd = -1;
            Trie.Node node = trie.root;
            for (int j = i; j < n; j++) {
                node = node.children == null ? null : node.children.get(text.charAt(j));
                if (node == null) {
                    break;
                }
                if (node.token >= 0) {
                    best = node.token;
                    bestEnd = j + 1;
                }
            }
            if (best < 0) {
                i++;
                continue;
            }
            AddedToken t = tokens.get(best);
            if (t.singleWord() && !(isBoundary(text, i - 1) && isBoundary(text, bestEnd))) {
                i++;
                continue;
            }
            int start = i;
            int end = bestEnd;
            if (t.lstrip()) {
                while (start > segStart && isWhitespace(text.charAt(start - 1))) {
                    start--;
                }
            }
            if (t.rstrip()) {
                while (end < n && isWhitespace(text.charAt(end))) {
                    end++;
                }
            }
            if (start > segStart) {
                out.add(new Segment(text.substring(segStart, start), -1, segStart));
            }
            out.add(new Segment(text.substring(start, end), t.id(), start));
            segStart = end;
            i = end;
        }
        if (segStart < n || out.isEmpty()) {
            out.add(new Segment(text.substring(segStart), -1, segStart));
        }
        return out;
    }

    /** Whether the char at {@code i} (or the text's edge) does not continue a word. */
    private static boolean isBoundary(String text, int i) {
        if (i < 0 || i >= text.length()) {
            return true;
        }
        char c = text.charAt(i);
        return !(Character.isLetterOrDigit(c) || c == '_');
    }

    /** Unicode White_Space, as Rust's char::is_whitespace (Java's isWhitespace leaves out no-break spaces). */
    static boolean isWhitespace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /** A character trie of token contents. */
    private static final class Trie {
        static final class Node {
            Map<Character, Node> children;
            int token = -1;
        }

        final Node root = new Node();
        private boolean empty = true;

        void add(String content, int token) {
            Node node = root;
            for (int i = 0; i < content.length(); i++) {
                if (node.children == null) {
                    node.children = new HashMap<>();
                }
                node = node.children.computeIfAbsent(content.charAt(i), c -> new Node());
            }
            if (node.token < 0) {
                node.token = token; // the first entry with a content wins, like a vocabulary lookup
            }
            empty = false;
        }

        boolean isEmpty() {
            return empty;
        }
    }
}
