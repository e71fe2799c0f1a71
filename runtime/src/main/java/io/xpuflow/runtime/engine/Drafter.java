package io.xpuflow.runtime.engine;

import io.xpuflow.device.StepBatch;
import java.util.List;

/**
 * Proposes the draft tokens of speculating requests between steps: after a step's output is processed
 * and the scheduler advanced the requests, every running request that is decoding gets up to its k
 * drafts in {@link RequestState#specTokens}, which the next {@link Scheduler#schedule()} puts after its
 * last token for the target model to verify.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
abstract class Drafter {

    /**
     * May add outputs to the prepared main step before it runs (MTP asks for layer-0 rows of prompt
     * positions there, so their K/V need no call of their own).
     */
    void beforeExecute(StepPlan plan, StepBatch batch) {
    }

    /** Sees the main step's outputs before the next step overwrites them (MTP takes hidden states). */
    void afterExecute(StepPlan plan, StepBatch batch) {
    }

    /** Proposes drafts for the requests that will be scheduled next; {@code running} is not modified. */
    abstract void propose(List<RequestState> running);

    /**
     * Drafts request {@code r} may get now: 0 unless it speculates, runs, is decoding (all but its last
     * token computed) and has no drafts pending; then its per-step k, cut so that the drafts plus the
     * bonus token never pass its token capacity (its max_tokens or the max model length).
     */
    static int draftBudget(RequestState r) {
        if (r.draftLength == null || r.status != RequestStatus.RUNNING || r.numSpecTokens > 0
                || r.numComputedTokens != r.numTokens - 1) {
            return 0;
        }
        int room = r.tokens.length - r.numTokens - 1;
        if (room <= 0) {
            return 0;
        }
        return Math.min(r.draftLength.nextDraftLength(), room);
    }
}
