package io.xpuflow.runtime.model;

import io.xpuflow.device.Device;
import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.Devices;
import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.LayerParams;
import io.xpuflow.device.ModelParams;
import io.xpuflow.device.TensorRole;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.device.WeightView;
import io.xpuflow.runtime.checkpoint.Checkpoint;
import io.xpuflow.runtime.checkpoint.CheckpointException;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.TensorRef;
import io.xpuflow.runtime.config.AttentionConfig;
import io.xpuflow.runtime.config.FfnConfig;
import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.config.ModelConfigs;
import java.nio.file.Path;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A checkpoint placed on a device: the normalised configuration and the device model. Every tensor
 * is checked against the configuration (presence, dtype, shape, FP8 scales) before the device sees its
 * address; the device copies it into memory it owns, and the checkpoint's mappings are closed once the
 * model is built, so a served model never reads the files again (a checkpoint truncated or rewritten
 * underneath it changes nothing).
 *
 * <pre>{@code
 * try (LoadedModel model = LoadedModel.load(Path.of("models/stories260k"), LoadOptions.defaults())) {
 *     ...
 * }
 * }</pre>
 */
public final class LoadedModel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LoadedModel.class);

    private final Path dir;
    private final ModelConfig config;
    private final KvLayout kvLayout;
    private final Device device;
    private final DeviceModel deviceModel;
    private final Placement placement;

    private LoadedModel(Path dir, ModelConfig config, KvLayout kvLayout, Device device, DeviceModel deviceModel,
                        Placement placement) {
        this.dir = dir;
        this.config = config;
        this.kvLayout = kvLayout;
        this.device = device;
        this.deviceModel = deviceModel;
        this.placement = placement;
    }

    /**
     * How a model was placed on its device, as the load resolved it (for reports such as {@code xpuflow bench}).
     *
     * @param weightFormat the weight format used (the checkpoint's default when none was asked for)
     * @param kvCacheDtype the KV cache element type used
     * @param storedDtype the dtype the checkpoint stores its weights in (its attention weights')
     * @param weightBytes weight memory the device holds for the model, resident from load on
     * @param loadNanos wall time of the load: config, checkpoint, weight conversion and registration
     */
    public record Placement(WeightFormat weightFormat, KvCacheDtype kvCacheDtype, DType storedDtype, long weightBytes,
                            long loadNanos) {}

    /**
     * Reads {@code dir/config.json}, maps the weights and builds the device model.
     *
     * @throws io.xpuflow.runtime.config.ModelConfigException if the configuration cannot be run
     * @throws CheckpointException if a weights file or tensor is missing, corrupt or disagrees with the configuration
     */
    public static LoadedModel load(Path dir, LoadOptions options) {
        long start = System.nanoTime();
        ModelConfigs.Parsed parsed = ModelConfigs.read(dir);
        Checkpoint checkpoint = Checkpoint.open(dir);
        Device device = null;
        DeviceModel dm = null;
        try {
            parsed = ModelConfigs.withMtp(parsed, name -> checkpoint.find(name).isPresent());
            ModelConfig config = parsed.config();
            KvLayout layout = KvLayout.of(config);
            Binder binder = new Binder(parsed, checkpoint, layout);
            WeightFormat format = options.weightFormat() != null ? options.weightFormat()
                    : defaultWeightFormat(binder.storedDtype());
            KvCacheDtype kvDtype = options.kvCacheDtype() != null ? options.kvCacheDtype()
                    : KvCacheDtype.defaultFor(format);
            device = Device.open("cpu", options.threads());
            dm = DeviceModel.create(device, new ModelParams(config.vocabSize(), config.hiddenSize(), config.numLayers(),
                    config.mtpLayers().size(), layout.numGroups(), options.maxTokensPerStep(), options.maxSeqsPerStep(),
                    config.normEps(), format, kvDtype));
            binder.bindAll(dm);
            dm.finish();
            Placement placement = new Placement(format, kvDtype, binder.storedDtype(), dm.weightBytes(),
                    System.nanoTime() - start);
            LOG.info("Loaded {} from {}: {} layers ({} MTP), {} KV groups; {} weights ({} MiB, {} checkpoint), KV cache {},"
                            + " {} kernels, {} threads, {} ms", config.architecture(), dir, config.numLayers(),
                    config.mtpLayers().size(), layout.numGroups(), format.optionValue(), placement.weightBytes() >> 20,
                    placement.storedDtype(), kvDtype.optionValue(), Devices.cpuIsa(), device.threads(),
                    placement.loadNanos() / 1_000_000);
            Devices.isaWarning().ifPresent(w -> LOG.warn("{}", w));
            return new LoadedModel(dir, config, layout, device, dm, placement);
        } catch (RuntimeException e) {
            if (dm != null) {
                dm.close();
            }
            if (device != null) {
                device.close();
            }
            throw e;
        } finally {
            checkpoint.close(); // the device holds its own copy of every weight
        }
    }

    /**
     * The weight format a checkpoint gets unless one is asked for: BF16 for BF16 and FP8 checkpoints (their
     * weights lose nothing, or only FP8 block scales' rounding, as BF16), exact for F32 and F16 ones.
     */
    public static WeightFormat defaultWeightFormat(DType stored) {
        return stored == DType.BF16 || stored == DType.F8_E4M3 ? WeightFormat.BF16 : WeightFormat.EXACT;
    }

    public Path dir() {
        return dir;
    }

    public ModelConfig config() {
        return config;
    }

    public KvLayout kvLayout() {
        return kvLayout;
    }

    public DeviceModel deviceModel() {
        return deviceModel;
    }

    /** The weight format, KV cache dtype, weight memory and load time this model got. */
    public Placement placement() {
        return placement;
    }

    @Override
    public void close() {
        deviceModel.close();
        device.close();
    }

    /** Registers every weight of the configuration with the device model. */
    private static final class Binder {
        private final ModelConfigs.Parsed parsed;
        private final ModelConfig config;
        private final Checkpoint checkpoint;
        private final KvLayout layout;
        private DeviceModel dm;

        Binder(ModelConfigs.Parsed parsed, Checkpoint checkpoint, KvLayout layout) {
            this.parsed = parsed;
            this.config = parsed.config();
            this.checkpoint = checkpoint;
            this.layout = layout;
        }

        /** The dtype the checkpoint stores its attention weights in (layer 0's q projection). */
        DType storedDtype() {
            String name = parsed.adapter().tensorName(config, TensorRole.Q, 0, -1);
            return name == null ? DType.F32 : requireTensor(name, TensorRole.Q, 0, -1).dtype();
        }

        void bindAll(DeviceModel model) {
            this.dm = model;
            long v = config.vocabSize();
            long h = config.hiddenSize();
            bind(TensorRole.EMBED, -1, -1, v, h);
            bind(TensorRole.LM_HEAD, -1, -1, v, h);
            bind(TensorRole.FINAL_NORM, -1, -1, h);
            int total = config.numLayers() + config.mtpLayers().size();
            for (int l = 0; l < total; l++) {
                ModelConfig.LayerConfig layer = l < config.numLayers() ? config.layers().get(l)
                        : config.mtpLayers().get(l - config.numLayers());
                bindLayer(l, layer, l >= config.numLayers());
            }
        }

        private void bindLayer(int l, ModelConfig.LayerConfig layer, boolean mtp) {
            AttentionConfig a = layer.attention();
            long h = config.hiddenSize();
            long nq = (long) a.numHeads() * a.headDimQk();
            long nk = (long) a.numKvHeads() * a.headDimQk();
            long nv = (long) a.numKvHeads() * a.headDimV();
            FfnConfig ffn = layer.ffn();
            FfnConfig.Moe moe = ffn instanceof FfnConfig.Moe m ? m : null;
            int inter = ffn instanceof FfnConfig.Dense d ? d.intermediateSize() : 0;
            dm.setLayer(l, new LayerParams(a.sliding(), a.window(), a.numHeads(), a.numKvHeads(), a.headDimQk(),
                    a.headDimV(), a.rotaryDim(), a.sink(), a.qkvBias(), a.qkNorm(), layout.layerGroup()[l], moe != null,
                    inter, moe == null ? 0 : moe.numExperts(), moe == null ? 0 : moe.topK(),
                    moe == null ? 0 : moe.intermediateSize(), moe != null && moe.scoring() == FfnConfig.Scoring.SIGMOID,
                    moe == null ? 1 : moe.numGroups(), moe == null ? 1 : moe.topkGroups(),
                    moe != null && moe.normTopkProb(), moe != null && moe.correctionBias(),
                    moe == null ? 0 : moe.sharedIntermediateSize(), moe != null && moe.sharedExpertGate(),
                    a.scale(), a.valueScale(), moe == null ? 1.0 : moe.routedScaling()));
            dm.setRope(l, a.rope().inverseFrequencies(a.rotaryDim()));

            bind(TensorRole.ATTN_NORM, l, -1, h);
            bind(TensorRole.Q, l, -1, nq, h);
            bind(TensorRole.K, l, -1, nk, h);
            bind(TensorRole.V, l, -1, nv, h);
            bind(TensorRole.O, l, -1, h, (long) a.numHeads() * a.headDimV());
            if (a.qkvBias()) {
                bind(TensorRole.Q_BIAS, l, -1, nq);
                bind(TensorRole.K_BIAS, l, -1, nk);
                bind(TensorRole.V_BIAS, l, -1, nv);
            }
            if (a.qkNorm()) {
                bind(TensorRole.Q_NORM, l, -1, a.headDimQk());
                bind(TensorRole.K_NORM, l, -1, a.headDimQk());
            }
            if (a.sink()) {
                bind(TensorRole.SINK, l, -1, a.numHeads());
            }
            bind(TensorRole.FFN_NORM, l, -1, h);
            if (moe == null) {
                bind(TensorRole.GATE, l, -1, inter, h);
                bind(TensorRole.UP, l, -1, inter, h);
                bind(TensorRole.DOWN, l, -1, h, inter);
            } else {
                bind(TensorRole.ROUTER, l, -1, moe.numExperts(), h);
                if (moe.correctionBias()) {
                    bind(TensorRole.ROUTER_BIAS, l, -1, moe.numExperts());
                }
                for (int e = 0; e < moe.numExperts(); e++) {
                    bind(TensorRole.EXPERT_GATE, l, e, moe.intermediateSize(), h);
                    bind(TensorRole.EXPERT_UP, l, e, moe.intermediateSize(), h);
                    bind(TensorRole.EXPERT_DOWN, l, e, h, moe.intermediateSize());
                }
                if (moe.sharedIntermediateSize() > 0) {
                    bind(TensorRole.SHARED_GATE, l, -1, moe.sharedIntermediateSize(), h);
                    bind(TensorRole.SHARED_UP, l, -1, moe.sharedIntermediateSize(), h);
                    bind(TensorRole.SHARED_DOWN, l, -1, h, moe.sharedIntermediateSize());
                    if (moe.sharedExpertGate()) {
                        bind(TensorRole.SHARED_EXPERT_GATE, l, -1, 1, h);
                    }
                }
            }
            if (mtp) {
                bind(TensorRole.MTP_ENORM, l, -1, h);
                bind(TensorRole.MTP_HNORM, l, -1, h);
                bind(TensorRole.MTP_EH_PROJ, l, -1, h, 2 * h);
                bind(TensorRole.MTP_FINAL_NORM, l, -1, h);
            }
        }

        /** Finds, checks and registers one weight; {@code shape} is what the configuration implies. */
        private void bind(TensorRole role, int layer, int expert, long... shape) {
            String name = parsed.adapter().tensorName(config, role, layer, expert);
            if (name == null) {
                throw new CheckpointException(checkpoint.dir(), null, "the " + config.architecture()
                        + " layout has no tensor for " + role + " of layer " + layer);
            }
            TensorRef t = requireTensor(name, role, layer, expert);
            DType dtype = t.dtype();
            if (!dtype.isWeightType()) {
                throw new CheckpointException(t.file().path(), name, "dtype " + dtype + " cannot hold weights (F32, BF16, F16, F8_E4M3)");
            }
            if (!Arrays.equals(t.shape(), shape)) {
                throw new CheckpointException(t.file().path(), name, "is " + t.info().describe() + " but " + parsed.reader().file().getFileName()
                        + " implies " + Arrays.toString(shape) + " (" + where(role, layer, expert) + ")");
            }
            long rows = shape.length == 2 ? shape[0] : 1;
            long cols = shape.length == 2 ? shape[1] : shape[0];
            WeightView view;
            if (dtype == DType.F8_E4M3) {
                view = fp8View(t, rows, cols, shape.length);
            } else {
                view = WeightView.plain(t.address(), dtype.deviceCode(), rows, cols);
            }
            dm.setTensor(role, layer, expert, view);
        }

        private WeightView fp8View(TensorRef t, long rows, long cols, int rank) {
            ModelConfig.Fp8Quantization q = config.quantization();
            if (q == null) {
                throw new CheckpointException(t.file().path(), t.name(),
                        "is F8_E4M3 but config.json has no fp8 quantization_config giving its block size");
            }
            if (rank != 2) {
                throw new CheckpointException(t.file().path(), t.name(), "is a 1-D F8_E4M3 tensor; only matrices may be FP8");
            }
            String scaleName = t.name() + "_scale_inv";
            TensorRef s = checkpoint.find(scaleName).orElseThrow(() -> new CheckpointException(t.file().path(), scaleName,
                    "missing: the FP8 weight '" + t.name() + "' needs its block scales"));
            long sr = (rows + q.blockRows() - 1) / q.blockRows();
            long sc = (cols + q.blockCols() - 1) / q.blockCols();
            if (s.dtype() != DType.F32 || !Arrays.equals(s.shape(), new long[] {sr, sc})) {
                throw new CheckpointException(s.file().path(), scaleName, "is " + s.info().describe() + " but F32" + Arrays.toString(new long[] {sr, sc})
                        + " is needed for " + rows + "x" + cols + " in blocks of " + q.blockRows() + "x" + q.blockCols());
            }
            return new WeightView(t.address(), DType.F8_E4M3.deviceCode(), rows, cols, s.address(), sr, sc,
                    q.blockRows(), q.blockCols());
        }

        private TensorRef requireTensor(String name, TensorRole role, int layer, int expert) {
            try {
                return checkpoint.require(name);
            } catch (CheckpointException e) {
                // e names the file the tensor was looked up in (model.safetensors or the index), not just the directory
                throw new CheckpointException(e.file(), name, "missing from the checkpoint; " + config.architecture()
                        + " needs it as " + where(role, layer, expert));
            }
        }

        private String where(TensorRole role, int layer, int expert) {
            String s = role.name().toLowerCase(java.util.Locale.ROOT);
            if (layer >= 0) {
                s += layer < config.numLayers() ? " of layer " + layer : " of MTP layer " + (layer - config.numLayers());
            }
            if (expert >= 0) {
                s += ", expert " + expert;
            }
            return s;
        }
    }
}
