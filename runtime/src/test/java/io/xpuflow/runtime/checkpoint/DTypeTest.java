package io.xpuflow.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class DTypeTest {

    @Test
    void parsesEverySafetensorsSpelling() {
        for (DType t : DType.values()) {
            assertThat(DType.parse(t.name())).isSameAs(t);
        }
        assertThat(DType.parse("F8_E4M3")).isSameAs(DType.F8_E4M3);
    }

    @Test
    void rejectsUnknownSpellings() {
        assertThatThrownBy(() -> DType.parse("F8_E5M2")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("F8_E5M2");
        assertThatThrownBy(() -> DType.parse("bf16")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> DType.parse(null)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void byteSizes() {
        assertThat(DType.F64.byteSize()).isEqualTo(8);
        assertThat(DType.F32.byteSize()).isEqualTo(4);
        assertThat(DType.F16.byteSize()).isEqualTo(2);
        assertThat(DType.BF16.byteSize()).isEqualTo(2);
        assertThat(DType.F8_E4M3.byteSize()).isEqualTo(1);
        assertThat(DType.I64.byteSize()).isEqualTo(8);
        assertThat(DType.I32.byteSize()).isEqualTo(4);
        assertThat(DType.I16.byteSize()).isEqualTo(2);
        assertThat(DType.I8.byteSize()).isEqualTo(1);
        assertThat(DType.U8.byteSize()).isEqualTo(1);
        assertThat(DType.BOOL.byteSize()).isEqualTo(1);
    }

    @Test
    void deviceCodesMatchTheNativeWeightTypes() {
        assertThat(DType.F32.deviceCode()).isEqualTo(0);
        assertThat(DType.BF16.deviceCode()).isEqualTo(1);
        assertThat(DType.F16.deviceCode()).isEqualTo(2);
        assertThat(DType.F8_E4M3.deviceCode()).isEqualTo(3);
        for (DType t : new DType[] {DType.F64, DType.I64, DType.I32, DType.I16, DType.I8, DType.U8, DType.BOOL}) {
            assertThat(t.deviceCode()).as(t.name()).isEqualTo(-1);
            assertThat(t.isWeightType()).as(t.name()).isFalse();
        }
        assertThat(DType.BF16.isWeightType()).isTrue();
        assertThat(DType.F8_E4M3.isWeightType()).isTrue();
    }
}
