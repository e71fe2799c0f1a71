package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.Fixtures.GoldenPrompt;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code --weight-format} and {@code --kv-cache-dtype}: on every command that loads a model, and end to end. */
class FormatOptionsTest {
    private static final String STORIES = Fixtures.model("stories260k").toString();
    /** Every command that loads a model, with its other required arguments. */
    private static final List<List<String>> COMMANDS = List.of(
            List.of("score", "--model", STORIES, "--prompt-ids", "1", "--out", "x.safetensors"),
            List.of("generate", "--model", STORIES, "--prompt-ids", "1"),
            List.of("bench", "throughput", "--model", STORIES),
            List.of("bench", "latency", "--model", STORIES),
            List.of("bench", "pipeline", "--model", STORIES),
            List.of("demo"));

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    /** The innermost subcommand's parse result. */
    private static CommandLine.ParseResult parse(List<String> command, String... more) {
        List<String> args = new ArrayList<>(command);
        args.addAll(List.of(more));
        CommandLine.ParseResult r = OptionFlags.install(new CommandLine(new XpuFlowCli())).parseArgs(args.toArray(String[]::new));
        while (r.hasSubcommand()) {
            r = r.subcommand();
        }
        return r;
    }

    @Test
    void everyCommandThatLoadsAModelTakesBothOptionsDefaultingToAuto() {
        for (List<String> command : COMMANDS) {
            CommandLine.ParseResult given = parse(command, "--weight-format", "BF16", "--kv-cache-dtype", "f32");
            // the engine commands hold the option's text ("bf16", generated from EngineOptionDefs), score and demo
            // the parsed enum (FormatOptions): both through the same rule
            assertThat(text(given.matchedOptionValue("--weight-format", null))).as("%s", command).isEqualTo("bf16");
            assertThat(text(given.matchedOptionValue("--kv-cache-dtype", null))).as("%s", command).isEqualTo("f32");
            assertThat(text(parse(command, "--weight-format", "int8").matchedOptionValue("--weight-format", null)))
                    .as("%s: int8 parses; the device decides whether it can run it", command).isEqualTo("int8");

            CommandLine.ParseResult auto = parse(command, "--weight-format", "auto");
            assertThat(text(auto.matchedOption("--weight-format").getValue())).as("%s", command).isEqualTo("auto");
            // not given: the default is auto too
            assertThat(text(parse(command).commandSpec().findOption("--kv-cache-dtype").getValue())).isEqualTo("auto");
        }
    }

    @Test
    void theParsedFormatsReachWhatTheCommandsOpen() {
        GenerateCommand generate = (GenerateCommand) parse(COMMANDS.get(1), "--weight-format", "exact",
                "--kv-cache-dtype", "bf16").commandSpec().userObject();
        assertThat(generate.engineArgs.toOptions(1).weightFormat()).isEqualTo(WeightFormat.EXACT);
        assertThat(generate.engineArgs.toOptions(1).kvCacheDtype()).isEqualTo(KvCacheDtype.BF16);
        BenchPipeline pipeline = (BenchPipeline) parse(COMMANDS.get(4), "--weight-format", "bf16").commandSpec().userObject();
        assertThat(pipeline.engineArgs.toSpec(1).weightFormat()).isEqualTo(WeightFormat.BF16);
        assertThat(pipeline.engineArgs.toSpec(1).kvCacheDtype()).isNull();
        // the stats line's interval too: 10 s unless told, 0 for none
        assertThat(generate.engineArgs.toOptions(1).logStatsInterval()).isEqualTo(java.time.Duration.ofSeconds(10));
        GenerateCommand quiet = (GenerateCommand) parse(COMMANDS.get(1), "--log-stats-interval", "0").commandSpec().userObject();
        assertThat(quiet.engineArgs.toOptions(1).logStatsInterval()).isZero();
        BenchPipeline often = (BenchPipeline) parse(COMMANDS.get(4), "--log-stats-interval", "2s").commandSpec().userObject();
        assertThat(often.engineArgs.toSpec(1).toOptions().logStatsInterval()).isEqualTo(java.time.Duration.ofSeconds(2));
        ScoreCommand score = (ScoreCommand) parse(COMMANDS.get(0), "--kv-cache-dtype", "bf16").commandSpec().userObject();
        assertThat(score.formats.applyTo(io.xpuflow.runtime.model.LoadOptions.defaults()).kvCacheDtype())
                .isEqualTo(KvCacheDtype.BF16);
    }

    @Test
    void aBadValueIsAUsageErrorNamingTheOptionAndTheAcceptedValues() {
        for (List<String> command : COMMANDS) {
            List<String> args = new ArrayList<>(command);
            args.addAll(List.of("--weight-format", "fp4"));
            err.getBuffer().setLength(0);
            assertThat(run(args.toArray(String[]::new))).as("%s", command).isEqualTo(2);
            assertThat(err.toString()).as("%s", command).contains("Invalid value for option '--weight-format'")
                    .contains("'--weight-format' must be one of auto, exact, bf16, int8, was fp4");

            args = new ArrayList<>(command);
            args.addAll(List.of("--kv-cache-dtype", "fp8"));
            err.getBuffer().setLength(0);
            assertThat(run(args.toArray(String[]::new))).as("%s", command).isEqualTo(2);
            assertThat(err.toString()).as("%s", command).contains("Invalid value for option '--kv-cache-dtype'")
                    .contains("'--kv-cache-dtype' must be one of auto, f32, bf16, was fp8");
        }
    }

    @Test
    void generateInExactModeGivesTheGoldenTokensAndInBf16Runs() throws Exception {
        ObjectMapper json = new ObjectMapper();
        for (GoldenPrompt p : Fixtures.golden("stories260k").subList(0, 2)) {
            String ids = Arrays.stream(p.ids()).mapToObj(Integer::toString).collect(Collectors.joining(","));
            String n = String.valueOf(p.greedy().length);
            out.getBuffer().setLength(0);
            assertThat(run("generate", "--model", STORIES, "--prompt-ids", ids, "--max-tokens", n, "--ignore-eos",
                    "--json", "--threads", "1", "--weight-format", "exact")).as(err.toString()).isZero();
            assertThat(json.convertValue(json.readTree(out.toString()).get("token_ids"), int[].class))
                    .containsExactly(p.greedy());

            out.getBuffer().setLength(0);
            assertThat(run("generate", "--model", STORIES, "--prompt-ids", ids, "--max-tokens", n, "--ignore-eos",
                    "--json", "--threads", "1", "--weight-format", "bf16", "--kv-cache-dtype", "bf16"))
                    .as(err.toString()).isZero();
            JsonNode r = json.readTree(out.toString());
            assertThat(r.get("token_ids")).hasSize(p.greedy().length);
            assertThat(r.at("/usage/completion_tokens").asInt()).isEqualTo(p.greedy().length);
        }
    }

    @Test
    void scoreInExactModeGivesTheGoldenLogitsAndInBf16TheSameArgmaxes(@TempDir Path tmp) {
        GoldenPrompt p = Fixtures.golden("stories260k").get(0);
        String ids = Arrays.stream(p.ids()).mapToObj(Integer::toString).collect(Collectors.joining(","));
        Path exact = tmp.resolve("exact.safetensors");
        Path bf16 = tmp.resolve("bf16.safetensors");
        assertThat(run("score", "--model", STORIES, "--prompt-ids", ids, "--out", exact.toString(), "--threads", "1",
                "--weight-format", "exact")).as(err.toString()).isZero();
        assertThat(run("score", "--model", STORIES, "--prompt-ids", ids, "--out", bf16.toString(), "--threads", "1",
                "--weight-format", "bf16")).as(err.toString()).isZero();
        int vocab = 512;
        float[] e;
        float[] b;
        try (SafetensorsFile f = SafetensorsFile.open(exact)) {
            e = f.readFloats("logits");
        }
        try (SafetensorsFile f = SafetensorsFile.open(bf16)) {
            b = f.readFloats("logits");
        }
        assertThat(e).hasSameSizeAs(p.logits()).hasSameSizeAs(b);
        double worstExact = 0;
        int agree = 0;
        int rows = e.length / vocab;
        for (int i = 0; i < e.length; i++) {
            worstExact = Math.max(worstExact, Math.abs(e[i] - p.logits()[i]));
        }
        for (int r = 0; r < rows; r++) {
            agree += argmax(e, r * vocab, vocab) == argmax(b, r * vocab, vocab) ? 1 : 0;
        }
        assertThat(worstExact).as("exact mode against the FP32 reference").isLessThan(1e-4);
        // the accuracy contract of the BF16 format is FastFormatAccuracyTest's; here: it ran and is close
        assertThat(agree).as("positions whose most likely token is the same in bf16").isGreaterThanOrEqualTo(rows - 1);
        assertThat(b).isNotEqualTo(e);
    }

    private static int argmax(float[] v, int from, int n) {
        int best = from;
        for (int i = from + 1; i < from + n; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best - from;
    }

    /** A format option's value as text: an enum's lower-case name, null (auto) as "auto". */
    private static String text(Object value) {
        return value == null ? "auto" : value.toString().toLowerCase(java.util.Locale.ROOT);
    }
}
