package io.xpuflow.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The option values of the weight format and the KV cache dtype, as the CLI, the Kafka job and SQL take them. */
class FormatOptionValuesTest {
    @Test
    void weightFormatsParseInAnyCaseAndAutoIsNull() {
        for (WeightFormat f : WeightFormat.values()) {
            assertThat(WeightFormat.parseOrAuto(f.optionValue())).isSameAs(f);
            assertThat(WeightFormat.parseOrAuto(" " + f.name() + " ")).isSameAs(f);
            assertThat(WeightFormat.parse(f.optionValue())).isSameAs(f);
        }
        assertThat(WeightFormat.parseOrAuto("auto")).isNull();
        assertThat(WeightFormat.parseOrAuto("AUTO")).isNull();
        assertThat(WeightFormat.parseOrAuto(null)).isNull();
        assertThatThrownBy(() -> WeightFormat.parseOrAuto("fp8")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("'fp8' is not a weight format: auto, exact, bf16 or int8");
        assertThatThrownBy(() -> WeightFormat.parse("auto")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("'auto' is not a weight format: exact, bf16 or int8");
    }

    @Test
    void kvCacheDtypesParseInAnyCaseAndAutoIsNull() {
        for (KvCacheDtype d : KvCacheDtype.values()) {
            assertThat(KvCacheDtype.parseOrAuto(d.name())).isSameAs(d);
            assertThat(KvCacheDtype.parse(d.optionValue())).isSameAs(d);
        }
        assertThat(KvCacheDtype.parseOrAuto("Auto")).isNull();
        assertThat(KvCacheDtype.parseOrAuto(null)).isNull();
        assertThatThrownBy(() -> KvCacheDtype.parseOrAuto("f16")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("'f16' is not a KV cache dtype: auto, f32 or bf16");
        assertThatThrownBy(() -> KvCacheDtype.parseOrAuto("")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("auto, f32 or bf16");
    }
}
