package io.xpuflow.runtime.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.objects.collections.PyList;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import java.beans.FeatureDescriptor;
import java.lang.reflect.Array;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * What Jinjava needs to render Hugging Face chat templates, which are written for Python's Jinja2 and call
 * Python itself.
 *
 * <ul>
 *   <li>{@link #preprocess}: source rewrites for syntax Jinjava parses differently from Jinja2. Python slices
 *       with an omitted bound or a step ({@code messages[::-1]}, {@code messages[1:]}) become a subscript by a
 *       slice value, {@code x[__xpuflow_slice(start, stop, step)]}. The value of a named argument is
 *       parenthesised, because Jinjava binds {@code namespace(n=messages|length - 1)} as
 *       {@code (n=messages|length) - 1}. And the operand of {@code not} is parenthesised up to the next
 *       {@code and}/{@code or}/{@code if}/{@code else}, because Jinjava binds {@code not x is defined} as
 *       {@code (not x) is defined} where Jinja2 means {@code not (x is defined)}.
 *   <li>{@link PythonResolver}: Python's {@code str} methods ({@code startswith}, {@code split},
 *       {@code strip('\n')}...) on strings, where Jinjava would call Java's (whose {@code split} takes a regex
 *       and drops trailing empty strings) or find none; indexing a string ({@code s[0]}, {@code s[-1]}); and
 *       the slice values above.
 *   <li>{@code raise_exception}, {@code strftime_now}, a {@code tojson} that writes like Python's
 *       {@code json.dumps}, and the {@code generation} tag of training templates (rendered as its body).
 * </ul>
 */
final class JinjaCompat {
    /** The slice function the preprocessor writes; its value is a string that only the resolver reads. */
    static final String SLICE_FUNCTION = "__xpuflow_slice";
    private static final String SLICE_PREFIX = "\u0000py-slice:";

    private JinjaCompat() {}

    // ---------------------------------------------------------------------------------------------------------
    // Source rewrites

    private static final Pattern RAW_END = Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%}");
    private static final Pattern TAG_NAME = Pattern.compile("^[-+]?\\s*([A-Za-z_]+)");
    private static final Pattern NAMED_ARGUMENT = Pattern.compile("^(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=)(?!=)(.*)$",
            Pattern.DOTALL);

    /** Rewrites the expressions of a template; text, comments and raw blocks are left as they are. */
    static String preprocess(String template) {
        StringBuilder out = new StringBuilder(template.length() + 64);
        int i = 0;
        int n = template.length();
        while (i < n) {
            int open = template.indexOf('{', i);
            if (open < 0 || open + 1 >= n) {
                out.append(template, i, n);
                break;
            }
            char kind = template.charAt(open + 1);
            if (kind != '{' && kind != '%' && kind != '#') {
                out.append(template, i, open + 1);
                i = open + 1;
                continue;
            }
            out.append(template, i, open + 2);
            int bodyStart = open + 2;
            if (kind == '#') {
                int end = template.indexOf("#}", bodyStart);
                end = end < 0 ? n : end + 2;
                out.append(template, bodyStart, end);
                i = end;
                continue;
            }
            int end = blockEnd(template, bodyStart, kind == '{' ? '}' : '%');
            if (end < 0) {
                out.append(template, bodyStart, n); // unterminated: let Jinjava report it
                break;
            }
            String body = template.substring(bodyStart, end);
            Matcher name = TAG_NAME.matcher(body);
            String tag = kind == '%' && name.find() ? name.group(1) : "";
            if (tag.equals("raw")) {
                Matcher rawEnd = RAW_END.matcher(template);
                int stop = rawEnd.find(end) ? rawEnd.end() : n;
                out.append(template, bodyStart, stop);
                i = stop;
                continue;
            }
            // a macro's parameter defaults are parsed by Jinjava's macro tag, not as a call
            out.append(tag.equals("macro") ? body : rewriteExpression(body));
            i = end;
        }
        return out.toString();
    }

    /** Where the block that starts at {@code from} ends (the index of its closing {@code }}} or {@code %}}). */
    private static int blockEnd(String s, int from, char closer) {
        int depth = 0;
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
                depth--;
            } else if (c == closer && depth == 0 && i + 1 < s.length() && s.charAt(i + 1) == '}') {
                return i;
            }
        }
        return -1;
    }

    /** An open bracket being rewritten. */
    private static final class Frame {
        final char open;
        final int start;
        final boolean subscript;
        final List<Integer> colons = new ArrayList<>();
        int argumentStart;

        Frame(char open, int start, boolean subscript) {
            this.open = open;
            this.start = start;
            this.subscript = subscript;
            this.argumentStart = start;
        }
    }

    private static final java.util.Set<String> KEYWORDS = java.util.Set.of("and", "or", "not", "in", "is", "if",
            "else", "elif", "for", "recursive");

    /** Rewrites slices and named arguments in one expression; returns it unchanged if it does not scan. */
    static String rewriteExpression(String body) {
        StringBuilder out = new StringBuilder(body.length() + 32);
        Deque<Frame> frames = new ArrayDeque<>();
        String previous = ""; // the last significant token, to tell a subscript from a list literal
        int i = 0;
        int n = body.length();
        while (i < n) {
            char c = body.charAt(i);
            if (c == '\'' || c == '"') {
                int j = i + 1;
                while (j < n && body.charAt(j) != c) {
                    j += body.charAt(j) == '\\' ? 2 : 1;
                }
                j = Math.min(j + 1, n);
                out.append(body, i, j);
                previous = "'";
                i = j;
                continue;
            }
            if (Character.isLetter(c) || c == '_') {
                int j = i;
                while (j < n && (Character.isLetterOrDigit(body.charAt(j)) || body.charAt(j) == '_')) {
                    j++;
                }
                String word = body.substring(i, j);
                if (LOOSER_THAN_NOT.contains(word)) {
                    closeNots(frames, out);
                }
                out.append(word);
                if (word.equals("not") && !previous.equals("is") && !nextWord(body, j).equals("in")) {
                    while (j < n && Character.isWhitespace(body.charAt(j))) {
                        j++;
                    }
                    out.append(" (");
                    frames.push(new Frame(NOT, out.length(), false));
                }
                previous = word;
                i = j;
                continue;
            }
            if (Character.isWhitespace(c)) {
                out.append(c);
                i++;
                continue;
            }
            switch (c) {
                case '(':
                case '[':
                case '{': {
                    boolean subscript = c == '[' && (previous.equals("'") || previous.equals(")")
                            || previous.equals("]") || previous.equals("}")
                            || (isIdentifier(previous) && !KEYWORDS.contains(previous)));
                    out.append(c);
                    frames.push(new Frame(c, out.length(), subscript));
                    break;
                }
                case ')':
                case ']':
                case '}': {
                    closeNots(frames, out);
                    Frame f = frames.poll();
                    if (f == null || f.open != opening(c)) {
                        return body; // unbalanced: leave the error to Jinjava
                    }
                    if (f.open == '(') {
                        wrapNamedArgument(out, f.argumentStart);
                    } else if (f.open == '[' && f.subscript && !f.colons.isEmpty()) {
                        rewriteSlice(out, f);
                    }
                    out.append(c);
                    break;
                }
                case ':':
                    if (!frames.isEmpty() && frames.peek().open == '[') {
                        frames.peek().colons.add(out.length());
                    }
                    out.append(c);
                    break;
                case ',':
                    closeNots(frames, out);
                    if (!frames.isEmpty() && frames.peek().open == '(') {
                        wrapNamedArgument(out, frames.peek().argumentStart);
                        out.append(c);
                        frames.peek().argumentStart = out.length();
                    } else {
                        out.append(c);
                    }
                    break;
                default:
                    out.append(c);
            }
            previous = String.valueOf(c);
            i++;
        }
        if (!frames.isEmpty() && frames.peek().open == NOT) {
            // close before the whitespace-control marker of "-%}" or "-}}" (no expression ends in a minus)
            int end = stripEnd(out);
            if (end > 0 && (out.charAt(end - 1) == '-' || out.charAt(end - 1) == '+')) {
                end = stripEnd(out, end - 1);
            }
            String tail = out.substring(end);
            out.setLength(end);
            closeNots(frames, out);
            out.append(tail);
        }
        return frames.isEmpty() ? out.toString() : body;
    }

    /** A pseudo bracket: the operand of a {@code not}, closed by a looser operator or the end of its group. */
    private static final char NOT = 'n';
    private static final java.util.Set<String> LOOSER_THAN_NOT = java.util.Set.of("and", "or", "if", "else");

    private static void closeNots(Deque<Frame> frames, StringBuilder out) {
        while (!frames.isEmpty() && frames.peek().open == NOT) {
            frames.pop();
            int end = stripEnd(out);
            String tail = out.substring(end);
            out.setLength(end);
            out.append(')').append(tail);
        }
    }

    private static int stripEnd(CharSequence s) {
        return stripEnd(s, s.length());
    }

    /** The index after the last non-whitespace character before {@code end}. */
    private static int stripEnd(CharSequence s, int end) {
        while (end > 0 && Character.isWhitespace(s.charAt(end - 1))) {
            end--;
        }
        return end;
    }

    /** The identifier after {@code from} (skipping spaces), or "". */
    private static String nextWord(String body, int from) {
        int i = from;
        while (i < body.length() && Character.isWhitespace(body.charAt(i))) {
            i++;
        }
        int j = i;
        while (j < body.length() && (Character.isLetterOrDigit(body.charAt(j)) || body.charAt(j) == '_')) {
            j++;
        }
        return body.substring(i, j);
    }

    private static boolean isIdentifier(String s) {
        return !s.isEmpty() && (Character.isLetter(s.charAt(0)) || s.charAt(0) == '_');
    }

    private static char opening(char closing) {
        return closing == ')' ? '(' : closing == ']' ? '[' : '{';
    }

    /** {@code name=a - 1} becomes {@code name=(a - 1)}, for the argument that starts at {@code from}. */
    private static void wrapNamedArgument(StringBuilder out, int from) {
        Matcher m = NAMED_ARGUMENT.matcher(out.substring(from));
        if (!m.matches() || m.group(2).isBlank()) {
            return;
        }
        String value = m.group(2);
        String leading = value.substring(0, value.length() - value.stripLeading().length());
        String trailing = value.substring(value.stripTrailing().length());
        out.setLength(from);
        out.append(m.group(1)).append(leading).append('(').append(value.strip()).append(')').append(trailing);
    }

    /** {@code [a:b:c]} (any part may be empty) becomes {@code [__xpuflow_slice(a, b, c)]}. */
    private static void rewriteSlice(StringBuilder out, Frame f) {
        if (f.colons.size() > 2) {
            return; // not Python; let Jinjava report it
        }
        List<String> parts = new ArrayList<>();
        int from = f.start;
        for (int colon : f.colons) {
            parts.add(out.substring(from, colon));
            from = colon + 1;
        }
        parts.add(out.substring(from));
        while (parts.size() < 3) {
            parts.add("");
        }
        out.setLength(f.start);
        out.append(SLICE_FUNCTION).append('(');
        for (int k = 0; k < 3; k++) {
            String p = parts.get(k).strip();
            out.append(k > 0 ? ", " : "").append(p.isEmpty() ? "none" : p);
        }
        out.append(')');
    }

    // ---------------------------------------------------------------------------------------------------------
    // Functions (public static: Jinjava calls them by reflection)

    /** What {@code raise_exception} throws: the template itself rejected the conversation. */
    static final class TemplateRaised extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TemplateRaised(String message) {
            super(message);
        }
    }

    /**
     * An error of a Python operation in a template (an empty separator, an index out of range). Not an
     * IllegalArgumentException: Jinjava takes that for "no such method" and would try Java's instead.
     */
    static final class PythonError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        PythonError(String message) {
            super(message);
        }
    }

    public static Object raiseException(Object message) {
        throw new TemplateRaised(String.valueOf(message));
    }

    public static String slice(Object start, Object stop, Object step) {
        return SLICE_PREFIX + bound(start) + ":" + bound(stop) + ":" + bound(step);
    }

    private static String bound(Object o) {
        if (o == null) {
            return "";
        }
        if (!(o instanceof Number)) {
            throw new PythonError("slice indices must be integers or none, was " + o);
        }
        return String.valueOf(((Number) o).longValue());
    }

    /** Python's {@code datetime.now().strftime(format)}, as {@code transformers} provides it (local time). */
    public static String strftimeNow(Object format) {
        ZonedDateTime now = ZonedDateTime.now();
        String f = String.valueOf(format);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < f.length(); i++) {
            char c = f.charAt(i);
            if (c != '%' || i + 1 == f.length()) {
                sb.append(c);
                continue;
            }
            char d = f.charAt(++i);
            switch (d) {
                case 'Y' -> sb.append(now.getYear());
                case 'y' -> sb.append(String.format("%02d", now.getYear() % 100));
                case 'm' -> sb.append(String.format("%02d", now.getMonthValue()));
                case 'd' -> sb.append(String.format("%02d", now.getDayOfMonth()));
                case 'H' -> sb.append(String.format("%02d", now.getHour()));
                case 'I' -> sb.append(String.format("%02d", (now.getHour() + 11) % 12 + 1));
                case 'M' -> sb.append(String.format("%02d", now.getMinute()));
                case 'S' -> sb.append(String.format("%02d", now.getSecond()));
                case 'p' -> sb.append(now.getHour() < 12 ? "AM" : "PM");
                case 'j' -> sb.append(String.format("%03d", now.getDayOfYear()));
                case 'b' -> sb.append(now.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(now.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(now.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(now.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(d);
            }
        }
        return sb.toString();
    }

    /** {@code tojson} with Python's {@code json.dumps} layout and its keyword arguments. */
    static final class ToJson implements AdvancedFilter {
        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
            Object separators = kwargs.get("separators");
            List<String> seps = null;
            if (separators instanceof Collection<?> c && c.size() == 2) {
                seps = new ArrayList<>();
                for (Object o : c) {
                    seps.add(String.valueOf(o));
                }
            }
            return new PyJson(indent instanceof Number num ? num.intValue() : null,
                    Boolean.TRUE.equals(kwargs.get("sort_keys")), Boolean.TRUE.equals(kwargs.get("ensure_ascii")),
                    seps).write(var);
        }

        @Override
        public String getName() {
            return "tojson";
        }
    }

    /** {@code {% generation %}...{% endgeneration %}} marks assistant text for training; here it is the text. */
    static final class GenerationTag implements Tag {
        private static final long serialVersionUID = 1L;

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder sb = new StringBuilder();
            for (Node child : tagNode.getChildren()) {
                sb.append(child.render(interpreter).getValue());
            }
            return sb.toString();
        }

        @Override
        public String getName() {
            return "generation";
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Python str methods and slices

    /** Resolves Python's str methods on strings and slice subscripts; defers everything else. */
    static final class PythonResolver extends ELResolver {
        private static final Pattern INDEX = Pattern.compile("-?\\d{1,9}");

        @Override
        public Object getValue(ELContext context, Object base, Object property) {
            // Jinjava hands the subscript over as a string: "0" for s[0]
            if (base instanceof String s && property instanceof String p && INDEX.matcher(p).matches()) {
                // Python indexes a string by code point, negative from the end; out of range is an error
                int[] cps = s.codePoints().toArray();
                long i = Long.parseLong(p);
                long at = i < 0 ? i + cps.length : i;
                if (at < 0 || at >= cps.length) {
                    throw new PythonError("string index " + i + " out of range");
                }
                context.setPropertyResolved(true);
                return new String(Character.toChars(cps[(int) at]));
            }
            if (base == null || !(property instanceof String p) || !p.startsWith(SLICE_PREFIX)) {
                return null;
            }
            String[] bounds = p.substring(SLICE_PREFIX.length()).split(":", -1);
            Long start = bounds[0].isEmpty() ? null : Long.valueOf(bounds[0]);
            Long stop = bounds[1].isEmpty() ? null : Long.valueOf(bounds[1]);
            Long step = bounds[2].isEmpty() ? null : Long.valueOf(bounds[2]);
            Object result = sliceOf(base, start, stop, step);
            if (result != null) {
                context.setPropertyResolved(true);
            }
            return result;
        }

        @Override
        public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
            if (!(base instanceof String s) || !(method instanceof String name)) {
                return null;
            }
            Object[] args = params == null ? new Object[0] : params;
            Object result = PythonStr.call(s, name, args);
            if (result == PythonStr.NO_SUCH_METHOD) {
                return null;
            }
            context.setPropertyResolved(true);
            return result;
        }

        @Override
        public Class<?> getType(ELContext context, Object base, Object property) {
            return null;
        }

        @Override
        public void setValue(ELContext context, Object base, Object property, Object value) {
            // read-only: nothing to resolve
        }

        @Override
        public boolean isReadOnly(ELContext context, Object base, Object property) {
            return true;
        }

        @Override
        public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
            return null;
        }

        @Override
        public Class<?> getCommonPropertyType(ELContext context, Object base) {
            return null;
        }
    }

    /** Python's {@code seq[start:stop:step]} of a string, list or array; null for other values. */
    static Object sliceOf(Object base, Long start, Long stop, Long step) {
        List<Object> items;
        if (base instanceof String s) {
            int[] cps = s.codePoints().toArray(); // Python indexes code points
            StringBuilder sb = new StringBuilder();
            for (int i : indices(cps.length, start, stop, step)) {
                sb.appendCodePoint(cps[i]);
            }
            return sb.toString();
        } else if (base instanceof List<?> l) {
            items = new ArrayList<>(l);
        } else if (base instanceof Collection<?> c) {
            items = new ArrayList<>(c);
        } else if (base.getClass().isArray()) {
            items = new ArrayList<>();
            for (int i = 0; i < Array.getLength(base); i++) {
                items.add(Array.get(base, i));
            }
        } else {
            return null;
        }
        List<Object> out = new ArrayList<>();
        for (int i : indices(items.size(), start, stop, step)) {
            out.add(items.get(i));
        }
        return new PyList(out);
    }

    /** The indices Python's slice selects from a sequence of {@code length}. */
    static List<Integer> indices(int length, Long start, Long stop, Long step) {
        long st = step == null ? 1 : step;
        if (st == 0) {
            throw new PythonError("slice step cannot be zero");
        }
        long lo;
        long hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(start < 0 ? start + length : start, 0, length);
            hi = stop == null ? length : clamp(stop < 0 ? stop + length : stop, 0, length);
        } else {
            lo = start == null ? length - 1 : clamp(start < 0 ? start + length : start, -1, length - 1);
            hi = stop == null ? -1 : clamp(stop < 0 ? stop + length : stop, -1, length - 1);
        }
        List<Integer> out = new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) {
            out.add((int) i);
        }
        return out;
    }

    private static long clamp(long v, long lo, long hi) {
        return Math.max(lo, Math.min(hi, v));
    }
}
