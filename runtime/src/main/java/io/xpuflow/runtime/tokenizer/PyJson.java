package io.xpuflow.runtime.tokenizer;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * JSON written the way Python's {@code json.dumps} writes it, for the {@code tojson} filter of chat templates:
 * {@code transformers} renders tool schemas and tool-call arguments with {@code json.dumps(x,
 * ensure_ascii=False)}, whose {@code ", "} and {@code ": "} separators end up in the prompt. Jackson's compact
 * output would give the model differently spaced text from what it was trained on.
 */
final class PyJson {
    private final Integer indent;
    private final boolean sortKeys;
    private final boolean ensureAscii;
    private final String itemSeparator;
    private final String keySeparator;

    /**
     * @param indent null for one line; otherwise a newline and this many spaces per level
     * @param separators item and key separators; null for Python's defaults ({@code ", "}/{@code ": "}, or
     *     {@code ","}/{@code ": "} when indenting)
     */
    PyJson(Integer indent, boolean sortKeys, boolean ensureAscii, List<String> separators) {
        this.indent = indent;
        this.sortKeys = sortKeys;
        this.ensureAscii = ensureAscii;
        if (separators != null && separators.size() == 2) {
            itemSeparator = separators.get(0);
            keySeparator = separators.get(1);
        } else {
            itemSeparator = indent == null ? ", " : ",";
            keySeparator = ": ";
        }
    }

    static String dumps(Object value) {
        return new PyJson(null, false, false, null).write(value);
    }

    String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(value, 0, sb);
        return sb.toString();
    }

    private void write(Object v, int depth, StringBuilder sb) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            sb.append(pythonFloat(((Number) v).doubleValue()));
        } else if (v instanceof Number) {
            sb.append(v);
        } else if (v instanceof CharSequence s) {
            string(s.toString(), sb);
        } else if (v instanceof Map<?, ?> m) {
            object(m, depth, sb);
        } else if (v instanceof Collection<?> c) {
            array(new ArrayList<>(c), depth, sb);
        } else if (v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            for (int i = 0; i < Array.getLength(v); i++) {
                items.add(Array.get(v, i));
            }
            array(items, depth, sb);
        } else {
            string(v.toString(), sb);
        }
    }

    private void array(List<?> items, int depth, StringBuilder sb) {
        if (items.isEmpty()) {
            sb.append("[]");
            return;
        }
        sb.append('[');
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) {
                sb.append(itemSeparator);
            }
            newline(depth + 1, sb);
            write(items.get(i), depth + 1, sb);
        }
        newline(depth, sb);
        sb.append(']');
    }

    private void object(Map<?, ?> m, int depth, StringBuilder sb) {
        if (m.isEmpty()) {
            sb.append("{}");
            return;
        }
        List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
        if (sortKeys) {
            entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
        }
        sb.append('{');
        for (int i = 0; i < entries.size(); i++) {
            if (i > 0) {
                sb.append(itemSeparator);
            }
            newline(depth + 1, sb);
            string(String.valueOf(entries.get(i).getKey()), sb);
            sb.append(keySeparator);
            write(entries.get(i).getValue(), depth + 1, sb);
        }
        newline(depth, sb);
        sb.append('}');
    }

    private void newline(int depth, StringBuilder sb) {
        if (indent != null) {
            // tojson(indent=10**9) would otherwise build a gigabyte of spaces per line
            RenderBudget.checkLength(sb.length() + 1L + (long) indent * depth, "tojson");
            sb.append('\n').append(" ".repeat(indent * depth));
        }
    }

    private void string(String s, StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    boolean loneSurrogate = Character.isSurrogate(c) && !(Character.isHighSurrogate(c)
                            && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1)));
                    if (c < 0x20 || (ensureAscii && c > 0x7E) || loneSurrogate) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else if (Character.isHighSurrogate(c)) {
                        sb.append(c).append(s.charAt(++i));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python's repr of a float: {@code 1.0}, {@code 1e+20}, {@code 1.5e-07}, {@code NaN}, {@code Infinity}. */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        String s = Double.toString(d); // shortest round-trip digits, like Python's repr
        int e = s.indexOf('E');
        double abs = Math.abs(d);
        if (e < 0 && (abs == 0 || (abs >= 1e-4 && abs < 1e16))) {
            return s;
        }
        // Python switches to exponent form below 1e-4 and from 1e16; Java below 1e-3 and from 1e7
        java.math.BigDecimal exact = new java.math.BigDecimal(s);
        String digits = exact.unscaledValue().abs().toString().replaceAll("0+$", "");
        if (digits.isEmpty()) {
            digits = "0";
        }
        int exponent = exact.precision() - exact.scale() - 1;
        if (abs >= 1e-4 && abs < 1e16) {
            String plain = exact.stripTrailingZeros().toPlainString();
            return plain.contains(".") ? plain : plain + ".0";
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return (d < 0 ? "-" : "") + mantissa + "e" + (exponent < 0 ? "-" : "+")
                + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
    }
}
