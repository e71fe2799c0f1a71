package io.xpuflow.runtime.engine;

import java.time.Duration;
import java.util.Locale;

/**
 * The engine's periodic stats line, as vLLM logs it: throughput over the interval since the last line
 * (from the difference of two {@link EngineMetrics} snapshots), then the state at the end of it.
 *
 * <pre>
 * Engine stories260k: Avg prompt throughput: 812.4 tokens/s, Avg generation throughput: 95.1 tokens/s,
 * Running: 3 reqs, Waiting: 0 reqs, KV cache usage: 4.2%, Prefix cache hit rate: 37.5%
 * </pre>
 *
 * <p>It only turns snapshots into lines; the engine's loop thread decides when to take a snapshot and
 * logs what comes back. Not thread-safe: one thread (the loop) calls it.
 */
final class StatsLine {
    private final String engineName;
    private final long intervalNanos;
    private EngineMetrics last;
    private long lastNanos;

    /**
     * @param interval a positive interval between lines
     * @param start the snapshot the first line's rates are counted from, taken at {@code nowNanos}
     */
    StatsLine(String engineName, Duration interval, EngineMetrics start, long nowNanos) {
        if (interval.isZero() || interval.isNegative()) {
            throw new IllegalArgumentException("stats interval must be positive: " + interval);
        }
        this.engineName = engineName;
        this.intervalNanos = interval.toNanos();
        this.last = start;
        this.lastNanos = nowNanos;
    }

    /** Whether a line may be due at {@code nowNanos}: cheap, so the loop asks at every iteration. */
    boolean due(long nowNanos) {
        return nowNanos - lastNanos >= intervalNanos;
    }

    /**
     * The line for the interval that ends with {@code now}, or null when the engine had no work in it (no
     * step ran, nothing finished, nothing running or waiting): an idle engine logs nothing, yet the first
     * interval after its work ends still gets its line, which shows it drained. Either way the next
     * interval starts here, so a long idle stretch does not dilute the next line's rates (only the idle
     * part of that line's own interval does, as in vLLM).
     */
    String next(EngineMetrics now, long nowNanos) {
        EngineMetrics from = last;
        double seconds = (nowNanos - lastNanos) / 1e9;
        last = now;
        lastNanos = nowNanos;
        boolean worked = now.steps() != from.steps() || now.requestsFinished() != from.requestsFinished()
                || now.running() > 0 || now.waiting() > 0;
        return worked ? format(engineName, from, now, seconds) : null;
    }

    /**
     * The line for the counters' change from {@code from} to {@code to} over {@code seconds}. The prefix cache
     * hit rate is over the prompt tokens looked up in the interval (0 when none were), not since the start,
     * so it shows what the cache does now.
     */
    static String format(String engineName, EngineMetrics from, EngineMetrics to, double seconds) {
        double promptRate = rate(to.promptTokens() - from.promptTokens(), seconds);
        double generationRate = rate(to.outputTokens() - from.outputTokens(), seconds);
        long queried = to.prefixCacheQueriedTokens() - from.prefixCacheQueriedTokens();
        long hits = to.prefixCacheHitTokens() - from.prefixCacheHitTokens();
        double hitRate = queried == 0 ? 0 : (double) hits / queried;
        String line = String.format(Locale.ROOT, "Engine %s: Avg prompt throughput: %.1f tokens/s, Avg generation"
                        + " throughput: %.1f tokens/s, Running: %d reqs, Waiting: %d reqs, KV cache usage: %.1f%%,"
                        + " Prefix cache hit rate: %.1f%%", engineName, promptRate, generationRate, to.running(),
                to.waiting(), to.kvUsage() * 100, hitRate * 100);
        long drafts = to.speculative().draftTokens() - from.speculative().draftTokens();
        if (drafts == 0) {
            return line; // not speculating in this interval: the line stays as without speculation
        }
        long accepted = to.speculative().acceptedTokens() - from.speculative().acceptedTokens();
        long steps = to.speculative().verificationSteps() - from.speculative().verificationSteps();
        // mean accepted length as vLLM reports it: tokens per verification step, the bonus token included
        return line + String.format(Locale.ROOT, ", Draft acceptance rate: %.1f%%, Mean accepted length: %.2f",
                100.0 * accepted / drafts, 1 + (double) accepted / steps);
    }

    private static double rate(long delta, double seconds) {
        return seconds <= 0 ? 0 : delta / seconds;
    }
}
