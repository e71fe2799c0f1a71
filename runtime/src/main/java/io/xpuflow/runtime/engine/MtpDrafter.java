package io.xpuflow.runtime.engine;

import io.xpuflow.device.StepBatch;
import io.xpuflow.runtime.model.KvLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Chained MTP drafts (MiMo's multi-token-prediction layers), batched over every speculating request:
 * one MTP-only device step per draft depth for the whole batch, never one per request.
 *
 * <p>With L MTP layers, a request whose tokens are {@code x_0 .. x_m} (all but {@code x_m} computed, so
 * the main model's final normed hidden {@code h_j} is known for {@code j < m}) drafts k tokens as
 * spec-decode.json describes:
 * <ul>
 *   <li>draft s+1 (s &lt; L) comes from MTP layer s at row m-1; layer s row j takes (layer s-1's output at
 *   row j, or {@code h_j} for layer 0) and the token {@code x_{j+s+1}}, where tokens past {@code x_m} are
 *   the drafts made so far. Rows whose token is verified are final and computed once; rows that took a
 *   draft (j &gt;= m-s) are provisional and computed again next time, overwriting their K/V;</li>
 *   <li>draft s+1 (s &gt;= L) recurses on the last layer: one row at position {@code m + s - L} taking that
 *   layer's output at the row before and draft s.</li>
 * </ul>
 * So a step of k drafts costs k MTP-only device calls (layer 0 over the rows since the last step, layer 1
 * likewise, then one row per further draft), whatever the number of requests.
 *
 * <p>Per request ({@link State}) it keeps the main model's hidden by position (copied from each main
 * step) and each layer's output by row, and per layer the first row not yet final; only the rows a later
 * drafting step reads are kept (a few per request while decoding, a prefill chunk's until its first
 * draft), so the memory does not grow with the sequence. A preempted request's
 * state is reset and rebuilt from the recomputation's hidden states. Rows below a prefix-cache hit have
 * no hidden state here and are skipped, as are rows whose sliding window reaches blocks already
 * released: their drafts are only worse, never wrong, since the target model verifies every draft.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class MtpDrafter extends Drafter {
    private final ModelExecutor executor;
    private final StepBatch batch;
    private final KvCacheManager kv;
    private final int numLayers;
    private final int hidden;
    /** KV group of each MTP layer, and its window (0: full attention). */
    private final int[] group;
    private final int[] window;
    private final int blockSize;

    // scratch of one propose() round, per participating request
    private final List<RequestState> reqs = new ArrayList<>();
    private int[] budget = new int[8];
    private int[][] drafts = new int[8][];

    /**
     * Hidden vectors by position (row), kept only from {@link #base} on: a request keeps the few rows the
     * next drafting step reads, not one vector per token of its whole length.
     */
    static final class Rows {
        private final int hidden;
        float[] data = new float[0];
        /** Position of the first kept row. */
        int base;
        /** One past the last row storage was made for. */
        int end;

        Rows(int hidden) {
            this.hidden = hidden;
        }

        /** Offset of {@code row} in {@link #data}; the row must be kept ({@code row >= base}). */
        int offset(int row) {
            if (row < base) {
                throw new IllegalStateException("MTP row " + row + " was dropped (rows are kept from " + base + ")");
            }
            return (row - base) * hidden;
        }

        /** Makes room for the rows below {@code rowEnd}. */
        void ensure(int rowEnd) {
            int needed = (rowEnd - base) * hidden;
            if (needed > data.length) {
                data = Arrays.copyOf(data, Math.max(needed, 2 * data.length));
            }
            end = Math.max(end, rowEnd);
        }

        /** Forgets the rows below {@code row}: nothing will read them again. */
        void dropBelow(int row) {
            if (row <= base) {
                return;
            }
            if (row < end) {
                System.arraycopy(data, (row - base) * hidden, data, 0, (end - row) * hidden);
            } else {
                end = row;
            }
            base = row;
        }

        void reset() {
            base = 0;
            end = 0;
        }
    }

    /** Per-request MTP rows. */
    static final class State {
        /** Main model's final normed hidden by position. */
        final Rows h;
        /** Output (after the layer's final norm) of each MTP layer by row. */
        final Rows[] out;
        /** Per layer: rows below are final (their token was verified). */
        final int[] done;
        /** Per layer: rows below were never computed since the last reset (prefix hit, released window). */
        final int[] base;
        /** Hidden states below this position were never captured (prefix-cache hit). */
        int hiddenFrom;
        /** Hidden states are captured up to here (exclusive). */
        int hiddenEnd;

        State(int layers, int hidden) {
            h = new Rows(hidden);
            out = new Rows[layers];
            for (int s = 0; s < layers; s++) {
                out[s] = new Rows(hidden);
            }
            done = new int[layers];
            base = new int[layers];
        }

        void reset() {
            Arrays.fill(done, 0);
            Arrays.fill(base, 0);
            hiddenFrom = 0;
            hiddenEnd = 0;
            h.reset();
            for (Rows o : out) {
                o.reset();
            }
        }

        /** After a drafting step with last token at {@code m}: drops the rows no later step reads. */
        void trim(int m) {
            h.dropBelow(done[0]);
            for (int s = 0; s + 1 < out.length; s++) {
                out[s].dropBelow(done[s + 1]);
            }
            // the last layer feeds only the recursion, from row m-1 on; while a short k leaves it behind, its
            // own next rows start at done[last]
            int last = out.length - 1;
            out[last].dropBelow(Math.min(done[last], m - 1));
        }
    }

    /**
     * @param batch an MTP-only batch ({@link StepBatch.Capacity#mtpHidden()}) with room for the engine's
     *     sequences
     */
    MtpDrafter(ModelExecutor executor, StepBatch batch, KvCacheManager kv, KvLayout layout, int numDecoderLayers,
               int numMtpLayers, int hidden) {
        this.executor = executor;
        this.batch = batch;
        this.kv = kv;
        this.numLayers = numMtpLayers;
        this.hidden = hidden;
        this.blockSize = kv.blockSize();
        this.group = new int[numMtpLayers];
        this.window = new int[numMtpLayers];
        for (int s = 0; s < numMtpLayers; s++) {
            group[s] = layout.layerGroup()[numDecoderLayers + s];
            window[s] = layout.sliding(group[s]) ? layout.groupWindow()[group[s]] : 0;
        }
    }

    State newState() {
        return new State(numLayers, hidden);
    }

    /** Per MTP row of the main step: the request and position its output belongs to. */
    private final List<RequestState> inStepReq = new ArrayList<>();
    private int[] inStepPos = new int[64];

    /**
     * Asks the main step for MTP layer 0 at the prompt rows whose next token is known (every scheduled
     * position before the request's last token, from the first row layer 0 still lacks): they are final,
     * so their K/V and output are computed once, in the call that computes their hidden state, with no
     * LM head. The last token's row waits for the sampled token, and rows of a verification step for the
     * verdict on their drafts: both go to the drafting calls.
     */
    @Override
    void beforeExecute(StepPlan plan, StepBatch main) {
        inStepReq.clear();
        int rowStart = 0;
        for (StepPlan.ScheduledRequest s : plan.scheduled()) {
            RequestState r = s.request();
            State st = r.mtp;
            int from = s.numComputedTokens();
            int n = s.numScheduledTokens();
            if (st != null && s.draftTokenIds().length == 0) {
                if (from > st.hiddenEnd) {
                    st.hiddenFrom = from;
                }
                int start = Math.max(Math.max(st.done[0], st.hiddenFrom), slidClamp(r, 0));
                // rows before this step's first one that layer 0 still lacks are the drafting calls' to fill
                if (start >= from) {
                    if (start > st.done[0]) {
                        st.base[0] = start; // rows below have no hidden (prefix hit) or no window left
                        st.done[0] = start;
                    }
                    int end = Math.min(from + n, r.numTokens - 1);
                    st.out[0].ensure(end);
                    for (int j = start; j < end; j++) {
                        int i = main.requestMtp(rowStart + j - from, r.tokens[j + 1]);
                        if (i == inStepPos.length) {
                            inStepPos = Arrays.copyOf(inStepPos, 2 * i);
                        }
                        inStepPos[i] = j;
                        inStepReq.add(r);
                    }
                    st.done[0] = Math.max(st.done[0], end);
                }
            }
            rowStart += n;
        }
        if (!inStepReq.isEmpty()) {
            main.mtpLayer(0);
            main.mtpLogits(false);
        }
    }

    /**
     * Copies the in-step MTP rows' outputs, and the final normed hidden of the rows of every MTP request
     * that no MTP layer-0 row consumed yet.
     */
    @Override
    void afterExecute(StepPlan plan, StepBatch main) {
        for (int i = 0; i < inStepReq.size(); i++) {
            Rows out = inStepReq.get(i).mtp.out[0];
            main.copyMtpHidden(i, out.data, out.offset(inStepPos[i]));
        }
        int rowStart = 0;
        for (StepPlan.ScheduledRequest s : plan.scheduled()) {
            RequestState r = s.request();
            State st = r.mtp;
            int from = s.numComputedTokens();
            int n = s.numScheduledTokens();
            if (st != null) {
                if (from > st.hiddenEnd) {
                    st.hiddenFrom = from; // no step gave the positions before (a prefix-cache hit)
                }
                st.hiddenEnd = from + n;
                st.h.ensure(from + n);
                for (int j = Math.max(0, st.done[0] - from); j < n; j++) {
                    main.copyHidden(rowStart + j, st.h.data, st.h.offset(from + j));
                }
            }
            rowStart += n;
        }
    }

    @Override
    void propose(List<RequestState> running) {
        reqs.clear();
        int maxK = 0;
        for (int i = 0; i < running.size(); i++) {
            RequestState r = running.get(i);
            if (r.mtp == null) {
                continue;
            }
            int k = draftBudget(r);
            if (k <= 0) {
                continue;
            }
            int m = r.numTokens - 1;
            if (k > numLayers && !kv.allocate(r, r.numComputedTokens, m + k - numLayers)) {
                k = numLayers; // no block for the recursion rows: draft what the layers' own rows give
            }
            int idx = reqs.size();
            if (idx == budget.length) {
                budget = Arrays.copyOf(budget, 2 * idx);
                drafts = Arrays.copyOf(drafts, 2 * idx);
            }
            budget[idx] = k;
            if (drafts[idx] == null || drafts[idx].length < k) {
                drafts[idx] = new int[r.specTokens.length];
            }
            reqs.add(r);
            maxK = Math.max(maxK, k);
        }
        for (int s = 0; s < maxK; s++) {
            runDepth(s);
        }
        for (int i = 0; i < reqs.size(); i++) {
            RequestState r = reqs.get(i);
            System.arraycopy(drafts[i], 0, r.specTokens, 0, budget[i]);
            r.numSpecTokens = budget[i];
            r.mtp.trim(r.numTokens - 1);
        }
    }

    /** One draft depth (0-based s) for every request that drafts more than s tokens: one device call or more. */
    private void runDepth(int s) {
        depth = s;
        begin(Math.min(s, numLayers - 1));
        for (int i = 0; i < reqs.size(); i++) {
            if (budget[i] <= s) {
                continue;
            }
            RequestState r = reqs.get(i);
            State st = r.mtp;
            int m = r.numTokens - 1;
            if (s < numLayers) {
                int lowest = s == 0 ? st.hiddenFrom : st.base[s - 1];
                int start = Math.max(Math.max(st.done[s], lowest), slidClamp(r, s));
                if (start > st.done[s]) {
                    st.base[s] = start;
                }
                if (start > m - 1) {
                    budget[i] = s; // no row m-1 can be computed (a released window): stop drafting here
                    continue;
                }
                int seq = batch.addSequenceTables(r.tables);
                Rows in = s == 0 ? st.h : st.out[s - 1];
                st.out[s].ensure(m);
                for (int j = start; j < m; j++) {
                    int t = j + s + 1;
                    int next = t <= m ? r.tokens[t] : drafts[i][t - m - 1];
                    seq = add(i, seq, r, j, next, in.data, in.offset(j), st.out[s], j == m - 1);
                }
                st.done[s] = Math.max(st.done[s], m - s);
            } else {
                int seq = batch.addSequenceTables(r.tables);
                int q = m + s - numLayers;
                Rows f = st.out[numLayers - 1];
                f.ensure(q + 1);
                add(i, seq, r, q, drafts[i][s - 1], f.data, f.offset(q - 1), f, true);
            }
        }
        flush();
    }

    // rows of the current device call: which request and draft slot each feeds, where its output goes
    private int layer;
    private int depth;
    private final List<Rows> outOf = new ArrayList<>();
    private int[] posOf = new int[64];
    private int[] draftOf = new int[64];
    private boolean anyDraft;

    private void begin(int mtpLayer) {
        layer = mtpLayer;
        batch.clear();
        batch.mtpLayer(mtpLayer);
        outOf.clear();
        anyDraft = false;
    }

    /** Adds one row, first running the call when the batch is full; returns the request's sequence index. */
    private int add(int req, int seq, RequestState r, int position, int next, float[] in, int inOffset, Rows out,
                    boolean draftRow) {
        if (batch.numMtpRows() == batch.capacity().maxMtpRows()) {
            flush();
            begin(layer);
            seq = batch.addSequenceTables(r.tables);
        }
        int i = batch.requestMtp(seq, position, next, in, inOffset);
        if (i == posOf.length) {
            posOf = Arrays.copyOf(posOf, 2 * i);
            draftOf = Arrays.copyOf(draftOf, 2 * i);
        }
        posOf[i] = position;
        draftOf[i] = draftRow ? req : -1;
        outOf.add(out);
        anyDraft |= draftRow;
        return seq;
    }

    private void flush() {
        int n = batch.numMtpRows();
        if (n == 0) {
            return;
        }
        batch.mtpLogits(anyDraft);
        executor.run(batch);
        for (int i = 0; i < n; i++) {
            Rows out = outOf.get(i);
            batch.copyMtpHidden(i, out.data, out.offset(posOf[i]));
            int req = draftOf[i];
            if (req >= 0) {
                drafts[req][depth] = batch.mtpArgmax(i);
            }
        }
        batch.clear();
    }

    /**
     * Lowest row of layer {@code s} whose sliding window lies in blocks the request still holds
     * (0 for full attention): the scheduler releases blocks wholly before the window of the next query.
     */
    private int slidClamp(RequestState r, int s) {
        if (window[s] == 0 || r.slidFrom[group[s]] == 0) {
            return 0;
        }
        return r.slidFrom[group[s]] * blockSize + window[s] - 1;
    }
}
