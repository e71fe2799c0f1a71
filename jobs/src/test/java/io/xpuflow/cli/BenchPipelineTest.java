package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bench pipeline}: the same workload into the engine and through embedded Kafka and a local Flink job. */
class BenchPipelineTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private JsonNode bench(String model, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("bench", "pipeline", "--model", model, "--num-prompts", "8",
                "--input-len", "16", "--output-len", "8", "--threads", "1", "--checkpoint-interval-ms", "200"));
        args.addAll(List.of(more));
        int code = XpuFlowCli.execute(args.toArray(String[]::new), new PrintWriter(out, true), new PrintWriter(err, true));
        assertThat(code).as(err.toString()).isZero();
        String[] all = out.toString().strip().split("\\R");
        assertThat(all).hasSize(6);
        assertThat(all[0]).startsWith("Model: ");
        String[] lines = Arrays.copyOfRange(all, 1, all.length);
        assertThat(lines[0]).matches("Engine:   Throughput: [0-9.]+ requests/s, [0-9.]+ total tokens/s, [0-9.]+ output tokens/s");
        assertThat(lines[1]).matches("Pipeline: Throughput: [0-9.]+ requests/s, [0-9.]+ total tokens/s, [0-9.]+ output tokens/s");
        assertThat(lines[2]).matches("Pipeline: [0-9.]+ s = [0-9.]+ s with requests in the engine \\+ -?[0-9.]+ s until the last"
                + " checkpoint committed");
        assertThat(lines[3]).matches("Pipeline / engine output tokens/s: [0-9.]+ end to end, [0-9.]+ while the engine had requests");
        JsonNode json = new ObjectMapper().readTree(lines[4]);
        assertThat(json.at("/engine/num_requests").asInt()).isEqualTo(8);
        assertThat(json.at("/pipeline/num_requests").asInt()).isEqualTo(8);
        assertThat(json.get("ratio").asDouble()).isPositive();
        assertThat(json.get("busy_ratio").asDouble()).isPositive();
        assertThat(json.at("/pipeline/engine_busy_time").asDouble()).isPositive()
                .isLessThanOrEqualTo(json.at("/pipeline/elapsed_time").asDouble());
        return json;
    }

    @Test
    void textPromptsThroughKafkaAndFlink() throws Exception {
        JsonNode json = bench(Fixtures.model("stories260k").toString(), "--weight-format", "bf16");
        assertThat(out.toString()).startsWith("Model: bf16 weights, ").contains("(F32 checkpoint), KV cache bf16, loaded in ");
        assertThat(json.get("weight_format").asText()).isEqualTo("bf16");
        assertThat(json.get("kv_cache_dtype").asText()).isEqualTo("bf16");
        // text prompts may re-tokenize to other lengths, the generated 8 tokens each do not vary
        assertThat(json.at("/pipeline/total_num_tokens").asLong()).isGreaterThan(8 * 8);
    }

    @Test
    void aModelWithoutTokenizerGetsTokenIdPrompts(@TempDir Path dir) throws Exception {
        assertThat(XpuFlowCli.execute(new String[] {"init-random", "--preset", "mimo-v2-tiny", "--out", dir.toString()},
                new PrintWriter(out, true), new PrintWriter(err, true))).as(err.toString()).isZero();
        out.getBuffer().setLength(0);
        JsonNode json = bench(dir.toString());
        assertThat(json.at("/engine/total_num_tokens").asLong()).isEqualTo(8 * (16 + 8));
        assertThat(json.at("/pipeline/total_num_tokens").asLong()).isEqualTo(8 * (16 + 8));
        // auto: a BF16 checkpoint runs in the BF16 format
        assertThat(json.get("weight_format").asText()).isEqualTo("bf16");
        assertThat(json.get("weight_bytes").asLong()).isPositive();
    }
}
