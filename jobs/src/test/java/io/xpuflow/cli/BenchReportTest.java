package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.xpuflow.runtime.engine.GenerationResult;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The exact percentiles of {@code bench}: numpy.percentile's linear interpolation, which vLLM reports. */
class BenchReportTest {
    @Test
    void percentilesInterpolateBetweenTheSortedValuesAsNumpyDoes() {
        // numpy.percentile([4, 1, 3, 2], [50, 90, 99]) == [2.5, 3.7, 3.97]
        BenchReport.Percentiles p = BenchReport.Percentiles.of(new double[] {4, 1, 3, 2});
        assertThat(p.count()).isEqualTo(4);
        assertThat(p.mean()).isEqualTo(2.5);
        assertThat(p.p50()).isCloseTo(2.5, within(1e-12));
        assertThat(p.p90()).isCloseTo(3.7, within(1e-12));
        assertThat(p.p99()).isCloseTo(3.97, within(1e-12));

        BenchReport.Percentiles one = BenchReport.Percentiles.of(new double[] {7});
        assertThat(List.of(one.mean(), one.p50(), one.p90(), one.p99())).containsOnly(7.0);
        assertThatThrownBy(() -> BenchReport.Percentiles.of(new double[0])).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void tpotLeavesOutRequestsOfOneOutputToken() {
        BenchReport.RequestLatencies l = BenchReport.RequestLatencies.of(
                List.of(new GenerationResult.Timings(0, 10, 0, 10), new GenerationResult.Timings(0, 20, 2, 30)),
                List.of(1, 6));
        assertThat(l.ttft().count()).isEqualTo(2);
        assertThat(l.e2e().p50()).isEqualTo(20);
        assertThat(l.tpot().count()).isEqualTo(1);
        assertThat(l.tpot().p99()).isEqualTo(2);
        assertThat(BenchReport.RequestLatencies.of(List.of(new GenerationResult.Timings(0, 10, 0, 10)), List.of(1))
                .tpot()).isNull();
    }
}
