package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code xpuflow tokenize}: the tokenizers' golden ids through the command line, decoding, and the errors. */
class TokenizeCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    private JsonNode json() throws IOException {
        assertThat(out.toString().strip().lines()).hasSize(1);
        return JSON.readTree(out.toString());
    }

    private static String ids(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    private static int[] ints(JsonNode array) {
        return JSON.convertValue(array, int[].class);
    }

    @Test
    void stories260kEncodesEveryGoldenCaseAndDecodesItBack() throws IOException {
        String model = Fixtures.model("stories260k").toString();
        JsonNode cases = JSON.readTree(Fixtures.model("stories260k").resolve("tokenizer-golden-ids.json").toFile()).get("cases");
        assertThat(cases.size()).isGreaterThan(10);
        for (JsonNode c : cases) {
            String text = c.get("text").asText();
            int[] want = ints(c.get("ids"));
            assertThat(run("tokenize", "--model", model, "--text", text)).as(err.toString()).isZero();
            assertThat(ints(json().get("ids"))).as(text).containsExactly(want);

            assertThat(run("tokenize", "--model", model, "--ids", ids(want))).as(err.toString()).isZero();
            assertThat(json().get("text").asText()).as(text).isEqualTo(c.get("decoded").asText()); // keeps <s>

            assertThat(run("tokenize", "--model", model, "--ids", ids(want), "--skip-special-tokens")).isZero();
            assertThat(json().get("text").asText()).as(text).isEqualTo(text);
        }
    }

    @Test
    void noSpecialTokensLeavesOutTheBos() throws IOException {
        String model = Fixtures.model("stories260k").toString();
        assertThat(run("tokenize", "--model", model, "--text", "Hello world", "--no-special-tokens")).isZero();
        assertThat(ints(json().get("ids"))).containsExactly(346, 306, 414, 263, 304, 341);
    }

    @Test
    void qwen3EncodesAndDecodesChineseAsAsciiJson() throws IOException {
        String model = Fixtures.model("tokenizers/qwen3").toString();
        String text = "小米推出的 MiMo Flash V2 模型备受开源社区关注。";
        int[] want = {105079, 108073, 20740, 25612, 17263, 647, 17, 6567, 44401, 24300, 109120, 115462, 103935, 100020, 1773};
        assertThat(run("tokenize", "--model", model, "--text", text)).as(err.toString()).isZero();
        assertThat(out.toString()).isEqualTo("{\"ids\":[" + ids(want) + "]}" + System.lineSeparator());
        assertThat(run("tokenize", "--model", model, "--ids", ids(want))).isZero();
        assertThat(out.toString()).isASCII().startsWith("{\"text\":\"\\u5C0F\\u7C73");
        assertThat(json().get("text").asText()).isEqualTo(text);
    }

    @Test
    void showTokensAddsTheVocabularyStringOfEachId() throws IOException {
        String model = Fixtures.model("stories260k").toString();
        assertThat(run("tokenize", "-m", model, "--text", "Hello world", "--show-tokens")).as(err.toString()).isZero();
        JsonNode encoded = json();
        assertThat(ints(encoded.get("ids"))).containsExactly(1, 346, 306, 414, 263, 304, 341);
        assertThat(JSON.convertValue(encoded.get("tokens"), String[].class))
                .containsExactly("<s>", "\u2581He", "ll", "o", "\u2581w", "or", "ld");
        assertThat(out.toString()).contains("\"\\u2581He\""); // not a terminal: escaped

        assertThat(run("tokenize", "-m", model, "--ids", "1,346,306", "--show-tokens")).as(err.toString()).isZero();
        JsonNode decoded = json();
        assertThat(decoded.get("text").asText()).isEqualTo("<s> Hell");
        assertThat(JSON.convertValue(decoded.get("tokens"), String[].class)).containsExactly("<s>", "\u2581He", "ll");
    }

    @Test
    void aUtf8TerminalGetsReadableTextUnlessAscii() throws IOException {
        String model = Fixtures.model("tokenizers/qwen3").toString();
        String[] args = {"tokenize", "--model", model, "--ids", "105079,21018", "--show-tokens"};
        out.getBuffer().setLength(0);
        assertThat(XpuFlowCli.execute(args, InputStream.nullInputStream(), new PrintWriter(out, true),
                new PrintWriter(err, true), true)).as(err.toString()).isZero();
        assertThat(out.toString()).isEqualTo("{\"text\":\"小米 Hi\",\"tokens\":[\"å°ıç±³\",\"ĠHi\"]}" + System.lineSeparator());

        String[] ascii = Arrays.copyOf(args, args.length + 1);
        ascii[args.length] = "--ascii";
        out.getBuffer().setLength(0);
        assertThat(XpuFlowCli.execute(ascii, InputStream.nullInputStream(), new PrintWriter(out, true),
                new PrintWriter(err, true), true)).isZero();
        assertThat(out.toString()).isASCII().startsWith("{\"text\":\"\\u5C0F\\u7C73 Hi\"");
        assertThat(json().get("text").asText()).isEqualTo("小米 Hi");
    }

    @Test
    void aMissingTokenizerIsOneLineNamingTheFile(@TempDir Path empty) {
        assertThat(run("tokenize", "--model", empty.toString(), "--text", "hi")).isEqualTo(1);
        assertThat(err.toString()).isEqualTo("xpuflow: " + empty.resolve("tokenizer.json") + ": no such file"
                + System.lineSeparator());
    }

    @Test
    void anIdOutsideTheVocabularyFails() {
        String model = Fixtures.model("stories260k").toString();
        assertThat(run("tokenize", "--model", model, "--ids", "1,512")).isEqualTo(1);
        assertThat(err.toString()).startsWith("xpuflow: token id 512 at index 1 is outside the vocabulary of ")
                .contains("tokenizer.json (ids 0 to 511)").doesNotContain("\tat ");
        assertThat(out.toString()).isEmpty();

        assertThat(run("tokenize", "--model", model, "--ids", "1,-3")).isEqualTo(2);
        assertThat(err.toString()).contains("token id -3 at index 1 is negative");
    }

    @Test
    void exactlyOneOfTextAndIds() {
        String model = Fixtures.model("stories260k").toString();
        assertThat(run("tokenize", "--model", model)).isEqualTo(2);
        assertThat(err.toString()).contains("--text").contains("--ids");
        assertThat(run("tokenize", "--model", model, "--text", "a", "--ids", "1")).isEqualTo(2);
        assertThat(err.toString()).contains("mutually exclusive");
    }
}
