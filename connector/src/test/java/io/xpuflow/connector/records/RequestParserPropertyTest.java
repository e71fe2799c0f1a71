package io.xpuflow.connector.records;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.DeadLetterHeaders;
import io.xpuflow.connector.kafka.JsonResultMapper;
import io.xpuflow.connector.kafka.OutputRecord;
import io.xpuflow.connector.kafka.PromptRecord;
import io.xpuflow.connector.kafka.RecordSizeLimit;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.FinishReason;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.Size;

/**
 * Property-based tests of the request parser and what the Kafka pipeline writes for its outcome: whatever
 * bytes arrive, the parser gives a request or an {@link InvalidInputException} with a code and a message,
 * never another exception (which would be reported as a bug, or with the wrong code), and the output record
 * of either stays within the producer's limit. Tries are bounded (see {@code junit-platform.properties}).
 */
class RequestParserPropertyTest {
    static final ObjectMapper JSON = new ObjectMapper();
    /** A small prompt limit, so that PROMPT_TOO_LONG is reached too. */
    static final RequestParser PARSER = new RequestParser(SamplingDefaults.ENGINE, 200);
    static final RecordSizeLimit LIMIT = new RecordSizeLimit(4096);
    static final JsonResultMapper MAPPER = new JsonResultMapper(new ResponseWriter(), LIMIT);

    /** The outcome of parsing: a request, or an error with its code; anything else fails the property. */
    record Outcome(GenerationRequest request, InvalidInputException error) {}

    static Outcome parse(byte[] value) {
        try {
            GenerationRequest r = PARSER.parse(value);
            assertThat(r).isNotNull();
            assertThat(r.id()).isNotBlank();
            return new Outcome(r, null);
        } catch (InvalidInputException e) {
            assertThat(e.code()).isNotNull();
            assertThat(e.getMessage()).isNotBlank();
            return new Outcome(null, e);
        }
    }

    /** Parses, then writes the output record the pipeline would write; checks it is JSON and fits. */
    static Outcome parseAndWrite(byte[] value) throws Exception {
        Outcome o = parse(value);
        PromptRecord in = new PromptRecord("in", 0, 1L, new byte[] {'k'}, value);
        OutputRecord out;
        if (o.error() != null) {
            out = MAPPER.onError(in, o.error().requestId(), o.error().code(), o.error().getMessage());
            assertThat(out.failure().code()).isEqualTo(o.error().code());
        } else {
            out = MAPPER.onResult(in, new GenerationResult(o.request().id(), "text", new int[] {1}, FinishReason.STOP,
                    new GenerationResult.Usage(1, 1, 0, 0, new int[] {1}, 0), new GenerationResult.Timings(0, 0, 0, 0),
                    List.of()));
        }
        var headers = out.failure() == null ? null : DeadLetterHeaders.of(out.failure(), out.requestId());
        assertThat(LIMIT.fits(out.key(), out.value(), headers)).as("record of %d bytes", out.value().length).isTrue();
        JsonNode n = JSON.readTree(out.value());
        if (o.request() != null && out.kind() == OutputRecord.Kind.RESULT) {
            // the id in the output is the id that was sent: no two requests share an output id
            assertThat(n.get("id").asText()).isEqualTo(o.request().id());
        }
        return o;
    }

    @Property(tries = 400)
    void anyBytesGiveARequestOrACodedError(@ForAll @Size(max = 300) byte[] value) throws Exception {
        parseAndWrite(value);
    }

    @Property(tries = 400)
    void anyJsonDocumentGivesARequestOrACodedError(@ForAll("requests") String doc) throws Exception {
        Outcome first = parseAndWrite(doc.getBytes(StandardCharsets.UTF_8));
        // and the same one each time: a replay after a failover meets the same outcome
        Outcome again = parse(doc.getBytes(StandardCharsets.UTF_8));
        if (first.error() != null) {
            assertThat(again.error()).isNotNull();
            assertThat(again.error().code()).isEqualTo(first.error().code());
            assertThat(again.error().getMessage()).isEqualTo(first.error().getMessage());
        } else {
            assertThat(again.request().id()).isEqualTo(first.request().id());
            assertThat(again.request().sampling()).isEqualTo(first.request().sampling());
        }
    }

    @Property(tries = 300)
    void mutatedRequestsGiveARequestOrACodedError(@ForAll("requests") String doc, @ForAll int at,
                                                  @ForAll byte replacement, @ForAll boolean cut) throws Exception {
        byte[] b = doc.getBytes(StandardCharsets.UTF_8);
        int i = Math.floorMod(at, b.length);
        byte[] mutated = cut ? java.util.Arrays.copyOf(b, i) : b.clone();
        if (!cut) {
            mutated[i] = replacement;
        }
        parseAndWrite(mutated);
    }

    @Property(tries = 300)
    void anIdIsReadAsSentOrRefused(@ForAll("strings") String id) throws Exception {
        Outcome o = parseAndWrite(("{\"id\": " + quote(id) + ", \"prompt\": \"x\"}").getBytes(StandardCharsets.UTF_8));
        if (o.request() != null) {
            assertThat(o.request().id()).isEqualTo(id);
        } else {
            // refused only for a reason: blank, too long, or not proper UTF-16 (a lone surrogate)
            assertThat(o.error().code()).isIn(ErrorCode.INVALID_PARAM, ErrorCode.INVALID_JSON);
        }
    }

    // ---- generators ----

    static final List<String> FIELDS = List.of("id", "prompt", "messages", "max_tokens", "min_tokens", "temperature",
            "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty", "stop",
            "stop_token_ids", "seed", "logprobs", "ignore_eos", "return_token_ids", "metadata", "n", "best_of", "stream",
            "response_format", "guided_json", "model", "role", "content");

    @Provide
    Arbitrary<String> strings() {
        // any UTF-16 unit, lone surrogates included (written as \\u escapes, the only way they fit in UTF-8 JSON)
        return Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.strings().ofMaxLength(12)),
                Tuple.of(2, Arbitraries.strings().withCharRange('\uD7F0', '\uE010').ofMaxLength(6)),
                Tuple.of(1, Arbitraries.of("", " ", "a", "r-1", "\u00e9", "\uD83C\uDF38", "\\", "\"")));
    }

    Arbitrary<String> scalar() {
        return Arbitraries.frequencyOf(
                Tuple.of(3, strings().map(RequestParserPropertyTest::quote)),
                Tuple.of(2, Arbitraries.integers().between(-3, 600).map(String::valueOf)),
                Tuple.of(1, Arbitraries.longs().map(String::valueOf)),
                Tuple.of(1, Arbitraries.of("0.5", "1.0", "10.0", "-0", "1e400", "-1e-400", "2.5", "1e3", "9223372036854775808",
                        "0.0000001", "1E2")),
                Tuple.of(1, Arbitraries.of("true", "false", "null")));
    }

    Arbitrary<String> value(int depth) {
        if (depth == 0) {
            return scalar();
        }
        Arbitrary<String> inner = value(depth - 1);
        return Arbitraries.frequencyOf(
                Tuple.of(4, scalar()),
                Tuple.of(1, inner.list().ofMaxSize(4).map(l -> "[" + String.join(",", l) + "]")),
                Tuple.of(1, member(inner).list().ofMaxSize(4).map(l -> "{" + String.join(",", l) + "}")));
    }

    Arbitrary<String> member(Arbitrary<String> value) {
        Arbitrary<String> key = Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.of(FIELDS)), Tuple.of(1, strings()));
        return Combinators.combine(key, value).as((k, v) -> quote(k) + ":" + v);
    }

    @Provide
    Arbitrary<String> requests() {
        Arbitrary<String> prompt = Arbitraries.frequencyOf(
                Tuple.of(3, strings().map(s -> "\"prompt\":" + quote(s))),
                Tuple.of(1, Arbitraries.integers().between(-1, 600).list().ofMaxSize(5).map(l -> "\"prompt\":" + l)),
                Tuple.of(1, Combinators.combine(Arbitraries.of("user", "system", "", "assistant"), strings())
                        .as((r, c) -> "{\"role\":" + quote(r) + ",\"content\":" + quote(c) + "}").list().ofMaxSize(3)
                        .map(l -> "\"messages\":[" + String.join(",", l) + "]")),
                Tuple.of(1, Arbitraries.just("")));
        Arbitrary<String> id = Arbitraries.frequencyOf(Tuple.of(4, strings().map(s -> "\"id\":" + quote("r" + s))),
                Tuple.of(1, scalar().map(v -> "\"id\":" + v)), Tuple.of(1, Arbitraries.just("")));
        Arbitrary<List<String>> more = member(value(2)).list().ofMaxSize(5);
        return Combinators.combine(id, prompt, more).as((i, p, m) -> {
            List<String> members = new ArrayList<>();
            if (!i.isEmpty()) {
                members.add(i);
            }
            if (!p.isEmpty()) {
                members.add(p);
            }
            members.addAll(m);
            return "{" + String.join(",", members) + "}";
        });
    }

    /** A JSON string literal; surrogates and control characters as backslash-u escapes. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || Character.isSurrogate(c)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
