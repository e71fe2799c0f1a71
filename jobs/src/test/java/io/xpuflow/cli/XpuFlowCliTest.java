package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.Fixtures.GoldenPrompt;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line end to end: goldens through {@code score} and {@code generate}, and its failures. */
class XpuFlowCliTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    private static String ids(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    @Test
    void generateJsonPrintsTheGoldenGreedyTokens() throws Exception {
        GoldenPrompt p = Fixtures.golden("tiny-mimo-v2").get(1);
        int code = run("generate", "--model", Fixtures.model("tiny-mimo-v2").toString(), "--prompt-ids", ids(p.ids()),
                "--max-tokens", String.valueOf(p.greedy().length), "--temperature", "0", "--ignore-eos", "--json");
        assertThat(code).as(err.toString()).isZero();
        JsonNode json = new ObjectMapper().readTree(out.toString());
        int[] got = new ObjectMapper().convertValue(json.get("token_ids"), int[].class);
        assertThat(got).containsExactly(p.greedy());
        assertThat(json.get("finish_reason").asText()).isEqualTo("length");
        assertThat(json.at("/usage/completion_tokens").asInt()).isEqualTo(p.greedy().length);
        // no speculative decoding here: the counters are present and zero
        assertThat(json.at("/usage/draft_tokens").isInt()).isTrue();
        assertThat(json.at("/usage/draft_tokens").asInt()).isZero();
        assertThat(json.at("/usage/accepted_tokens").asInt()).isZero();
    }

    @Test
    void scoreWritesLogitsAndMtpLogitsMatchingTheReference(@TempDir Path tmp) {
        GoldenPrompt p = Fixtures.golden("tiny-mimo-v2-fp8").get(2);
        Path file = tmp.resolve("scores.safetensors");
        // the reference numerics: an FP8 checkpoint would run in the BF16 format by default (auto)
        int code = run("score", "--model", Fixtures.model("tiny-mimo-v2-fp8").toString(), "--prompt-ids", ids(p.ids()),
                "--out", file.toString(), "--mtp", "--weight-format", "exact");
        assertThat(code).as(err.toString()).isZero();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.require("logits").shape()).containsExactly(p.ids().length, 512);
            assertThat(f.require("mtp_logits").shape()).containsExactly(p.ids().length - 1, 512);
            assertWithin(f.readFloats("logits"), p.logits(), 1e-3);
            assertWithin(f.readFloats("mtp_logits"), p.mtpLogits(), 1e-3);
            assertThat(f.find("mtp1_logits")).as("one MTP layer: no chained logits").isEmpty();
        }
    }

    @Test
    void scoreWritesChainedMtp1LogitsForTwoMtpLayers(@TempDir Path tmp) {
        GoldenPrompt p = Fixtures.golden("stories260k-mtp").get(2);
        Path file = tmp.resolve("scores.safetensors");
        int code = run("score", "--model", Fixtures.model("stories260k-mtp").toString(), "--prompt-ids", ids(p.ids()),
                "--out", file.toString(), "--mtp", "--weight-format", "exact");
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString()).contains("mtp1_logits [" + (p.ids().length - 2) + ", 512]");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.require("mtp1_logits").shape()).containsExactly(p.ids().length - 2, 512);
            assertWithin(f.readFloats("mtp_logits"), p.mtpLogits(), 1e-3);
            assertWithin(f.readFloats("mtp1_logits"), p.mtp1Logits(), 1e-3);
        }
    }

    @Test
    void failuresExitNonZeroWithOneLineAndNoStackTrace() {
        assertThat(run("generate", "--model", "/no/such/model", "--prompt-ids", "1")).isEqualTo(1);
        assertThat(err.toString()).startsWith("xpuflow: ").contains("config.json").doesNotContain("\tat ");
        assertThat(err.toString().strip().lines()).hasSize(1);

        err.getBuffer().setLength(0);
        assertThat(run("generate", "--model", Fixtures.model("stories260k").toString(), "--prompt-ids", "1,600")).isEqualTo(1);
        assertThat(err.toString()).contains("token 600").contains("vocabulary of 512").doesNotContain("\tat ");

        err.getBuffer().setLength(0);
        assertThat(run("generate", "--model", Fixtures.model("stories260k").toString(), "--prompt-ids", "1,two")).isEqualTo(2);
        assertThat(err.toString()).contains("'two'");

        err.getBuffer().setLength(0);
        assertThat(run("score", "--model", Fixtures.model("stories260k").toString(), "--prompt-ids", "1", "--out",
                "/tmp/x.safetensors", "--mtp")).isEqualTo(1);
        assertThat(err.toString()).contains("no MTP layer");

        err.getBuffer().setLength(0);
        assertThat(run("frobnicate")).isEqualTo(2);
    }

    @Test
    void typosGetPicocliSuggestions() {
        assertThat(run("genrate", "--model", "x")).isEqualTo(2);
        assertThat(err.toString()).contains("'genrate'").contains("Did you mean: xpuflow generate")
                .contains("Try 'xpuflow --help'");

        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", Fixtures.model("stories260k").toString(), "--prompt-ids", "1", "--max-token", "3"))
                .isEqualTo(2);
        assertThat(err.toString()).contains("--max-token").contains("--max-tokens").contains("Try 'xpuflow generate --help'");
    }

    @Test
    void everySubcommandHasHelp() {
        for (String command : new String[] {"score", "generate", "tokenize"}) {
            out.getBuffer().setLength(0);
            assertThat(run(command, "--help")).isZero();
            assertThat(out.toString()).startsWith("Usage: xpuflow " + command + " ").contains("--model=DIR");
        }
        for (String command : new String[] {"bench", "bench throughput", "bench latency", "init-random"}) {
            out.getBuffer().setLength(0);
            String[] args = (command + " --help").split(" ");
            assertThat(run(args)).as(err.toString()).isZero();
            assertThat(out.toString()).startsWith("Usage: xpuflow " + command + " ");
        }
    }

    @Test
    void verboseAddsTheStackTrace() {
        assertThat(run("generate", "--verbose", "--model", "/no/such/model", "--prompt-ids", "1")).isEqualTo(1);
        assertThat(err.toString()).contains("\tat ");
    }

    private static void assertWithin(float[] got, float[] want, double tol) {
        assertThat(got).hasSameSizeAs(want);
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            worst = Math.max(worst, Math.abs(got[i] - want[i]));
        }
        assertThat(worst).isLessThanOrEqualTo(tol);
    }
}
