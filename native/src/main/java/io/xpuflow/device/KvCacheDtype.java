package io.xpuflow.device;

import java.util.Locale;

/** The element type of the paged KV cache ({@code xpu_kv_dtype}); the ordinal is the native code. */
public enum KvCacheDtype {
    /** FP32: the exact mode's cache. */
    F32,
    /** BF16: half the memory and bandwidth; the fast modes' default. */
    BF16;

    /** The option value: {@code f32} or {@code bf16}. */
    public String optionValue() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses an option value, case-insensitively.
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static KvCacheDtype parse(String value) {
        KvCacheDtype d = lookup(value);
        if (d == null) {
            throw new IllegalArgumentException("'" + value + "' is not a KV cache dtype: f32 or bf16");
        }
        return d;
    }

    /**
     * Parses an option value that may also be {@code auto}, case-insensitively, as the CLI, the Kafka job and the
     * SQL options take it.
     *
     * @return the dtype, or {@code null} for {@code auto} (or no value): {@link #defaultFor} the weight format
     * @throws IllegalArgumentException naming the accepted values
     */
    public static KvCacheDtype parseOrAuto(String value) {
        if (value == null || value.trim().equalsIgnoreCase(WeightFormat.AUTO)) {
            return null;
        }
        KvCacheDtype d = lookup(value);
        if (d == null) {
            throw new IllegalArgumentException("'" + value + "' is not a KV cache dtype: auto, f32 or bf16");
        }
        return d;
    }

    private static KvCacheDtype lookup(String value) {
        for (KvCacheDtype d : values()) {
            if (value != null && d.optionValue().equalsIgnoreCase(value.trim())) {
                return d;
            }
        }
        return null;
    }

    /** The cache a weight format uses unless told otherwise: FP32 for the exact mode, BF16 for the fast ones. */
    public static KvCacheDtype defaultFor(WeightFormat format) {
        return format == WeightFormat.EXACT ? F32 : BF16;
    }
}
