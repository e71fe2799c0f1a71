package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.testutil.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The README's main command end to end: embedded Kafka, a local Flink job with its web UI, completions
 * printed as they are committed; and {@code --keep-running} serving a prompt sent with {@code xpuflow produce}.
 */
class DemoCommandTest {
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

    @Test
    void keepRunningServesOwnPromptsWithTheWebUiUpUntilStopped() throws Exception {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CompletableFuture<Integer> demo = CompletableFuture.supplyAsync(() -> XpuFlowCli.execute(new String[] {"demo",
                "--model", Fixtures.model("stories260k").toString(), "--max-tokens", "12", "--threads", "1",
                "--checkpoint-interval", "500ms", "--keep-running"}, new PrintWriter(out, true), new PrintWriter(err, true)));
        try {
            String bootstrap = await(out, err, demo, Pattern.compile("Still running \\(--keep-running\\) until Ctrl-C: broker (\\S+),"));
            String text = out.toString();
            assertPhasesInOrder(text);
            assertThat(text).contains("produce --bootstrap " + bootstrap + " --topic prompts --id my-1 --prompt")
                    .contains("kafka-console-producer.sh --bootstrap-server " + bootstrap + " --topic prompts")
                    .contains("--topic completions --isolation-level read_committed");

            // Flink's REST API and web UI answer on loopback while the job runs
            String web = match(text, Pattern.compile("Flink web UI: (http://127\\.0\\.0\\.1:[0-9]+/)"));
            String job = match(text, Pattern.compile("Job running: ([0-9a-f]{32})"));
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            HttpResponse<String> jobs = http.send(HttpRequest.newBuilder(URI.create(web + "jobs/overview")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(jobs.statusCode()).isEqualTo(200);
            assertThat(jobs.body()).contains("\"jid\":\"" + job + "\"").contains("\"state\":\"RUNNING\"");
            HttpResponse<String> ui = http.send(HttpRequest.newBuilder(URI.create(web)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(ui.statusCode()).isEqualTo(200);
            assertThat(ui.body()).containsIgnoringCase("<html");
            HttpResponse<String> jars = http.send(HttpRequest.newBuilder(URI.create(web + "jars")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(jars.statusCode()).as("jar upload is off").isNotEqualTo(200);

            // a prompt of one's own, sent as the demo says, is answered and printed by the running demo
            StringWriter produced = new StringWriter();
            int sent = XpuFlowCli.execute(new String[] {"produce", "--bootstrap", bootstrap, "--topic", "prompts",
                    "--id", "my-1", "--prompt", "Once upon a time", "--max-tokens", "5"},
                    new PrintWriter(produced, true), new PrintWriter(err, true));
            assertThat(sent).as(err.toString()).isZero();
            assertThat(produced.toString()).startsWith("Sent my-1 to prompts (partition 0, offset 7): "
                    + "{\"id\":\"my-1\",\"prompt\":\"Once upon a time\",\"max_tokens\":5}");
            await(out, err, demo, Pattern.compile("\\] < my-1 \\[length, 5 tokens, [0-9]+ ms\\]: (\\S.*)"));
        } finally {
            DemoCommand.stopAll();
        }
        assertThat(demo.get(60, TimeUnit.SECONDS)).as(err + "\n" + out).isZero();
        assertThat(out.toString()).contains("Stopping: cancelling the job")
                .containsPattern("Stopped: job cancelled, Flink and the broker closed\\s*$");
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
    private static String await(StringWriter out, StringWriter err, CompletableFuture<Integer> demo, Pattern p)
            throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            Matcher m = p.matcher(out.toString());
            if (m.find()) {
                return m.group(1);
            }
            assertThat(demo).as("the demo ended early: %s%n%s", err, out).isNotDone();
            Thread.sleep(50);
        }
        throw new AssertionError("no line matching " + p + " within 60 s:\n" + out + "\n" + err);
    }

    private static String match(String text, Pattern p) {
        Matcher m = p.matcher(text);
        assertThat(m.find()).as("%s in%n%s", p, text).isTrue();
        return m.group(1);
    }
}
