package io.xpuflow.runtime.options;

import java.time.Duration;
import java.util.List;

/**
 * The value types of {@link Option}s. Each surface has exactly one reader per type (JSON: the connector's
 * {@code OptionReaders.fromJson}; text, i.e. SQL options, job parameters and command-line flags:
 * {@code OptionReaders.fromText}), so a value means the same wherever it is written.
 *
 * <p>The rules, decided once:
 * <ul>
 *   <li>{@link #INTEGER}, {@link #LONG}: in JSON any integral number, also written {@code 10.0} or
 *       {@code 1e1} (JSON has one number type, and OpenAI clients send floats); {@code 2.5} and strings
 *       such as {@code "10"} are refused. In text: decimal digits with an optional sign ({@code 10}); not
 *       {@code 10.0}.</li>
 *   <li>{@link #NUMBER}: finite; in JSON a number, in text a decimal number ({@code 0.8}, {@code 1e-3}).</li>
 *   <li>{@link #BOOLEAN}: JSON {@code true}/{@code false}; text {@code true}/{@code false}, or
 *       {@code on}/{@code off}, in any case; a bare command-line flag ({@code --ignore-eos}) means true.</li>
 *   <li>{@link #STRINGS}, {@link #INTEGERS}: in JSON an array (a single string also counts for
 *       {@link #STRINGS}); in SQL options and job parameters {@code ;}-separated (Flink's list syntax,
 *       double-quote an entry to keep a {@code ;}); on a command line the flag is repeated.</li>
 *   <li>{@link #MEMORY_SIZE}: Flink's memory size syntax ({@code 512mb}, {@code 4gb}, {@code 64k}); a plain
 *       number is MiB everywhere (not bytes as in Flink's own options), so {@code 512} is 512 MiB.</li>
 *   <li>{@link #DURATION}: Flink's duration syntax ({@code 500ms}, {@code 10s}, {@code 5min}, {@code PT10S});
 *       a plain number is milliseconds.</li>
 *   <li>{@link #CHOICE}: one of the option's {@link Option#choices()}, in any case.</li>
 * </ul>
 */
public enum OptionType {
    INTEGER(Integer.class, "an integer"),
    LONG(Long.class, "a 64-bit integer"),
    NUMBER(Double.class, "a number"),
    BOOLEAN(Boolean.class, "a boolean"),
    STRINGS(List.class, "a list of strings"),
    INTEGERS(List.class, "a list of integers"),
    MEMORY_SIZE(Long.class, "a memory size"),
    DURATION(Duration.class, "a duration"),
    CHOICE(String.class, "one of the listed values");

    private final Class<?> javaType;
    private final String description;

    OptionType(Class<?> javaType, String description) {
        this.javaType = javaType;
        this.description = description;
    }

    /** The Java type of a parsed value: {@link Long} bytes for {@link #MEMORY_SIZE}, a lower-case {@link String} for {@link #CHOICE}. */
    public Class<?> javaType() {
        return javaType;
    }

    /** "an integer", "a number", ... for messages. */
    public String description() {
        return description;
    }

    public boolean isList() {
        return this == STRINGS || this == INTEGERS;
    }
}
