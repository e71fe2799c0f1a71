package io.xpuflow.runtime.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides every step: which requests take part, how many tokens each computes and who is preempted. A
 * CPU-only state machine over the waiting and running queues and the {@link KvCacheManager}; it never
 * touches the device, so it is tested without one ({@code SchedulerTest}).
 *
 * <p>The contract, as in vLLM's v1 scheduler:
 * <ul>
 *   <li>{@link #schedule()}: one call per device step, returns the immutable {@link StepPlan} the runner
 *       executes. It takes the KV blocks the plan needs (and frees those of preempted requests).</li>
 *   <li>{@link #updateFromOutput(StepPlan, RequestStatus[])}: after the step, the only place where a
 *       request's computed tokens advance; full blocks are indexed for prefix caching, blocks that slid out of
 *       a window are freed, and requests the output processor finished leave the running queue with their
 *       blocks freed.</li>
 *   <li>{@link #finishRequest(RequestState, RequestStatus)}: from outside a step, for a cancelled request.</li>
 * </ul>
 *
 * <p>There is no prefill or decode phase: every request has {@code numComputedTokens} tokens catching up to its
 * {@code numTokens}; a step hands out tokens under the token budget, running requests first (oldest
 * first), then waiting ones in arrival order. That covers chunked prefill (a long prompt takes what the
 * budget leaves), prefix caching (a hit starts {@code numComputedTokens} past the cached blocks) and
 * speculative decoding: a decoding request's drafts ({@link RequestState#specTokens}) are scheduled after
 * its last token, with lookahead blocks for them, and the budget cuts them from the tail (see
 * {@link StepPlan.ScheduledRequest}); the rejected ones are rolled back in
 * {@link #updateFromOutput(StepPlan, RequestStatus[], int[])}.
 *
 * <p>When a running request cannot get its blocks, the youngest running request is preempted: its blocks
 * are freed, it goes back to the head of the waiting queue and is recomputed from scratch when
 * re-admitted (its output so far is kept, so the recomputation includes it). A step that preempts
 * admits nobody, so the freed blocks go to the running requests that needed them rather than to a
 * newcomer that would be preempted next.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class Scheduler {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    private final KvCacheManager kv;
    private final int maxNumBatchedTokens;
    private final int maxNumSeqs;
    /** Not admitted yet, or preempted (those at the head); arrival order otherwise. */
    private final ArrayDeque<RequestState> waiting = new ArrayDeque<>();
    /** Admitted, in arrival order: the order of the batch and of preemption (youngest last). */
    private final List<RequestState> running = new ArrayList<>();

    /**
     * @param maxNumBatchedTokens token budget of one step
     * @param maxNumSeqs most requests running at once
     */
    Scheduler(KvCacheManager kv, int maxNumBatchedTokens, int maxNumSeqs) {
        if (maxNumBatchedTokens <= 0 || maxNumSeqs <= 0) {
            throw new IllegalArgumentException("the token budget (" + maxNumBatchedTokens + ") and the running"
                    + " sequence cap (" + maxNumSeqs + ") of a scheduler must be positive");
        }
        this.kv = kv;
        this.maxNumBatchedTokens = maxNumBatchedTokens;
        this.maxNumSeqs = maxNumSeqs;
    }

    /** Queues a new request behind the waiting ones. */
    void addRequest(RequestState r) {
        if (r.status != RequestStatus.WAITING) {
            throw new IllegalArgumentException("request " + r.id + " is " + r.status + ", only a new one can be added");
        }
        waiting.addLast(r);
    }

    int numRunning() {
        return running.size();
    }

    int numWaiting() {
        return waiting.size();
    }

    boolean hasUnfinished() {
        return !running.isEmpty() || !waiting.isEmpty();
    }

    /** Snapshot of the running queue, oldest first (for tests and diagnostics). */
    List<RequestState> running() {
        return List.copyOf(running);
    }

    /** The running queue itself, oldest first, read-only by contract (the drafter walks it every step). */
    List<RequestState> runningView() {
        return running;
    }

    /** Snapshot of the waiting queue, head first (for tests and diagnostics). */
    List<RequestState> waiting() {
        return List.copyOf(waiting);
    }

    /** Plans the next step; an empty plan when nothing can run (no requests, or admission waits for blocks). */
    StepPlan schedule() {
        if (!hasUnfinished()) {
            return StepPlan.empty();
        }
        long allocatedBefore = kv.numBlocksAllocated();
        long freedBefore = kv.numBlocksFreed();
        List<StepPlan.ScheduledRequest> scheduled = new ArrayList<>(Math.min(maxNumSeqs, running.size() + 1));
        List<RequestState> preempted = List.of();
        int budget = maxNumBatchedTokens;
        int logitRows = 0;
        for (int i = 0; i < running.size() && budget > 0; i++) {
            RequestState r = running.get(i);
            int count = Math.min(r.pending(), budget);
            // drafts ride after the last real token only when the step reaches it; the budget cuts them
            // from the tail (a cut leaves fewer drafts, never a partial real token)
            int drafts = count == r.pending() ? Math.min(r.numSpecTokens, budget - count) : 0;
            count += drafts;
            boolean placed = true;
            while (!kv.allocate(r, r.numComputedTokens, r.numComputedTokens + count)) {
                // the victim is never one already planned: they sit before i, victims are taken from the end
                RequestState victim = running.remove(running.size() - 1);
                preempt(victim);
                if (preempted.isEmpty()) {
                    preempted = new ArrayList<>(2);
                }
                preempted.add(victim);
                if (victim == r) {
                    placed = false;
                    break;
                }
            }
            if (!placed) {
                break;
            }
            StepPlan.ScheduledRequest s = plan(r, count, drafts, logitRows);
            scheduled.add(s);
            logitRows += s.numLogits();
            budget -= count;
        }
        while (preempted.isEmpty() && budget > 0 && running.size() < maxNumSeqs && !waiting.isEmpty()) {
            RequestState r = waiting.peekFirst();
            if (r.numComputedTokens == 0) {
                int hit = kv.matchPrefix(r);
                r.numComputedTokens = hit;
                if (r.preemptions == 0) {
                    r.cachedPromptTokens = Math.min(hit, r.numPromptTokens);
                }
            }
            int count = Math.min(r.pending(), budget);
            if (!kv.allocate(r, r.numComputedTokens, r.numComputedTokens + count)) {
                // strict arrival order: the head waits for free blocks, nobody overtakes it
                kv.releaseAll(r);
                r.numComputedTokens = 0;
                break;
            }
            waiting.pollFirst();
            r.status = RequestStatus.RUNNING;
            insertByArrival(r);
            r.numSpecTokens = 0; // a request coming (back) from the queue has no KV its drafts could follow
            StepPlan.ScheduledRequest s = plan(r, count, 0, logitRows);
            scheduled.add(s);
            logitRows += s.numLogits();
            budget -= count;
        }
        return new StepPlan(scheduled, maxNumBatchedTokens - budget, preempted,
                (int) (kv.numBlocksAllocated() - allocatedBefore), (int) (kv.numBlocksFreed() - freedBefore));
    }

    /**
     * @param count scheduled tokens, the {@code drafts} included
     * @param drafts the request's first drafts verified by this step; they are written after its last
     *     token so the executor computes them like any token
     */
    private static StepPlan.ScheduledRequest plan(RequestState r, int count, int drafts, int logitRows) {
        if (drafts > 0) {
            System.arraycopy(r.specTokens, 0, r.tokens, r.numTokens, drafts);
            r.numSpecTokens = 0;
            return new StepPlan.ScheduledRequest(r, r.numComputedTokens, count, 1 + drafts, logitRows,
                    java.util.Arrays.copyOf(r.specTokens, drafts));
        }
        int numLogits = r.logitsAtEveryPosition ? count : r.numComputedTokens + count == r.numTokens ? 1 : 0;
        return new StepPlan.ScheduledRequest(r, r.numComputedTokens, count, numLogits, numLogits == 0 ? -1 : logitRows,
                StepPlan.NO_DRAFTS);
    }

    /**
     * Advances every planned request by its scheduled tokens, then takes the finished ones out.
     *
     * @param finished per entry of {@code plan.scheduled()}: the final status the output processor gave the
     *     request in this step, or null while it goes on
     */
    void updateFromOutput(StepPlan plan, RequestStatus[] finished) {
        updateFromOutput(plan, finished, null);
    }

    /**
     * Advances every planned request by its scheduled tokens less its rejected drafts, then takes the
     * finished ones out. Rejected drafts are rolled back before full blocks are indexed and slid-out
     * blocks released, so prefix hashes only ever cover accepted tokens and a window is released from the
     * accepted length; their K/V stay in the (still held) lookahead blocks and are overwritten when those
     * positions are computed again.
     *
     * @param numRejected per entry: scheduled positions whose K/V do not belong to the request's tokens
     *     after this step (rejected drafts, and accepted ones past a stop); null when nothing was drafted
     */
    void updateFromOutput(StepPlan plan, RequestStatus[] finished, int[] numRejected) {
        List<StepPlan.ScheduledRequest> scheduled = plan.scheduled();
        if (finished.length < scheduled.size()) {
            throw new IllegalArgumentException(finished.length + " outcomes for a plan of " + scheduled.size()
                    + " requests");
        }
        for (int k = 0; k < scheduled.size(); k++) {
            StepPlan.ScheduledRequest s = scheduled.get(k);
            RequestState r = s.request();
            if (r.numComputedTokens != s.numComputedTokens()) {
                throw new IllegalStateException("request " + r.id + " has " + r.numComputedTokens + " computed tokens, the"
                        + " plan scheduled it from " + s.numComputedTokens());
            }
            int rejected = numRejected == null ? 0 : numRejected[k];
            if (rejected < 0 || rejected > s.draftTokenIds().length) {
                throw new IllegalArgumentException("request " + r.id + ": " + rejected + " rejected of "
                        + s.draftTokenIds().length + " drafts");
            }
            r.numComputedTokens += s.numScheduledTokens() - rejected;
            kv.commitFullBlocks(r);
            kv.releaseSlidOut(r, r.numComputedTokens);
            if (finished[k] != null) {
                finishRequest(r, finished[k]);
            }
        }
    }

    /**
     * Takes a request out of its queue, frees its blocks and gives it its final status. For a cancel
     * between steps, or a request the output processor finished.
     *
     * @return false if the request had finished already (nothing changed)
     */
    boolean finishRequest(RequestState r, RequestStatus status) {
        if (!status.isFinished()) {
            throw new IllegalArgumentException("request " + r.id + " cannot finish with status " + status);
        }
        if (r.status.isFinished()) {
            return false;
        }
        if (!waiting.remove(r)) {
            running.remove(r);
        }
        kv.releaseAll(r);
        r.status = status;
        return true;
    }

    /**
     * Empties both queues (running first) for an engine that stops, freeing every block it can: after a
     * failure the block accounting may be what broke, and every request must still be failed.
     *
     * @return the unfinished requests that were queued
     */
    List<RequestState> removeAll() {
        List<RequestState> all = new ArrayList<>(running);
        all.addAll(waiting);
        running.clear();
        waiting.clear();
        for (RequestState r : all) {
            try {
                kv.releaseAll(r);
            } catch (RuntimeException e) {
                LOG.debug("Could not release the KV blocks of request {}", r.id, e);
            }
        }
        return all;
    }

    private void insertByArrival(RequestState r) {
        int i = running.size();
        while (i > 0 && running.get(i - 1).arrivalOrder > r.arrivalOrder) {
            i--;
        }
        running.add(i, r);
    }

    private void preempt(RequestState r) {
        kv.releaseAll(r);
        r.numComputedTokens = 0;
        r.resetSpeculation();
        r.preemptions++;
        r.status = RequestStatus.PREEMPTED;
        waiting.addFirst(r);
        LOG.debug("Preempted request {} ({} tokens) for lack of KV blocks", r.id, r.numTokens);
    }
}
