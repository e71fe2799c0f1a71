package io.xpuflow.runtime.engine;

/**
 * Where a request is in its life. The declaration order encodes finality: every status after
 * {@link #PREEMPTED} is final ({@link #isFinished()}), so a status never moves back from a finished one.
 *
 * <pre>
 *   WAITING --admit--> RUNNING --preempt--> PREEMPTED --admit--> RUNNING
 *      |                  |                    |
 *      +------------------+--------------------+--> FINISHED_* (stop, length, aborted, error)
 * </pre>
 */
enum RequestStatus {
    /** Queued, never admitted: holds no KV blocks. */
    WAITING,
    /** Admitted: holds KV blocks and takes part in steps. */
    RUNNING,
    /** Its blocks were taken back for lack of memory; queued at the head, recomputed when re-admitted. */
    PREEMPTED,
    /** An end-of-sequence token, a stop token id or a stop string. */
    FINISHED_STOPPED,
    /** {@code max_tokens} generated or the max model length reached. */
    FINISHED_LENGTH,
    /** Cancelled by the caller. */
    FINISHED_ABORTED,
    /** Failed alone (sampling or output processing); the engine went on. */
    FINISHED_ERROR;

    boolean isFinished() {
        return compareTo(PREEMPTED) > 0;
    }

    /** The finish reason a result reports for this status. */
    FinishReason finishReason() {
        return switch (this) {
            case FINISHED_STOPPED -> FinishReason.STOP;
            case FINISHED_LENGTH -> FinishReason.LENGTH;
            case FINISHED_ABORTED -> FinishReason.CANCELLED;
            default -> throw new IllegalStateException("status " + this + " has no finish reason");
        };
    }

    static RequestStatus finishedBy(FinishReason reason) {
        return switch (reason) {
            case STOP -> FINISHED_STOPPED;
            case LENGTH -> FINISHED_LENGTH;
            case CANCELLED -> FINISHED_ABORTED;
        };
    }
}
