package io.xpuflow.runtime.engine;

import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.KvCache;
import io.xpuflow.device.StepBatch;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * Turns a {@link StepPlan} into one device step: fills the {@link StepBatch} with exactly the planned
 * tokens, block tables and logit rows, and calls {@link DeviceModel#step}. It decides nothing; what a
 * step produced (logits, MTP logits, routing) is read from {@link #batch()} until the next step.
 *
 * <p>Owns the KV cache's device memory (closed with the executor), not the model. Owned by one thread.
 */
final class ModelExecutor implements AutoCloseable {
    private final DeviceModel model;
    private final KvCache kvCache;
    private final StepBatch batch;
    /** Ask the device for MTP layer 0 logits at every logit row of requests scored at every position. */
    private final boolean mtpForScoring;

    ModelExecutor(DeviceModel model, KvCache kvCache, StepBatch batch, boolean mtpForScoring) {
        this.model = model;
        this.kvCache = kvCache;
        this.batch = batch;
        this.mtpForScoring = mtpForScoring;
    }

    /** The step's buffers: the plan's logit rows in {@link #logits()}, and what else the step returned. */
    StepBatch batch() {
        return batch;
    }

    /** Logit rows of the last step, {@code [numLogitRows, vocab]} row-major, valid until the next step. */
    FloatBuffer logits() {
        return batch.logitsView();
    }

    /**
     * Runs one step over the plan.
     *
     * @throws IllegalStateException if the device step fails: one call for the whole batch, so the fault
     *     cannot be pinned on a request and the cache may hold half-written blocks of every sequence in it
     */
    void execute(StepPlan plan) {
        List<StepPlan.ScheduledRequest> scheduled = plan.scheduled();
        batch.clear();
        for (int k = 0; k < scheduled.size(); k++) {
            StepPlan.ScheduledRequest s = scheduled.get(k);
            RequestState r = s.request();
            int from = s.numComputedTokens();
            int n = s.numScheduledTokens();
            int row = batch.addSequence(r.tokens, from, n, from, r.tables);
            for (int j = n - s.numLogits(); j < n; j++) {
                int logitRow = batch.requestLogits(row + j);
                if (logitRow != s.firstLogitRow() + j - (n - s.numLogits())) {
                    throw new IllegalStateException("request " + r.id + ": the batch gave logit row " + logitRow
                            + ", the plan expects " + (s.firstLogitRow() + j - (n - s.numLogits())));
                }
                int pos = from + j;
                if (mtpForScoring && r.logitsAtEveryPosition && pos + 1 < r.numTokens) {
                    batch.requestMtp(row + j, r.tokens[pos + 1]);
                }
            }
        }
        try {
            model.step(kvCache, batch);
        } catch (RuntimeException e) {
            throw new IllegalStateException("device step over " + scheduled.size() + " sequences failed: "
                    + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        kvCache.close();
    }
}
