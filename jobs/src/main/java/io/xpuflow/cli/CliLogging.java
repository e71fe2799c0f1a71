package io.xpuflow.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Stack;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The one place where the command line sets up logging. Its backend is slf4j-simple, which reads its
 * settings from system properties once, when the first logger is made, so {@link #configure} runs on the
 * raw arguments before picocli (or anything that logs) does; the {@code --verbose} option that picocli
 * parses afterwards only documents and checks the same values.
 *
 * <ul>
 *   <li>no {@code --verbose}: warnings and errors (errors only for {@code demo} and {@code bench pipeline},
 *       whose Flink and Kafka warn about harmless things, and {@code produce}, whose Kafka client warns on
 *       every retry to reach a broker that is down, while the command's own error says so once);</li>
 *   <li>{@code --verbose}: our loggers ({@code io.xpuflow}) at INFO, everything else at WARN;</li>
 *   <li>{@code --verbose=debug}: ours at DEBUG, everything else at WARN;</li>
 *   <li>{@code --verbose=all}: ours at DEBUG, everything else (Flink, Kafka) at INFO.</li>
 * </ul>
 * Every line carries a timestamp, the thread and the logger.
 */
final class CliLogging {
    static final String PREFIX = "org.slf4j.simpleLogger.";
    static final String OUR_LOGGERS = "io.xpuflow";

    /** How much {@code --verbose} asks for. */
    enum Verbosity {
        QUIET, ON, DEBUG, ALL;

        /** {@code --verbose} (as picocli parses it): true for every level above quiet. */
        boolean verbose() {
            return this != QUIET;
        }
    }

    private CliLogging() {}

    /** Sets the backend up for {@code args}: call before the first logger is made. */
    static void configure(String[] args) {
        properties(verbosity(args), runsFlink(args)).forEach(System::setProperty);
    }

    /**
     * The verbosity the raw arguments ask for: the last {@code --verbose} or {@code --verbose=LEVEL} wins; a
     * value picocli will refuse counts as {@code --verbose} here (the command then ends with a usage error).
     */
    static Verbosity verbosity(String[] args) {
        Verbosity v = Verbosity.QUIET;
        for (String a : args) {
            if (a.equals("--")) {
                break;
            }
            if (a.equals("--verbose")) {
                v = Verbosity.ON;
            } else if (a.startsWith("--verbose=")) {
                v = parse(a.substring("--verbose=".length()));
            }
        }
        return v;
    }

    private static Verbosity parse(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "debug" -> Verbosity.DEBUG;
            case "all" -> Verbosity.ALL;
            default -> Verbosity.ON;
        };
    }

    private static boolean runsFlink(String[] args) {
        List<String> list = List.of(args);
        return list.contains("demo") || list.contains("pipeline") || list.contains("produce");
    }

    /** The slf4j-simple system properties for a verbosity. */
    static Map<String, String> properties(Verbosity v, boolean runsFlink) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put(PREFIX + "logFile", "System.err");
        p.put(PREFIX + "showDateTime", "true");
        p.put(PREFIX + "dateTimeFormat", "yyyy-MM-dd HH:mm:ss.SSS");
        p.put(PREFIX + "showThreadName", "true");
        String rest = switch (v) {
            case QUIET -> runsFlink ? "error" : "warn";
            case ON, DEBUG -> "warn";
            case ALL -> "info";
        };
        String ours = switch (v) {
            case QUIET -> rest;
            case ON -> "info";
            case DEBUG, ALL -> "debug";
        };
        p.put(PREFIX + "defaultLogLevel", rest);
        p.put(PREFIX + "log." + OUR_LOGGERS, ours);
        return p;
    }

    /** picocli's converter of {@code --verbose=LEVEL}. */
    static final class VerbosityConverter implements CommandLine.ITypeConverter<Verbosity> {
        @Override
        public Verbosity convert(String value) {
            return switch (value.toLowerCase(Locale.ROOT)) {
                case "on" -> Verbosity.ON;
                case "debug" -> Verbosity.DEBUG;
                case "all" -> Verbosity.ALL;
                default -> throw new CommandLine.TypeConversionException("'" + value
                        + "' is not a verbosity: --verbose, --verbose=debug or --verbose=all");
            };
        }
    }

    /**
     * Takes a level only when attached ({@code --verbose=all}): a bare {@code --verbose} never swallows the
     * next argument, and picocli agrees with {@link #verbosity}, which reads the raw arguments the same way.
     */
    static final class AttachedLevelOnly implements CommandLine.IParameterPreprocessor {
        @Override
        public boolean preprocess(Stack<String> args, CommandSpec commandSpec, ArgSpec argSpec, Map<String, Object> info) {
            if (" ".equals(info.get("separator"))) {
                args.push("on");
            }
            return false;
        }
    }
}
