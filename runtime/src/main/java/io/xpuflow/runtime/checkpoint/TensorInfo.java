package io.xpuflow.runtime.checkpoint;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's header entry: its type, shape and byte range {@code [begin, end)} relative to the start
 * of the file's data section. Instances made by {@link SafetensorsFile} are validated (the range holds
 * exactly {@code numel * dtype.byteSize()} bytes); the record itself only rejects nulls.
 *
 * @param name the tensor's name in the header
 * @param dtype the element type
 * @param shape the dimensions, outermost first; empty for a scalar (copied in and out)
 * @param begin offset of the first byte within the data section
 * @param end offset one past the last byte within the data section
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    /** Copies {@code shape} so that the record stays immutable. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
    }

    /** The dimensions, outermost first (a copy). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions; 0 for a scalar. */
    public int rank() {
        return shape.length;
    }

    /** Number of elements: the product of the dimensions (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** Length of the byte range, {@code end - begin}. */
    public long byteSize() {
        return end - begin;
    }

    /** Type and shape for messages, such as {@code "BF16[512, 64]"}. */
    public String describe() {
        return dtype + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t
                && name.equals(t.name)
                && dtype == t.dtype
                && Arrays.equals(shape, t.shape)
                && begin == t.begin
                && end == t.end;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
    }

    @Override
    public String toString() {
        return name + " " + describe() + " @[" + begin + ", " + end + ")";
    }
}
