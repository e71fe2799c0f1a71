package io.xpuflow.connector.kafka;

import static io.xpuflow.connector.kafka.PipelineTests.bytes;
import static io.xpuflow.connector.kafka.PipelineTests.json;
import static io.xpuflow.connector.kafka.PipelineTests.text;
import static io.xpuflow.connector.kafka.PipelineTests.withoutTimings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Kafka → Flink → Kafka with a real broker, a MiniCluster and the stories260k model. */
@ExtendWith(EmbeddedKafkaExtension.class)
class KafkaInferencePipelineTest {
    @RegisterExtension
    static final MiniClusterExtension MINI = PipelineTests.miniCluster();

    static final Duration WAIT = Duration.ofMinutes(2);
    static final String[] STARTS = {"Once upon a time", "Lily and Tom went to the park", "The little dog",
            "One day, a girl named Sue", "The sun was hot and", "Ben had a red ball"};

    static KafkaInferencePipeline.Builder pipeline(EmbeddedKafka kafka, String name) {
        return KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                .inputTopic(name + "-in").outputTopic(name + "-out").consumerGroup(name)
                .transactionalIdPrefix(name + "-tx").engine(PipelineTests.SPEC).bounded(true)
                .asyncCapacity(16).timeout(Duration.ofMinutes(5));
    }

    /** A request as JSON text; {@code extra} holds more fields (values are JSON). */
    static String request(String id, String prompt, Map<String, String> extra) {
        ObjectNode n = PipelineTests.JSON.createObjectNode().put("id", id).put("prompt", prompt);
        StringBuilder s = new StringBuilder(n.toString());
        s.setLength(s.length() - 1);
        extra.forEach((k, v) -> s.append(",\"").append(k).append("\":").append(v));
        return s.append('}').toString();
    }

    @Test
    void everyPromptGetsExactlyOneCompletionEqualToTheEnginesOwn(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("basic-in", 2);
        kafka.createTopic("basic-out", 2);
        kafka.createTopic("basic-dlq", 1);
        List<EmbeddedKafka.KeyValue> input = new ArrayList<>();
        List<byte[]> values = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            Map<String, String> extra = new LinkedHashMap<>();
            extra.put("max_tokens", Integer.toString(8 + i % 17));
            switch (i % 4) {
                case 0 -> { } // the job's defaults (greedy)
                case 1 -> extra.put("temperature", "0.8");     // sampled, seed from the id
                case 2 -> {
                    extra.put("temperature", "1.0");
                    extra.put("top_k", "20");
                    extra.put("seed", Integer.toString(i));
                }
                default -> {
                    extra.put("stop", "[\".\"]");
                    extra.put("logprobs", "2");
                }
            }
            if (i % 5 == 0) {
                extra.put("metadata", "{\"n\": " + i + ", \"tags\": [\"a\", 1.50]}");
            }
            String v = request("basic-" + i, STARTS[i % STARTS.length] + (i % 3 == 0 ? "" : " " + i), extra);
            if (i % 10 == 9) { // pre-tokenized: token ids in (stories260k has 512), token ids out
                v = v.replaceFirst("\"prompt\":\"[^\"]*\"", "\"prompt\":[1," + (10 + i) + "," + (300 + i) + ",29]")
                        .replaceFirst("}$", ",\"return_token_ids\":true}");
            }
            values.add(bytes(v));
            input.add(EmbeddedKafka.KeyValue.of("key-" + i, v));
        }
        kafka.produce("basic-in", input);

        SamplingDefaults defaults = SamplingDefaults.of(SamplingParams.builder().maxTokens(12).build());
        StreamExecutionEnvironment env = PipelineTests.env(500, new Configuration());
        pipeline(kafka, "basic").deadLetterTopic("basic-dlq").samplingDefaults(defaults).build(env);
        env.execute("basic");

        List<ConsumerRecord<byte[], byte[]>> out = kafka.readAllCommitted("basic-out", WAIT);
        assertThat(kafka.readAllCommitted("basic-dlq", WAIT)).isEmpty();
        assertThat(out).hasSize(200);
        Map<String, JsonNode> expected = PipelineTests.soloResults(values, new RequestParser(defaults,
                RequestParser.DEFAULT_MAX_PROMPT_BYTES));
        Map<String, ConsumerRecord<byte[], byte[]>> byId = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : out) {
            String id = json(r.value()).get("id").asText();
            assertThat(byId.put(id, r)).as("duplicate %s", id).isNull();
            assertThat(text(r.key())).isEqualTo("key-" + id.substring("basic-".length()));
            assertThat(withoutTimings(r.value())).as(id).isEqualTo(expected.get(id));
            assertThat(json(r.value()).get("timings").get("total_ms").asDouble()).isPositive();
        }
        assertThat(byId).hasSize(200);
        // metadata is copied as written, 1.50 included
        assertThat(text(byId.get("basic-5").value())).endsWith(",\"metadata\":{\"n\": 5, \"tags\": [\"a\", 1.50]}}");
        assertThat(json(byId.get("basic-3").value()).get("logprobs")).isNotEmpty();
        JsonNode fromIds = json(byId.get("basic-19").value());
        assertThat(fromIds.get("usage").get("prompt_tokens").asInt()).isEqualTo(4);
        assertThat(fromIds.get("token_ids")).hasSize(fromIds.get("usage").get("completion_tokens").asInt());
        assertThat(json(byId.get("basic-18").value()).has("token_ids")).isFalse();
        assertThat(byId.values()).extracting(r -> json(r.value()).get("finish_reason").asText())
                .containsOnly("stop", "length").contains("stop", "length");
    }

    @Test
    void badInputBecomesDeadLettersWithItsCoordinatesAndTheJobGoesOn(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("bad-in", 2);
        kafka.createTopic("bad-out", 1);
        kafka.createTopic("bad-dlq", 1);
        String story = "Once upon a time there was a little girl named Lily who loved to play in the park. ";
        ByteArrayOutputStream invalidUtf8 = new ByteArrayOutputStream();
        invalidUtf8.writeBytes(bytes("{\"id\": \"bad-utf8\", \"prompt\": \"caf"));
        invalidUtf8.writeBytes(new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xFF});
        invalidUtf8.writeBytes(bytes("\"}"));
        // bad record -> expected code and id (null: unknown)
        record Bad(String name, byte[] value, ErrorCode code, String id) {}
        List<Bad> bad = List.of(
                new Bad("malformed", bytes("{\"id\": \"bad-json\", \"prompt\": \"x\""), ErrorCode.INVALID_JSON, null),
                new Bad("missing id", bytes("{\"prompt\": \"Once\"}"), ErrorCode.MISSING_FIELD, null),
                new Bad("missing prompt", bytes("{\"id\": \"bad-noprompt\", \"max_tokens\": 5}"), ErrorCode.MISSING_FIELD, "bad-noprompt"),
                new Bad("max_tokens string", bytes("{\"id\": \"bad-type\", \"prompt\": \"x\", \"max_tokens\": \"ten\"}"),
                        ErrorCode.INVALID_PARAM, "bad-type"),
                new Bad("temperature string", bytes("{\"id\": \"bad-hot\", \"prompt\": \"x\", \"temperature\": \"hot\"}"),
                        ErrorCode.INVALID_PARAM, "bad-hot"),
                new Bad("prompt number", bytes("{\"id\": \"bad-num\", \"prompt\": 42}"), ErrorCode.INVALID_PARAM, "bad-num"),
                new Bad("negative max_tokens", bytes("{\"id\": \"bad-neg\", \"prompt\": \"x\", \"max_tokens\": -5,"
                        + " \"metadata\": {\"trace\": \"t-1\"}}"), ErrorCode.INVALID_PARAM, "bad-neg"),
                new Bad("NaN temperature", bytes("{\"id\": \"bad-nan\", \"prompt\": \"x\", \"temperature\": NaN}"),
                        ErrorCode.INVALID_JSON, null),
                new Bad("longer than the context", bytes(request("bad-ctx", story.repeat(30), Map.of())),
                        ErrorCode.PROMPT_TOO_LONG, "bad-ctx"),
                new Bad("invalid UTF-8", invalidUtf8.toByteArray(), ErrorCode.INVALID_JSON, null),
                new Bad("1 MiB prompt", bytes(request("bad-huge", "a".repeat(1 << 20), Map.of())),
                        ErrorCode.PROMPT_TOO_LONG, "bad-huge"),
                new Bad("empty record", new byte[0], ErrorCode.INVALID_JSON, null),
                new Bad("tombstone", null, ErrorCode.INVALID_JSON, null),
                new Bad("array", bytes("[{\"id\": \"bad-arr\", \"prompt\": \"x\"}]"), ErrorCode.INVALID_JSON, null),
                new Bad("prompt and messages", bytes("{\"id\": \"bad-both\", \"prompt\": \"x\", \"messages\": []}"),
                        ErrorCode.INVALID_PARAM, "bad-both"),
                new Bad("messages without a chat template", bytes("{\"id\": \"bad-chat\", \"messages\": "
                        + "[{\"role\": \"user\", \"content\": \"hi\"}]}"), ErrorCode.INVALID_PARAM, "bad-chat"),
                new Bad("stop token outside the vocabulary", bytes("{\"id\": \"bad-stop\", \"prompt\": \"x\", "
                        + "\"stop_token_ids\": [99999]}"), ErrorCode.INVALID_PARAM, "bad-stop"),
                new Bad("prompt token outside the vocabulary", bytes("{\"id\": \"bad-vocab\", \"prompt\": [1, 512]}"),
                        ErrorCode.INVALID_PARAM, "bad-vocab"),
                new Bad("prompt token ids of the wrong type", bytes("{\"id\": \"bad-ids\", \"prompt\": [1, \"2\"]}"),
                        ErrorCode.INVALID_PARAM, "bad-ids"));
        List<EmbeddedKafka.KeyValue> input = new ArrayList<>();
        for (int i = 0; i < bad.size(); i++) {
            input.add(new EmbeddedKafka.KeyValue(bytes("bad-" + i), bad.get(i).value()));
            for (int j = 0; j < 2; j++) { // good prompts between the bad ones
                String id = "good-" + (2 * i + j);
                input.add(EmbeddedKafka.KeyValue.of(id, request(id, STARTS[(i + j) % STARTS.length], Map.of("max_tokens", "10"))));
            }
        }
        List<RecordMetadata> written = kafka.produce("bad-in", input);

        StreamExecutionEnvironment env = PipelineTests.env(500, new Configuration());
        pipeline(kafka, "bad").deadLetterTopic("bad-dlq").build(env);
        env.execute("bad input");

        List<ConsumerRecord<byte[], byte[]>> out = kafka.readAllCommitted("bad-out", WAIT);
        assertThat(out).extracting(r -> json(r.value()).get("id").asText())
                .containsExactlyInAnyOrderElementsOf(input.stream().map(kv -> text(kv.key())).filter(k -> k.startsWith("good-")).toList());
        assertThat(out).allSatisfy(r -> assertThat(json(r.value()).has("text")).isTrue());

        Map<String, JsonNode> errors = new HashMap<>();
        Map<String, ConsumerRecord<byte[], byte[]>> dlq = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : kafka.readAllCommitted("bad-dlq", WAIT)) {
            assertThat(errors.put(text(r.key()), json(r.value()))).isNull();
            dlq.put(text(r.key()), r);
        }
        assertThat(errors).hasSize(bad.size());
        for (int i = 0; i < bad.size(); i++) {
            Bad b = bad.get(i);
            JsonNode e = errors.get("bad-" + i);
            RecordMetadata at = written.get(3 * i);
            ConsumerRecord<byte[], byte[]> record = dlq.get("bad-" + i);
            assertThat(headers(record)).as(b.name()).containsEntry("__connect.errors.topic", "bad-in")
                    .containsEntry("__connect.errors.partition", Integer.toString(at.partition()))
                    .containsEntry("__connect.errors.offset", Long.toString(at.offset()))
                    .containsEntry("__connect.errors.exception.message", e.get("error").get("message").asText())
                    .containsEntry("xpuflow.error.code", b.code().name());
            assertThat(headers(record).get("xpuflow.request.id")).as(b.name()).isEqualTo(b.id());
            assertThat(recordSize(record)).isLessThanOrEqualTo(RecordSizeLimit.DEFAULT_MAX_REQUEST_SIZE);
            if (b.value() != null && !b.name().equals("invalid UTF-8")) {
                // the dead letter holds the request for a replay: all of it when it fits, else its start
                String sent = text(b.value());
                if (e.get("input_truncated").asBoolean()) {
                    assertThat(sent).as(b.name()).startsWith(e.get("input").asText());
                } else {
                    assertThat(e.get("input").asText()).as(b.name()).isEqualTo(sent);
                }
            }
            assertThat(e.get("error").get("code").asText()).as(b.name() + ": " + e).isEqualTo(b.code().name());
            assertThat(e.get("error").get("message").asText()).as(b.name()).isNotBlank();
            assertThat(e.get("id").isNull() ? null : e.get("id").asText()).as(b.name()).isEqualTo(b.id());
            assertThat(e.get("source").get("topic").asText()).isEqualTo("bad-in");
            assertThat(e.get("source").get("partition").asInt()).as(b.name()).isEqualTo(at.partition());
            assertThat(e.get("source").get("offset").asLong()).as(b.name()).isEqualTo(at.offset());
            assertThat(e.get("input_bytes").asInt()).isEqualTo(b.value() == null ? 0 : b.value().length);
        }
        assertThat(errors.get("bad-6").get("metadata").toString()).isEqualTo("{\"trace\":\"t-1\"}");
        assertThat(errors.get("bad-6").get("error").get("message").asText()).isEqualTo("'max_tokens' must be >= 1, was -5");
        assertThat(errors.get("bad-7").get("error").get("message").asText()).contains("NaN");
        assertThat(errors.get("bad-8").get("error").get("message").asText()).contains("max model length of 512");
        assertThat(errors.get("bad-9").get("input").asText()).contains("caf\uFFFD(\uFFFD");
        assertThat(errors.get("bad-10").get("input_truncated").asBoolean()).isTrue();
        assertThat(errors.get("bad-10").get("input").asText().length()).as("as much as fits, not 1 KiB").isGreaterThan(1_000_000);
        assertThat(errors.get("bad-3").get("input_truncated").asBoolean()).isFalse();
        assertThat(errors.get("bad-17").get("error").get("message").asText())
                .isEqualTo("request 'bad-vocab': prompt token 512 at position 1 is outside the vocabulary of 512");
    }

    static Map<String, String> headers(ConsumerRecord<byte[], byte[]> r) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Header h : r.headers()) {
            out.put(h.key(), text(h.value()));
        }
        return out;
    }

    /** The record's size as the producer counted it against max.request.size. */
    static long recordSize(ConsumerRecord<byte[], byte[]> r) {
        return RecordSizeLimit.size(r.key(), r.value(), r.headers().toArray());
    }

    /** Without a restart strategy, so that a record the sink cannot write fails the test instead of looping. */
    static Configuration noRestarts() {
        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        return conf;
    }

    @Test
    void aRequestWithAMegabyteOfMetadataBecomesABoundedErrorAndTheJobGoesOn(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("poison-in", 1);
        kafka.createTopic("poison-out", 1);
        kafka.createTopic("poison-dlq", 1);
        // echoed into its result, this metadata would make a record over the producer's 1 MiB max.request.size:
        // the sink would fail, the restart replay the request, and the sink fail again, forever
        String metadata = "{\"blob\": \"" + "m".repeat(1_050_000) + "\"}";
        String huge = request("poison-huge", "Once upon a time", Map.of("max_tokens", "4", "metadata", metadata));
        List<EmbeddedKafka.KeyValue> input = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            if (i == 2) {
                input.add(EmbeddedKafka.KeyValue.of("huge", huge));
            }
            input.add(EmbeddedKafka.KeyValue.of("good-" + i, request("good-" + i, STARTS[i], Map.of("max_tokens", "6"))));
        }
        List<RecordMetadata> written = kafka.produce("poison-in", input);

        StreamExecutionEnvironment env = PipelineTests.env(500, noRestarts());
        pipeline(kafka, "poison").deadLetterTopic("poison-dlq").build(env);
        env.execute("poison pill");

        assertThat(kafka.readAllCommitted("poison-out", WAIT)).extracting(r -> json(r.value()).get("id").asText())
                .containsExactlyInAnyOrder("good-0", "good-1", "good-2", "good-3");
        List<ConsumerRecord<byte[], byte[]>> dlq = kafka.readAllCommitted("poison-dlq", WAIT);
        assertThat(dlq).hasSize(1);
        ConsumerRecord<byte[], byte[]> r = dlq.get(0);
        assertThat(recordSize(r)).isLessThanOrEqualTo(RecordSizeLimit.DEFAULT_MAX_REQUEST_SIZE);
        JsonNode e = json(r.value());
        assertThat(e.get("id").asText()).isEqualTo("poison-huge");
        assertThat(e.get("error").get("code").asText()).isEqualTo("INVALID_PARAM");
        assertThat(e.get("error").get("message").asText()).isEqualTo("'metadata' is " + bytes(metadata).length
                + " bytes of JSON, more than the limit of 65536 (it is copied into the output record)");
        assertThat(e.has("metadata")).isFalse();
        assertThat(e.get("input_bytes").asInt()).isEqualTo(bytes(huge).length);
        assertThat(e.get("input_truncated").asBoolean()).isTrue();
        assertThat(huge).startsWith(e.get("input").asText());
        assertThat(headers(r)).containsEntry("__connect.errors.topic", "poison-in")
                .containsEntry("__connect.errors.partition", "0")
                .containsEntry("__connect.errors.offset", Long.toString(written.get(2).offset()))
                .containsEntry("xpuflow.error.code", "INVALID_PARAM")
                .containsEntry("xpuflow.request.id", "poison-huge");
    }

    /** A record's headers as key=value text, in order, duplicates kept. */
    static List<String> headerList(ConsumerRecord<byte[], byte[]> r) {
        List<String> out = new ArrayList<>();
        for (Header h : r.headers()) {
            out.add(h.key() + "=" + (h.value() == null ? "null" : text(h.value())));
        }
        return out;
    }

    @Test
    void inputHeadersReachResultsAndDeadLettersAndResultsNameTheirModel(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("hdr-in", 1);
        kafka.createTopic("hdr-out", 1);
        kafka.createTopic("hdr-dlq", 1);
        // headers named like the connector's own must not come through: a consumer of the dead letters would
        // read an error code, a source or a model the input made up
        KafkaHeader[] spoofs = {KafkaHeader.of("xpuflow.error.code", "SPOOFED"), KafkaHeader.of("xpuflow.model", "spoofed"),
                KafkaHeader.of("__connect.errors.topic", "spoofed")};
        List<EmbeddedKafka.KeyValue> input = List.of(
                EmbeddedKafka.KeyValue.of("good", request("hdr-good", STARTS[0], Map.of("max_tokens", "4"))).withHeaders(
                        KafkaHeader.of("traceparent", "00-t1-01"), spoofs[0], new KafkaHeader("empty", null),
                        spoofs[1], KafkaHeader.of("traceparent", "00-t2-01"), spoofs[2]),
                EmbeddedKafka.KeyValue.of("bad", "not json").withHeaders(
                        KafkaHeader.of("correlation-id", "c-2"), spoofs[0], KafkaHeader.of("tenant", "t")),
                // 1.1 MB of headers: with them, no record fits the sink's default 1 MiB max.request.size
                EmbeddedKafka.KeyValue.of("big", request("hdr-big", STARTS[1], Map.of("max_tokens", "4"))).withHeaders(
                        KafkaHeader.of("correlation-id", "c-3"), KafkaHeader.of("blob", "b".repeat(1_100_000))),
                EmbeddedKafka.KeyValue.of("big-bad", "not json either").withHeaders(
                        KafkaHeader.of("blob", "b".repeat(1_100_000))));
        List<RecordMetadata> written = kafka.produce("hdr-in", input);

        StreamExecutionEnvironment env = PipelineTests.env(500, noRestarts());
        pipeline(kafka, "hdr").deadLetterTopic("hdr-dlq").build(env);
        env.execute("headers");

        String model = java.nio.file.Path.of(PipelineTests.SPEC.modelPath()).getFileName().toString();
        assertThat(model).isEqualTo("stories260k");
        List<ConsumerRecord<byte[], byte[]>> results = kafka.readAllCommitted("hdr-out", WAIT);
        assertThat(results).hasSize(1);
        ConsumerRecord<byte[], byte[]> result = results.get(0);
        assertThat(json(result.value()).get("id").asText()).isEqualTo("hdr-good");
        assertThat(json(result.value()).get("model").asText()).isEqualTo(model);
        assertThat(headerList(result)).containsExactly("traceparent=00-t1-01", "empty=null", "traceparent=00-t2-01",
                "xpuflow.model=" + model);

        Map<String, ConsumerRecord<byte[], byte[]>> dlq = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : kafka.readAllCommitted("hdr-dlq", WAIT)) {
            dlq.put(text(r.key()), r);
        }
        assertThat(dlq).containsOnlyKeys("bad", "big", "big-bad");
        ConsumerRecord<byte[], byte[]> bad = dlq.get("bad");
        assertThat(json(bad.value()).get("error").get("code").asText()).isEqualTo("INVALID_JSON");
        assertThat(headerList(bad)).startsWith("correlation-id=c-2", "tenant=t", "__connect.errors.topic=hdr-in",
                "__connect.errors.partition=0", "__connect.errors.offset=" + written.get(1).offset());
        assertThat(headers(bad)).containsEntry("xpuflow.error.code", "INVALID_JSON")
                .containsKey("__connect.errors.exception.message").doesNotContainValue("SPOOFED");
        assertThat(headerList(bad)).filteredOn(h -> h.startsWith("xpuflow.error.code=")).hasSize(1);

        // huge headers: a bounded error instead of a record the producer refuses, without the input's headers
        for (String key : List.of("big", "big-bad")) {
            ConsumerRecord<byte[], byte[]> r = dlq.get(key);
            assertThat(recordSize(r)).as(key).isLessThanOrEqualTo(RecordSizeLimit.DEFAULT_MAX_REQUEST_SIZE);
            assertThat(headers(r)).as(key).doesNotContainKeys("blob", "correlation-id")
                    .containsEntry("__connect.errors.offset", Long.toString(written.get(key.equals("big") ? 2 : 3).offset()));
        }
        assertThat(json(dlq.get("big").value()).get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(headers(dlq.get("big"))).containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE")
                .containsEntry("xpuflow.request.id", "hdr-big");
        assertThat(headers(dlq.get("big-bad"))).containsEntry("xpuflow.error.code", "INVALID_JSON");
    }

    @Test
    void outputsOverASmallMaxRequestSizeBecomeBoundedErrors(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("small-in", 1);
        kafka.createTopic("small-out", 1);
        kafka.createTopic("small-dlq", 1);
        int limit = 16 * 1024;
        String meta = request("small-meta", "The little dog", Map.of("max_tokens", "4",
                "metadata", "{\"note\": \"" + "n".repeat(20_000) + "\"}")); // under the 64 KiB cap, over the record limit
        String logprobs = request("small-logprobs", "Once upon a time", Map.of("max_tokens", "100", "logprobs", "20",
                "ignore_eos", "true"));
        String badParam = request("small-bad", "p".repeat(30_000), Map.of("max_tokens", "-1"));
        List<EmbeddedKafka.KeyValue> input = List.of(
                EmbeddedKafka.KeyValue.of("a", request("small-0", STARTS[0], Map.of("max_tokens", "6"))),
                EmbeddedKafka.KeyValue.of("b", meta),
                EmbeddedKafka.KeyValue.of("c", logprobs),
                EmbeddedKafka.KeyValue.of("d", badParam),
                EmbeddedKafka.KeyValue.of("e", request("small-1", STARTS[1], Map.of("max_tokens", "6"))));
        kafka.produce("small-in", input);

        StreamExecutionEnvironment env = PipelineTests.env(500, noRestarts());
        pipeline(kafka, "small").deadLetterTopic("small-dlq").sinkProperty("max.request.size", Integer.toString(limit))
                .build(env);
        env.execute("small max.request.size");

        assertThat(kafka.readAllCommitted("small-out", WAIT)).extracting(r -> json(r.value()).get("id").asText())
                .containsExactlyInAnyOrder("small-0", "small-1");
        Map<String, ConsumerRecord<byte[], byte[]>> dlq = new HashMap<>();
        kafka.readAllCommitted("small-dlq", WAIT).forEach(r -> dlq.put(text(r.key()), r));
        assertThat(dlq).containsOnlyKeys("b", "c", "d");
        dlq.values().forEach(r -> assertThat(recordSize(r)).isLessThanOrEqualTo(limit));

        JsonNode tooLargeMeta = json(dlq.get("b").value());
        assertThat(tooLargeMeta.get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(tooLargeMeta.get("id").asText()).isEqualTo("small-meta");
        assertThat(meta).startsWith(tooLargeMeta.get("input").asText());
        assertThat(headers(dlq.get("b"))).containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE");

        JsonNode tooLargeResult = json(dlq.get("c").value());
        assertThat(tooLargeResult.get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(tooLargeResult.get("error").get("message").asText()).startsWith("the result is ")
                .contains("more than the producer's limit of " + limit);
        assertThat(tooLargeResult.get("input").asText()).as("small enough to replay as is").isEqualTo(logprobs);

        JsonNode invalid = json(dlq.get("d").value());
        assertThat(invalid.get("error").get("code").asText()).isEqualTo("INVALID_PARAM");
        assertThat(invalid.get("input_truncated").asBoolean()).isTrue();
        assertThat(badParam).startsWith(invalid.get("input").asText());
        assertThat(invalid.get("input").asText().length()).isGreaterThan(limit / 2);
    }

    @Test
    void theSinkReplacesARecordThatStillDoesNotFitWithASmallError(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("sinkonly-out", 1);
        kafka.createTopic("sinkonly-dlq", 1);
        // records from a mapper of one's own, which does not check sizes: the sink is the last line of defence
        byte[] huge = new byte[2 << 20];
        java.util.Arrays.fill(huge, (byte) 'x');
        KafkaInferencePipeline p = pipeline(kafka, "sinkonly").deadLetterTopic("sinkonly-dlq").build();
        StreamExecutionEnvironment env = PipelineTests.env(500, noRestarts());
        env.setParallelism(1);
        env.fromData(OutputRecord.result(bytes("a"), bytes("{\"id\": \"fits\"}"), "fits"),
                        OutputRecord.result(bytes("b"), huge, "huge"),
                        OutputRecord.result(bytes("c"), bytes("{\"id\": \"after\"}"), "after"))
                .returns(TypeInformation.of(OutputRecord.class))
                .sinkTo(p.sink());
        env.execute("sink fallback");

        assertThat(kafka.readAllCommitted("sinkonly-out", WAIT)).extracting(r -> text(r.key())).containsExactly("a", "c");
        List<ConsumerRecord<byte[], byte[]>> dlq = kafka.readAllCommitted("sinkonly-dlq", WAIT);
        assertThat(dlq).hasSize(1);
        JsonNode e = json(dlq.get(0).value());
        assertThat(text(dlq.get(0).key())).isEqualTo("b");
        assertThat(e.get("id").asText()).isEqualTo("huge");
        assertThat(e.get("error").get("code").asText()).isEqualTo("OUTPUT_TOO_LARGE");
        assertThat(e.get("error").get("message").asText()).startsWith("the result is 2097");
        assertThat(headers(dlq.get(0))).containsEntry("xpuflow.error.code", "OUTPUT_TOO_LARGE")
                .containsEntry("xpuflow.request.id", "huge");
    }

    @Test
    void withoutADeadLetterTopicErrorsGoToTheOutputTopic(EmbeddedKafka kafka) throws Exception {
        kafka.createTopic("nodlq-in", 1);
        kafka.createTopic("nodlq-out", 1);
        kafka.produce("nodlq-in", List.of(EmbeddedKafka.KeyValue.of("a", request("ok-1", "Once upon a time", Map.of())),
                EmbeddedKafka.KeyValue.of("b", "not json"),
                EmbeddedKafka.KeyValue.of("c", request("ok-2", "The little dog", Map.of("max_tokens", "4")))));
        StreamExecutionEnvironment env = PipelineTests.env(0, new Configuration());
        pipeline(kafka, "nodlq").deliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE).build(env);
        env.execute("no dead-letter topic");

        Map<String, JsonNode> byKey = new HashMap<>();
        kafka.readAllCommitted("nodlq-out", WAIT).forEach(r -> byKey.put(text(r.key()), json(r.value())));
        assertThat(byKey).containsOnlyKeys("a", "b", "c");
        assertThat(byKey.get("a").get("id").asText()).isEqualTo("ok-1");
        assertThat(byKey.get("b").get("error").get("code").asText()).isEqualTo("INVALID_JSON");
        assertThat(byKey.get("b").get("input").asText()).isEqualTo("not json");
        assertThat(byKey.get("c").get("usage").get("completion_tokens").asInt()).isLessThanOrEqualTo(4);
    }

    /**
     * The source commits its offsets to the consumer group soon after each checkpoint, also while a slow
     * operator holds it back: with Kafka's default of 500 records per poll the commit waited until the
     * reader had drained a whole batch of prompts (minutes for a real model), and a job killed meanwhile
     * left the group without offsets, although its outputs were committed.
     */
    @Test
    void offsetsReachTheConsumerGroupSoonAfterACheckpointWhileTheOperatorIsBusy(EmbeddedKafka kafka) throws Exception {
        int prompts = 300;
        kafka.createTopic("commit-in", 1);
        kafka.createTopic("commit-out", 1);
        List<EmbeddedKafka.KeyValue> input = new ArrayList<>();
        for (int i = 0; i < prompts; i++) {
            input.add(EmbeddedKafka.KeyValue.of("k" + i, request("commit-" + i, STARTS[i % STARTS.length],
                    Map.of("max_tokens", "400", "ignore_eos", "true"))));
        }
        kafka.produce("commit-in", input);
        StreamExecutionEnvironment env = PipelineTests.env(200, new Configuration());
        env.setParallelism(1);
        // streaming and two prompts at a time: the source is backpressured for the whole run
        pipeline(kafka, "commit").bounded(false).asyncCapacity(2).build(env);
        JobClient job = env.executeAsync("offset commits");
        try {
            assertThat(kafka.readCommitted("commit-out", 1, WAIT)).as("first output committed").isNotEmpty();
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            Map<TopicPartition, Long> committed = kafka.committedOffsets("commit");
            while (committed.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(100);
                committed = kafka.committedOffsets("commit");
            }
            int outputs = kafka.readAllCommitted("commit-out", WAIT).size();
            assertThat(committed).as("offsets committed by the source within 10 s of the first output (%d outputs)",
                    outputs).isNotEmpty();
            assertThat(committed.values()).allSatisfy(o -> assertThat(o).isPositive());
            assertThat(outputs).as("the job is still busy").isLessThan(prompts / 2);
        } finally {
            job.cancel().get();
        }
    }
}
