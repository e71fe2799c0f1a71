package io.xpuflow.connector.sql;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.GenerationFailure;
import io.xpuflow.operators.InferenceMetrics;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationException;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.flink.metrics.MetricGroup;

/**
 * One SQL function instance's use of the JVM-wide shared engine: a lease from the
 * {@link EngineRegistry} (so ML_PREDICT, LLM_GENERATE and DataStream operators with equal engine
 * settings on one TaskManager share one engine and batch together), submission of prompts with
 * stable request ids, the function's {@link InferenceMetrics} (the same names as the DataStream operator's),
 * and cancellation of what is still running when the function closes (a cancelled or failed task must not
 * leave requests holding KV blocks). After a failure of the shared engine the lease moves to a fresh one,
 * so only the rows running at that moment get no completion.
 */
final class EngineClient implements AutoCloseable {
    private final EngineRegistry.Lease lease;
    private final InferenceMetrics metrics;
    private final Set<GenerationHandle> inFlight = ConcurrentHashMap.newKeySet();

    private EngineClient(EngineRegistry.Lease lease, MetricGroup metricGroup) {
        this.lease = lease;
        this.metrics = new InferenceMetrics(metricGroup, lease::metrics);
    }

    /**
     * Takes a reference on the shared engine for {@code spec}, loading the model if this JVM has none.
     *
     * @param modelPathName how the user set the model path, for the error message
     * @param metricGroup the function's metric group ({@code FunctionContext.getMetricGroup()})
     * @throws IllegalStateException naming the model path when the model cannot be opened
     */
    static EngineClient open(EngineSpec spec, String modelPathName, MetricGroup metricGroup) {
        EngineRegistry.Lease lease;
        try {
            lease = EngineRegistry.acquire(spec.toOptions());
        } catch (RuntimeException e) {
            throw new IllegalStateException("xpuflow could not open the model at " + modelPathName + " = '"
                    + spec.modelPath() + "': " + e.getMessage(), e);
        }
        return new EngineClient(lease, metricGroup);
    }

    /**
     * Submits {@code prompt} under the id {@link RequestIds#of(String)}. Never throws for a request the
     * engine rejects: the returned future then fails with a {@link GenerationException} (see
     * {@link GenerationFailure}). Completion happens on the engine's loop thread.
     */
    CompletableFuture<GenerationResult> generate(String prompt, SamplingParams sampling) {
        long arrivalNanos = System.nanoTime(); // the start of e2eLatencyMs
        String id = RequestIds.of(prompt);
        GenerationHandle handle;
        try {
            // after a failure of the shared engine the lease moves to a fresh one, so later rows are served
            handle = lease.submit(GenerationRequest.ofText(id, prompt, sampling));
        } catch (GenerationException e) {
            metrics.error(ErrorCode.of(e.code()));
            return CompletableFuture.failedFuture(e);
        } catch (RuntimeException e) {
            // e.g. no fresh engine could be opened: a problem of ours for this row, never the row's INVALID_PARAM
            metrics.error(ErrorCode.ENGINE_ERROR);
            return CompletableFuture.failedFuture(new GenerationException(GenerationException.Code.ENGINE_ERROR, id,
                    "could not submit to the engine: " + e, e));
        }
        metrics.submitted();
        inFlight.add(handle);
        return handle.result().whenComplete((r, e) -> {
            inFlight.remove(handle);
            if (e == null) {
                metrics.finished(r, arrivalNanos);
            } else {
                metrics.error(GenerationFailure.of(e).code());
            }
        });
    }

    /** Counts a row that got no completion for a reason found before the engine (a NULL prompt, bad options). */
    void rowError(ErrorCode code) {
        metrics.error(code);
    }

    @Override
    public void close() {
        inFlight.forEach(GenerationHandle::cancel);
        inFlight.clear();
        lease.close();
    }
}
