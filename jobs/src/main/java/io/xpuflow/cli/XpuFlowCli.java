package io.xpuflow.cli;

import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code xpuflow}: try a model, check its numerics, measure it. Every failure exits non-zero with one
 * line on stderr; {@code --verbose} adds the stack trace and logging (see {@link CliLogging}).
 */
@Command(
        name = "xpuflow",
        mixinStandardHelpOptions = true,
        version = "xpuflow 0.1.0",
        description = "LLM inference for Apache Flink: command-line tools.",
        subcommands = {ScoreCommand.class, GenerateCommand.class, BenchCommand.class, ProfileCommand.class,
                CompareCommand.class, DemoCommand.class, ProduceCommand.class, InitRandomCommand.class, TokenizeCommand.class})
public final class XpuFlowCli implements Runnable {

    /** Options every subcommand takes. */
    static class Basic {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
        boolean help;

        @Option(names = "--verbose", arity = "0..1", paramLabel = "LEVEL",
                converter = CliLogging.VerbosityConverter.class, preprocessor = CliLogging.AttachedLevelOnly.class,
                description = "Print stack traces on failure and log: xpuflow's progress at INFO, the rest at WARN;"
                        + " =debug: xpuflow's at DEBUG; =all: xpuflow's at DEBUG and Flink's and Kafka's at INFO.")
        CliLogging.Verbosity verbose = CliLogging.Verbosity.QUIET;
    }

    /** Options of the subcommands that run a model. */
    static final class Common extends Basic {
        @Option(names = "--threads", paramLabel = "N", description = "Kernel threads (default: all cores).")
        int threads;
    }

    /** Standard input, read by {@code generate --prompt -}. */
    InputStream in = InputStream.nullInputStream();

    /** Whether stdout is a terminal that shows UTF-8: {@code tokenize} prints readable text there. */
    boolean utf8Terminal;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a subcommand is required");
    }

    public static void main(String[] args) {
        // the JVM cannot tell whether stdout alone is a terminal (System.console() also looks at stdin, and
        // its meaning changed in JDK 22): bin/xpuflow tests it and says so in this property
        boolean utf8Terminal = Boolean.getBoolean("xpuflow.stdout.terminal")
                && Charset.defaultCharset().equals(StandardCharsets.UTF_8);
        System.exit(execute(args, System.in, new PrintWriter(System.out, true), new PrintWriter(System.err, true),
                utf8Terminal));
    }

    /**
     * Runs the command line with stdin and stdout as a pipe or file would be (no terminal); returns the
     * exit code (0 ok, 1 failure, 2 usage error).
     */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        return execute(args, System.in, out, err, false);
    }

    /**
     * Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage error).
     *
     * @param in what {@code generate --prompt -} reads
     * @param utf8Terminal whether {@code out} is a terminal that shows UTF-8 ({@code tokenize} escapes
     *     non-ASCII characters everywhere else)
     */
    static int execute(String[] args, InputStream in, PrintWriter out, PrintWriter err, boolean utf8Terminal) {
        CliLogging.configure(args); // before anything makes a logger
        boolean verbose = CliLogging.verbosity(args).verbose();
        XpuFlowCli root = new XpuFlowCli();
        root.in = in;
        root.utf8Terminal = utf8Terminal;
        CommandLine cli = OptionFlags.install(new CommandLine(root));
        InitRandomCommand.describePresets(cli.getSubcommands().get("init-random"));
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (verbose) {
                e.printStackTrace(err);
            } else {
                err.println("xpuflow: " + oneLine(e));
            }
            err.flush();
            return 1;
        });
        cli.setParameterExceptionHandler((e, args2) -> {
            err.println("xpuflow: " + e.getMessage());
            // what picocli's own handler would add for a mistyped subcommand or option: "Did you mean: ..."
            CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
            err.println("Try '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help' for more information.");
            err.flush();
            return 2;
        });
        return cli.execute(args);
    }

    /** The innermost useful message of an exception, on one line. */
    static String oneLine(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && (t.getMessage() == null || t instanceof java.io.UncheckedIOException)) {
            t = t.getCause();
        }
        String msg = t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName();
        return msg.replaceAll("\\s*\\R\\s*", " ");
    }
}
