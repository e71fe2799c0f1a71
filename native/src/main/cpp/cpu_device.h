// The CPU implementation of the device ABI: the model (weights copied into engine-owned memory when
// they are registered, so nothing reads the checkpoint's mapping once the model is loaded), the
// paged KV cache and the forward step. The exact mode decodes weights row by row from their stored
// dtype and keeps activations and sums in FP32; the fast formats pack weights once (packed.h).
#pragma once

#include <memory>
#include <vector>


#include "common.h"
#include "thread_pool.h"
#include "xpuflow/xpuflow.h"

struct xpu_device {
    explicit xpu_device(int threads) : pool(threads) {}
    xpu::ThreadPool pool;
};

namespace xpu {

// A weight as registered by the caller: row-major [rows, cols] in its stored dtype, held in
// engine-owned memory (shared by roles registered from the same source, e.g. tied embeddings).
struct Tensor {
    std::shared_ptr<const Buffer> storage, scale_storage;
    const void* source = nullptr;  // the caller's address, only to recognise a tensor registered twice
    const void* data = nullptr;     // into storage
    int dtype = XPU_DTYPE_F32;
    int64_t rows = 0, cols = 0;
    const float* scale = nullptr;  // FP8 only: [scale_rows, scale_cols], into scale_storage
    int64_t scale_rows = 0, scale_cols = 0, block_rows = 0, block_cols = 0;

    // fast formats: the matrix in its kernels' layout (packed.h); data stays null when only this is kept
    struct Packed {
        int format = XPU_WEIGHTS_EXACT;  // EXACT: not packed
        std::shared_ptr<const Buffer> data;
        int64_t pairs = 0, blocks = 0, panels = 0;  // BF16 pairs, INT8 blocks along k; panels along n
    } packed;

    bool present() const { return data != nullptr || packed.data != nullptr; }
    // row r (cols floats) -> dst; returns dst, or the row itself when it is stored as F32
    const float* row(int64_t r, float* dst) const;
};

struct Layer {
    xpu_layer_params p{};
    bool params_set = false;
    Tensor t[XPU_T_ROLE_COUNT];
    std::vector<Tensor> expert_gate, expert_up, expert_down;  // [num_experts]
    std::vector<float> inv_freq;                             // [rotary_dim / 2]
    // 1-D weights decoded to FP32 at finalize (norms, biases, sinks, router bias)
    std::vector<float> attn_norm, ffn_norm, q_bias, k_bias, v_bias, q_norm, k_norm, sink, router_bias;
    std::vector<float> mtp_enorm, mtp_hnorm, mtp_final_norm;
    int moe_index = -1;  // position among MoE layers (routing trace), -1 for dense
};

}  // namespace xpu

namespace xpu {
// The profiler's record of one op or one thread's work in it (the 8 fields of the ABI's events).
struct TraceEvent {
    int64_t op, layer, rows, bytes, flops, thread, start_ns, end_ns;
};
struct Trace {
    std::vector<TraceEvent> events;  // capacity reserved when tracing starts
    size_t capacity = 0;             // 0: off
    int64_t dropped = 0;
    int64_t op = XPU_OP_STEP, layer = -1;  // the op in progress, for the sections inside it
    SectionObserver observer;
    void add(const TraceEvent& e) {
        if (events.size() < capacity) events.push_back(e);
        else ++dropped;
    }
};
}  // namespace xpu

struct xpu_model {
    xpu_device* dev = nullptr;
    xpu::Trace trace;
    float* taps = nullptr;  // see xpu_model_set_taps
    int64_t tap_rows = 0;
    xpu_model_params p{};
    xpu::Tensor embed, final_norm_t, lm_head;
    std::vector<float> final_norm;
    std::vector<xpu::Layer> layers;  // num_layers decoder layers, then num_mtp_layers MTP layers
    bool finalized = false;
    int64_t num_moe_layers = 0;
    int64_t max_top_k = 0;

    int64_t weight_bytes = 0;  // engine-owned weight memory

    // step scratch, sized once at finalize from max_tokens_per_step (no allocation per step)
    struct Scratch {
        std::vector<float> x, h, q, k, v, attn, tmp, gate, up, act, router, moe_out, moe_in, moe_y;
        std::vector<float> normed, mtp_x, mtp_h, mtp_in, logits_in;
        // fast formats: matmul inputs in BF16 (act_a: the input of a section; act_b: the FFN activation;
        // moe_in_b: the experts' gathered rows), rows act_stride elements apart
        std::vector<uint16_t> act_a, act_b, moe_in_b;
        int64_t act_stride = 0;
        std::vector<int32_t> row_slots, row_fill;  // MoE: each row's slots in increasing expert order
        std::vector<int32_t> row_seq, row_pos, topk_ids;
        // MTP rows: each row's sequence and position (resolved at validation); per sequence of the step, the
        // last MTP position seen and the last block slot checked
        std::vector<int32_t> mtp_seq, mtp_pos, mtp_last_pos, mtp_blk_checked;
        std::vector<float> topk_w;
        std::vector<int32_t> expert_rows;   // rows routed to each expert, grouped
        std::vector<int32_t> expert_offsets, expert_cursor;
        std::vector<float> expert_row_w;
    } s;
};

struct xpu_kv_cache {
    xpu_model* model = nullptr;
    int64_t block_size = 0;
    std::vector<int64_t> num_blocks;  // per group
    // per layer (decoder + MTP): K [blocks, block_size, kv_heads, dqk], V [blocks, block_size, kv_heads, dv]
    std::vector<void*> k, v;  // FP32, or BF16 (kv_dtype), in the attention kernel's layout (packed.h)
    std::vector<void*> allocations;
    ~xpu_kv_cache();
};

namespace xpu {
// Rows of a step whose MoE runs at once: bounds the scratch of the experts' inputs and outputs (top_k
// slots per row), and lets a 512-token prefill step stream each expert's weights once.
constexpr int64_t kMoeChunkRows = 512;
// True for the matrices that fast formats pack (projections, FFN and expert matrices, LM head, MTP's
// eh_proj); embeddings, routers and 1-D weights keep their stored dtype.
bool packed_role(int role);
// Packs the caller's weight (stored dtype `t.dtype`, FP8 scales `scale`) into t.packed in the model's format.
void pack(xpu_model* m, Tensor& t, const void* data, const float* scale);
void model_finalize(xpu_model* m);
void kv_create(xpu_model* m, int64_t block_size, const int64_t* num_blocks_per_group, xpu_kv_cache* kv);
int64_t kv_block_bytes(const xpu_model* m, int64_t group, int64_t block_size);
void step(xpu_model* m, xpu_kv_cache* kv, const xpu_batch* b);
// The roofline probe (roofline.cpp): read GB/s, FP32 GFLOP/s, BF16 GFLOP/s, INT8 GOP/s.
void roofline(xpu_device* dev, int64_t read_bytes, double out[4]);
}  // namespace xpu
