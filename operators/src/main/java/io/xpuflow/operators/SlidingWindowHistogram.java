package io.xpuflow.operators;

import java.util.Arrays;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.HistogramStatistics;

/**
 * A {@link Histogram} over the last {@code window} values, on Flink's public metric API only. It replaces
 * flink-runtime's {@code DescriptiveStatisticsHistogram}, an internal class that user code should not
 * reach for, without adding a dependency (flink-metrics-dropwizard would bring Dropwizard into every job jar).
 * Quantiles interpolate between the two nearest ranks at position {@code q * (n + 1)}, as that class's
 * Commons Math estimator does, so the values on a dashboard keep their meaning.
 *
 * <p>Thread-safe: values come from the task thread (and the engine's loop thread for the SQL functions),
 * statistics are read by the reporter's thread. A value is a long: scale it to the unit in the metric's name.
 */
public final class SlidingWindowHistogram implements Histogram {
    private final long[] window;
    private long count;

    public SlidingWindowHistogram(int window) {
        if (window <= 0) {
            throw new IllegalArgumentException("window must be positive: " + window);
        }
        this.window = new long[window];
    }

    @Override
    public synchronized void update(long value) {
        window[(int) (count % window.length)] = value;
        count++;
    }

    /** Every value ever recorded, not only those in the window (as Flink's histograms count). */
    @Override
    public synchronized long getCount() {
        return count;
    }

    /** A copy of the window at this moment: later updates do not change it. */
    @Override
    public HistogramStatistics getStatistics() {
        long[] values;
        synchronized (this) {
            values = Arrays.copyOf(window, (int) Math.min(count, window.length));
        }
        Arrays.sort(values);
        return new Statistics(values);
    }

    private static final class Statistics extends HistogramStatistics {
        private final long[] sorted;

        Statistics(long[] sorted) {
            this.sorted = sorted;
        }

        @Override
        public double getQuantile(double quantile) {
            int n = sorted.length;
            if (n == 0) {
                return 0; // rather than NaN, which not every reporter can write
            }
            double pos = quantile * (n + 1);
            if (pos < 1) {
                return sorted[0];
            }
            if (pos >= n) {
                return sorted[n - 1];
            }
            int lower = (int) Math.floor(pos);
            double fraction = pos - lower;
            return sorted[lower - 1] + fraction * (sorted[lower] - sorted[lower - 1]);
        }

        @Override
        public long[] getValues() {
            return sorted.clone();
        }

        @Override
        public int size() {
            return sorted.length;
        }

        @Override
        public double getMean() {
            if (sorted.length == 0) {
                return 0;
            }
            double sum = 0;
            for (long v : sorted) {
                sum += v;
            }
            return sum / sorted.length;
        }

        /** The sample standard deviation (n - 1), as Commons Math's; 0 for fewer than two values. */
        @Override
        public double getStdDev() {
            int n = sorted.length;
            if (n < 2) {
                return 0;
            }
            double mean = getMean();
            double squares = 0;
            for (long v : sorted) {
                squares += (v - mean) * (v - mean);
            }
            return Math.sqrt(squares / (n - 1));
        }

        @Override
        public long getMax() {
            return sorted.length == 0 ? 0 : sorted[sorted.length - 1];
        }

        @Override
        public long getMin() {
            return sorted.length == 0 ? 0 : sorted[0];
        }
    }
}
