package io.xpuflow.cli;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Stroke;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * Draws {@code bench sweep}'s figures as a PNG for the README: tokens/s over concurrent streams (pp and
 * tg) on the left, TTFT and TPOT percentiles over concurrent streams on the right. Streams double from 1,
 * so the x axes are in log2 steps. Plain Java2D, headless: a chart this simple does not justify a
 * charting library on the CLI's class path.
 */
final class SweepChart {
    static final int WIDTH = 1280;
    static final int HEIGHT = 520;
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
        new Color(0xff7f0e)};
    private static final Stroke SOLID = new BasicStroke(2.2f);
    private static final Stroke DASHED = new BasicStroke(2.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
            new float[] {7f, 5f}, 0f);

    private SweepChart() {}

    /** One line of a panel: y at each stream count of the sweep. */
    record Series(String name, double[] y, Color color, boolean dashed) {}

    /** A panel: its title, y-axis label, stream counts (x) and lines. */
    record Panel(String title, String yLabel, int[] streams, List<Series> series) {}

    /** Writes the sweep's chart to {@code file} (PNG). */
    static void write(Path file, String title, List<BenchSweep.Row> rows, List<BenchSweep.LatencyRow> latencies) {
        BufferedImage image = draw(title, throughputPanel(rows), latencyPanel(latencies));
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            if (!ImageIO.write(image, "png", file.toFile())) {
                throw new IllegalStateException("this JDK has no PNG writer");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing the sweep chart to " + file + " failed: " + e.getMessage(), e);
        }
    }

    /** pp and tg tokens/s per stream count, in the order of the table's rows. */
    static Panel throughputPanel(List<BenchSweep.Row> rows) {
        List<Integer> streams = new ArrayList<>();
        List<String> tests = new ArrayList<>();
        for (BenchSweep.Row r : rows) {
            if (!streams.contains(r.streams())) {
                streams.add(r.streams());
            }
            if (!tests.contains(r.test())) {
                tests.add(r.test());
            }
        }
        List<Series> series = new ArrayList<>();
        for (int t = 0; t < tests.size(); t++) {
            double[] y = new double[streams.size()];
            for (BenchSweep.Row r : rows) {
                if (r.test().equals(tests.get(t))) {
                    y[streams.indexOf(r.streams())] = r.mean();
                }
            }
            series.add(new Series(tests.get(t) + " t/s", y, PALETTE[t % PALETTE.length], false));
        }
        return new Panel("Throughput (all streams together)", "tokens/s",
                streams.stream().mapToInt(Integer::intValue).toArray(), series);
    }

    /** TTFT and TPOT p50 (solid) and p99 (dashed) per stream count. */
    static Panel latencyPanel(List<BenchSweep.LatencyRow> latencies) {
        int n = latencies.size();
        int[] streams = new int[n];
        double[][] y = new double[4][n];
        for (int i = 0; i < n; i++) {
            BenchSweep.LatencyRow l = latencies.get(i);
            streams[i] = l.streams();
            y[0][i] = l.ttft().p50();
            y[1][i] = l.ttft().p99();
            y[2][i] = l.tpot().p50();
            y[3][i] = l.tpot().p99();
        }
        return new Panel("Latency of the tg requests", "ms", streams, List.of(
                new Series("TTFT p50", y[0], PALETTE[0], false), new Series("TTFT p99", y[1], PALETTE[0], true),
                new Series("TPOT p50", y[2], PALETTE[1], false), new Series("TPOT p99", y[3], PALETTE[1], true)));
    }

    static BufferedImage draw(String title, Panel left, Panel right) {
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
            g.drawString(title, 20, 28);
            drawPanel(g, left, 0, 44, WIDTH / 2, HEIGHT - 44);
            drawPanel(g, right, WIDTH / 2, 44, WIDTH / 2, HEIGHT - 44);
        } finally {
            g.dispose();
        }
        return image;
    }

    private static void drawPanel(Graphics2D g, Panel p, int x0, int y0, int w, int h) {
        int left = x0 + 78;
        int right = x0 + w - 24;
        int top = y0 + 34;
        int bottom = y0 + h - 56;
        double max = 0;
        for (Series s : p.series()) {
            for (double v : s.y()) {
                if (Double.isFinite(v)) {
                    max = Math.max(max, v);
                }
            }
        }
        double[] ticks = niceTicks(max);
        double yMax = ticks[ticks.length - 1];
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.setColor(Color.BLACK);
        g.drawString(p.title(), left, y0 + 18);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        FontMetrics fm = g.getFontMetrics();
        // y grid and labels
        for (double t : ticks) {
            int y = bottom - (int) Math.round((bottom - top) * t / yMax);
            g.setColor(new Color(0xe6e6e6));
            g.drawLine(left, y, right, y);
            g.setColor(Color.DARK_GRAY);
            String label = format(t);
            g.drawString(label, left - 8 - fm.stringWidth(label), y + fm.getAscent() / 2 - 1);
        }
        // x ticks at the stream counts, evenly spaced in log2
        int[] streams = p.streams();
        int[] xs = new int[streams.length];
        for (int i = 0; i < streams.length; i++) {
            xs[i] = streams.length == 1 ? (left + right) / 2 : left + (int) Math.round((right - left) * (double) i
                    / (streams.length - 1));
            g.setColor(Color.DARK_GRAY);
            String label = Integer.toString(streams[i]);
            g.drawString(label, xs[i] - fm.stringWidth(label) / 2, bottom + fm.getAscent() + 6);
        }
        g.setColor(Color.BLACK);
        g.drawLine(left, bottom, right, bottom);
        g.drawLine(left, top, left, bottom);
        String xLabel = "concurrent streams";
        g.drawString(xLabel, (left + right - fm.stringWidth(xLabel)) / 2, bottom + 2 * fm.getHeight() + 8);
        g.drawString(p.yLabel(), x0 + 8, top - 10);
        // lines and points
        int legendY = top + 4;
        for (Series s : p.series()) {
            g.setColor(s.color());
            g.setStroke(s.dashed() ? DASHED : SOLID);
            int prevX = -1;
            int prevY = -1;
            for (int i = 0; i < xs.length; i++) {
                double v = s.y()[i];
                if (!Double.isFinite(v)) {
                    prevX = -1;
                    continue;
                }
                int y = bottom - (int) Math.round((bottom - top) * v / yMax);
                if (prevX >= 0) {
                    g.drawLine(prevX, prevY, xs[i], y);
                }
                g.fillOval(xs[i] - 3, y - 3, 7, 7);
                prevX = xs[i];
                prevY = y;
            }
            g.drawLine(right - 150, legendY + 6, right - 120, legendY + 6);
            g.setStroke(SOLID);
            g.setColor(Color.BLACK);
            g.drawString(s.name(), right - 112, legendY + 6 + fm.getAscent() / 2 - 1);
            legendY += fm.getHeight() + 2;
        }
    }

    /** Ticks from 0 to a round value at or above {@code max}: 1, 2 or 5 times a power of ten apart, 4 to 8 of them. */
    static double[] niceTicks(double max) {
        if (!(max > 0)) {
            return new double[] {0, 1};
        }
        double raw = max / 5;
        double magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
        double step = magnitude;
        for (double m : new double[] {1, 2, 5, 10}) {
            step = m * magnitude;
            if (step >= raw) {
                break;
            }
        }
        int n = (int) Math.ceil(max / step - 1e-9);
        double[] ticks = new double[n + 1];
        for (int i = 0; i <= n; i++) {
            ticks[i] = i * step;
        }
        return ticks;
    }

    private static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e9) {
            return String.format(Locale.ROOT, "%,d", (long) v);
        }
        return String.format(Locale.ROOT, "%.3f", v).replaceAll("0+$", "").replaceAll("\\.$", "");
    }
}
