package io.xpuflow.runtime.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import io.xpuflow.runtime.checkpoint.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A deliberately slow and simple forward pass, written from the model math (see
 * shared/notes/mimo-v2-architecture.md and the Hugging Face modelling code of Llama, Mixtral, Qwen2,
 * Qwen3 and their MoE variants), to check the engine on checkpoints it has never seen.
 *
 * <p>Everything is double precision; weights are widened exactly from their stored type (FP8 codes
 * are decoded here and multiplied by their block's {@code weight_scale_inv}). There is no KV cache:
 * every call recomputes the whole prompt, each query attending over the keys its mask allows.
 * Supports MiMo-V2 (split q/k/v), Llama, Mistral/Mixtral, Qwen2, Qwen3, Qwen2-MoE and Qwen3-MoE
 * configs.
 */
public final class ReferenceModel {

    /** Attention of one layer. {@code window} 0: full causal; else query i sees keys i-window+1..i. */
    record Attention(int heads, int kvHeads, int headDim, int vHeadDim, int rotaryDim, double[] invFreq,
                     int window, boolean sink, double valueScale, boolean bias, boolean qkNorm) {}

    /** Routed experts of one layer; {@code sharedInter} 0 for no shared expert. */
    record Moe(int experts, int topK, boolean softmax, int groups, int topkGroups, boolean correctionBias,
               boolean normTopk, double scaling, int sharedInter, boolean sharedGate, boolean mixtralNames) {}

    /** One decoder layer; {@code moe} null for a dense SwiGLU. */
    record Layer(String prefix, Attention attn, Moe moe, String ffnNorm) {}

    /**
     * One routing decision.
     *
     * @param experts chosen experts, best (highest selection score) first
     * @param weights their mixing weights
     * @param margin the smallest gap between two selection values (or group scores) whose order
     *     decided the choice: a gap below rounding error makes the choice a coin toss
     * @param biasChanged the correction bias changed the chosen set
     * @param groupsChanged the group limit changed the chosen set
     */
    public record Route(int[] experts, double[] weights, double margin, boolean biasChanged, boolean groupsChanged) {}

    /** Logits at every position, the final normed hidden states, and the routing of every MoE layer. */
    public record Forward(double[][] logits, double[][] normedHidden, List<Route[]> routes) {}

    private final JsonNode cfg;
    private final String arch;
    private final int vocab;
    private final int hidden;
    private final double eps;
    private final boolean tie;
    private final List<Layer> layers = new ArrayList<>();
    private final Layer mtp;
    private final Map<String, double[]> w = new HashMap<>();

    private ReferenceModel(Path dir) {
        try {
            cfg = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            for (TensorInfo t : f.tensors().values()) {
                if (t.name().endsWith("_scale_inv")) {
                    continue;
                }
                if (t.dtype() == DType.F8_E4M3) {
                    w.put(t.name(), dequantise(f, t));
                } else {
                    float[] v = f.readFloats(t.name());
                    double[] d = new double[v.length];
                    for (int i = 0; i < v.length; i++) {
                        d[i] = v[i];
                    }
                    w.put(t.name(), d);
                }
            }
        }
        arch = cfg.get("architectures").get(0).asText();
        vocab = cfg.get("vocab_size").asInt();
        hidden = cfg.get("hidden_size").asInt();
        tie = cfg.path("tie_word_embeddings").asBoolean(false);
        int n = cfg.get("num_hidden_layers").asInt();
        if (arch.startsWith("MiMoV2")) {
            eps = cfg.has("layernorm_epsilon") ? cfg.get("layernorm_epsilon").asDouble() : cfg.path("rms_norm_eps").asDouble(1e-5);
            for (int l = 0; l < n; l++) {
                boolean swa = cfg.has("hybrid_layer_pattern") && cfg.get("hybrid_layer_pattern").get(l).asInt() == 1;
                boolean moe = cfg.has("moe_layer_freq") && cfg.get("moe_layer_freq").get(l).asInt() == 1;
                layers.add(new Layer("model.layers." + l + ".", mimoAttention(swa), moe ? mimoMoe() : null,
                        "post_attention_layernorm.weight"));
            }
            mtp = w.containsKey("model.mtp.layers.0.eh_proj.weight")
                    ? new Layer("model.mtp.layers.0.", mimoAttention(true), null, "pre_mlp_layernorm.weight") : null;
        } else {
            eps = cfg.path("rms_norm_eps").asDouble(1e-6);
            for (int l = 0; l < n; l++) {
                layers.add(new Layer("model.layers." + l + ".", llamaAttention(), llamaMoe(l), "post_attention_layernorm.weight"));
            }
            mtp = null;
        }
    }

    public static ReferenceModel load(Path dir) {
        return new ReferenceModel(dir);
    }

    public int vocab() {
        return vocab;
    }

    public boolean hasMtp() {
        return mtp != null;
    }

    public int numMoeLayers() {
        return (int) layers.stream().filter(l -> l.moe() != null).count();
    }

    // --- configuration -----------------------------------------------------------------------------

    private Attention mimoAttention(boolean swa) {
        String p = swa ? "swa_" : "";
        int heads = intOr(p + "num_attention_heads", cfg.get("num_attention_heads").asInt());
        int kv = intOr(p + "num_key_value_heads", cfg.get("num_key_value_heads").asInt());
        int dim = intOr(p + "head_dim", cfg.get("head_dim").asInt());
        int vDim = intOr(p + "v_head_dim", intOr("v_head_dim", dim));
        double theta = cfg.has(p + "rope_theta") ? cfg.get(p + "rope_theta").asDouble() : cfg.path("rope_theta").asDouble(10000);
        int rot = rotaryDim(dim);
        int window = swa ? cfg.get("sliding_window").asInt() : 0;
        boolean sink = cfg.path(swa ? "add_swa_attention_sink_bias" : "add_full_attention_sink_bias").asBoolean(false);
        double vScale = cfg.path("attention_value_scale").asDouble(1.0);
        return new Attention(heads, kv, dim, vDim, rot, inverseFrequencies(theta, rot), window, sink, vScale, false, false);
    }

    private Moe mimoMoe() {
        int experts = cfg.get("n_routed_experts").asInt();
        int groups = intOr("n_group", 1);
        int shared = cfg.path("n_shared_experts").isNull() ? 0 : cfg.path("n_shared_experts").asInt(0);
        double scaling = cfg.path("routed_scaling_factor").isNumber() ? cfg.get("routed_scaling_factor").asDouble() : 1.0;
        return new Moe(experts, cfg.get("num_experts_per_tok").asInt(), cfg.path("scoring_func").asText("softmax").equals("softmax"),
                groups, intOr("topk_group", groups), cfg.path("topk_method").asText("greedy").equals("noaux_tc"),
                cfg.path("norm_topk_prob").asBoolean(true), scaling, shared * cfg.get("moe_intermediate_size").asInt(), false, false);
    }

    private Attention llamaAttention() {
        int heads = cfg.get("num_attention_heads").asInt();
        int kv = intOr("num_key_value_heads", heads);
        int dim = intOr("head_dim", hidden / heads);
        int rot = rotaryDim(dim);
        boolean mistralWindow = arch.equals("MistralForCausalLM") || arch.equals("MixtralForCausalLM");
        int window = mistralWindow && cfg.path("sliding_window").isInt() ? cfg.get("sliding_window").asInt() : 0;
        boolean bias = arch.startsWith("Qwen2") || cfg.path("attention_bias").asBoolean(false);
        boolean qkNorm = arch.startsWith("Qwen3");
        return new Attention(heads, kv, dim, dim, rot, inverseFrequencies(cfg.path("rope_theta").asDouble(10000), rot),
                window, false, 1.0, bias, qkNorm);
    }

    private Moe llamaMoe(int layer) {
        switch (arch) {
            case "MixtralForCausalLM":
                return new Moe(cfg.get("num_local_experts").asInt(), cfg.get("num_experts_per_tok").asInt(), true, 1, 1, false,
                        true, 1.0, 0, false, true);
            case "Qwen2MoeForCausalLM":
            case "Qwen3MoeForCausalLM": {
                boolean dense = false;
                for (JsonNode x : cfg.path("mlp_only_layers")) {
                    dense |= x.asInt() == layer;
                }
                int step = intOr("decoder_sparse_step", 1);
                if (dense || (layer + 1) % step != 0 || cfg.path("num_experts").asInt(0) == 0) {
                    return null;
                }
                boolean qwen2 = arch.startsWith("Qwen2");
                int shared = qwen2 ? cfg.path("shared_expert_intermediate_size").asInt(0) : 0;
                // both Hugging Face configs default norm_topk_prob to false
                return new Moe(cfg.get("num_experts").asInt(), cfg.get("num_experts_per_tok").asInt(), true, 1, 1, false,
                        cfg.path("norm_topk_prob").asBoolean(false), 1.0, shared, qwen2, false);
            }
            default:
                return null;
        }
    }

    private int rotaryDim(int headDim) {
        int rot = cfg.has("partial_rotary_factor") ? (int) (headDim * cfg.get("partial_rotary_factor").asDouble()) : headDim;
        if (rot % 2 != 0) {
            throw new IllegalArgumentException("odd rotary dim " + rot + ": rotate-half needs an even count");
        }
        return rot;
    }

    /** {@code theta^(-2i/rot)}, then Llama 3 frequency scaling when {@code rope_scaling} asks for it. */
    private double[] inverseFrequencies(double theta, int rot) {
        double[] inv = new double[rot / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(theta, 2.0 * i / rot);
        }
        JsonNode rs = cfg.path("rope_scaling");
        String type = rs.has("rope_type") ? rs.get("rope_type").asText() : rs.path("type").asText("default");
        if (type.equals("llama3")) {
            double factor = rs.get("factor").asDouble();
            double low = rs.get("low_freq_factor").asDouble();
            double high = rs.get("high_freq_factor").asDouble();
            double old = rs.get("original_max_position_embeddings").asDouble();
            for (int i = 0; i < inv.length; i++) {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > old / low) {          // low frequency: stretched
                    inv[i] /= factor;
                } else if (wavelen >= old / high) { // medium: interpolated
                    double smooth = (old / wavelen - low) / (high - low);
                    inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                }                                   // high frequency: unchanged
            }
        } else if (!type.equals("default")) {
            throw new IllegalArgumentException("rope_scaling " + type + " is not in the reference");
        }
        return inv;
    }

    private int intOr(String key, int fallback) {
        JsonNode n = cfg.get(key);
        return n == null || n.isNull() ? fallback : n.asInt();
    }

    // --- forward -----------------------------------------------------------------------------------

    /** The whole prompt at once: logits and normed hidden state at every position, and the routing. */
    public Forward forward(int[] ids) {
        int t = ids.length;
        double[][] x = new double[t][];
        for (int i = 0; i < t; i++) {
            x[i] = row("model.embed_tokens.weight", ids[i]);
        }
        List<Route[]> routes = new ArrayList<>();
        for (Layer layer : layers) {
            Route[] r = layer.moe() != null ? new Route[t] : null;
            block(layer, x, r);
            if (r != null) {
                routes.add(r);
            }
        }
        double[][] normed = new double[t][];
        double[][] logits = new double[t][];
        for (int i = 0; i < t; i++) {
            normed[i] = rmsNorm(x[i], w.get("model.norm.weight"));
            logits[i] = lmHead(normed[i]);
        }
        return new Forward(logits, normed, routes);
    }

    /**
     * MTP layer 0 over the prompt: row j combines the embedding of token j+1 with the main model's
     * normed hidden state at j, sits at position j and attends over MTP rows 0..j (window applies).
     */
    public double[][] mtpLogits(int[] ids, double[][] normedHidden) {
        String p = mtp.prefix();
        int n = ids.length - 1;
        double[][] x = new double[n][];
        for (int j = 0; j < n; j++) {
            double[] e = rmsNorm(row("model.embed_tokens.weight", ids[j + 1]), w.get(p + "enorm.weight"));
            double[] g = rmsNorm(normedHidden[j], w.get(p + "hnorm.weight"));
            double[] eg = Arrays.copyOf(e, 2 * hidden);
            System.arraycopy(g, 0, eg, hidden, hidden);
            x[j] = matvec(w.get(p + "eh_proj.weight"), eg);
        }
        block(mtp, x, null);
        double[][] logits = new double[n][];
        for (int j = 0; j < n; j++) {
            logits[j] = lmHead(rmsNorm(x[j], w.get(p + "final_layernorm.weight")));
        }
        return logits;
    }

    /** Pre-norm residual block, in place: x += attn(norm(x)); x += ffn(norm(x)). */
    private void block(Layer layer, double[][] x, Route[] routes) {
        String p = layer.prefix();
        int t = x.length;
        double[][] h = new double[t][];
        for (int i = 0; i < t; i++) {
            h[i] = rmsNorm(x[i], w.get(p + "input_layernorm.weight"));
        }
        double[][] a = attention(p, layer.attn(), h);
        for (int i = 0; i < t; i++) {
            add(x[i], a[i], 1.0);
            double[] hn = rmsNorm(x[i], w.get(p + layer.ffnNorm()));
            if (layer.moe() == null) {
                add(x[i], swiglu(p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight", hn), 1.0);
            } else {
                add(x[i], moe(p, layer.moe(), hn, routes, i), 1.0);
            }
        }
    }

    private double[][] attention(String p, Attention at, double[][] h) {
        int t = h.length;
        int d = at.headDim();
        int dv = at.vHeadDim();
        double[][][] q = new double[t][][];
        double[][][] k = new double[t][][];
        double[][][] v = new double[t][][];
        for (int i = 0; i < t; i++) {
            q[i] = heads(project(p + "self_attn.q_proj", h[i], at.bias()), at.heads(), d);
            k[i] = heads(project(p + "self_attn.k_proj", h[i], at.bias()), at.kvHeads(), d);
            v[i] = heads(project(p + "self_attn.v_proj", h[i], at.bias()), at.kvHeads(), dv);
            for (int hd = 0; hd < at.heads(); hd++) {
                if (at.qkNorm()) {
                    q[i][hd] = rmsNorm(q[i][hd], w.get(p + "self_attn.q_norm.weight"));
                }
                rope(q[i][hd], i, at);
            }
            for (int g = 0; g < at.kvHeads(); g++) {
                if (at.qkNorm()) {
                    k[i][g] = rmsNorm(k[i][g], w.get(p + "self_attn.k_norm.weight"));
                }
                rope(k[i][g], i, at);
                for (int c = 0; c < dv; c++) {
                    v[i][g][c] *= at.valueScale();
                }
            }
        }
        double scale = 1.0 / Math.sqrt(d);
        double[] sinks = at.sink() ? w.get(p + "self_attn.attention_sink_bias") : null;
        int group = at.heads() / at.kvHeads();
        double[][] out = new double[t][];
        for (int i = 0; i < t; i++) {
            double[] o = new double[at.heads() * dv];
            int first = at.window() > 0 ? Math.max(0, i - at.window() + 1) : 0;
            for (int hd = 0; hd < at.heads(); hd++) {
                int g = hd / group;
                double[] s = new double[i - first + 1];
                double max = sinks != null ? sinks[hd] : Double.NEGATIVE_INFINITY;
                for (int j = first; j <= i; j++) {
                    s[j - first] = dot(q[i][hd], k[j][g]) * scale;
                    max = Math.max(max, s[j - first]);
                }
                double den = sinks != null ? Math.exp(sinks[hd] - max) : 0; // the sink takes weight, carries no value
                for (int j = 0; j < s.length; j++) {
                    s[j] = Math.exp(s[j] - max);
                    den += s[j];
                }
                for (int j = first; j <= i; j++) {
                    for (int c = 0; c < dv; c++) {
                        o[hd * dv + c] += s[j - first] / den * v[j][g][c];
                    }
                }
            }
            out[i] = matvec(w.get(p + "self_attn.o_proj.weight"), o);
        }
        return out;
    }

    /** Rotate-half (NeoX) RoPE on the first rotaryDim dims: pair (c, c + rot/2) turns by pos * invFreq[c]. */
    private static void rope(double[] x, int pos, Attention at) {
        int half = at.rotaryDim() / 2;
        for (int c = 0; c < half; c++) {
            double angle = pos * at.invFreq()[c];
            double cos = Math.cos(angle);
            double sin = Math.sin(angle);
            double a = x[c];
            double b = x[c + half];
            x[c] = a * cos - b * sin;
            x[c + half] = b * cos + a * sin;
        }
    }

    private double[] moe(String p, Moe m, double[] h, Route[] routes, int token) {
        String base = p + (m.mixtralNames() ? "block_sparse_moe." : "mlp.");
        double[] z = matvec(w.get(base + "gate.weight"), h);
        double[] s = new double[m.experts()];
        if (m.softmax()) {
            double max = Arrays.stream(z).max().orElseThrow();
            double sum = 0;
            for (int e = 0; e < s.length; e++) {
                s[e] = Math.exp(z[e] - max);
                sum += s[e];
            }
            for (int e = 0; e < s.length; e++) {
                s[e] /= sum;
            }
        } else {
            for (int e = 0; e < s.length; e++) {
                s[e] = 1 / (1 + Math.exp(-z[e]));
            }
        }
        double[] sel = s.clone();
        if (m.correctionBias()) {
            double[] b = w.get(base + "gate.e_score_correction_bias");
            for (int e = 0; e < sel.length; e++) {
                sel[e] += b[e];
            }
        }
        double[] margin = {Double.POSITIVE_INFINITY};
        double[] eligible = sel.clone();
        if (m.groups() > 1) {
            // a group's score: the sum of its two best biased scores (noaux_tc), else its best score;
            // experts outside the topk_group best groups cannot be chosen
            int size = m.experts() / m.groups();
            double[] gs = new double[m.groups()];
            for (int g = 0; g < m.groups(); g++) {
                double[] members = Arrays.copyOfRange(sel, g * size, (g + 1) * size);
                int[] order = topK(members, members.length, null);
                gs[g] = m.correctionBias() ? members[order[0]] + members[order[1]] : members[order[0]];
            }
            int[] kept = topK(gs, m.topkGroups(), margin);
            boolean[] keep = new boolean[m.groups()];
            for (int g : kept) {
                keep[g] = true;
            }
            for (int e = 0; e < eligible.length; e++) {
                if (!keep[e / size]) {
                    eligible[e] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        int[] chosen = topK(eligible, m.topK(), margin);
        double[] weights = new double[chosen.length];
        double sum = 0;
        for (int j = 0; j < chosen.length; j++) {
            weights[j] = s[chosen[j]]; // unbiased scores
            sum += weights[j];
        }
        for (int j = 0; j < chosen.length; j++) {
            weights[j] = (m.normTopk() ? weights[j] / sum : weights[j]) * m.scaling();
        }
        double[] y = new double[hidden];
        for (int j = 0; j < chosen.length; j++) {
            String x = base + "experts." + chosen[j] + ".";
            double[] e = m.mixtralNames() ? swiglu(x + "w1.weight", x + "w3.weight", x + "w2.weight", h)
                    : swiglu(x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight", h);
            add(y, e, weights[j]);
        }
        if (m.sharedInter() > 0) {
            String x = p + (m.sharedGate() ? "mlp.shared_expert." : "mlp.shared_experts.");
            double[] e = swiglu(x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight", h);
            double gate = m.sharedGate() ? 1 / (1 + Math.exp(-dot(w.get(p + "mlp.shared_expert_gate.weight"), h))) : 1.0;
            add(y, e, gate);
        }
        if (routes != null) {
            routes[token] = new Route(chosen, weights, margin[0],
                    !sameSet(topK(s, m.topK(), null), topK(sel, m.topK(), null)),
                    !sameSet(chosen, topK(sel, m.topK(), null)));
        }
        return y;
    }

    private double[] swiglu(String gate, String up, String down, double[] h) {
        double[] g = matvec(w.get(gate), h);
        double[] u = matvec(w.get(up), h);
        for (int i = 0; i < g.length; i++) {
            g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        }
        return matvec(w.get(down), g);
    }

    private double[] lmHead(double[] normed) {
        return matvec(w.get(tie ? "model.embed_tokens.weight" : "lm_head.weight"), normed);
    }

    // --- small helpers -----------------------------------------------------------------------------

    /**
     * Indices of the k largest values, largest first (ties to the lower index). When {@code margin}
     * is given it is lowered to the smallest gap between neighbours among the k+1 largest finite
     * values: the order inside the choice and the choice itself hang on those gaps.
     */
    static int[] topK(double[] v, int k, double[] margin) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (a, b) -> v[a] != v[b] ? Double.compare(v[b], v[a]) : Integer.compare(a, b));
        if (margin != null) {
            for (int j = 0; j < Math.min(k, v.length - 1); j++) {
                if (v[idx[j + 1]] != Double.NEGATIVE_INFINITY) {
                    margin[0] = Math.min(margin[0], v[idx[j]] - v[idx[j + 1]]);
                }
            }
        }
        int[] out = new int[k];
        for (int j = 0; j < k; j++) {
            out[j] = idx[j];
        }
        return out;
    }

    private static boolean sameSet(int[] a, int[] b) {
        int[] x = a.clone();
        int[] y = b.clone();
        Arrays.sort(x);
        Arrays.sort(y);
        return Arrays.equals(x, y);
    }

    private double[] project(String name, double[] h, boolean bias) {
        double[] y = matvec(w.get(name + ".weight"), h);
        if (bias) {
            add(y, w.get(name + ".bias"), 1.0);
        }
        return y;
    }

    private static double[][] heads(double[] flat, int n, int dim) {
        double[][] out = new double[n][];
        for (int i = 0; i < n; i++) {
            out[i] = Arrays.copyOfRange(flat, i * dim, (i + 1) * dim);
        }
        return out;
    }

    /** {@code y = W x} for W stored row-major [rows, x.length] (PyTorch Linear layout). */
    private static double[] matvec(double[] m, double[] x) {
        int cols = x.length;
        double[] y = new double[m.length / cols];
        for (int r = 0; r < y.length; r++) {
            double acc = 0;
            for (int c = 0; c < cols; c++) {
                acc += m[r * cols + c] * x[c];
            }
            y[r] = acc;
        }
        return y;
    }

    private double[] rmsNorm(double[] x, double[] weight) {
        double ms = 0;
        for (double v : x) {
            ms += v * v;
        }
        double inv = 1 / Math.sqrt(ms / x.length + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = weight[i] * x[i] * inv;
        }
        return y;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static void add(double[] acc, double[] x, double scale) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += scale * x[i];
        }
    }

    private double[] row(String name, int r) {
        return Arrays.copyOfRange(w.get(name), r * hidden, (r + 1) * hidden);
    }

    /** FP8 weight: {@code W[r][c] = code[r][c] * weight_scale_inv[r / br][c / bc]}, last blocks possibly partial. */
    private double[] dequantise(SafetensorsFile f, TensorInfo t) {
        int rows = (int) t.shape()[0];
        int cols = (int) t.shape()[1];
        JsonNode block = cfg.path("quantization_config").path("weight_block_size");
        int br = block.isArray() ? block.get(0).asInt() : 128;
        int bc = block.isArray() ? block.get(1).asInt() : 128;
        int scaleCols = (cols + bc - 1) / bc;
        float[] scale = f.readFloats(t.name() + "_scale_inv");
        if (scale.length != ((rows + br - 1) / br) * scaleCols) {
            throw new IllegalArgumentException(t.name() + ": " + scale.length + " scales for blocks " + br + "x" + bc);
        }
        ByteBuffer codes = f.data(t);
        double[] out = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = e4m3(codes.get(r * cols + c) & 0xFF) * scale[(r / br) * scaleCols + c / bc];
            }
        }
        return out;
    }

    /** OCP FP8 E4M3 (fn): sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN. */
    static double e4m3(int code) {
        int exp = (code >> 3) & 0xF;
        int man = code & 7;
        if (exp == 0xF && man == 7) {
            return Double.NaN;
        }
        double v = exp == 0 ? man / 8.0 * Math.pow(2, -6) : (1 + man / 8.0) * Math.pow(2, exp - 7);
        return (code & 0x80) != 0 ? -v : v;
    }
}
