package io.xpuflow.connector.sql;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationException;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One SQL function instance's use of the JVM-wide shared engine: a lease from the
 * {@link EngineRegistry} (so ML_PREDICT, LLM_GENERATE and DataStream operators with equal engine
 * settings on one TaskManager share one engine and batch together), submission of prompts with
 * stable request ids, and cancellation of what is still running when the function closes (a
 * cancelled or failed task must not leave requests holding KV blocks).
 */
final class EngineClient implements AutoCloseable {
    private final EngineRegistry.Lease lease;
    private final Set<GenerationHandle> inFlight = ConcurrentHashMap.newKeySet();

    private EngineClient(EngineRegistry.Lease lease) {
        this.lease = lease;
    }

    /**
     * Takes a reference on the shared engine for {@code spec}, loading the model if this JVM has none.
     *
     * @param modelPathName how the user set the model path, for the error message
     * @throws IllegalStateException naming the model path when the model cannot be opened
     */
    static EngineClient open(EngineSpec spec, String modelPathName) {
        try {
            return new EngineClient(EngineRegistry.acquire(spec.toOptions()));
        } catch (RuntimeException e) {
            throw new IllegalStateException("xpuflow could not open the model at " + modelPathName + " = '"
                    + spec.modelPath() + "': " + e.getMessage(), e);
        }
    }

    /**
     * Submits {@code prompt} under the id {@link RequestIds#of(String)}. Never throws for a request the
     * engine rejects: the returned future then fails with a {@link GenerationException} (see
     * {@link #failure}). Completion happens on the engine's loop thread.
     */
    CompletableFuture<GenerationResult> generate(String prompt, SamplingParams sampling) {
        String id = RequestIds.of(prompt);
        GenerationHandle handle;
        try {
            handle = lease.engine().submit(GenerationRequest.ofText(id, prompt, sampling));
        } catch (GenerationException e) {
            return CompletableFuture.failedFuture(e);
        } catch (RuntimeException e) {
            // e.g. the tokenizer failing on this prompt: a problem of this row, not of the job
            return CompletableFuture.failedFuture(new GenerationException(GenerationException.Code.INVALID_PARAM, id,
                    String.valueOf(e.getMessage()), e));
        }
        inFlight.add(handle);
        return handle.result().whenComplete((r, e) -> inFlight.remove(handle));
    }

    /** Why a generation failed, as an error code and a message. */
    record Failure(ErrorCode code, String message) {}

    static Failure failure(Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        ErrorCode code = cause instanceof GenerationException g ? ErrorCode.of(g.code()) : ErrorCode.ENGINE_ERROR;
        return new Failure(code, String.valueOf(cause.getMessage()));
    }

    @Override
    public void close() {
        inFlight.forEach(GenerationHandle::cancel);
        inFlight.clear();
        lease.close();
    }
}
