package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.tokenizer.GoldenCases.Case;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every case of the fixtures' goldens, computed by the Hugging Face tokenizers (JavaScript port).
 *
 * <p>The golden ids include what the tokenizer adds around a text: BOS ({@code <s>}, id 1) for stories260k,
 * nothing for Qwen3; so they are compared with {@code encode(text, true)}. The golden decodes keep special
 * tokens ({@code "<s> Hello world"}), so they are compared with {@code decode(ids, false)}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TokenizerGoldenTest {
    private Tokenizer stories;
    private Tokenizer qwen;

    @BeforeAll
    void load() {
        stories = Tokenizer.load(GoldenCases.stories());
        qwen = Tokenizer.load(GoldenCases.qwen3());
    }

    Stream<Case> cases() {
        return GoldenCases.all();
    }

    private Tokenizer tokenizer(Case c) {
        return c.tokenizer().equals("qwen3") ? qwen : stories;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void encodeGivesTheGoldenIds(Case c) {
        assertThat(tokenizer(c).encode(c.text(), true)).containsExactly(c.ids());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decodeGivesTheGoldenText(Case c) {
        assertThat(tokenizer(c).decode(c.ids(), false)).isEqualTo(c.decoded());
    }
}
