package io.xpuflow.device;

import java.util.Locale;

/**
 * What the device computes matrix products in ({@code xpu_weight_format}); the ordinal is the native
 * code. Weights are converted once, when they are registered, into engine-owned memory in the layout
 * the kernels of that format read.
 */
public enum WeightFormat {
    /** The reference: weights decoded from their stored dtype to FP32 row by row, FP32 activations and sums. */
    EXACT,
    /** BF16 weights and activations, FP32 accumulation ({@code vdpbf16ps} on AVX-512 BF16). */
    BF16,
    /** INT8 weights with a scale per block of 32 along K, activations quantised per row on the fly (VNNI). */
    INT8;

    /** The option value that leaves the choice to the loader ({@link #parseOrAuto}); also used for {@link KvCacheDtype}. */
    public static final String AUTO = "auto";

    /** The option value: {@code exact}, {@code bf16} or {@code int8}. */
    public String optionValue() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses an option value, case-insensitively.
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static WeightFormat parse(String value) {
        WeightFormat f = lookup(value);
        if (f == null) {
            throw new IllegalArgumentException("'" + value + "' is not a weight format: exact, bf16 or int8");
        }
        return f;
    }

    /**
     * Parses an option value that may also be {@code auto}, case-insensitively, as the CLI, the Kafka job and the
     * SQL options take it.
     *
     * @return the format, or {@code null} for {@code auto} (or no value): the loader chooses from the checkpoint
     * @throws IllegalArgumentException naming the accepted values
     */
    public static WeightFormat parseOrAuto(String value) {
        if (value == null || value.trim().equalsIgnoreCase(AUTO)) {
            return null;
        }
        WeightFormat f = lookup(value);
        if (f == null) {
            throw new IllegalArgumentException("'" + value + "' is not a weight format: auto, exact, bf16 or int8");
        }
        return f;
    }

    private static WeightFormat lookup(String value) {
        for (WeightFormat f : values()) {
            if (value != null && f.optionValue().equalsIgnoreCase(value.trim())) {
                return f;
            }
        }
        return null;
    }
}
