package io.xpuflow.device;

/**
 * One record of the device's profiler: an op of a step ({@code thread == -1}), or one kernel
 * thread's share of a parallel section inside that op ({@code thread >= 0}).
 *
 * @param op what ran
 * @param layer the decoder (or MTP) layer, -1 for model-wide ops
 * @param rows token rows of the op (0 for thread records)
 * @param bytes weight and KV bytes the op read (0 for thread records)
 * @param flops floating-point (INT8: integer) operations of its products
 * @param thread -1 for the op, else the kernel thread (0: the step's own thread)
 * @param startNs start on a steady clock, nanoseconds
 * @param endNs end on the same clock
 */
public record TraceEvent(Op op, int layer, long rows, long bytes, long flops, int thread, long startNs, long endNs) {
    /** The ops of a step, as the device ABI numbers them ({@code xpu_op}). */
    public enum Op {
        STEP, EMBED, NORM, QKV, QK_POST, ATTENTION, O_PROJ, FFN, ROUTER, EXPERTS, SHARED, LM_HEAD, MTP_IN, RESIDUAL;

        static Op of(int code) {
            Op[] all = values();
            if (code < 0 || code >= all.length) {
                throw new DeviceException("xpu_model_trace_read", DeviceException.INTERNAL, "event with unknown op " + code);
            }
            return all[code];
        }

        /** The op's name in traces and tables: lower case, as in the ABI. */
        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public long durationNs() {
        return endNs - startNs;
    }
}
