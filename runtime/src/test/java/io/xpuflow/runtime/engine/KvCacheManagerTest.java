package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.model.KvLayout;
import org.junit.jupiter.api.Test;

/** The KV cache facade on its own: block tables, prefix caching, sliding release and budget sizing. */
class KvCacheManagerTest {
    private static final int BS = 4;
    private static final KvLayout FULL = new KvLayout(new int[] {0, 0}, new int[] {0});
    /** Full attention in group 0, a sliding window of 8 tokens in group 1. */
    private static final KvLayout HYBRID = new KvLayout(new int[] {0, 1, 0, 1}, new int[] {0, 8});

    private static KvCacheManager manager(KvLayout layout, int blocksPerGroup, boolean prefixCaching) {
        int[] blocks = new int[layout.numGroups()];
        long[] bytes = new long[layout.numGroups()];
        java.util.Arrays.fill(blocks, blocksPerGroup);
        java.util.Arrays.fill(bytes, 100);
        return new KvCacheManager(layout, BS, blocks, bytes, 16, prefixCaching);
    }

    private static RequestState request(KvCacheManager kv, String id, int... prompt) {
        return new RequestState(id, 0, prompt, 64, false, kv);
    }

    private static int[] range(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 100 + i;
        }
        return t;
    }

    @Test
    void allocatesTheBlocksAStepNeedsAllOrNothing() {
        KvCacheManager kv = manager(FULL, 4, false);
        RequestState a = request(kv, "a", range(10));
        assertThat(kv.allocate(a, 0, 10)).isTrue();
        assertThat(a.held).containsExactly(3);
        assertThat(a.tables[0]).startsWith(a.tables[0][0], a.tables[0][1], a.tables[0][2], -1);
        assertThat(kv.allocate(a, 10, 12)).isTrue(); // same block 2: nothing new
        assertThat(kv.numBlocksAllocated()).isEqualTo(3);
        assertThat(kv.numFreeBlocks(0)).isEqualTo(1);

        RequestState b = request(kv, "b", range(8));
        assertThat(kv.allocate(b, 0, 8)).isFalse(); // needs 2, one is free: none taken
        assertThat(kv.numFreeBlocks(0)).isEqualTo(1);
        assertThat(b.held).containsExactly(0);

        kv.releaseAll(a);
        assertThat(kv.numFreeBlocks(0)).isEqualTo(4);
        assertThat(kv.numBlocksFreed()).isEqualTo(3);
        assertThat(a.tables[0]).containsOnly(-1);
        assertThat(a.peakBlocks).containsExactly(3);
        assertThat(a.peakBytes).isEqualTo(300);
        assertThat(kv.usage()).isZero();
    }

    @Test
    void committedFullBlocksAreMatchedByALaterPromptWithTheSamePrefix() {
        KvCacheManager kv = manager(FULL, 8, true);
        RequestState a = request(kv, "a", range(10));
        kv.allocate(a, 0, 10);
        a.numComputedTokens = 10;
        kv.commitFullBlocks(a); // blocks 0 and 1 are full; block 2 is not
        int block0 = a.tables[0][0];
        int block1 = a.tables[0][1];
        kv.releaseAll(a);

        RequestState same = request(kv, "same", range(12));
        // at most (12 - 1) / 4 = 2 blocks: one token is always left to compute for the logits
        assertThat(kv.matchPrefix(same)).isEqualTo(8);
        assertThat(same.tables[0]).startsWith(block0, block1, -1);
        assertThat(same.numCommittedBlocks).isEqualTo(2);

        int[] other = range(12);
        other[5] = 1; // differs inside block 1
        RequestState diverging = request(kv, "diverging", other);
        assertThat(kv.matchPrefix(diverging)).isEqualTo(4);
        assertThat(diverging.tables[0][0]).isEqualTo(block0); // shared, now referenced twice
        assertThat(kv.prefixQueriedTokens).isEqualTo(24);
        assertThat(kv.prefixHitTokens).isEqualTo(12);

        kv.releaseAll(same);
        kv.releaseAll(diverging);
        assertThat(kv.numFreeBlocks(0)).isEqualTo(8);
    }

    @Test
    void withoutPrefixCachingNothingMatches() {
        KvCacheManager kv = manager(FULL, 8, false);
        RequestState a = request(kv, "a", range(10));
        kv.allocate(a, 0, 10);
        a.numComputedTokens = 10;
        kv.commitFullBlocks(a);
        kv.releaseAll(a);
        assertThat(kv.matchPrefix(request(kv, "b", range(10)))).isZero();
        assertThat(kv.prefixQueriedTokens).isZero();
    }

    @Test
    void slidingGroupsReleaseBlocksBehindTheWindowFullGroupsKeepThem() {
        KvCacheManager kv = manager(HYBRID, 16, false);
        RequestState r = request(kv, "r", range(20));
        kv.allocate(r, 0, 20);
        assertThat(r.held).containsExactly(5, 5);
        // a query at 20 sees keys 13..20 (window 8): blocks 0..2 of the sliding group are out of sight
        kv.releaseSlidOut(r, 20);
        assertThat(r.held).containsExactly(5, 2);
        assertThat(r.tables[1]).startsWith(-1, -1, -1);
        assertThat(kv.numFreeBlocks(1)).isEqualTo(14);
        kv.releaseSlidOut(r, 20); // idempotent
        assertThat(kv.numBlocksFreed()).isEqualTo(3);
        // allocating from 24 on releases first, then takes block 6 of both groups
        assertThat(kv.allocate(r, 24, 25)).isTrue();
        assertThat(r.held).containsExactly(6, 2);
        kv.releaseAll(r);
        assertThat(kv.numFreeBlocks(0)).isEqualTo(16);
        assertThat(kv.numFreeBlocks(1)).isEqualTo(16);
    }

    @Test
    void aHybridPrefixHitNeedsTheSlidingGroupsWindowToo() {
        KvCacheManager kv = manager(HYBRID, 16, true);
        RequestState a = request(kv, "a", range(17));
        kv.allocate(a, 0, 17);
        a.numComputedTokens = 17;
        kv.commitFullBlocks(a);
        kv.releaseAll(a);

        RequestState b = request(kv, "b", range(17));
        assertThat(kv.matchPrefix(b)).isEqualTo(16);
        // full group takes all 4 blocks; the sliding group only those a query at 16 can see (keys 9..16)
        assertThat(b.held).containsExactly(4, 2);
        assertThat(b.slidFrom).containsExactly(0, 2);
        kv.releaseAll(b);

        // the sliding blocks that held the window got evicted: the hit falls back to what is still whole
        RequestState hog = request(kv, "hog", new int[64]);
        assertThat(kv.allocate(hog, 0, 64)).isTrue();
        kv.releaseAll(hog);
        RequestState c = request(kv, "c", range(17));
        assertThat(kv.matchPrefix(c)).isZero();
    }

    @Test
    void budgetSizingGivesSlidingGroupsTheirWindowsAndFullGroupsTheRest() {
        long[] bytes = {1000, 1000};
        // 4 seqs, 16 tokens per step, max length 64 -> 16 blocks per sequence in a full group
        int[] blocks = KvCacheManager.blocksForBudget(HYBRID, bytes, 200_000, BS, 4, 16, 64);
        // sliding: 4 seqs x (ceil(7/4) + 2) + ceil(16/4) + 1 = 21 blocks; full: the rest, capped at 4 x 16
        assertThat(blocks[1]).isEqualTo(21);
        assertThat(blocks[0]).isEqualTo(64);
        int[] tight = KvCacheManager.blocksForBudget(HYBRID, bytes, 40_000, BS, 4, 16, 64);
        assertThat(tight[0]).isEqualTo(19); // (40000 - 21000) / 1000
        int[] fullOnly = KvCacheManager.blocksForBudget(FULL, new long[] {1000}, 30_000, BS, 4, 16, 64);
        assertThat(fullOnly).containsExactly(30);

        assertThatThrownBy(() -> KvCacheManager.blocksForBudget(HYBRID, bytes, 30_000, BS, 4, 16, 64))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContainingAll("max model length 64", "4 running", "raise the KV cache bytes");
    }
}
