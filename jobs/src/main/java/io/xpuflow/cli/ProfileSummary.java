package io.xpuflow.cli;

import io.xpuflow.device.TraceEvent;
import io.xpuflow.device.TraceEvent.Op;
import java.io.PrintWriter;
import java.util.EnumMap;
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
