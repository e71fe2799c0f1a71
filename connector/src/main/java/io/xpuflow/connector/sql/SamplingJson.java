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
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Per-row sampling options of {@code LLM_GENERATE(prompt, options_json)}: a JSON object with the
 * OpenAI / vLLM field names, applied over the function's defaults.
 *
 * <pre>{@code {"max_tokens": 32, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7,
 *  "stop": ["\n", "The end"], "presence_penalty": 0.5, "frequency_penalty": 0.5,
 *  "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": false}}</pre>
 *
 * <p>{@code stop} may also be a single string; a JSON {@code null} leaves the default. Unknown fields are
 * rejected rather than ignored, so a misspelt {@code max_token} is reported instead of silently running
 * with the default; fields of OpenAI's API that are not implemented ({@code n}, {@code stream},
 * {@code response_format}, ...) are reported as such, and accepted only with their neutral value
 * ({@code "n": 1}), as in Kafka requests ({@link RequestParser#unsupported}). The JSON is read as strictly
 * as a Kafka request: no duplicate keys (which {@code max_tokens} was meant?), no trailing text, no
 * NaN, no number beyond a double, no unpaired surrogate escape in a stop string.
 */
final class SamplingJson {
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
    static SamplingParams parse(String json, SamplingDefaults defaults) throws InvalidInputException {
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
        SamplingParams.Builder b = defaults.toBuilder();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String name = field.getKey();
            JsonNode v = field.getValue();
            if (v.isNull()) {
                continue;
            }
            String unsupported = RequestParser.unsupported(name, v);
            if (unsupported != null) {
                throw invalid(unsupported);
            }
            switch (name) {
                case "max_tokens" -> b.maxTokens(integer(name, v));
                case "min_tokens" -> b.minTokens(integer(name, v));
                case "temperature" -> b.temperature(number(name, v));
                case "top_p" -> b.topP(number(name, v));
                case "top_k" -> b.topK(integer(name, v));
                case "min_p" -> b.minP(number(name, v));
                case "seed" -> b.seed(longInteger(name, v));
                case "stop" -> b.stop(strings(name, v));
                case "presence_penalty" -> b.presencePenalty(number(name, v));
                case "frequency_penalty" -> b.frequencyPenalty(number(name, v));
                case "repetition_penalty" -> b.repetitionPenalty(number(name, v));
                case "ignore_eos" -> b.ignoreEos(bool(name, v));
                case "n", "best_of", "use_beam_search", "stream", "echo", "suffix", "response_format", "logit_bias",
                        "bad_words", "include_stop_str_in_output", "tools", "functions" -> { } // neutral: see above
                default -> throw invalid("unknown option '" + name + "' (known: max_tokens, min_tokens, temperature,"
                        + " top_p, top_k, min_p, seed, stop, presence_penalty, frequency_penalty, repetition_penalty,"
                        + " ignore_eos)");
            }
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw invalid(e.getMessage()); // names the field: "'top_p' must be in (0, 1], was 2.0"
        }
    }

    private static int integer(String name, JsonNode v) throws InvalidInputException {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw invalid("'" + name + "' must be an integer, was " + v);
        }
        return v.intValue();
    }

    private static long longInteger(String name, JsonNode v) throws InvalidInputException {
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw invalid("'" + name + "' must be a 64-bit integer, was " + v);
        }
        return v.longValue();
    }

    private static double number(String name, JsonNode v) throws InvalidInputException {
        if (!v.isNumber() || !Double.isFinite(v.doubleValue())) {
            throw invalid("'" + name + "' must be a finite number, was " + v);
        }
        return v.doubleValue();
    }

    private static boolean bool(String name, JsonNode v) throws InvalidInputException {
        if (!v.isBoolean()) {
            throw invalid("'" + name + "' must be true or false, was " + v);
        }
        return v.booleanValue();
    }

    private static List<String> strings(String name, JsonNode v) throws InvalidInputException {
        if (v.isTextual()) {
            return List.of(properText(name, v.textValue()));
        }
        if (!v.isArray()) {
            throw invalid("'" + name + "' must be a string or an array of strings, was " + v);
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) {
                throw invalid("'" + name + "' must be a string or an array of strings, has " + e);
            }
            out.add(properText(name, e.textValue()));
        }
        return out;
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
