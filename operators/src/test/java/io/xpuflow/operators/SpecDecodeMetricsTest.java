package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.xpuflow.runtime.engine.EngineMetrics;
import io.xpuflow.runtime.spec.SpecDecodeStats;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.testutils.MetricListener;
import org.junit.jupiter.api.Test;

/**
 * The speculative-decoding gauges of {@link InferenceMetrics}, registered in a real Flink metric group
 * ({@link MetricListener}), report the engine's {@link SpecDecodeStats.Snapshot} at each read.
 */
class SpecDecodeMetricsTest {
    private final MetricListener listener = new MetricListener();
    private final AtomicReference<EngineMetrics> engine = new AtomicReference<>(engine(SpecDecodeStats.Snapshot.NONE));

    {
        new InferenceMetrics(listener.getMetricGroup(), engine::get);
    }

    private static EngineMetrics engine(SpecDecodeStats.Snapshot speculative) {
        return new EngineMetrics(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, speculative);
    }

    private Object value(String name) {
        Gauge<?> gauge = listener.<Object>getGauge(InferenceMetrics.GROUP, name)
                .orElseThrow(() -> new AssertionError("no gauge " + InferenceMetrics.GROUP + "." + name));
        return gauge.getValue();
    }

    private double rate(String name) {
        return ((Number) value(name)).doubleValue();
    }

    @Test
    void anEngineThatDoesNotSpeculateReportsZeros() {
        assertThat(value("specDecodeDraftTokens")).isEqualTo(0L);
        assertThat(value("specDecodeAcceptedTokens")).isEqualTo(0L);
        assertThat(value("specDecodeVerificationSteps")).isEqualTo(0L);
        assertThat(value("specDecodeAcceptanceRate")).isEqualTo(0.0);
        assertThat(value("specDecodeMeanAcceptanceLengthTokens")).isEqualTo(0.0);
        for (int i = 0; i < 4; i++) {
            assertThat(value("specDecodeAcceptanceRatePos" + i)).isEqualTo(0.0);
        }
        engine.set(engine(null)); // a snapshot without speculative counters reads as NONE
        assertThat(value("specDecodeDraftTokens")).isEqualTo(0L);
        assertThat(value("specDecodeAcceptanceRatePos3")).isEqualTo(0.0);
    }

    @Test
    void theGaugesFollowTheEnginesSnapshot() {
        // 10 verifications: 10 drafted position 0 (8 accepted), 8 position 1 (4 accepted), k = 2
        engine.set(engine(new SpecDecodeStats.Snapshot(18, 12, 10, new long[] {10, 8}, new long[] {8, 4})));
        assertThat(value("specDecodeDraftTokens")).isEqualTo(18L);
        assertThat(value("specDecodeAcceptedTokens")).isEqualTo(12L);
        assertThat(value("specDecodeVerificationSteps")).isEqualTo(10L);
        assertThat(rate("specDecodeAcceptanceRate")).isCloseTo(12.0 / 18, within(1e-12));
        assertThat(rate("specDecodeMeanAcceptanceLengthTokens")).isCloseTo(2.2, within(1e-12));
        assertThat(rate("specDecodeAcceptanceRatePos0")).isCloseTo(0.8, within(1e-12));
        assertThat(rate("specDecodeAcceptanceRatePos1")).isCloseTo(0.5, within(1e-12));
        assertThat(rate("specDecodeAcceptanceRatePos2")).as("beyond the engine's k").isZero();
        assertThat(rate("specDecodeAcceptanceRatePos3")).isZero();

        // read at each report: a later snapshot (or a replaced engine) shows at once
        SpecDecodeStats stats = new SpecDecodeStats(4);
        stats.record(4, 4);
        stats.record(4, 1);
        engine.set(engine(stats.snapshot()));
        assertThat(value("specDecodeDraftTokens")).isEqualTo(8L);
        assertThat(value("specDecodeAcceptedTokens")).isEqualTo(5L);
        assertThat(value("specDecodeVerificationSteps")).isEqualTo(2L);
        assertThat(rate("specDecodeAcceptanceRatePos0")).isEqualTo(1.0);
        assertThat(rate("specDecodeAcceptanceRatePos1")).isEqualTo(0.5);
        assertThat(rate("specDecodeAcceptanceRatePos3")).isEqualTo(0.5);
        assertThat(rate("specDecodeMeanAcceptanceLengthTokens")).isCloseTo(3.5, within(1e-12));
    }
}
