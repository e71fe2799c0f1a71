package io.xpuflow.connector.kafka;

import static io.xpuflow.connector.kafka.PipelineTests.bytes;
import static io.xpuflow.connector.kafka.PipelineTests.json;
import static io.xpuflow.connector.kafka.PipelineTests.text;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.JsonNode;
import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.FinishReason;
import io.xpuflow.runtime.engine.GenerationResult;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The mappers between Kafka records and the inference function, without Flink. */
class JsonMappersTest {
    static final PromptRecord IN = new PromptRecord("prompts", 1, 77L, bytes("key-1"),
            bytes("{\"id\": \"r-1\", \"prompt\": \"Once\", \"metadata\": {\"trace\": \"t-9\", \"n\": 1.0}}"));
    static final JsonResultMapper RESULTS = new JsonResultMapper(new ResponseWriter());

    @Test
    void requestMapperParsesTheValue() throws Exception {
        var mapper = new JsonRequestMapper(RequestParser.withDefaults());
        assertThat(mapper.toRequest(IN).prompt()).isEqualTo("Once");
        InvalidInputException e = catchThrowableOfType(InvalidInputException.class,
                () -> mapper.toRequest(new PromptRecord("prompts", 0, 1L, null, null)));
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
    }

    @Test
    void resultKeepsTheKeyAndEchoesMetadata() {
        GenerationResult r = new GenerationResult("r-1", " upon a time", new int[] {3, 4}, FinishReason.STOP,
                new GenerationResult.Usage(2, 2, 0, 0, new int[] {1}, 0), new GenerationResult.Timings(0, 1, 1, 2), List.of());
        OutputRecord out = RESULTS.onResult(IN, r);
        assertThat(out.kind()).isEqualTo(OutputRecord.Kind.RESULT);
        assertThat(out.requestId()).isEqualTo("r-1");
        assertThat(text(out.key())).isEqualTo("key-1");
        assertThat(text(out.value())).endsWith("\"metadata\":{\"trace\": \"t-9\", \"n\": 1.0}}");
    }

    @Test
    void timeoutsAndEngineErrorsBecomeErrorRecordsWithMetadataAndCoordinates() {
        OutputRecord out = RESULTS.onError(IN, "r-1", ErrorCode.TIMEOUT, "request did not finish within the operator's timeout");
        assertThat(out.kind()).isEqualTo(OutputRecord.Kind.ERROR);
        assertThat(text(out.key())).isEqualTo("key-1");
        JsonNode n = json(out.value());
        assertThat(n.get("id").asText()).isEqualTo("r-1");
        assertThat(n.get("error").get("code").asText()).isEqualTo("TIMEOUT");
        assertThat(n.get("source").toString()).isEqualTo("{\"topic\":\"prompts\",\"partition\":1,\"offset\":77}");
        assertThat(n.get("metadata").get("trace").asText()).isEqualTo("t-9");
        assertThat(n.get("input").asText()).isEqualTo(text(IN.value()));
    }

    @Test
    void invalidJsonErrorsDoNotTryToReadMetadata() {
        PromptRecord broken = new PromptRecord("prompts", 0, 5L, null, bytes("{\"metadata\": {\"a\": 1}, \"id\": "));
        JsonNode n = json(RESULTS.onError(broken, null, ErrorCode.INVALID_JSON, "not valid JSON").value());
        assertThat(n.has("metadata")).isFalse();
        assertThat(n.get("id").isNull()).isTrue();
    }
}
