package io.xpuflow.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.spec.SpeculativeConfig.Method;
import org.junit.jupiter.api.Test;

class SpeculativeConfigTest {
    @Test
    void defaultsAreAdaptiveWithNgramsOfThreeDownToOne() {
        SpeculativeConfig c = SpeculativeConfig.ngram(3);
        assertThat(c.method()).isEqualTo(Method.NGRAM);
        assertThat(c.numSpeculativeTokens()).isEqualTo(3);
        assertThat(c.adaptive()).isTrue();
        assertThat(c.ngramMin()).isEqualTo(1);
        assertThat(c.ngramMax()).isEqualTo(3);
        assertThat(c.enabled()).isTrue();
        assertThat(SpeculativeConfig.mtp(1).withAdaptive(false).adaptive()).isFalse();
        assertThat(SpeculativeConfig.ngram(2).withNgram(2, 5).ngramMax()).isEqualTo(5);
    }

    @Test
    void theNumberOfSpeculativeTokensIsOneToFourAndTheMessageNamesTheOption() {
        for (int k : new int[] {0, 5, -1}) {
            assertThatThrownBy(() -> SpeculativeConfig.mtp(k)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("'num-speculative-tokens' must be in [1, 4] with speculative method mtp, was " + k);
        }
        for (int k = 1; k <= 4; k++) {
            assertThat(SpeculativeConfig.ngram(k).numSpeculativeTokens()).isEqualTo(k);
        }
    }

    @Test
    void noneIgnoresTheOtherFields() {
        SpeculativeConfig c = new SpeculativeConfig(Method.NONE, 9, true, 1, 3);
        assertThat(c).isEqualTo(SpeculativeConfig.NONE);
        assertThat(c.numSpeculativeTokens()).isZero();
        assertThat(c.enabled()).isFalse();
    }

    @Test
    void ngramBoundsAreChecked() {
        assertThatThrownBy(() -> SpeculativeConfig.ngram(2).withNgram(0, 3)).hasMessageContaining("'ngram-min'");
        assertThatThrownBy(() -> SpeculativeConfig.ngram(2).withNgram(3, 2)).hasMessageContaining("'ngram-max'");
        assertThatThrownBy(() -> SpeculativeConfig.ngram(2).withNgram(1, 17)).hasMessageContaining("'ngram-max'");
        assertThatThrownBy(() -> new SpeculativeConfig(null, 2, true, 1, 3)).hasMessageContaining("speculative-method");
    }

    @Test
    void methodsParseInAnyCase() {
        assertThat(Method.parse("MTP")).isEqualTo(Method.MTP);
        assertThat(Method.parse(" ngram ")).isEqualTo(Method.NGRAM);
        assertThat(Method.parse("none")).isEqualTo(Method.NONE);
        assertThatThrownBy(() -> Method.parse("eagle")).hasMessage("'speculative-method' must be one of [mtp, ngram, none], was eagle");
    }
}
