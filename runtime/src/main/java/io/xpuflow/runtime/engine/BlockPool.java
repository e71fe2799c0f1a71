package io.xpuflow.runtime.engine;

import java.util.Arrays;

/**
 * The KV blocks of one KV group: reference counts, a free list, and the prefix cache of full blocks.
 *
 * <p>A block is in use (reference count above 0), free and empty, or free but still holding the KV of a
 * full block whose chain hash is known ("cached"). Free blocks sit in one list: empty ones at the head,
 * cached ones appended at the tail as they are released, so allocation takes empty blocks first and
 * then evicts the least recently released cached block. A prefix-cache hit on a free cached block takes
 * it out of the list again. Everything is in arrays sized once: no allocation after construction.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class BlockPool {
    private static final int NONE = -1;

    private final int numBlocks;
    private final int blockSize;
    private final int[] refCount;
    private final int[] prev;
    private final int[] next;
    private int head = NONE;
    private int tail = NONE;
    private int numFree;

    // prefix cache: hash of each cached block, its parent's hash and tokens (to verify a hit exactly)
    private final boolean[] hashed;
    private final long[] hash;
    private final long[] parentHash;
    private final int[] tokens;
    private final HashIndex index;

    BlockPool(int numBlocks, int blockSize) {
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        refCount = new int[numBlocks];
        prev = new int[numBlocks];
        next = new int[numBlocks];
        hashed = new boolean[numBlocks];
        hash = new long[numBlocks];
        parentHash = new long[numBlocks];
        tokens = new int[Math.multiplyExact(numBlocks, blockSize)];
        index = new HashIndex(numBlocks);
        for (int b = numBlocks - 1; b >= 0; b--) {
            pushFront(b);
        }
    }

    int numBlocks() {
        return numBlocks;
    }

    /** Free blocks, empty or cached: what allocation can take. */
    int numFree() {
        return numFree;
    }

    int numUsed() {
        return numBlocks - numFree;
    }

    /** Takes a free block (evicting its cached prefix, if any) with reference count 1, or returns -1. */
    int allocate() {
        int b = head;
        if (b == NONE) {
            return NONE;
        }
        unlink(b);
        if (hashed[b]) {
            index.remove(hash[b], b);
            hashed[b] = false;
        }
        refCount[b] = 1;
        return b;
    }

    /** Drops one reference; at zero the block becomes free (cached blocks stay findable until evicted). */
    void release(int b) {
        if (refCount[b] <= 0) {
            throw new IllegalStateException("KV block " + b + " released more often than taken");
        }
        if (--refCount[b] == 0) {
            if (hashed[b]) {
                pushBack(b);
            } else {
                pushFront(b);
            }
        }
    }

    /**
     * Marks a full block as holding the KV of the token block with this chain hash, so later requests with
     * the same prefix can share it. A second block with the same content is left out of the index.
     */
    void commit(int b, long blockHash, long parent, int[] src, int srcOffset) {
        if (hashed[b] || index.get(blockHash) != NONE) {
            return;
        }
        hashed[b] = true;
        hash[b] = blockHash;
        parentHash[b] = parent;
        System.arraycopy(src, srcOffset, tokens, b * blockSize, blockSize);
        index.put(blockHash, b);
    }

    /** The cached block holding exactly this token block after this parent, or -1; takes no reference. */
    int find(long blockHash, long parent, int[] src, int srcOffset) {
        int b = index.get(blockHash);
        if (b == NONE || parentHash[b] != parent
                || !Arrays.equals(tokens, b * blockSize, (b + 1) * blockSize, src, srcOffset, srcOffset + blockSize)) {
            return NONE;
        }
        return b;
    }

    /** Takes a reference on a block found with {@link #find}. */
    void acquire(int b) {
        if (refCount[b]++ == 0) {
            unlink(b);
        }
    }

    private void pushFront(int b) {
        prev[b] = NONE;
        next[b] = head;
        if (head != NONE) {
            prev[head] = b;
        } else {
            tail = b;
        }
        head = b;
        numFree++;
    }

    private void pushBack(int b) {
        next[b] = NONE;
        prev[b] = tail;
        if (tail != NONE) {
            next[tail] = b;
        } else {
            head = b;
        }
        tail = b;
        numFree++;
    }

    private void unlink(int b) {
        if (prev[b] != NONE) {
            next[prev[b]] = next[b];
        } else {
            head = next[b];
        }
        if (next[b] != NONE) {
            prev[next[b]] = prev[b];
        } else {
            tail = prev[b];
        }
        numFree--;
    }

    /** Open-addressing map from a block hash to the one block indexed under it (linear probing, backward-shift delete). */
    private static final class HashIndex {
        private final long[] keys;
        private final int[] values;
        private final int mask;

        HashIndex(int maxEntries) {
            int cap = Integer.highestOneBit(Math.max(4, maxEntries) * 2 - 1) << 1;
            keys = new long[cap];
            values = new int[cap];
            Arrays.fill(values, NONE);
            mask = cap - 1;
        }

        private int slot(long key) {
            return (int) (mix(key) & mask);
        }

        int get(long key) {
            for (int i = slot(key); values[i] != NONE; i = (i + 1) & mask) {
                if (keys[i] == key) {
                    return values[i];
                }
            }
            return NONE;
        }

        void put(long key, int value) {
            int i = slot(key);
            while (values[i] != NONE) {
                i = (i + 1) & mask;
            }
            keys[i] = key;
            values[i] = value;
        }

        void remove(long key, int value) {
            int i = slot(key);
            while (values[i] != NONE && !(keys[i] == key && values[i] == value)) {
                i = (i + 1) & mask;
            }
            if (values[i] == NONE) {
                return;
            }
            // backward-shift deletion keeps every remaining key reachable from its home slot
            int gap = i;
            for (int j = (gap + 1) & mask; values[j] != NONE; j = (j + 1) & mask) {
                int home = slot(keys[j]);
                boolean movable = gap <= j ? (home <= gap || home > j) : (home <= gap && home > j);
                if (movable) {
                    keys[gap] = keys[j];
                    values[gap] = values[j];
                    gap = j;
                }
            }
            values[gap] = NONE;
        }
    }

    /** A 64-bit finaliser (splitmix64) so that chain hashes spread over the table. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
