package io.xpuflow.connector.options;

import com.fasterxml.jackson.databind.JsonNode;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.OptionType;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.util.TimeUtils;

/**
 * The one reader per {@link OptionType} of each medium: {@link #fromJson} for JSON (Kafka requests and
 * {@code LLM_GENERATE}'s options), {@link #fromText} for text (SQL options, job parameters, command-line
 * flags). Both check the option's rule too, so a surface gets a value it can use or an
 * {@link IllegalArgumentException} whose message names the option as that surface spells it. The rules of
 * each type are documented on {@link OptionType}; {@link #unknown} is the one message for a name that is no
 * option, with the nearest known name.
 */
public final class OptionReaders {
    private static final int PREVIEW_CHARS = 40;

    private OptionReaders() {}

    /**
     * The value of {@code node} for {@code option}, checked; {@code null} for JSON {@code null} (the default
     * applies).
     *
     * @param shownName the field as the message should name it ({@code max_tokens})
     */
    public static <T> T fromJson(Option<T> option, JsonNode node, String shownName) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return null;
        }
        Object v = switch (option.type()) {
            case INTEGER -> jsonInt(shownName, node);
            case LONG -> jsonLong(shownName, node);
            case NUMBER -> jsonNumber(shownName, node);
            case BOOLEAN -> {
                if (!node.isBoolean()) {
                    throw wrongType(shownName, "a boolean", node);
                }
                yield node.booleanValue();
            }
            case STRINGS -> {
                if (node.isTextual()) {
                    yield List.of(node.textValue());
                }
                if (!node.isArray()) {
                    throw wrongType(shownName, "a string or an array of strings", node);
                }
                List<String> out = new ArrayList<>();
                for (int i = 0; i < node.size(); i++) {
                    JsonNode e = node.get(i);
                    if (!e.isTextual()) {
                        throw wrongType(shownName + "[" + i + "]", "a string", e);
                    }
                    out.add(e.textValue());
                }
                yield List.copyOf(out);
            }
            case INTEGERS -> {
                if (!node.isArray()) {
                    throw wrongType(shownName, "an array of integers", node);
                }
                List<Integer> out = new ArrayList<>();
                for (int i = 0; i < node.size(); i++) {
                    out.add(jsonInt(shownName + "[" + i + "]", node.get(i)));
                }
                yield List.copyOf(out);
            }
            case MEMORY_SIZE, DURATION, CHOICE -> {
                if (!node.isTextual()) {
                    throw wrongType(shownName, option.type().description() + " as a string", node);
                }
                yield fromText(option, node.textValue(), shownName);
            }
        };
        return option.check(option.cast(v), shownName);
    }

    /**
     * The value of {@code text} for a single-valued {@code option}, checked. For a list option the text is one
     * element (a repeated flag) or, when it holds several, Flink's {@code ;}-separated list.
     *
     * @param shownName the option as the message should name it ({@code max-tokens}, {@code --max-tokens})
     */
    public static <T> T fromText(Option<T> option, String text, String shownName) {
        if (option.type().isList()) {
            return fromTextList(option, splitList(text), shownName);
        }
        String s = text == null ? "" : text.trim();
        Object v;
        try {
            v = switch (option.type()) {
                case INTEGER -> Integer.parseInt(s);
                case LONG -> Long.parseLong(s);
                case NUMBER -> textNumber(s);
                case BOOLEAN -> textBoolean(s);
                case MEMORY_SIZE -> memorySize(s).getBytes();
                case DURATION -> TimeUtils.parseDuration(s);
                case CHOICE -> s.toLowerCase(Locale.ROOT);
                case STRINGS, INTEGERS -> throw new AssertionError();
            };
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + shownName + "' must be " + textSyntax(option) + ", was '" + text + "'");
        }
        return option.check(option.cast(v), shownName);
    }

    /** The value of a list option from its elements' texts (a repeated flag, or a parsed SQL list), checked. */
    public static <T> T fromTextList(Option<T> option, List<String> elements, String shownName) {
        List<Object> out = new ArrayList<>();
        for (String e : elements) {
            if (option.type() == OptionType.INTEGERS) {
                try {
                    out.add(Integer.parseInt(e.trim()));
                } catch (RuntimeException x) {
                    throw new IllegalArgumentException("'" + shownName + "' must be a list of integers, has '" + e + "'");
                }
            } else {
                out.add(e);
            }
        }
        return option.check(option.cast(List.copyOf(out)), shownName);
    }

    /** How a value of {@code option} is written in text, for messages and help. */
    public static String textSyntax(Option<?> option) {
        return switch (option.type()) {
            case INTEGER -> "an integer";
            case LONG -> "a 64-bit integer";
            case NUMBER -> "a finite number";
            case BOOLEAN -> "true or false (or on, off)";
            case STRINGS -> "strings";
            case INTEGERS -> "integers";
            case MEMORY_SIZE -> "a memory size such as 512mb, 4gb or 512 (a plain number is MiB)";
            case DURATION -> "a duration such as 500ms, 10s, 5min, 1h or PT10S (a plain number is milliseconds)";
            case CHOICE -> "one of " + String.join(", ", option.choices());
        };
    }

    /**
     * Flink's memory size syntax ({@code 512mb}, {@code 4gb}, {@code 1 g}, {@code 64k}); a plain number is MiB
     * (the command lines took MiB before they took units, and {@code 512} must not become 512 bytes).
     */
    public static MemorySize memorySize(String value) {
        String s = value == null ? "" : value.trim();
        return !s.isEmpty() && s.chars().allMatch(Character::isDigit)
                ? MemorySize.ofMebiBytes(Long.parseLong(s)) : MemorySize.parse(s);
    }

    /**
     * The message for a name that is no option of {@code known}: "unknown option 'max_token'; did you mean
     * 'max_tokens'?" (the nearest name within a third of its length in edits), else listing the known names.
     *
     * @param what "option", "field", "flag"
     */
    public static String unknown(String what, String name, Collection<String> known) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String k : known) {
            int d = distance(name.toLowerCase(Locale.ROOT), k.toLowerCase(Locale.ROOT));
            if (d < bestDistance) {
                best = k;
                bestDistance = d;
            }
        }
        String message = "unknown " + what + " '" + name + "'";
        if (best != null && bestDistance <= Math.max(2, best.length() / 3)) {
            return message + "; did you mean '" + best + "'?";
        }
        return message + " (known: " + String.join(", ", known) + ")";
    }

    /** Levenshtein distance. */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /**
     * Flink's list syntax: {@code ;}-separated, entries trimmed; an entry in double quotes keeps {@code ;} and
     * surrounding whitespace ({@code ""} inside quotes is a quote).
     */
    static List<String> splitList(String text) {
        List<String> out = new ArrayList<>();
        if (text == null || text.isBlank()) {
            return out;
        }
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        boolean wasQuoted = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"') {
                if (quoted && i + 1 < text.length() && text.charAt(i + 1) == '"') {
                    cur.append('"');
                    i++;
                } else {
                    if (!quoted && !wasQuoted) {
                        cur.setLength(0); // whitespace before the opening quote
                    }
                    quoted = !quoted;
                    wasQuoted = true;
                }
            } else if (c == ';' && !quoted) {
                out.add(wasQuoted ? cur.toString() : cur.toString().trim());
                cur.setLength(0);
                wasQuoted = false;
            } else if (quoted || !wasQuoted) {
                cur.append(c); // (whitespace after a closing quote is dropped)
            }
        }
        out.add(wasQuoted ? cur.toString() : cur.toString().trim());
        return out;
    }

    private static double textNumber(String s) {
        // digits, a point and an exponent only: Java's parser would also take "NaN", "1d" and hex
        if (!s.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?")) {
            throw new NumberFormatException(s);
        }
        double d = Double.parseDouble(s);
        if (!Double.isFinite(d)) {
            throw new NumberFormatException(s);
        }
        return d;
    }

    private static boolean textBoolean(String s) {
        if (s.equalsIgnoreCase("true") || s.equalsIgnoreCase("on")) {
            return true;
        }
        if (s.equalsIgnoreCase("false") || s.equalsIgnoreCase("off")) {
            return false;
        }
        throw new IllegalArgumentException(s);
    }

    private static int jsonInt(String name, JsonNode n) {
        long v = jsonLong(name, n);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("'" + name + "' must be a 32-bit integer, got " + n);
        }
        return (int) v;
    }

    /** An integral JSON number: {@code 10}, also {@code 10.0} or {@code 1e1}; not {@code 2.5} or {@code "10"}. */
    private static long jsonLong(String name, JsonNode n) {
        if (!n.isNumber()) {
            throw wrongType(name, "an integer", n);
        }
        if (n.isIntegralNumber() && n.canConvertToLong()) {
            return n.longValue();
        }
        BigDecimal d = n.decimalValue();
        try {
            return d.longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("'" + name + "' must be an integer"
                    + (d.stripTrailingZeros().scale() <= 0 ? " in 64-bit range" : "") + ", got " + preview(n.toString()));
        }
    }

    private static double jsonNumber(String name, JsonNode n) {
        if (!n.isNumber()) {
            throw wrongType(name, "a number", n);
        }
        double v = n.doubleValue();
        if (!Double.isFinite(v)) {
            throw new IllegalArgumentException("'" + name + "' must be a finite number, got " + preview(n.toString()));
        }
        return v;
    }

    private static IllegalArgumentException wrongType(String name, String expected, JsonNode n) {
        String type = n.getNodeType().name().toLowerCase(Locale.ROOT);
        String article = type.startsWith("a") || type.startsWith("o") ? "an " : "a ";
        return new IllegalArgumentException("'" + name + "' must be " + expected + ", got " + article + type + " ("
                + preview(n.toString()) + ")");
    }

    private static String preview(String s) {
        return s.length() <= PREVIEW_CHARS ? s : s.substring(0, PREVIEW_CHARS) + "...";
    }

    /** The option's value as a surface writes it in text: lists {@code ;}-joined, durations as {@code 10s}. */
    public static String toText(Object value) {
        if (value instanceof Duration d) {
            return d.toMillis() + "ms";
        }
        return Option.format(value);
    }
}
