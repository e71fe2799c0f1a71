package io.xpuflow.cli;

import io.xpuflow.connector.options.OptionReaders;
import java.time.Duration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.util.TimeUtils;
import picocli.CommandLine;

/**
 * Sizes and durations on our command lines ({@code xpuflow ...} and the Kafka job) for flags that are not
 * engine or sampling options ({@code --checkpoint-interval}, {@code --timeout}); those are read by
 * {@link OptionReaders}, and both use one syntax: Flink's, with one difference kept on purpose: a memory size
 * without a unit is MiB (the command lines took MiB before they took units, and {@code --kv-cache-memory 512}
 * must not become 512 bytes), in SQL options too ({@code 'kv-cache-memory' = '512'}). Durations have no such
 * exception: a plain number is milliseconds, as in Flink, and {@code 0} is zero.
 */
public final class FlinkSyntax {
    private FlinkSyntax() {}

    /**
     * {@code value} as Flink's {@link MemorySize} ({@code 512mb}, {@code 4gb}, {@code 1 g}, {@code 64k}, ...);
     * a plain number is MiB. Zero or less is rejected: no budget is ever empty.
     */
    public static MemorySize memorySize(String value) {
        MemorySize size;
        try {
            size = OptionReaders.memorySize(value);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + value + "' is not a memory size such as 512mb, 4gb or 512"
                    + " (a plain number is MiB)");
        }
        if (size.getBytes() <= 0) {
            throw new IllegalArgumentException("'" + value + "' is not a memory size above zero");
        }
        return size;
    }

    /**
     * {@code value} as Flink's {@link TimeUtils#parseDuration}: {@code 500ms}, {@code 10s}, {@code 5 min},
     * {@code 1h}, {@code 1d}, ISO-8601 ({@code PT10S}); a plain number is milliseconds, so {@code 0} is zero.
     */
    public static Duration duration(String value) {
        try {
            return TimeUtils.parseDuration(value.trim());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + value + "' is not a duration such as 500ms, 10s, 5min, 1h"
                    + " or PT10S (a plain number is milliseconds)");
        }
    }

    /** picocli's converter of {@link #memorySize}. */
    public static final class MemorySizeConverter implements CommandLine.ITypeConverter<MemorySize> {
        @Override
        public MemorySize convert(String value) {
            try {
                return memorySize(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** picocli's converter of {@link #duration}. */
    public static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            try {
                return duration(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
