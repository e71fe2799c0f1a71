package io.xpuflow.connector.sql;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.Map;
import java.util.Set;

/**
 * Per-row sampling options of {@code LLM_GENERATE(prompt, options_json)}: a JSON object with the
 * OpenAI / vLLM field names, applied over the function's defaults.
 *
 * <pre>{@code {"max_tokens": 32, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7,
 *  "stop": ["\n", "The end"], "presence_penalty": 0.5, "frequency_penalty": 0.5,
 *  "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": false}}</pre>
 *
 * <p>The fields are the options of {@link SamplingOptionDefs} that {@link Surface#OPTIONS_JSON} takes, read
 * as in a Kafka request ({@link RequestParser#readOptions}). {@code stop} may also be a single string; a JSON
 * {@code null} leaves the default. Unknown fields are rejected, with the nearest known name, as in a Kafka
 * request ({@link RequestParser#unknownField}), so a misspelt {@code max_token} is reported instead of
 * silently running with the default; {@code model}, {@code user} and {@code stream_options} are ignored; fields of OpenAI's API that are not implemented ({@code n}, {@code stream},
 * {@code response_format}, ...) are reported as such, and accepted only with their neutral value
 * ({@code "n": 1}), as in Kafka requests ({@link RequestParser#unsupported}). The JSON is read as strictly
 * as a Kafka request: no duplicate keys (which {@code max_tokens} was meant?), no trailing text, no
 * NaN, no number beyond a double, no unpaired surrogate escape in a stop string.
 */
public final class SamplingJson {
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .build();

    private SamplingJson() {}

    /**
     * @throws InvalidInputException {@link ErrorCode#INVALID_JSON} for text that is not a JSON object,
     *     {@link ErrorCode#INVALID_PARAM} for an unknown field, a wrong type or a value out of range
     */
    public static SamplingParams parse(String json, SamplingDefaults defaults) throws InvalidInputException {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null,
                    "options are not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "options must be a JSON object, got: "
                    + (root == null ? "nothing" : root.getNodeType().name().toLowerCase(java.util.Locale.ROOT)));
        }
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String unsupported = RequestParser.unsupported(field.getKey(), field.getValue());
            if (unsupported == null) {
                unsupported = RequestParser.unknownField(field.getKey(), Surface.OPTIONS_JSON, Set.of());
            }
            if (unsupported != null) {
                throw invalid(unsupported);
            }
        }
        try {
            Map<Option<?>, Object> values = RequestParser.readOptions(root, Surface.OPTIONS_JSON);
            Object stop = values.get(SamplingOptionDefs.STOP);
            if (stop != null) {
                for (String s : SamplingOptionDefs.STOP.cast(stop)) {
                    properText(SamplingOptionDefs.STOP.jsonName(), s);
                }
            }
            return SamplingOptionDefs.apply(defaults.toBuilder(), values).build();
        } catch (IllegalArgumentException e) {
            throw invalid(e.getMessage()); // names the field: "'top_p' must be in (0, 1], was 2.0"
        }
    }

    /** The text, unless it holds an unpaired surrogate (from a backslash-u escape): no character, no stop string. */
    private static String properText(String name, String text) throws InvalidInputException {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "options are not valid JSON: '" + name
                        + "' holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is no character");
            }
        }
        return text;
    }

    private static InvalidInputException invalid(String message) {
        return new InvalidInputException(ErrorCode.INVALID_PARAM, null, message);
    }
}
