package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.bytedeco.javacpp.Pointer;

/**
 * A model on a device: layer parameters plus weights, which the device copies into memory it owns as
 * they are registered (the caller's mapping may be closed once the model is finished, and a file
 * changed under a served model cannot affect it). Build it with {@link #create}, then
 * {@link #setLayer}, {@link #setTensor} and {@link #setRope} for every layer, then {@link #finish()}.
 *
 * <p>Thread confinement: {@link #step} is called by one engine thread at a time; {@link #close()}
 * waits for a step in flight.
 */
public final class DeviceModel implements AutoCloseable {
    enum ModelField { API_VERSION, VOCAB_SIZE, HIDDEN_SIZE, NUM_LAYERS, NUM_MTP_LAYERS, NUM_KV_GROUPS,
        MAX_TOKENS_PER_STEP, MAX_SEQS_PER_STEP, NORM_EPS, WEIGHT_FORMAT, KV_DTYPE }

    enum LayerField { ATTN_KIND, WINDOW, NUM_HEADS, NUM_KV_HEADS, HEAD_DIM_QK, HEAD_DIM_V, ROTARY_DIM, HAS_SINK,
        HAS_QKV_BIAS, HAS_QK_NORM, KV_GROUP, FFN_KIND, INTERMEDIATE_SIZE, NUM_EXPERTS, TOP_K,
        MOE_INTERMEDIATE_SIZE, SCORING, NUM_EXPERT_GROUPS, TOPK_GROUPS, NORM_TOPK_PROB, HAS_CORRECTION_BIAS,
        SHARED_INTERMEDIATE_SIZE, HAS_SHARED_EXPERT_GATE, ATTN_SCALE, VALUE_SCALE, ROUTED_SCALING }

    private final Device device;
    private final ModelParams params;
    private final LayerParams[] layers;
    private long handle;
    private boolean finished;

    private DeviceModel(Device device, ModelParams params, long handle) {
        this.device = device;
        this.params = params;
        this.handle = handle;
        this.layers = new LayerParams[Math.toIntExact(params.numLayers() + params.numMtpLayers())];
    }

    public static DeviceModel create(Device device, ModelParams p) {
        NativeStruct<ModelField> s = new NativeStruct<>("model_params", ModelField.class);
        s.set(ModelField.API_VERSION, XpuNative.XPU_API_VERSION)
                .set(ModelField.VOCAB_SIZE, p.vocabSize())
                .set(ModelField.HIDDEN_SIZE, p.hiddenSize())
                .set(ModelField.NUM_LAYERS, p.numLayers())
                .set(ModelField.NUM_MTP_LAYERS, p.numMtpLayers())
                .set(ModelField.NUM_KV_GROUPS, p.numKvGroups())
                .set(ModelField.MAX_TOKENS_PER_STEP, p.maxTokensPerStep())
                .set(ModelField.MAX_SEQS_PER_STEP, p.maxSeqsPerStep())
                .set(ModelField.NORM_EPS, p.normEps())
                .set(ModelField.WEIGHT_FORMAT, p.weightFormat().ordinal())
                .set(ModelField.KV_DTYPE, p.kvCacheDtype().ordinal());
        long[] out = new long[1];
        Native.check(XpuNative.xpu_model_create(device.handle(), s.address(), out), "xpu_model_create");
        return new DeviceModel(device, p, out[0]);
    }

    public ModelParams params() {
        return params;
    }

    public Device device() {
        return device;
    }

    /** Parameters of layer {@code layer} (MTP layers follow the decoder layers). */
    public LayerParams layer(int layer) {
        return layers[layer];
    }

    public synchronized void setLayer(int layer, LayerParams lp) {
        Objects.checkIndex(layer, layers.length);
        NativeStruct<LayerField> s = new NativeStruct<>("layer_params", LayerField.class);
        s.set(LayerField.ATTN_KIND, lp.sliding() ? 1 : 0)
                .set(LayerField.WINDOW, lp.window())
                .set(LayerField.NUM_HEADS, lp.numHeads())
                .set(LayerField.NUM_KV_HEADS, lp.numKvHeads())
                .set(LayerField.HEAD_DIM_QK, lp.headDimQk())
                .set(LayerField.HEAD_DIM_V, lp.headDimV())
                .set(LayerField.ROTARY_DIM, lp.rotaryDim())
                .set(LayerField.HAS_SINK, lp.hasSink())
                .set(LayerField.HAS_QKV_BIAS, lp.hasQkvBias())
                .set(LayerField.HAS_QK_NORM, lp.hasQkNorm())
                .set(LayerField.KV_GROUP, lp.kvGroup())
                .set(LayerField.FFN_KIND, lp.moe() ? 1 : 0)
                .set(LayerField.INTERMEDIATE_SIZE, lp.intermediateSize())
                .set(LayerField.NUM_EXPERTS, lp.numExperts())
                .set(LayerField.TOP_K, lp.topK())
                .set(LayerField.MOE_INTERMEDIATE_SIZE, lp.moeIntermediateSize())
                .set(LayerField.SCORING, lp.sigmoidScoring() ? 1 : 0)
                .set(LayerField.NUM_EXPERT_GROUPS, lp.numExpertGroups())
                .set(LayerField.TOPK_GROUPS, lp.topkGroups())
                .set(LayerField.NORM_TOPK_PROB, lp.normTopkProb())
                .set(LayerField.HAS_CORRECTION_BIAS, lp.hasCorrectionBias())
                .set(LayerField.SHARED_INTERMEDIATE_SIZE, lp.sharedIntermediateSize())
                .set(LayerField.HAS_SHARED_EXPERT_GATE, lp.hasSharedExpertGate())
                .set(LayerField.ATTN_SCALE, lp.attnScale())
                .set(LayerField.VALUE_SCALE, lp.valueScale())
                .set(LayerField.ROUTED_SCALING, lp.routedScaling());
        Native.check(XpuNative.xpu_model_set_layer(handle(), layer, s.address()), "xpu_model_set_layer");
        layers[layer] = lp;
    }

    /**
     * Registers a weight. {@code layer} is ignored for model-wide roles, {@code expert} for roles that
     * are not per expert.
     */
    public synchronized void setTensor(TensorRole role, int layer, int expert, WeightView w) {
        Native.check(XpuNative.xpu_model_set_tensor(handle(), role.ordinal(), layer, expert, w.address(), w.dtype(),
                w.rows(), w.cols(), w.scaleAddress(), w.scaleRows(), w.scaleCols(), w.blockRows(), w.blockCols()),
                "xpu_model_set_tensor(" + role + ", layer " + layer + (role.isPerExpert() ? ", expert " + expert : "") + ")");
    }

    /** Rotary inverse frequencies of one layer, [rotaryDim / 2]. */
    public synchronized void setRope(int layer, float[] invFreq) {
        Native.check(XpuNative.xpu_model_set_rope(handle(), layer, invFreq, invFreq.length), "xpu_model_set_rope");
    }

    /** Checks that every layer has its parameters and weights; the model is usable afterwards. */
    public synchronized void finish() {
        Native.check(XpuNative.xpu_model_finalize(handle()), "xpu_model_finalize");
        finished = true;
    }

    /** Bytes of weight memory the device holds for this model. */
    public synchronized long weightBytes() {
        long[] out = new long[1];
        Native.check(XpuNative.xpu_model_weight_bytes(handle(), out), "xpu_model_weight_bytes");
        return out[0];
    }

    /**
     * Taps every following step of at most {@code maxRows} rows (for comparing weight formats layer by
     * layer): each decoder layer's attention output and FFN/MoE output and the final normed hidden
     * states are written to {@code buf}, {@code (2 * numLayers + 1)} regions of {@code maxRows x hidden}
     * floats (see {@code xpu_model_set_taps}). {@code buf} must be a direct native-order buffer that
     * outlives the taps; {@code null} turns them off.
     */
    public synchronized void setTaps(ByteBuffer buf, int maxRows) {
        long address = 0;
        if (buf != null) {
            long need = (2L * params.numLayers() + 1) * maxRows * params.hiddenSize() * Float.BYTES;
            if (!buf.isDirect() || buf.capacity() < need || maxRows <= 0) {
                throw new IllegalArgumentException("taps need a direct buffer of " + need + " bytes for " + maxRows
                        + " rows, got " + (buf.isDirect() ? buf.capacity() + " bytes" : "a heap buffer"));
            }
            address = new Pointer(buf).address();
        }
        Native.check(XpuNative.xpu_model_set_taps(handle(), address, buf == null ? 0 : maxRows), "xpu_model_set_taps");
    }

    /**
     * Starts recording a profile of every following step (up to {@code capacity} events until they are
     * read; later ones are counted as dropped), or stops and forgets it with 0.
     */
    public synchronized void trace(int capacity) {
        Native.check(XpuNative.xpu_model_trace(handle(), capacity), "xpu_model_trace");
    }

    /** Takes the events recorded since the last call, oldest first. */
    public synchronized TraceEvents readTrace() {
        List<TraceEvent> events = new ArrayList<>();
        long dropped = 0;
        long[] buf = new long[8 * 4096];
        long[] count = new long[1];
        long[] lost = new long[1];
        do {
            Native.check(XpuNative.xpu_model_trace_read(handle(), buf, 4096, count, lost), "xpu_model_trace_read");
            dropped += lost[0];
            for (int i = 0; i < count[0]; i++) {
                int o = 8 * i;
                events.add(new TraceEvent(TraceEvent.Op.of((int) buf[o]), (int) buf[o + 1], buf[o + 2], buf[o + 3],
                        buf[o + 4], (int) buf[o + 5], buf[o + 6], buf[o + 7]));
            }
        } while (count[0] == 4096);
        return new TraceEvents(List.copyOf(events), dropped);
    }

    /** Bytes one KV block of {@code blockSize} tokens takes in group {@code group}, over all its layers. */
    public synchronized long kvBlockBytes(int group, int blockSize) {
        long[] out = new long[1];
        Native.check(XpuNative.xpu_kv_block_bytes(handle(), group, blockSize, out), "xpu_kv_block_bytes");
        return out[0];
    }

    /** Allocates the paged KV memory: {@code numBlocksPerGroup[g]} blocks of {@code blockSize} tokens. */
    public synchronized KvCache createKvCache(int blockSize, long[] numBlocksPerGroup) {
        ensureFinished();
        if (numBlocksPerGroup.length != params.numKvGroups()) {
            throw new IllegalArgumentException("need block counts for " + params.numKvGroups()
                    + " KV groups, got " + numBlocksPerGroup.length);
        }
        long[] out = new long[1];
        Native.check(XpuNative.xpu_kv_create(handle(), blockSize, numBlocksPerGroup.clone(), out), "xpu_kv_create");
        return new KvCache(this, out[0], blockSize, numBlocksPerGroup.clone());
    }

    /** A reusable batch buffer sized for this model. */
    public StepBatch newBatch(StepBatch.Capacity capacity) {
        ensureFinished();
        return new StepBatch(this, capacity);
    }

    /**
     * Runs one forward step over {@code batch}; its outputs (logits, hidden states, MTP logits and MTP
     * output hidden, traces) are in the batch afterwards. A batch may hold only explicit MTP rows (an
     * MTP-only step for drafting, see {@link StepBatch}). The batch is validated in Java first; the device
     * re-checks block indices and MTP positions, and names the offending field in the
     * {@link DeviceException}.
     */
    public synchronized void step(KvCache kv, StepBatch batch) {
        ensureFinished();
        if (kv.model() != this || batch.model() != this) {
            throw new IllegalArgumentException("KV cache and batch must belong to this model");
        }
        long structAddress = batch.prepare(kv);
        Native.check(XpuNative.xpu_step(handle(), kv.handle(), structAddress), "xpu_step");
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException("device model is closed");
        }
        return handle;
    }

    private void ensureFinished() {
        if (!finished) {
            throw new IllegalStateException("device model is not finished: call finish() after registering weights");
        }
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            Native.check(XpuNative.xpu_model_free(h), "xpu_model_free");
        }
    }
}
