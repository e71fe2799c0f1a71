package io.xpuflow.connector.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The rules of {@link io.xpuflow.runtime.options.OptionType}, decided once, as the readers apply them. */
class OptionReadersTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void integersAreIntegralNumbersInJsonAndDigitsInText() throws Exception {
        var maxTokens = SamplingOptionDefs.MAX_TOKENS;
        assertThat(OptionReaders.fromJson(maxTokens, JSON.readTree("10.0"), "max_tokens")).isEqualTo(10);
        assertThat(OptionReaders.fromJson(maxTokens, JSON.readTree("1e1"), "max_tokens")).isEqualTo(10);
        assertThatThrownBy(() -> OptionReaders.fromJson(maxTokens, JSON.readTree("2.5"), "max_tokens"))
                .hasMessage("'max_tokens' must be an integer, got 2.5");
        assertThatThrownBy(() -> OptionReaders.fromJson(maxTokens, JSON.readTree("\"10\""), "max_tokens"))
                .hasMessage("'max_tokens' must be an integer, got a string (\"10\")");
        assertThat(OptionReaders.fromText(maxTokens, " 10 ", "max-tokens")).isEqualTo(10);
        assertThatThrownBy(() -> OptionReaders.fromText(maxTokens, "10.0", "max-tokens"))
                .hasMessage("'max-tokens' must be an integer, was '10.0'");
        assertThatThrownBy(() -> OptionReaders.fromText(maxTokens, "0", "--max-tokens"))
                .hasMessage("'--max-tokens' must be >= 1, was 0");
    }

    @Test
    void numbersAreFiniteDecimals() {
        var t = SamplingOptionDefs.TEMPERATURE;
        assertThat(OptionReaders.fromText(t, "1e-1", "temperature")).isEqualTo(0.1);
        for (String bad : List.of("NaN", "Infinity", "1d", "0x1p3", "")) {
            assertThatThrownBy(() -> OptionReaders.fromText(t, bad, "temperature"))
                    .hasMessageStartingWith("'temperature' must be a finite number");
        }
    }

    @Test
    void sizesAreMibWithoutAUnitAndDurationsAreFlinks() {
        assertThat(OptionReaders.fromText(EngineOptionDefs.KV_CACHE_MEMORY, "512", "kv-cache-memory")).isEqualTo(512L << 20);
        assertThat(OptionReaders.fromText(EngineOptionDefs.KV_CACHE_MEMORY, "4gb", "kv-cache-memory")).isEqualTo(4L << 30);
        assertThat(OptionReaders.fromText(EngineOptionDefs.LOG_STATS_INTERVAL, "1 min", "x")).isEqualTo(Duration.ofMinutes(1));
        assertThat(OptionReaders.fromText(EngineOptionDefs.LOG_STATS_INTERVAL, "0", "x")).isZero();
    }

    @Test
    void listsAreSemicolonSeparatedInTextWithQuotesKeepingSeparatorsAndSpaces() {
        assertThat(OptionReaders.splitList(" a ; b ")).containsExactly("a", "b");
        assertThat(OptionReaders.splitList("The end;\" ; \"")).containsExactly("The end", " ; ");
        assertThat(OptionReaders.splitList("\"say \"\"hi\"\"\"")).containsExactly("say \"hi\"");
        assertThat(OptionReaders.fromText(SamplingOptionDefs.STOP_TOKEN_IDS, "2;13", "stop-token-ids"))
                .isEqualTo(List.of(2, 13));
        assertThatThrownBy(() -> OptionReaders.fromText(SamplingOptionDefs.STOP, "a;;b", "stop"))
                .hasMessage("'stop' must be non-empty strings, was [\"a\", \"\", \"b\"]");
    }

    @Test
    void anUnknownNameGetsTheNearestKnownOne() {
        List<String> known = List.of("max_tokens", "min_tokens", "temperature", "top_p");
        assertThat(OptionReaders.unknown("field", "max_token", known))
                .isEqualTo("unknown field 'max_token'; did you mean 'max_tokens'?");
        assertThat(OptionReaders.unknown("field", "TEMPERATURE", known))
                .isEqualTo("unknown field 'TEMPERATURE'; did you mean 'temperature'?");
        assertThat(OptionReaders.unknown("field", "banana", known))
                .isEqualTo("unknown field 'banana' (known: max_tokens, min_tokens, temperature, top_p)");
    }
}
