package io.xpuflow.runtime.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Jinjava's filters whose output size is set by an argument rather than by their input ({@code center(10**9)},
 * {@code indent}, {@code batch}, {@code slice}, {@code replace} with a long replacement, {@code format} with a
 * huge width), wrapped so that the size is checked against {@link RenderBudget} before the filter builds it: one
 * such call could otherwise fill the heap between two of the budget's checks.
 */
final class BoundedFilters {
    private static final Pattern FORMAT_SPEC = Pattern.compile("%[-#+ 0,(<]*(\\d*)(?:\\.(\\d+))?");
    /** Widths and precisions of {@code format}; Python templates print numbers, not pages. */
    static final int MAX_FORMAT_WIDTH = 1 << 16;

    private BoundedFilters() {}

    /** Bounded wrappers of the filters above, as {@code filters} looks them up by name. */
    static List<Filter> wrap(Function<String, Filter> filters) {
        List<Filter> out = new ArrayList<>();
        for (String name : List.of("center", "indent", "batch", "slice", "replace", "format")) {
            Filter f = filters.apply(name);
            if (f != null) {
                out.add(new Bounded(name, f));
            }
        }
        return out;
    }

    private record Bounded(String name, Filter delegate) implements Filter {
        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            Object[] objects = args;
            check(var, objects, Map.of());
            return delegate.filter(var, interpreter, args);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            check(var, args, kwargs);
            return delegate.filter(var, interpreter, args, kwargs);
        }

        @Override
        public boolean preserveSafeString() {
            return delegate.preserveSafeString();
        }

        private void check(Object var, Object[] args, Map<String, Object> kwargs) {
            RenderBudget.check();
            String text = var == null ? "" : var.toString();
            long size = largestNumber(args, kwargs);
            switch (name) {
                case "center" -> RenderBudget.checkLength(Math.max(size, text.length()), "the center filter");
                case "indent" -> RenderBudget.checkLength(text.length() + (lines(text) + 1) * size, "the indent filter");
                case "batch", "slice" -> {
                    if (size > RenderBudget.MAX_COLLECTION_SIZE) {
                        RenderBudget.checkLength(Long.MAX_VALUE, "the " + name + " filter with " + size + " items");
                    }
                }
                case "replace" -> {
                    String old = args.length > 0 ? Objects.toString(args[0], "") : "";
                    String replacement = args.length > 1 ? Objects.toString(args[1], "") : "";
                    RenderBudget.checkLength(PythonStr.replacedLength(text, old, replacement, -1), "the replace filter");
                }
                case "format" -> {
                    Matcher m = FORMAT_SPEC.matcher(text);
                    while (m.find()) {
                        for (int g = 1; g <= 2; g++) {
                            String digits = m.group(g);
                            if (digits != null && !digits.isEmpty()
                                    && (digits.length() > 9 || Integer.parseInt(digits) > MAX_FORMAT_WIDTH)) {
                                RenderBudget.checkLength(digits.length() > 9 ? Long.MAX_VALUE : Long.parseLong(digits),
                                        "the format filter");
                            }
                        }
                    }
                }
                default -> throw new AssertionError(name);
            }
        }
    }

    private static long lines(String s) {
        return s.chars().filter(c -> c == '\n').count();
    }

    /** The largest number among the arguments (numbers or numeric strings), 0 if none. */
    private static long largestNumber(Object[] args, Map<String, Object> kwargs) {
        long max = 0;
        List<Object> all = new ArrayList<>(List.of(args == null ? new Object[0] : args));
        all.addAll(kwargs.values());
        for (Object o : all) {
            long v = 0;
            if (o instanceof Number n) {
                v = Math.abs(n.doubleValue()) >= Long.MAX_VALUE ? Long.MAX_VALUE : Math.abs(n.longValue());
            } else if (o instanceof String s && s.strip().matches("[-+]?\\d{1,18}")) {
                v = Math.abs(Long.parseLong(s.strip()));
            } else if (o instanceof String s && s.strip().matches("[-+]?\\d{19,}")) {
                v = Long.MAX_VALUE;
            }
            max = Math.max(max, v);
        }
        return max;
    }
}
