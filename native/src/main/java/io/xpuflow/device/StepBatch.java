package io.xpuflow.device;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;

/**
 * A reusable description of one engine step ({@code xpu_batch}) with its input and output buffers,
 * allocated once at the capacity given. Fill it with {@link #addSequence}, {@link #requestLogits} and
 * {@link #requestMtp}, run {@link DeviceModel#step}, read the outputs, {@link #clear()}, repeat.
 *
 * <p>MTP drafting ({@link Capacity#mtpHidden()}): an MTP row either takes a decoder row of the same step
 * ({@link #requestMtp(int, int)}), or names its sequence, position and input hidden itself
 * ({@link #requestMtp(int, int, int, float[], int)}): a decoder row's {@link #copyHidden hidden state} of
 * an earlier step, or the previous MTP layer's output ({@link #copyMtpHidden}) to chain layers. A step
 * may hold only such explicit MTP rows and no token rows at all: its sequences are then added with
 * {@link #addSequenceTables} and only lend their block tables. An MTP row writes its K/V at its position
 * of the MTP layer's cache, overwriting what an earlier step left there (a row recomputed after a
 * rejected draft).
 *
 * <pre>
 * rows:        | seq 0: p0 p0+1 .. | seq 1: p1 p1+1 .. | ...      (token ids + positions)
 * seqStarts:   0                   n0                  n0+n1 ...
 * blockTables: [group][seq][block slot] -> block id, -1 for none (slid out of a window or unused)
 * </pre>
 *
 * <p>Not thread-safe: one batch per engine thread.
 */
public final class StepBatch {
    /**
     * Sizes of a batch.
     *
     * @param maxTokens token rows per step
     * @param maxSeqs sequences per step
     * @param maxBlocksPerSeq block-table slots per sequence and group (context length / block size)
     * @param maxLogitRows rows whose logits one step may return
     * @param maxMtpRows rows whose MTP draft logits one step may return
     * @param expertTrace keep the routing trace (expert ids per MoE layer, row and k)
     * @param hiddenStates keep the final normed hidden state of every row
     * @param mtpHidden buffers for the MTP rows' input hidden (explicit MTP rows) and output hidden
     *     ({@code maxMtpRows x hidden} each)
     */
    public record Capacity(int maxTokens, int maxSeqs, int maxBlocksPerSeq, int maxLogitRows, int maxMtpRows,
                           boolean expertTrace, boolean hiddenStates, boolean mtpHidden) {
        public Capacity {
            if (maxTokens <= 0 || maxSeqs <= 0 || maxBlocksPerSeq <= 0 || maxLogitRows < 0 || maxMtpRows < 0) {
                throw new IllegalArgumentException("batch capacity must be positive: " + this);
            }
            if (mtpHidden && maxMtpRows == 0) {
                throw new IllegalArgumentException("MTP hidden buffers need maxMtpRows > 0: " + this);
            }
        }

        /** A capacity without MTP hidden buffers. */
        public Capacity(int maxTokens, int maxSeqs, int maxBlocksPerSeq, int maxLogitRows, int maxMtpRows,
                        boolean expertTrace, boolean hiddenStates) {
            this(maxTokens, maxSeqs, maxBlocksPerSeq, maxLogitRows, maxMtpRows, expertTrace, hiddenStates, false);
        }
    }

    /** How the MTP rows of the current step name their input: none yet, decoder rows, or explicitly. */
    private enum MtpMode { NONE, DECODER_ROWS, EXPLICIT }

    enum BatchField { NUM_SEQS, NUM_TOKENS, TOKEN_IDS, POSITIONS, SEQ_STARTS, BLOCK_TABLES, MAX_BLOCKS_PER_SEQ,
        NUM_LOGIT_ROWS, LOGIT_ROWS, LOGITS, HIDDEN_OUT, EXPERT_IDS_OUT, MTP_LAYER, NUM_MTP_ROWS, MTP_ROWS,
        MTP_NEXT_TOKENS, MTP_LOGITS, MTP_HIDDEN_IN, MTP_HIDDEN_OUT, MTP_SEQS, MTP_POSITIONS }

    private final DeviceModel model;
    private final Capacity capacity;
    private final int vocab;
    private final int hidden;
    private final int groups;
    private final int traceStride; // ints per (MoE layer) in the trace: maxTokens * topK
    private final int topK;
    private final int numMoeLayers;

    private final NativeStruct<BatchField> struct = new NativeStruct<>("batch", BatchField.class);
    private final IntBuffer tokenIds;
    private final IntBuffer positions;
    private final IntBuffer seqStarts;
    private final IntBuffer blockTables;
    private final IntBuffer logitRows;
    private final FloatBuffer logits;
    private final FloatBuffer logitsView; // read-only, for samplers; logit row i starts at i * vocab
    private final IntBuffer mtpRows;
    private final IntBuffer mtpNextTokens;
    private final FloatBuffer mtpLogits;
    private final long mtpLogitsAddress;
    private final IntBuffer mtpSeqs;
    private final IntBuffer mtpPositions;
    private final FloatBuffer mtpHiddenIn; // null unless capacity.mtpHidden
    private final FloatBuffer mtpHiddenOut; // null unless capacity.mtpHidden
    private final long[] explicitMtpAddresses; // MTP_HIDDEN_IN, MTP_SEQS, MTP_POSITIONS, set for explicit rows only
    private final IntBuffer expertTrace; // null unless capacity.expertTrace
    private final FloatBuffer hiddenOut; // null unless capacity.hiddenStates
    private final int[][] tables; // [group][seq * maxBlocksPerSeq + slot], staged in Java

    private int numSeqs;
    private int numTokens;
    private int numLogitRows;
    private int numMtpRows;
    private int mtpLayer;
    private MtpMode mtpMode;
    private boolean wantMtpLogits;
    private boolean tablesOnly; // sequences were added by addSequenceTables (an MTP-only step)

    StepBatch(DeviceModel model, Capacity capacity) {
        ModelParams p = model.params();
        if (capacity.maxTokens() > p.maxTokensPerStep() || capacity.maxSeqs() > p.maxSeqsPerStep()) {
            throw new IllegalArgumentException("batch capacity " + capacity + " exceeds the model's step limits of "
                    + p.maxTokensPerStep() + " tokens and " + p.maxSeqsPerStep() + " sequences");
        }
        this.model = model;
        this.capacity = capacity;
        this.vocab = Math.toIntExact(p.vocabSize());
        this.hidden = Math.toIntExact(p.hiddenSize());
        this.groups = Math.toIntExact(p.numKvGroups());
        int moeLayers = 0;
        int k = 0;
        for (int l = 0; l < p.numLayers(); l++) {
            LayerParams lp = model.layer(l);
            if (lp.moe()) {
                moeLayers++;
                k = Math.max(k, Math.toIntExact(lp.topK()));
            }
        }
        this.numMoeLayers = moeLayers;
        this.topK = k;
        this.traceStride = capacity.maxTokens() * Math.max(1, k);

        tokenIds = ints(capacity.maxTokens(), BatchField.TOKEN_IDS);
        positions = ints(capacity.maxTokens(), BatchField.POSITIONS);
        seqStarts = ints(capacity.maxSeqs() + 1, BatchField.SEQ_STARTS);
        blockTables = ints(groups * capacity.maxSeqs() * capacity.maxBlocksPerSeq(), BatchField.BLOCK_TABLES);
        logitRows = ints(Math.max(1, capacity.maxLogitRows()), BatchField.LOGIT_ROWS);
        logits = floats((long) Math.max(1, capacity.maxLogitRows()) * vocab, BatchField.LOGITS);
        logitsView = logits.asReadOnlyBuffer();
        mtpRows = ints(Math.max(1, capacity.maxMtpRows()), BatchField.MTP_ROWS);
        mtpNextTokens = ints(Math.max(1, capacity.maxMtpRows()), BatchField.MTP_NEXT_TOKENS);
        mtpLogits = floats((long) Math.max(1, capacity.maxMtpRows()) * vocab, BatchField.MTP_LOGITS);
        mtpLogitsAddress = struct.get(BatchField.MTP_LOGITS);
        mtpSeqs = ints(Math.max(1, capacity.maxMtpRows()), BatchField.MTP_SEQS);
        mtpPositions = ints(Math.max(1, capacity.maxMtpRows()), BatchField.MTP_POSITIONS);
        mtpHiddenIn = capacity.mtpHidden()
                ? floats((long) capacity.maxMtpRows() * hidden, BatchField.MTP_HIDDEN_IN) : null;
        mtpHiddenOut = capacity.mtpHidden()
                ? floats((long) capacity.maxMtpRows() * hidden, BatchField.MTP_HIDDEN_OUT) : null;
        explicitMtpAddresses = new long[] {struct.get(BatchField.MTP_HIDDEN_IN), struct.get(BatchField.MTP_SEQS),
                struct.get(BatchField.MTP_POSITIONS)};
        expertTrace = capacity.expertTrace() && moeLayers > 0
                ? ints(moeLayers * traceStride, BatchField.EXPERT_IDS_OUT) : null;
        hiddenOut = capacity.hiddenStates() ? floats((long) capacity.maxTokens() * hidden, BatchField.HIDDEN_OUT) : null;
        tables = new int[groups][capacity.maxSeqs() * capacity.maxBlocksPerSeq()];
        clear();
    }

    private IntBuffer ints(long count, BatchField field) {
        ByteBuffer b = direct(count * 4);
        struct.set(field, new Pointer(b).address());
        return b.asIntBuffer();
    }

    private FloatBuffer floats(long count, BatchField field) {
        ByteBuffer b = direct(count * 4);
        struct.set(field, new Pointer(b).address());
        return b.asFloatBuffer();
    }

    private static ByteBuffer direct(long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("batch buffer of " + bytes + " bytes is over 2 GiB: lower the capacity");
        }
        return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
    }

    DeviceModel model() {
        return model;
    }

    public Capacity capacity() {
        return capacity;
    }

    /** Empties the batch for the next step; buffers are kept. */
    public void clear() {
        numSeqs = 0;
        numTokens = 0;
        numLogitRows = 0;
        numMtpRows = 0;
        mtpLayer = 0;
        mtpMode = MtpMode.NONE;
        wantMtpLogits = true;
        tablesOnly = false;
        seqStarts.put(0, 0);
    }

    /**
     * Appends {@code count} tokens of one sequence, {@code tokens[offset ..]}, at positions
     * {@code startPosition ..}, reading and writing the KV blocks in {@code blockTables[group]}
     * (block ids by block slot; -1 for slots it must not touch).
     *
     * @return the row of the first appended token
     */
    public int addSequence(int[] tokens, int offset, int count, int startPosition, int[][] blockTables) {
        if (count <= 0) {
            throw new IllegalArgumentException("a sequence needs at least one token, got " + count);
        }
        if (numSeqs == capacity.maxSeqs()) {
            throw new IllegalStateException("batch already holds its maximum of " + capacity.maxSeqs() + " sequences");
        }
        if (numTokens + count > capacity.maxTokens()) {
            throw new IllegalStateException("batch of " + numTokens + " tokens cannot take " + count
                    + " more (capacity " + capacity.maxTokens() + ")");
        }
        if (startPosition < 0) {
            throw new IllegalArgumentException("negative start position " + startPosition);
        }
        if (tablesOnly) {
            throw new IllegalStateException("batch holds sequences without tokens (addSequenceTables): an MTP-only "
                    + "step cannot take token rows");
        }
        stageTables(blockTables);
        int first = numTokens;
        for (int i = 0; i < count; i++) {
            tokenIds.put(numTokens + i, tokens[offset + i]);
            positions.put(numTokens + i, startPosition + i);
        }
        numTokens += count;
        numSeqs++;
        seqStarts.put(numSeqs, numTokens);
        return first;
    }

    /**
     * Adds a sequence without token rows, only its block tables, for an MTP-only step (no
     * {@link #addSequence} in the same step): explicit MTP rows ({@link #requestMtp(int, int, int, float[], int)})
     * name it by the returned index.
     *
     * @return the sequence index
     */
    public int addSequenceTables(int[][] blockTables) {
        if (numSeqs == capacity.maxSeqs()) {
            throw new IllegalStateException("batch already holds its maximum of " + capacity.maxSeqs() + " sequences");
        }
        if (numTokens > 0) {
            throw new IllegalStateException("batch has " + numTokens + " token rows: sequences without tokens are "
                    + "only for MTP-only steps");
        }
        stageTables(blockTables);
        tablesOnly = true;
        numSeqs++;
        seqStarts.put(numSeqs, 0);
        return numSeqs - 1;
    }

    private void stageTables(int[][] blockTables) {
        if (blockTables.length != groups) {
            throw new IllegalArgumentException("need a block table per KV group (" + groups + "), got " + blockTables.length);
        }
        int maxBlocks = capacity.maxBlocksPerSeq();
        for (int g = 0; g < groups; g++) {
            if (blockTables[g].length > maxBlocks) {
                throw new IllegalArgumentException("block table of group " + g + " has " + blockTables[g].length
                        + " slots, capacity is " + maxBlocks);
            }
        }
        for (int g = 0; g < groups; g++) {
            int[] table = blockTables[g];
            int base = numSeqs * maxBlocks;
            System.arraycopy(table, 0, tables[g], base, table.length);
            Arrays.fill(tables[g], base + table.length, base + maxBlocks, -1);
        }
    }

    /** Asks for the logits of {@code row}; returns its index among the logit rows. */
    public int requestLogits(int row) {
        checkRow(row);
        if (numLogitRows == capacity.maxLogitRows()) {
            throw new IllegalStateException("batch already returns its maximum of " + capacity.maxLogitRows() + " logit rows");
        }
        logitRows.put(numLogitRows, row);
        return numLogitRows++;
    }

    /**
     * Asks for the MTP draft logits of {@code row}: the row's final hidden state plus the token that
     * follows it ({@code nextToken}) through MTP layer {@link #mtpLayer(int)}. Rows of one sequence must
     * be requested in ascending order. Returns the index among the MTP rows.
     */
    public int requestMtp(int row, int nextToken) {
        checkRow(row);
        checkMtp(MtpMode.DECODER_ROWS, nextToken);
        mtpRows.put(numMtpRows, row);
        mtpNextTokens.put(numMtpRows, nextToken);
        return numMtpRows++;
    }

    /**
     * Asks for an explicit MTP row (needs {@link Capacity#mtpHidden()}): input hidden
     * {@code hiddenIn[offset .. offset + hidden)} (a decoder row's final normed hidden, or the previous MTP
     * layer's output for a chained layer) plus {@code nextToken} through MTP layer {@link #mtpLayer(int)}, at
     * {@code position} of sequence {@code seq} (its index in this batch: the order of {@link #addSequence}
     * or {@link #addSequenceTables} calls). The row's K/V go to that position of the MTP layer's cache,
     * replacing what was there; it attends to the keys 0..position of that layer, so the positions below
     * must have been written by this or earlier steps. Rows of one sequence must be requested at strictly
     * ascending positions. Explicit rows and decoder-row requests ({@link #requestMtp(int, int)}) do not
     * mix in one step. Returns the index among the MTP rows.
     */
    public int requestMtp(int seq, int position, int nextToken, float[] hiddenIn, int offset) {
        if (mtpHiddenIn == null) {
            throw new IllegalStateException("batch was created without MTP hidden buffers (Capacity.mtpHidden)");
        }
        if (seq < 0 || seq >= numSeqs) {
            throw new IndexOutOfBoundsException("MTP sequence " + seq + " outside the batch's " + numSeqs + " sequences");
        }
        if (position < 0) {
            throw new IllegalArgumentException("MTP position " + position + " is negative");
        }
        if (offset < 0 || offset > hiddenIn.length - hidden) {
            throw new IndexOutOfBoundsException("MTP hidden input needs " + hidden + " floats at offset " + offset
                    + ", the array has " + hiddenIn.length);
        }
        checkMtp(MtpMode.EXPLICIT, nextToken);
        mtpRows.put(numMtpRows, 0);
        mtpSeqs.put(numMtpRows, seq);
        mtpPositions.put(numMtpRows, position);
        mtpNextTokens.put(numMtpRows, nextToken);
        mtpHiddenIn.put(numMtpRows * hidden, hiddenIn, offset, hidden);
        return numMtpRows++;
    }

    private void checkMtp(MtpMode mode, int nextToken) {
        if (numMtpRows == capacity.maxMtpRows()) {
            throw new IllegalStateException("batch already returns its maximum of " + capacity.maxMtpRows() + " MTP rows");
        }
        if (mtpMode != MtpMode.NONE && mtpMode != mode) {
            throw new IllegalStateException("MTP rows of one step either all take decoder rows or all are explicit");
        }
        if (nextToken < 0 || nextToken >= vocab) {
            throw new IllegalArgumentException("MTP next token " + nextToken + " outside the vocabulary of " + vocab);
        }
        mtpMode = mode;
    }

    /** Which MTP layer the MTP rows go through (default 0). */
    public void mtpLayer(int layer) {
        this.mtpLayer = layer;
    }

    /**
     * Whether the MTP rows' logits are computed (default true, reset by {@link #clear()}). Without
     * them the step skips the LM head of the MTP rows: for rows run only for their K/V and output
     * hidden (a chained layer's input).
     */
    public void mtpLogits(boolean want) {
        this.wantMtpLogits = want;
    }

    public int numMtpRows() {
        return numMtpRows;
    }

    private void checkRow(int row) {
        if (row < 0 || row >= numTokens) {
            throw new IndexOutOfBoundsException("row " + row + " outside the batch's " + numTokens + " rows");
        }
    }

    public int numTokens() {
        return numTokens;
    }

    public int numSeqs() {
        return numSeqs;
    }

    public int numLogitRows() {
        return numLogitRows;
    }

    /** Logits of logit row {@code i} (in request order) into {@code dst[0 .. vocab)}. */
    public void copyLogits(int i, float[] dst) {
        if (i < 0 || i >= numLogitRows) {
            throw new IndexOutOfBoundsException("logit row " + i + " of " + numLogitRows);
        }
        logits.get(i * vocab, dst, 0, vocab);
    }

    /**
     * The logits of the last step without copying: logit row {@code i} (in request order) is
     * {@code [i * vocab, (i + 1) * vocab)}. Read-only; valid until the next step.
     */
    public FloatBuffer logitsView() {
        return logitsView;
    }

    /** Index of the largest logit of logit row {@code i}; ties go to the lower token id. */
    public int argmax(int i) {
        if (i < 0 || i >= numLogitRows) {
            throw new IndexOutOfBoundsException("logit row " + i + " of " + numLogitRows);
        }
        return argmax(logits, i * vocab, vocab);
    }

    /** MTP logits of MTP row {@code i} into {@code dst[0 .. vocab)}. */
    public void copyMtpLogits(int i, float[] dst) {
        if (i < 0 || i >= numMtpRows) {
            throw new IndexOutOfBoundsException("MTP row " + i + " of " + numMtpRows);
        }
        if (!wantMtpLogits) {
            throw new IllegalStateException("MTP logits were not computed in this step (mtpLogits(false))");
        }
        mtpLogits.get(i * vocab, dst, 0, vocab);
    }

    /** Index of the largest MTP logit of MTP row {@code i} (the greedy draft); ties go to the lower token id. */
    public int mtpArgmax(int i) {
        if (i < 0 || i >= numMtpRows) {
            throw new IndexOutOfBoundsException("MTP row " + i + " of " + numMtpRows);
        }
        if (!wantMtpLogits) {
            throw new IllegalStateException("MTP logits were not computed in this step (mtpLogits(false))");
        }
        return argmax(mtpLogits, i * vocab, vocab);
    }

    /** Index (from {@code base}) of the largest of {@code n} values; ties go to the lower index. */
    private static int argmax(FloatBuffer values, int base, int n) {
        int best = 0;
        float bestValue = values.get(base);
        for (int v = 1; v < n; v++) {
            float x = values.get(base + v);
            if (x > bestValue) {
                bestValue = x;
                best = v;
            }
        }
        return best;
    }

    /**
     * Output hidden of MTP row {@code i} (after the MTP layer's final_layernorm: what its logits come from,
     * the next chained layer's input) into {@code dst[offset .. offset + hidden)}. Needs
     * {@link Capacity#mtpHidden()}.
     */
    public void copyMtpHidden(int i, float[] dst, int offset) {
        if (mtpHiddenOut == null) {
            throw new IllegalStateException("batch was created without MTP hidden buffers (Capacity.mtpHidden)");
        }
        if (i < 0 || i >= numMtpRows) {
            throw new IndexOutOfBoundsException("MTP row " + i + " of " + numMtpRows);
        }
        mtpHiddenOut.get(i * hidden, dst, offset, hidden);
    }

    /** Number of MoE layers in the routing trace. */
    public int numMoeLayers() {
        return numMoeLayers;
    }

    public int topK() {
        return topK;
    }

    /** Expert chosen as the {@code k}-th (best first) for {@code row} in MoE layer {@code moeLayer}. */
    public int expertId(int moeLayer, int row, int k) {
        if (expertTrace == null) {
            throw new IllegalStateException("batch was created without an expert trace");
        }
        checkRow(row);
        // the device writes the trace of each MoE layer as [numTokens, topK] at moeLayer * numTokens * topK
        return expertTrace.get(moeLayer * numTokens * topK + row * topK + k);
    }

    /** Final normed hidden state of {@code row} into {@code dst[0 .. hidden)}. */
    public void copyHidden(int row, float[] dst) {
        copyHidden(row, dst, 0);
    }

    /** Final normed hidden state of {@code row} into {@code dst[offset .. offset + hidden)}. */
    public void copyHidden(int row, float[] dst, int offset) {
        if (hiddenOut == null) {
            throw new IllegalStateException("batch was created without hidden states");
        }
        checkRow(row);
        hiddenOut.get(row * hidden, dst, offset, hidden);
    }

    /** Writes the counts and block tables into the native struct; returns its address. */
    long prepare(KvCache kv) {
        if (numTokens == 0 && numMtpRows == 0) {
            throw new IllegalStateException("empty batch");
        }
        if (numTokens == 0 && mtpMode != MtpMode.EXPLICIT) {
            throw new IllegalStateException("a step without token rows needs explicit MTP rows");
        }
        int maxBlocks = capacity.maxBlocksPerSeq();
        for (int g = 0; g < groups; g++) {
            int[] table = tables[g];
            for (int i = 0; i < numSeqs * maxBlocks; i++) {
                if (table[i] >= kv.numBlocks(g)) {
                    throw new IndexOutOfBoundsException("block " + table[i] + " of group " + g + " outside the KV cache's "
                            + kv.numBlocks(g) + " blocks (sequence " + i / maxBlocks + ", slot " + i % maxBlocks + ")");
                }
            }
            blockTables.put(g * numSeqs * maxBlocks, table, 0, numSeqs * maxBlocks);
        }
        boolean explicitMtp = mtpMode == MtpMode.EXPLICIT;
        struct.set(BatchField.NUM_SEQS, numSeqs)
                .set(BatchField.NUM_TOKENS, numTokens)
                .set(BatchField.MAX_BLOCKS_PER_SEQ, maxBlocks)
                .set(BatchField.NUM_LOGIT_ROWS, numLogitRows)
                .set(BatchField.MTP_LAYER, mtpLayer)
                .set(BatchField.NUM_MTP_ROWS, numMtpRows)
                .set(BatchField.MTP_LOGITS, wantMtpLogits ? mtpLogitsAddress : 0L)
                .set(BatchField.MTP_HIDDEN_IN, explicitMtp ? explicitMtpAddresses[0] : 0L)
                .set(BatchField.MTP_SEQS, explicitMtp ? explicitMtpAddresses[1] : 0L)
                .set(BatchField.MTP_POSITIONS, explicitMtp ? explicitMtpAddresses[2] : 0L);
        return struct.address();
    }
}
