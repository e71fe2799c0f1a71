package io.xpuflow.runtime.model;

import io.xpuflow.device.DeviceModel;
import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.engine.ScoringCore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs whole prompts through a {@link LoadedModel}: scoring (logits at every position, MTP logits,
 * the routing trace) and greedy generation. Several prompts can go through one device step together
 * ({@link #scoreBatch}).
 *
 * <p>This is the numerics and CLI path. It runs on the serving engine's own core ({@link ScoringCore}:
 * the same scheduler, KV cache manager and executor), with a KV cache sized to hold every sequence at
 * full length. Not thread-safe.
 */
public final class ModelRunner implements AutoCloseable {
    /** Tokens per KV block. */
    public static final int BLOCK_SIZE = 16;

    private final LoadedModel model;
    private final ModelConfig config;
    private final DeviceModel dm;
    private final int maxContext;
    private final int maxSeqs;
    private final int stepTokens;
    /** The engine's scheduler, KV cache manager and executor, driven synchronously. */
    private final ScoringCore core;

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
        if (maxContext <= 0 || maxSeqs <= 0) {
            throw new IllegalArgumentException("maxContext and maxSeqs must be positive");
        }
        this.maxContext = maxContext;
        this.maxSeqs = Math.min(maxSeqs, Math.toIntExact(dm.params().maxSeqsPerStep()));
        this.stepTokens = Math.toIntExact(dm.params().maxTokensPerStep());
        boolean hasMtp = !config.mtpLayers().isEmpty();
        this.core = ScoringCore.create(dm, model.kvLayout(), BLOCK_SIZE, maxContext, this.maxSeqs, stepTokens,
                hasMtp ? stepTokens : 0, config.numMoeLayers() > 0, config.mtpLayers().size() >= 2);
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
        int hidden = config.hiddenSize();
        List<Scores> out = new ArrayList<>();
        for (int[] ids : prompts) {
            checkPrompt(ids);
            int moe = config.numMoeLayers();
            out.add(new Scores(new float[ids.length][vocab], mtp ? new float[Math.max(0, ids.length - 1)][vocab] : null,
                    trace ? new int[moe][ids.length][] : null, mtp1 ? new float[Math.max(0, ids.length - 2)][vocab] : null));
        }
        // layer 0's outputs of one step and the rows of the chained MTP-only step after it
        float[] mtpHidden = mtp1 ? new float[stepTokens * hidden] : null;
        int[] chainSeq = mtp1 ? new int[stepTokens] : null;
        int[] chainPos = mtp1 ? new int[stepTokens] : null;
        int[] chainNext = mtp1 ? new int[stepTokens] : null;
        // the core's scheduler hands each step's token budget to the prompts in order, logits at every row
        ScoringCore.StepHook askMtp = !mtp ? ScoringCore.StepHook.NONE : (chunks, batch) -> {
            for (ScoringCore.Chunk c : chunks) {
                int[] tokens = prompts.get(c.sequence());
                for (int j = 0; j < c.numTokens(); j++) {
                    int pos = c.firstPosition() + j;
                    if (pos + 1 < tokens.length) {
                        batch.requestMtp(c.firstRow() + j, tokens[pos + 1]);
                    }
                }
            }
        };
        core.score(prompts, askMtp, (chunks, batch) -> {
            int mtpRow = 0;
            int chained = 0;
            for (ScoringCore.Chunk c : chunks) {
                int[] tokens = prompts.get(c.sequence());
                Scores sc = out.get(c.sequence());
                int first = c.firstPosition();
                for (int j = 0; j < c.numTokens(); j++) {
                    batch.copyLogits(c.firstLogitRow() + j, sc.logits()[first + j]);
                }
                if (mtp) {
                    for (int j = 0; j < c.numTokens(); j++) {
                        int pos = first + j;
                        if (pos + 1 < tokens.length) {
                            if (mtp1 && pos + 2 < tokens.length) {
                                // layer 1 row pos: layer 0's output at row pos and the token at pos + 2
                                batch.copyMtpHidden(mtpRow, mtpHidden, chained * hidden);
                                chainSeq[chained] = c.sequence();
                                chainPos[chained] = pos;
                                chainNext[chained++] = tokens[pos + 2];
                            }
                            batch.copyMtpLogits(mtpRow++, sc.mtpLogits()[pos]);
                        }
                    }
                }
                if (trace) {
                    for (int m = 0; m < batch.numMoeLayers(); m++) {
                        for (int j = 0; j < c.numTokens(); j++) {
                            int[] ids = new int[batch.topK()];
                            for (int k = 0; k < ids.length; k++) {
                                ids[k] = batch.expertId(m, c.firstRow() + j, k);
                            }
                            sc.experts()[m][first + j] = ids;
                        }
                    }
                }
            }
            if (chained > 0) {
                // MTP layer 1 chained on layer 0, in an MTP-only step over the rows of the step just read
                core.runMtpOnly(1, chained, chainSeq, chainPos, chainNext, mtpHidden, hidden);
                for (int i = 0; i < chained; i++) {
                    batch.copyMtpLogits(i, out.get(chainSeq[i]).mtp1Logits()[chainPos[i]]);
                }
            }
        });
        return out;
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
        return core.generateGreedy(prompt, maxNewTokens, id -> !ignoreEos && config.eosTokenIds().contains(id));
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
        core.close();
    }
}
