package io.xpuflow.runtime.tokenizer;

import com.hubspot.jinjava.objects.collections.PyList;
import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The methods of Python's {@code str} that chat templates call ({@code content.startswith('<tool_response>')},
 * {@code content.split('</think>')[-1].lstrip('\n')}), with Python's semantics. Lists come back as Jinjava's
 * {@link PyList} so that negative indices and list methods work on them.
 */
final class PythonStr {
    /** Returned by {@link #call} for a name that is not a supported str method. */
    static final Object NO_SUCH_METHOD = new Object();

    private static final Pattern LINE_BREAK =
            Pattern.compile("\r\n|[\n\r\u000B\u000C\u001C\u001D\u001E\u0085\u2028\u2029]");

    private PythonStr() {}

    static Object call(String s, String method, Object[] args) {
        switch (method) {
            case "startswith":
                return affix(s, args, true);
            case "endswith":
                return affix(s, args, false);
            case "strip":
                return strip(s, chars(args, 0), true, true);
            case "lstrip":
                return strip(s, chars(args, 0), true, false);
            case "rstrip":
                return strip(s, chars(args, 0), false, true);
            case "split":
                return split(s, separator(args), maxsplit(args));
            case "rsplit":
                return rsplit(s, separator(args), maxsplit(args));
            case "splitlines": {
                String[] lines = LINE_BREAK.split(s, -1);
                int n = lines.length > 0 && lines[lines.length - 1].isEmpty() ? lines.length - 1 : lines.length;
                return new PyList(new ArrayList<>(Arrays.asList(lines).subList(0, n)));
            }
            case "upper":
                return s.toUpperCase(Locale.ROOT);
            case "lower":
                return s.toLowerCase(Locale.ROOT);
            case "title":
                return title(s);
            case "capitalize":
                return s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "replace":
                return replace(s, str(args, 0, "replace"), str(args, 1, "replace"),
                        args.length > 2 ? ((Number) args[2]).intValue() : -1);
            case "find":
                return (long) s.indexOf(str(args, 0, "find"));
            case "rfind":
                return (long) s.lastIndexOf(str(args, 0, "rfind"));
            case "index": {
                int i = s.indexOf(str(args, 0, "index"));
                if (i < 0) {
                    throw new JinjaCompat.PythonError("substring not found");
                }
                return (long) i;
            }
            case "count":
                return count(s, str(args, 0, "count"));
            case "join":
                return join(s, args.length > 0 ? args[0] : null);
            case "isdigit":
                return !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha":
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum":
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace":
                return !s.isEmpty() && s.chars().allMatch(c -> isSpace((char) c));
            case "islower":
                return s.chars().anyMatch(Character::isLetter) && s.equals(s.toLowerCase(Locale.ROOT));
            case "isupper":
                return s.chars().anyMatch(Character::isLetter) && s.equals(s.toUpperCase(Locale.ROOT));
            case "format":
                return format(s, args);
            default:
                return NO_SUCH_METHOD;
        }
    }

    /** Python's str.isspace characters. */
    static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    private static String str(Object[] args, int i, String method) {
        if (args.length <= i || args[i] == null) {
            throw new JinjaCompat.PythonError("str." + method + "() needs a string argument " + (i + 1));
        }
        return String.valueOf(args[i]);
    }

    private static String chars(Object[] args, int i) {
        return args.length > i && args[i] != null ? String.valueOf(args[i]) : null;
    }

    private static String separator(Object[] args) {
        String sep = chars(args, 0);
        if (sep != null && sep.isEmpty()) {
            throw new JinjaCompat.PythonError("empty separator");
        }
        return sep;
    }

    private static int maxsplit(Object[] args) {
        return args.length > 1 && args[1] instanceof Number n ? n.intValue() : -1;
    }

    /** startswith/endswith with a string or a tuple (list) of strings. */
    private static boolean affix(String s, Object[] args, boolean start) {
        if (args.length == 0 || args[0] == null) {
            throw new JinjaCompat.PythonError((start ? "startswith" : "endswith") + "() needs an argument");
        }
        List<String> candidates = new ArrayList<>();
        Object a = args[0];
        if (a instanceof Collection<?> c) {
            c.forEach(o -> candidates.add(String.valueOf(o)));
        } else if (a.getClass().isArray()) {
            for (int i = 0; i < Array.getLength(a); i++) {
                candidates.add(String.valueOf(Array.get(a, i)));
            }
        } else {
            candidates.add(String.valueOf(a));
        }
        for (String c : candidates) {
            if (start ? s.startsWith(c) : s.endsWith(c)) {
                return true;
            }
        }
        return false;
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int from = 0;
        int to = s.length();
        if (left) {
            while (from < to && (chars == null ? isSpace(s.charAt(from)) : chars.indexOf(s.charAt(from)) >= 0)) {
                from++;
            }
        }
        if (right) {
            while (to > from && (chars == null ? isSpace(s.charAt(to - 1)) : chars.indexOf(s.charAt(to - 1)) >= 0)) {
                to--;
            }
        }
        return s.substring(from, to);
    }

    static PyList split(String s, String sep, int maxsplit) {
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            // runs of whitespace; no empty strings at either end
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) {
                    i++;
                }
                if (i == n) {
                    break;
                }
                if (maxsplit >= 0 && out.size() == maxsplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return new PyList(out);
        }
        int from = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return new PyList(out);
    }

    static PyList rsplit(String s, String sep, int maxsplit) {
        if (maxsplit < 0) {
            return split(s, sep, -1);
        }
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            int j = s.length();
            while (true) {
                while (j > 0 && isSpace(s.charAt(j - 1))) {
                    j--;
                }
                if (j == 0) {
                    break;
                }
                if (out.size() == maxsplit) {
                    out.add(0, strip(s.substring(0, j), null, true, false));
                    break;
                }
                int i = j;
                while (i > 0 && !isSpace(s.charAt(i - 1))) {
                    i--;
                }
                out.add(0, s.substring(i, j));
                j = i;
            }
            return new PyList(out);
        }
        int to = s.length();
        while (out.size() < maxsplit) {
            int at = s.lastIndexOf(sep, to - sep.length());
            if (at < 0) {
                break;
            }
            out.add(0, s.substring(at + sep.length(), to));
            to = at;
        }
        out.add(0, s.substring(0, to));
        return new PyList(out);
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            sb.append(previousCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            previousCased = Character.isLetter(c);
        }
        return sb.toString();
    }

    /** The length of {@code s.replace(old, replacement, count)}, computed without building it. */
    static long replacedLength(String s, String old, String replacement, int count) {
        long n = count(s, old);
        if (count >= 0) {
            n = Math.min(n, count);
        }
        return s.length() + n * ((long) replacement.length() - old.length());
    }

    private static String replace(String s, String old, String replacement, int count) {
        // a long replacement of a frequent substring multiplies the length: check before building it
        RenderBudget.checkLength(replacedLength(s, old, replacement, count), "str.replace");
        if (count < 0) {
            return s.replace(old, replacement); // Java and Python agree, also on an empty old string
        }
        StringBuilder sb = new StringBuilder();
        int done = 0;
        if (old.isEmpty()) {
            // Python inserts before each character and at the end, up to count times
            for (int i = 0; i <= s.length(); i++) {
                if (done < count) {
                    sb.append(replacement);
                    done++;
                }
                if (i < s.length()) {
                    sb.append(s.charAt(i));
                }
            }
            return sb.toString();
        }
        int from = 0;
        for (int at = s.indexOf(old); at >= 0 && done < count; at = s.indexOf(old, from)) {
            sb.append(s, from, at).append(replacement);
            from = at + old.length();
            done++;
        }
        return sb.append(s, from, s.length()).toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) {
            it.forEach(o -> parts.add(String.valueOf(o)));
        } else if (items != null && items.getClass().isArray()) {
            for (int i = 0; i < Array.getLength(items); i++) {
                parts.add(String.valueOf(Array.get(items, i)));
            }
        } else if (items instanceof String str) {
            str.codePoints().forEach(cp -> parts.add(new String(Character.toChars(cp))));
        } else {
            throw new JinjaCompat.PythonError("str.join() needs a list");
        }
        long length = (long) sep.length() * Math.max(0, parts.size() - 1);
        for (String p : parts) {
            length += p.length();
        }
        RenderBudget.checkLength(length, "str.join");
        return String.join(sep, parts);
    }

    /** {@code "{} and {}".format(a, b)} and {@code "{0}"}: positional fields only. */
    private static String format(String s, Object[] args) {
        StringBuilder sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '{' && i + 1 < s.length() && s.charAt(i + 1) == '{') {
                sb.append('{');
                i++;
            } else if (c == '}' && i + 1 < s.length() && s.charAt(i + 1) == '}') {
                sb.append('}');
                i++;
            } else if (c == '{') {
                int close = s.indexOf('}', i);
                if (close < 0) {
                    throw new JinjaCompat.PythonError("Single '{' encountered in format string");
                }
                String field = s.substring(i + 1, close);
                int index = field.isEmpty() ? auto++ : Integer.parseInt(field);
                if (index >= args.length) {
                    throw new JinjaCompat.PythonError("Replacement index " + index + " out of range");
                }
                String value = String.valueOf(args[index]);
                RenderBudget.checkLength((long) sb.length() + value.length(), "str.format");
                sb.append(value);
                i = close;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
