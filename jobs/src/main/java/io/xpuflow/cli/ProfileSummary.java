package io.xpuflow.cli;

import io.xpuflow.device.TraceEvent;
import io.xpuflow.device.TraceEvent.Op;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a profiled run's step time went: per op kind its time, share of the steps, and the bandwidth
 * and arithmetic rate it reached; per kernel thread the share of step time it spent working.
 */
record ProfileSummary(Map<Op, OpTotal> ops, Map<Integer, Long> threadBusyNs, long stepNs, int steps) {

    /** Totals of one op kind over the run. */
    record OpTotal(int calls, long ns, long bytes, long flops) {
        double gbPerSecond() {
            return ns == 0 ? 0 : (double) bytes / ns;
        }

        double gflops() {
            return ns == 0 ? 0 : (double) flops / ns;
        }
    }

    /**
     * The events of the steps with at most {@code maxRows} rows (decode steps of up to that many
     * streams) and those of the other steps (prefill or mixed), each with the ops and thread records
     * inside them.
     */
    static Map<Boolean, List<TraceEvent>> splitByStepRows(List<TraceEvent> events, long maxRows) {
        List<TraceEvent> steps = events.stream().filter(e -> e.thread() < 0 && e.op() == Op.STEP)
                .sorted(Comparator.comparingLong(TraceEvent::startNs)).toList();
        Map<Boolean, List<TraceEvent>> out = new HashMap<>();
        out.put(true, new ArrayList<>());
        out.put(false, new ArrayList<>());
        long[] starts = steps.stream().mapToLong(TraceEvent::startNs).toArray();
        for (TraceEvent e : events) {
            int i = Arrays.binarySearch(starts, e.startNs());
            int step = i >= 0 ? i : -i - 2;
            if (step >= 0 && e.endNs() <= steps.get(step).endNs()) {
                out.get(steps.get(step).rows() <= maxRows).add(e);
            }
        }
        return out;
    }

    static ProfileSummary of(List<TraceEvent> events) {
        Map<Op, OpTotal> ops = new EnumMap<>(Op.class);
        Map<Integer, Long> busy = new TreeMap<>();
        long stepNs = 0;
        int steps = 0;
        for (TraceEvent e : events) {
            if (e.thread() >= 0) {
                busy.merge(e.thread(), e.durationNs(), Long::sum);
            } else if (e.op() == Op.STEP) {
                stepNs += e.durationNs();
                steps++;
            } else {
                ops.merge(e.op(), new OpTotal(1, e.durationNs(), e.bytes(), e.flops()), (a, b) -> new OpTotal(
                        a.calls + b.calls, a.ns + b.ns, a.bytes + b.bytes, a.flops + b.flops));
            }
        }
        return new ProfileSummary(ops, busy, stepNs, steps);
    }

    /** Weight and KV bytes read by every op of the steps. */
    long totalBytes() {
        return ops.values().stream().mapToLong(OpTotal::bytes).sum();
    }

    /** Flops of every op of the steps. */
    long totalFlops() {
        return ops.values().stream().mapToLong(OpTotal::flops).sum();
    }

    void print(PrintWriter out) {
        out.printf("%d steps, %.1f ms in steps%n", steps, stepNs / 1e6);
        out.printf("%-10s %8s %10s %7s %9s %10s%n", "op", "calls", "ms", "% step", "GB/s", "GFLOP/s");
        long covered = 0;
        for (Map.Entry<Op, OpTotal> e : ops.entrySet()) {
            OpTotal t = e.getValue();
            covered += t.ns;
            out.printf("%-10s %8d %10.2f %6.1f%% %9.2f %10.2f%n", e.getKey().label(), t.calls, t.ns / 1e6,
                    percent(t.ns), t.gbPerSecond(), t.gflops());
        }
        out.printf("%-10s %8s %10.2f %6.1f%%%n", "(other)", "", (stepNs - covered) / 1e6, percent(stepNs - covered));
        for (Map.Entry<Integer, Long> e : threadBusyNs.entrySet()) {
            out.printf("kernel thread %d busy in parallel sections: %.1f%% of step time%n", e.getKey(),
                    percent(e.getValue()));
        }
    }

    private double percent(long ns) {
        return stepNs == 0 ? 0 : 100.0 * ns / stepNs;
    }
}
