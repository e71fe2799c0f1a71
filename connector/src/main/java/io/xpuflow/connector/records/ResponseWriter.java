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
 *  "usage": {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17},
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
 * UTF-8 (malformed bytes become U+FFFD), cut at a character boundary to at most
 * {@code maxInputBytes} bytes, so a dead-letter record stays small whatever was sent; it is null for a
 * record without value. {@code metadata} is copied when the input was a JSON object with one.
 */
public final class ResponseWriter implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Default cap on the input echoed in an error record: 1 KiB. */
    public static final int DEFAULT_MAX_INPUT_BYTES = 1024;

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
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + r.text().length() * 2);
        try (JsonGenerator g = Json.FACTORY.createGenerator(out)) {
            g.writeStartObject();
            g.writeStringField("id", r.id());
            g.writeStringField("text", r.text());
            g.writeStringField("finish_reason", r.finishReason().wireName());
            g.writeObjectFieldStart("usage");
            g.writeNumberField("prompt_tokens", r.usage().promptTokens());
            g.writeNumberField("completion_tokens", r.usage().completionTokens());
            g.writeNumberField("total_tokens", r.usage().promptTokens() + r.usage().completionTokens());
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
     * @param requestId the request's id, or null when it could not be read
     * @param input the record's value as received (may be null or invalid UTF-8)
     * @param rawMetadata the request's metadata JSON as written, or null
     */
    public byte[] error(String requestId, ErrorCode code, String message, byte[] input, SourceCoordinates source,
                        String rawMetadata) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + Math.min(maxInputBytes, input == null ? 0 : input.length) * 2);
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
                int n = cutAtCharBoundary(input, maxInputBytes);
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
