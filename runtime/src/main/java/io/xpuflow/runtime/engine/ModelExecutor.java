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

    ModelExecutor(DeviceModel model, KvCache kvCache, StepBatch batch) {
        this.model = model;
        this.kvCache = kvCache;
        this.batch = batch;
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
     * Runs one step over the plan: {@link #prepare} then {@link #run}.
     *
     * @throws IllegalStateException if the device step fails (see {@link #run})
     */
    void execute(StepPlan plan) {
        prepare(plan);
        run();
    }

    /**
     * Fills the batch with the plan: every request's scheduled tokens as one sequence, in plan order (so
     * the rows of entry {@code k} start at the sum of the scheduled tokens before it), and its logit rows.
     * A scoring client may ask the batch for more outputs (MTP rows) between this and {@link #run}.
     */
    void prepare(StepPlan plan) {
        List<StepPlan.ScheduledRequest> scheduled = plan.scheduled();
        batch.clear();
        for (int k = 0; k < scheduled.size(); k++) {
            StepPlan.ScheduledRequest s = scheduled.get(k);
            RequestState r = s.request();
            int from = s.numComputedTokens();
            int n = s.numScheduledTokens();
            int row = batch.addSequence(r.tokens, from, n, from, r.tables);
            int firstWithLogits = n - s.numLogits();
            for (int j = firstWithLogits; j < n; j++) {
                int logitRow = batch.requestLogits(row + j);
                int planned = s.firstLogitRow() + j - firstWithLogits;
                if (logitRow != planned) {
                    throw new IllegalStateException("request " + r.id + ": the batch gave logit row " + logitRow
                            + ", the plan expects " + planned);
                }
            }
        }
    }

    /**
     * Runs the prepared batch on the device.
     *
     * @throws IllegalStateException if the device step fails: one call for the whole batch, so the fault
     *     cannot be pinned on a request and the cache may hold half-written blocks of every sequence in it
     */
    void run() {
        try {
            model.step(kvCache, batch);
        } catch (RuntimeException e) {
            throw new IllegalStateException("device step over " + batch.numSeqs() + " sequences failed: "
                    + e.getMessage(), e);
        }
    }

    /**
     * Runs another batch (the MTP drafter's) on the same model and KV cache.
     *
     * @throws IllegalStateException if the device step fails, as {@link #run()}
     */
    void run(StepBatch other) {
        try {
            model.step(kvCache, other);
        } catch (RuntimeException e) {
            throw new IllegalStateException("MTP drafting step over " + other.numSeqs() + " sequences and "
                    + other.numMtpRows() + " rows failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        kvCache.close();
    }
}
