package io.xpuflow.runtime.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The {@code normalizer} of a {@code tokenizer.json}: rewrites each stretch of text between added tokens
 * before it is split into words. Only the text is needed here (not offsets), so each normalizer is a plain
 * string function.
 */
interface Normalizer {
    String normalize(String text);

    /** Builds the normalizer described at {@code json}; null for a JSON null. */
    static Normalizer parse(JsonField json) {
        if (json.isAbsent()) {
            return null;
        }
        String type = json.type();
        switch (type) {
            case "NFC":
                return new Unicode(java.text.Normalizer.Form.NFC);
            case "NFD":
                return new Unicode(java.text.Normalizer.Form.NFD);
            case "NFKC":
                return new Unicode(java.text.Normalizer.Form.NFKC);
            case "NFKD":
                return new Unicode(java.text.Normalizer.Form.NFKD);
            case "Lowercase":
                return new Lowercase();
            case "Prepend":
                return new Prepend(json.get("prepend").text());
            case "Replace":
                return new Replace(TextPattern.parse(json.get("pattern")), json.get("content").text());
            case "Strip":
                return new Strip(json.get("strip_left").bool(true), json.get("strip_right").bool(true));
            case "Sequence": {
                List<Normalizer> parts = new ArrayList<>();
                for (JsonField f : json.get("normalizers").elements()) {
                    Normalizer n = parse(f);
                    if (n != null) {
                        parts.add(n);
                    }
                }
                return new Sequence(List.copyOf(parts));
            }
            default:
                // e.g. "Precompiled" (a SentencePiece charsmap) or "BertNormalizer": refuse rather than encode wrongly
                throw json.get("type").error("normalizer type '" + type + "' is not supported (supported: NFC, NFD, "
                        + "NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)");
        }
    }

    record Unicode(java.text.Normalizer.Form form) implements Normalizer {
        @Override
        public String normalize(String text) {
            return java.text.Normalizer.normalize(text, form);
        }
    }

    record Lowercase() implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.toLowerCase(Locale.ROOT);
        }
    }

    /** Prepends a string to non-empty text (SentencePiece's "▁" before the first word). */
    record Prepend(String prepend) implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.isEmpty() ? text : prepend + text;
        }
    }

    record Replace(TextPattern pattern, String content) implements Normalizer {
        @Override
        public String normalize(String text) {
            return pattern.replaceAll(text, content);
        }
    }

    /** Removes leading and/or trailing whitespace. */
    record Strip(boolean left, boolean right) implements Normalizer {
        @Override
        public String normalize(String text) {
            if (left && right) {
                return text.strip();
            }
            return left ? text.stripLeading() : right ? text.stripTrailing() : text;
        }
    }

    record Sequence(List<Normalizer> normalizers) implements Normalizer {
        @Override
        public String normalize(String text) {
            for (Normalizer n : normalizers) {
                text = n.normalize(text);
            }
            return text;
        }
    }

    /**
     * The {@code pattern} of Replace and Split: {@code {"String": "..."}} matches literally,
     * {@code {"Regex": "..."}} is a regular expression (Oniguruma syntax in Hugging Face; the expressions in
     * real tokenizers are also valid Java expressions once {@code \s} and friends are made Unicode-aware).
     */
    record TextPattern(Pattern regex) {
        static TextPattern parse(JsonField json) {
            JsonField literal = json.get("String");
            JsonField regex = json.get("Regex");
            if (!literal.isAbsent()) {
                return new TextPattern(Pattern.compile(Pattern.quote(literal.text())));
            }
            if (!regex.isAbsent()) {
                try {
                    return new TextPattern(Pattern.compile(regex.text(), Pattern.UNICODE_CHARACTER_CLASS));
                } catch (PatternSyntaxException e) {
                    throw regex.error("is not a regular expression this engine can compile: " + e.getDescription(), e);
                }
            }
            throw json.error("must be {\"String\": ...} or {\"Regex\": ...}, was " + json.brief());
        }

        String replaceAll(String text, String content) {
            return regex.matcher(text).replaceAll(java.util.regex.Matcher.quoteReplacement(content));
        }
    }
}
