package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code generate} with text prompts and sampling, and the {@code bench} commands, on stories260k. */
class ServingCliTest {
    private static final String STORIES = Fixtures.model("stories260k").toString();
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    private int runWithStdin(String stdin, String... args) {
        return XpuFlowCli.execute(args, new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
                new PrintWriter(out, true), new PrintWriter(err, true), false);
    }

    private JsonNode json() throws Exception {
        JsonNode node = new ObjectMapper().readTree(out.toString());
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        return node;
    }

    @Test
    void shortFlagsForModelPromptAndCounts() throws Exception {
        assertThat(run("generate", "-m", STORIES, "-p", "Lily", "-n", "3", "--ignore-eos", "--json", "--threads", "1"))
                .as(err.toString()).isZero();
        JsonNode generated = json();
        assertThat(generated.at("/usage/prompt_tokens").asInt()).isEqualTo(2);
        assertThat(generated.get("token_ids")).hasSize(3);

        assertThat(run("bench", "throughput", "-m", STORIES, "-n", "2", "--input-len", "4", "--output-len", "2",
                "--threads", "1")).as(err.toString()).isZero();
        String last = out.toString().strip().lines().reduce((a, b) -> b).orElseThrow();
        assertThat(new ObjectMapper().readTree(last).get("num_requests").asInt()).isEqualTo(2);
    }

    @Test
    void speculativeFlagsReachTheEngineAndBenchLatencyReportsTheDrafts() throws Exception {
        String mtp = Fixtures.model("stories260k-mtp").toString();
        assertThat(run("generate", "-m", mtp, "-p", "Once upon a time", "-n", "40", "--ignore-eos", "--json",
                "--threads", "1")).as(err.toString()).isZero();
        JsonNode plain = json();
        assertThat(run("generate", "-m", mtp, "-p", "Once upon a time", "-n", "40", "--ignore-eos", "--json",
                "--threads", "1", "--speculative-method", "mtp", "--num-speculative-tokens", "3",
                "--speculative-adaptive", "off")).as(err.toString()).isZero();
        JsonNode spec = json();
        assertThat(spec.get("token_ids")).isEqualTo(plain.get("token_ids"));
        assertThat(spec.at("/usage/draft_tokens").asInt()).isPositive();
        assertThat(spec.at("/usage/accepted_tokens").asInt()).isBetween(1, spec.at("/usage/draft_tokens").asInt());

        assertThat(run("bench", "latency", "-m", mtp, "--input-len", "8", "--output-len", "16", "--num-iters", "1",
                "--threads", "1", "--speculative-method", "ngram", "--num-speculative-tokens", "2"))
                .as(err.toString()).isZero();
        assertThat(out.toString()).containsPattern("Speculative \\(ngram, k 2 adaptive\\): [0-9]+ drafted, [0-9]+ accepted,"
                + " acceptance rate [0-9.]+%, mean accepted length [0-9.]+");
        out.getBuffer().setLength(0);

        // real text (--prompt): every request continues the same story, whose drafts the MTP layers predict well
        assertThat(run("bench", "latency", "-m", mtp, "--prompt", "Once upon a time", "--output-len", "48",
                "--num-iters", "1", "--threads", "1", "--speculative-method", "mtp", "--num-speculative-tokens", "2",
                "--speculative-adaptive", "off")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("Workload: 2 prompts of the --prompt text (5 tokens), 48 output tokens");
        java.util.regex.Matcher accepted = java.util.regex.Pattern.compile("Speculative \\(mtp, k 2\\): ([0-9]+) drafted,"
                + " ([0-9]+) accepted").matcher(out.toString());
        assertThat(accepted.find()).as(out.toString()).isTrue();
        // the fixture's layers accept most drafts on its own stories (over half here, random prompts far fewer)
        assertThat(Double.parseDouble(accepted.group(2))).isGreaterThan(0.5 * Double.parseDouble(accepted.group(1)));
        out.getBuffer().setLength(0);
        assertThat(run("bench", "latency", "-m", Fixtures.model("tiny-mimo-v2").toString(), "--prompt", "x",
                "--num-iters", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("--prompt needs a tokenizer");
        err.getBuffer().setLength(0);

        assertThat(run("generate", "-m", STORIES, "-p", "x", "--speculative-method", "mtp")).isNotZero();
        assertThat(err.toString()).contains("'speculative-method'").contains("no MTP layers");
        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", STORIES, "-p", "x", "--speculative-method", "eagle")).isNotZero();
        assertThat(err.toString()).contains("'--speculative-method' must be one of none, mtp, ngram, was eagle");
    }

    @Test
    void generatePrintsTheCompletionOnStdoutAndASummaryOnStderr() throws Exception {
        assertThat(run("generate", "-m", STORIES, "-p", "Lily", "-n", "5", "--ignore-eos", "--threads", "1"))
                .as(err.toString()).isZero();
        assertThat(out.toString().strip().lines()).hasSize(1);
        assertThat(out.toString()).doesNotContain("tokens");
        assertThat(err.toString().strip()).matches("Prompt 2 tokens, output 5 tokens, TTFT [0-9.]+ ms, decode [0-9.]+ tokens/s");

        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", STORIES, "-p", "Lily", "-n", "1", "--json", "--threads", "1")).isZero();
        assertThat(json().get("token_ids")).hasSize(1); // stdout: the JSON alone
        assertThat(run("generate", "-m", STORIES, "-p", "Lily", "-n", "1", "--threads", "1")).isZero();
        assertThat(err.toString().strip()).matches("Prompt 2 tokens, output 1 token, TTFT [0-9.]+ ms");
    }

    @Test
    void thePromptComesFromAFileOrStdinWithoutItsFinalLineBreak(@TempDir Path dir) throws Exception {
        String[] greedy = {"generate", "-m", STORIES, "-n", "8", "--json", "--threads", "1"};
        assertThat(run(concat(greedy, "-p", "Lily"))).as(err.toString()).isZero();
        JsonNode want = json();

        Path file = dir.resolve("prompt.txt");
        Files.writeString(file, "Lily\n", StandardCharsets.UTF_8);
        assertThat(run(concat(greedy, "--prompt-file", file.toString()))).as(err.toString()).isZero();
        assertThat(json().get("token_ids")).isEqualTo(want.get("token_ids"));

        assertThat(runWithStdin("Lily\r\n", concat(greedy, "-p", "-"))).as(err.toString()).isZero();
        assertThat(json().get("token_ids")).isEqualTo(want.get("token_ids"));

        Files.write(file, new byte[] {'L', (byte) 0xff});
        assertThat(run(concat(greedy, "--prompt-file", file.toString()))).isEqualTo(1);
        assertThat(err.toString()).isEqualTo("xpuflow: the prompt from " + file + " is not UTF-8 text" + System.lineSeparator());
        err.getBuffer().setLength(0);
        assertThat(run(concat(greedy, "--prompt-file", dir.resolve("missing.txt").toString()))).isEqualTo(1);
        assertThat(err.toString()).contains("missing.txt: no such file");
        err.getBuffer().setLength(0);
        assertThat(run(concat(greedy, "--prompt-file", file.toString(), "-p", "Lily"))).isEqualTo(2);
        assertThat(err.toString()).contains("mutually exclusive");
    }

    @Test
    void aTextPromptWithoutATokenizerFailsBeforeTheModelLoads(@TempDir Path empty) {
        String mimo = Fixtures.model("tiny-mimo-v2").toString();
        assertThat(run("generate", "-m", mimo, "-p", "hello")).isEqualTo(1);
        assertThat(err.toString()).isEqualTo("xpuflow: " + mimo + " has no tokenizer.json, so a text prompt cannot be"
                + " tokenized; give the prompt as token ids with --prompt-ids instead" + System.lineSeparator());
        // a directory without even a config.json: the engine would have named that, so nothing was loaded
        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", empty.toString(), "--chat", "-p", "hello")).isEqualTo(1);
        assertThat(err.toString()).contains("has no tokenizer.json").doesNotContain("config.json");
    }

    @Test
    void chatNeedsAChatTemplateAndATextPrompt() {
        assertThat(run("generate", "-m", STORIES, "-p", "hello", "--chat")).isEqualTo(1);
        assertThat(err.toString()).startsWith("xpuflow: --chat needs the model's chat template: ").contains("no chat template");
        assertThat(err.toString().strip().lines()).hasSize(1);
        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", STORIES, "-p", "hello", "--system", "Be brief.")).isEqualTo(1);
        assertThat(err.toString()).startsWith("xpuflow: --system needs the model's chat template: ");
        err.getBuffer().setLength(0);
        assertThat(run("generate", "-m", STORIES, "--prompt-ids", "1", "--chat")).isEqualTo(2);
        assertThat(err.toString()).contains("--chat takes a text prompt (--prompt or --prompt-file), not --prompt-ids");
    }

    @Test
    void chatRendersTheSystemAndUserMessagesWithTheTemplate(@TempDir Path dir) throws Exception {
        Path stories = Fixtures.model("stories260k");
        for (String f : new String[] {"config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
                "tokenizer.json"}) {
            Files.copy(stories.resolve(f), dir.resolve(f));
        }
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode config = (ObjectNode) mapper.readTree(stories.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
                + "{% if add_generation_prompt %}assistant:{% endif %}");
        mapper.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        Tokenizer tokenizer = Tokenizer.load(dir);

        assertThat(run("generate", "-m", dir.toString(), "--system", "Be kind.", "-p", "Lily", "-n", "2", "--json",
                "--threads", "1")).as(err.toString()).isZero();
        assertThat(json().at("/usage/prompt_tokens").asInt())
                .isEqualTo(tokenizer.encode("system: Be kind.\nuser: Lily\nassistant:", false).length);
        assertThat(run("generate", "-m", dir.toString(), "--chat", "-p", "Lily", "-n", "2", "--json", "--threads", "1"))
                .as(err.toString()).isZero();
        assertThat(json().at("/usage/prompt_tokens").asInt())
                .isEqualTo(tokenizer.encode("user: Lily\nassistant:", false).length);
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
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
        assertThat(err.toString()).contains("Invalid value for option '--top-p': '--top-p' must be in (0, 1], was 1.5");
        err.getBuffer().setLength(0);
        assertThat(run("generate", "--model", STORIES, "--prompt", "x", "--prompt-ids", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("mutually exclusive");
    }

    @Test
    void benchThroughputPrintsTheHeaderTheSummaryLinePercentilesAndJson(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("throughput.json");
        assertThat(run("bench", "throughput", "--model", STORIES, "--num-prompts", "8", "--input-len", "16",
                "--output-len", "8", "--threads", "1", "--seed", "7", "--output-json", file.toString()))
                .as(err.toString()).isZero();
        String[] lines = out.toString().strip().split("\\R");
        assertThat(lines).hasSize(9);
        // auto on an F32 checkpoint: the exact mode; load time and resident weights are reported, not timed
        assertThat(lines[0]).matches("Model: exact weights, [0-9.]+ MiB resident \\(F32 checkpoint\\), KV cache f32,"
                + " loaded in [0-9.]+ s");
        assertThat(lines[1]).matches("Model dir: .*stories260k \\(LlamaForCausalLM\\), (avx512bf16|avx512|avx2|scalar)"
                + " kernels, 1 threads");
        assertThat(lines[2]).matches("Engine options: max-num-seqs 64, max-num-batched-tokens 256, kv-cache-memory 512 MiB,"
                + " max-model-len [0-9]+, prefix caching on");
        assertThat(lines[3]).isEqualTo("Workload: 8 prompts, 16 input tokens, 8 output tokens, seed 7");
        assertThat(lines[4]).matches("Throughput: [0-9.]+ requests/s, [0-9.]+ total tokens/s, [0-9.]+ output tokens/s");
        assertThat(lines[5]).matches(percentileLine("TTFT", 8));
        assertThat(lines[6]).matches(percentileLine("TPOT", 8));
        assertThat(lines[7]).matches(percentileLine("E2E", 8));
        JsonNode json = new ObjectMapper().readTree(lines[8]);
        assertOrderedPercentiles(json, "ttft", "tpot", "e2el");

        // --output-json: the header and the same results as one document
        JsonNode doc = new ObjectMapper().readTree(file.toFile());
        JsonNode header = doc.get("header");
        assertThat(header.get("benchmark").asText()).isEqualTo("throughput");
        assertThat(header.get("model").asText()).isEqualTo(STORIES);
        assertThat(header.get("architecture").asText()).isEqualTo("LlamaForCausalLM");
        assertThat(header.get("checkpoint_dtype").asText()).isEqualTo("F32");
        assertThat(header.get("weight_format").asText()).isEqualTo("exact");
        assertThat(header.get("speculative_method").asText()).isEqualTo("none");
        assertThat(header.get("kv_cache_dtype").asText()).isEqualTo("f32");
        assertThat(header.get("cpu_isa").asText()).isIn("avx512bf16", "avx512", "avx2", "scalar");
        assertThat(header.get("threads").asInt()).isEqualTo(1);
        assertThat(header.get("max_num_seqs").asInt()).isEqualTo(64);
        assertThat(header.get("max_num_batched_tokens").asInt()).isEqualTo(256);
        assertThat(header.get("kv_cache_memory_mib").asLong()).isEqualTo(512);
        assertThat(header.get("prefix_caching").asBoolean()).isTrue();
        assertThat(header.get("num_prompts").asInt()).isEqualTo(8);
        assertThat(header.get("input_len").asInt()).isEqualTo(16);
        assertThat(header.get("output_len").asInt()).isEqualTo(8);
        assertThat(header.get("seed").asLong()).isEqualTo(7);
        assertThat(doc.get("results")).isEqualTo(json);
        assertThat(json.get("weight_format").asText()).isEqualTo("exact");
        assertThat(json.get("kv_cache_dtype").asText()).isEqualTo("f32");
        assertThat(json.get("weight_bytes").asLong()).isPositive();
        assertThat(json.get("load_time").asDouble()).isPositive();
        assertThat(json.get("num_requests").asInt()).isEqualTo(8);
        assertThat(json.get("total_num_tokens").asLong()).isEqualTo(8 * (16 + 8));
        assertThat(json.get("output_tokens_per_second").asDouble()).isPositive();
    }

    @Test
    void theBenchHeaderStatesSpeculativeDecoding(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("throughput.json");
        assertThat(run("bench", "throughput", "--model", STORIES, "--num-prompts", "2", "--input-len", "8",
                "--output-len", "4", "--threads", "1", "--speculative-method", "ngram", "--num-speculative-tokens", "3",
                "--speculative-adaptive", "off", "--output-json", file.toString())).as(err.toString()).isZero();
        String[] lines = out.toString().strip().split("\\R");
        assertThat(lines[2]).startsWith("Engine options: ").endsWith(", prefix caching on, speculative ngram k=3 fixed");
        JsonNode header = new ObjectMapper().readTree(file.toFile()).get("header");
        assertThat(header.get("speculative_method").asText()).isEqualTo("ngram");
        assertThat(header.get("num_speculative_tokens").asInt()).isEqualTo(3);
        assertThat(header.get("speculative_adaptive").asBoolean()).isFalse();
    }

    @Test
    void benchLatencyPrintsPrefillAndDecodeSpeedsAndPercentiles(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("latency.json");
        assertThat(run("bench", "latency", "--model", STORIES, "--input-len", "32", "--output-len", "8",
                "--num-iters", "3", "--threads", "1", "--weight-format", "bf16", "--kv-cache-dtype", "f32",
                "--output-json", file.toString())).as(err.toString()).isZero();
        assertThat(out.toString()).startsWith("Model: bf16 weights, ").contains("KV cache f32").containsPattern("Prefill: [0-9.]+ tokens/s").containsPattern("Decode: [0-9.]+ tokens/s");
        // the warm-up request is in the workload, not in the percentiles; prefix caching is off so every
        // request computes its whole prompt
        assertThat(out.toString()).contains("Workload: 4 prompts, 32 input tokens, 8 output tokens, seed 0")
                .contains("prefix caching off")
                .containsPattern("(?m)^" + percentileLine("TTFT", 3) + "$")
                .containsPattern("(?m)^" + percentileLine("TPOT", 3) + "$")
                .containsPattern("(?m)^" + percentileLine("E2E", 3) + "$");
        String line = out.toString().strip().lines().reduce((a, b) -> b).orElseThrow();
        JsonNode json = new ObjectMapper().readTree(line);
        assertThat(json.get("decode_tokens_per_second").asDouble()).isPositive();
        assertThat(json.get("weight_format").asText()).isEqualTo("bf16");
        assertOrderedPercentiles(json, "ttft", "tpot", "e2el");
        JsonNode doc = new ObjectMapper().readTree(file.toFile());
        assertThat(doc.at("/header/benchmark").asText()).isEqualTo("latency");
        assertThat(doc.at("/header/weight_format").asText()).isEqualTo("bf16");
        assertThat(doc.at("/header/prefix_caching").asBoolean()).isFalse();
        assertThat(doc.get("results")).isEqualTo(json);
    }

    @Test
    void benchOutputJsonMustBeAWritableFileAndOneOutputTokenHasNoTpot(@TempDir Path dir) throws Exception {
        assertThat(run("bench", "throughput", "--model", STORIES, "-n", "2", "--output-json", dir.toString()))
                .isEqualTo(2);
        assertThat(err.toString()).contains("--output-json must name a file in an existing directory");
        err.getBuffer().setLength(0);
        assertThat(run("bench", "latency", "--model", STORIES, "--output-json", dir.resolve("no/such/dir.json").toString()))
                .isEqualTo(2);
        assertThat(err.toString()).contains("--output-json must name a file in an existing directory");
        err.getBuffer().setLength(0);
        assertThat(run("bench", "throughput", "--model", STORIES, "-n", "0")).isEqualTo(2);
        assertThat(err.toString()).contains("must be positive");
        assertThat(out.toString()).isEmpty();

        // one output token: no time between output tokens, so no TPOT figures (rather than zeros)
        assertThat(run("bench", "throughput", "--model", STORIES, "-n", "2", "--input-len", "4", "--output-len", "1",
                "--threads", "1")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("TPOT  ms: none (one output token per request)");
        JsonNode json = new ObjectMapper().readTree(out.toString().strip().lines().reduce((a, b) -> b).orElseThrow());
        assertThat(json.has("p50_tpot_ms")).isFalse();
        assertOrderedPercentiles(json, "ttft", "e2el");
    }

    @Test
    void benchSweepPrintsALlamaBenchTableOfPrefillAndDecodeOverDoublingStreams(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sweep.json");
        Path chart = dir.resolve("charts/sweep.png");
        assertThat(run("bench", "sweep", "--model", STORIES, "--input-len", "16", "--output-len", "4", "--max-streams",
                "5", "-r", "2", "--threads", "1", "--output-json", file.toString(), "--chart", chart.toString()))
                .as(err.toString()).isZero();
        String[] lines = out.toString().strip().split("\\R");
        assertThat(lines[3]).isEqualTo("Workload: 5 prompts, 16 input tokens, 4 output tokens, seed 0");
        assertThat(lines[2]).endsWith("prefix caching off");
        assertThat(lines[5]).isEqualTo("| model | format | threads | streams | test | t/s |");
        // 1, 2, 4 streams (8 is beyond --max-streams 5), pp then tg for each
        List<String> rows = Arrays.stream(lines).filter(l -> l.startsWith("| stories260k")).toList();
        assertThat(rows).hasSize(6);
        String[] tests = {"1 | pp16", "1 | tg4", "2 | pp16", "2 | tg4", "4 | pp16", "4 | tg4"};
        for (int i = 0; i < rows.size(); i++) {
            assertThat(rows.get(i)).matches("\\| stories260k LlamaForCausalLM \\| exact, KV f32 \\| 1 \\| "
                    + tests[i].replace("|", "\\|") + " \\| [0-9.]+ ± [0-9.]+ \\|");
        }
        JsonNode json = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertThat(json.get("results")).hasSize(6);
        for (JsonNode r : json.get("results")) {
            assertThat(r.get("tokens_per_second").asDouble()).isPositive();
            assertThat(r.get("stddev").asDouble()).isNotNegative();
        }
        assertThat(json.at("/results/5/streams").asInt()).isEqualTo(4);
        assertThat(json.at("/results/5/test").asText()).isEqualTo("tg4");
        // TTFT and TPOT percentiles of each count's tg requests, as a table and in the JSON
        assertThat(out.toString()).contains("| streams | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms |");
        assertThat(json.get("latencies")).hasSize(3);
        for (JsonNode l : json.get("latencies")) {
            assertThat(l.get("p99_ttft_ms").asDouble()).isGreaterThanOrEqualTo(l.get("p50_ttft_ms").asDouble()).isPositive();
            assertThat(l.get("p99_tpot_ms").asDouble()).isGreaterThanOrEqualTo(l.get("p50_tpot_ms").asDouble()).isPositive();
        }
        java.awt.image.BufferedImage png = javax.imageio.ImageIO.read(chart.toFile());
        assertThat(png).as("a PNG at %s", chart).isNotNull();
        assertThat(png.getWidth()).isEqualTo(SweepChart.WIDTH);
        JsonNode doc = new ObjectMapper().readTree(file.toFile());
        assertThat(doc.at("/header/benchmark").asText()).isEqualTo("sweep");
        assertThat(doc.get("results")).isEqualTo(json);

        err.getBuffer().setLength(0);
        assertThat(run("bench", "sweep", "--model", STORIES, "--max-streams", "65")).isEqualTo(2);
        assertThat(err.toString()).contains("--max-streams must be between 1 and --max-num-seqs (64), was 65");
        assertThat(run("bench", "sweep", "--model", STORIES, "--output-len", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("--output-len must be at least 2");
        assertThat(run("bench", "sweep", "--model", STORIES, "-r", "0")).isEqualTo(2);
        assertThat(err.toString()).contains("--repetitions must be positive");
        assertThat(run("bench", "sweep", "--model", STORIES, "--chart", dir.resolve("x.svg").toString())).isEqualTo(2);
        assertThat(err.toString()).contains("--chart writes a PNG file: give a name ending in .png");
    }

    /** A percentile line of {@code bench}, e.g. {@code TTFT  ms: mean 1.20, p50 1.10, p90 1.90, p99 2.00 (8 requests)}. */
    static String percentileLine(String label, int requests) {
        return String.format("%-5s", label) + " ms: mean [0-9.]+, p50 [0-9.]+, p90 [0-9.]+, p99 [0-9.]+ \\(" + requests
                + " requests\\)";
    }

    /** Every named figure has a positive mean and p50 <= p90 <= p99. */
    static void assertOrderedPercentiles(JsonNode json, String... names) {
        for (String name : names) {
            double p50 = json.get("p50_" + name + "_ms").asDouble();
            assertThat(json.get("mean_" + name + "_ms").asDouble()).as(name).isPositive();
            assertThat(p50).as(name).isPositive();
            assertThat(json.get("p90_" + name + "_ms").asDouble()).as(name).isGreaterThanOrEqualTo(p50);
            assertThat(json.get("p99_" + name + "_ms").asDouble()).as(name)
                    .isGreaterThanOrEqualTo(json.get("p90_" + name + "_ms").asDouble());
        }
    }

    @Test
    void benchRooflinePrintsTheMachinesLimits() throws Exception {
        assertThat(run("bench", "roofline", "--read-mib", "64", "--threads", "2")).as(err.toString()).isZero();
        assertThat(out.toString()).containsPattern("read bandwidth +[0-9.]+ GB/s").containsPattern("FP32 FMA +[0-9.]+ GFLOP/s");
        String json = out.toString().strip().lines().reduce((a, b) -> b).orElseThrow();
        JsonNode node = new ObjectMapper().readTree(json);
        assertThat(node.get("threads").asInt()).isEqualTo(2);
        assertThat(node.get("read_gb_per_s").asDouble()).isPositive();
        assertThat(run("bench", "roofline", "--read-mib", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("--read-mib must be at least 64");
    }

    @Test
    void profileWritesAChromeTraceOfEveryOpAndPrintsWhereTheTimeWent(@TempDir Path dir) throws Exception {
        Path trace = dir.resolve("trace.json");
        assertThat(run("profile", "--model", STORIES, "--input-len", "16", "--output-len", "4", "--num-prompts", "2",
                "--threads", "2", "--out", trace.toString())).as(err.toString()).isZero();
        JsonNode events = new ObjectMapper().readTree(trace.toFile()).get("traceEvents");
        List<String> names = new ArrayList<>();
        events.forEach(e -> names.add(e.get("name").asText()));
        assertThat(names).contains("step", "embed", "qkv L0", "attention L4", "ffn L4", "lm_head", "thread_name");
        JsonNode qkv = null;
        for (JsonNode e : events) {
            if (e.get("name").asText().equals("qkv L0") && e.get("cat").asText().equals("op")) {
                qkv = e;
                break;
            }
        }
        assertThat(qkv.get("ph").asText()).isEqualTo("X");
        assertThat(qkv.get("args").get("flops").asLong()).isPositive();
        assertThat(qkv.get("dur").asDouble()).isNotNegative();
        assertThat(out.toString()).contains("Profiled 2 requests of 16 + 4 tokens", "Prefill (", "Decode (")
                .containsPattern("qkv +[0-9]+ ")
                .containsPattern("kernel thread 0 busy");
    }

    @Test
    void compareSetsEveryLayerOfAFastFormatBesideTheExactMode() throws Exception {
        String mimo = Fixtures.model("tiny-mimo-v2").toString();
        assertThat(run("compare", "--model", mimo, "--prompt-ids", "1,5,9,13,17,21,25,29", "--weight-format", "int8",
                "--threads", "2")).as(err.toString()).isZero();
        String text = out.toString();
        assertThat(text).contains("int8 weights with a bf16 KV cache against the exact mode, 8 tokens")
                .containsPattern("(?m)^0 +attention +[0-9.e-]+ +[0-9.e-]+ +0\\.9[0-9]+$")
                .containsPattern("(?m)^- +logits ")
                .containsPattern("top-1 agreement of the logits: [0-9.]+%");
        assertThat(text).containsPattern("first divergence beyond 0.0100|no output diverges beyond 0.0100");

        assertThat(run("compare", "--model", mimo, "--prompt-ids", "1,2", "--weight-format", "exact")).isEqualTo(2);
        assertThat(err.toString()).contains("must be a fast format");
    }

    @Test
    void benchLatencyWithRooflineStatesEachFigureAsAFractionOfTheMachinesLimit() throws Exception {
        assertThat(run("bench", "latency", "--model", STORIES, "--input-len", "32", "--output-len", "8",
                "--num-iters", "1", "--threads", "2", "--roofline")).as(err.toString()).isZero();
        assertThat(out.toString()).containsPattern("Roofline: read [0-9.]+ GB/s, exact peak [0-9]+ GFLOP/s \\(2 threads\\)")
                .containsPattern("Decode reads [0-9.]+ MB per token: [0-9.]+ GB/s, [0-9]+% of the read bandwidth")
                .containsPattern("Prefill computes [0-9.]+ GFLOP per token: [0-9]+ GFLOP/s, [0-9]+% of the arithmetic peak");
        String json = out.toString().strip().lines().reduce((a, b) -> b).orElseThrow();
        JsonNode node = new ObjectMapper().readTree(json);
        // stories260k in the exact mode: every decode step reads at least its F32 weights (about 1 MB)
        assertThat(node.get("decode_bytes_per_token").asDouble()).isGreaterThan(0.9e6);
        assertThat(node.get("prefill_flops_per_token").asDouble()).isPositive();
        assertThat(node.get("roofline").get("read_gb_per_s").asDouble()).isPositive();
    }
}
