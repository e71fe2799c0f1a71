package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.cli.CliLogging.Verbosity;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --verbose}: what it asks of the log backend, and what a JVM set up that way prints. */
class CliLoggingTest {

    @Test
    void theRawArgumentsGiveTheVerbosity() {
        assertThat(CliLogging.verbosity(new String[] {"generate", "--model", "m"})).isEqualTo(Verbosity.QUIET);
        assertThat(CliLogging.verbosity(new String[] {"generate", "--verbose"})).isEqualTo(Verbosity.ON);
        assertThat(CliLogging.verbosity(new String[] {"generate", "--verbose=debug"})).isEqualTo(Verbosity.DEBUG);
        assertThat(CliLogging.verbosity(new String[] {"bench", "--verbose=ALL", "pipeline"})).isEqualTo(Verbosity.ALL);
        assertThat(CliLogging.verbosity(new String[] {"generate", "--", "--verbose"})).isEqualTo(Verbosity.QUIET);
    }

    @Test
    void oursAndTheRestGetTheirLevelsAndEveryLineATimestamp() {
        String ours = CliLogging.PREFIX + "log.io.xpuflow";
        String rest = CliLogging.PREFIX + "defaultLogLevel";
        assertThat(CliLogging.properties(Verbosity.QUIET, false)).containsEntry(rest, "warn").containsEntry(ours, "warn");
        assertThat(CliLogging.properties(Verbosity.QUIET, true)).containsEntry(rest, "error").containsEntry(ours, "error");
        assertThat(CliLogging.properties(Verbosity.ON, true)).containsEntry(rest, "warn").containsEntry(ours, "info");
        assertThat(CliLogging.properties(Verbosity.DEBUG, false)).containsEntry(rest, "warn").containsEntry(ours, "debug");
        assertThat(CliLogging.properties(Verbosity.ALL, false)).containsEntry(rest, "info").containsEntry(ours, "debug");
        for (Verbosity v : Verbosity.values()) {
            assertThat(CliLogging.properties(v, false)).containsEntry(CliLogging.PREFIX + "showDateTime", "true")
                    .containsEntry(CliLogging.PREFIX + "logFile", "System.err");
        }
    }

    @Test
    void picocliReadsTheOptionAsTheRawScanDoes() {
        CommandLine cli = new CommandLine(new XpuFlowCli());
        CommandLine.ParseResult bare = cli.parseArgs("generate", "--verbose", "--model", "m", "--prompt-ids", "1");
        assertThat(bare.subcommand().matchedOptionValue("--verbose", Verbosity.QUIET)).isEqualTo(Verbosity.ON);
        cli = new CommandLine(new XpuFlowCli());
        CommandLine.ParseResult all = cli.parseArgs("generate", "--model", "m", "--prompt-ids", "1", "--verbose=all");
        assertThat(all.subcommand().matchedOptionValue("--verbose", Verbosity.QUIET)).isEqualTo(Verbosity.ALL);

        StringWriter err = new StringWriter();
        int code = XpuFlowCli.execute(new String[] {"generate", "--model", "m", "--prompt-ids", "1", "--verbose=loud"},
                new PrintWriter(new StringWriter(), true), new PrintWriter(err, true));
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("'loud' is not a verbosity");
        // a bare --verbose never takes the next argument as its level
        err.getBuffer().setLength(0);
        code = XpuFlowCli.execute(new String[] {"generate", "--model", "m", "--prompt-ids", "1", "--verbose", "all"},
                new PrintWriter(new StringWriter(), true), new PrintWriter(err, true));
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("Unmatched argument").contains("'all'");
    }

    /** The backend reads its settings once per JVM: each case runs the probe in a fresh one. */
    private static List<String> probe(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), CliLoggingProbe.class.getName()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
        return output.lines().filter(l -> l.contains(" at ")).toList();
    }

    private static final String STAMP = "^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3} \\[main\\] ";

    @Test
    void aJvmSetUpForEachVerbosityPrintsWhatItPromises() throws Exception {
        assertThat(probe("generate")).map(CliLoggingTest::message)
                .containsExactly("ours at warn", "theirs at warn", "theirs at error");
        assertThat(probe("demo")).map(CliLoggingTest::message).containsExactly("theirs at error");
        assertThat(probe("produce")).map(CliLoggingTest::message).containsExactly("theirs at error");
        assertThat(probe("generate", "--verbose")).map(CliLoggingTest::message)
                .containsExactly("ours at info", "ours at warn", "theirs at warn", "theirs at error");
        assertThat(probe("demo", "--verbose=debug")).map(CliLoggingTest::message)
                .containsExactly("ours at debug", "ours at info", "ours at warn", "theirs at warn", "theirs at error");
        List<String> all = probe("demo", "--verbose=all");
        assertThat(all).map(CliLoggingTest::message).containsExactly("ours at debug", "ours at info", "ours at warn",
                "theirs at info", "theirs at warn", "theirs at error");
        assertThat(all).allSatisfy(l -> assertThat(l).containsPattern(STAMP));
        assertThat(all.get(1)).containsPattern(STAMP + "INFO ");
    }

    private static String message(String line) {
        return line.substring(line.lastIndexOf(" - ") + 3);
    }
}
