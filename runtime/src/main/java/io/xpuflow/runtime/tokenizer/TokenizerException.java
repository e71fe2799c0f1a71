package io.xpuflow.runtime.tokenizer;

import java.nio.file.Path;

/**
 * A tokenizer file that cannot be used: missing, not JSON, a field of the wrong shape, or a component type
 * this engine does not implement. The message names the file and the field (as a JSON path such as
 * {@code pre_tokenizer.pretokenizers[0].pattern}).
 */
public final class TokenizerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;

    public TokenizerException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    public TokenizerException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }
}
