package io.xpuflow.connector.records;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import io.xpuflow.connector.options.OptionReaders;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.ChatMessage;
import java.io.IOException;
import java.io.Serializable;
import java.math.BigDecimal;
import java.nio.charset.CharacterCodingException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Reads a JSON request record (UTF-8) into a {@link GenerationRequest}, or explains with an
 * {@link ErrorCode} why it cannot.
 *
 * <p>The request format follows OpenAI's completions / chat completions and vLLM, so producers can
 * reuse what they already send:
 *
 * <pre>{@code
 * {"id": "r-17", "prompt": "Once upon a time", "max_tokens": 64, "temperature": 0.8, "stop": ["\n\n"],
 *  "metadata": {"user": 42}}
 * {"id": "r-18", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}
 * }</pre>
 *
 * <ul>
 *   <li>{@code id} (string, required, not blank, at most {@link #MAX_ID_BYTES} of UTF-8): echoed in the
 *       result and, when there is no {@code seed}, the seed of sampling: the engine derives the seed from
 *       the id, so a request replayed after a failure generates the same text. This parser never invents
 *       a seed.</li>
 *   <li>{@code prompt} (a string, or an array of token ids as OpenAI's completions API allows, for
 *       producers that tokenize themselves or models without a tokenizer) or {@code messages} (array of
 *       {@code {role, content}} with string values; a null content is an empty turn): exactly one of
 *       them. The UTF-8 size of text is limited ({@link #DEFAULT_MAX_PROMPT_BYTES} by default) and
 *       checked before anything is tokenized, so a huge record cannot stall the operator; prompts longer
 *       than the model's context, and token ids outside its vocabulary, are rejected by the engine.</li>
 *   <li>sampling, each optional with the job's {@link SamplingDefaults} for absent or null fields:
 *       {@code max_tokens}, {@code min_tokens}, {@code top_k}, {@code logprobs} (integers),
 *       {@code temperature}, {@code top_p}, {@code min_p}, {@code presence_penalty},
 *       {@code frequency_penalty}, {@code repetition_penalty} (finite numbers), {@code seed} (64-bit
 *       integer), {@code stop} (string or array of strings), {@code stop_token_ids} (array of
 *       integers), {@code ignore_eos} (boolean): the options of
 *       {@link io.xpuflow.runtime.sample.SamplingOptionDefs}, read by {@link OptionReaders#fromJson}
 *       (integers may be written as {@code 10.0}; strings such as {@code "10"} are refused).</li>
 *   <li>{@code return_token_ids} (boolean, as in vLLM): the result also lists the generated token ids.
 *       Read again when the output is written ({@link #echo}).</li>
 *   <li>{@code metadata} (any JSON, at most {@link #MAX_METADATA_BYTES} as written): {@link #echo}
 *       copies it untouched into the output record.</li>
 *   <li>fields of OpenAI's and vLLM's APIs that would change what is generated or how it is delivered
 *       but are not implemented ({@code n}, {@code best_of}, {@code stream}, {@code response_format},
 *       {@code guided_*}, ...; see {@link #unsupported}) are refused unless they hold their neutral
 *       value ({@code "n": 1}, {@code "stream": false}): serving the request as if they were absent would
 *       give the producer something other than what it asked for, without a word.</li>
 *   <li>{@code model}, {@code user} and {@code stream_options} ({@link #IGNORED_FIELDS}) are ignored,
 *       so one producer can feed several back ends; any other field is refused as unknown, with the
 *       nearest known name ("unknown field 'max_token'; did you mean 'max_tokens'?"), so that a
 *       misspelt option is reported instead of silently running with the default.</li>
 * </ul>
 *
 * <p>The caps on {@code id} and {@code metadata} exist because both are copied into the output record:
 * unbounded, a request could make its own result larger than the Kafka producer accepts.
 *
 * <p>Errors: {@link ErrorCode#INVALID_JSON} for a missing or empty value, bytes that are not UTF-8,
 * text that is not strict JSON (NaN/Infinity literals, comments, trailing content, duplicate keys, a
 * string with an unpaired or reversed UTF-16 surrogate escape such as <code>"&#92;ud800"</code>) or JSON that is
 * not an object; {@link ErrorCode#MISSING_FIELD} for a missing {@code id} or neither
 * {@code prompt} nor {@code messages}; {@link ErrorCode#PROMPT_TOO_LONG} for a prompt over the byte
 * limit; {@link ErrorCode#INVALID_PARAM} for a wrong type, a value out of range, or both
 * {@code prompt} and {@code messages}, an unsupported field, an {@code id} or {@code metadata}
 * over its cap. Messages name the field.
 */
public final class RequestParser implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Default limit of a prompt's UTF-8 size: 256 KiB. */
    public static final int DEFAULT_MAX_PROMPT_BYTES = 256 * 1024;

    /** Largest {@code id}, in UTF-8 bytes: it is copied into every output record and a Kafka header. */
    public static final int MAX_ID_BYTES = 1024;

    /** Largest {@code metadata}, in UTF-8 bytes as written: it is copied into every output record. */
    public static final int MAX_METADATA_BYTES = 64 * 1024;

    private static final int VALUE_PREVIEW_CHARS = 40;

    /**
     * A request field this parser does not implement, with the value that means "off" (null: any
     * value is refused) and what to do instead.
     */
    private record Unsupported(Predicate<JsonNode> neutral, String hint) {}

    private static final Map<String, Unsupported> UNSUPPORTED = Map.ofEntries(
            Map.entry("n", new Unsupported(n -> isOne(n), "each request yields one completion; send one request per completion")),
            Map.entry("best_of", new Unsupported(n -> isOne(n), "each request yields one completion")),
            Map.entry("use_beam_search", new Unsupported(n -> isFalse(n), "there is no beam search")),
            Map.entry("stream", new Unsupported(n -> isFalse(n), "a result is one record written when the request finishes")),
            Map.entry("echo", new Unsupported(n -> isFalse(n), "the result holds the generated text only")),
            Map.entry("suffix", new Unsupported(n -> n.isTextual() && n.textValue().isEmpty(), "there is no insertion mode")),
            Map.entry("response_format", new Unsupported(
                    n -> n.isObject() && n.size() == 1 && "text".equals(n.path("type").textValue()),
                    "output is not constrained to JSON; only {\"type\": \"text\"} is accepted")),
            Map.entry("guided_json", new Unsupported(null, "there is no guided decoding")),
            Map.entry("guided_regex", new Unsupported(null, "there is no guided decoding")),
            Map.entry("guided_choice", new Unsupported(null, "there is no guided decoding")),
            Map.entry("guided_grammar", new Unsupported(null, "there is no guided decoding")),
            Map.entry("structured_outputs", new Unsupported(null, "there is no guided decoding")),
            Map.entry("logit_bias", new Unsupported(n -> n.isObject() && n.isEmpty(), "there is no logit bias")),
            Map.entry("allowed_token_ids", new Unsupported(null, "generation is not restricted to a token set")),
            Map.entry("bad_words", new Unsupported(n -> n.isArray() && n.isEmpty(), "there is no word ban")),
            Map.entry("top_logprobs", new Unsupported(null, "use 'logprobs': n, the number of alternatives per token")),
            Map.entry("prompt_logprobs", new Unsupported(null, "only generated tokens have logprobs")),
            Map.entry("max_completion_tokens", new Unsupported(null, "use 'max_tokens'")),
            Map.entry("include_stop_str_in_output", new Unsupported(n -> isFalse(n),
                    "a matched stop string is never in the text")),
            Map.entry("truncate_prompt_tokens", new Unsupported(null, "a prompt longer than the context is an error, not cut")),
            Map.entry("tools", new Unsupported(n -> n.isArray() && n.isEmpty(), "there is no tool calling")),
            Map.entry("functions", new Unsupported(n -> n.isArray() && n.isEmpty(), "there is no tool calling")));

    /** The request's own fields, besides the sampling options. */
    private static final Set<String> ENVELOPE = Set.of("id", "prompt", "messages", "metadata", "return_token_ids");

    /**
     * Fields of OpenAI's API that say nothing about what is generated, accepted and ignored in every JSON
     * surface so that one producer can feed several back ends: {@code model}, {@code user} and
     * {@code stream_options} (which only matters with {@code stream}, refused unless false).
     */
    public static final Set<String> IGNORED_FIELDS = Set.of("model", "user", "stream_options");

    private final SamplingDefaults defaults;
    private final int maxPromptBytes;

    /**
     * @param defaults sampling for fields a request leaves out
     * @param maxPromptBytes largest prompt (or sum of message contents) in UTF-8 bytes
     */
    public RequestParser(SamplingDefaults defaults, int maxPromptBytes) {
        if (defaults == null) {
            throw new IllegalArgumentException("sampling defaults are required");
        }
        if (maxPromptBytes < 1) {
            throw new IllegalArgumentException("max prompt bytes must be >= 1, was " + maxPromptBytes);
        }
        this.defaults = defaults;
        this.maxPromptBytes = maxPromptBytes;
    }

    /** The engine's sampling defaults and a prompt limit of {@link #DEFAULT_MAX_PROMPT_BYTES}. */
    public static RequestParser withDefaults() {
        return new RequestParser(SamplingDefaults.ENGINE, DEFAULT_MAX_PROMPT_BYTES);
    }

    public SamplingDefaults defaults() {
        return defaults;
    }

    public int maxPromptBytes() {
        return maxPromptBytes;
    }

    /**
     * @param value the record's value; null for a Kafka tombstone
     * @throws InvalidInputException with the code and a message naming the offending field; its
     *     request id is set once the id was read
     */
    public GenerationRequest parse(byte[] value) throws InvalidInputException {
        Document doc = readObject(value);
        JsonNode root = doc.root();
        String id = readId(root);
        checkMetadata(id, doc, value.length);
        checkUnsupported(id, root);

        JsonNode prompt = present(root, "prompt");
        JsonNode messages = present(root, "messages");
        if (prompt != null && messages != null) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                    "give either 'prompt' or 'messages', not both");
        }
        if (prompt == null && messages == null) {
            throw new InvalidInputException(ErrorCode.MISSING_FIELD, id, "'prompt' or 'messages' is required");
        }
        String promptText = null;
        int[] promptIds = null;
        List<ChatMessage> chat = null;
        long promptBytes;
        if (prompt != null && prompt.isArray()) {
            promptIds = readPromptTokenIds(id, prompt);
            promptBytes = 0; // nothing to tokenize: the engine checks the length against the context
        } else if (prompt != null) {
            if (!prompt.isTextual()) {
                throw wrongType(id, "prompt", "a string or an array of token ids", prompt);
            }
            promptText = prompt.textValue();
            promptBytes = textBytes(id, "prompt", promptText);
        } else {
            chat = readMessages(id, messages);
            promptBytes = 0;
            for (int i = 0; i < chat.size(); i++) {
                promptBytes += textBytes(id, "messages[" + i + "].content", chat.get(i).content());
            }
        }
        if (promptBytes > maxPromptBytes) {
            throw new InvalidInputException(ErrorCode.PROMPT_TOO_LONG, id, "the " + (prompt != null ? "prompt" : "messages'"
                    + " content") + " is " + promptBytes + " bytes of UTF-8, more than the limit of " + maxPromptBytes);
        }

        SamplingParams sampling = readSampling(id, root);
        JsonNode returnTokenIds = present(root, "return_token_ids");
        if (returnTokenIds != null && !returnTokenIds.isBoolean()) {
            throw wrongType(id, "return_token_ids", "a boolean", returnTokenIds);
        }
        if (promptIds != null) {
            return GenerationRequest.ofTokens(id, promptIds, sampling);
        }
        if (promptText != null) {
            return GenerationRequest.ofText(id, promptText, sampling);
        }
        return GenerationRequest.ofMessages(id, chat, sampling);
    }

    private static int[] readPromptTokenIds(String id, JsonNode prompt) throws InvalidInputException {
        if (prompt.isEmpty()) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, "'prompt' must not be an empty array");
        }
        int[] ids = new int[prompt.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode n = prompt.get(i);
            if (!n.isNumber()) {
                throw wrongType(id, "prompt[" + i + "]", "a token id (an integer)", n);
            }
            ids[i] = integer(id, "prompt[" + i + "]", n);
        }
        return ids;
    }

    /** A request record's text and its JSON tree. */
    private record Document(String text, JsonNode root) {}

    private static Document readObject(byte[] value) throws InvalidInputException {
        if (value == null) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record has no value (a tombstone)");
        }
        if (value.length == 0) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record's value is empty");
        }
        String text;
        try {
            text = Json.decodeStrict(value);
        } catch (CharacterCodingException e) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record is not valid UTF-8: " + e.getMessage());
        }
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record is not valid JSON: " + Json.describe(e));
        }
        if (root == null || root.isMissingNode()) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record holds no JSON value, only whitespace");
        }
        if (!root.isObject()) {
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null,
                    "expected a JSON object, got " + article(typeName(root)));
        }
        String badString = findUnpairedSurrogate(root);
        if (badString != null) {
            // Jackson decodes each backslash-u escape on its own: a lone or doubled high surrogate arrives as
            // such in the String and, written back as UTF-8, would become some other character (two distinct
            // ids, one output id), so such text is refused as the invalid JSON string it is (RFC 8259, 8.2)
            throw new InvalidInputException(ErrorCode.INVALID_JSON, null, "the record is not valid JSON: " + badString
                    + " holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is no character");
        }
        return new Document(text, root);
    }

    /**
     * Where the first string (a value or a field name) with an unpaired surrogate is, as a path such as
     * {@code 'messages[0].content'}; null when every string is proper UTF-16.
     */
    private static String findUnpairedSurrogate(JsonNode root) {
        // iterative: Jackson already bounds the nesting depth, but a stack of our own needs no care at all
        Deque<Map.Entry<String, JsonNode>> todo = new ArrayDeque<>();
        todo.push(Map.entry("", root));
        while (!todo.isEmpty()) {
            Map.Entry<String, JsonNode> e = todo.pop();
            String path = e.getKey();
            JsonNode n = e.getValue();
            if (n.isTextual()) {
                if (Json.utf8Length(n.textValue()) < 0) {
                    return "the string at '" + path + "'";
                }
            } else if (n.isObject()) {
                for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> f = it.next();
                    String at = path.isEmpty() ? f.getKey() : path + "." + f.getKey();
                    if (Json.utf8Length(f.getKey()) < 0) {
                        return "a field name in '" + (path.isEmpty() ? "(the request)" : path) + "'";
                    }
                    todo.push(Map.entry(at, f.getValue()));
                }
            } else if (n.isArray()) {
                for (int i = 0; i < n.size(); i++) {
                    todo.push(Map.entry(path + "[" + i + "]", n.get(i)));
                }
            }
        }
        return null;
    }

    private static String readId(JsonNode root) throws InvalidInputException {
        JsonNode id = present(root, "id");
        if (id == null) {
            throw new InvalidInputException(ErrorCode.MISSING_FIELD, null, "'id' is required");
        }
        if (!id.isTextual()) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, null, "'id' must be a string, got " + describe(id));
        }
        if (id.textValue().isBlank()) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, null, "'id' must not be blank");
        }
        long bytes = Json.utf8Length(id.textValue());
        if (bytes > MAX_ID_BYTES) {
            // refused without the id: an error record (and its header) must not carry it either
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, null,
                    "'id' is " + bytes + " bytes of UTF-8, more than the limit of " + MAX_ID_BYTES);
        }
        return id.textValue();
    }

    private static void checkMetadata(String id, Document doc, int recordBytes) throws InvalidInputException {
        // the metadata cannot be larger than the record: only a large record needs the scan for its extent
        if (recordBytes <= MAX_METADATA_BYTES || present(doc.root(), "metadata") == null) {
            return;
        }
        String raw = rawMetadata(doc.text());
        long bytes = raw == null ? 0 : Json.utf8Length(raw);
        if (bytes > MAX_METADATA_BYTES) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, "'metadata' is " + bytes
                    + " bytes of JSON, more than the limit of " + MAX_METADATA_BYTES + " (it is copied into the output record)");
        }
    }

    private static void checkUnsupported(String id, JsonNode root) throws InvalidInputException {
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String message = unsupported(f.getKey(), f.getValue());
            if (message == null) {
                message = unknownField(f.getKey(), Surface.REQUEST_JSON, ENVELOPE);
            }
            if (message != null) {
                throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, message);
            }
        }
    }

    /**
     * Why a request field cannot be served as given: a field of OpenAI's or vLLM's API that changes the
     * output but is not implemented here, set to something other than its neutral value ({@code "n": 1},
     * {@code "stream": false}, null); null when the field is fine (or not one of them).
     */
    public static String unsupported(String field, JsonNode value) {
        Unsupported u = UNSUPPORTED.get(field);
        if (u == null || value == null || value.isNull() || (u.neutral() != null && u.neutral().test(value))) {
            return null;
        }
        return "'" + field + "' is not supported: " + u.hint() + " (got " + preview(value.toString()) + ")";
    }

    private static boolean isOne(JsonNode n) {
        return n.isNumber() && n.decimalValue().compareTo(BigDecimal.ONE) == 0;
    }

    private static boolean isFalse(JsonNode n) {
        return n.isBoolean() && !n.booleanValue();
    }

    private static List<ChatMessage> readMessages(String id, JsonNode messages) throws InvalidInputException {
        if (!messages.isArray()) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                    "'messages' must be an array of {role, content} objects, got " + describe(messages));
        }
        if (messages.isEmpty()) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, "'messages' must not be empty");
        }
        List<ChatMessage> out = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            String at = "messages[" + i + "]";
            JsonNode m = messages.get(i);
            if (!m.isObject()) {
                throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                        "'" + at + "' must be a {role, content} object, got " + describe(m));
            }
            JsonNode role = present(m, "role");
            if (role == null) {
                throw new InvalidInputException(ErrorCode.MISSING_FIELD, id, "'" + at + ".role' is required");
            }
            String r = string(id, at + ".role", role);
            if (r.isBlank()) {
                throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, "'" + at + ".role' must not be blank");
            }
            if (!m.has("content")) {
                throw new InvalidInputException(ErrorCode.MISSING_FIELD, id, "'" + at + ".content' is required");
            }
            JsonNode content = present(m, "content");
            out.add(new ChatMessage(r, content == null ? "" : string(id, at + ".content", content)));
        }
        return out;
    }

    private SamplingParams readSampling(String id, JsonNode root) throws InvalidInputException {
        try {
            return SamplingOptionDefs.apply(defaults.toBuilder(), readOptions(root, Surface.REQUEST_JSON)).build();
        } catch (IllegalArgumentException e) {
            // names the field with its wire name: "'max_tokens' must be >= 1, was -5"
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id, e.getMessage());
        }
    }

    /**
     * The sampling options among {@code object}'s fields that {@code surface} takes, read and checked by
     * {@link OptionReaders#fromJson}; absent and null fields are left out (the defaults apply).
     *
     * @throws IllegalArgumentException naming the first field with a wrong type or value
     */
    public static Map<Option<?>, Object> readOptions(JsonNode object, Surface surface) {
        Map<Option<?>, Object> values = new LinkedHashMap<>();
        for (Option<?> option : SamplingOptionDefs.ALL) {
            if (option.on(surface)) {
                Object v = OptionReaders.fromJson(option, object.get(option.jsonName()), option.jsonName());
                if (v != null) {
                    values.put(option, v);
                }
            }
        }
        return values;
    }

    /**
     * Why {@code field} is not accepted in a JSON object of {@code surface} whose own fields (besides the
     * sampling options) are {@code envelope}: null when it is a sampling option of the surface, one of
     * {@code envelope}, an informational field ({@link #IGNORED_FIELDS}) or an unsupported field (checked by
     * {@link #unsupported}); otherwise "unknown field 'max_token'; did you mean 'max_tokens'?".
     */
    public static String unknownField(String field, Surface surface, Set<String> envelope) {
        List<String> known = new ArrayList<>();
        for (Option<?> option : SamplingOptionDefs.ALL) {
            if (option.on(surface)) {
                known.add(option.jsonName());
            }
        }
        if (known.contains(field) || envelope.contains(field) || IGNORED_FIELDS.contains(field)
                || UNSUPPORTED.containsKey(field)) {
            return null;
        }
        known.addAll(envelope);
        return OptionReaders.unknown("field", field, known);
    }

    /** The field's value, or null when it is absent or JSON null (null means "use the default", as in OpenAI). */
    private static JsonNode present(JsonNode object, String field) {
        JsonNode n = object.get(field);
        return n == null || n.isNull() ? null : n;
    }

    private static String string(String id, String field, JsonNode n) throws InvalidInputException {
        if (!n.isTextual()) {
            throw wrongType(id, field, "a string", n);
        }
        return n.textValue();
    }

    private static long textBytes(String id, String field, String text) throws InvalidInputException {
        long bytes = Json.utf8Length(text);
        if (bytes < 0) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                    "'" + field + "' holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is no character");
        }
        return bytes;
    }

    private static int integer(String id, String field, JsonNode n) throws InvalidInputException {
        long v = longInteger(id, field, n);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                    "'" + field + "' must be a 32-bit integer, got " + n);
        }
        return (int) v;
    }

    private static long longInteger(String id, String field, JsonNode n) throws InvalidInputException {
        if (!n.isNumber()) {
            throw wrongType(id, field, "an integer", n);
        }
        if (n.isIntegralNumber() && n.canConvertToLong()) {
            return n.longValue();
        }
        BigDecimal d = n.decimalValue();
        try {
            return d.longValueExact(); // 10.0 is fine, 2.5 and 1e30 are not
        } catch (ArithmeticException e) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, id,
                    "'" + field + "' must be an integer" + (d.stripTrailingZeros().scale() <= 0 ? " in 64-bit range" : "")
                            + ", got " + preview(n.toString()));
        }
    }

    private static InvalidInputException wrongType(String id, String field, String expected, JsonNode n) {
        return new InvalidInputException(ErrorCode.INVALID_PARAM, id, "'" + field + "' must be " + expected + ", got "
                + describe(n));
    }

    private static String describe(JsonNode n) {
        return article(typeName(n)) + " (" + preview(n.toString()) + ")";
    }

    private static String typeName(JsonNode n) {
        return n.getNodeType().name().toLowerCase(Locale.ROOT);
    }

    private static String article(String typeName) {
        return (typeName.startsWith("a") || typeName.startsWith("o") ? "an " : "a ") + typeName;
    }

    private static String preview(String s) {
        return s.length() <= VALUE_PREVIEW_CHARS ? s : s.substring(0, VALUE_PREVIEW_CHARS) + "...";
    }

    /**
     * What an output record takes over from its request besides the result.
     *
     * @param rawMetadata the request's {@code metadata} exactly as written in the record (same bytes,
     *     numbers and escapes untouched), or null when it has none or {@code "metadata": null}
     * @param returnTokenIds the request asked for the generated token ids ({@code "return_token_ids": true})
     */
    public record Echo(String rawMetadata, boolean returnTokenIds) {
        /** Nothing to copy: no metadata, no token ids. */
        public static final Echo NONE = new Echo(null, false);
    }

    /**
     * Reads the {@link Echo} of a request record with a streaming scan of its top-level fields (the operator
     * hands a result mapper the input record, not the parsed request); {@link Echo#NONE} when the record is
     * not a JSON object. Metadata over {@link #MAX_METADATA_BYTES} is left out: such a request was refused
     * for it, and its error record must stay small.
     */
    public static Echo echo(byte[] value) {
        if (value == null || value.length == 0) {
            return Echo.NONE;
        }
        String text;
        try {
            text = Json.decodeStrict(value);
        } catch (CharacterCodingException e) {
            return Echo.NONE;
        }
        Echo echo = scan(text);
        if (echo.rawMetadata() != null && value.length > MAX_METADATA_BYTES
                && Json.utf8Length(echo.rawMetadata()) > MAX_METADATA_BYTES) {
            return new Echo(null, echo.returnTokenIds());
        }
        return echo;
    }

    /** The top-level {@code metadata} of a JSON object's text exactly as written; null when it has none. */
    private static String rawMetadata(String text) {
        return scan(text).rawMetadata();
    }

    private static Echo scan(String text) {
        String metadata = null;
        boolean returnTokenIds = false;
        try (JsonParser p = Json.FACTORY.createParser(text)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return Echo.NONE;
            }
            JsonToken t = p.nextToken();
            while (t == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken valueToken = p.nextToken();
                if ("return_token_ids".equals(name)) {
                    returnTokenIds = valueToken == JsonToken.VALUE_TRUE;
                    t = p.nextToken();
                } else if ("metadata".equals(name) && valueToken != JsonToken.VALUE_NULL) {
                    int start = (int) p.currentTokenLocation().getCharOffset();
                    p.skipChildren();
                    // the value ends where the next token starts, less the separator (whitespace and a comma)
                    t = p.nextToken();
                    int end = (int) p.currentTokenLocation().getCharOffset();
                    String raw = text.substring(start, end).stripTrailing();
                    if (raw.endsWith(",")) {
                        raw = raw.substring(0, raw.length() - 1).stripTrailing();
                    }
                    metadata = raw;
                } else {
                    p.skipChildren();
                    t = p.nextToken();
                }
            }
            return new Echo(metadata, returnTokenIds);
        } catch (IOException e) {
            return Echo.NONE; // only reached for records that already failed parsing
        }
    }
}
