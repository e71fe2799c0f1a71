package io.xpuflow.operators;

import io.xpuflow.runtime.engine.EngineMetrics;
import io.xpuflow.runtime.engine.FinishReason;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.spec.SpecDecodeStats;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.ThreadSafeSimpleCounter;

/**
 * Flink metrics of one subtask that submits to a shared {@link LlmEngine}, registered under a
 * {@code xpuflow} group of the metric group it is given ({@link LlmAsyncFunction} and the SQL functions
 * use it alike, so a dashboard reads the same names whatever the entry point).
 *
 * <ul>
 *   <li>engine gauges (shared by every subtask on the engine, so the same value in each):
 *       {@code requestsRunning}, {@code requestsWaiting}, {@code kvCacheUsage} (0..1),
 *       {@code prefixCacheHitRate} (0..1), {@code preemptions};</li>
 *   <li>speculative decoding of the engine (gauges shared as the ones above, all 0 while the engine does not
 *       speculate; as vLLM's {@code spec_decode_*} metrics): {@code specDecodeDraftTokens} (drafts proposed
 *       and verified so far), {@code specDecodeAcceptedTokens} (of those, accepted),
 *       {@code specDecodeVerificationSteps} (verifications of one request's drafts, one per request per step
 *       that drafted), {@code specDecodeAcceptanceRate} (accepted over drafted, 0..1),
 *       {@code specDecodeMeanAcceptanceLengthTokens} (tokens a verification emits: 1 plus its accepted drafts,
 *       vLLM's mean acceptance length), and {@code specDecodeAcceptanceRatePos0} to
 *       {@code specDecodeAcceptanceRatePos3} (0..1: of the verifications that drafted position i, the share
 *       that accepted it);</li>
 *   <li>this subtask's requests: {@code requests} (submitted to the engine), {@code promptTokens} and
 *       {@code outputTokens} (of the completed ones) with the meter {@code outputTokensPerSecond};
 *       histograms over the last 1000 completions: {@code e2eLatencyMs} in milliseconds, from the element's
 *       arrival in the function to its completion being handed to Flink, {@code queueTimeUs} (from submission
 *       to the engine's first step of the request), {@code timeToFirstTokenUs} and {@code timePerOutputTokenUs}
 *       in microseconds (a decode step of a small model takes well under a millisecond);
 *       {@code errorsTotal}, and one counter per {@link ErrorCode} in the {@code errors} group
 *       ({@code errors.TIMEOUT}, ...);</li>
 *   <li>how each element ended, in the {@code finishReason} group: {@code finishReason.stop} (an end token
 *       or stop string), {@code finishReason.length} (max tokens or the max model length),
 *       {@code finishReason.cancelled} (cancelled in the engine, rare: a timed-out element counts as an
 *       error), {@code finishReason.error} (an error output, as {@code errorsTotal}).</li>
 * </ul>
 * The latency histograms count completions only: an error output (an invalid input answered at once, a
 * timeout) would mix instants and timeouts into the latency of served requests.
 */
public final class InferenceMetrics {
    /** The group every metric of this class is registered under. */
    public static final String GROUP = "xpuflow";

    private static final int HISTOGRAM_WINDOW = 1000;

    private final Counter requests;
    private final Counter promptTokens;
    private final Counter outputTokens;
    private final Counter errors;
    private final Map<ErrorCode, Counter> errorsByCode = new EnumMap<>(ErrorCode.class);
    private final Map<FinishReason, Counter> finishedByReason = new EnumMap<>(FinishReason.class);
    private final Counter finishedWithError;
    private final Histogram e2eLatencyMs;
    private final Histogram queueTimeUs;
    private final Histogram timeToFirstTokenUs;
    private final Histogram timePerOutputTokenUs;

    /**
     * Registers the metrics in {@code parent}'s {@value #GROUP} group.
     *
     * @param engineMetrics the metrics of the engine the subtask uses now, read at each report: a supplier
     *     rather than an engine, because a failed shared engine is replaced (see
     *     {@link io.xpuflow.runtime.engine.EngineRegistry}) and the gauges must follow the replacement instead
     *     of pinning the dead one; {@code EngineRegistry.Lease::metrics} fits. It must not block or open anything.
     */
    public InferenceMetrics(MetricGroup parent, Supplier<EngineMetrics> engineMetrics) {
        MetricGroup group = parent.addGroup(GROUP);
        group.gauge("requestsRunning", (Gauge<Integer>) () -> engineMetrics.get().running());
        group.gauge("requestsWaiting", (Gauge<Integer>) () -> engineMetrics.get().waiting());
        group.gauge("kvCacheUsage", (Gauge<Double>) () -> engineMetrics.get().kvUsage());
        group.gauge("prefixCacheHitRate", (Gauge<Double>) () -> engineMetrics.get().prefixCacheHitRate());
        group.gauge("preemptions", (Gauge<Long>) () -> engineMetrics.get().preemptions());
        Supplier<SpecDecodeStats.Snapshot> spec = () -> speculative(engineMetrics.get());
        group.gauge("specDecodeDraftTokens", (Gauge<Long>) () -> spec.get().draftTokens());
        group.gauge("specDecodeAcceptedTokens", (Gauge<Long>) () -> spec.get().acceptedTokens());
        group.gauge("specDecodeVerificationSteps", (Gauge<Long>) () -> spec.get().verificationSteps());
        group.gauge("specDecodeAcceptanceRate", (Gauge<Double>) () -> spec.get().acceptanceRate());
        group.gauge("specDecodeMeanAcceptanceLengthTokens", (Gauge<Double>) () -> spec.get().meanAcceptedLength());
        for (int i = 0; i < SpeculativeConfig.MAX_SPECULATIVE_TOKENS; i++) {
            int position = i;
            group.gauge("specDecodeAcceptanceRatePos" + i, (Gauge<Double>) () -> {
                SpecDecodeStats.Snapshot s = spec.get();
                return position < s.draftedAtPosition().length ? s.acceptanceRateAt(position) : 0.0;
            });
        }
        // thread-safe: the SQL functions count on the engine's loop thread as well as on the task thread
        requests = group.counter("requests", new ThreadSafeSimpleCounter());
        promptTokens = group.counter("promptTokens", new ThreadSafeSimpleCounter());
        outputTokens = group.counter("outputTokens", new ThreadSafeSimpleCounter());
        group.meter("outputTokensPerSecond", new MeterView(outputTokens));
        e2eLatencyMs = group.histogram("e2eLatencyMs", new SlidingWindowHistogram(HISTOGRAM_WINDOW));
        queueTimeUs = group.histogram("queueTimeUs", new SlidingWindowHistogram(HISTOGRAM_WINDOW));
        timeToFirstTokenUs = group.histogram("timeToFirstTokenUs", new SlidingWindowHistogram(HISTOGRAM_WINDOW));
        timePerOutputTokenUs = group.histogram("timePerOutputTokenUs", new SlidingWindowHistogram(HISTOGRAM_WINDOW));
        errors = group.counter("errorsTotal", new ThreadSafeSimpleCounter());
        MetricGroup errorGroup = group.addGroup("errors");
        for (ErrorCode c : ErrorCode.values()) {
            errorsByCode.put(c, errorGroup.counter(c.name(), new ThreadSafeSimpleCounter()));
        }
        MetricGroup reasonGroup = group.addGroup("finishReason");
        for (FinishReason r : FinishReason.values()) {
            finishedByReason.put(r, reasonGroup.counter(r.wireName(), new ThreadSafeSimpleCounter()));
        }
        finishedWithError = reasonGroup.counter("error", new ThreadSafeSimpleCounter());
    }

    /** A request was accepted by the engine. */
    public void submitted() {
        requests.inc();
    }

    /**
     * A request finished with a result (any finish reason).
     *
     * @param arrivalNanos {@link System#nanoTime()} when its element arrived in the function
     */
    public void finished(GenerationResult r, long arrivalNanos) {
        e2eLatencyMs.update(Math.round((System.nanoTime() - arrivalNanos) / 1e6));
        finishedByReason.get(r.finishReason()).inc();
        promptTokens.inc(r.usage().promptTokens());
        queueTimeUs.update(micros(r.timings().queueMs()));
        int tokens = r.usage().completionTokens();
        outputTokens.inc(tokens);
        if (tokens > 0) {
            timeToFirstTokenUs.update(micros(r.timings().timeToFirstTokenMs()));
        }
        if (tokens > 1) {
            timePerOutputTokenUs.update(micros(r.timings().timePerOutputTokenMs()));
        }
    }

    /** An input became an error output (or a NULL row) instead of a completion. */
    public void error(ErrorCode code) {
        errors.inc();
        errorsByCode.get(code).inc();
        finishedWithError.inc();
    }

    /** The engine's speculative-decoding counters; {@link SpecDecodeStats.Snapshot#NONE} when it has none. */
    private static SpecDecodeStats.Snapshot speculative(EngineMetrics m) {
        return m.speculative() == null ? SpecDecodeStats.Snapshot.NONE : m.speculative();
    }

    private static long micros(double millis) {
        return Math.round(millis * 1000);
    }
}
