package io.xpuflow.cli;

import java.io.PrintWriter;
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
                CompareCommand.class, DemoCommand.class, InitRandomCommand.class, TokenizeCommand.class})
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

    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a subcommand is required");
    }

    public static void main(String[] args) {
        System.exit(execute(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage error). */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        CliLogging.configure(args); // before anything makes a logger
        boolean verbose = CliLogging.verbosity(args).verbose();
        CommandLine cli = new CommandLine(new XpuFlowCli());
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
