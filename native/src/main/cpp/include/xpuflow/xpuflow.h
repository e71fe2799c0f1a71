/*
 * XPUFlow device ABI: the one flat C interface between the Java engine and native compute.
 *
 * Everything that touches weights or KV memory lives below this header; everything that decides
 * (which requests run, which KV blocks they own, when to stop) lives above it, in Java.
 *
 * Conventions
 *  - Every call returns an xpu_status; on failure xpu_last_error() returns a message for the calling
 *    thread that names the operation and the offending value. No C++ exception crosses this header.
 *  - Parameter blocks (xpu_model_params, xpu_layer_params, xpu_batch) consist only of 8-byte fields
 *    (int64_t, double, pointers) so that Java can fill them in a direct ByteBuffer at fixed offsets
 *    without per-field JNI calls. xpu_abi_struct_size() lets the Java side verify its layout.
 *  - Matrices are row-major [rows, cols] and used as y = x @ W^T (PyTorch nn.Linear convention).
 *  - The caller validates lengths and indices before a call; the device re-checks what is cheap.
 *  - A device is one backend instance. The CPU is the only backend today; the calls are designed so that
 *    a GPU backend (CUDA) can implement them too.
 */
#ifndef XPUFLOW_XPUFLOW_H
#define XPUFLOW_XPUFLOW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XPU_API_VERSION 3

typedef enum xpu_status {
    XPU_OK = 0,
    XPU_ERR_INVALID_ARGUMENT = 1,
    XPU_ERR_IO = 2,
    XPU_ERR_OUT_OF_MEMORY = 3,
    XPU_ERR_UNSUPPORTED = 4,
    XPU_ERR_INTERNAL = 5
} xpu_status;

/* Weight storage types, as in safetensors. */
typedef enum xpu_dtype {
    XPU_DTYPE_F32 = 0,
    XPU_DTYPE_BF16 = 1,
    XPU_DTYPE_F16 = 2,
    XPU_DTYPE_F8_E4M3 = 3 /* OCP float8_e4m3fn; value = code * scale[r / block_rows][c / block_cols] */
} xpu_dtype;

typedef struct xpu_device xpu_device;
typedef struct xpu_model xpu_model;
typedef struct xpu_kv_cache xpu_kv_cache;

/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
const char* xpu_last_error(void);

/* Instruction set the CPU kernels dispatch to: "avx512bf16" (AVX-512 with BF16 and VNNI), "avx512",
 * "avx2" or "scalar". */
const char* xpu_cpu_isa(void);

/* Forces a kernel path (one of the names above), for tests and benchmarks. Fails if the CPU lacks it. */
xpu_status xpu_cpu_force_isa(const char* isa);

/* Why the XPUFLOW_ISA environment variable was not followed (an unknown name, or one this CPU lacks),
 * naming what was chosen instead; "" when it was followed or is not set. */
const char* xpu_cpu_isa_warning(void);

/* ---------------------------------------------------------------------------------------------
 * Read-only file mapping (safetensors weights). The mapping lives until xpu_unmap_file.
 * ------------------------------------------------------------------------------------------- */
xpu_status xpu_map_file(const char* path, int64_t* out_addr, int64_t* out_size);
xpu_status xpu_unmap_file(int64_t addr, int64_t size);

/* ---------------------------------------------------------------------------------------------
 * Devices
 * ------------------------------------------------------------------------------------------- */

/* kind: "cpu". num_threads: kernel threads inside one step, 1..1024. The caller decides how many cores
 * it may use (a container's or a Flink slot's share), so there is no "all cores" default here. */
xpu_status xpu_device_open(const char* kind, int64_t num_threads, xpu_device** out);
xpu_status xpu_device_close(xpu_device* dev);

/* The machine's limits measured with the device's threads (see roofline.cpp): out[0] read bandwidth in
 * GB/s over a buffer of read_bytes (at least 64 MiB: far larger than the caches), out[1] FP32 FMA
 * GFLOP/s, out[2] BF16 vdpbf16ps GFLOP/s, out[3] INT8 vpdpbusd GOP/s (0 where the CPU lacks the
 * instructions). Takes about a second. */
xpu_status xpu_roofline(xpu_device* dev, int64_t read_bytes, double* out4);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

typedef enum xpu_attn_kind { XPU_ATTN_FULL = 0, XPU_ATTN_SLIDING = 1 } xpu_attn_kind;
typedef enum xpu_ffn_kind { XPU_FFN_DENSE = 0, XPU_FFN_MOE = 1 } xpu_ffn_kind;
typedef enum xpu_scoring { XPU_SCORING_SOFTMAX = 0, XPU_SCORING_SIGMOID = 1 } xpu_scoring;

/* Weights are converted once, when registered, into the layout the kernels of the format read. */
typedef enum xpu_weight_format {
    XPU_WEIGHTS_EXACT = 0,  /* reference: stored dtype decoded to FP32 row by row; FP32 activations and sums */
    XPU_WEIGHTS_BF16 = 1,   /* BF16 weights and activations, FP32 accumulation */
    XPU_WEIGHTS_INT8 = 2    /* INT8 weights, scale per 32 along K; activations quantised per row on the fly */
} xpu_weight_format;

typedef enum xpu_kv_dtype { XPU_KV_F32 = 0, XPU_KV_BF16 = 1 } xpu_kv_dtype;

typedef struct xpu_model_params {
    int64_t api_version;        /* XPU_API_VERSION */
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t num_layers;         /* decoder layers; MTP layers follow them as layers num_layers.. */
    int64_t num_mtp_layers;
    int64_t num_kv_groups;      /* layers sharing one block table form a group */
    int64_t max_tokens_per_step; /* sizes the step scratch buffers */
    int64_t max_seqs_per_step;
    double norm_eps;            /* RMSNorm epsilon */
    int64_t weight_format;      /* xpu_weight_format: what matrix products compute in */
    int64_t kv_dtype;           /* xpu_kv_dtype: element type of the KV cache */
} xpu_model_params;

typedef struct xpu_layer_params {
    int64_t attn_kind;          /* xpu_attn_kind */
    int64_t window;             /* sliding layers: a query at p sees keys p-window+1 .. p */
    int64_t num_heads;
    int64_t num_kv_heads;
    int64_t head_dim_qk;
    int64_t head_dim_v;
    int64_t rotary_dim;         /* NeoX rotate-half on the first rotary_dim dims of q and k */
    int64_t has_sink;           /* per-head sink logit (XPU_T_SINK) */
    int64_t has_qkv_bias;       /* XPU_T_Q_BIAS / K_BIAS / V_BIAS present */
    int64_t has_qk_norm;        /* per-head RMSNorm of q and k before RoPE (Qwen3) */
    int64_t kv_group;           /* index of the block table this layer reads */
    int64_t ffn_kind;           /* xpu_ffn_kind */
    int64_t intermediate_size;  /* dense FFN */
    int64_t num_experts;
    int64_t top_k;
    int64_t moe_intermediate_size;
    int64_t scoring;            /* xpu_scoring */
    int64_t num_expert_groups;  /* group-limited routing: groups of experts ... */
    int64_t topk_groups;        /* ... of which the best topk_groups stay eligible */
    int64_t norm_topk_prob;     /* renormalise the selected weights to sum 1 */
    int64_t has_correction_bias; /* XPU_T_ROUTER_BIAS: added to scores for selection only */
    int64_t shared_intermediate_size; /* 0: no shared expert */
    int64_t has_shared_expert_gate;   /* sigmoid gate on the shared expert output (Qwen2-MoE) */
    double attn_scale;          /* multiplies q.k */
    double value_scale;         /* multiplies v before it is cached */
    double routed_scaling;      /* multiplies the routed expert sum */
} xpu_layer_params;

/* Roles of weight tensors. Per-layer roles take a layer index (MTP layers: num_layers + i);
 * XPU_T_EXPERT_* also take an expert index. */
typedef enum xpu_tensor_role {
    XPU_T_EMBED = 0,            /* [vocab, hidden] */
    XPU_T_FINAL_NORM = 1,       /* [hidden] */
    XPU_T_LM_HEAD = 2,          /* [vocab, hidden] (may alias XPU_T_EMBED) */
    XPU_T_ATTN_NORM = 3,        /* [hidden] */
    XPU_T_Q = 4,                /* [heads*dqk, hidden] */
    XPU_T_K = 5,                /* [kv_heads*dqk, hidden] */
    XPU_T_V = 6,                /* [kv_heads*dv, hidden] */
    XPU_T_O = 7,                /* [hidden, heads*dv] */
    XPU_T_Q_BIAS = 8,
    XPU_T_K_BIAS = 9,
    XPU_T_V_BIAS = 10,
    XPU_T_Q_NORM = 11,          /* [dqk] */
    XPU_T_K_NORM = 12,          /* [dqk] */
    XPU_T_SINK = 13,            /* [heads] */
    XPU_T_FFN_NORM = 14,        /* [hidden] */
    XPU_T_GATE = 15,            /* dense [inter, hidden] */
    XPU_T_UP = 16,              /* dense [inter, hidden] */
    XPU_T_DOWN = 17,            /* dense [hidden, inter] */
    XPU_T_ROUTER = 18,          /* [experts, hidden] */
    XPU_T_ROUTER_BIAS = 19,     /* [experts] */
    XPU_T_EXPERT_GATE = 20,     /* [moe_inter, hidden] */
    XPU_T_EXPERT_UP = 21,
    XPU_T_EXPERT_DOWN = 22,     /* [hidden, moe_inter] */
    XPU_T_SHARED_GATE = 23,     /* [shared_inter, hidden] */
    XPU_T_SHARED_UP = 24,
    XPU_T_SHARED_DOWN = 25,
    XPU_T_SHARED_EXPERT_GATE = 26, /* [1, hidden] */
    XPU_T_MTP_ENORM = 27,       /* [hidden] */
    XPU_T_MTP_HNORM = 28,       /* [hidden] */
    XPU_T_MTP_EH_PROJ = 29,     /* [hidden, 2*hidden]: input is [enorm(embed), hnorm(hidden)] */
    XPU_T_MTP_FINAL_NORM = 30,  /* [hidden] */
    XPU_T_ROLE_COUNT = 31
} xpu_tensor_role;

/* Creates an empty model; then set every layer, every tensor and the RoPE frequencies, then finalize. */
xpu_status xpu_model_create(xpu_device* dev, const xpu_model_params* params, xpu_model** out);
xpu_status xpu_model_set_layer(xpu_model* m, int64_t layer, const xpu_layer_params* params);
/* Registers a weight. The device copies data (and scale) into memory it owns, so the caller may
 * unmap them once the model is finalized. 1-D tensors use rows = 1. FP8 takes a [scale_rows, scale_cols] F32 scale with blocks of
 * block_rows x block_cols (the last block of a row or column may be partial). */
xpu_status xpu_model_set_tensor(xpu_model* m, int64_t role, int64_t layer, int64_t expert,
                                const void* data, int64_t dtype, int64_t rows, int64_t cols,
                                const float* scale, int64_t scale_rows, int64_t scale_cols,
                                int64_t block_rows, int64_t block_cols);
/* Inverse frequencies of the rotary embedding of one layer ([rotary_dim / 2], copied). */
xpu_status xpu_model_set_rope(xpu_model* m, int64_t layer, const float* inv_freq, int64_t n);
/* Checks that every tensor the layers need is present with the right shape. */
xpu_status xpu_model_finalize(xpu_model* m);
xpu_status xpu_model_free(xpu_model* m);
/* Bytes of weight memory the model owns (copies and packed forms of the registered weights). */
xpu_status xpu_model_weight_bytes(xpu_model* m, int64_t* out_bytes);

/* ---------------------------------------------------------------------------------------------
 * Profiling. With tracing on, every step records one event per op, and one per thread for each
 * parallel section inside it. An event is 8 int64: op (xpu_op), layer (-1: none), rows, bytes
 * (weights and KV read), flops, thread (-1: the op itself; 0..threads-1: one thread's work in one
 * section of that op), start_ns, end_ns (a steady clock). Off by default; costs nothing when off.
 * ------------------------------------------------------------------------------------------- */
typedef enum xpu_op {
    XPU_OP_STEP = 0,       /* the whole step */
    XPU_OP_EMBED = 1,
    XPU_OP_NORM = 2,       /* RMS norms of the residual stream */
    XPU_OP_QKV = 3,        /* q, k, v projections */
    XPU_OP_QK_POST = 4,    /* biases, q/k norms, RoPE */
    XPU_OP_ATTENTION = 5,  /* scores, softmax and values over the KV cache */
    XPU_OP_O_PROJ = 6,
    XPU_OP_FFN = 7,        /* dense SwiGLU */
    XPU_OP_ROUTER = 8,     /* router logits and top-k */
    XPU_OP_EXPERTS = 9,    /* routed experts, gathered and combined */
    XPU_OP_SHARED = 10,    /* shared experts */
    XPU_OP_LM_HEAD = 11,
    XPU_OP_MTP_IN = 12,    /* MTP's norms and eh_proj */
    XPU_OP_RESIDUAL = 13,
    XPU_OP_COUNT = 14
} xpu_op;

/* Taps, for comparing weight formats layer by layer: with buf non-null, every following step of at
 * most max_rows rows writes, for each decoder layer l, its attention output (after o_proj) to
 * buf + (2l) * max_rows * hidden and its FFN or MoE output to buf + (2l + 1) * max_rows * hidden, and
 * the final normed hidden states to buf + 2 * num_layers * max_rows * hidden, (rows, hidden) each.
 * The buffer (2 * num_layers + 1) * max_rows * hidden floats stays the caller's; null turns taps off. */
xpu_status xpu_model_set_taps(xpu_model* m, float* buf, int64_t max_rows);

/* capacity > 0: record up to capacity events until they are read (later ones are counted as dropped);
 * 0: stop recording and forget what was recorded. */
xpu_status xpu_model_trace(xpu_model* m, int64_t capacity);
/* Moves up to max_events recorded events (8 int64 each) to out, oldest first; *out_count how many,
 * *out_dropped how many were lost to a full buffer since the last read. */
xpu_status xpu_model_trace_read(xpu_model* m, int64_t* out, int64_t max_events, int64_t* out_count,
                                int64_t* out_dropped);

/* ---------------------------------------------------------------------------------------------
 * Paged KV cache. Blocks of block_size tokens; each KV group has its own block pool, and every
 * layer of the group stores its K [block, slot, kv_heads, dqk] and V [block, slot, kv_heads, dv]
 * under the same block id. Memory is allocated here, once.
 * ------------------------------------------------------------------------------------------- */
xpu_status xpu_kv_create(xpu_model* m, int64_t block_size, const int64_t* num_blocks_per_group,
                         xpu_kv_cache** out);
/* Bytes one block of a group takes over all layers of that group. */
xpu_status xpu_kv_block_bytes(xpu_model* m, int64_t group, int64_t block_size, int64_t* out_bytes);
xpu_status xpu_kv_free(xpu_kv_cache* kv);

/* ---------------------------------------------------------------------------------------------
 * One engine step over a batch of sequences. Token rows of sequence s are
 * seq_starts[s] .. seq_starts[s+1]-1, at consecutive positions starting at positions[seq_starts[s]].
 * Their K/V are written to the cache, then each row attends to every cached key of its sequence
 * that its mask allows (causal; sliding layers: the window).
 * ------------------------------------------------------------------------------------------- */
typedef struct xpu_batch {
    int64_t num_seqs;
    int64_t num_tokens;
    const int32_t* token_ids;      /* [num_tokens] */
    const int32_t* positions;      /* [num_tokens] */
    const int32_t* seq_starts;     /* [num_seqs + 1] */
    const int32_t* block_tables;   /* [num_kv_groups, num_seqs, max_blocks_per_seq]; -1: no block */
    int64_t max_blocks_per_seq;
    int64_t num_logit_rows;
    const int32_t* logit_rows;     /* [num_logit_rows] token rows whose logits are wanted */
    float* logits;                 /* [num_logit_rows, vocab] out */
    float* hidden_out;             /* optional [num_tokens, hidden] out: final normed hidden state */
    int32_t* expert_ids_out;       /* optional [num_moe_layers, num_tokens, top_k] out: routing trace */
    int64_t mtp_layer;             /* which MTP layer the MTP rows run through */
    int64_t num_mtp_rows;          /* MTP: an input hidden + the token after it -> draft logits */
    const int32_t* mtp_rows;       /* [num_mtp_rows] decoder rows (see below); may be null when both
                                      mtp_hidden_in and mtp_positions are given */
    const int32_t* mtp_next_tokens; /* [num_mtp_rows] the token that follows each MTP row */
    float* mtp_logits;             /* optional [num_mtp_rows, vocab] out; null: the LM head is skipped */
    /* --- chained MTP (API version 3) ---
     * MTP row i runs through MTP layer num_layers + mtp_layer with its own KV:
     *   input hidden: mtp_hidden_in[i] if mtp_hidden_in is non-null, else the final normed hidden of
     *                 decoder row mtp_rows[i] of this step;
     *   sequence, position: mtp_seqs[i], mtp_positions[i] if both are non-null, else those of decoder
     *                 row mtp_rows[i] (one of the two null and the other not is an error).
     * The row's K/V are written at that position of the MTP layer's KV (the block table of the layer's
     * KV group, as for the decoder rows), overwriting what an earlier step wrote there (a row recomputed
     * after a rejected draft), then it attends causally to the MTP layer's keys 0..position of its
     * sequence (the window for sliding layers); keys below the step's rows must have been written by
     * earlier steps. Positions of the MTP rows of one sequence must be strictly ascending.
     * An MTP-only step has num_tokens == 0: no decoder rows (token_ids, positions, seq_starts,
     * logit rows are not read; num_logit_rows must be 0), num_seqs >= 1 sequences only name block
     * tables, and every MTP row needs mtp_hidden_in, mtp_seqs and mtp_positions. */
    const float* mtp_hidden_in;    /* optional [num_mtp_rows, hidden]: each row's input hidden (it goes
                                      through the layer's hnorm), e.g. a decoder row's hidden_out of an
                                      earlier step, or the previous MTP layer's mtp_hidden_out */
    float* mtp_hidden_out;         /* optional [num_mtp_rows, hidden] out: the MTP layer's output after its
                                      final_layernorm (what its logits come from; the next chained layer's
                                      input); may be the same buffer as mtp_hidden_in */
    const int32_t* mtp_seqs;       /* optional [num_mtp_rows] sequence index in [0, num_seqs) */
    const int32_t* mtp_positions;  /* optional [num_mtp_rows] RoPE and KV position, >= 0 */
} xpu_batch;

xpu_status xpu_step(xpu_model* m, xpu_kv_cache* kv, const xpu_batch* batch);

/* Layout check for Java: sizeof of "model_params", "layer_params" or "batch"; -1 if unknown. */
int64_t xpu_abi_struct_size(const char* name);

#ifdef __cplusplus
}
#endif
#endif /* XPUFLOW_XPUFLOW_H */
