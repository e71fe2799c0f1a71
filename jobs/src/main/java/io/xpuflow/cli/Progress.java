package io.xpuflow.cli;

import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.engine.LlmEngine;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import picocli.CommandLine;

/**
 * The progress of one slow step (writing a checkpoint, loading a model, a benchmark, starting a broker),
 * shown while it runs on a console stream of the command:
 *
 * <ul>
 *   <li>{@link Mode#TERMINAL}: one line redrawn in place ({@code \r}) four times a second, with the
 *       percentage, the amount and the time left when the total is known, the time so far otherwise;
 *       erased when the step ends, so the command's own result lines follow without it;
 *   <li>{@link Mode#LINES} (a pipe, a file, a CI log): a plain line every 10 s, only for a step that lasts
 *       that long, so a log shows it is alive without filling up;
 *   <li>{@link Mode#OFF} ({@code --no-progress}): nothing.
 * </ul>
 *
 * The amount done is read from a supplier on every redraw (a counter the step increments, bytes on disk,
 * an engine metric), so the step itself need not know about the display and library code stays free of
 * console output.
 */
final class Progress implements AutoCloseable {
    /** How progress is shown. */
    enum Mode {
        TERMINAL, LINES, OFF;

        /**
         * The mode for stderr: off when {@code disabled}, a redrawn line when stderr is a terminal
         * ({@code bin/xpuflow} tests that and says so in {@code xpuflow.stderr.terminal}), plain lines otherwise.
         */
        static Mode forStderr(boolean disabled) {
            return disabled ? OFF : Boolean.getBoolean("xpuflow.stderr.terminal") ? TERMINAL : LINES;
        }

        /** The same for stdout ({@code xpuflow.stdout.terminal}), for commands whose progress is part of their output. */
        static Mode forStdout(boolean disabled) {
            return disabled ? OFF : Boolean.getBoolean("xpuflow.stdout.terminal") ? TERMINAL : LINES;
        }
    }

    /** {@code --no-progress}, for the commands that show progress. */
    static final class Options {
        @CommandLine.Option(names = "--no-progress", description = "No progress display on stderr (on a terminal a"
                + " line redrawn in place, elsewhere a line every 10 s of a slow step).")
        boolean off;

        Mode mode() {
            return Mode.forStderr(off);
        }
    }

    /** What the amounts count. */
    enum Unit {
        BYTES, ITEMS
    }

    static final long TERMINAL_PERIOD_MS = 250;
    static final long LINES_PERIOD_MS = 10_000;

    private final PrintWriter to;
    private final Mode mode;
    private final String label;
    private final long total;
    private final Unit unit;
    private final String items;
    private final LongSupplier done;
    private final long startNanos = System.nanoTime();
    private final Thread ticker;
    private int drawnWidth;
    private volatile boolean closed;

    private Progress(PrintWriter to, Mode mode, String label, long total, Unit unit, String items, LongSupplier done,
                     long periodMs) {
        this.to = to;
        this.mode = mode;
        this.label = label;
        this.total = total;
        this.unit = unit;
        this.items = items;
        this.done = done;
        if (mode == Mode.OFF) {
            ticker = null;
            return;
        }
        ticker = new Thread(() -> tick(periodMs), "xpuflow-progress");
        ticker.setDaemon(true);
        ticker.start();
    }

    /**
     * Shows the progress of a step of {@code total} bytes ({@code total <= 0}: unknown), of which
     * {@code done} tells how many are done.
     */
    static Progress bytes(PrintWriter to, Mode mode, String label, long total, LongSupplier done) {
        return new Progress(to, mode, label, total, Unit.BYTES, "", done, periodOf(mode));
    }

    /** Shows the progress of a step of {@code total} {@code items} (such as "requests"). */
    static Progress items(PrintWriter to, Mode mode, String label, long total, String items, LongSupplier done) {
        return new Progress(to, mode, label, total, Unit.ITEMS, items, done, periodOf(mode));
    }

    /** Shows the time a step of unknown length has taken so far. */
    static Progress elapsed(PrintWriter to, Mode mode, String label) {
        return new Progress(to, mode, label, 0, Unit.ITEMS, "", () -> 0, periodOf(mode));
    }

    /** Runs {@code step}, showing the time it has taken so far, and returns what it returns. */
    static <T> T during(PrintWriter to, Mode mode, String label, java.util.function.Supplier<T> step) {
        try (Progress shown = elapsed(to, mode, label)) {
            return step.get();
        }
    }

    /**
     * Opens the engine of a command; on a terminal a line on stderr counts the seconds while the model loads
     * (the load reports no progress of its own; its time is in the benchmarks' header).
     */
    static LlmEngine openEngine(EngineOptions options, CommandLine.Model.CommandSpec spec, Options progress) {
        return during(spec.commandLine().getErr(), progress.mode(), "Loading " + options.modelDir().getFileName(),
                () -> LlmEngine.open(options));
    }

    /** For tests: a redraw every {@code periodMs}. */
    static Progress withPeriod(PrintWriter to, Mode mode, String label, long total, String items, LongSupplier done,
                               long periodMs) {
        return new Progress(to, mode, label, total, Unit.ITEMS, items, done, periodMs);
    }

    private static long periodOf(Mode mode) {
        return mode == Mode.TERMINAL ? TERMINAL_PERIOD_MS : LINES_PERIOD_MS;
    }

    private void tick(long periodMs) {
        try {
            while (!closed) {
                TimeUnit.MILLISECONDS.sleep(periodMs);
                draw();
            }
        } catch (InterruptedException e) {
            // closed
        }
    }

    private void draw() {
        synchronized (to) {
            if (closed) {
                return;
            }
            String text = render(done.getAsLong(), System.nanoTime() - startNanos);
            if (mode == Mode.TERMINAL) {
                to.print("\r" + text + " ".repeat(Math.max(0, drawnWidth - text.length())));
                drawnWidth = text.length();
            } else {
                to.println(text);
            }
            to.flush();
        }
    }

    /** The progress line: "Writing tensors  43%  0.87 / 2.03 GB  ETA 12 s", or "label  12 s" without a total. */
    String render(long doneNow, long elapsedNanos) {
        double seconds = elapsedNanos / 1e9;
        String sep = mode == Mode.TERMINAL ? "  " : ": ";
        if (total <= 0) {
            return String.format(Locale.ROOT, "%s%s%.0f s", label, sep, seconds);
        }
        long d = Math.min(Math.max(doneNow, 0), total);
        double fraction = (double) d / total;
        String amount = unit == Unit.BYTES ? bytesOf(d, total) : d + " / " + total + (items.isEmpty() ? "" : " " + items);
        String eta = fraction > 0 && fraction < 1 && seconds >= 1
                ? String.format(Locale.ROOT, "%sETA %s", sep, duration(seconds / fraction - seconds)) : "";
        return String.format(Locale.ROOT, "%s%s%3.0f%%%s%s%s", label, sep, 100 * fraction,
                mode == Mode.TERMINAL ? "  " : " (", amount + (mode == Mode.TERMINAL ? "" : ")"), eta);
    }

    private static String bytesOf(long done, long total) {
        if (total >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f / %.2f GB", done / 1e9, total / 1e9);
        }
        if (total >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.1f / %.1f MB", done / 1e6, total / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f / %.1f kB", done / 1e3, total / 1e3);
    }

    private static String duration(double seconds) {
        long s = Math.round(seconds);
        return s < 60 ? s + " s" : s < 3600 ? String.format(Locale.ROOT, "%d min %02d s", s / 60, s % 60)
                : String.format(Locale.ROOT, "%d h %02d min", s / 3600, s % 3600 / 60);
    }

    /** Ends the display: a terminal line is erased, so what the command prints next starts on a clean line. */
    @Override
    public void close() {
        if (ticker == null || closed) {
            return;
        }
        synchronized (to) {
            closed = true;
            if (mode == Mode.TERMINAL && drawnWidth > 0) {
                to.print("\r" + " ".repeat(drawnWidth) + "\r");
                to.flush();
            }
        }
        ticker.interrupt();
    }
}
