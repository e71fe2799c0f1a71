package io.xpuflow.runtime.engine;

import java.util.List;

/**
 * One engine step, end to end: the {@link Scheduler} plans it, the {@link ModelExecutor} runs it on the
 * device, the {@link OutputProcessor} samples and streams, and the scheduler advances and frees
 * (vLLM's {@code EngineCore.step}). Knows nothing of threads, inboxes or the public API: that is
 * {@link LlmEngine}'s, which drives this from its loop thread.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class EngineCore implements AutoCloseable {
    private final KvCacheManager kv;
    private final Scheduler scheduler;
    private final ModelExecutor executor;
    private final OutputProcessor output;
    private final EngineStats stats;
    /** Per entry of the current plan: the final status its output gave the request, or null. */
    private final RequestStatus[] finished;
    /** Per entry of the current plan: scheduled positions rolled back (rejected drafts). */
    private final int[] rejected;
    /** Null when the engine does not speculate. */
    private final Drafter drafter;

    EngineCore(KvCacheManager kv, Scheduler scheduler, ModelExecutor executor, OutputProcessor output,
               EngineStats stats, int maxNumSeqs) {
        this(kv, scheduler, executor, output, stats, maxNumSeqs, null);
    }

    EngineCore(KvCacheManager kv, Scheduler scheduler, ModelExecutor executor, OutputProcessor output,
               EngineStats stats, int maxNumSeqs, Drafter drafter) {
        this.kv = kv;
        this.scheduler = scheduler;
        this.executor = executor;
        this.output = output;
        this.stats = stats;
        this.finished = new RequestStatus[maxNumSeqs];
        this.rejected = new int[maxNumSeqs];
        this.drafter = drafter;
    }

    KvCacheManager kv() {
        return kv;
    }

    /** Test hook: sees every verification on the loop thread. */
    void verificationTrace(OutputProcessor.VerificationTrace t) {
        output.trace = t;
    }

    EngineStats stats() {
        return stats;
    }

    void addRequest(RequestState r) {
        scheduler.addRequest(r);
    }

    /** Cancels a queued or running request: its blocks are freed and its result says CANCELLED. */
    void abort(RequestState r) {
        if (scheduler.finishRequest(r, RequestStatus.FINISHED_ABORTED)) {
            output.finish(r);
        }
    }

    boolean hasUnfinished() {
        return scheduler.hasUnfinished();
    }

    int numRunning() {
        return scheduler.numRunning();
    }

    int numWaiting() {
        return scheduler.numWaiting();
    }

    /**
     * Schedules and runs one step; nothing happens when nothing can run.
     *
     * @throws IllegalStateException if the device step failed (the engine as a whole cannot go on)
     */
    void step() {
        StepPlan plan = scheduler.schedule();
        for (int i = 0; i < plan.preempted().size(); i++) {
            stats.onPreemption();
        }
        if (plan.isEmpty()) {
            return;
        }
        List<StepPlan.ScheduledRequest> scheduled = plan.scheduled();
        long now = System.nanoTime();
        for (int k = 0; k < scheduled.size(); k++) {
            RequestState r = scheduled.get(k).request();
            if (r.firstScheduledNanos == 0) {
                r.firstScheduledNanos = now;
            }
        }
        if (drafter == null) {
            executor.execute(plan);
        } else {
            executor.prepare(plan);
            drafter.beforeExecute(plan, executor.batch());
            executor.run();
            drafter.afterExecute(plan, executor.batch());
        }
        stats.onStep();
        for (int k = 0; k < scheduled.size(); k++) {
            StepPlan.ScheduledRequest s = scheduled.get(k);
            stats.onPromptTokensComputed(s.numPromptTokens());
            rejected[k] = 0;
            if (s.draftTokenIds().length > 0) {
                OutputProcessor.SpecOutcome o = output.processSpec(s.request(), executor.logits(), s.firstLogitRow(),
                        s.draftTokenIds());
                finished[k] = o.status();
                rejected[k] = o.numRejected();
            } else {
                finished[k] = s.numLogits() == 0 ? null : output.process(s.request(), executor.logits(), s.lastLogitRow());
            }
        }
        scheduler.updateFromOutput(plan, finished, rejected);
        for (int k = 0; k < scheduled.size(); k++) {
            if (finished[k] != null) {
                finished[k] = null;
                output.finish(scheduled.get(k).request());
            }
        }
        if (drafter != null) {
            // after the update, so drafts follow the accepted tokens and finished requests are gone
            drafter.propose(scheduler.runningView());
        }
    }

    /** Takes every queued request out, blocks freed as far as possible (the engine stops). */
    List<RequestState> removeAll() {
        return scheduler.removeAll();
    }

    EngineMetrics snapshot() {
        return stats.snapshot(scheduler.numRunning(), scheduler.numWaiting(), kv);
    }

    /** Frees the KV cache's device memory. */
    @Override
    public void close() {
        executor.close();
    }
}
