package io.xpuflow.connector.records;

import com.fasterxml.jackson.core.JsonGenerator;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.runtime.engine.GenerationResult;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;

/**
 * Writes result and error records as UTF-8 JSON.
 *
 * <p>Result:
 * <pre>{@code
 * {"id": "r-17", "text": "...", "finish_reason": "stop",
 *  "usage": {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17,
 *            "draft_tokens": 8, "accepted_tokens": 6},
 *  "timings": {"queue_ms": 0.4, "ttft_ms": 3.1, "tpot_ms": 0.9, "total_ms": 13.2},
 *  "token_ids": [450, 2217, ...],
 *  "logprobs": [{"token_id": 42, "logprob": -0.12, "top": [{"token_id": 42, "logprob": -0.12}, ...]}, ...],
 *  "metadata": {"user": 42}}
 * }</pre>
 * {@code finish_reason} is {@code stop} (end of sequence, a stop string or token) or {@code length}
 * ({@code max_tokens} or the model's context); {@code token_ids} (the generated tokens, a matched stop
 * string's included) appears only when the request set {@code "return_token_ids": true},
 * {@code logprobs} only when the request asked for it ({@code "logprobs": n > 0}, n alternatives per
 * token), {@code metadata} only when the request had one, copied byte for byte. Timings are wall-clock
 * milliseconds: waiting before the first engine step, to the first token, mean per token after it, and in
 * all; they are the only part of a result that differs when the same request is generated twice.
 *
 * <p>Error:
 * <pre>{@code
 * {"id": "r-18", "error": {"code": "INVALID_PARAM", "message": "'max_tokens' must be >= 1, was -5"},
 *  "input": "{\"id\": \"r-18\", ...", "input_bytes": 41, "input_truncated": false,
 *  "source": {"topic": "prompts", "partition": 0, "offset": 1234}, "metadata": {...}}
 * }</pre>
 * {@code id} is null when the input had no readable id. {@code input} is the record's value decoded as
 * UTF-8 (malformed bytes become U+FFFD), so the request can be fixed and replayed from the dead letter;
 * it is cut at a character boundary to at most {@code maxInputBytes} bytes and, by
 * {@link #error(String, ErrorCode, String, byte[], SourceCoordinates, String, int)}, to what fits the
 * record's byte budget (the Kafka producer's {@code max.request.size} less the record's overhead). It is
 * null for a record without value. {@code metadata} is copied when the input was a JSON object with one
 * and the record has room for it.
 *
 * <p>{@link #outputTooLarge} writes the small record that stands in for one that does not fit at all.
 */
public final class ResponseWriter implements Serializable {
    private static final long serialVersionUID = 1L;

    /**
     * Default cap on the input echoed in an error record: none of its own, the record's byte budget
     * decides, so a dead letter keeps the whole request whenever the producer can send it.
     */
    public static final int DEFAULT_MAX_INPUT_BYTES = Integer.MAX_VALUE;

    /** At most this many tries to cut an input echo to the budget (each one shorter by the overshoot). */
    private static final int FIT_TRIES = 8;

    private final int maxInputBytes;

    /** @param maxInputBytes most bytes of the original input copied into an error record */
    public ResponseWriter(int maxInputBytes) {
        if (maxInputBytes < 0) {
            throw new IllegalArgumentException("max input bytes must be >= 0, was " + maxInputBytes);
        }
        this.maxInputBytes = maxInputBytes;
    }

    public ResponseWriter() {
        this(DEFAULT_MAX_INPUT_BYTES);
    }

    public int maxInputBytes() {
        return maxInputBytes;
    }

    /**
     * @param echo what the request asked to have copied or added (see {@link RequestParser#echo})
     */
    public byte[] result(GenerationResult r, RequestParser.Echo echo) {
        return result(r, echo, null);
    }

    /**
     * @param echo what the request asked to have copied or added (see {@link RequestParser#echo})
     * @param model the name of the model that generated it, written as {@code model}; null leaves the field out
     */
    public byte[] result(GenerationResult r, RequestParser.Echo echo, String model) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + r.text().length() * 2);
        try (JsonGenerator g = Json.FACTORY.createGenerator(out)) {
            g.writeStartObject();
            g.writeStringField("id", r.id());
            if (model != null) {
                g.writeStringField("model", model);
            }
            g.writeStringField("text", r.text());
            g.writeStringField("finish_reason", r.finishReason().wireName());
            g.writeObjectFieldStart("usage");
            g.writeNumberField("prompt_tokens", r.usage().promptTokens());
            g.writeNumberField("completion_tokens", r.usage().completionTokens());
            g.writeNumberField("total_tokens", r.usage().promptTokens() + r.usage().completionTokens());
            g.writeNumberField("draft_tokens", r.usage().draftTokens());
            g.writeNumberField("accepted_tokens", r.usage().acceptedTokens());
            g.writeEndObject();
            g.writeObjectFieldStart("timings");
            g.writeNumberField("queue_ms", millis(r.timings().queueMs()));
            g.writeNumberField("ttft_ms", millis(r.timings().timeToFirstTokenMs()));
            g.writeNumberField("tpot_ms", millis(r.timings().timePerOutputTokenMs()));
            g.writeNumberField("total_ms", millis(r.timings().totalMs()));
            g.writeEndObject();
            if (echo.returnTokenIds()) {
                int[] ids = r.tokenIds();
                g.writeFieldName("token_ids");
                g.writeArray(ids, 0, ids.length);
            }
            if (!r.logprobs().isEmpty()) {
                g.writeArrayFieldStart("logprobs");
                for (GenerationResult.TokenLogprob t : r.logprobs()) {
                    g.writeStartObject();
                    g.writeNumberField("token_id", t.tokenId());
                    g.writeNumberField("logprob", t.logprob());
                    g.writeArrayFieldStart("top");
                    for (int i = 0; i < t.topIds().length; i++) {
                        g.writeStartObject();
                        g.writeNumberField("token_id", t.topIds()[i]);
                        g.writeNumberField("logprob", t.topLogprobs()[i]);
                        g.writeEndObject();
                    }
                    g.writeEndArray();
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            if (echo.rawMetadata() != null) {
                g.writeFieldName("metadata");
                g.writeRawValue(echo.rawMetadata());
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the result of " + r.id(), e); // not for a byte array
        }
        return out.toByteArray();
    }

    /**
     * An error record without a byte budget: the input is cut to {@link #maxInputBytes()} only.
     *
     * @param requestId the request's id, or null when it could not be read
     * @param input the record's value as received (may be null or invalid UTF-8)
     * @param rawMetadata the request's metadata JSON as written, or null
     */
    public byte[] error(String requestId, ErrorCode code, String message, byte[] input, SourceCoordinates source,
                        String rawMetadata) {
        return write(requestId, code, message, input, maxInputBytes, source, rawMetadata);
    }

    /**
     * An error record of at most {@code maxBytes} bytes where that is possible: the input echo is cut
     * further until the record fits, then the metadata is left out, then the input. Larger only when even
     * the bare record (id, code, message, source) is larger; {@link #outputTooLarge} is for that case.
     */
    public byte[] error(String requestId, ErrorCode code, String message, byte[] input, SourceCoordinates source,
                        String rawMetadata, int maxBytes) {
        byte[] out = write(requestId, code, message, input, maxInputBytes, source, rawMetadata);
        if (out.length <= maxBytes || input == null) {
            return out.length <= maxBytes || rawMetadata == null ? out
                    : write(requestId, code, message, null, 0, source, null);
        }
        // room for the input: what the record takes without it; metadata goes first if even that is too much
        String metadata = rawMetadata;
        int base = write(requestId, code, message, input, 0, source, metadata).length;
        if (base > maxBytes && metadata != null) {
            metadata = null;
            base = write(requestId, code, message, input, 0, source, null).length;
        }
        if (base > maxBytes) {
            return write(requestId, code, message, input, 0, source, null);
        }
        // escaping makes the echo longer than the bytes it copies (up to 6x for control characters), so cut,
        // measure and cut again by the overshoot; each try is shorter, the last one copies nothing
        long room = maxBytes - base;
        int take = (int) Math.min(Math.min(maxInputBytes, input.length), room);
        for (int i = 0; i < FIT_TRIES && take > 0; i++) {
            out = write(requestId, code, message, input, take, source, metadata);
            if (out.length <= maxBytes) {
                return out;
            }
            long echoed = out.length - base;
            take = (int) (take * (double) room / echoed) - 8;
        }
        return write(requestId, code, message, input, 0, source, metadata);
    }

    /**
     * The record that replaces an output too large for Kafka: an {@link ErrorCode#OUTPUT_TOO_LARGE} error
     * with the id (when it is short), the source and a message with both sizes, no input and no metadata;
     * a few hundred bytes.
     *
     * @param what what did not fit ("the result", "the error record")
     * @param bytes its size as a Kafka record
     * @param limit the largest record the producer accepts
     */
    public static byte[] outputTooLarge(String requestId, String what, long bytes, long limit, SourceCoordinates source) {
        String id = requestId != null && Json.utf8Length(requestId) <= RequestParser.MAX_ID_BYTES ? requestId : null;
        String message = what + " is " + bytes + " bytes as a Kafka record, more than the producer's limit of " + limit
                + " (max.request.size)";
        return new ResponseWriter(0).write(id, ErrorCode.OUTPUT_TOO_LARGE, message, null, 0, source, null);
    }

    private byte[] write(String requestId, ErrorCode code, String message, byte[] input, int inputCap,
                         SourceCoordinates source, String rawMetadata) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + (int) Math.min(1 << 20,
                (long) Math.min(inputCap, input == null ? 0 : input.length) * 2));
        try (JsonGenerator g = Json.FACTORY.createGenerator(out)) {
            g.writeStartObject();
            g.writeStringField("id", requestId);
            g.writeObjectFieldStart("error");
            g.writeStringField("code", code.name());
            g.writeStringField("message", message);
            g.writeEndObject();
            if (input == null) {
                g.writeNullField("input");
                g.writeNumberField("input_bytes", 0);
                g.writeBooleanField("input_truncated", false);
            } else {
                int n = cutAtCharBoundary(input, inputCap);
                g.writeStringField("input", Json.decodeLossy(input, 0, n));
                g.writeNumberField("input_bytes", input.length);
                g.writeBooleanField("input_truncated", n < input.length);
            }
            if (source != null) {
                g.writeObjectFieldStart("source");
                g.writeStringField("topic", source.topic());
                g.writeNumberField("partition", source.partition());
                g.writeNumberField("offset", source.offset());
                g.writeEndObject();
            }
            if (rawMetadata != null) {
                g.writeFieldName("metadata");
                g.writeRawValue(rawMetadata);
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the error record of " + requestId, e);
        }
        return out.toByteArray();
    }

    /** At most {@code max} bytes, not ending inside a UTF-8 sequence (so the cut adds no U+FFFD). */
    static int cutAtCharBoundary(byte[] bytes, int max) {
        if (bytes.length <= max) {
            return bytes.length;
        }
        int n = max;
        // step back over continuation bytes (10xxxxxx), at most 3, to the start of the cut character
        int back = 0;
        while (n > 0 && back < 3 && (bytes[n] & 0xC0) == 0x80) {
            n--;
            back++;
        }
        return n;
    }

    private static double millis(double ms) {
        return Math.round(ms * 1000) / 1000.0;
    }
}
