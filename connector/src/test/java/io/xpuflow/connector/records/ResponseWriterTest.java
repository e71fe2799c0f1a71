package io.xpuflow.connector.records;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.runtime.engine.FinishReason;
import io.xpuflow.runtime.engine.GenerationResult;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ResponseWriterTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final SourceCoordinates SOURCE = new SourceCoordinates("prompts", 3, 1234L);

    static GenerationResult result(List<GenerationResult.TokenLogprob> logprobs) {
        return new GenerationResult("r-1", "Lily said \"hi\"\n🌸", new int[] {5, 6, 7}, FinishReason.LENGTH,
                new GenerationResult.Usage(4, 3, 0, 1024, new int[] {1}, 0, 6, 4),
                new GenerationResult.Timings(0.12345, 1.5, 0.25, 2.0004), logprobs);
    }

    @Test
    void resultHasTheDocumentedFieldsInOrder() throws Exception {
        byte[] out = new ResponseWriter().result(result(List.of()),
                new RequestParser.Echo("{\"user\": 42,  \"n\": 1.50}", false));
        assertThat(new String(out, StandardCharsets.UTF_8)).isEqualTo("{\"id\":\"r-1\",\"text\":\"Lily said \\\"hi\\\"\\n🌸\","
                + "\"finish_reason\":\"length\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3,\"total_tokens\":7,"
                + "\"draft_tokens\":6,\"accepted_tokens\":4},"
                + "\"timings\":{\"queue_ms\":0.123,\"ttft_ms\":1.5,\"tpot_ms\":0.25,\"total_ms\":2.0},"
                + "\"metadata\":{\"user\": 42,  \"n\": 1.50}}");
    }

    @Test
    void tokenIdsAppearWhenTheRequestAskedForThem() throws Exception {
        String withIds = new String(new ResponseWriter().result(result(List.of()), new RequestParser.Echo("[1]", true)),
                StandardCharsets.UTF_8);
        assertThat(withIds).contains("\"total_ms\":2.0},\"token_ids\":[5,6,7],\"metadata\":[1]}");
        assertThat(JSON.readTree(new ResponseWriter().result(result(List.of()), RequestParser.Echo.NONE)).has("token_ids"))
                .isFalse();
    }

    @Test
    void logprobsAppearWhenTheResultHasThem() throws Exception {
        var lp = new GenerationResult.TokenLogprob(5, -0.5f, new int[] {5, 9}, new float[] {-0.5f, -1.25f});
        JsonNode n = JSON.readTree(new ResponseWriter().result(result(List.of(lp, lp, lp)), RequestParser.Echo.NONE));
        assertThat(n.has("metadata")).isFalse();
        assertThat(n.get("logprobs")).hasSize(3);
        assertThat(n.get("logprobs").get(0).toString())
                .isEqualTo("{\"token_id\":5,\"logprob\":-0.5,\"top\":[{\"token_id\":5,\"logprob\":-0.5},{\"token_id\":9,\"logprob\":-1.25}]}");
    }

    @Test
    void errorEchoesTheInputAndItsCoordinates() throws Exception {
        byte[] input = "{\"id\": \"r-9\", \"max_tokens\": -5}".getBytes(StandardCharsets.UTF_8);
        JsonNode n = JSON.readTree(new ResponseWriter().error("r-9", ErrorCode.INVALID_PARAM, "'max_tokens' must be >= 1, was -5",
                input, SOURCE, "[1]"));
        assertThat(n.toString()).isEqualTo("{\"id\":\"r-9\",\"error\":{\"code\":\"INVALID_PARAM\",\"message\":"
                + "\"'max_tokens' must be >= 1, was -5\"},\"input\":\"{\\\"id\\\": \\\"r-9\\\", \\\"max_tokens\\\": -5}\","
                + "\"input_bytes\":31,\"input_truncated\":false,"
                + "\"source\":{\"topic\":\"prompts\",\"partition\":3,\"offset\":1234},\"metadata\":[1]}");
    }

    @Test
    void errorWithoutIdOrValue() throws Exception {
        JsonNode n = JSON.readTree(new ResponseWriter().error(null, ErrorCode.INVALID_JSON, "tombstone", null, SOURCE, null));
        assertThat(n.get("id").isNull()).isTrue();
        assertThat(n.get("input").isNull()).isTrue();
        assertThat(n.get("input_bytes").asInt()).isZero();
        assertThat(n.has("metadata")).isFalse();
    }

    @Test
    void longInputIsCutAtACharacterBoundary() throws Exception {
        // 1 ASCII byte then 3-byte characters: a cut at 1024 would fall inside one
        String text = "a" + "€".repeat(2000);
        byte[] input = text.getBytes(StandardCharsets.UTF_8);
        JsonNode n = JSON.readTree(new ResponseWriter(1024).error("x", ErrorCode.PROMPT_TOO_LONG, "too long", input, SOURCE, null));
        String echoed = n.get("input").asText();
        assertThat(echoed.getBytes(StandardCharsets.UTF_8).length).isLessThanOrEqualTo(1024).isGreaterThan(1020);
        assertThat(text).startsWith(echoed);
        assertThat(echoed).doesNotContain("\uFFFD");
        assertThat(n.get("input_truncated").asBoolean()).isTrue();
        assertThat(n.get("input_bytes").asInt()).isEqualTo(input.length);

        JsonNode none = JSON.readTree(new ResponseWriter(0).error("x", ErrorCode.PROMPT_TOO_LONG, "m", input, SOURCE, null));
        assertThat(none.get("input").asText()).isEmpty();
    }

    @Test
    void invalidUtf8InputIsEchoedLossily() throws Exception {
        byte[] input = {'{', '"', 'a', (byte) 0xFF, (byte) 0xC0, '"', '}'};
        JsonNode n = JSON.readTree(new ResponseWriter().error(null, ErrorCode.INVALID_JSON, "bad", input, SOURCE, null));
        assertThat(n.get("input").asText()).isEqualTo("{\"a\uFFFD\uFFFD\"}");
    }

    @Test
    void errorWithABudgetCutsTheInputEchoUntilTheRecordFits() throws Exception {
        ResponseWriter writer = new ResponseWriter();
        String text = "{\"id\": \"x\", \"prompt\": \"" + "€a".repeat(50_000) + "\"}";
        byte[] input = text.getBytes(StandardCharsets.UTF_8);
        byte[] whole = writer.error("x", ErrorCode.PROMPT_TOO_LONG, "too long", input, SOURCE, "{\"m\": 1}", 1 << 20);
        assertThat(JSON.readTree(whole).get("input").asText()).as("no cap of its own: all of it when it fits").isEqualTo(text);

        for (int budget : new int[] {100_000, 20_000, 1_000}) {
            byte[] out = writer.error("x", ErrorCode.PROMPT_TOO_LONG, "too long", input, SOURCE, "{\"m\": 1}", budget);
            assertThat(out.length).as("budget %d", budget).isLessThanOrEqualTo(budget).isGreaterThan(budget - 200);
            JsonNode n = JSON.readTree(out);
            assertThat(text).startsWith(n.get("input").asText());
            assertThat(n.get("input").asText()).doesNotContain("\uFFFD");
            assertThat(n.get("input_truncated").asBoolean()).isTrue();
            assertThat(n.get("input_bytes").asInt()).isEqualTo(input.length);
            assertThat(n.get("metadata").toString()).isEqualTo("{\"m\":1}");
        }
    }

    @Test
    void escapedInputIsCutByWhatItTakesEscaped() throws Exception {
        // control characters are written as six characters each: a cut by bytes alone would overshoot 6x
        byte[] input = new byte[50_000];
        java.util.Arrays.fill(input, (byte) 1);
        for (int budget : new int[] {30_000, 5_000, 400}) {
            byte[] out = new ResponseWriter().error(null, ErrorCode.INVALID_JSON, "bad", input, SOURCE, null, budget);
            assertThat(out.length).as("budget %d", budget).isLessThanOrEqualTo(budget);
            assertThat(JSON.readTree(out).get("input").asText()).isNotEmpty().matches("\u0001+");
        }
    }

    @Test
    void metadataAndThenTheInputGoWhenThereIsNoRoomForThem() throws Exception {
        byte[] input = "{\"id\": \"x\"}".getBytes(StandardCharsets.UTF_8);
        String metadata = "[\"" + "m".repeat(2000) + "\"]";
        byte[] out = new ResponseWriter().error("x", ErrorCode.INVALID_PARAM, "m", input, SOURCE, metadata, 1000);
        JsonNode n = JSON.readTree(out);
        assertThat(out.length).isLessThanOrEqualTo(1000);
        assertThat(n.has("metadata")).isFalse();
        assertThat(n.get("input").asText()).isEqualTo("{\"id\": \"x\"}");

        byte[] bare = new ResponseWriter().error("x", ErrorCode.INVALID_PARAM, "m".repeat(500), input, SOURCE, metadata, 520);
        assertThat(JSON.readTree(bare).get("input").asText()).isEmpty();
        assertThat(JSON.readTree(bare).get("input_truncated").asBoolean()).isTrue();
    }

    @Test
    void outputTooLargeIsASmallErrorWithoutInput() throws Exception {
        byte[] out = ResponseWriter.outputTooLarge("r-1", "the result", 2_000_000, 1_048_576, SOURCE);
        assertThat(out.length).isLessThan(400);
        assertThat(JSON.readTree(out).toString()).isEqualTo("{\"id\":\"r-1\",\"error\":{\"code\":\"OUTPUT_TOO_LARGE\","
                + "\"message\":\"the result is 2000000 bytes as a Kafka record, more than the producer's limit of 1048576"
                + " (max.request.size)\"},\"input\":null,\"input_bytes\":0,\"input_truncated\":false,"
                + "\"source\":{\"topic\":\"prompts\",\"partition\":3,\"offset\":1234}}");
        assertThat(JSON.readTree(ResponseWriter.outputTooLarge("i".repeat(5000), "the result", 1, 1, null)).get("id").isNull())
                .as("an id too long for a small record is left out").isTrue();
    }

    @Test
    void cutAtCharBoundary() {
        byte[] b = "ab€".getBytes(StandardCharsets.UTF_8); // 61 62 E2 82 AC
        assertThat(ResponseWriter.cutAtCharBoundary(b, 5)).isEqualTo(5);
        assertThat(ResponseWriter.cutAtCharBoundary(b, 4)).isEqualTo(2);
        assertThat(ResponseWriter.cutAtCharBoundary(b, 3)).isEqualTo(2);
        assertThat(ResponseWriter.cutAtCharBoundary(b, 2)).isEqualTo(2);
        assertThat(ResponseWriter.cutAtCharBoundary(b, 0)).isEqualTo(0);
    }
}
