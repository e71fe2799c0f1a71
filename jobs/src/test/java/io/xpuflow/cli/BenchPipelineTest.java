package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
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
        assertThat(all).hasSize(15);
        assertThat(all[0]).startsWith("Model: ");
        assertThat(all[1]).startsWith("Model dir: " + model + " (");
        // the pipeline's operator always caches prefixes
        assertThat(all[2]).startsWith("Engine options: ").endsWith(", prefix caching on");
        assertThat(all[3]).isEqualTo("Workload: 8 prompts, 16 input tokens, 8 output tokens, seed 0");
        for (int i = 0; i < 2; i++) {
            String side = i == 0 ? "Engine:   " : "Pipeline: ";
            assertThat(all[4 + 4 * i]).matches(side + "Throughput: [0-9.]+ requests/s, [0-9.]+ total tokens/s, [0-9.]+ output tokens/s");
            // the pipeline's timings are the engine's, from each request's submission to the engine
            assertThat(all[5 + 4 * i]).matches(side + ServingCliTest.percentileLine("TTFT", 8));
            assertThat(all[6 + 4 * i]).matches(side + ServingCliTest.percentileLine("TPOT", 8));
            assertThat(all[7 + 4 * i]).matches(side + ServingCliTest.percentileLine("E2E", 8));
        }
        assertThat(all[12]).matches("Pipeline: [0-9.]+ s = [0-9.]+ s with requests in the engine \\+ -?[0-9.]+ s until the last"
                + " checkpoint committed");
        assertThat(all[13]).matches("Pipeline / engine output tokens/s: [0-9.]+ end to end, [0-9.]+ while the engine had requests");
        JsonNode json = new ObjectMapper().readTree(all[14]);
        assertThat(json.at("/engine/num_requests").asInt()).isEqualTo(8);
        assertThat(json.at("/pipeline/num_requests").asInt()).isEqualTo(8);
        assertThat(json.get("ratio").asDouble()).isPositive();
        assertThat(json.get("busy_ratio").asDouble()).isPositive();
        assertThat(json.at("/pipeline/engine_busy_time").asDouble()).isPositive()
                .isLessThanOrEqualTo(json.at("/pipeline/elapsed_time").asDouble());
        ServingCliTest.assertOrderedPercentiles(json.get("engine"), "ttft", "tpot", "e2el");
        ServingCliTest.assertOrderedPercentiles(json.get("pipeline"), "ttft", "tpot", "e2el");
        return json;
    }

    @Test
    void textPromptsThroughKafkaAndFlink(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("pipeline.json");
        JsonNode json = bench(Fixtures.model("stories260k").toString(), "--weight-format", "bf16", "--output-json",
                file.toString());
        JsonNode doc = new ObjectMapper().readTree(file.toFile());
        assertThat(doc.at("/header/benchmark").asText()).isEqualTo("pipeline");
        assertThat(doc.at("/header/weight_format").asText()).isEqualTo("bf16");
        assertThat(doc.get("results")).isEqualTo(json);
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
