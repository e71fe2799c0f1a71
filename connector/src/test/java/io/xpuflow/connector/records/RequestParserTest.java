package io.xpuflow.connector.records;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.ChatMessage;
import java.io.ByteArrayOutputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RequestParserTest {
    static final RequestParser PARSER = RequestParser.withDefaults();

    static GenerationRequest parse(String json) throws InvalidInputException {
        return PARSER.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    static InvalidInputException error(RequestParser parser, byte[] value) {
        InvalidInputException e = catchThrowableOfType(InvalidInputException.class, () -> parser.parse(value));
        assertThat(e).as("no error for %s", value == null ? null : new String(value, StandardCharsets.UTF_8)).isNotNull();
        return e;
    }

    static InvalidInputException error(String json) {
        return error(PARSER, json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void promptWithEveryFieldTakesTheRequestValues() throws Exception {
        GenerationRequest r = parse("""
                {"id": "r-1", "prompt": "Once upon a time", "max_tokens": 32, "min_tokens": 2, "temperature": 0.8,
                 "top_p": 0.9, "top_k": 40, "min_p": 0.05, "presence_penalty": 0.5, "frequency_penalty": -0.5,
                 "repetition_penalty": 1.1, "stop": ["\\n\\n", "The end"], "stop_token_ids": [2, 7], "seed": -3,
                 "logprobs": 5, "ignore_eos": true, "metadata": {"x": [1, 2]}, "model": "ignored", "stream": false}""");
        assertThat(r.id()).isEqualTo("r-1");
        assertThat(r.prompt()).isEqualTo("Once upon a time");
        assertThat(r.messages()).isNull();
        assertThat(r.sampling()).isEqualTo(new SamplingParams(0.8, 0.9, 40, 0.05, 1.1, 0.5, -0.5, 32, 2,
                List.of("\n\n", "The end"), Set.of(2, 7), true, 5, -3L));
    }

    @Test
    void absentAndNullFieldsTakeTheJobDefaultsAndTheSeedIsLeftToTheEngine() throws Exception {
        SamplingDefaults defaults = SamplingDefaults.of(SamplingParams.builder().maxTokens(100).temperature(0.7)
                .topK(10).stop(List.of("###")).build());
        RequestParser parser = new RequestParser(defaults, 1000);
        GenerationRequest r = parser.parse("""
                {"id": "a", "prompt": "x", "temperature": null, "top_p": 0.5}""".getBytes(StandardCharsets.UTF_8));
        assertThat(r.sampling()).isEqualTo(SamplingParams.builder().maxTokens(100).temperature(0.7).topK(10)
                .stop(List.of("###")).topP(0.5).build());
        // no seed: the engine derives it from the id, so a replay samples the same text; nothing here may invent one
        assertThat(r.sampling().seed()).isNull();
        assertThat(parse("{\"id\": \"b\", \"prompt\": \"x\"}").sampling()).isEqualTo(SamplingParams.builder().build());
    }

    @Test
    void messagesBecomeChatMessages() throws Exception {
        GenerationRequest r = parse("""
                {"id": "c", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": null}], "stop": "\\n"}""");
        assertThat(r.prompt()).isNull();
        assertThat(r.messages()).containsExactly(ChatMessage.system("Be brief."), ChatMessage.user("Hi"),
                ChatMessage.assistant(""));
        assertThat(r.sampling().stop()).containsExactly("\n");
    }

    @Test
    void integralNumbersMayHaveAZeroFraction() throws Exception {
        assertThat(parse("{\"id\": \"i\", \"prompt\": \"x\", \"max_tokens\": 10.0, \"seed\": 9007199254740993}")
                .sampling()).extracting(SamplingParams::maxTokens, SamplingParams::seed)
                .containsExactly(10, 9007199254740993L);
    }

    @Test
    void unicodePromptsSurviveAndCountInUtf8Bytes() throws Exception {
        String prompt = "Lily 🌸 sagte: „Grüß dich“ — 你好";
        assertThat(parse("{\"id\": \"u\", \"prompt\": \"" + prompt + "\"}").prompt()).isEqualTo(prompt);
        int bytes = prompt.getBytes(StandardCharsets.UTF_8).length;
        RequestParser tight = new RequestParser(SamplingDefaults.ENGINE, bytes);
        assertThat(tight.parse(("{\"id\": \"u\", \"prompt\": \"" + prompt + "\"}").getBytes(StandardCharsets.UTF_8)).prompt())
                .isEqualTo(prompt);
        InvalidInputException e = error(new RequestParser(SamplingDefaults.ENGINE, bytes - 1),
                ("{\"id\": \"u\", \"prompt\": \"" + prompt + "\"}").getBytes(StandardCharsets.UTF_8));
        assertThat(e.code()).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
        assertThat(e.getMessage()).contains(bytes + " bytes", "limit of " + (bytes - 1));
        assertThat(e.requestId()).isEqualTo("u");
    }

    @Test
    void promptsOverTheByteLimitAreRejectedBeforeAnythingElse() {
        String big = "a".repeat(RequestParser.DEFAULT_MAX_PROMPT_BYTES + 1);
        InvalidInputException e = error("{\"id\": \"big\", \"prompt\": \"" + big + "\", \"max_tokens\": 5}");
        assertThat(e.code()).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
        assertThat(e.requestId()).isEqualTo("big");
        InvalidInputException m = error(new RequestParser(SamplingDefaults.ENGINE, 10), """
                {"id": "m", "messages": [{"role": "user", "content": "123456"}, {"role": "user", "content": "7890a"}]}"""
                .getBytes(StandardCharsets.UTF_8));
        assertThat(m.code()).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
        assertThat(m.getMessage()).contains("11 bytes");
    }

    @Test
    void recordsThatAreNotJsonObjectsAreInvalidJson() {
        assertThat(error(PARSER, null)).satisfies(e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
            assertThat(e.getMessage()).contains("tombstone");
            assertThat(e.requestId()).isNull();
        });
        assertThat(error(PARSER, new byte[0]).getMessage()).contains("empty");
        assertThat(error("   \n").getMessage()).contains("only whitespace");
        assertThat(error("[{\"id\": \"a\", \"prompt\": \"x\"}]").getMessage()).contains("expected a JSON object, got an array");
        assertThat(error("\"just a string\"").getMessage()).contains("got a string");
        assertThat(error("42").getMessage()).contains("got a number");
        assertThat(error("{\"id\": \"a\", \"prompt\": \"x\"").getMessage()).startsWith("the record is not valid JSON");
        assertThat(error("{\"id\": \"a\", \"prompt\": \"x\"} {\"id\": \"b\"}").getMessage()).contains("not valid JSON");
        assertThat(error("{\"id\": \"a\", /* note */ \"prompt\": \"x\"}").code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(error("{'id': 'a', 'prompt': 'x'}").code()).isEqualTo(ErrorCode.INVALID_JSON);
        for (String s : List.of("null", "[]", "{\"id\" \"a\"}", "{\"id\": \"a\",}", "\u0000{}")) {
            assertThat(error(s).code()).as(s).isEqualTo(ErrorCode.INVALID_JSON);
        }
    }

    @Test
    void pathologicalJsonIsRefusedNotCrashedOn() {
        // nesting far beyond Jackson's limit of 1000 levels: an error, not a StackOverflowError
        InvalidInputException deep = error("{\"id\": \"d\", \"prompt\": \"x\", \"metadata\": " + "[".repeat(100_000)
                + "]".repeat(100_000) + "}");
        assertThat(deep.code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(deep.getMessage()).contains("nesting depth");
        InvalidInputException digits = error("{\"id\": \"d\", \"prompt\": \"x\", \"seed\": " + "9".repeat(5000) + "}");
        assertThat(digits.code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(digits.getMessage()).contains("Number value length");
    }

    @Test
    void duplicateKeysAreAmbiguousAndRejected() {
        InvalidInputException e = error("{\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": 5, \"max_tokens\": 500}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(e.getMessage()).contains("max_tokens");
    }

    @ParameterizedTest
    @ValueSource(strings = {"NaN", "Infinity", "-Infinity", "+Infinity"})
    void nonFiniteLiteralsAreNotJson(String literal) {
        InvalidInputException e = error("{\"id\": \"n\", \"prompt\": \"x\", \"temperature\": " + literal + "}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(e.getMessage()).contains(literal.replace("+", "").replace("-", "")).doesNotContain("JsonReadFeature")
                .contains("line 1");
    }

    @Test
    void numbersTooLargeForADoubleAreInvalidParams() {
        InvalidInputException e = error("{\"id\": \"n\", \"prompt\": \"x\", \"temperature\": 1e400}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
        assertThat(e.getMessage()).isEqualTo("'temperature' must be a finite number, got 1E+400");
        assertThat(error("{\"id\": \"n\", \"prompt\": \"x\", \"max_tokens\": 1e30}").getMessage())
                .isEqualTo("'max_tokens' must be an integer in 64-bit range, got 1E+30");
        assertThat(error("{\"id\": \"n\", \"prompt\": \"x\", \"max_tokens\": 3000000000}").getMessage())
                .isEqualTo("'max_tokens' must be a 32-bit integer, got 3000000000");
    }

    @Test
    void invalidUtf8IsInvalidJsonWithTheByteOffset() {
        byte[] head = "{\"id\": \"u\", \"prompt\": \"ab".getBytes(StandardCharsets.UTF_8);
        for (byte[] bad : List.of(new byte[] {(byte) 0xFF}, new byte[] {(byte) 0xC3}, new byte[] {(byte) 0xC0, (byte) 0x80},
                new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, new byte[] {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80})) {
            byte[] value = concat(head, bad, "\"}".getBytes(StandardCharsets.UTF_8));
            InvalidInputException e = error(PARSER, value);
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
            assertThat(e.getMessage()).contains("not valid UTF-8", "byte offset " + head.length);
        }
    }

    @Test
    void missingFields() {
        assertThat(error("{\"prompt\": \"x\"}")).satisfies(e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.MISSING_FIELD);
            assertThat(e.getMessage()).isEqualTo("'id' is required");
        });
        assertThat(error("{\"id\": null, \"prompt\": \"x\"}").code()).isEqualTo(ErrorCode.MISSING_FIELD);
        assertThat(error("{\"id\": \"a\", \"max_tokens\": 5}")).satisfies(e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.MISSING_FIELD);
            assertThat(e.getMessage()).isEqualTo("'prompt' or 'messages' is required");
            assertThat(e.requestId()).isEqualTo("a");
        });
        assertThat(error("{\"id\": \"a\", \"messages\": [{\"content\": \"hi\"}]}").getMessage())
                .isEqualTo("'messages[0].role' is required");
        assertThat(error("{\"id\": \"a\", \"messages\": [{\"role\": \"user\"}]}").getMessage())
                .isEqualTo("'messages[0].content' is required");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "\"id\": 7, \"prompt\": \"x\"                     | 'id' must be a string, got a number (7)",
            "\"id\": \" \", \"prompt\": \"x\"                 | 'id' must not be blank",
            "\"id\": \"a\", \"prompt\": 42                    | 'prompt' must be a string or an array of token ids, got a number (42)",
            "\"id\": \"a\", \"prompt\": {\"ids\": [1]}         | 'prompt' must be a string or an array of token ids, got an object ({\"ids\":[1]})",
            "\"id\": \"a\", \"prompt\": []                    | 'prompt' must not be an empty array",
            "\"id\": \"a\", \"prompt\": [1, \"two\"]           | 'prompt[1]' must be a token id (an integer), got a string (\"two\")",
            "\"id\": \"a\", \"prompt\": [1, [2]]              | 'prompt[1]' must be a token id (an integer), got an array ([2])",
            "\"id\": \"a\", \"prompt\": [1.5]                 | 'prompt[0]' must be an integer, got 1.5",
            "\"id\": \"a\", \"prompt\": [4294967296]          | 'prompt[0]' must be a 32-bit integer, got 4294967296",
            "\"id\": \"a\", \"prompt\": \"x\", \"return_token_ids\": \"yes\" | 'return_token_ids' must be a boolean, got a string (\"yes\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"messages\": [] | give either 'prompt' or 'messages', not both",
            "\"id\": \"a\", \"messages\": \"hi\"              | 'messages' must be an array of {role, content} objects, got a string (\"hi\")",
            "\"id\": \"a\", \"messages\": []                  | 'messages' must not be empty",
            "\"id\": \"a\", \"messages\": [\"hi\"]            | 'messages[0]' must be a {role, content} object, got a string (\"hi\")",
            "\"id\": \"a\", \"messages\": [{\"role\": 1, \"content\": \"x\"}] | 'messages[0].role' must be a string, got a number (1)",
            "\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": [1]}] | 'messages[0].content' must be a string, got an array ([1])",
            "\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": \"ten\" | 'max_tokens' must be an integer, got a string (\"ten\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": \"10\"  | 'max_tokens' must be an integer, got a string (\"10\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": 2.5     | 'max_tokens' must be an integer, got 2.5",
            "\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": -5      | 'max_tokens' must be >= 1, was -5",
            "\"id\": \"a\", \"prompt\": \"x\", \"max_tokens\": 0       | 'max_tokens' must be >= 1, was 0",
            "\"id\": \"a\", \"prompt\": \"x\", \"temperature\": \"hot\" | 'temperature' must be a number, got a string (\"hot\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"temperature\": -1     | 'temperature' must be a finite number >= 0, was -1.0",
            "\"id\": \"a\", \"prompt\": \"x\", \"top_p\": 0            | 'top_p' must be in (0, 1], was 0.0",
            "\"id\": \"a\", \"prompt\": \"x\", \"top_k\": -1           | 'top_k' must be >= 0 (0 turns it off), was -1",
            "\"id\": \"a\", \"prompt\": \"x\", \"min_p\": 2            | 'min_p' must be in [0, 1], was 2.0",
            "\"id\": \"a\", \"prompt\": \"x\", \"presence_penalty\": 3 | 'presence_penalty' must be in [-2, 2], was 3.0",
            "\"id\": \"a\", \"prompt\": \"x\", \"frequency_penalty\": true | 'frequency_penalty' must be a number, got a boolean (true)",
            "\"id\": \"a\", \"prompt\": \"x\", \"repetition_penalty\": 0 | 'repetition_penalty' must be > 0, was 0.0",
            "\"id\": \"a\", \"prompt\": \"x\", \"min_tokens\": 20      | 'min_tokens' must be in [0, max_tokens], was 20",
            "\"id\": \"a\", \"prompt\": \"x\", \"logprobs\": true       | 'logprobs' must be an integer, got a boolean (true)",
            "\"id\": \"a\", \"prompt\": \"x\", \"logprobs\": 21         | 'logprobs' must be in [0, 20], was 21",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop\": 5             | 'stop' must be a string or an array of strings, got a number (5)",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop\": [\"a\", 5]     | 'stop[1]' must be a string, got a number (5)",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop\": [\"a\", \"\"]   | 'stop' must be non-empty strings, was [\"a\", \"\"]",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop\": \"\"           | 'stop' must be non-empty strings, was [\"\"]",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop_token_ids\": 2   | 'stop_token_ids' must be an array of integers, got a number (2)",
            "\"id\": \"a\", \"prompt\": \"x\", \"stop_token_ids\": [\"2\"] | 'stop_token_ids[0]' must be an integer, got a string (\"2\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"seed\": \"7\"          | 'seed' must be an integer, got a string (\"7\")",
            "\"id\": \"a\", \"prompt\": \"x\", \"ignore_eos\": \"yes\"  | 'ignore_eos' must be a boolean, got a string (\"yes\")",
    })
    void wrongTypesAndValuesAreInvalidParamsNamingTheField(String fields, String message) {
        InvalidInputException e = error("{" + fields + "}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
        assertThat(e.getMessage()).isEqualTo(message.strip());
        assertThat(e.requestId()).isEqualTo(fields.startsWith("\"id\": \"a\"") ? "a" : null);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            // two high surrogates: Jackson used to hand them on, and the writer turned them into U+10000
            "{\"id\": \"\\ud800\\ud800\", \"prompt\": \"x\"}                | the string at 'id'",
            "{\"id\": \"a\", \"prompt\": \"\\ud800x\"}                        | the string at 'prompt'",
            "{\"id\": \"a\", \"prompt\": \"x\\udc00\"}                        | the string at 'prompt'",
            "{\"id\": \"a\", \"prompt\": \"\\udc00\\ud800\"}                | the string at 'prompt'",
            "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"\\ud83c\"}]} | the string at 'messages[0].content'",
            "{\"id\": \"a\", \"prompt\": \"x\", \"stop\": [\"a\", \"\\udfff\"]}  | the string at 'stop[1]'",
            "{\"id\": \"a\", \"prompt\": \"x\", \"metadata\": {\"k\": [\"\\ud800\"]}} | the string at 'metadata.k[0]'",
            "{\"id\": \"a\", \"prompt\": \"x\", \"\\ud800\": 1}                  | a field name in '(the request)'",
    })
    void unpairedSurrogateEscapesAreInvalidJson(String json, String where) {
        InvalidInputException e = error(json);
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_JSON);
        assertThat(e.requestId()).isNull();
        assertThat(e.getMessage()).isEqualTo("the record is not valid JSON: " + where.strip()
                + " holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is no character");
    }

    @Test
    void surrogatePairsAreCharacters() throws Exception {
        // U+1F338 as an escaped pair and as UTF-8: one character, one id
        assertThat(parse("{\"id\": \"\\ud83c\\udf38\", \"prompt\": \"\\uD83C\\uDF38\"}").id()).isEqualTo("\uD83C\uDF38");
        assertThat(parse("{\"id\": \"🌸\", \"prompt\": \"🌸\"}").prompt()).isEqualTo("🌸");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "n                          | 2",
            "n                          | 1.5",
            "best_of                    | 3",
            "use_beam_search            | true",
            "stream                     | true",
            "stream                     | \"false\"",
            "echo                       | true",
            "suffix                     | \"end\"",
            "response_format            | {\"type\": \"json_object\"}",
            "guided_json                | {\"type\": \"object\"}",
            "guided_regex               | \"[a-z]+\"",
            "guided_choice              | [\"yes\", \"no\"]",
            "guided_grammar             | \"root ::= x\"",
            "structured_outputs         | {\"json\": {}}",
            "logit_bias                 | {\"50256\": -100}",
            "allowed_token_ids          | [1, 2]",
            "bad_words                  | [\"x\"]",
            "top_logprobs               | 5",
            "prompt_logprobs            | 1",
            "max_completion_tokens      | 10",
            "include_stop_str_in_output | true",
            "truncate_prompt_tokens     | 5",
            "tools                      | [{\"type\": \"function\"}]",
            "functions                  | [{\"name\": \"f\"}]",
    })
    void fieldsThatWouldChangeTheOutputButAreNotImplementedAreRefused(String field, String value) throws Exception {
        InvalidInputException e = error("{\"id\": \"u\", \"prompt\": \"x\", \"" + field.strip() + "\": " + value + "}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
        assertThat(e.requestId()).isEqualTo("u");
        assertThat(e.getMessage()).startsWith("'" + field.strip() + "' is not supported: ").endsWith("(got " + new ObjectMapper().readTree(value).toString() + ")");
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"n\": 1", "\"n\": 1.0", "\"best_of\": 1", "\"stream\": false", "\"echo\": false",
            "\"use_beam_search\": false", "\"suffix\": \"\"", "\"response_format\": {\"type\": \"text\"}",
            "\"logit_bias\": {}", "\"bad_words\": []", "\"tools\": []", "\"functions\": []",
            "\"include_stop_str_in_output\": false", "\"guided_json\": null", "\"n\": null", "\"top_logprobs\": null",
            "\"model\": \"gpt-4\"", "\"user\": \"u-1\"", "\"stream_options\": {\"include_usage\": true}"})
    void neutralValuesOfUnsupportedFieldsAndUnrelatedFieldsAreAccepted(String field) throws Exception {
        assertThat(parse("{\"id\": \"u\", \"prompt\": \"x\", " + field + "}").id()).isEqualTo("u");
    }

    @Test
    void idIsCappedBecauseEveryOutputRecordCarriesIt() throws Exception {
        String atLimit = "é".repeat(RequestParser.MAX_ID_BYTES / 2);
        assertThat(parse("{\"id\": \"" + atLimit + "\", \"prompt\": \"x\"}").id()).isEqualTo(atLimit);
        InvalidInputException e = error("{\"id\": \"" + atLimit + "a\", \"prompt\": \"x\"}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
        assertThat(e.requestId()).as("an id over the cap is not echoed").isNull();
        assertThat(e.getMessage()).isEqualTo("'id' is 1025 bytes of UTF-8, more than the limit of 1024");
    }

    @Test
    void metadataIsCappedBecauseEveryOutputRecordCarriesIt() throws Exception {
        String prefix = "{\"id\": \"m\", \"prompt\": \"x\", \"metadata\": ";
        // a JSON string of exactly the limit as written: quotes included, the 3-byte characters counted in bytes
        String atLimit = "\"" + "€".repeat(1000) + "a".repeat(RequestParser.MAX_METADATA_BYTES - 3000 - 2) + "\"";
        assertThat(parse(prefix + atLimit + "}").id()).isEqualTo("m");
        assertThat(echo(prefix + atLimit + "}").rawMetadata()).isEqualTo(atLimit);

        String over = "{\"blob\": \"" + "a".repeat(RequestParser.MAX_METADATA_BYTES) + "\"}";
        InvalidInputException e = error(prefix + over + ", \"max_tokens\": 4}");
        assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
        assertThat(e.requestId()).isEqualTo("m");
        assertThat(e.getMessage()).isEqualTo("'metadata' is " + (RequestParser.MAX_METADATA_BYTES + 12)
                + " bytes of JSON, more than the limit of 65536 (it is copied into the output record)");
        // its error record must stay small: the echo leaves such metadata out
        assertThat(echo(prefix + over + ", \"return_token_ids\": true}")).isEqualTo(new RequestParser.Echo(null, true));
    }

    @Test
    void longValuesAreShortenedInMessages() {
        String longText = "x".repeat(500);
        assertThat(error("{\"id\": \"a\", \"prompt\": \"p\", \"seed\": \"" + longText + "\"}").getMessage())
                .hasSizeLessThan(120).endsWith("...)");
    }

    @Test
    void invalidDefaultsAreRefusedWhenTheJobIsBuilt() {
        var e = catchThrowableOfType(IllegalArgumentException.class, () -> new SamplingDefaults(0, 1, 0, 0, 1, 0, 0, 0, 0,
                null, null, false, 0, null));
        assertThat(e).hasMessage("'max_tokens' must be >= 1, was 0");
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> new RequestParser(SamplingDefaults.ENGINE, 0)))
                .hasMessageContaining("max prompt bytes");
    }

    @Test
    void theParserIsSerializableForFlink() throws Exception {
        var parser = new RequestParser(SamplingDefaults.of(SamplingParams.builder().stop(List.of("a"))
                .stopTokenIds(Set.of(1)).build()), 5);
        try (var out = new ObjectOutputStream(new ByteArrayOutputStream())) {
            out.writeObject(parser);
        }
    }

    private static RequestParser.Echo echo(String doc) {
        return RequestParser.echo(doc.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void metadataIsEchoedByteForByte() {
        String[] values = {
                "{\"user\": 42, \"tags\": [\"a\", \"b\"], \"nested\": {\"x\": 1.50, \"y\": 1e10, \"z\": \"\\u00e9\\n\"}}",
                "[1, 2.0, 3e-5]", "\"text\"", "12345678901234567890123", "1.0", "true", "false", "{}", "[]",
                "-0.0e+00", "\"a, b } ]\"", "{ \"spaced\" : [ 1 , 2 ] }"};
        for (String v : values) {
            for (String doc : List.of("{\"id\": \"a\", \"metadata\": " + v + "}", "{\"metadata\":" + v + ",\"id\":\"a\"}",
                    "{\"id\": \"a\", \"metadata\" :\n\t" + v + " \n, \"prompt\": \"x\"}", "{\"metadata\": " + v + "   }",
                    "{\"metadata\": " + v + ", \"return_token_ids\": true}")) {
                assertThat(echo(doc).rawMetadata()).as(doc).isEqualTo(v);
            }
        }
        for (String doc : List.of("{\"id\": \"a\", \"metadata\": null}", "{\"id\": \"a\"}", "[{\"metadata\": 1}]",
                "{\"a\": {\"metadata\": 1}}")) {
            assertThat(echo(doc)).as(doc).isEqualTo(RequestParser.Echo.NONE);
        }
        assertThat(RequestParser.echo(new byte[] {'{', (byte) 0xFF})).isEqualTo(RequestParser.Echo.NONE);
        assertThat(RequestParser.echo(null)).isEqualTo(RequestParser.Echo.NONE);
    }

    @Test
    void returnTokenIdsIsEchoedOnlyWhenTrueAtTheTopLevel() throws Exception {
        assertThat(echo("{\"id\": \"a\", \"return_token_ids\": true}")).isEqualTo(new RequestParser.Echo(null, true));
        assertThat(echo("{\"return_token_ids\": true, \"metadata\": [1]}")).isEqualTo(new RequestParser.Echo("[1]", true));
        assertThat(echo("{\"id\": \"a\", \"return_token_ids\": false}").returnTokenIds()).isFalse();
        assertThat(echo("{\"id\": \"a\", \"metadata\": {\"return_token_ids\": true}}").returnTokenIds()).isFalse();
        // the parser accepts only a boolean (see the invalid-parameter table), so the echo meets no other type
        assertThat(parse("{\"id\": \"a\", \"prompt\": \"x\", \"return_token_ids\": true}").id()).isEqualTo("a");
    }

    @Test
    void promptMayBeTokenIds() throws Exception {
        GenerationRequest r = parse("{\"id\": \"t\", \"prompt\": [1, 450, 2.0], \"max_tokens\": 3}");
        assertThat(r.promptTokenIds()).containsExactly(1, 450, 2);
        assertThat(r.prompt()).isNull();
        assertThat(r.sampling().maxTokens()).isEqualTo(3);
        // vocabulary and context are the engine's to check: any 32-bit id passes here; wrong ids: the
        // invalid-parameter table
        assertThat(parse("{\"id\": \"t\", \"prompt\": [-1, 2147483647]}").promptTokenIds())
                .containsExactly(-1, Integer.MAX_VALUE);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
