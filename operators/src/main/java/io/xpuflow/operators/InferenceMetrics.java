package io.xpuflow.operators;

import io.xpuflow.runtime.engine.EngineMetrics;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import java.util.EnumMap;
import java.util.Map;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * Flink metrics of one {@link LlmAsyncFunction} subtask, under the {@code xpuflow} group.
 *
 * <ul>
 *   <li>engine gauges (shared by every subtask on the engine, so the same value in each):
 *       {@code requestsRunning}, {@code requestsWaiting}, {@code kvCacheUsage}, {@code prefixCacheHitRate},
 *       {@code preemptions};</li>
 *   <li>this subtask's requests: {@code requests} (submitted), {@code outputTokens} with the meter
 *       {@code outputTokensPerSecond}, histograms {@code timeToFirstTokenMs} and
 *       {@code timePerOutputTokenMs} over the last 1000 requests, and {@code errors} with one counter
 *       per {@link ErrorCode} ({@code errors.TIMEOUT}, ...).</li>
 * </ul>
 */
final class InferenceMetrics {
    private static final int HISTOGRAM_WINDOW = 1000;

    private final Counter requests;
    private final Counter outputTokens;
    private final Counter errors;
    private final Map<ErrorCode, Counter> errorsByCode = new EnumMap<>(ErrorCode.class);
    private final Histogram ttft;
    private final Histogram tpot;

    InferenceMetrics(MetricGroup group, LlmEngine engine) {
        group.gauge("requestsRunning", (Gauge<Integer>) () -> engine.metrics().running());
        group.gauge("requestsWaiting", (Gauge<Integer>) () -> engine.metrics().waiting());
        group.gauge("kvCacheUsage", (Gauge<Double>) () -> engine.metrics().kvUsage());
        group.gauge("prefixCacheHitRate", (Gauge<Double>) () -> engine.metrics().prefixCacheHitRate());
        group.gauge("preemptions", (Gauge<Long>) () -> engine.metrics().preemptions());
        requests = group.counter("requests");
        outputTokens = group.counter("outputTokens");
        group.meter("outputTokensPerSecond", new MeterView(outputTokens));
        ttft = group.histogram("timeToFirstTokenMs", new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        tpot = group.histogram("timePerOutputTokenMs", new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        MetricGroup errorGroup = group.addGroup("errors");
        errors = group.counter("errorsTotal");
        for (ErrorCode c : ErrorCode.values()) {
            errorsByCode.put(c, errorGroup.counter(c.name()));
        }
    }

    void submitted() {
        requests.inc();
    }

    void finished(GenerationResult r) {
        outputTokens.inc(r.usage().completionTokens());
        if (r.usage().completionTokens() > 0) {
            ttft.update(Math.round(r.timings().timeToFirstTokenMs()));
        }
        if (r.usage().completionTokens() > 1) {
            tpot.update(Math.round(r.timings().timePerOutputTokenMs()));
        }
    }

    void error(ErrorCode code) {
        errors.inc();
        errorsByCode.get(code).inc();
    }

    long errorCount(ErrorCode code) {
        return errorsByCode.get(code).getCount();
    }

    /** The engine's view, for tests and logs. */
    static EngineMetrics engineMetrics(LlmEngine engine) {
        return engine.metrics();
    }
}
