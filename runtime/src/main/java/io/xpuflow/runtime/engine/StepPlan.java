package io.xpuflow.runtime.engine;

import java.util.List;

/**
 * What one device step computes, as decided by {@link Scheduler#schedule()}: the runner executes exactly
 * this and decides nothing. Built once per step and never changed; the requests it names are mutable
 * engine state, but the counts here are the ones fixed at scheduling time.
 *
 * @param scheduled requests in batch order (running ones oldest first, then those admitted this step)
 * @param totalNumScheduledTokens sum of {@link ScheduledRequest#numScheduledTokens()}, at most the token budget
 * @param preempted requests preempted while scheduling this step (now at the head of the waiting queue)
 * @param numBlocksAllocated KV blocks (all groups) taken while scheduling, prefix hits included
 * @param numBlocksFreed KV blocks (all groups) given back while scheduling: preemptions and slid-out windows
 */
record StepPlan(List<ScheduledRequest> scheduled, int totalNumScheduledTokens, List<RequestState> preempted,
                int numBlocksAllocated, int numBlocksFreed) {

    static final int[] NO_DRAFTS = new int[0];

    private static final StepPlan EMPTY = new StepPlan(List.of(), 0, List.of(), 0, 0);

    StepPlan {
        scheduled = List.copyOf(scheduled);
        preempted = List.copyOf(preempted);
    }

    static StepPlan empty() {
        return EMPTY;
    }

    boolean isEmpty() {
        return scheduled.isEmpty();
    }

    /** Logit rows the step produces over all requests. */
    int numLogitRows() {
        int n = 0;
        for (ScheduledRequest s : scheduled) {
            n += s.numLogits();
        }
        return n;
    }

    /**
     * One request's part of a step: positions {@code [numComputedTokens, numComputedTokens +
     * numScheduledTokens)} of its tokens are computed, and the last {@code numLogits} of them produce logits.
     *
     * <pre>
     *   tokens:   | computed (KV cached)  | scheduled this step        | not yet |
     *             0                       numComputedTokens            +numScheduledTokens
     *   logits:                               only the last numLogits rows of the scheduled part
     * </pre>
     *
     * Without speculative decoding {@code numLogits} is 0 (a prefill chunk short of the end of the tokens)
     * or 1 (the step reaches the end, so the next token is sampled). With {@code k} draft tokens to verify
     * the request schedules {@code 1 + k} tokens, the drafts sitting after its last real token, and wants
     * {@code 1 + k} logit rows; scoring requests want logits at every scheduled position.
     *
     * @param request the request, mutable engine state owned by the loop thread
     * @param numComputedTokens tokens with KV in the cache before this step; the first scheduled position
     * @param numScheduledTokens tokens computed by this step, at least 1
     * @param numLogits trailing scheduled positions whose logits the step returns
     * @param firstLogitRow index of this request's first logit row in the step's logits, -1 when numLogits is 0
     * @param draftTokenIds draft tokens verified by this step (the last {@code length} scheduled tokens), empty
     *     until speculative decoding schedules some; shared, never written
     */
    record ScheduledRequest(RequestState request, int numComputedTokens, int numScheduledTokens, int numLogits,
                            int firstLogitRow, int[] draftTokenIds) {

        ScheduledRequest {
            if (numScheduledTokens <= 0 || numLogits < 0 || numLogits > numScheduledTokens) {
                throw new IllegalArgumentException("request " + request.id + ": " + numScheduledTokens
                        + " scheduled tokens with " + numLogits + " logit rows");
            }
        }

        /** Prompt tokens among the scheduled ones (0 once the prompt is computed). */
        int numPromptTokens() {
            int end = numComputedTokens + numScheduledTokens;
            return Math.max(0, Math.min(end, request.numPromptTokens) - numComputedTokens);
        }

        /** Logit row of the last scheduled position, the one the next token is sampled from; -1 without logits. */
        int lastLogitRow() {
            return numLogits == 0 ? -1 : firstLogitRow + numLogits - 1;
        }
    }
}
