package io.xpuflow.runtime.engine;

import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.KvCache;
import io.xpuflow.device.StepBatch;
import io.xpuflow.runtime.model.KvLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * The engine core without serving: the same {@link Scheduler}, {@link KvCacheManager} and
 * {@link ModelExecutor} as {@link LlmEngine}, driven synchronously for the numerics and CLI path
 * ({@code ModelRunner}): scoring (logits at every position, with whatever else the caller asks the step
 * for) and greedy generation. Prompts of one call share steps under the token budget, in the order
 * given; the KV cache holds every sequence at its full length, so nothing is ever preempted.
 *
 * <pre>{@code
 * try (ScoringCore core = ScoringCore.create(dm, layout, 16, 2048, 4, 256, 0, false, false)) {
 *     core.score(prompts, (chunks, batch) -> {}, (chunks, batch) -> copy logits of each chunk);
 * }
 * }</pre>
 *
 * <p>Not thread-safe: one caller at a time.
 */
public final class ScoringCore implements AutoCloseable {
    private final KvCacheManager kv;
    private final Scheduler scheduler;
    private final ModelExecutor executor;
    private final StepBatch batch;
    private final int maxSeqs;
    /** The requests of the call in progress, by prompt index (for {@link #runMtpOnly}). */
    private List<RequestState> current = List.of();

    /**
     * One prompt's part of a step.
     *
     * @param sequence index of the prompt in the call
     * @param firstPosition position of its first token in this step (tokens before it are computed)
     * @param numTokens its tokens in this step
     * @param firstRow its first row in the step's batch (its rows are consecutive)
     * @param firstLogitRow its first logit row; scoring has a logit row for every token, in order
     */
    public record Chunk(int sequence, int firstPosition, int numTokens, int firstRow, int firstLogitRow) {}

    /** What a scoring caller does around each device step; runs on the calling thread. */
    @FunctionalInterface
    public interface StepHook {
        void accept(List<Chunk> chunks, StepBatch batch);

        StepHook NONE = (chunks, batch) -> {};
    }

    private ScoringCore(KvCacheManager kv, KvCache kvCache, StepBatch batch, DeviceModel dm, int stepTokens,
                        int maxSeqs) {
        this.kv = kv;
        this.batch = batch;
        this.maxSeqs = maxSeqs;
        this.scheduler = new Scheduler(kv, stepTokens, maxSeqs);
        this.executor = new ModelExecutor(dm, kvCache, batch);
    }

    /**
     * A core whose KV cache holds {@code maxSeqs} sequences of {@code maxContext} tokens.
     *
     * @param maxMtpRows MTP rows a step may return (0 without MTP)
     * @param routing whether steps return the experts each MoE layer routed to
     * @param mtpHidden whether steps take and return MTP hidden states (chained MTP layers, {@link #runMtpOnly})
     */
    public static ScoringCore create(DeviceModel dm, KvLayout layout, int blockSize, int maxContext, int maxSeqs,
                                     int stepTokens, int maxMtpRows, boolean routing, boolean mtpHidden) {
        if (maxContext <= 0 || maxSeqs <= 0 || stepTokens <= 0) {
            throw new IllegalArgumentException("max context (" + maxContext + "), sequences (" + maxSeqs
                    + ") and tokens per step (" + stepTokens + ") must be positive");
        }
        int blocksPerSeq = KvCacheManager.ceilDiv(maxContext, blockSize);
        int[] blocks = new int[layout.numGroups()];
        long[] counts = new long[blocks.length];
        long[] blockBytes = new long[blocks.length];
        for (int g = 0; g < blocks.length; g++) {
            blocks[g] = Math.multiplyExact(blocksPerSeq, maxSeqs);
            counts[g] = blocks[g];
            blockBytes[g] = dm.kvBlockBytes(g, blockSize);
        }
        KvCacheManager kv = new KvCacheManager(layout, blockSize, blocks, blockBytes, blocksPerSeq, false);
        KvCache kvCache = dm.createKvCache(blockSize, counts);
        try {
            StepBatch batch = dm.newBatch(new StepBatch.Capacity(stepTokens, maxSeqs, blocksPerSeq, stepTokens,
                    maxMtpRows, routing, false, mtpHidden));
            return new ScoringCore(kv, kvCache, batch, dm, stepTokens, maxSeqs);
        } catch (RuntimeException e) {
            kvCache.close();
            throw e;
        }
    }

    /** The step's buffers, for the hooks: logits, MTP rows, routing. */
    public StepBatch batch() {
        return batch;
    }

    /**
     * Computes every prompt with logits at every position. Each step the scheduler hands out the token
     * budget to the prompts in order (chunked prefill); {@code beforeStep} may ask the filled batch for
     * more outputs (MTP rows), {@code afterStep} reads what the step returned.
     *
     * @throws IllegalArgumentException for more prompts than the core holds sequences
     */
    public void score(List<int[]> prompts, StepHook beforeStep, StepHook afterStep) {
        if (prompts.size() > maxSeqs) {
            throw new IllegalArgumentException(prompts.size() + " prompts, this runner holds " + maxSeqs + " sequences");
        }
        List<RequestState> requests = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            int[] ids = prompts.get(i);
            RequestState r = new RequestState("score-" + i, i, ids, ids.length, true, kv);
            requests.add(r);
        }
        current = requests;
        try {
            run(requests, (plan, chunks, finished) -> {
                beforeStep.accept(chunks, batch);
                executor.run();
                afterStep.accept(chunks, batch);
                for (int k = 0; k < chunks.size(); k++) {
                    StepPlan.ScheduledRequest s = plan.scheduled().get(k);
                    if (s.numComputedTokens() + s.numScheduledTokens() == s.request().numTokens) {
                        finished[k] = RequestStatus.FINISHED_LENGTH;
                    }
                }
            });
        } finally {
            current = List.of();
        }
    }

    /**
     * One MTP-only device step over explicit rows of the prompts being scored, for a hook that chains MTP
     * layers after reading its own step (the batch is cleared: read the decoder step first). Row i runs
     * prompt {@code sequences[i]} at {@code positions[i]} with input hidden {@code hiddenIn[i * hidden ..]}
     * and next token {@code nextTokens[i]} through MTP layer {@code layer}, writing that layer's KV at the
     * position; the caller reads the MTP logits and hidden outputs from {@link #batch()} afterwards.
     *
     * @throws IllegalStateException outside a {@link #score} call
     */
    public void runMtpOnly(int layer, int numRows, int[] sequences, int[] positions, int[] nextTokens,
                           float[] hiddenIn, int hidden) {
        if (current.isEmpty()) {
            throw new IllegalStateException("an MTP-only step runs inside a scoring call, from its hook");
        }
        batch.clear();
        batch.mtpLayer(layer);
        int[] slot = new int[current.size()];
        Arrays.fill(slot, -1);
        for (int i = 0; i < numRows; i++) {
            int p = sequences[i];
            if (slot[p] < 0) {
                slot[p] = batch.addSequenceTables(current.get(p).tables);
            }
            batch.requestMtp(slot[p], positions[i], nextTokens[i], hiddenIn, i * hidden);
        }
        if (numRows > 0) {
            executor.run();
        }
    }

    /**
     * Greedy generation: argmax at every step (ties to the lower id) until {@code maxNewTokens} or a token
     * {@code isStop} accepts (which is kept). The prompt is prefilled in chunks, then one step per token.
     *
     * @return the generated token ids (without the prompt)
     */
    public int[] generateGreedy(int[] prompt, int maxNewTokens, IntPredicate isStop) {
        if (maxNewTokens == 0) {
            return new int[0];
        }
        RequestState r = new RequestState("generate", 0, prompt, prompt.length + maxNewTokens, false, kv);
        run(List.of(r), (plan, chunks, finished) -> {
            executor.run();
            StepPlan.ScheduledRequest s = plan.scheduled().get(0);
            if (s.numLogits() > 0) {
                int next = batch.argmax(s.lastLogitRow());
                r.appendTokenId(next);
                if (r.numGenerated() >= maxNewTokens || isStop.test(next)) {
                    finished[0] = RequestStatus.FINISHED_STOPPED;
                }
            }
        });
        return Arrays.copyOfRange(r.tokens, r.numPromptTokens, r.numTokens);
    }

    /** What a mode does with a prepared step: run it, read it, say who finished. */
    @FunctionalInterface
    private interface StepBody {
        void run(StepPlan plan, List<Chunk> chunks, RequestStatus[] finished);
    }

    private void run(List<RequestState> requests, StepBody body) {
        try {
            requests.forEach(scheduler::addRequest);
            while (scheduler.hasUnfinished()) {
                StepPlan plan = scheduler.schedule();
                if (plan.isEmpty() || !plan.preempted().isEmpty()) {
                    // the cache holds every sequence at full length: either means the sizing above is wrong
                    throw new IllegalStateException("scoring step could not place " + scheduler.numWaiting()
                            + " waiting sequences (" + plan.preempted().size() + " preempted)");
                }
                executor.prepare(plan);
                List<Chunk> chunks = chunks(plan);
                RequestStatus[] finished = new RequestStatus[chunks.size()];
                body.run(plan, chunks, finished);
                scheduler.updateFromOutput(plan, finished);
            }
        } finally {
            scheduler.removeAll(); // after a failed step: every block back for the next call
        }
    }

    private static List<Chunk> chunks(StepPlan plan) {
        List<Chunk> out = new ArrayList<>(plan.scheduled().size());
        int row = 0;
        for (StepPlan.ScheduledRequest s : plan.scheduled()) {
            out.add(new Chunk((int) s.request().arrivalOrder, // the prompt's index: see score()
                     s.numComputedTokens(), s.numScheduledTokens(), row,
                    s.firstLogitRow()));
            row += s.numScheduledTokens();
        }
        return out;
    }

    /** Frees the KV cache's device memory. */
    @Override
    public void close() {
        executor.close();
    }
}
