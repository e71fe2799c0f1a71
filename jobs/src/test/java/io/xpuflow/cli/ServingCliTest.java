package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** {@code generate} with text prompts and sampling, and the {@code bench} commands, on stories260k. */
class ServingCliTest {
    private static final String STORIES = Fixtures.model("stories260k").toString();
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    @Test
    void generateStreamsTheGreedyStoryFromBos() throws Exception {
        String golden = Files.readString(Fixtures.model("stories260k").resolve("greedy-from-bos-256.txt"), StandardCharsets.UTF_8);
        assertThat(run("generate", "--model", STORIES, "--prompt-ids", "1", "--max-tokens", "256", "--ignore-eos",
                "--stream", "--threads", "1")).as(err.toString()).isZero();
        assertThat(out.toString()).isEqualTo(golden + System.lineSeparator());
    }

    @Test
    void generateTextPromptWithSeededSamplingIsReproducibleAndJson() throws Exception {
        String[] args = {"generate", "--model", STORIES, "--prompt", "Lily", "--max-tokens", "20", "--temperature", "0.8",
                "--top-p", "0.9", "--top-k", "40", "--seed", "7", "--json", "--threads", "1"};
        assertThat(run(args)).as(err.toString()).isZero();
        JsonNode first = new ObjectMapper().readTree(out.toString());
        out.getBuffer().setLength(0);
        assertThat(run(args)).isZero();
        JsonNode second = new ObjectMapper().readTree(out.toString());
        assertThat(first.get("text").asText()).isNotEmpty().isEqualTo(second.get("text").asText());
        assertThat(first.get("token_ids")).hasSize(20).isEqualTo(second.get("token_ids"));
        assertThat(first.at("/usage/prompt_tokens").asInt()).isEqualTo(2); // BOS + "Lily"
    }

    @Test
    void badSamplingFlagsAreUsageErrors() {
        assertThat(run("generate", "--model", STORIES, "--prompt", "x", "--top-p", "1.5")).isEqualTo(2);
        assertThat(err.toString()).contains("top_p");
        err.getBuffer().setLength(0);
        assertThat(run("generate", "--model", STORIES, "--prompt", "x", "--prompt-ids", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("mutually exclusive");
    }

    @Test
    void benchThroughputPrintsTheSummaryLineAndJson() throws Exception {
        assertThat(run("bench", "throughput", "--model", STORIES, "--num-prompts", "8", "--input-len", "16",
                "--output-len", "8", "--threads", "1")).as(err.toString()).isZero();
        String[] lines = out.toString().strip().split("\\R");
        assertThat(lines).hasSize(3);
        // auto on an F32 checkpoint: the exact mode; load time and resident weights are reported, not timed
        assertThat(lines[0]).matches("Model: exact weights, [0-9.]+ MiB resident \\(F32 checkpoint\\), KV cache f32,"
                + " loaded in [0-9.]+ s");
        assertThat(lines[1]).matches("Throughput: [0-9.]+ requests/s, [0-9.]+ total tokens/s, [0-9.]+ output tokens/s");
        JsonNode json = new ObjectMapper().readTree(lines[2]);
        assertThat(json.get("weight_format").asText()).isEqualTo("exact");
        assertThat(json.get("kv_cache_dtype").asText()).isEqualTo("f32");
        assertThat(json.get("weight_bytes").asLong()).isPositive();
        assertThat(json.get("load_time").asDouble()).isPositive();
        assertThat(json.get("num_requests").asInt()).isEqualTo(8);
        assertThat(json.get("total_num_tokens").asLong()).isEqualTo(8 * (16 + 8));
        assertThat(json.get("output_tokens_per_second").asDouble()).isPositive();
    }

    @Test
    void benchLatencyPrintsPrefillAndDecodeSpeeds() throws Exception {
        assertThat(run("bench", "latency", "--model", STORIES, "--input-len", "32", "--output-len", "8",
                "--num-iters", "2", "--threads", "1", "--weight-format", "bf16", "--kv-cache-dtype", "f32"))
                .as(err.toString()).isZero();
        assertThat(out.toString()).startsWith("Model: bf16 weights, ").contains("KV cache f32").containsPattern("Prefill: [0-9.]+ tokens/s").containsPattern("Decode: [0-9.]+ tokens/s");
        String json = out.toString().strip().lines().reduce((a, b) -> b).orElseThrow();
        assertThat(new ObjectMapper().readTree(json).get("decode_tokens_per_second").asDouble()).isPositive();
        assertThat(new ObjectMapper().readTree(json).get("weight_format").asText()).isEqualTo("bf16");
    }
}
