package io.xpuflow.runtime.tokenizer;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

/**
 * The limits of one chat-template render (or load-time check) on the thread doing it: wall-clock time, the
 * length of any string it builds, and the bytes it allocates.
 *
 * <p>Chat templates come with checkpoints, which a user may not have written or read: a template is a program,
 * and it runs on the Flink task thread that submits the request. Jinjava has no time limit and bounds strings
 * only in some operators, so {@link #check()} is called before every template node is rendered (through
 * Jinjava's node pre-processor) and by the string operations of {@link PythonStr}, {@link PyJson} and the
 * bounded filters, which could otherwise build a huge string in one call. The budget lives in a thread-local,
 * not in the template context, so that a template cannot reach or overwrite it.
 *
 * <p>Memory is bounded through the bytes the thread allocates while rendering (HotSpot's per-thread allocation
 * counter): a render can never hold more than it allocated, and a legitimate render allocates a small multiple
 * of its prompt. Once one limit is hit, every later check fails too, so the render stops at the next node even
 * where Jinjava catches an exception and goes on.
 */
final class RenderBudget implements AutoCloseable {
    /** Wall-clock limit of one render. Real chat templates render in well under a millisecond per message. */
    static final long TIME_LIMIT_MILLIS = 2000;
    /** Longest string (and rendered prompt) a template may build: far above any model's context in characters. */
    static final int MAX_STRING_CHARS = 8 << 20;
    /** Allocation allowed to every render, plus {@link #ALLOCATION_PER_INPUT_CHAR} bytes per character of input. */
    static final long BASE_ALLOCATION_BYTES = 512L << 20;
    static final long ALLOCATION_PER_INPUT_CHAR = 64;
    /** Longest list or map a template may build (Jinjava's own limits). */
    static final int MAX_COLLECTION_SIZE = 1 << 16;

    private static final ThreadLocal<RenderBudget> CURRENT = new ThreadLocal<>();
    private static final com.sun.management.ThreadMXBean THREADS = allocationCounter();
    private static final int CHECKS_PER_ALLOCATION_READ = 16;

    private final String what;
    private final long startNanos;
    private final long allocationStart;
    private final long maxAllocation;
    private final RenderBudget outer;
    private String tripped;
    private int untilAllocationRead;

    private RenderBudget(String what, long inputChars) {
        this.what = what;
        this.startNanos = System.nanoTime();
        this.allocationStart = allocatedBytes();
        this.maxAllocation = BASE_ALLOCATION_BYTES + ALLOCATION_PER_INPUT_CHAR * Math.max(0, inputChars);
        this.outer = CURRENT.get();
    }

    /** Starts the budget of one render on this thread; close it when the render returns. */
    static RenderBudget start(String what, long inputChars) {
        RenderBudget b = new RenderBudget(what, inputChars);
        CURRENT.set(b);
        return b;
    }

    @Override
    public void close() {
        if (outer == null) {
            CURRENT.remove();
        } else {
            CURRENT.set(outer);
        }
    }

    /** The first limit this render hit, or null. */
    String tripped() {
        return tripped;
    }

    /** Checks the budget of the render running on this thread, if any. */
    static void check() {
        RenderBudget b = CURRENT.get();
        if (b != null) {
            b.checkNow();
        }
    }

    /**
     * Refuses a string of {@code chars} characters before it is built.
     *
     * @param operation what would build it, for the message ("str.replace", "center filter")
     */
    static void checkLength(long chars, String operation) {
        if (chars > MAX_STRING_CHARS) {
            RenderBudget b = CURRENT.get();
            String limit = operation + " would build a string of " + chars + " characters, over the limit of "
                    + MAX_STRING_CHARS + " characters for a chat template";
            if (b != null) {
                b.trip(limit);
            }
            throw new Exceeded(limit);
        }
    }

    private void checkNow() {
        if (tripped != null) {
            throw new Exceeded(tripped);
        }
        long elapsed = System.nanoTime() - startNanos;
        if (elapsed > TIME_LIMIT_MILLIS * 1_000_000L) {
            throw trip(what + " ran for " + elapsed / 1_000_000 + " ms, over the time limit of " + TIME_LIMIT_MILLIS
                    + " ms for a chat template");
        }
        // the counter costs a little more than the clock; a node cannot allocate much between two reads
        if (--untilAllocationRead <= 0) {
            untilAllocationRead = CHECKS_PER_ALLOCATION_READ;
            long allocated = allocatedBytes() - allocationStart;
            if (allocated > maxAllocation) {
                throw trip(what + " allocated " + (allocated >> 20) + " MiB, over the memory limit of "
                        + (maxAllocation >> 20) + " MiB for a chat template");
            }
        }
    }

    private Exceeded trip(String limit) {
        if (tripped == null) {
            tripped = limit;
        }
        return new Exceeded(tripped);
    }

    private static long allocatedBytes() {
        return THREADS == null ? 0 : THREADS.getCurrentThreadAllocatedBytes();
    }

    private static com.sun.management.ThreadMXBean allocationCounter() {
        ThreadMXBean bean = ManagementFactory.getThreadMXBean();
        if (bean instanceof com.sun.management.ThreadMXBean hotspot && hotspot.isThreadAllocatedMemorySupported()) {
            if (!hotspot.isThreadAllocatedMemoryEnabled()) {
                hotspot.setThreadAllocatedMemoryEnabled(true);
            }
            return hotspot;
        }
        return null; // another VM: time and string limits still hold
    }

    /**
     * A limit was hit. Not an IllegalArgumentException (Jinjava would take it for "no such method" and try
     * another) and not one of Jinjava's own, so that {@link ChatTemplate} can tell it from template errors.
     */
    static final class Exceeded extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Exceeded(String message) {
            super(message, null, false, false);
        }
    }
}
