package io.xpuflow.runtime.checkpoint;

import java.util.Objects;

/**
 * A tensor of a {@link Checkpoint} together with the shard file that holds it. Valid while the
 * checkpoint is open.
 *
 * @param name the tensor's name
 * @param info its header entry in {@code file}
 * @param file the open shard that holds it
 */
public record TensorRef(String name, TensorInfo info, SafetensorsFile file) {

    /** Rejects a reference whose name disagrees with its header entry. */
    public TensorRef {
        Objects.requireNonNull(info, "info");
        Objects.requireNonNull(file, "file");
        if (!info.name().equals(name)) {
            throw new IllegalArgumentException("name '" + name + "' does not match tensor " + info);
        }
    }

    /** Native address of the first data byte; see {@link SafetensorsFile#address(TensorInfo)}. */
    public long address() {
        return file.address(info);
    }

    /** The element type. */
    public DType dtype() {
        return info.dtype();
    }

    /** The dimensions, outermost first (a copy). */
    public long[] shape() {
        return info.shape();
    }

    /** The values widened to float; see {@link SafetensorsFile#readFloats(String)}. */
    public float[] readFloats() {
        return file.readFloats(name);
    }
}
