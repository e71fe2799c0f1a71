package io.xpuflow.runtime.model;

import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.KvCache;
import io.xpuflow.device.StepBatch;
import io.xpuflow.runtime.config.ModelConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs whole prompts through a {@link LoadedModel}: scoring (logits at every position, MTP logits,
 * the routing trace) and greedy generation, with a small private paged KV cache. Several prompts
 * can go through one device step together ({@link #scoreBatch}).
 *
 * <p>This is the numerics and CLI path; the serving engine with its scheduler, sampling and
 * shared KV budget is built on the same device calls. Not thread-safe.
 */
public final class ModelRunner implements AutoCloseable {
    /** Tokens per KV block. */
    public static final int BLOCK_SIZE = 16;

    private final LoadedModel model;
    private final ModelConfig config;
    private final DeviceModel dm;
    private final KvLayout layout;
    private final int maxContext;
    private final int maxSeqs;
    private final int stepTokens;
    private final int blocksPerSeq;
    private final KvCache kv;
    private final StepBatch batch;
    private final BlockPool[] pools;

    /**
     * Scoring result of one prompt.
     *
     * @param logits [T, vocab]
     * @param mtpLogits MTP layer 0, [T-1, vocab] (row j: hidden state at j + token j+1); null when not asked for
     * @param experts [moeLayers, T, topK], or null when not asked for
     * @param mtp1Logits MTP layer 1 chained on layer 0, [T-2, vocab] (row j: layer 0's output at row j after its
     *     final_layernorm + token j+2, predicts j+3); null unless MTP was asked for and the checkpoint has two
     *     or more MTP layers
     */
    public record Scores(float[][] logits, float[][] mtpLogits, int[][][] experts, float[][] mtp1Logits) {
        public Scores(float[][] logits, float[][] mtpLogits, int[][][] experts) {
            this(logits, mtpLogits, experts, null);
        }
    }

    /**
     * @param maxContext longest sequence (prompt + generated tokens) this runner accepts
     * @param maxSeqs sequences that may be live at once (prompts of one {@link #scoreBatch})
     */
    public ModelRunner(LoadedModel model, int maxContext, int maxSeqs) {
        this.model = model;
        this.config = model.config();
        this.dm = model.deviceModel();
        this.layout = model.kvLayout();
        if (maxContext <= 0 || maxSeqs <= 0) {
            throw new IllegalArgumentException("maxContext and maxSeqs must be positive");
        }
        this.maxContext = maxContext;
        this.maxSeqs = Math.min(maxSeqs, Math.toIntExact(dm.params().maxSeqsPerStep()));
        this.stepTokens = Math.toIntExact(dm.params().maxTokensPerStep());
        this.blocksPerSeq = (maxContext + BLOCK_SIZE - 1) / BLOCK_SIZE;
        long[] blocks = new long[layout.numGroups()];
        pools = new BlockPool[layout.numGroups()];
        for (int g = 0; g < blocks.length; g++) {
            blocks[g] = (long) blocksPerSeq * this.maxSeqs;
            pools[g] = new BlockPool(Math.toIntExact(blocks[g]));
        }
        this.kv = dm.createKvCache(BLOCK_SIZE, blocks);
        boolean hasMtp = !config.mtpLayers().isEmpty();
        this.batch = dm.newBatch(new StepBatch.Capacity(stepTokens, this.maxSeqs, blocksPerSeq, stepTokens,
                hasMtp ? stepTokens : 0, config.numMoeLayers() > 0, false, config.mtpLayers().size() >= 2));
    }

    public LoadedModel model() {
        return model;
    }

    /**
     * Logits at every position of {@code ids}, optionally MTP logits (layer 0, and layer 1 chained on it when
     * the checkpoint has two MTP layers) and the routing trace.
     */
    public Scores score(int[] ids, boolean mtp, boolean trace) {
        return scoreBatch(List.of(ids), mtp, trace).get(0);
    }

    /**
     * Scores several prompts; their chunks share device steps (one native call per step for all of
     * them), each sequence with its own KV blocks.
     */
    public List<Scores> scoreBatch(List<int[]> prompts, boolean mtp, boolean trace) {
        if (prompts.size() > maxSeqs) {
            throw new IllegalArgumentException(prompts.size() + " prompts, this runner holds " + maxSeqs + " sequences");
        }
        if (mtp && config.mtpLayers().isEmpty()) {
            throw new IllegalArgumentException(config.architecture() + " checkpoint has no MTP layer");
        }
        int vocab = config.vocabSize();
        boolean mtp1 = mtp && config.mtpLayers().size() >= 2;
        float[] mtpHidden = mtp1 ? new float[stepTokens * config.hiddenSize()] : null; // layer 0's outputs of a step
        List<Sequence> seqs = new ArrayList<>();
        List<Scores> out = new ArrayList<>();
        try {
            for (int[] ids : prompts) {
                checkPrompt(ids);
                seqs.add(new Sequence(ids));
                int moe = config.numMoeLayers();
                out.add(new Scores(new float[ids.length][vocab], mtp ? new float[Math.max(0, ids.length - 1)][vocab] : null,
                        trace ? new int[moe][ids.length][] : null, mtp1 ? new float[Math.max(0, ids.length - 2)][vocab] : null));
            }
            // each step takes the next chunk of every unfinished prompt while the token budget lasts
            while (seqs.stream().anyMatch(s -> s.computed < s.tokens.length)) {
                batch.clear();
                int budget = stepTokens;
                List<int[]> placed = new ArrayList<>(); // {seq index, first row, first position, count}
                for (int i = 0; i < seqs.size() && budget > 0; i++) {
                    Sequence s = seqs.get(i);
                    int n = Math.min(budget, s.tokens.length - s.computed);
                    if (n <= 0) {
                        continue;
                    }
                    int row = batch.addSequence(s.tokens, s.computed, n, s.computed, s.tables(s.computed, s.computed + n));
                    placed.add(new int[] {i, row, s.computed, n});
                    budget -= n;
                }
                for (int[] p : placed) {
                    for (int j = 0; j < p[3]; j++) {
                        batch.requestLogits(p[1] + j);
                    }
                }
                if (mtp) {
                    for (int[] p : placed) {
                        Sequence s = seqs.get(p[0]);
                        for (int j = 0; j < p[3]; j++) {
                            int pos = p[2] + j;
                            if (pos + 1 < s.tokens.length) {
                                batch.requestMtp(p[1] + j, s.tokens[pos + 1]);
                            }
                        }
                    }
                }
                dm.step(kv, batch);
                int logitRow = 0;
                int mtpRow = 0;
                for (int[] p : placed) {
                    Sequence s = seqs.get(p[0]);
                    Scores sc = out.get(p[0]);
                    for (int j = 0; j < p[3]; j++) {
                        batch.copyLogits(logitRow++, sc.logits()[p[2] + j]);
                    }
                    if (mtp) {
                        for (int j = 0; j < p[3]; j++) {
                            if (p[2] + j + 1 < s.tokens.length) {
                                if (mtp1) {
                                    batch.copyMtpHidden(mtpRow, mtpHidden, mtpRow * config.hiddenSize());
                                }
                                batch.copyMtpLogits(mtpRow++, sc.mtpLogits()[p[2] + j]);
                            }
                        }
                    }
                    if (trace) {
                        for (int m = 0; m < batch.numMoeLayers(); m++) {
                            for (int j = 0; j < p[3]; j++) {
                                int[] ids = new int[batch.topK()];
                                for (int k = 0; k < ids.length; k++) {
                                    ids[k] = batch.expertId(m, p[1] + j, k);
                                }
                                sc.experts()[m][p[2] + j] = ids;
                            }
                        }
                    }
                    s.computed += p[3];
                }
                if (mtp1) {
                    chainMtp1(seqs, placed, out, mtpHidden);
                }
            }
            return out;
        } finally {
            seqs.forEach(Sequence::release);
        }
    }

    /**
     * MTP layer 1 chained on layer 0 over the positions of the step just run, in an MTP-only step: row j
     * takes layer 0's output at row j ({@code hidden0}, in the order of that step's MTP rows) and token j+2, at
     * position j of layer 1's own KV.
     */
    private void chainMtp1(List<Sequence> seqs, List<int[]> placed, List<Scores> out, float[] hidden0) {
        batch.clear();
        batch.mtpLayer(1);
        int h = config.hiddenSize();
        int row0 = 0;
        List<int[]> rows = new ArrayList<>(); // {prompt index, position}
        for (int[] p : placed) {
            Sequence s = seqs.get(p[0]);
            int seq = batch.addSequenceTables(s.blocks);
            for (int j = 0; j < p[3] && p[2] + j + 1 < s.tokens.length; j++, row0++) {
                int pos = p[2] + j;
                if (pos + 2 < s.tokens.length) {
                    batch.requestMtp(seq, pos, s.tokens[pos + 2], hidden0, row0 * h);
                    rows.add(new int[] {p[0], pos});
                }
            }
        }
        if (rows.isEmpty()) {
            return;
        }
        dm.step(kv, batch);
        for (int i = 0; i < rows.size(); i++) {
            batch.copyMtpLogits(i, out.get(rows.get(i)[0]).mtp1Logits()[rows.get(i)[1]]);
        }
    }

    /**
     * Every decoder layer's attention and FFN/MoE outputs and the final normed hidden states of one
     * prompt, with its scores and routing: what {@code xpuflow compare} sets side by side.
     *
     * @param attention [layers][T][hidden]
     * @param ffn [layers][T][hidden]
     * @param hidden [T][hidden]
     */
    public record Taps(float[][][] attention, float[][][] ffn, float[][] hidden, Scores scores) {}

    /** Scores {@code ids} in one step with the device's taps on; the prompt must fit one step. */
    public Taps scoreWithTaps(int[] ids) {
        if (ids.length > stepTokens) {
            throw new IllegalArgumentException(ids.length + " tokens do not fit one step of " + stepTokens);
        }
        int layers = config.numLayers();
        int hidden = config.hiddenSize();
        int t = ids.length;
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.multiplyExact((2 * layers + 1) * t * hidden, Float.BYTES))
                .order(ByteOrder.nativeOrder());
        dm.setTaps(buf, t);
        Scores scores;
        try {
            scores = score(ids, false, config.numMoeLayers() > 0);
        } finally {
            dm.setTaps(null, 0);
        }
        FloatBuffer f = buf.asFloatBuffer();
        float[][][] attention = new float[layers][][];
        float[][][] ffn = new float[layers][][];
        for (int l = 0; l < layers; l++) {
            attention[l] = region(f, 2 * l, t, hidden);
            ffn[l] = region(f, 2 * l + 1, t, hidden);
        }
        return new Taps(attention, ffn, region(f, 2 * layers, t, hidden), scores);
    }

    private static float[][] region(FloatBuffer f, int slot, int rows, int hidden) {
        float[][] out = new float[rows][hidden];
        for (int r = 0; r < rows; r++) {
            f.get((slot * rows + r) * hidden, out[r]);
        }
        return out;
    }

    /**
     * Greedy generation: argmax at every step (ties to the lower id) until {@code maxNewTokens}, or
     * an end-of-sequence token unless {@code ignoreEos}. The prompt is prefilled in chunks, then one
     * decode step per token reuses the KV cache.
     *
     * @return the generated token ids (without the prompt)
     */
    public int[] generateGreedy(int[] prompt, int maxNewTokens, boolean ignoreEos) {
        checkPrompt(prompt);
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max new tokens must not be negative, was " + maxNewTokens);
        }
        if (prompt.length + maxNewTokens > maxContext) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens plus " + maxNewTokens
                    + " new tokens exceeds the context of " + maxContext);
        }
        int[] tokens = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
        Sequence s = new Sequence(tokens);
        int length = prompt.length;
        int generated = 0;
        try {
            while (generated < maxNewTokens) {
                // prefill in chunks; the last chunk (or the single decode token) asks for logits
                int n = Math.min(stepTokens, length - s.computed);
                batch.clear();
                int row = batch.addSequence(tokens, s.computed, n, s.computed, s.tables(s.computed, s.computed + n));
                boolean last = s.computed + n == length;
                if (last) {
                    batch.requestLogits(row + n - 1);
                }
                dm.step(kv, batch);
                s.computed += n;
                if (!last) {
                    continue;
                }
                int next = batch.argmax(0);
                tokens[length++] = next;
                generated++;
                if (!ignoreEos && config.eosTokenIds().contains(next)) {
                    break;
                }
            }
            return Arrays.copyOfRange(tokens, prompt.length, length);
        } finally {
            s.release();
        }
    }

    private void checkPrompt(int[] ids) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        if (ids.length > maxContext) {
            throw new IllegalArgumentException("prompt of " + ids.length + " tokens exceeds the context of " + maxContext);
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary of " + config.vocabSize());
            }
        }
    }

    @Override
    public void close() {
        kv.close();
    }

    /** Free list of the blocks of one KV group. */
    private static final class BlockPool {
        private final int[] free;
        private int top;

        BlockPool(int n) {
            free = new int[n];
            for (int i = 0; i < n; i++) {
                free[i] = n - 1 - i;
            }
            top = n;
        }

        int take() {
            if (top == 0) {
                throw new IllegalStateException("KV blocks exhausted");
            }
            return free[--top];
        }

        void give(int block) {
            free[top++] = block;
        }
    }

    /** One sequence's tokens, progress and blocks. */
    private final class Sequence {
        final int[] tokens;
        int computed;
        final int[][] blocks = new int[layout.numGroups()][blocksPerSeq];

        Sequence(int[] tokens) {
            this.tokens = tokens;
            for (int[] b : blocks) {
                Arrays.fill(b, -1);
            }
        }

        /**
         * Block tables for a step over positions [from, to): blocks up to {@code to} are allocated;
         * in sliding groups, blocks wholly before the first key any of these queries can see are freed.
         */
        int[][] tables(int from, int to) {
            for (int g = 0; g < blocks.length; g++) {
                int[] b = blocks[g];
                if (layout.sliding(g)) {
                    int firstVisible = Math.max(0, from - layout.groupWindow()[g] + 1);
                    for (int i = 0; i < firstVisible / BLOCK_SIZE; i++) {
                        if (b[i] >= 0) {
                            pools[g].give(b[i]);
                            b[i] = -1;
                        }
                    }
                }
                for (int i = from / BLOCK_SIZE; i <= (to - 1) / BLOCK_SIZE; i++) {
                    if (b[i] < 0) {
                        b[i] = pools[g].take();
                    }
                }
            }
            return blocks;
        }

        void release() {
            for (int g = 0; g < blocks.length; g++) {
                for (int i = 0; i < blocks[g].length; i++) {
                    if (blocks[g][i] >= 0) {
                        pools[g].give(blocks[g][i]);
                        blocks[g][i] = -1;
                    }
                }
            }
        }
    }
}
