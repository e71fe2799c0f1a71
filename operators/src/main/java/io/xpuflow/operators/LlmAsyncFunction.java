package io.xpuflow.operators;

import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationException;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.streaming.api.functions.async.RichAsyncFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Generates text for each stream element with a shared {@link LlmEngine}.
 *
 * <p>{@code open} takes the engine for its {@link EngineSpec} from the JVM-wide
 * {@link EngineRegistry}, so every parallel subtask in one TaskManager uses one engine (one weights
 * mapping, one KV cache) and the engine batches their requests together. {@code asyncInvoke} maps the
 * element to a request and submits it; the engine's future completes Flink's {@link ResultFuture}.
 * Elements that cannot be served become outputs of {@link ResultMapper#onError}, never failures, so bad
 * input cannot stop the job. Should the shared engine fail as a whole, the elements it was running become
 * {@link ErrorCode#ENGINE_ERROR} outputs and the next element is submitted to a fresh engine (the lease
 * moves, see {@link EngineRegistry.Lease#engine()}), so one failure does not turn every later element of
 * the TaskManager into an error until a restart. A timeout cancels the engine request and, by {@link TimeoutPolicy}, emits
 * an error output (default) or fails the job.
 *
 * <pre>{@code
 * DataStream<Out> out = AsyncDataStream.unorderedWait(in,
 *         new LlmAsyncFunction<>(EngineSpec.of("/models/mimo"), toRequest, toOutput, TimeoutPolicy.EMIT_ERROR),
 *         5, TimeUnit.MINUTES, 256);
 * }</pre>
 *
 * <p>Flink's async capacity bounds the elements in flight per subtask; the engine's KV budget decides
 * how many of them run at once. Metrics: see {@link InferenceMetrics}.
 */
public class LlmAsyncFunction<IN, OUT> extends RichAsyncFunction<IN, OUT> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(LlmAsyncFunction.class);

    /** What a timed-out element becomes. */
    public enum TimeoutPolicy {
        /** An error output with code {@link ErrorCode#TIMEOUT}; the job goes on. */
        EMIT_ERROR,
        /** A failure of the job (Flink's restart strategy decides what follows). */
        FAIL
    }

    private final EngineSpec spec;
    private final RequestMapper<IN> requestMapper;
    private final ResultMapper<IN, OUT> resultMapper;
    private final TimeoutPolicy timeoutPolicy;

    private transient EngineRegistry.Lease lease;
    private transient InferenceMetrics metrics;
    private transient Map<ResultFuture<OUT>, GenerationHandle> inFlight;

    public LlmAsyncFunction(EngineSpec spec, RequestMapper<IN> requestMapper, ResultMapper<IN, OUT> resultMapper,
                            TimeoutPolicy timeoutPolicy) {
        this.spec = spec;
        this.requestMapper = requestMapper;
        this.resultMapper = resultMapper;
        this.timeoutPolicy = timeoutPolicy;
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        lease = EngineRegistry.acquire(spec.toOptions());
        inFlight = new ConcurrentHashMap<>();
        metrics = new InferenceMetrics(getRuntimeContext().getMetricGroup(), lease::metrics);
        LOG.info("Subtask {} uses the shared engine for {}", getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                spec.modelPath());
    }

    /**
     * The shared engine this subtask uses (after {@code open}); after a failure of the engine, the fresh one
     * that replaced it (see {@link EngineRegistry.Lease#engine()}).
     */
    protected LlmEngine engine() {
        return lease.engine();
    }

    @Override
    public void asyncInvoke(IN element, ResultFuture<OUT> resultFuture) {
        long arrivalNanos = System.nanoTime(); // the start of e2eLatencyMs
        GenerationRequest request;
        try {
            request = requestMapper.toRequest(element);
        } catch (InvalidInputException e) {
            emitError(element, e.requestId(), e.code(), e.getMessage(), resultFuture);
            return;
        } catch (IllegalArgumentException e) {
            // SamplingParams and GenerationRequest refuse the element's values this way, naming the field
            emitError(element, null, ErrorCode.INVALID_PARAM, String.valueOf(e.getMessage()), resultFuture);
            return;
        } catch (RuntimeException e) {
            // a bug of the mapper, not a fault of the input: reported as an internal error, and the job goes on
            LOG.warn("The request mapper failed on an element", e);
            emitError(element, null, ErrorCode.ENGINE_ERROR, "request mapper failed: " + e, resultFuture);
            return;
        }
        String requestId = request.id();
        GenerationHandle handle;
        try {
            // the lease moves to a fresh engine should the shared one have failed
            handle = lease.submit(request);
        } catch (GenerationException e) {
            emitError(element, e.requestId(), ErrorCode.of(e.code()), e.getMessage(), resultFuture);
            return;
        } catch (RuntimeException e) {
            // the engine failing, or no fresh engine opening, is ours and never the input's INVALID_PARAM
            LOG.warn("Could not submit request {}", requestId, e);
            emitError(element, requestId, ErrorCode.ENGINE_ERROR, String.valueOf(e), resultFuture);
            return;
        }
        metrics.submitted();
        inFlight.put(resultFuture, handle);
        String id = requestId;
        handle.result().whenComplete((result, error) -> {
            if (inFlight.remove(resultFuture) == null) {
                // timeout() or close() took this element first (and cancelled the request): the element is
                // answered already, so the cancelled result must not reach the output or the metrics
                return;
            }
            if (error == null) {
                complete(element, result, arrivalNanos, resultFuture);
            } else {
                GenerationFailure failure = GenerationFailure.of(error);
                emitError(element, id, failure.code(), failure.message(), resultFuture);
            }
        });
    }

    // Both completions hand Flink a supplier: it runs on the task's mailbox thread, so the output mapping
    // (JSON writing, say) and the metric updates stay off the engine's loop thread, which completes the
    // engine's futures and must go on to the next step. A mapper that throws fails the job, as any operator.

    private void complete(IN element, GenerationResult result, long arrivalNanos, ResultFuture<OUT> resultFuture) {
        resultFuture.complete(() -> {
            metrics.finished(result, arrivalNanos); // on the mailbox thread: the latency includes the wait for it
            return List.of(resultMapper.onResult(element, result));
        });
    }

    private void emitError(IN element, String requestId, ErrorCode code, String message, ResultFuture<OUT> resultFuture) {
        resultFuture.complete(() -> {
            metrics.error(code);
            return List.of(resultMapper.onError(element, requestId, code, message));
        });
    }

    @Override
    public void timeout(IN element, ResultFuture<OUT> resultFuture) {
        GenerationHandle handle = inFlight.remove(resultFuture);
        String id = handle == null ? null : handle.id();
        // complete first: cancelling completes the engine's future with a CANCELLED result (at once when the
        // request is still queued), and Flink keeps only the first completion of a ResultFuture
        if (timeoutPolicy == TimeoutPolicy.FAIL) {
            resultFuture.completeExceptionally(new TimeoutException("request " + id + " timed out in the LLM operator"));
        } else {
            emitError(element, id, ErrorCode.TIMEOUT, "request did not finish within the operator's timeout", resultFuture);
        }
        if (handle != null) {
            handle.cancel();
        }
    }

    @Override
    public void close() throws Exception {
        if (inFlight != null) {
            // requests of a cancelled or failed task: stop them so they do not hold KV blocks
            inFlight.values().forEach(GenerationHandle::cancel);
            inFlight.clear();
        }
        if (lease != null) {
            lease.close();
            lease = null;
        }
    }
}
