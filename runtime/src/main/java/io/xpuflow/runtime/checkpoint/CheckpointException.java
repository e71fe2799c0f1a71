package io.xpuflow.runtime.checkpoint;

import java.nio.file.Path;

/**
 * A checkpoint file is missing, unreadable or malformed. The message always starts with the file and,
 * when the problem is with one tensor, names it, for example {@code "model.safetensors: tensor
 * 'model.layers.0.self_attn.q_proj.weight': data_offsets [10, 99999] end past the data section of 4096
 * bytes"}, so that a user can find what is wrong without a debugger.
 */
public final class CheckpointException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String tensorName;

    /**
     * @param file the file (or directory) at fault
     * @param tensorName the tensor at fault, or {@code null} when the problem is not with one tensor
     * @param problem what is wrong, without the file and tensor (they are prefixed)
     */
    public CheckpointException(Path file, String tensorName, String problem) {
        this(file, tensorName, problem, null);
    }

    /** As {@link #CheckpointException(Path, String, String)}, with the underlying cause. */
    public CheckpointException(Path file, String tensorName, String problem, Throwable cause) {
        super(file + (tensorName == null ? "" : ": tensor '" + tensorName + "'") + ": " + problem, cause);
        this.file = file;
        this.tensorName = tensorName;
    }

    /** The file or directory at fault. */
    public Path file() {
        return file;
    }

    /** The tensor at fault, or {@code null} when the problem is not with one tensor. */
    public String tensorName() {
        return tensorName;
    }
}
