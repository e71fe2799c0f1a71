package io.xpuflow.runtime.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a random checkpoint directory ({@code config.json} + {@code model.safetensors}) in the Hugging
 * Face layout of one architecture, from a {@link Spec}. Weights are normal and scaled by
 * {@code 1/sqrt(fan_in)} so that activations stay of order one; norm weights are near 1; router
 * weights and correction biases are spread so that expert choices are rarely near-ties. The values
 * are first rounded to the stored dtype, so the file holds exactly what was drawn.
 *
 * <p>Values are drawn while the file is written, tensor by tensor in chunks, so a checkpoint of billions
 * of parameters needs little heap; {@link Spec#fast} makes drawing fast enough for such sizes.
 * {@link #plan} gives the tensors and parameter counts without writing. {@link RandomPreset} names ready
 * specs for benchmarks.
 *
 * <pre>{@code
 * Path dir = RandomCheckpoint.write(tmp, Spec.of("x", Arch.MIMO).hidden(48).layers(3).swaPattern(0, 1, 1)
 *         .moePattern(0, 1, 1).experts(16, 4, 32).groups(4, 2));
 * }</pre>
 */
public final class RandomCheckpoint {

    /** The architectures the generator can lay out. */
    public enum Arch {
        MIMO("MiMoV2FlashForCausalLM", "mimo_v2_flash"),
        LLAMA("LlamaForCausalLM", "llama"),
        MIXTRAL("MixtralForCausalLM", "mixtral"),
        QWEN2("Qwen2ForCausalLM", "qwen2"),
        QWEN3("Qwen3ForCausalLM", "qwen3"),
        QWEN2_MOE("Qwen2MoeForCausalLM", "qwen2_moe"),
        QWEN3_MOE("Qwen3MoeForCausalLM", "qwen3_moe");

        final String hfName;
        final String modelType;

        Arch(String hfName, String modelType) {
            this.hfName = hfName;
            this.modelType = modelType;
        }

        boolean llamaFamily() {
            return this != MIMO;
        }

        /** The {@code architectures} entry of the config, e.g. {@code LlamaForCausalLM}. */
        public String hfName() {
            return hfName;
        }
    }

    /**
     * What to generate. Fields are public and set through the fluent methods; a MiMo spec's
     * {@code swa*} fields describe its sliding-window layers, the plain ones its full layers (and every
     * layer of the Llama family).
     */
    public static final class Spec {
        public final String name;
        public final Arch arch;
        public long seed = 1;
        public int vocab = 128;
        public int hidden = 64;
        public int layers = 3;
        public int promptLength = 24;
        public double eps = 1e-5;
        // attention, full layers (all layers for the Llama family)
        public int heads = 4;
        public int kvHeads = 2;
        public int headDim = 16;
        public int vHeadDim = 16;       // MiMo only; Llama family: = headDim
        public boolean writeHeadDim = true; // Llama family: false leaves head_dim out (hidden / heads)
        public double theta = 10000;
        public Double partialRotary;    // null: key absent (whole head)
        public double[] llama3;         // {factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}
        // MiMo sliding-window layers
        public int[] swaPattern;        // hybrid_layer_pattern: 1 = sliding window; null: all full
        public int swaHeads = 4;
        public int swaKvHeads = 2;
        public int swaHeadDim = 16;
        public int swaVHeadDim = 16;
        public double swaTheta = 10000;
        public int window;              // MiMo: sliding_window; Mixtral: 0 = null
        public boolean swaSink = true;
        public boolean fullSink;
        public Double valueScale;       // null: key absent
        // feed-forward
        public int intermediate = 96;
        public int[] moePattern;        // MiMo moe_layer_freq; null: all dense (Llama family: see mlpOnly)
        public int experts;
        public int topK;
        public int moeIntermediate = 32;
        public String scoring = "sigmoid";
        public String topkMethod = "noaux_tc";
        public int nGroup = 1;
        public int topkGroup = 1;
        public Boolean normTopk = true; // null: key absent (architecture default)
        public Double routedScaling;    // null: key written as null
        public int sharedExperts;       // MiMo n_shared_experts; Qwen2-MoE: shared_expert_intermediate_size = this * moeIntermediate
        public int[] mlpOnly;           // Qwen MoE mlp_only_layers
        // weights
        public boolean tie;
        public DType dtype = DType.BF16;
        public int[] fp8Block;          // {rows, cols} when dtype is F8_E4M3
        public int mtpLayers;
        public int maxPositions = 4096;  // max_position_embeddings
        public boolean fast;             // fast draws (see fast()); false: the original generator's values

        private Spec(String name, Arch arch) {
            this.name = name;
            this.arch = arch;
        }

        public static Spec of(String name, Arch arch) {
            return new Spec(name, arch);
        }

        public Spec seed(long s) { seed = s; return this; }
        public Spec vocab(int v) { vocab = v; return this; }
        public Spec hidden(int h) { hidden = h; return this; }
        public Spec layers(int n) { layers = n; return this; }
        public Spec prompt(int n) { promptLength = n; return this; }
        public Spec eps(double e) { eps = e; return this; }

        public Spec attention(int h, int kv, int dim, int vDim) {
            heads = h; kvHeads = kv; headDim = dim; vHeadDim = vDim;
            return this;
        }

        public Spec swaAttention(int h, int kv, int dim, int vDim) {
            swaHeads = h; swaKvHeads = kv; swaHeadDim = dim; swaVHeadDim = vDim;
            return this;
        }

        public Spec noHeadDimKey() { writeHeadDim = false; return this; }
        public Spec theta(double full, double swa) { theta = full; swaTheta = swa; return this; }
        public Spec partialRotary(double f) { partialRotary = f; return this; }

        public Spec llama3(double factor, double low, double high, int originalMax) {
            llama3 = new double[] {factor, low, high, originalMax};
            return this;
        }

        public Spec swaPattern(int... p) { swaPattern = p; return this; }
        public Spec window(int w) { window = w; return this; }
        public Spec sinks(boolean swa, boolean full) { swaSink = swa; fullSink = full; return this; }
        public Spec valueScale(Double s) { valueScale = s; return this; }
        public Spec intermediate(int n) { intermediate = n; return this; }
        public Spec moePattern(int... p) { moePattern = p; return this; }

        public Spec experts(int n, int k, int inter) {
            experts = n; topK = k; moeIntermediate = inter;
            return this;
        }

        public Spec routing(String scoringFunc, String method) { scoring = scoringFunc; topkMethod = method; return this; }
        public Spec groups(int n, int k) { nGroup = n; topkGroup = k; return this; }
        public Spec normTopk(Boolean b) { normTopk = b; return this; }
        public Spec routedScaling(Double s) { routedScaling = s; return this; }
        public Spec shared(int n) { sharedExperts = n; return this; }
        public Spec mlpOnly(int... l) { mlpOnly = l; return this; }
        public Spec tie(boolean t) { tie = t; return this; }
        public Spec dtype(DType d) { dtype = d; return this; }
        public Spec fp8(int rows, int cols) { dtype = DType.F8_E4M3; fp8Block = new int[] {rows, cols}; return this; }
        public Spec mtp(int n) { mtpLayers = n; return this; }
        public Spec maxPositions(int n) { maxPositions = n; return this; }

        /**
         * Draws each tensor from its own {@link java.util.SplittableRandom} with an approximate normal: several
         * times faster (for checkpoints of billions of parameters), but values differ from the default draws,
         * which the reference tests were written against.
         */
        public Spec fast(boolean f) { fast = f; return this; }

        boolean fp8() {
            return dtype == DType.F8_E4M3;
        }

        /** A MiMo sliding-window layer (the Llama family has no per-layer types; Mixtral's window is global). */
        boolean swa(int layer) {
            return arch == Arch.MIMO && swaPattern != null && swaPattern[layer] == 1;
        }

        boolean moe(int layer) {
            return switch (arch) {
                case MIMO -> moePattern != null && moePattern[layer] == 1;
                case MIXTRAL -> true;
                case QWEN2_MOE, QWEN3_MOE -> !contains(mlpOnly, layer);
                default -> false;
            };
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** One tensor of a checkpoint as {@link #plan} lays it out. */
    public record Tensor(String name, DType dtype, long[] shape, boolean routedExpert) {
        /** The number of elements. */
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /**
     * The tensors a spec lays out, without any values drawn: parameter counts and the file size are known
     * before anything is written.
     */
    public static final class Plan {
        private final List<Tensor> tensors;
        private final long fileSize;
        private final int experts;
        private final int topK;

        private Plan(Spec spec, List<Tensor> tensors, long fileSize) {
            this.tensors = List.copyOf(tensors);
            this.fileSize = fileSize;
            this.experts = spec.experts;
            this.topK = spec.topK;
        }

        /** Every tensor of {@code model.safetensors}, in file order. */
        public List<Tensor> tensors() {
            return tensors;
        }

        /** All stored values (FP8 block scales included). */
        public long parameters() {
            return tensors.stream().mapToLong(Tensor::numel).sum();
        }

        /** Values of the routed experts (all MoE layers). */
        public long routedExpertParameters() {
            return tensors.stream().filter(Tensor::routedExpert).mapToLong(Tensor::numel).sum();
        }

        /**
         * The parameters one token uses: everything except the routed experts it does not select, that is
         * {@code parameters - routed * (experts - topK) / experts} (embedding, LM head, routers and any MTP
         * layers count as active).
         */
        public long activeParameters() {
            long routed = routedExpertParameters();
            if (routed == 0) {
                return parameters();
            }
            return parameters() - routed / experts * (experts - topK);
        }

        /** The size of {@code model.safetensors} in bytes. */
        public long fileSize() {
            return fileSize;
        }
    }

    /** What {@link #writeInto} wrote: the files (weights first) and the plan they follow. */
    public record Written(Path dir, List<Path> files, Plan plan) {}

    private static final Logger LOG = LoggerFactory.getLogger(RandomCheckpoint.class);
    /** Values drawn and encoded per chunk while streaming a tensor. */
    private static final int CHUNK = 1 << 16;

    private final Spec spec;
    private final Random rnd;               // the default draws: one generator, in file order
    private final SplittableRandom splits;  // fast draws: one generator per tensor, split off in file order
    private final SafetensorsWriter out = new SafetensorsWriter();
    private final List<Tensor> planned = new ArrayList<>();
    private final List<String> ignored = new ArrayList<>();
    private boolean routed;                 // declaring routed experts

    private RandomCheckpoint(Spec spec) {
        this.spec = spec;
        this.rnd = new Random(spec.seed);
        this.splits = new SplittableRandom(spec.seed);
        out.metadata("format", "pt");
        tensors();
    }

    /** The tensors, parameter counts and file size of {@code spec}, without drawing or writing anything. */
    public static Plan plan(Spec spec) {
        return new RandomCheckpoint(spec).plan();
    }

    private Plan plan() {
        return new Plan(spec, planned, out.fileSize());
    }

    /** Writes {@code parent/<spec name>/{config.json, model.safetensors}} and returns that directory. */
    public static Path write(Path parent, Spec spec) {
        return writeInto(parent.resolve(spec.name), spec).dir();
    }

    /**
     * Writes {@code dir/model.safetensors} and {@code dir/config.json} (creating {@code dir}, replacing those
     * two files). The weights are drawn while they are written, one chunk at a time, so the heap holds no
     * more than a chunk of any tensor; the file appears under its name only once complete.
     */
    public static Written writeInto(Path dir, Spec spec) {
        long started = System.nanoTime();
        RandomCheckpoint g = new RandomCheckpoint(spec);
        Path weights = dir.resolve(Checkpoint.SINGLE_FILE);
        Path config = dir.resolve("config.json");
        try {
            Files.createDirectories(dir);
            Path partial = dir.resolve(Checkpoint.SINGLE_FILE + ".partial");
            try {
                g.out.write(partial);
                Files.move(partial, weights, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(partial);
            }
            Files.writeString(config, g.configJson());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a random checkpoint to " + dir + ": " + e.getMessage(), e);
        }
        Plan plan = g.plan();
        LOG.info("Wrote random checkpoint {} to {}: {} tensors, {} parameters ({} active), {} bytes in {} ms", spec,
                dir, plan.tensors().size(), plan.parameters(), plan.activeParameters(), plan.fileSize(),
                (System.nanoTime() - started) / 1_000_000);
        return new Written(dir, List.of(weights, config), plan);
    }

    /**
     * The {@code config.json} that {@link #writeInto} writes for {@code spec}, without any weights: enough to check
     * that a large preset's configuration loads.
     */
    public static String configJson(Spec spec) {
        return new RandomCheckpoint(spec).configJson();
    }

    private String configJson() {
        try {
            return new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(config());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A random prompt of {@code spec.promptLength} ids, drawn from a generator separate from the weights'. */
    public static int[] prompt(Spec spec) {
        Random r = new Random(spec.seed * 31 + 7);
        int[] ids = new int[spec.promptLength];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(spec.vocab);
        }
        return ids;
    }

    // --- tensors -----------------------------------------------------------------------------------

    private void tensors() {
        Spec s = spec;
        int h = s.hidden;
        addVector("model.embed_tokens.weight", gaussian(1.0), s.vocab, h);
        for (int l = 0; l < s.layers; l++) {
            String p = "model.layers." + l + ".";
            boolean swa = s.swa(l);
            norm(p + "input_layernorm.weight", h);
            attention(p, swa ? s.swaHeads : s.heads, swa ? s.swaKvHeads : s.kvHeads, swa ? s.swaHeadDim : s.headDim,
                    s.arch.llamaFamily() ? s.headDim : swa ? s.swaVHeadDim : s.vHeadDim,
                    swa ? s.swaSink : s.fullSink, true);
            norm(p + "post_attention_layernorm.weight", h);
            if (s.moe(l)) {
                moe(p);
            } else {
                swiglu(p + "mlp.", s.intermediate);
            }
        }
        for (int m = 0; m < s.mtpLayers; m++) {
            String p = "model.mtp.layers." + m + ".";
            norm(p + "enorm.weight", h);
            norm(p + "hnorm.weight", h);
            addMatrix(p + "eh_proj.weight", h, 2 * h, false);
            norm(p + "input_layernorm.weight", h);
            attention(p, s.swaHeads, s.swaKvHeads, s.swaHeadDim, s.swaVHeadDim, s.swaSink, false);
            norm(p + "pre_mlp_layernorm.weight", h);
            swiglu(p + "mlp.", s.intermediate);
            norm(p + "final_layernorm.weight", h);
        }
        norm("model.norm.weight", h);
        if (!s.tie) {
            addMatrix("lm_head.weight", s.vocab, h, false);
        }
    }

    private void attention(String p, int heads, int kvHeads, int dim, int vDim, boolean sink, boolean listOInIgnored) {
        int h = spec.hidden;
        addMatrix(p + "self_attn.q_proj.weight", heads * dim, h, true);
        addMatrix(p + "self_attn.k_proj.weight", kvHeads * dim, h, true);
        addMatrix(p + "self_attn.v_proj.weight", kvHeads * vDim, h, true);
        // o_proj stays unquantised, as in the real FP8 checkpoints
        addMatrix(p + "self_attn.o_proj.weight", h, heads * vDim, false);
        if (spec.fp8() && listOInIgnored) {
            ignored.add(p + "self_attn.o_proj");
        }
        if (spec.arch == Arch.QWEN2 || spec.arch == Arch.QWEN2_MOE) {
            addVector(p + "self_attn.q_proj.bias", gaussian(0.5), heads * dim);
            addVector(p + "self_attn.k_proj.bias", gaussian(0.5), kvHeads * dim);
            addVector(p + "self_attn.v_proj.bias", gaussian(0.5), kvHeads * vDim);
        }
        if (spec.arch == Arch.QWEN3 || spec.arch == Arch.QWEN3_MOE) {
            norm(p + "self_attn.q_norm.weight", dim);
            norm(p + "self_attn.k_norm.weight", dim);
        }
        if (sink && spec.arch == Arch.MIMO) {
            addVector(p + "self_attn.attention_sink_bias", gaussian(1.0), heads);
        }
    }

    private void swiglu(String p, int inter) {
        addMatrix(p + "gate_proj.weight", inter, spec.hidden, true);
        addMatrix(p + "up_proj.weight", inter, spec.hidden, true);
        addMatrix(p + "down_proj.weight", spec.hidden, inter, true);
    }

    private void moe(String p) {
        Spec s = spec;
        int h = s.hidden;
        boolean mixtral = s.arch == Arch.MIXTRAL;
        String base = p + (mixtral ? "block_sparse_moe." : "mlp.");
        // router: spread logits (std ~2) so that choices are well separated; MiMo keeps it in F32
        Values router = gaussian(2.0 / Math.sqrt(h));
        if (s.arch == Arch.MIMO) {
            add(base + "gate.weight", DType.F32, router, s.experts, h);
            if (s.topkMethod.equals("noaux_tc")) {
                // correction bias of the order of the score spread, so that it changes choices
                double spread = s.scoring.equals("sigmoid") ? 0.6 : 0.3;
                add(base + "gate.e_score_correction_bias", DType.F32, uniform(u -> (u - 0.5) * spread), s.experts);
            }
        } else {
            addVector(base + "gate.weight", router, s.experts, h);
        }
        routed = true;
        for (int e = 0; e < s.experts; e++) {
            String x = base + "experts." + e + ".";
            if (mixtral) { // Mixtral experts have intermediate_size units
                addMatrix(x + "w1.weight", s.intermediate, h, true);
                addMatrix(x + "w3.weight", s.intermediate, h, true);
                addMatrix(x + "w2.weight", h, s.intermediate, true);
            } else {
                swiglu(x, s.moeIntermediate);
            }
        }
        routed = false;
        if (s.sharedExperts > 0) {
            if (s.arch == Arch.QWEN2_MOE) {
                swiglu(p + "mlp.shared_expert.", s.sharedExperts * s.moeIntermediate);
                addVector(p + "mlp.shared_expert_gate.weight", gaussian(1.0 / Math.sqrt(h)), 1, h);
            } else {
                swiglu(p + "mlp.shared_experts.", s.sharedExperts * s.moeIntermediate);
            }
        }
    }

    private void norm(String name, int n) {
        addVector(name, gaussian(g -> 1.0 + 0.2 * g), n);
    }

    /** A weight [rows, cols] of std 1/sqrt(cols); FP8 (with block scales) if the spec says so and {@code quantisable}. */
    private void addMatrix(String name, int rows, int cols, boolean quantisable) {
        if (spec.fp8() && quantisable) {
            addFp8(name, rows, cols);
        } else {
            addVector(name, gaussian(1.0 / Math.sqrt(cols)), rows, cols);
        }
    }

    /** Stores values in the spec's dtype (BF16 for an FP8 checkpoint's unquantised tensors). */
    private void addVector(String name, Values values, long... shape) {
        DType t = spec.fp8() ? DType.BF16 : spec.dtype;
        if (t != DType.F32 && t != DType.BF16 && t != DType.F16) {
            throw new IllegalArgumentException(t.toString());
        }
        add(name, t, values, shape);
    }

    /**
     * FP8 E4M3 codes near N(0, 8^2) and one F32 multiplier per block (blocks at the ends may be
     * partial), varying between 0.5x and 1.5x of {@code 1/(8 sqrt(cols))} so that a wrong block index
     * shows.
     */
    private void addFp8(String name, int rows, int cols) {
        int br = spec.fp8Block[0];
        int bc = spec.fp8Block[1];
        int sr = (rows + br - 1) / br;
        int sc = (cols + bc - 1) / bc;
        add(name, DType.F8_E4M3, gaussian(g -> 8.0 * g), rows, cols);
        add(name + "_scale_inv", DType.F32, uniform(u -> (0.5 + u) / (8.0 * Math.sqrt(cols))), sr, sc);
    }

    // --- drawing and streaming ---------------------------------------------------------------------

    /** Where one tensor's values come from: a standard normal or a uniform [0, 1) draw, then {@code f}. */
    private record Values(boolean normal, DoubleUnaryOperator f, double std) {}

    /** Normal of mean 0 and {@code std}: values {@code std * g}. */
    private static Values gaussian(double std) {
        return new Values(true, null, std);
    }

    private static Values gaussian(DoubleUnaryOperator f) {
        return new Values(true, f, 0);
    }

    private static Values uniform(DoubleUnaryOperator f) {
        return new Values(false, f, 0);
    }

    /** The draws of one tensor. */
    private interface Draws {
        double normal();

        double uniform();
    }

    /**
     * Declares a tensor whose values are drawn while it is written. The default draws come from one
     * {@link Random} in file order (as the generator always drew them); the fast ones from a
     * {@link SplittableRandom} split off for this tensor now, with normals approximated by the sum of four
     * 16-bit uniforms (Irwin–Hall, within +-3.46 sigma): several times faster, different values.
     */
    private void add(String name, DType dtype, Values values, long... shape) {
        Draws draws;
        if (spec.fast) {
            SplittableRandom r = splits.split();
            draws = new Draws() {
                @Override
                public double normal() {
                    long b = r.nextLong();
                    long sum = (b & 0xFFFF) + ((b >>> 16) & 0xFFFF) + ((b >>> 32) & 0xFFFF) + (b >>> 48);
                    return (sum - IRWIN_HALL_MEAN) * IRWIN_HALL_INV_STD;
                }

                @Override
                public double uniform() {
                    return r.nextDouble();
                }
            };
        } else {
            draws = new Draws() {
                @Override
                public double normal() {
                    return rnd.nextGaussian();
                }

                @Override
                public double uniform() {
                    return rnd.nextDouble();
                }
            };
        }
        planned.add(new Tensor(name, dtype, shape.clone(), routed));
        long numel = planned.get(planned.size() - 1).numel();
        out.addStreamed(name, dtype, o -> stream(o, dtype, values, draws, numel), shape);
    }

    /** Sum of four uniform 16-bit integers: mean 4 * 65535 / 2, variance 4 * (65536^2 - 1) / 12. */
    private static final double IRWIN_HALL_MEAN = 2 * 65535.0;
    private static final double IRWIN_HALL_INV_STD = 1 / Math.sqrt((65536.0 * 65536.0 - 1) / 3);

    private static void stream(OutputStream o, DType dtype, Values values, Draws draws, long numel) throws IOException {
        double[] v = new double[(int) Math.min(CHUNK, numel)];
        byte[] b = new byte[v.length * dtype.byteSize()];
        for (long done = 0; done < numel; ) {
            int n = (int) Math.min(v.length, numel - done);
            if (values.f == null) {
                double std = values.std;
                for (int i = 0; i < n; i++) {
                    v[i] = std * draws.normal();
                }
            } else {
                for (int i = 0; i < n; i++) {
                    v[i] = values.f.applyAsDouble(values.normal ? draws.normal() : draws.uniform());
                }
            }
            encode(dtype, v, n, b);
            o.write(b, 0, n * dtype.byteSize());
            done += n;
        }
    }

    /** Rounds {@code v[0..n)} to float, then to {@code dtype}, little endian into {@code b}. */
    private static void encode(DType dtype, double[] v, int n, byte[] b) {
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < n; i++) {
                    int bits = Float.floatToRawIntBits((float) v[i]);
                    b[4 * i] = (byte) bits;
                    b[4 * i + 1] = (byte) (bits >>> 8);
                    b[4 * i + 2] = (byte) (bits >>> 16);
                    b[4 * i + 3] = (byte) (bits >>> 24);
                }
            }
            case BF16, F16 -> {
                boolean bf16 = dtype == DType.BF16;
                for (int i = 0; i < n; i++) {
                    int bits = bf16 ? toBf16((float) v[i]) : toF16((float) v[i]);
                    b[2 * i] = (byte) bits;
                    b[2 * i + 1] = (byte) (bits >>> 8);
                }
            }
            case F8_E4M3 -> {
                for (int i = 0; i < n; i++) {
                    b[i] = (byte) nearestE4m3(v[i]);
                }
            }
            default -> throw new IllegalArgumentException(dtype.toString());
        }
    }

    // --- config.json -------------------------------------------------------------------------------

    private ObjectNode config() {
        Spec s = spec;
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.putArray("architectures").add(s.arch.hfName);
        c.put("model_type", s.arch.modelType);
        c.put("vocab_size", s.vocab);
        c.put("hidden_size", s.hidden);
        c.put("num_hidden_layers", s.layers);
        c.put("num_attention_heads", s.heads);
        c.put("num_key_value_heads", s.kvHeads);
        if (s.writeHeadDim) {
            c.put("head_dim", s.headDim);
        }
        c.put("intermediate_size", s.intermediate);
        c.put("hidden_act", "silu");
        c.put("max_position_embeddings", s.maxPositions);
        c.put("tie_word_embeddings", s.tie);
        c.put("rope_theta", s.theta);
        if (s.partialRotary != null) {
            c.put("partial_rotary_factor", s.partialRotary);
        }
        if (s.llama3 != null) {
            ObjectNode r = c.putObject("rope_scaling");
            r.put("rope_type", "llama3");
            r.put("factor", s.llama3[0]);
            r.put("low_freq_factor", s.llama3[1]);
            r.put("high_freq_factor", s.llama3[2]);
            r.put("original_max_position_embeddings", (int) s.llama3[3]);
        } else {
            c.putNull("rope_scaling");
        }
        c.putNull("bos_token_id");
        c.put("eos_token_id", s.vocab - 1);
        c.put("torch_dtype", s.dtype == DType.F32 ? "float32" : s.dtype == DType.F16 ? "float16" : "bfloat16");
        if (s.arch == Arch.MIMO) {
            mimoConfig(c);
        } else {
            llamaConfig(c);
        }
        return c;
    }

    private void mimoConfig(ObjectNode c) {
        Spec s = spec;
        c.put("layernorm_epsilon", s.eps);
        c.put("v_head_dim", s.vHeadDim);
        c.put("swa_num_attention_heads", s.swaHeads);
        c.put("swa_num_key_value_heads", s.swaKvHeads);
        c.put("swa_head_dim", s.swaHeadDim);
        c.put("swa_v_head_dim", s.swaVHeadDim);
        c.put("swa_rope_theta", s.swaTheta);
        ArrayNode pattern = c.putArray("hybrid_layer_pattern");
        ArrayNode moe = c.putArray("moe_layer_freq");
        for (int l = 0; l < s.layers; l++) {
            pattern.add(s.swa(l) ? 1 : 0);
            moe.add(s.moe(l) ? 1 : 0);
        }
        c.put("sliding_window", s.window);
        c.put("sliding_window_size", s.window);
        c.put("add_swa_attention_sink_bias", s.swaSink);
        c.put("add_full_attention_sink_bias", s.fullSink);
        if (s.valueScale != null) {
            c.put("attention_value_scale", s.valueScale);
        }
        c.put("attention_bias", false);
        c.put("moe_intermediate_size", s.moeIntermediate);
        c.put("n_routed_experts", Math.max(s.experts, 1));
        c.put("num_experts_per_tok", Math.max(s.topK, 1));
        if (s.sharedExperts > 0) {
            c.put("n_shared_experts", s.sharedExperts);
        } else {
            c.putNull("n_shared_experts");
        }
        c.put("scoring_func", s.scoring);
        c.put("topk_method", s.topkMethod);
        c.put("n_group", s.nGroup);
        c.put("topk_group", s.topkGroup);
        if (s.normTopk != null) {
            c.put("norm_topk_prob", s.normTopk);
        }
        if (s.routedScaling != null) {
            c.put("routed_scaling_factor", s.routedScaling);
        } else {
            c.putNull("routed_scaling_factor");
        }
        if (s.fp8()) {
            ObjectNode q = c.putObject("quantization_config");
            q.put("quant_method", "fp8");
            q.put("fmt", "e4m3");
            q.put("activation_scheme", "dynamic");
            q.putArray("weight_block_size").add(s.fp8Block[0]).add(s.fp8Block[1]);
            ArrayNode ig = q.putArray("ignored_layers");
            ignored.forEach(ig::add);
        }
    }

    private void llamaConfig(ObjectNode c) {
        Spec s = spec;
        c.put("rms_norm_eps", s.eps);
        switch (s.arch) {
            case MIXTRAL -> {
                c.put("num_local_experts", s.experts);
                c.put("num_experts_per_tok", s.topK);
                if (s.window > 0) {
                    c.put("sliding_window", s.window);
                } else {
                    c.putNull("sliding_window");
                }
            }
            case QWEN2_MOE, QWEN3_MOE -> {
                c.put("num_experts", s.experts);
                c.put("num_experts_per_tok", s.topK);
                c.put("moe_intermediate_size", s.moeIntermediate);
                c.put("decoder_sparse_step", 1);
                ArrayNode only = c.putArray("mlp_only_layers");
                if (s.mlpOnly != null) {
                    for (int l : s.mlpOnly) {
                        only.add(l);
                    }
                }
                if (s.normTopk != null) {
                    c.put("norm_topk_prob", s.normTopk);
                }
                if (s.arch == Arch.QWEN2_MOE) {
                    c.put("shared_expert_intermediate_size", s.sharedExperts * s.moeIntermediate);
                }
            }
            default -> { }
        }
        if (s.arch == Arch.QWEN2 || s.arch == Arch.QWEN3 || s.arch == Arch.QWEN2_MOE || s.arch == Arch.QWEN3_MOE) {
            c.put("use_sliding_window", false);
            c.put("sliding_window", 4096);
        }
        c.put("attention_bias", s.arch == Arch.QWEN2 || s.arch == Arch.QWEN2_MOE);
    }

    // --- number formats ----------------------------------------------------------------------------

    /** bfloat16, round to nearest even (values here are finite). */
    static int toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        return (bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16;
    }

    /** IEEE half, round to nearest; magnitudes below the smallest normal (6.1e-5) become 0, none here overflow. */
    static int toF16(float f) {
        int sign = f < 0 ? 0x8000 : 0;
        double a = Math.abs((double) f);
        if (a < 0x1p-14) {
            return sign;
        }
        int e = Math.getExponent(a);
        long m = Math.round((a / Math.scalb(1.0, e) - 1.0) * 1024);
        if (m == 1024) {
            e++;
            m = 0;
        }
        if (e > 15) {
            throw new IllegalArgumentException(f + " overflows half precision");
        }
        return sign | ((e + 15) << 10) | (int) m;
    }

    /** The finite E4M3 code nearest to {@code x} (saturating at +-448). */
    static int nearestE4m3(double x) {
        int best = 0;
        double bestErr = Double.MAX_VALUE;
        for (int code = 0; code < 0x7F; code++) { // 0x7F is NaN
            double err = Math.abs(E4M3[code] - Math.abs(x));
            if (err < bestErr) {
                bestErr = err;
                best = code;
            }
        }
        return x < 0 ? best | 0x80 : best;
    }

    /**
     * The values of the positive E4M3 codes 0..0x7E (OCP FP8 E4M3 fn: 4 exponent bits of bias 7, 3 mantissa
     * bits), computed here rather than taken from the engine's decoder so that the generator stays independent.
     */
    private static final double[] E4M3 = new double[0x7F];

    static {
        for (int code = 0; code < E4M3.length; code++) {
            int exp = code >> 3;
            int man = code & 7;
            E4M3[code] = exp == 0 ? man / 8.0 * Math.pow(2, -6) : (1 + man / 8.0) * Math.pow(2, exp - 7);
        }
    }

    private static boolean contains(int[] a, int x) {
        if (a != null) {
            for (int v : a) {
                if (v == x) {
                    return true;
                }
            }
        }
        return false;
    }
}
