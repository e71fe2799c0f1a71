package io.xpuflow.operators;

import io.xpuflow.runtime.engine.EngineMetrics;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.ThreadSafeSimpleCounter;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * Flink metrics of one subtask that submits to a shared {@link LlmEngine}, registered under a
 * {@code xpuflow} group of the metric group it is given ({@link LlmAsyncFunction} and the SQL functions
 * use it alike, so a dashboard reads the same names whatever the entry point).
 *
 * <ul>
 *   <li>engine gauges (shared by every subtask on the engine, so the same value in each):
 *       {@code requestsRunning}, {@code requestsWaiting}, {@code kvCacheUsage} (0..1),
 *       {@code prefixCacheHitRate} (0..1), {@code preemptions};</li>
 *   <li>this subtask's requests: {@code requests} (submitted to the engine), {@code outputTokens} with the
 *       meter {@code outputTokensPerSecond}, histograms {@code timeToFirstTokenUs} and
 *       {@code timePerOutputTokenUs} in microseconds over the last 1000 requests (a decode step of a small
 *       model takes well under a millisecond), {@code errorsTotal}, and one counter per {@link ErrorCode}
 *       in the {@code errors} group ({@code errors.TIMEOUT}, ...).</li>
 * </ul>
 */
public final class InferenceMetrics {
    /** The group every metric of this class is registered under. */
    public static final String GROUP = "xpuflow";

    private static final int HISTOGRAM_WINDOW = 1000;

    private final Counter requests;
    private final Counter outputTokens;
    private final Counter errors;
    private final Map<ErrorCode, Counter> errorsByCode = new EnumMap<>(ErrorCode.class);
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
        // thread-safe: the SQL functions count on the engine's loop thread as well as on the task thread
        requests = group.counter("requests", new ThreadSafeSimpleCounter());
        outputTokens = group.counter("outputTokens", new ThreadSafeSimpleCounter());
        group.meter("outputTokensPerSecond", new MeterView(outputTokens));
        timeToFirstTokenUs = group.histogram("timeToFirstTokenUs", new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        timePerOutputTokenUs = group.histogram("timePerOutputTokenUs", new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        errors = group.counter("errorsTotal", new ThreadSafeSimpleCounter());
        MetricGroup errorGroup = group.addGroup("errors");
        for (ErrorCode c : ErrorCode.values()) {
            errorsByCode.put(c, errorGroup.counter(c.name(), new ThreadSafeSimpleCounter()));
        }
    }

    /** A request was accepted by the engine. */
    public void submitted() {
        requests.inc();
    }

    /** A request finished with a result (any finish reason). */
    public void finished(GenerationResult r) {
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
    }

    private static long micros(double millis) {
        return Math.round(millis * 1000);
    }
}
