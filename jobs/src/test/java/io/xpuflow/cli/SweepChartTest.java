package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.List;
import org.junit.jupiter.api.Test;

class SweepChartTest {

    @Test
    void ticksAreRoundStepsFromZeroThatCoverTheMaximum() {
        assertThat(SweepChart.niceTicks(730)).containsExactly(0, 200, 400, 600, 800);
        assertThat(SweepChart.niceTicks(1000)).containsExactly(0, 200, 400, 600, 800, 1000);
        assertThat(SweepChart.niceTicks(0.37)).hasSize(5).endsWith(0.4);
        assertThat(SweepChart.niceTicks(0)).containsExactly(0, 1);
        assertThat(SweepChart.niceTicks(Double.NaN)).containsExactly(0, 1);
        for (double max : new double[] {1, 3.3, 9.99, 12, 57, 101, 4_999, 123_456}) {
            double[] t = SweepChart.niceTicks(max);
            assertThat(t[t.length - 1]).as("top tick for %s", max).isGreaterThanOrEqualTo(max);
            assertThat(t.length).as("ticks for %s", max).isBetween(3, 9);
        }
    }

    @Test
    void panelsTakeEveryTestAndPercentileOfTheSweep() {
        List<BenchSweep.Row> rows = List.of(new BenchSweep.Row(1, "pp16", 100, 1), new BenchSweep.Row(1, "tg4", 10, 1),
                new BenchSweep.Row(2, "pp16", 180, 2), new BenchSweep.Row(2, "tg4", 19, 1));
        SweepChart.Panel throughput = SweepChart.throughputPanel(rows);
        assertThat(throughput.streams()).containsExactly(1, 2);
        assertThat(throughput.series()).extracting(SweepChart.Series::name).containsExactly("pp16 t/s", "tg4 t/s");
        assertThat(throughput.series().get(0).y()).containsExactly(100, 180);
        assertThat(throughput.series().get(1).y()).containsExactly(10, 19);

        BenchReport.Percentiles ttft = BenchReport.Percentiles.of(new double[] {5, 7, 9});
        BenchReport.Percentiles tpot = BenchReport.Percentiles.of(new double[] {1, 2});
        SweepChart.Panel latency = SweepChart.latencyPanel(List.of(new BenchSweep.LatencyRow(1, ttft, tpot)));
        assertThat(latency.series()).extracting(SweepChart.Series::name)
                .containsExactly("TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99");
        assertThat(latency.series().get(1).y()[0]).isEqualTo(ttft.p99());
        assertThat(latency.series().get(3).dashed()).isTrue();
    }

    @Test
    void theImageShowsEachSeriesInItsColour() {
        List<BenchSweep.Row> rows = List.of(new BenchSweep.Row(1, "pp16", 100, 1), new BenchSweep.Row(1, "tg4", 10, 1),
                new BenchSweep.Row(2, "pp16", 180, 2), new BenchSweep.Row(2, "tg4", 19, 1),
                new BenchSweep.Row(4, "pp16", 300, 2), new BenchSweep.Row(4, "tg4", 35, 1));
        BenchReport.Percentiles p = BenchReport.Percentiles.of(new double[] {5, 7, 9});
        List<BenchSweep.LatencyRow> lat = List.of(new BenchSweep.LatencyRow(1, p, p), new BenchSweep.LatencyRow(2, p, p),
                new BenchSweep.LatencyRow(4, p, p));
        BufferedImage image = SweepChart.draw("title", SweepChart.throughputPanel(rows), SweepChart.latencyPanel(lat));
        assertThat(image.getWidth()).isEqualTo(SweepChart.WIDTH);
        assertThat(image.getHeight()).isEqualTo(SweepChart.HEIGHT);
        // the pp line (first colour) is drawn in the left half, the TPOT lines (second colour) in the right half
        assertThat(count(image, 0, SweepChart.WIDTH / 2, new Color(0x1f77b4))).isGreaterThan(100);
        assertThat(count(image, SweepChart.WIDTH / 2, SweepChart.WIDTH, new Color(0xd62728))).isGreaterThan(100);
    }

    private static int count(BufferedImage image, int fromX, int toX, Color c) {
        int n = 0;
        for (int x = fromX; x < toX; x++) {
            for (int y = 0; y < image.getHeight(); y++) {
                if ((image.getRGB(x, y) & 0xffffff) == (c.getRGB() & 0xffffff)) {
                    n++;
                }
            }
        }
        return n;
    }
}
