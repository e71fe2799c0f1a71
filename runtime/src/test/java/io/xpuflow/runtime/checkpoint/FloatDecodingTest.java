package io.xpuflow.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FloatDecodingTest {

    @Test
    void bf16KnownValues() {
        assertThat(FloatDecoding.bf16ToFloat((short) 0x3F80)).isEqualTo(1.0f);
        assertThat(FloatDecoding.bf16ToFloat((short) 0xC000)).isEqualTo(-2.0f);
        assertThat(FloatDecoding.bf16ToFloat((short) 0x7F80)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(FloatDecoding.bf16ToFloat((short) 0x7FC0)).isNaN();
        assertThat(FloatDecoding.bf16ToFloat((short) 0x0001)).isEqualTo(Float.intBitsToFloat(0x00010000));
    }

    @Test
    void f16KnownValues() {
        assertThat(FloatDecoding.f16ToFloat((short) 0x3C00)).isEqualTo(1.0f);
        assertThat(FloatDecoding.f16ToFloat((short) 0xC000)).isEqualTo(-2.0f);
        assertThat(FloatDecoding.f16ToFloat((short) 0x7BFF)).isEqualTo(65504.0f);
        assertThat(FloatDecoding.f16ToFloat((short) 0x0001)).isEqualTo(0x1p-24f);
        assertThat(FloatDecoding.f16ToFloat((short) 0x03FF)).isEqualTo(1023 * 0x1p-24f);
        assertThat(FloatDecoding.f16ToFloat((short) 0x0400)).isEqualTo(0x1p-14f);
        assertThat(FloatDecoding.f16ToFloat((short) 0x7C00)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(FloatDecoding.f16ToFloat((short) 0xFC00)).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(FloatDecoding.f16ToFloat((short) 0x7E00)).isNaN();
        assertThat(FloatDecoding.f16ToFloat((short) 0x7C01)).isNaN();
        assertThat(Float.floatToRawIntBits(FloatDecoding.f16ToFloat((short) 0x8000))).isEqualTo(0x80000000);
    }

    @Test
    void f16AllFiniteValuesMatchTheDefinition() {
        for (int bits = 0; bits < 0x10000; bits++) {
            int exp = (bits >>> 10) & 0x1F;
            if (exp == 0x1F) {
                continue;
            }
            int mant = bits & 0x3FF;
            double magnitude = exp == 0 ? mant * Math.pow(2, -24) : (1 + mant / 1024.0) * Math.pow(2, exp - 15);
            double expected = (bits & 0x8000) != 0 ? -magnitude : magnitude;
            assertThat((double) FloatDecoding.f16ToFloat((short) bits)).as("0x%04X", bits).isEqualTo(expected);
        }
    }

    @Test
    void e4m3KnownValues() {
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x38)).isEqualTo(1.0f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0xB8)).isEqualTo(-1.0f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x7E)).isEqualTo(448.0f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0xFE)).isEqualTo(-448.0f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x01)).isEqualTo(0x1p-9f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x07)).isEqualTo(7 * 0x1p-9f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x08)).isEqualTo(0x1p-6f);
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x7F)).isNaN();
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0xFF)).isNaN();
        // No infinities in the "fn" variant: S.1111.000 is an ordinary finite value.
        assertThat(FloatDecoding.e4m3ToFloat((byte) 0x78)).isEqualTo(256.0f);
        assertThat(Float.floatToRawIntBits(FloatDecoding.e4m3ToFloat((byte) 0x80))).isEqualTo(0x80000000);
    }

    @Test
    void e4m3AllValuesMatchTheDefinition() {
        for (int bits = 0; bits < 256; bits++) {
            if ((bits & 0x7F) == 0x7F) {
                continue;
            }
            int exp = (bits >>> 3) & 0xF;
            int mant = bits & 0x7;
            double magnitude = exp == 0 ? mant * Math.pow(2, -9) : (1 + mant / 8.0) * Math.pow(2, exp - 7);
            double expected = (bits & 0x80) != 0 ? -magnitude : magnitude;
            assertThat((double) FloatDecoding.e4m3ToFloat((byte) bits)).as("0x%02X", bits).isEqualTo(expected);
        }
    }
}
