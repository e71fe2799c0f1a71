package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.model.KvLayout;
import java.util.Arrays;

/**
 * The hybrid paged KV cache, as seen by the scheduler: one {@link BlockPool} per KV group (layers of
 * one attention type) and the block tables of every request.
 *
 * <p>Full-attention groups keep a block for every token of a sequence. Sliding-window groups keep
 * only the blocks that the sequence's next queries can still see: blocks wholly before the window are
 * released as soon as the sequence moves past them, so a sliding group holds at most
 * {@code ceil((window - 1 + chunk) / blockSize) + 1} blocks per sequence, however long it grows.
 *
 * <p>Prefix caching: when a block becomes full, it is indexed under the chain hash of all tokens up to
 * its end (hash of the previous block's hash and the block's tokens; hits are verified token by token,
 * so a hash collision costs a miss, never wrong KV). A new request reuses the longest cached prefix of
 * whole blocks for which every full group has all blocks and every sliding group has the blocks its
 * window needs.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class KvCacheManager {
    private static final long ROOT_HASH = 0x6a09e667f3bcc909L;

    private final KvLayout layout;
    private final int blockSize;
    private final BlockPool[] pools;
    private final long[] blockBytes;
    private final int maxBlocksPerSeq;
    private final boolean prefixCaching;
    private final int[] need;     // scratch: blocks to allocate per group
    private final int[] firstHit; // scratch: per group, first block index a prefix hit takes

    long prefixQueriedTokens;
    long prefixHitTokens;
    /** Blocks taken over all groups since construction, prefix hits included (a step's share is a difference). */
    private long numBlocksAllocated;
    /** References given back over all groups since construction. */
    private long numBlocksFreed;

    KvCacheManager(KvLayout layout, int blockSize, int[] blocksPerGroup, long[] blockBytes, int maxBlocksPerSeq,
                   boolean prefixCaching) {
        this.layout = layout;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes.clone();
        this.maxBlocksPerSeq = maxBlocksPerSeq;
        this.prefixCaching = prefixCaching;
        this.pools = new BlockPool[layout.numGroups()];
        for (int g = 0; g < pools.length; g++) {
            pools[g] = new BlockPool(blocksPerGroup[g], blockSize);
        }
        this.need = new int[pools.length];
        this.firstHit = new int[pools.length];
    }

    /**
     * Blocks per group for a byte budget. Sliding groups get what {@code maxNumSeqs} sequences can hold
     * at once (their windows plus one step's tokens), full groups share the rest equally, since every
     * sequence holds the same number of blocks in each full group.
     *
     * @throws IllegalArgumentException if the budget cannot hold one sequence of {@code maxModelLen}
     */
    static int[] blocksForBudget(KvLayout layout, long[] blockBytes, long budget, int blockSize, int maxNumSeqs,
                                 int maxNumBatchedTokens, int maxModelLen) {
        int groups = layout.numGroups();
        int maxBlocksPerSeq = ceilDiv(maxModelLen, blockSize);
        int[] blocks = new int[groups];
        long slidingBytes = 0;
        long fullBytesPerBlock = 0;
        long oneSeqBytes = 0;
        for (int g = 0; g < groups; g++) {
            if (layout.sliding(g)) {
                int window = layout.groupWindow()[g];
                int perSeq = Math.min(maxBlocksPerSeq, ceilDiv(window - 1 + maxNumBatchedTokens, blockSize) + 1);
                long total = Math.min((long) maxNumSeqs * maxBlocksPerSeq,
                        (long) maxNumSeqs * (ceilDiv(window - 1, blockSize) + 2) + ceilDiv(maxNumBatchedTokens, blockSize) + 1);
                blocks[g] = (int) Math.max(perSeq, total);
                slidingBytes += blocks[g] * blockBytes[g];
                oneSeqBytes += perSeq * blockBytes[g];
            } else {
                fullBytesPerBlock += blockBytes[g];
                oneSeqBytes += (long) maxBlocksPerSeq * blockBytes[g];
            }
        }
        if (fullBytesPerBlock == 0) {
            // only sliding groups: their sizes above already bound what can ever be held
            if (slidingBytes > budget) {
                long perBlockSet = Arrays.stream(blockBytes).sum();
                long n = budget / perBlockSet;
                for (int g = 0; g < groups; g++) {
                    blocks[g] = (int) Math.min(blocks[g], n);
                }
                checkFits(budget, oneSeqBytes, n * perBlockSet >= oneSeqBytes, maxModelLen, maxNumSeqs);
            }
            return blocks;
        }
        long fullBlocks = (budget - slidingBytes) / fullBytesPerBlock;
        checkFits(budget, slidingBytes + maxBlocksPerSeq * fullBytesPerBlock, fullBlocks >= maxBlocksPerSeq,
                maxModelLen, maxNumSeqs);
        fullBlocks = Math.min(fullBlocks, (long) maxNumSeqs * maxBlocksPerSeq); // more can never be held
        for (int g = 0; g < groups; g++) {
            if (!layout.sliding(g)) {
                blocks[g] = (int) Math.min(Integer.MAX_VALUE, fullBlocks);
            }
        }
        return blocks;
    }

    private static void checkFits(long budget, long needed, boolean fits, int maxModelLen, int maxNumSeqs) {
        if (!fits) {
            throw new IllegalArgumentException(String.format(
                    "KV cache budget of %.1f MiB cannot hold one sequence of max model length %d with %d running"
                            + " sequences; it needs at least %.1f MiB: raise the KV cache bytes or lower max model"
                            + " length / max num seqs", budget / 1048576.0, maxModelLen, maxNumSeqs, needed / 1048576.0));
        }
    }

    static int ceilDiv(long a, int b) {
        return (int) ((a + b - 1) / b);
    }

    int blockSize() {
        return blockSize;
    }

    int numGroups() {
        return pools.length;
    }

    int maxBlocksPerSeq() {
        return maxBlocksPerSeq;
    }

    int numBlocks(int group) {
        return pools[group].numBlocks();
    }

    long blockBytes(int group) {
        return blockBytes[group];
    }

    long blocksUsed() {
        long n = 0;
        for (BlockPool p : pools) {
            n += p.numUsed();
        }
        return n;
    }

    long blocksTotal() {
        long n = 0;
        for (BlockPool p : pools) {
            n += p.numBlocks();
        }
        return n;
    }

    /** Fraction of KV bytes in use. */
    double usage() {
        double used = 0;
        double total = 0;
        for (int g = 0; g < pools.length; g++) {
            used += (double) pools[g].numUsed() * blockBytes[g];
            total += (double) pools[g].numBlocks() * blockBytes[g];
        }
        return total == 0 ? 0 : used / total;
    }

    long numBlocksAllocated() {
        return numBlocksAllocated;
    }

    long numBlocksFreed() {
        return numBlocksFreed;
    }

    /** Free blocks of one group, empty or prefix-cached: what allocation can take. */
    int numFreeBlocks(int group) {
        return pools[group].numFree();
    }

    /** A fresh block table per group for a new request, every slot empty. */
    int[][] newTables() {
        int[][] t = new int[pools.length][maxBlocksPerSeq];
        for (int[] row : t) {
            Arrays.fill(row, -1);
        }
        return t;
    }

    /**
     * Makes the request's tables cover positions [from, to): releases sliding blocks the queries from
     * {@code from} on can no longer see, then takes the missing blocks. Either every group gets its
     * blocks or none is taken.
     *
     * @return false if some group has too few free blocks (the caller preempts or waits)
     */
    boolean allocate(RequestState r, int from, int to) {
        releaseSlidOut(r, from);
        int firstSlot = from / blockSize;
        int lastSlot = (to - 1) / blockSize;
        for (int g = 0; g < pools.length; g++) {
            int[] t = r.tables[g];
            int n = 0;
            for (int i = firstSlot; i <= lastSlot; i++) {
                if (t[i] < 0) {
                    n++;
                }
            }
            if (n > pools[g].numFree()) {
                return false;
            }
            need[g] = n;
        }
        for (int g = 0; g < pools.length; g++) {
            if (need[g] == 0) {
                continue;
            }
            int[] t = r.tables[g];
            for (int i = firstSlot; i <= lastSlot; i++) {
                if (t[i] < 0) {
                    t[i] = pools[g].allocate();
                    r.held[g]++;
                    numBlocksAllocated++;
                }
            }
        }
        r.notePeak(blockBytes);
        return true;
    }

    /** Releases sliding-group blocks wholly before the window of a query at {@code position}. */
    void releaseSlidOut(RequestState r, int position) {
        for (int g = 0; g < pools.length; g++) {
            if (!layout.sliding(g)) {
                continue;
            }
            int firstVisible = Math.max(0, position - layout.groupWindow()[g] + 1);
            int[] t = r.tables[g];
            for (int i = r.slidFrom[g]; i < firstVisible / blockSize; i++) {
                if (t[i] >= 0) {
                    pools[g].release(t[i]);
                    t[i] = -1;
                    r.held[g]--;
                    numBlocksFreed++;
                }
            }
            r.slidFrom[g] = Math.max(r.slidFrom[g], firstVisible / blockSize);
        }
    }

    /** Releases every block of the request and resets its tables (on finish, cancel or preemption). */
    void releaseAll(RequestState r) {
        for (int g = 0; g < pools.length; g++) {
            int[] t = r.tables[g];
            for (int i = 0; i < t.length; i++) {
                if (t[i] >= 0) {
                    pools[g].release(t[i]);
                    t[i] = -1;
                    numBlocksFreed++;
                }
            }
            r.held[g] = 0;
            r.slidFrom[g] = 0;
        }
        r.numCommittedBlocks = 0;
    }

    /**
     * For a request about to be admitted with nothing computed: takes the cached blocks of the longest
     * reusable prefix of its tokens and returns that prefix's length in tokens (a multiple of the block
     * size, less than the request's length so at least one token is computed for its logits).
     */
    int matchPrefix(RequestState r) {
        if (!prefixCaching) {
            return 0;
        }
        int len = r.numTokens;
        prefixQueriedTokens += len;
        int maxBlocks = (len - 1) / blockSize;
        long parent = ROOT_HASH;
        for (int i = 0; i < maxBlocks; i++) {
            parent = chainHash(parent, r.tokens, i * blockSize);
            r.blockHashes[i] = parent;
        }
        // longest prefix that every full group holds completely
        int k = maxBlocks;
        for (int g = 0; g < pools.length && k > 0; g++) {
            if (!layout.sliding(g)) {
                int found = 0;
                while (found < k && find(g, r, found) >= 0) {
                    found++;
                }
                k = found;
            }
        }
        // shorten until every sliding group holds the blocks its window needs
        for (; k > 0; k--) {
            boolean ok = true;
            for (int g = 0; g < pools.length && ok; g++) {
                if (layout.sliding(g)) {
                    firstHit[g] = Math.max(0, k * blockSize - layout.groupWindow()[g] + 1) / blockSize;
                    for (int i = firstHit[g]; i < k && ok; i++) {
                        ok = find(g, r, i) >= 0;
                    }
                } else {
                    firstHit[g] = 0;
                }
            }
            if (ok) {
                break;
            }
        }
        if (k == 0) {
            return 0;
        }
        for (int g = 0; g < pools.length; g++) {
            for (int i = firstHit[g]; i < k; i++) {
                int b = find(g, r, i);
                pools[g].acquire(b);
                r.tables[g][i] = b;
                r.held[g]++;
                numBlocksAllocated++;
            }
            r.slidFrom[g] = firstHit[g];
        }
        r.numCommittedBlocks = k;
        r.notePeak(blockBytes);
        prefixHitTokens += (long) k * blockSize;
        return k * blockSize;
    }

    private int find(int g, RequestState r, int i) {
        return pools[g].find(r.blockHashes[i], i == 0 ? ROOT_HASH : r.blockHashes[i - 1], r.tokens, i * blockSize);
    }

    /** Indexes the request's blocks that became full with its last step, so later requests can share them. */
    void commitFullBlocks(RequestState r) {
        if (!prefixCaching) {
            return;
        }
        int full = r.numComputedTokens / blockSize;
        for (int i = r.numCommittedBlocks; i < full; i++) {
            long parent = i == 0 ? ROOT_HASH : r.blockHashes[i - 1];
            long h = chainHash(parent, r.tokens, i * blockSize);
            r.blockHashes[i] = h;
            for (int g = 0; g < pools.length; g++) {
                int b = r.tables[g][i];
                if (b >= 0) {
                    pools[g].commit(b, h, parent, r.tokens, i * blockSize);
                }
            }
        }
        r.numCommittedBlocks = Math.max(r.numCommittedBlocks, full);
    }

    private long chainHash(long parent, int[] tokens, int offset) {
        long h = BlockPool.mix(parent ^ 0x9e3779b97f4a7c15L);
        for (int j = 0; j < blockSize; j++) {
            h = BlockPool.mix(h ^ (tokens[offset + j] & 0xffffffffL));
        }
        return h;
    }
}
