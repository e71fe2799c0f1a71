package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class BlockPoolTest {
    private static final int BS = 4;

    @Test
    void allocatesEveryBlockOnceThenRunsOut() {
        BlockPool p = new BlockPool(5, BS);
        Set<Integer> got = new HashSet<>();
        for (int i = 0; i < 5; i++) {
            got.add(p.allocate());
        }
        assertThat(got).containsExactlyInAnyOrder(0, 1, 2, 3, 4);
        assertThat(p.allocate()).isEqualTo(-1);
        assertThat(p.numFree()).isZero();
        p.release(3);
        assertThat(p.allocate()).isEqualTo(3);
        assertThatThrownBy(() -> {
            p.release(2);
            p.release(2);
        }).isInstanceOf(IllegalStateException.class).hasMessageContaining("block 2");
    }

    @Test
    void cachedBlocksAreFoundUntilEvictedAndEmptyBlocksGoFirst() {
        BlockPool p = new BlockPool(3, BS);
        int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8};
        int a = p.allocate();
        int b = p.allocate();
        p.commit(a, 11L, 0L, tokens, 0);
        p.commit(b, 22L, 11L, tokens, 4);
        p.release(a);
        p.release(b);
        // the empty block is taken before either cached one
        int c = p.allocate();
        assertThat(c).isNotIn(a, b);
        assertThat(p.find(11L, 0L, tokens, 0)).isEqualTo(a);
        assertThat(p.find(22L, 11L, tokens, 4)).isEqualTo(b);
        // same hash, other tokens or parent: no hit
        assertThat(p.find(22L, 11L, tokens, 0)).isEqualTo(-1);
        assertThat(p.find(22L, 99L, tokens, 4)).isEqualTo(-1);
        // a hit takes the block out of the free list
        p.acquire(b);
        assertThat(p.numFree()).isEqualTo(1);
        // the next allocation evicts the least recently released cached block (a)
        assertThat(p.allocate()).isEqualTo(a);
        assertThat(p.find(11L, 0L, tokens, 0)).isEqualTo(-1);
        assertThat(p.find(22L, 11L, tokens, 4)).isEqualTo(b);
    }

    @Test
    void hashIndexSurvivesManyInsertionsAndEvictions() {
        int n = 64;
        BlockPool p = new BlockPool(n, 1);
        Random r = new Random(1);
        long[] hashOf = new long[n];
        int[] tok = new int[1];
        for (int round = 0; round < 20_000; round++) {
            int b = p.allocate();
            if (b < 0) {
                continue;
            }
            long h = r.nextInt(200); // many collisions on purpose: only one block per hash is indexed
            tok[0] = (int) h;
            p.commit(b, h, 0L, tok, 0);
            hashOf[b] = h;
            p.release(b);
            // every cached block can still be found by its hash (unless a twin holds the hash)
            long probe = r.nextInt(200);
            tok[0] = (int) probe;
            int found = p.find(probe, 0L, tok, 0);
            if (found >= 0) {
                assertThat(hashOf[found]).isEqualTo(probe);
            }
        }
        assertThat(p.numFree()).isEqualTo(n);
    }
}
