package io.xpuflow.runtime.checkpoint;

/**
 * Exact widening of the narrow float formats weights are stored in. Java 17 has no half-float
 * conversion of its own, and every value of these formats is exactly representable as a float, so the
 * conversions build the float's bits (or scale an integer by a power of two) without rounding.
 */
final class FloatDecoding {
    /** All 256 fp8 values, because a table lookup is cheaper than decoding per element. */
    private static final float[] E4M3 = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            E4M3[b] = decodeE4m3(b);
        }
    }

    private FloatDecoding() {}

    /** bfloat16 is the upper half of a float32, so every value (NaN payloads included) carries over. */
    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
    static float f16ToFloat(short bits) {
        int sign = (bits >>> 15) & 1;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0) {
            // Subnormal: no implicit 1; mant * 2^-24 is exact in float.
            float v = mant * 0x1p-24f;
            return sign == 0 ? v : -v;
        }
        if (exp == 0x1F) {
            // Keep the payload's top bits so that a NaN stays a NaN.
            return Float.intBitsToFloat((sign << 31) | 0x7F800000 | (mant << 13));
        }
        return Float.intBitsToFloat((sign << 31) | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** OCP fp8 E4M3 "fn": bias 7, 3 mantissa bits, no infinities, only S.1111.111 is NaN. */
    static float e4m3ToFloat(byte bits) {
        return E4M3[bits & 0xFF];
    }

    private static float decodeE4m3(int b) {
        int sign = (b >>> 7) & 1;
        int exp = (b >>> 3) & 0xF;
        int mant = b & 0x7;
        if (exp == 0xF && mant == 0x7) {
            return Float.NaN;
        }
        float v = exp == 0
                ? mant * 0x1p-9f
                : Float.intBitsToFloat(((exp - 7 + 127) << 23) | (mant << 20));
        return sign == 0 ? v : -v;
    }
}
