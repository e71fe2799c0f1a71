package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.spec.SpecDecodeStats;

/**
 * The engine's counters in one place, written by the loop thread only; {@link #snapshot} turns them,
 * with the queue sizes and the KV cache's occupancy, into an immutable {@link EngineMetrics}.
 *
 * <p>Not thread-safe: the published snapshot is what other threads read.
 */
final class EngineStats {
    private static final long RATE_WINDOW_NANOS = 5_000_000_000L;

    private long steps;
    private long preemptions;
    private long finished;
    private long promptTokensComputed;
    private long outputTokens;
    private double sumTtftMs;
    private long ttftCount;
    private double sumTpotMs;
    private long tpotCount;
    private long rateWindowStart = System.nanoTime();
    private long rateWindowTokens;
    private double outputRate;
    /** Null while the engine does not speculate. */
    private final SpecDecodeStats spec;

    EngineStats() {
        this(0);
    }

    /** @param maxDraftTokens the engine's k, 0 without speculative decoding */
    EngineStats(int maxDraftTokens) {
        this.spec = maxDraftTokens > 0 ? new SpecDecodeStats(maxDraftTokens) : null;
    }

    /** One request's drafts were verified in a step. */
    void onVerification(int proposed, int accepted) {
        if (spec != null) {
            spec.record(proposed, accepted);
        }
    }

    void onStep() {
        steps++;
    }

    void onPreemption() {
        preemptions++;
    }

    /** Prompt tokens whose KV a step computed (prefix hits are not computed, recomputation after preemption is). */
    void onPromptTokensComputed(int n) {
        promptTokensComputed += n;
    }

    void onOutputToken() {
        outputTokens++;
        rateWindowTokens++;
    }

    /** A request finished with a result; its first-token and per-token latencies join the means. */
    void onFinished(RequestState r, long endNanos) {
        finished++;
        int generated = r.numGenerated();
        if (r.firstTokenNanos != 0) {
            sumTtftMs += (r.firstTokenNanos - r.arrivalNanos) / 1e6;
            ttftCount++;
            if (generated > 1) {
                sumTpotMs += (endNanos - r.firstTokenNanos) / 1e6 / (generated - 1);
                tpotCount++;
            }
        }
    }

    /** A request failed alone: it counts as finished but has no latencies worth averaging. */
    void onFailed() {
        finished++;
    }

    long steps() {
        return steps;
    }

    long finished() {
        return finished;
    }

    /** Rolls the output-rate window when it is over; called once per loop iteration. */
    void tick(long nowNanos) {
        if (nowNanos - rateWindowStart >= RATE_WINDOW_NANOS) {
            outputRate = rateWindowTokens * 1e9 / (nowNanos - rateWindowStart);
            rateWindowStart = nowNanos;
            rateWindowTokens = 0;
        }
    }

    EngineMetrics snapshot(int running, int waiting, KvCacheManager kv) {
        return new EngineMetrics(running, waiting, kv.usage(), kv.blocksUsed(), kv.blocksTotal(),
                kv.prefixQueriedTokens, kv.prefixHitTokens, preemptions, finished, promptTokensComputed,
                outputTokens, steps, ttftCount == 0 ? 0 : sumTtftMs / ttftCount,
                tpotCount == 0 ? 0 : sumTpotMs / tpotCount, outputRate,
                spec == null ? SpecDecodeStats.Snapshot.NONE : spec.snapshot());
    }
}
