package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.spec.SpecDecodeStats;

/**
 * A consistent snapshot of an engine's state and counters (taken between steps).
 *
 * @param running requests holding KV blocks and taking part in steps
 * @param waiting requests queued for admission (new or preempted)
 * @param kvUsage fraction of KV block memory in use, 0..1 (blocks kept only as prefix cache count as free)
 * @param kvBlocksUsed KV blocks in use over all groups
 * @param kvBlocksTotal KV blocks over all groups
 * @param prefixCacheQueriedTokens prompt tokens looked up in the prefix cache
 * @param prefixCacheHitTokens of those, tokens whose KV was reused
 * @param preemptions requests preempted (and later recomputed) so far
 * @param requestsFinished requests finished (any reason)
 * @param promptTokens prompt tokens computed so far (prefix hits excluded, recomputation included)
 * @param outputTokens tokens generated so far
 * @param steps device steps run so far
 * @param meanTimeToFirstTokenMs over finished requests that generated a token (0 before any)
 * @param meanTimePerOutputTokenMs over finished requests with two or more tokens (0 before any)
 * @param outputTokensPerSecond generated tokens per second over the last few seconds
 * @param speculative speculative decoding: drafts proposed and accepted, per draft position, verification
 *     steps (all zero when the engine does not speculate)
 */
public record EngineMetrics(int running, int waiting, double kvUsage, long kvBlocksUsed, long kvBlocksTotal,
                            long prefixCacheQueriedTokens, long prefixCacheHitTokens, long preemptions,
                            long requestsFinished, long promptTokens, long outputTokens, long steps,
                            double meanTimeToFirstTokenMs, double meanTimePerOutputTokenMs,
                            double outputTokensPerSecond, SpecDecodeStats.Snapshot speculative) {

    /** Share of looked-up prompt tokens served from the prefix cache, 0..1. */
    public double prefixCacheHitRate() {
        return prefixCacheQueriedTokens == 0 ? 0 : (double) prefixCacheHitTokens / prefixCacheQueriedTokens;
    }
}
