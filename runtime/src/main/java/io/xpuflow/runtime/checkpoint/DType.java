package io.xpuflow.runtime.checkpoint;

import java.util.HashMap;
import java.util.Map;

/**
 * The element types a safetensors file can hold, spelled as in its header. Only the floating-point
 * types the device computes with ({@link #isWeightType()}) have a native weight code.
 */
public enum DType {
    F64(8, -1),
    F32(4, 0),
    F16(2, 2),
    BF16(2, 1),
    F8_E4M3(1, 3),
    I64(8, -1),
    I32(4, -1),
    I16(2, -1),
    I8(1, -1),
    U8(1, -1),
    BOOL(1, -1);

    private static final Map<String, DType> BY_NAME = new HashMap<>();

    static {
        for (DType t : values()) {
            BY_NAME.put(t.name(), t);
        }
    }

    private final int byteSize;
    private final int deviceCode;

    DType(int byteSize, int deviceCode) {
        this.byteSize = byteSize;
        this.deviceCode = deviceCode;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The native weight dtype code ({@code F32=0, BF16=1, F16=2, F8_E4M3=3}), or {@code -1} for a type
     * the device does not take as weights.
     */
    public int deviceCode() {
        return deviceCode;
    }

    /** Whether the device takes this type as weights (and {@link SafetensorsFile#readFloats} reads it). */
    public boolean isWeightType() {
        return deviceCode >= 0;
    }

    /**
     * The type for a safetensors header spelling such as {@code "BF16"} or {@code "F8_E4M3"}.
     *
     * @throws IllegalArgumentException if the spelling is not one of this enum's (case matters, as in
     *     the format)
     */
    public static DType parse(String safetensorsName) {
        DType t = BY_NAME.get(safetensorsName);
        if (t == null) {
            throw new IllegalArgumentException("unknown safetensors dtype '" + safetensorsName + "'");
        }
        return t;
    }
}
