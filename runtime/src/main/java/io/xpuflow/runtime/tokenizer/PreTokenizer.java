package io.xpuflow.runtime.tokenizer;

import io.xpuflow.runtime.tokenizer.Normalizer.TextPattern;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code pre_tokenizer} of a {@code tokenizer.json}: cuts normalized text into words, each of which BPE
 * then encodes on its own (merges never cross a word boundary). Pre-tokenizers may also rewrite the words
 * (ByteLevel spells their bytes, Metaspace replaces spaces).
 */
interface PreTokenizer {
    /**
     * Splits every piece further.
     *
     * @param firstAtStart whether {@code pieces.get(0)} begins at the start of the whole input (Metaspace
     *     with {@code prepend_scheme: "first"} only prefixes that piece)
     */
    List<String> apply(List<String> pieces, boolean firstAtStart);

    /** GPT-2's split, used by ByteLevel with {@code use_regex: true}. */
    Pattern GPT2_WORDS = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    static PreTokenizer parse(JsonField json) {
        if (json.isAbsent()) {
            return null;
        }
        String type = json.type();
        switch (type) {
            case "Sequence": {
                List<PreTokenizer> parts = new ArrayList<>();
                for (JsonField f : json.get("pretokenizers").elements()) {
                    PreTokenizer p = parse(f);
                    if (p != null) {
                        parts.add(p);
                    }
                }
                return new Sequence(List.copyOf(parts));
            }
            case "Split":
                return new Split(TextPattern.parse(json.get("pattern")).regex(),
                        Behavior.parse(json.get("behavior")), json.get("invert").bool(false));
            case "ByteLevel":
                return new ByteLevel(json.get("add_prefix_space").bool(true), json.get("use_regex").bool(true));
            case "Metaspace":
                return Metaspace.parse(json);
            case "Whitespace":
                // \w+|[^\w\s]+ : the matches are the words, everything else (whitespace) is dropped
                return new Split(Pattern.compile("\\w+|[^\\w\\s]+", Pattern.UNICODE_CHARACTER_CLASS),
                        Behavior.REMOVED, true);
            case "WhitespaceSplit":
                return new Split(Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS), Behavior.REMOVED, false);
            case "Digits":
                return new Split(Pattern.compile("\\p{N}"),
                        json.get("individual_digits").bool(false) ? Behavior.ISOLATED : Behavior.CONTIGUOUS, false);
            default:
                throw json.get("type").error("pre_tokenizer type '" + type + "' is not supported (supported: "
                        + "Sequence, Split, ByteLevel, Metaspace, Whitespace, WhitespaceSplit, Digits)");
        }
    }

    /** What Split does with the pieces its pattern matches (the "delimiters"). */
    enum Behavior {
        REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

        static Behavior parse(JsonField json) {
            String name = json.text();
            switch (name) {
                case "Removed":
                    return REMOVED;
                case "Isolated":
                    return ISOLATED;
                case "MergedWithPrevious":
                    return MERGED_WITH_PREVIOUS;
                case "MergedWithNext":
                    return MERGED_WITH_NEXT;
                case "Contiguous":
                    return CONTIGUOUS;
                default:
                    throw json.error("must be one of Removed, Isolated, MergedWithPrevious, MergedWithNext, "
                            + "Contiguous; was '" + name + "'");
            }
        }
    }

    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public List<String> apply(List<String> pieces, boolean firstAtStart) {
            for (PreTokenizer p : steps) {
                pieces = p.apply(pieces, firstAtStart);
            }
            return pieces;
        }
    }

    /** Splits on a pattern, with Hugging Face's five ways of keeping (or not) what the pattern matched. */
    record Split(Pattern pattern, Behavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public List<String> apply(List<String> pieces, boolean firstAtStart) {
            List<String> out = new ArrayList<>(pieces.size() * 4);
            for (String p : pieces) {
                split(p, out);
            }
            return out;
        }

        void split(String s, List<String> out) {
            // spans as (start, end, isMatch) covering s, in order
            List<int[]> spans = new ArrayList<>();
            Matcher m = pattern.matcher(s);
            int prev = 0;
            while (m.find()) {
                if (prev != m.start()) {
                    spans.add(new int[] {prev, m.start(), invert ? 1 : 0});
                }
                spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
                prev = m.end();
            }
            if (prev != s.length()) {
                spans.add(new int[] {prev, s.length(), invert ? 1 : 0});
            }
            List<int[]> kept = merge(spans);
            for (int[] span : kept) {
                if (span[1] > span[0]) {
                    out.add(s.substring(span[0], span[1]));
                }
            }
        }

        /** The same folds as the Rust implementation, so that edge cases (empty matches, runs) agree. */
        private List<int[]> merge(List<int[]> spans) {
            List<int[]> acc = new ArrayList<>(spans.size());
            boolean previousMatch = false;
            switch (behavior) {
                case REMOVED:
                    for (int[] s : spans) {
                        if (s[2] == 0) {
                            acc.add(s);
                        }
                    }
                    return acc;
                case ISOLATED:
                    return spans;
                case MERGED_WITH_PREVIOUS:
                    for (int[] s : spans) {
                        boolean match = s[2] == 1;
                        if (match && !previousMatch && !acc.isEmpty()) {
                            acc.get(acc.size() - 1)[1] = s[1];
                        } else {
                            acc.add(new int[] {s[0], s[1], 0});
                        }
                        previousMatch = match;
                    }
                    return acc;
                case MERGED_WITH_NEXT:
                    for (int i = spans.size() - 1; i >= 0; i--) {
                        int[] s = spans.get(i);
                        boolean match = s[2] == 1;
                        if (match && !previousMatch && !acc.isEmpty()) {
                            acc.get(acc.size() - 1)[0] = s[0];
                        } else {
                            acc.add(new int[] {s[0], s[1], 0});
                        }
                        previousMatch = match;
                    }
                    java.util.Collections.reverse(acc);
                    return acc;
                case CONTIGUOUS:
                    for (int[] s : spans) {
                        boolean match = s[2] == 1;
                        if (match == previousMatch && !acc.isEmpty()) {
                            acc.get(acc.size() - 1)[1] = s[1];
                        } else {
                            acc.add(new int[] {s[0], s[1], 0});
                        }
                        previousMatch = match;
                    }
                    return acc;
                default:
                    throw new AssertionError(behavior);
            }
        }
    }

    /** Spells each word's UTF-8 bytes in the {@link ByteLevelAlphabet}, optionally after GPT-2's split. */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        @Override
        public List<String> apply(List<String> pieces, boolean firstAtStart) {
            List<String> words = pieces;
            if (addPrefixSpace || useRegex) {
                words = new ArrayList<>(pieces.size());
                Split gpt2 = new Split(GPT2_WORDS, Behavior.ISOLATED, false);
                for (String p : pieces) {
                    // as in Hugging Face, every piece gets the space, not just the first
                    String s = addPrefixSpace && !p.startsWith(" ") ? " " + p : p;
                    if (useRegex) {
                        gpt2.split(s, words);
                    } else {
                        words.add(s);
                    }
                }
            }
            List<String> out = new ArrayList<>(words.size());
            for (String w : words) {
                out.add(ByteLevelAlphabet.encode(w));
            }
            return out;
        }
    }

    /** SentencePiece's word marker: spaces become "▁", one may be prepended, and words start at each "▁". */
    record Metaspace(String replacement, String prependScheme, boolean split) implements PreTokenizer {
        static Metaspace parse(JsonField json) {
            String replacement = json.get("replacement").textOr("\u2581");
            if (replacement.codePointCount(0, replacement.length()) != 1) {
                throw json.get("replacement").error("must be a single character, was '" + replacement + "'");
            }
            JsonField scheme = json.get("prepend_scheme");
            String prepend;
            if (scheme.isAbsent()) {
                // files from before prepend_scheme existed say add_prefix_space
                prepend = json.get("add_prefix_space").bool(true) ? "always" : "never";
            } else {
                prepend = scheme.text();
                if (!prepend.equals("always") && !prepend.equals("first") && !prepend.equals("never")) {
                    throw scheme.error("must be always, first or never; was '" + prepend + "'");
                }
            }
            return new Metaspace(replacement, prepend, json.get("split").bool(true));
        }

        @Override
        public List<String> apply(List<String> pieces, boolean firstAtStart) {
            List<String> out = new ArrayList<>(pieces.size() * 4);
            for (int i = 0; i < pieces.size(); i++) {
                String s = pieces.get(i).replace(" ", replacement);
                boolean prepend = prependScheme.equals("always")
                        || (prependScheme.equals("first") && i == 0 && firstAtStart);
                if (prepend && !s.startsWith(replacement)) {
                    s = replacement + s;
                }
                if (!split) {
                    if (!s.isEmpty()) {
                        out.add(s);
                    }
                    continue;
                }
                // MergedWithNext on the replacement: each word starts at a "▁"
                int start = 0;
                for (int j = s.indexOf(replacement, 1); j >= 0; j = s.indexOf(replacement, j + 1)) {
                    out.add(s.substring(start, j));
                    start = j;
                }
                if (start < s.length()) {
                    out.add(s.substring(start));
                }
            }
            return out;
        }
    }
}
