package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {
    @Test
    void aTerminalGetsOneLineRedrawnInPlaceThenErased() throws InterruptedException {
        StringWriter w = new StringWriter();
        AtomicLong done = new AtomicLong();
        try (Progress p = Progress.withPeriod(new PrintWriter(w), Progress.Mode.TERMINAL, "Benchmark", 40, "requests",
                done::get, 10)) {
            for (int i = 1; i <= 40; i++) {
                done.set(i);
                Thread.sleep(2);
            }
            awaitText(w, "40 / 40 requests");
        }
        String text = w.toString();
        assertThat(text).doesNotContain("\n").startsWith("\rBenchmark  ").contains("%  ").contains(" / 40 requests");
        // erased at the end: spaces over the last line and the cursor back at its start
        assertThat(text).matches("(?s).*\r +\r$");
    }

    @Test
    void elsewhereGetsPlainLinesAndWithNoProgressNothing() throws InterruptedException {
        StringWriter lines = new StringWriter();
        try (Progress p = Progress.withPeriod(new PrintWriter(lines), Progress.Mode.LINES, "Writing", 10, "", () -> 5, 10)) {
            awaitText(lines, "\n");
        }
        assertThat(lines.toString()).doesNotContain("\r").startsWith("Writing:  50% (5 / 10)");

        StringWriter none = new StringWriter();
        try (Progress p = Progress.withPeriod(new PrintWriter(none), Progress.Mode.OFF, "Writing", 10, "", () -> 5, 10)) {
            Thread.sleep(60);
        }
        assertThat(none.toString()).isEmpty();
    }

    @Test
    void rendersPercentAmountAndTimeLeft() {
        Progress bytes = Progress.bytes(new PrintWriter(new StringWriter()), Progress.Mode.OFF, "Writing tensors",
                2_030_000_000L, () -> 0);
        assertThat(bytes.render(0, 500_000_000L)).isEqualTo("Writing tensors:   0% (0.00 / 2.03 GB)");
        // a quarter in 10 s: 30 s left
        assertThat(bytes.render(507_500_000L, 10_000_000_000L)).isEqualTo("Writing tensors:  25% (0.51 / 2.03 GB): ETA 30 s");
        assertThat(bytes.render(2_030_000_000L, 10_000_000_000L)).isEqualTo("Writing tensors: 100% (2.03 / 2.03 GB)");
        Progress terminal = Progress.withPeriod(new PrintWriter(new StringWriter()), Progress.Mode.OFF, "Benchmark", 64,
                "requests", () -> 0, 1000);
        assertThat(terminal.render(16, 100_000_000_000L)).isEqualTo("Benchmark:  25% (16 / 64 requests): ETA 5 min 00 s");
        Progress elapsed = Progress.elapsed(new PrintWriter(new StringWriter()), Progress.Mode.OFF, "Loading stories260k");
        assertThat(elapsed.render(0, 3_400_000_000L)).isEqualTo("Loading stories260k: 3 s");
    }

    private static void awaitText(StringWriter w, String text) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!w.toString().contains(text) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(w.toString()).contains(text);
    }
}
