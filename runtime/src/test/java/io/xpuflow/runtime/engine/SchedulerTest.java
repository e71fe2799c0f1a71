package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.model.KvLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The scheduler as a CPU-only state machine: {@code schedule()}, a hand-made step output (a token per
 * request that reached the end of its tokens), {@code updateFromOutput()}, then the queues, the
 * scheduled token counts and the free blocks are checked. No model, no device.
 */
class SchedulerTest {
    private static final int BS = 4;

    private long arrivals;

    /** A scheduler over one full-attention KV group of {@code blocks} blocks of {@value #BS} tokens. */
    private static Harness createScheduler(int blocks, int budget, int maxNumSeqs, boolean prefixCaching) {
        return createScheduler(new KvLayout(new int[] {0}, new int[] {0}), new int[] {blocks}, budget, maxNumSeqs,
                prefixCaching);
    }

    private static Harness createScheduler(KvLayout layout, int[] blocks, int budget, int maxNumSeqs,
                                           boolean prefixCaching) {
        long[] bytes = new long[blocks.length];
        java.util.Arrays.fill(bytes, 1024);
        KvCacheManager kv = new KvCacheManager(layout, BS, blocks, bytes, 16, prefixCaching);
        return new Harness(kv, new Scheduler(kv, budget, maxNumSeqs));
    }

    /** Requests with prompts of the given lengths (tokens 1, 2, 3, ... so equal lengths share prefixes). */
    private List<RequestState> createRequests(KvCacheManager kv, int... promptLengths) {
        List<RequestState> out = new ArrayList<>();
        for (int len : promptLengths) {
            int[] prompt = new int[len];
            for (int i = 0; i < len; i++) {
                prompt[i] = i + 1;
            }
            long a = arrivals++;
            out.add(new RequestState("r" + a, a, prompt, 64, false, kv));
        }
        return out;
    }

    private record Harness(KvCacheManager kv, Scheduler scheduler) {
        int freeBlocks() {
            return kv.numFreeBlocks(0);
        }

        /** One step: plans it, "samples" token 7 for every request with logits, advances; returns the plan. */
        StepPlan step() {
            return step(List.of());
        }

        /** As {@link #step()}, finishing (stopped) the given requests with the token they sample. */
        StepPlan step(List<RequestState> finishing) {
            StepPlan plan = scheduler.schedule();
            RequestStatus[] finished = new RequestStatus[plan.scheduled().size()];
            for (int k = 0; k < finished.length; k++) {
                StepPlan.ScheduledRequest s = plan.scheduled().get(k);
                if (s.numLogits() > 0) {
                    s.request().appendTokenId(7);
                    if (finishing.contains(s.request())) {
                        finished[k] = RequestStatus.FINISHED_STOPPED;
                    }
                }
            }
            scheduler.updateFromOutput(plan, finished);
            return plan;
        }
    }

    /** Proposes drafts for a decoding request as a drafter would. */
    private static void draft(RequestState r, int... drafts) {
        if (r.draftLength == null) {
            r.enableSpeculation(4, false, io.xpuflow.runtime.spec.AdaptiveDraftLength.DEFAULT_DRAFT_COST);
        }
        System.arraycopy(drafts, 0, r.specTokens, 0, drafts.length);
        r.numSpecTokens = drafts.length;
    }

    @Test
    void draftsRideAfterTheLastTokenAndRejectedOnesAreRolledBackBeforeThePrefixCacheSeesThem() {
        Harness h = createScheduler(16, 16, 4, true);
        RequestState r = createRequests(h.kv(), 6).get(0);
        h.scheduler().addRequest(r);
        h.step(); // the prompt; token 7 sampled at position 6
        draft(r, 20, 21, 22);
        StepPlan plan = h.scheduler().schedule();
        StepPlan.ScheduledRequest s = plan.scheduled().get(0);
        assertThat(s.numScheduledTokens()).isEqualTo(4);
        assertThat(s.numLogits()).isEqualTo(4);
        assertThat(s.draftTokenIds()).containsExactly(20, 21, 22);
        assertThat(java.util.Arrays.copyOfRange(r.tokens, 6, 10)).containsExactly(7, 20, 21, 22);
        assertThat(r.held[0]).isEqualTo(3); // positions 0..9: the lookahead block for the drafts
        // all drafts rejected: the correction token replaces draft 1 at position 7
        r.appendTokenId(30);
        h.scheduler().updateFromOutput(plan, new RequestStatus[1], new int[] {3});
        assertThat(r.numComputedTokens).isEqualTo(7);
        // block 1 (positions 4..7) held a rejected draft at 7: not full of accepted tokens, so not indexed
        assertThat(r.numCommittedBlocks).isEqualTo(1);
        // next: one accepted of two drafts (tokens 40 accepted, 50 the bonus), rolled back by one
        draft(r, 40, 41);
        plan = h.scheduler().schedule();
        assertThat(plan.scheduled().get(0).numScheduledTokens()).isEqualTo(3);
        r.appendTokenId(40);
        r.appendTokenId(50);
        h.scheduler().updateFromOutput(plan, new RequestStatus[1], new int[] {1});
        assertThat(r.numComputedTokens).isEqualTo(r.numTokens - 1).isEqualTo(9);
        assertThat(r.numCommittedBlocks).isEqualTo(2); // positions 4..7 now hold 5, 6, 7, 30: all accepted
    }

    @Test
    void theTokenBudgetCutsDraftsFromTheTail() {
        Harness h = createScheduler(16, 3, 4, false);
        RequestState a = createRequests(h.kv(), 1).get(0);
        RequestState b = createRequests(h.kv(), 1).get(0);
        h.scheduler().addRequest(a);
        h.scheduler().addRequest(b);
        h.step();
        draft(a, 20, 21, 22);
        draft(b, 30, 31);
        StepPlan plan = h.scheduler().schedule();
        // a takes its token and the two drafts the budget of 3 leaves; b gets nothing this step, keeping its drafts
        assertThat(plan.scheduled()).hasSize(1);
        assertThat(plan.scheduled().get(0).draftTokenIds()).containsExactly(20, 21);
        assertThat(plan.scheduled().get(0).numLogits()).isEqualTo(3);
        assertThat(b.numSpecTokens).isEqualTo(2);
    }

    @Test
    void preemptionClearsTheDrafts() {
        Harness h = createScheduler(3, 16, 4, false);
        List<RequestState> rs = createRequests(h.kv(), 4, 4);
        rs.forEach(h.scheduler()::addRequest);
        h.step(); // both prompts: 2 blocks, 1 free
        draft(rs.get(0), 20, 21, 22, 23);
        draft(rs.get(1), 30);
        StepPlan plan = h.scheduler().schedule(); // the first needs 2 more blocks: the second is preempted
        assertThat(plan.preempted()).containsExactly(rs.get(1));
        assertThat(rs.get(1).numSpecTokens).isZero();
        assertThat(plan.scheduled().get(0).draftTokenIds()).containsExactly(20, 21, 22, 23);
    }

    private static List<String> ids(List<StepPlan.ScheduledRequest> scheduled) {
        return scheduled.stream().map(s -> s.request().id).toList();
    }

    private static List<Integer> counts(StepPlan plan) {
        return plan.scheduled().stream().map(StepPlan.ScheduledRequest::numScheduledTokens).toList();
    }

    @Test
    void admitsWaitingRequestsInArrivalOrderAndRunsThemFirstNextStep() {
        Harness h = createScheduler(64, 100, 8, false);
        List<RequestState> rs = createRequests(h.kv(), 5, 3, 6);
        rs.forEach(h.scheduler()::addRequest);

        StepPlan first = h.step();
        assertThat(ids(first.scheduled())).containsExactly("r0", "r1", "r2");
        assertThat(counts(first)).containsExactly(5, 3, 6);
        assertThat(first.totalNumScheduledTokens()).isEqualTo(14);
        assertThat(first.scheduled()).allMatch(s -> s.numLogits() == 1 && s.draftTokenIds().length == 0);
        assertThat(first.scheduled().stream().map(StepPlan.ScheduledRequest::firstLogitRow)).containsExactly(0, 1, 2);
        assertThat(rs).allMatch(r -> r.status == RequestStatus.RUNNING && r.numComputedTokens == r.numTokens - 1);

        // decode: every request computes the one token it sampled
        StepPlan second = h.step();
        assertThat(counts(second)).containsExactly(1, 1, 1);
        assertThat(second.scheduled().stream().map(StepPlan.ScheduledRequest::numComputedTokens))
                .containsExactly(5, 3, 6);
        assertThat(h.scheduler().numWaiting()).isZero();
    }

    @Test
    void tokenBudgetChunksALongPromptAndLogitsComeOnlyWithItsLastChunk() {
        Harness h = createScheduler(64, 8, 8, false);
        RequestState r = createRequests(h.kv(), 20).get(0);
        h.scheduler().addRequest(r);

        StepPlan a = h.step();
        StepPlan b = h.step();
        StepPlan c = h.step();
        assertThat(List.of(counts(a), counts(b), counts(c))).containsExactly(List.of(8), List.of(8), List.of(4));
        assertThat(a.scheduled().get(0).numLogits()).isZero();
        assertThat(a.scheduled().get(0).firstLogitRow()).isEqualTo(-1);
        assertThat(b.scheduled().get(0).numPromptTokens()).isEqualTo(8);
        assertThat(c.scheduled().get(0).numLogits()).isEqualTo(1);
        assertThat(r.numGenerated()).isEqualTo(1);
        assertThat(r.numComputedTokens).isEqualTo(20);
    }

    @Test
    void runningRequestsTakeTheBudgetBeforeWaitingOnes() {
        Harness h = createScheduler(64, 8, 8, false);
        List<RequestState> rs = createRequests(h.kv(), 3, 12);
        h.scheduler().addRequest(rs.get(0));
        h.step(); // r0 prefilled alone
        h.scheduler().addRequest(rs.get(1));

        StepPlan plan = h.step();
        assertThat(ids(plan.scheduled())).containsExactly("r0", "r1");
        assertThat(counts(plan)).containsExactly(1, 7); // r0 decodes, r1 gets what is left of the budget
        assertThat(plan.scheduled().get(1).numLogits()).isZero();
    }

    @Test
    void prefixCacheHitStartsPastTheCachedBlocks() {
        Harness h = createScheduler(64, 100, 8, true);
        List<RequestState> rs = createRequests(h.kv(), 9, 9);
        h.scheduler().addRequest(rs.get(0));
        h.step(List.of(rs.get(0))); // computes 9 tokens (2 full blocks indexed), finishes
        assertThat(h.freeBlocks()).isEqualTo(64);

        h.scheduler().addRequest(rs.get(1));
        StepPlan plan = h.step();
        StepPlan.ScheduledRequest s = plan.scheduled().get(0);
        assertThat(s.numComputedTokens()).isEqualTo(8);
        assertThat(s.numScheduledTokens()).isEqualTo(1);
        assertThat(s.numPromptTokens()).isEqualTo(1);
        assertThat(rs.get(1).cachedPromptTokens).isEqualTo(8);
        assertThat(plan.numBlocksAllocated()).isEqualTo(3); // two cached blocks shared, one new
        assertThat(h.kv().prefixHitTokens).isEqualTo(8);
    }

    @Test
    void preemptsTheYoungestWhenBlocksRunOutAndReadmitsItAtTheHead() {
        Harness h = createScheduler(4, 100, 8, false);
        List<RequestState> rs = createRequests(h.kv(), 7, 7, 2);
        RequestState old = rs.get(0);
        RequestState young = rs.get(1);
        RequestState later = rs.get(2);
        h.scheduler().addRequest(old);
        h.scheduler().addRequest(young);
        h.step(); // both prefilled: 2 blocks each, pool full
        h.scheduler().addRequest(later);
        assertThat(h.freeBlocks()).isZero();

        StepPlan decode = h.step(); // position 7 still fits block 1 of each; nobody is admitted (no blocks)
        assertThat(ids(decode.scheduled())).containsExactly("r0", "r1");
        assertThat(h.scheduler().waiting()).containsExactly(later);

        StepPlan plan = h.step(); // position 8 needs a third block: the youngest gives its blocks up
        assertThat(plan.preempted()).containsExactly(young);
        assertThat(ids(plan.scheduled())).containsExactly("r0");
        assertThat(plan.numBlocksFreed()).isEqualTo(2);
        assertThat(young.status).isEqualTo(RequestStatus.PREEMPTED);
        assertThat(young.numComputedTokens).isZero();
        assertThat(young.preemptions).isEqualTo(1);
        assertThat(h.scheduler().waiting()).containsExactly(young, later);
        int youngTokens = young.numTokens;
        assertThat(youngTokens).isEqualTo(9); // its output so far is kept

        h.step(List.of(old)); // old finishes: its 3 blocks come back
        StepPlan readmit = h.step();
        assertThat(ids(readmit.scheduled())).startsWith("r1");
        assertThat(readmit.scheduled().get(0).numComputedTokens()).isZero();
        assertThat(readmit.scheduled().get(0).numScheduledTokens()).isEqualTo(youngTokens); // recomputed, output included
        assertThat(young.status).isEqualTo(RequestStatus.RUNNING);
    }

    @Test
    void theRunningSequenceCapLeavesTheRestWaiting() {
        Harness h = createScheduler(64, 100, 2, false);
        List<RequestState> rs = createRequests(h.kv(), 3, 3, 3);
        rs.forEach(h.scheduler()::addRequest);

        StepPlan plan = h.step();
        assertThat(ids(plan.scheduled())).containsExactly("r0", "r1");
        assertThat(h.scheduler().waiting()).containsExactly(rs.get(2));
        assertThat(rs.get(2).status).isEqualTo(RequestStatus.WAITING);

        h.step(List.of(rs.get(0)));
        assertThat(ids(h.step().scheduled())).containsExactly("r1", "r2");
    }

    @Test
    void finishAndCancelFreeEveryBlockOnce() {
        Harness h = createScheduler(16, 100, 8, false);
        List<RequestState> rs = createRequests(h.kv(), 9, 5, 5);
        rs.forEach(h.scheduler()::addRequest);
        h.step(List.of(rs.get(1)));
        assertThat(rs.get(1).status).isEqualTo(RequestStatus.FINISHED_STOPPED);
        assertThat(h.freeBlocks()).isEqualTo(16 - 3 - 2);

        assertThat(h.scheduler().finishRequest(rs.get(0), RequestStatus.FINISHED_ABORTED)).isTrue();
        assertThat(h.scheduler().finishRequest(rs.get(0), RequestStatus.FINISHED_ABORTED)).isFalse();
        assertThat(rs.get(0).status.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(h.freeBlocks()).isEqualTo(16 - 2);
        assertThat(h.scheduler().running()).containsExactly(rs.get(2));
        assertThatThrownBy(() -> h.scheduler().finishRequest(rs.get(2), RequestStatus.RUNNING))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("r2");

        List<RequestState> left = h.scheduler().removeAll();
        assertThat(left).containsExactly(rs.get(2));
        assertThat(h.freeBlocks()).isEqualTo(16);
        assertThat(h.scheduler().hasUnfinished()).isFalse();
        assertThat(h.scheduler().schedule().isEmpty()).isTrue();
    }

    @Test
    void aSlidingGroupReleasesBlocksThatLeftTheWindow() {
        // group 0: full attention; group 1: sliding window of 4 tokens
        KvLayout layout = new KvLayout(new int[] {0, 1}, new int[] {0, 4});
        Harness h = createScheduler(layout, new int[] {16, 16}, 4, 8, false);
        RequestState r = createRequests(h.kv(), 16).get(0);
        h.scheduler().addRequest(r);
        for (int i = 0; i < 4; i++) {
            h.step();
        }
        assertThat(r.numComputedTokens).isEqualTo(16);
        // the next query (position 16) sees keys 13..16: blocks 0..2 are gone from the sliding group only
        assertThat(r.held).containsExactly(4, 1);
        assertThat(h.kv().numFreeBlocks(0)).isEqualTo(12);
        assertThat(h.kv().numFreeBlocks(1)).isEqualTo(15);

        StepPlan decode = h.step(); // position 16 starts block 4
        assertThat(decode.numBlocksAllocated()).isEqualTo(2);
        assertThat(r.held).containsExactly(5, 2);
    }

    @Test
    void aSlidingGroupIsReleasedFromTheAcceptedLengthNotFromTheDrafts() {
        KvLayout layout = new KvLayout(new int[] {0, 1}, new int[] {0, 4});
        Harness h = createScheduler(layout, new int[] {16, 16}, 16, 8, false);
        RequestState r = createRequests(h.kv(), 7).get(0);
        h.scheduler().addRequest(r);
        h.step(); // computed 0..6, token at 7
        draft(r, 20, 21, 22, 23);
        StepPlan plan = h.scheduler().schedule(); // positions 7..11: blocks up to 2 in both groups
        assertThat(plan.scheduled().get(0).numScheduledTokens()).isEqualTo(5);
        r.appendTokenId(30); // every draft rejected
        h.scheduler().updateFromOutput(plan, new RequestStatus[1], new int[] {4});
        assertThat(r.numComputedTokens).isEqualTo(8);
        // the next query at position 8 sees keys 5..8: block 1 (4..7) must stay; released from the drafts'
        // end (position 12, keys 9..12) it would have been freed
        assertThat(r.tables[1][0]).isNegative();
        assertThat(r.tables[1][1]).isNotNegative();
        assertThat(r.slidFrom[1]).isEqualTo(1);
    }

    @Test
    void refusesToAddARequestTwiceOrWithAWrongPlanLength() {
        Harness h = createScheduler(16, 100, 8, false);
        RequestState r = createRequests(h.kv(), 3).get(0);
        h.scheduler().addRequest(r);
        StepPlan plan = h.scheduler().schedule();
        assertThatThrownBy(() -> h.scheduler().addRequest(r)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("r0").hasMessageContaining("RUNNING");
        assertThatThrownBy(() -> h.scheduler().updateFromOutput(plan, new RequestStatus[0]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 outcomes");
    }
}
