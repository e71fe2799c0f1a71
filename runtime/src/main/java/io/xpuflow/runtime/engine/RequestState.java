package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.sample.TokenHistory;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

/**
 * Everything the engine keeps about one request while it waits or runs: its tokens (prompt then
 * output, preallocated to the most it can reach), how many have KV computed, its block tables, and
 * its sampling, detokenisation and timing state. Owned by the engine's loop thread once submitted.
 */
final class RequestState {
    final String id;
    final long arrivalOrder;
    final long arrivalNanos;
    final SamplingParams params;
    final TokenListener listener;
    final CompletableFuture<GenerationResult> future;
    final GenerationHandle handle;

    final int[] tokens;
    final int numPromptTokens;
    int numTokens;
    /** Tokens whose KV is in the cache; the next step computes from here. */
    int numComputedTokens;

    final int[][] tables;
    final int[] held;
    final int[] slidFrom;
    final long[] blockHashes;
    int numCommittedBlocks;
    final int[] peakBlocks;
    long peakBytes;

    final SplittableRandom random;
    final TokenHistory history;
    final Collection<Integer> suppressedEarly;
    final Tokenizer.Stream detokenizer;
    final StringBuilder text = new StringBuilder();
    /** Characters of {@link #text} already handed to the listener. */
    int streamedChars;
    final List<GenerationResult.TokenLogprob> logprobs;

    /** Scoring: logits (and MTP logits when asked) at every computed position, no sampling. */
    final boolean logitsAtEveryPosition;
    /** Why the request failed alone, with status {@link RequestStatus#FINISHED_ERROR}. */
    GenerationException error;

    /**
     * Speculative decoding: drafts proposed after the last step for the next one to verify, in
     * {@code specTokens[0 .. numSpecTokens)}; empty array when the engine does not speculate.
     */
    int[] specTokens = StepPlan.NO_DRAFTS;
    int numSpecTokens;
    /** Per-request draft length (adaptive or fixed); null when the engine does not speculate. */
    io.xpuflow.runtime.spec.AdaptiveDraftLength draftLength;
    /** The MTP drafter's rows of this request; null unless drafting with MTP. */
    MtpDrafter.State mtp;
    /** Drafts verified for the request and, of those, accepted (its usage). */
    int draftTokens;
    int acceptedTokens;

    long firstScheduledNanos;
    long firstTokenNanos;
    int preemptions;
    int cachedPromptTokens;
    /** Written by the loop thread, except for a request cancelled before the loop took it. */
    volatile RequestStatus status = RequestStatus.WAITING;

    RequestState(String id, long arrivalOrder, int[] prompt, int capacity, SamplingParams params, TokenListener listener,
                 Collection<Integer> suppressedEarly, Tokenizer tokenizer, KvCacheManager kv, LlmEngine engine) {
        this.id = id;
        this.arrivalOrder = arrivalOrder;
        this.arrivalNanos = System.nanoTime();
        this.params = params;
        this.listener = listener;
        this.future = new CompletableFuture<>();
        this.handle = new GenerationHandle(this, engine);
        this.tokens = new int[capacity];
        System.arraycopy(prompt, 0, tokens, 0, prompt.length);
        this.numPromptTokens = prompt.length;
        this.numTokens = prompt.length;
        this.tables = kv.newTables();
        this.held = new int[kv.numGroups()];
        this.slidFrom = new int[kv.numGroups()];
        this.peakBlocks = new int[kv.numGroups()];
        this.blockHashes = new long[kv.maxBlocksPerSeq()];
        this.random = new SplittableRandom(params.seed() != null ? params.seed() : seedFromId(id));
        this.history = new TokenHistory(prompt);
        this.suppressedEarly = suppressedEarly;
        this.detokenizer = tokenizer == null ? null : tokenizer.newDecodeStream(true, prompt);
        this.logprobs = params.logprobs() > 0 ? new ArrayList<>() : List.of();
        this.logitsAtEveryPosition = false;
    }

    /**
     * A request that is only computed, never sampled by the engine: scoring (logits at every position)
     * or a client that samples itself (greedy generation of {@code ModelRunner}), without tokenizer,
     * listener or result future of its own.
     *
     * @param capacity tokens the request may reach, at least the prompt's length
     */
    RequestState(String id, long arrivalOrder, int[] prompt, int capacity, boolean logitsAtEveryPosition,
                 KvCacheManager kv) {
        this.id = id;
        this.arrivalOrder = arrivalOrder;
        this.arrivalNanos = System.nanoTime();
        this.params = null;
        this.listener = TokenListener.NONE;
        this.future = new CompletableFuture<>();
        this.handle = null;
        this.tokens = java.util.Arrays.copyOf(prompt, capacity);
        this.numPromptTokens = prompt.length;
        this.numTokens = prompt.length;
        this.tables = kv.newTables();
        this.held = new int[kv.numGroups()];
        this.slidFrom = new int[kv.numGroups()];
        this.peakBlocks = new int[kv.numGroups()];
        this.blockHashes = new long[kv.maxBlocksPerSeq()];
        this.random = null;
        this.history = null;
        this.suppressedEarly = List.of();
        this.detokenizer = null;
        this.logprobs = List.of();
        this.logitsAtEveryPosition = logitsAtEveryPosition;
    }

    /**
     * Turns speculation on for this request: k at most {@code maxDrafts}, adapted per step when asked, with
     * {@code draftCost} (in plain steps) as the price of one draft.
     */
    void enableSpeculation(int maxDrafts, boolean adaptive, double draftCost) {
        this.specTokens = new int[maxDrafts];
        this.draftLength = new io.xpuflow.runtime.spec.AdaptiveDraftLength(maxDrafts, adaptive, draftCost);
    }

    /** Drops pending drafts and the drafter's per-request rows: after preemption everything is recomputed. */
    void resetSpeculation() {
        numSpecTokens = 0;
        if (mtp != null) {
            mtp.reset();
        }
    }

    /** Appends a token chosen outside the engine's output processor (a scoring client's own sampling). */
    void appendTokenId(int id) {
        tokens[numTokens++] = id;
    }

    /** A seed that depends only on the request id, so a replay of the same request samples the same tokens. */
    static long seedFromId(String id) {
        long h = 0xcbf29ce484222325L;
        for (byte b : id.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001b3L;
        }
        return BlockPool.mix(h);
    }

    int numGenerated() {
        return numTokens - numPromptTokens;
    }

    /** Tokens the request still needs computed before it can sample. */
    int pending() {
        return numTokens - numComputedTokens;
    }

    void notePeak(long[] blockBytes) {
        long bytes = 0;
        for (int g = 0; g < held.length; g++) {
            peakBlocks[g] = Math.max(peakBlocks[g], held[g]);
            bytes += held[g] * blockBytes[g];
        }
        peakBytes = Math.max(peakBytes, bytes);
    }
}
