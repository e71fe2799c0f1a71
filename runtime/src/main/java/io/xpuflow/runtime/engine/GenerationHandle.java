package io.xpuflow.runtime.engine;

import java.util.concurrent.CompletableFuture;

/** A submitted request: its result to come, and a way to cancel it. */
public final class GenerationHandle {
    private final String id;
    private final CompletableFuture<GenerationResult> result;
    private final LlmEngine engine;
    final RequestState state;

    GenerationHandle(RequestState state, LlmEngine engine) {
        this.id = state.id;
        this.result = state.future;
        this.engine = engine;
        this.state = state;
    }

    public String id() {
        return id;
    }

    /**
     * Completes with the result (finish reason {@link FinishReason#CANCELLED} after {@link #cancel()}), or
     * exceptionally with a {@link GenerationException} if the engine fails or closes first. Dependent
     * actions run on the engine's loop thread unless attached with an {@code *Async} method: keep them short.
     */
    public CompletableFuture<GenerationResult> result() {
        return result;
    }

    /** Stops the request at the next step boundary and frees its KV blocks; no-op once finished. */
    public void cancel() {
        engine.cancel(this);
    }
}
