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
        for (KvCacheDtype d : values()) {
            if (d.optionValue().equalsIgnoreCase(value.trim())) {
                return d;
            }
        }
        throw new IllegalArgumentException("'" + value + "' is not a KV cache dtype: f32 or bf16");
    }

    /** The cache a weight format uses unless told otherwise: FP32 for the exact mode, BF16 for the fast ones. */
    public static KvCacheDtype defaultFor(WeightFormat format) {
        return format == WeightFormat.EXACT ? F32 : BF16;
    }
}
