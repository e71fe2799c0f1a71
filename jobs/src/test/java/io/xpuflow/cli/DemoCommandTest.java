package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's main command end to end: embedded Kafka, a local Flink job with its web UI, completions
 * printed as they are committed; and {@code --keep-running} in its own JVM serving a prompt sent with
 * {@code xpuflow produce} until SIGTERM.
 */
class DemoCommandTest {
    @TempDir
    Path tmp;

    private static final String[] PHASES = {"Starting an embedded Kafka broker", "Broker ready at ",
        "Model loaded: stories260k (LlamaForCausalLM), exact weights", "Flink web UI: http://127.0.0.1:", "Job running: ",
        "Waiting for the first exactly-once commit", "First exactly-once commit", "Done: 7 of 7 records answered"};

    @Test
    void demoNarratesEachPhaseAndStreamsCompletionsAsTheyCommit() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = XpuFlowCli.execute(new String[] {"demo", "--model", Fixtures.model("stories260k").toString(),
                "--max-tokens", "12", "--threads", "1", "--checkpoint-interval", "500ms"},
                new PrintWriter(out, true), new PrintWriter(err, true));
        String text = out.toString();
        assertThat(code).as(err + "\n" + text).isZero();
        assertPhasesInOrder(text);
        for (int i = 1; i <= 6; i++) {
            assertThat(text).containsPattern("\\] < story-" + i + " \\[length, 12 tokens, [0-9]+ ms\\]: \\S.*\\(\\+[0-9.]+ s\\)");
        }
        assertThat(text).contains("! broken: INVALID_JSON").contains("(6 completions")
                .contains("1 to the dead-letter topic");
        // streamed: the first completion is printed before the last prompt is even produced
        assertThat(text.indexOf("] < story-")).as(text).isPositive().isLessThan(text.indexOf("] > broken:"));
        assertThat(text).doesNotContain("Still running");
    }

    /**
     * {@code --keep-running} as a user runs it: its own JVM, a prompt sent with {@code xpuflow produce} as the
     * demo says, Flink's REST API and web UI answering meanwhile, then SIGTERM (what Ctrl-C's SIGINT does too).
     */
    @Test
    void keepRunningServesOwnPromptsWithTheWebUiUpUntilSigterm() throws Exception {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), XpuFlowCli.class.getName(), "demo",
                "--model", Fixtures.model("stories260k").toString(), "--max-tokens", "12", "--threads", "1",
                "--checkpoint-interval", "500ms", "--keep-running"));
        // to a file, read as it grows: a pipe would race with the JDK's draining of it when the process exits
        Path log = Files.createTempFile(tmp, "demo", ".out");
        Process demo = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        CharSequence out = new FileText(log);
        try {
            String bootstrap = await(out, demo, Pattern.compile("Still running \\(--keep-running\\) until Ctrl-C: broker (\\S+),"));
            // the instructions follow in several writes: read the text once their last line is there
            await(out, demo, Pattern.compile("(--isolation-level read_committed --from-beginning)"));
            String text = out.toString();
            assertPhasesInOrder(text);
            assertThat(text).contains("produce --bootstrap " + bootstrap + " --topic prompts --id my-1 --prompt")
                    .contains("kafka-console-producer.sh --bootstrap-server " + bootstrap + " --topic prompts")
                    .contains("--topic completions --isolation-level read_committed");

            // Flink's REST API and web UI answer on loopback while the job runs; jar upload is off
            String web = match(text, Pattern.compile("Flink web UI: (http://127\\.0\\.0\\.1:[0-9]+/)"));
            String job = match(text, Pattern.compile("Job running: ([0-9a-f]{32})"));
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            HttpResponse<String> jobs = get(http, web + "jobs/overview");
            assertThat(jobs.statusCode()).isEqualTo(200);
            assertThat(jobs.body()).contains("\"jid\":\"" + job + "\"").contains("\"state\":\"RUNNING\"");
            HttpResponse<String> ui = get(http, web);
            assertThat(ui.statusCode()).isEqualTo(200);
            assertThat(ui.body()).containsIgnoringCase("<html");
            assertThat(get(http, web + "jars").statusCode()).as("jar upload is off").isNotEqualTo(200);

            // a prompt of one's own, sent as the demo says, is answered and printed by the running demo
            StringWriter produced = new StringWriter();
            StringWriter err = new StringWriter();
            int sent = XpuFlowCli.execute(new String[] {"produce", "--bootstrap", bootstrap, "--topic", "prompts",
                    "--id", "my-1", "--prompt", "Once upon a time", "--max-tokens", "5"},
                    new PrintWriter(produced, true), new PrintWriter(err, true));
            assertThat(sent).as(err.toString()).isZero();
            assertThat(produced.toString()).startsWith("Sent my-1 to prompts (partition 0, offset 7): "
                    + "{\"id\":\"my-1\",\"prompt\":\"Once upon a time\",\"max_tokens\":5}");
            await(out, demo, Pattern.compile("\\] < my-1 \\[length, 5 tokens, [0-9]+ ms\\]: (\\S.*)"));

            demo.destroy(); // SIGTERM
            assertThat(demo.waitFor(60, TimeUnit.SECONDS)).as("stopped within 60 s:%n%s", out).isTrue();
            assertThat(demo.exitValue()).as(out.toString()).isZero();
            assertThat(out.toString()).contains("Stopping: cancelling the job")
                    .containsPattern("Stopped: job cancelled, Flink and the broker closed\\s*$")
                    .doesNotContain("ERROR").doesNotContain("FATAL").doesNotContain("Exception");
        } finally {
            demo.destroyForcibly();
        }
    }

    /** A file's text as it is at each toString(). */
    private record FileText(Path file) implements CharSequence {
        @Override
        public String toString() {
            try {
                return Files.readString(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        @Override
        public int length() {
            return toString().length();
        }

        @Override
        public char charAt(int index) {
            return toString().charAt(index);
        }

        @Override
        public CharSequence subSequence(int start, int end) {
            return toString().subSequence(start, end);
        }
    }

    private static HttpResponse<String> get(HttpClient http, String url) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static void assertPhasesInOrder(String text) {
        List<Integer> at = new ArrayList<>();
        for (String phase : PHASES) {
            at.add(text.indexOf(phase));
        }
        assertThat(at).as(text).doesNotContain(-1).isSorted();
        assertThat(text).containsPattern("(?m)^\\[ *[0-9]+\\.[0-9]s\\] Model loaded: .* (scalar|avx2|avx512\\w*) kernels, in [0-9]+ ms$");
    }

    /** Waits until the demo's output has a line matching {@code p}; its first group. */
    private static String await(CharSequence out, Process demo, Pattern p) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            Matcher m = p.matcher(out.toString());
            if (m.find()) {
                return m.group(1);
            }
            assertThat(demo.isAlive()).as("the demo ended early:%n%s", out).isTrue();
            Thread.sleep(50);
        }
        throw new AssertionError("no line matching " + p + " within 90 s:\n" + out);
    }

    private static String match(String text, Pattern p) {
        Matcher m = p.matcher(text);
        assertThat(m.find()).as("%s in%n%s", p, text).isTrue();
        return m.group(1);
    }
}
