package io.xpuflow.runtime.options;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * The one definition of a sampling or engine option: its canonical name, type, default, rule and
 * description. Every surface derives what it shows from it (as vLLM derives its CLI from {@code EngineArgs}):
 *
 * <ul>
 *   <li>JSON (Kafka requests, {@code LLM_GENERATE} options): {@link #jsonName()}, the canonical name,
 *       {@code max_tokens};</li>
 *   <li>SQL options and job parameters: {@link #key()}, {@code max-tokens};</li>
 *   <li>command-line flags: {@link #flag()}, {@code --max-tokens}.</li>
 * </ul>
 *
 * Values are read by one reader per {@link OptionType}; {@link #check} then applies the option's rule and
 * names the option as the surface spells it. The options are defined in two registries,
 * {@code io.xpuflow.runtime.sample.SamplingOptionDefs} and {@code io.xpuflow.runtime.engine.EngineOptionDefs}.
 *
 * @param <T> the parsed value's type, see {@link OptionType#javaType()}
 */
public final class Option<T> {
    private final String name;
    private final OptionType type;
    private final T defaultValue;
    private final String defaultText;
    private final Predicate<T> rule;
    private final String ruleText;
    private final String description;
    private final Set<Surface> surfaces;
    private final List<String> choices;
    private final T validExample;
    private final Object invalidExample;

    private Option(Builder<T> b) {
        this.name = b.name;
        this.type = b.type;
        this.defaultValue = b.defaultValue;
        this.defaultText = b.defaultText != null ? b.defaultText : format(b.defaultValue);
        this.rule = b.rule;
        this.ruleText = b.ruleText;
        this.description = b.description;
        this.surfaces = Set.copyOf(b.surfaces);
        this.choices = List.copyOf(b.choices);
        this.validExample = b.validExample;
        this.invalidExample = b.invalidExample;
        if (description == null || description.isBlank() || validExample == null || invalidExample == null) {
            throw new IllegalStateException("option '" + name + "' needs a description and a valid and an invalid example");
        }
    }

    /** The canonical name, lower snake case, as in JSON ({@code max_tokens}). */
    public String name() {
        return name;
    }

    /** The JSON field name: the canonical name. */
    public String jsonName() {
        return name;
    }

    /** The key of SQL options and job parameters: the name in lower kebab case ({@code max-tokens}). */
    public String key() {
        return name.replace('_', '-');
    }

    /** The command-line flag ({@code --max-tokens}). */
    public String flag() {
        return "--" + key();
    }

    public OptionType type() {
        return type;
    }

    /** The default; {@code null}: unset (e.g. {@code seed}: derived from the request id). */
    public T defaultValue() {
        return defaultValue;
    }

    /** The default as written in text ({@code 16}, {@code 512mb}, {@code 10s}); empty when unset. */
    public String defaultText() {
        return defaultText;
    }

    /** The rule a value must satisfy, as a message states it: {@code ">= 1"}, {@code "in (0, 1]"}. */
    public String ruleText() {
        return ruleText;
    }

    public String description() {
        return description;
    }

    public Set<Surface> surfaces() {
        return surfaces;
    }

    public boolean on(Surface surface) {
        return surfaces.contains(surface);
    }

    /** The accepted values of a {@link OptionType#CHOICE}, lower case; empty for other types. */
    public List<String> choices() {
        return choices;
    }

    /** A value every surface accepts (used by the tests that compare the surfaces). */
    public T validExample() {
        return validExample;
    }

    /**
     * A value every surface refuses, as the Java value a surface would write (a number out of range, a
     * {@link String} where a boolean belongs, a list with a bad element).
     */
    public Object invalidExample() {
        return invalidExample;
    }

    /**
     * {@code value} if it satisfies the rule ({@code null}, unset, always does).
     *
     * @param shownName the option as the caller's surface spells it ({@code max_tokens}, {@code max-tokens},
     *     {@code --max-tokens}), for the message
     * @throws IllegalArgumentException "'max_tokens' must be >= 1, was 0"
     */
    public T check(T value, String shownName) {
        if (value != null && !rule.test(value)) {
            throw new IllegalArgumentException("'" + shownName + "' must be " + ruleText + ", was " + show(value));
        }
        return value;
    }

    /** A value for a message: strings of a list quoted, so that an empty one shows ({@code ["a", ""]}). */
    private static String show(Object value) {
        if (value instanceof List<?> l) {
            return l.stream().map(e -> e instanceof String s ? "\"" + s + "\"" : String.valueOf(e))
                    .collect(Collectors.joining(", ", "[", "]"));
        }
        return String.valueOf(value);
    }

    /** {@link #check} naming the option by its canonical name. */
    public T check(T value) {
        return check(value, name);
    }

    /** {@code value} cast to this option's type, for values read generically. */
    @SuppressWarnings("unchecked")
    public T cast(Object value) {
        if (value != null && !type.javaType().isInstance(value)) {
            throw new IllegalArgumentException("'" + name + "' holds " + type.description() + ", not "
                    + value.getClass().getSimpleName());
        }
        return (T) value;
    }

    /** A value as text ({@code 0.8}, {@code a;b}, {@code 10s}); "" for null. */
    public static String format(Object value) {
        if (value == null) {
            return "";
        }
        if (value instanceof Double d) {
            return BigDecimal.valueOf(d).stripTrailingZeros().toPlainString();
        }
        if (value instanceof Duration d) {
            return d.isZero() ? "0" : d.toMillis() % 1000 != 0 ? d.toMillis() + "ms" : d.toSeconds() + "s";
        }
        if (value instanceof List<?> l) {
            return l.stream().map(Option::format).collect(Collectors.joining(";"));
        }
        return value.toString();
    }

    @Override
    public String toString() {
        return name;
    }

    public static Builder<Integer> integer(String name) {
        return new Builder<>(name, OptionType.INTEGER);
    }

    public static Builder<Long> longInteger(String name) {
        return new Builder<>(name, OptionType.LONG);
    }

    public static Builder<Double> number(String name) {
        return new Builder<Double>(name, OptionType.NUMBER).rule(Double::isFinite, "a finite number");
    }

    public static Builder<Boolean> bool(String name) {
        return new Builder<Boolean>(name, OptionType.BOOLEAN).rule(v -> true, "true or false (in text also on, off)");
    }

    public static Builder<List<String>> strings(String name) {
        return new Builder<>(name, OptionType.STRINGS);
    }

    public static Builder<List<Integer>> integers(String name) {
        return new Builder<>(name, OptionType.INTEGERS);
    }

    /** Values in bytes; give the default with its text ({@code 512mb}). */
    public static Builder<Long> memorySize(String name) {
        return new Builder<Long>(name, OptionType.MEMORY_SIZE).rule(v -> v > 0, "a memory size above zero");
    }

    public static Builder<Duration> duration(String name) {
        return new Builder<Duration>(name, OptionType.DURATION).rule(v -> !v.isNegative(), "zero or positive");
    }

    /** A value from {@code values} (lower case), in any case. */
    public static Builder<String> choice(String name, List<String> values) {
        Builder<String> b = new Builder<>(name, OptionType.CHOICE);
        b.choices = values.stream().map(v -> v.toLowerCase(Locale.ROOT)).toList();
        List<String> accepted = b.choices;
        return b.rule(accepted::contains, "one of " + String.join(", ", b.choices));
    }

    /** Builds an {@link Option}; the name must be lower snake case. */
    public static final class Builder<T> {
        private final String name;
        private final OptionType type;
        private T defaultValue;
        private String defaultText;
        private Predicate<T> rule = v -> true;
        private String ruleText = "valid";
        private String description;
        private Set<Surface> surfaces = EnumSet.allOf(Surface.class);
        private List<String> choices = List.of();
        private T validExample;
        private Object invalidExample;

        private Builder(String name, OptionType type) {
            if (!name.matches("[a-z][a-z0-9]*(_[a-z0-9]+)*")) {
                throw new IllegalArgumentException("option name '" + name + "' is not lower snake case");
            }
            this.name = name;
            this.type = type;
        }

        public Builder<T> defaultValue(T value) {
            this.defaultValue = value;
            return this;
        }

        /** A default with its text, for types whose text is not {@code toString()} ({@code 512mb}). */
        public Builder<T> defaultValue(T value, String text) {
            this.defaultValue = value;
            this.defaultText = text;
            return this;
        }

        /** The rule, and how a message states it ({@code ">= 1"}); replaces the type's own rule. */
        public Builder<T> rule(Predicate<T> rule, String text) {
            this.rule = rule;
            this.ruleText = text;
            return this;
        }

        public Builder<T> description(String text) {
            this.description = text;
            return this;
        }

        /** The surfaces that take the option (default: all). */
        public Builder<T> surfaces(Surface first, Surface... rest) {
            this.surfaces = EnumSet.of(first, rest);
            return this;
        }

        /** A value every surface accepts and one every surface refuses; see {@link Option#invalidExample()}. */
        public Builder<T> examples(T valid, Object invalid) {
            this.validExample = valid;
            this.invalidExample = invalid;
            return this;
        }

        public Option<T> build() {
            if (defaultValue != null && !rule.test(defaultValue)) {
                throw new IllegalStateException("default of option '" + name + "' breaks its rule: " + ruleText);
            }
            return new Option<>(this);
        }
    }
}
