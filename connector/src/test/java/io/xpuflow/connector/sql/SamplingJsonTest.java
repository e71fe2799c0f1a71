package io.xpuflow.connector.sql;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The options JSON of LLM_GENERATE, read as strictly as a Kafka request. */
class SamplingJsonTest {

    static InvalidInputException error(String json) {
        InvalidInputException e = catchThrowableOfType(InvalidInputException.class,
                () -> SamplingJson.parse(json, SamplingDefaults.ENGINE));
        assertThat(e).as("no error for %s", json).isNotNull();
        return e;
    }

    @Test
    void knownFieldsAndNeutralValuesOfUnsupportedOnes() throws Exception {
        SamplingParams p = SamplingJson.parse("{\"max_tokens\": 8, \"temperature\": 0.5, \"stop\": \"\\ud83c\\udf38\","
                + " \"n\": 1, \"stream\": false, \"seed\": null}", SamplingDefaults.ENGINE);
        assertThat(p).isEqualTo(SamplingParams.builder().maxTokens(8).temperature(0.5).stop(List.of("\uD83C\uDF38")).build());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "{\"n\": 2}                                 | INVALID_PARAM | 'n' is not supported: each request yields one completion",
            "{\"stream\": true}                         | INVALID_PARAM | 'stream' is not supported",
            "{\"response_format\": {\"type\": \"json_object\"}} | INVALID_PARAM | 'response_format' is not supported",
            "{\"guided_regex\": \"a+\"}                 | INVALID_PARAM | 'guided_regex' is not supported",
            "{\"max_token\": 5}                         | INVALID_PARAM | unknown field 'max_token'; did you mean 'max_tokens'?",
            "{\"max_tokens\": 5, \"max_tokens\": 6}     | INVALID_JSON  | options are not valid JSON: Duplicate field 'max_tokens'",
            "{\"max_tokens\": 5} {\"max_tokens\": 6}    | INVALID_JSON  | options are not valid JSON: Trailing token",
            "{\"temperature\": NaN}                     | INVALID_JSON  | options are not valid JSON",
            "{\"temperature\": 1e400}                   | INVALID_PARAM | 'temperature' must be a finite number, got 1E+400",
            "{\"stop\": [\"a\", \"\\ud800\"]}           | INVALID_JSON  | options are not valid JSON: 'stop' holds an unpaired UTF-16 surrogate",
    })
    void strictAboutWhatWouldChangeTheOutput(String json, ErrorCode code, String message) {
        InvalidInputException e = error(json);
        assertThat(e.code()).isEqualTo(code);
        assertThat(e.getMessage()).startsWith(message.strip());
    }
}
