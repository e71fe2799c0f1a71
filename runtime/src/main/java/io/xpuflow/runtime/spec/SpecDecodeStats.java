package io.xpuflow.runtime.spec;

import java.util.Arrays;

/**
 * Engine-wide speculative-decoding counters, with the quantities vLLM reports: drafts proposed and
 * accepted, acceptance per draft position, verification steps and the mean accepted length.
 *
 * <p>Written by the engine thread once per verified request per step, read by metrics reporters through
 * {@link #snapshot()}; methods are synchronized, uncontended in practice, so a snapshot is consistent.
 */
public final class SpecDecodeStats {
    /**
     * Counters at one moment.
     *
     * @param draftTokens draft tokens proposed and verified
     * @param acceptedTokens of those, accepted
     * @param verificationSteps verifications of one request's drafts (one per request per step that
     *     verified at least one draft)
     * @param draftedAtPosition index i: verifications that proposed a draft at position i
     * @param acceptedAtPosition index i: verifications that accepted the draft at position i (and so all
     *     before it)
     */
    public record Snapshot(long draftTokens, long acceptedTokens, long verificationSteps,
                           long[] draftedAtPosition, long[] acceptedAtPosition) {
        /** An engine that does not speculate. */
        public static final Snapshot NONE = new Snapshot(0, 0, 0, new long[0], new long[0]);

        public Snapshot {
            draftedAtPosition = draftedAtPosition.clone();
            acceptedAtPosition = acceptedAtPosition.clone();
        }

        @Override
        public long[] draftedAtPosition() {
            return draftedAtPosition.clone();
        }

        @Override
        public long[] acceptedAtPosition() {
            return acceptedAtPosition.clone();
        }

        /** Accepted over proposed drafts; 0 before any. */
        public double acceptanceRate() {
            return draftTokens == 0 ? 0 : (double) acceptedTokens / draftTokens;
        }

        /**
         * Tokens emitted per verification: 1 (the correction or bonus token) plus the accepted drafts, as
         * vLLM's "mean acceptance length"; 0 before any verification.
         */
        public double meanAcceptedLength() {
            return verificationSteps == 0 ? 0 : 1 + (double) acceptedTokens / verificationSteps;
        }

        /** Acceptance rate of the draft at {@code position} among verifications that drafted it; 0 if none. */
        public double acceptanceRateAt(int position) {
            long drafted = draftedAtPosition[position];
            return drafted == 0 ? 0 : (double) acceptedAtPosition[position] / drafted;
        }
    }

    private final long[] drafted;
    private final long[] accepted;
    private long draftTokens;
    private long acceptedTokens;
    private long steps;

    /** @param maxDraftTokens the most drafts one verification may hold (the configured k) */
    public SpecDecodeStats(int maxDraftTokens) {
        if (maxDraftTokens < 1) {
            throw new IllegalArgumentException("maxDraftTokens must be >= 1, was " + maxDraftTokens);
        }
        this.drafted = new long[maxDraftTokens];
        this.accepted = new long[maxDraftTokens];
    }

    /**
     * Counts one verification of one request's drafts. A step that proposed none is not a verification
     * and is ignored, so it does not dilute the mean accepted length.
     *
     * @param proposed drafts verified (0..maxDraftTokens)
     * @param acceptedDrafts of those, accepted (0..proposed)
     */
    public synchronized void record(int proposed, int acceptedDrafts) {
        if (proposed < 0 || proposed > drafted.length || acceptedDrafts < 0 || acceptedDrafts > proposed) {
            throw new IllegalArgumentException("need 0 <= accepted <= proposed <= " + drafted.length
                    + ", was " + acceptedDrafts + " of " + proposed);
        }
        if (proposed == 0) {
            return;
        }
        steps++;
        draftTokens += proposed;
        acceptedTokens += acceptedDrafts;
        for (int i = 0; i < proposed; i++) {
            drafted[i]++;
        }
        for (int i = 0; i < acceptedDrafts; i++) {
            accepted[i]++;
        }
    }

    public synchronized Snapshot snapshot() {
        return new Snapshot(draftTokens, acceptedTokens, steps, drafted, accepted);
    }

    @Override
    public synchronized String toString() {
        Snapshot s = snapshot();
        return String.format("spec decode: %d drafts, %d accepted (%.1f%%), mean accepted length %.2f, per position %s",
                s.draftTokens(), s.acceptedTokens(), 100 * s.acceptanceRate(), s.meanAcceptedLength(),
                Arrays.toString(accepted));
    }
}
