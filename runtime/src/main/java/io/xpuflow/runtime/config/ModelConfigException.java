package io.xpuflow.runtime.config;

import java.nio.file.Path;

/** A {@code config.json} that cannot describe a model we can run; the message names the file and field. */
public final class ModelConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;

    public ModelConfigException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    public ModelConfigException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
