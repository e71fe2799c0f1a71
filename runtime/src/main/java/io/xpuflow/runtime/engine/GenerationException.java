package io.xpuflow.runtime.engine;

/**
 * A request the engine cannot serve, with a code a caller can act on (and a connector can put into an
 * error record). Thrown by {@link LlmEngine#submit} for requests rejected up front; the result future of
 * an accepted request fails with it when its own output could not be produced (non-finite logits, say:
 * that request alone, {@code ENGINE_ERROR}), or when the engine fails as a whole or closes.
 *
 * <p>{@code INVALID_PARAM} and {@code PROMPT_TOO_LONG} are the request's fault and only ever raised at
 * submission; a fault of the engine (tokenizer, sampler, device) is {@code ENGINE_ERROR}, never one of them.
 */
public final class GenerationException extends RuntimeException {
    /** What went wrong, in the vocabulary of error records. */
    public enum Code {
        /** A field or parameter of the request is invalid (names the field). */
        INVALID_PARAM,
        /** The prompt (with what must be generated) does not fit the model's context. */
        PROMPT_TOO_LONG,
        /**
         * Something failed inside the engine: the request's output processing (non-finite logits, no token
         * to sample), the engine as a whole (a device step), or its tokenizer.
         */
        ENGINE_ERROR,
        /** The engine was closed before the request finished. */
        ENGINE_CLOSED
    }

    private final Code code;
    private final String requestId;

    public GenerationException(Code code, String requestId, String message) {
        this(code, requestId, message, null);
    }

    public GenerationException(Code code, String requestId, String message, Throwable cause) {
        super("request '" + requestId + "': " + message, cause);
        this.code = code;
        this.requestId = requestId;
    }

    public Code code() {
        return code;
    }

    public String requestId() {
        return requestId;
    }
}
