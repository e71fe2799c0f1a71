package io.xpuflow.operators;

import io.xpuflow.runtime.engine.GenerationException;
import java.util.concurrent.CompletionException;

/**
 * Why a request's generation failed, as an error code and a message: what an operator emits in place of
 * a completion when the engine's future completes exceptionally.
 */
public record GenerationFailure(ErrorCode code, String message) {

    /**
     * The failure behind {@code error} as an engine future reports it: a {@link CompletionException} is
     * unwrapped, a {@link GenerationException} keeps its code, anything else is an {@link ErrorCode#ENGINE_ERROR}.
     */
    public static GenerationFailure of(Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        ErrorCode code = cause instanceof GenerationException g ? ErrorCode.of(g.code()) : ErrorCode.ENGINE_ERROR;
        return new GenerationFailure(code, String.valueOf(cause.getMessage()));
    }
}
