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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
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

    static Map<String, String> headers(ProducerRecord<byte[], byte[]> r) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Header h : r.headers()) {
            out.put(h.key(), h.value() == null ? null : text(h.value()));
        }
        return out;
    }

    static GenerationResult resultWithText(String text) {
        return new GenerationResult("r-1", text, new int[] {3, 4}, FinishReason.STOP,
                new GenerationResult.Usage(2, 2, 0, 0, new int[] {1}, 0), new GenerationResult.Timings(0, 1, 1, 2), List.of());
    }

    @Test
    void errorRecordsGoWithKafkaConnectDeadLetterHeaders() {
        OutputRecord out = RESULTS.onError(IN, "r-1", ErrorCode.TIMEOUT, "request did not finish within the operator's timeout");
        assertThat(out.failure()).isEqualTo(new OutputRecord.Failure(ErrorCode.TIMEOUT,
                "request did not finish within the operator's timeout", IN.source()));
        ProducerRecord<byte[], byte[]> r = new OutputRecordSerializationSchema("out", "dlq").serialize(out, null, null);
        assertThat(r.topic()).isEqualTo("dlq");
        assertThat(headers(r)).containsExactly(
                Map.entry("__connect.errors.topic", "prompts"),
                Map.entry("__connect.errors.partition", "1"),
                Map.entry("__connect.errors.offset", "77"),
                Map.entry("__connect.errors.exception.message", "request did not finish within the operator's timeout"),
                Map.entry("xpuflow.error.code", "TIMEOUT"),
                Map.entry("xpuflow.request.id", "r-1"));
        assertThat(r.value()).isEqualTo(out.value());
        assertThat(text(r.key())).isEqualTo("key-1");
        OutputRecord unknownId = RESULTS.onError(new PromptRecord("p", 0, 5L, null, bytes("x")), null, ErrorCode.INVALID_JSON, "m");
        assertThat(headers(new OutputRecordSerializationSchema("out", null).serialize(unknownId, null, null)))
                .doesNotContainKey("xpuflow.request.id").containsEntry("xpuflow.error.code", "INVALID_JSON");
        // results go without headers
        OutputRecord result = RESULTS.onResult(IN, resultWithText("x"));
        assertThat(new OutputRecordSerializationSchema("out", "dlq").serialize(result, null, null).headers()).isEmpty();
    }

    @Test
    void theSinkReplacesARecordWhoseHeadersDoNotFitWithoutThem() {
        // headers of someone else's mapper that make the record too large: the small replacement goes without them
        RecordSizeLimit limit = new RecordSizeLimit(4096);
        OutputRecord out = OutputRecord.result(bytes("k"), bytes("{}"), "r-1",
                new KafkaHeader[] {KafkaHeader.of("trace", "t"), KafkaHeader.of("blob", "b".repeat(5000))});
        ProducerRecord<byte[], byte[]> r = new OutputRecordSerializationSchema("out", "dlq", limit).serialize(out, null, null);
        assertThat(r.topic()).isEqualTo("dlq");
        assertThat(RecordSizeLimit.size(r.key(), r.value(), r.headers().toArray())).isLessThanOrEqualTo(4096);
        assertThat(json(r.value()).get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(headers(r)).doesNotContainKeys("trace", "blob").containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE");
        // one that fits keeps them, in order, before an error's own
        OutputRecord small = OutputRecord.error(null, bytes("{}"), "r-2",
                new OutputRecord.Failure(ErrorCode.INVALID_JSON, "m", null), new KafkaHeader[] {KafkaHeader.of("trace", "t")});
        assertThat(new OutputRecordSerializationSchema("out", "dlq", limit).serialize(small, null, null).headers().toArray())
                .extracting(Header::key).containsExactly("trace", "__connect.errors.exception.message", "xpuflow.error.code",
                        "xpuflow.request.id");
    }

    @Test
    void aResultTooLargeForTheProducerBecomesAnOutputTooLargeErrorThatFits() {
        RecordSizeLimit limit = new RecordSizeLimit(4096);
        JsonResultMapper mapper = new JsonResultMapper(new ResponseWriter(), limit);
        OutputRecord out = mapper.onResult(IN, resultWithText("a".repeat(5000)));
        assertThat(out.kind()).isEqualTo(OutputRecord.Kind.ERROR);
        assertThat(out.requestId()).isEqualTo("r-1");
        assertThat(out.failure().code()).isEqualTo(ErrorCode.OUTPUT_TOO_LARGE);
        ProducerRecord<byte[], byte[]> r = new OutputRecordSerializationSchema("out", "dlq", limit).serialize(out, null, null);
        assertThat(RecordSizeLimit.size(r.key(), r.value(), r.headers().toArray())).isLessThanOrEqualTo(4096);
        JsonNode n = json(r.value());
        assertThat(n.get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(n.get("error").get("message").asText()).startsWith("the result is 5")
                .endsWith("bytes as a Kafka record, more than the producer's limit of 4096 (max.request.size);"
                        + " ask for fewer tokens or logprobs");
        assertThat(n.get("input").asText()).as("the request, for a replay with fewer tokens").isEqualTo(text(IN.value()));
        assertThat(n.get("metadata").get("trace").asText()).isEqualTo("t-9");
        // a result that fits is left alone
        assertThat(mapper.onResult(IN, resultWithText("a".repeat(3000))).kind()).isEqualTo(OutputRecord.Kind.RESULT);
    }

    @Test
    void errorRecordsOfLargeInputsEchoWhatFits() {
        RecordSizeLimit limit = new RecordSizeLimit(8192);
        String request = "{\"id\": \"big\", \"prompt\": \"" + "x".repeat(20_000) + "\"}";
        PromptRecord big = new PromptRecord("prompts", 0, 9L, new byte[3000], bytes(request));
        OutputRecord out = new JsonResultMapper(new ResponseWriter(), limit).onError(big, "big", ErrorCode.PROMPT_TOO_LONG, "long");
        ProducerRecord<byte[], byte[]> r = new OutputRecordSerializationSchema("out", "dlq", limit).serialize(out, null, null);
        long size = RecordSizeLimit.size(r.key(), r.value(), r.headers().toArray());
        assertThat(size).isLessThanOrEqualTo(8192).isGreaterThan(8000);
        assertThat(r.key()).hasSize(3000);
        assertThat(request).startsWith(json(r.value()).get("input").asText());
        assertThat(json(r.value()).get("input_truncated").asBoolean()).isTrue();

        // a key as large as a record leaves no room: it goes, the error stays
        PromptRecord hugeKey = new PromptRecord("prompts", 0, 10L, new byte[9000], bytes(request));
        OutputRecord keyless = new JsonResultMapper(new ResponseWriter(), limit).onError(hugeKey, "big", ErrorCode.PROMPT_TOO_LONG, "l");
        assertThat(keyless.key()).isNull();
        assertThat(limit.fits(keyless.key(), keyless.value(), DeadLetterHeaders.of(keyless.failure(), "big"))).isTrue();
    }

    @Test
    void theSinkReplacesARecordThatStillDoesNotFitWithASmallError() {
        RecordSizeLimit limit = new RecordSizeLimit(4096);
        var schema = new OutputRecordSerializationSchema("out", "dlq", limit);
        // from a mapper of one's own that does not check sizes
        OutputRecord result = OutputRecord.result(bytes("k"), new byte[5000], "r-7");
        ProducerRecord<byte[], byte[]> r = schema.serialize(result, null, null);
        assertThat(r.topic()).isEqualTo("dlq");
        assertThat(text(r.key())).isEqualTo("k");
        assertThat(json(r.value()).get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(json(r.value()).get("error").get("message").asText()).startsWith("the result is 5");
        assertThat(json(r.value()).get("id").asText()).isEqualTo("r-7");
        assertThat(headers(r)).containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE").containsEntry("xpuflow.request.id", "r-7")
                .doesNotContainKey("__connect.errors.topic");

        OutputRecord error = OutputRecord.error(new byte[5000], new byte[100], "r-8",
                new OutputRecord.Failure(ErrorCode.INVALID_PARAM, "m", IN.source()));
        ProducerRecord<byte[], byte[]> e = schema.serialize(error, null, null);
        assertThat(e.key()).as("a key that alone is too large goes").isNull();
        assertThat(json(e.value()).get("error").get("message").asText()).startsWith("the error record is 5");
        assertThat(headers(e)).containsEntry("__connect.errors.offset", "77").containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE");
        assertThat(RecordSizeLimit.size(e.key(), e.value(), e.headers().toArray())).isLessThanOrEqualTo(4096);
    }
}
