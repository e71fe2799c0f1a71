package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.apache.flink.metrics.HistogramStatistics;
import org.junit.jupiter.api.Test;

class SlidingWindowHistogramTest {

    @Test
    void statisticsCoverTheLastWindowAndTheCountEverything() {
        SlidingWindowHistogram h = new SlidingWindowHistogram(4);
        for (long v = 1; v <= 6; v++) {
            h.update(v * 10);
        }
        assertThat(h.getCount()).isEqualTo(6);
        HistogramStatistics s = h.getStatistics();
        assertThat(s.getValues()).containsExactly(30, 40, 50, 60);
        assertThat(s.size()).isEqualTo(4);
        assertThat(s.getMin()).isEqualTo(30);
        assertThat(s.getMax()).isEqualTo(60);
        assertThat(s.getMean()).isEqualTo(45.0);
        assertThat(s.getStdDev()).isCloseTo(Math.sqrt(500.0 / 3), within(1e-9));
        // later values do not change statistics already taken
        h.update(1000);
        assertThat(s.getMax()).isEqualTo(60);
    }

    @Test
    void quantilesInterpolateAsCommonsMathsDefaultEstimator() {
        SlidingWindowHistogram h = new SlidingWindowHistogram(100);
        for (long v : new long[] {5, 1, 4, 2, 3}) {
            h.update(v);
        }
        HistogramStatistics s = h.getStatistics();
        // position q * (n + 1) = q * 6 over 1..5
        assertThat(s.getQuantile(0.5)).isEqualTo(3.0);
        assertThat(s.getQuantile(0.25)).isEqualTo(1.5);
        assertThat(s.getQuantile(0.75)).isEqualTo(4.5);
        assertThat(s.getQuantile(0.1)).isEqualTo(1.0);
        assertThat(s.getQuantile(0.99)).isEqualTo(5.0);
    }

    @Test
    void anEmptyWindowReportsZeros() {
        HistogramStatistics s = new SlidingWindowHistogram(10).getStatistics();
        assertThat(s.size()).isZero();
        assertThat(s.getQuantile(0.5)).isZero();
        assertThat(s.getMean()).isZero();
        assertThat(s.getStdDev()).isZero();
        assertThat(s.getMin()).isZero();
        assertThat(s.getMax()).isZero();
    }
}
