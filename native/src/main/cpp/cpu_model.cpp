// Model assembly (finalize) and the paged KV cache of the CPU device.
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu_device.h"
#include "kernels.h"
#include "packed.h"

xpu_kv_cache::~xpu_kv_cache() {
    for (size_t i = 0; i < allocations.size(); ++i) {
        if (allocations[i] != nullptr) std::free(allocations[i]);
    }
}

namespace xpu {

const float* Tensor::row(int64_t r, float* dst) const {
    const KernelTable& k = kernels();
    switch (dtype) {
        case XPU_DTYPE_F32:
            return static_cast<const float*>(data) + r * cols;
        case XPU_DTYPE_BF16:
            k.bf16_to_f32(static_cast<const uint16_t*>(data) + r * cols, dst, cols);
            return dst;
        case XPU_DTYPE_F16:
            k.f16_to_f32(static_cast<const uint16_t*>(data) + r * cols, dst, cols);
            return dst;
        case XPU_DTYPE_F8_E4M3:
            k.fp8_to_f32(static_cast<const uint8_t*>(data) + r * cols, dst, cols,
                         scale + (r / block_rows) * scale_cols, block_cols);
            return dst;
        default:
            fail(XPU_ERR_INTERNAL, "Tensor::row: unsupported dtype %d", dtype);
    }
}

bool packed_role(int role) {
    switch (role) {
        case XPU_T_Q: case XPU_T_K: case XPU_T_V: case XPU_T_O:
        case XPU_T_GATE: case XPU_T_UP: case XPU_T_DOWN:
        case XPU_T_EXPERT_GATE: case XPU_T_EXPERT_UP: case XPU_T_EXPERT_DOWN:
        case XPU_T_SHARED_GATE: case XPU_T_SHARED_UP: case XPU_T_SHARED_DOWN:
        case XPU_T_LM_HEAD: case XPU_T_MTP_EH_PROJ:
            return true;
        default:
            return false;
    }
}

void pack(xpu_model* m, Tensor& t, const void* data, const float* scale) {
    // The caller's memory is a view into a checkpoint, and safetensors puts a tensor at any byte offset (an F32
    // scale after an FP8 weight of odd size, a BF16 norm after a one-byte tensor). Rows are read through typed
    // pointers, which need their alignment: a misaligned weight or scale is copied to aligned memory first.
    // (own() copies with memcpy, which needs none.)
    const size_t elem = t.dtype == XPU_DTYPE_F32 ? 4 : t.dtype == XPU_DTYPE_F8_E4M3 ? 1 : 2;
    Buffer aligned_data, aligned_scale;
    if (reinterpret_cast<uintptr_t>(data) % elem != 0) {
        aligned_data = Buffer(static_cast<size_t>(t.rows * t.cols) * elem);
        std::memcpy(aligned_data.data(), data, aligned_data.size());
        data = aligned_data.data();
    }
    if (scale != nullptr && t.dtype == XPU_DTYPE_F8_E4M3 && reinterpret_cast<uintptr_t>(scale) % alignof(float) != 0) {
        aligned_scale = Buffer(static_cast<size_t>(t.scale_rows * t.scale_cols) * sizeof(float));
        std::memcpy(aligned_scale.data(), scale, aligned_scale.size());
        scale = static_cast<const float*>(aligned_scale.data());
    }
    Tensor source = t;  // a view of the caller's memory, decoded row by row
    source.data = data;
    source.scale = scale;
    auto& P = t.packed;
    P.format = static_cast<int>(m->p.weight_format);
    P.pairs = pairs_for(t.cols);
    P.blocks = q8_blocks_for(t.cols);
    P.panels = panels_for(t.rows);
    const bool int8 = P.format == XPU_WEIGHTS_INT8;
    const int64_t bytes = int8 ? packed_q8_bytes(t.rows, t.cols)
                               : packed_bf16_elements(t.rows, t.cols) * int64_t(sizeof(uint16_t));
    auto buffer = std::make_shared<Buffer>(static_cast<size_t>(bytes));
    std::memset(buffer->data(), 0, buffer->size());
    void* out = buffer->data();
    m->dev->pool.parallel_for(t.rows, 64, [&](int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(t.cols));
        for (int64_t r = b; r < e; ++r) {
            const float* src = source.row(r, row.data());
            if (int8) pack_q8_row(src, t.cols, r, static_cast<uint8_t*>(out));
            else pack_bf16_row(src, t.cols, r, static_cast<uint16_t*>(out));
        }
    });
    m->weight_bytes += static_cast<int64_t>(buffer->size());
    P.data = std::move(buffer);
    t.data = nullptr;
    t.scale = nullptr;
}

namespace {

const char* role_name(int role) {
    static const char* names[XPU_T_ROLE_COUNT] = {
        "embed", "final_norm", "lm_head", "attn_norm", "q", "k", "v", "o", "q_bias", "k_bias",
        "v_bias", "q_norm", "k_norm", "sink", "ffn_norm", "gate", "up", "down", "router",
        "router_bias", "expert_gate", "expert_up", "expert_down", "shared_gate", "shared_up",
        "shared_down", "shared_expert_gate", "mtp_enorm", "mtp_hnorm", "mtp_eh_proj", "mtp_final_norm"};
    return role >= 0 && role < XPU_T_ROLE_COUNT ? names[role] : "?";
}

void require(const Tensor& t, int64_t layer, int role, int64_t rows, int64_t cols, int64_t expert = -1) {
    if (!t.present()) {
        if (expert >= 0) fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld expert %ld: tensor '%s' was not set", (long)layer, (long)expert, role_name(role));
        fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: tensor '%s' was not set", (long)layer, role_name(role));
    }
    // 1-D weights may be registered as [1, n] or [n, 1]
    const bool vector_ok = rows == 1 && t.rows * t.cols == cols;
    if (!(t.rows == rows && t.cols == cols) && !vector_ok) {
        fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: tensor '%s' has shape [%ld, %ld], expected [%ld, %ld]",
             (long)layer, role_name(role), (long)t.rows, (long)t.cols, (long)rows, (long)cols);
    }
}

std::vector<float> decode_vector(const Tensor& t) {
    const int64_t n = t.rows * t.cols;
    std::vector<float> out(static_cast<size_t>(n));
    if (t.dtype == XPU_DTYPE_F8_E4M3) fail(XPU_ERR_UNSUPPORTED, "1-D tensors cannot be FP8");
    Tensor flat = t;
    flat.rows = 1;
    flat.cols = n;
    const float* src = flat.row(0, out.data());
    if (src != out.data()) std::copy(src, src + n, out.begin());
    return out;
}

void check_positive(int64_t v, int64_t layer, const char* what) {
    if (v <= 0) fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: %s must be positive, was %ld", (long)layer, what, (long)v);
}

}  // namespace

void model_finalize(xpu_model* m) {
    const auto& p = m->p;
    const int64_t H = p.hidden_size;
    require(m->embed, -1, XPU_T_EMBED, p.vocab_size, H);
    require(m->lm_head, -1, XPU_T_LM_HEAD, p.vocab_size, H);
    require(m->final_norm_t, -1, XPU_T_FINAL_NORM, 1, H);
    m->final_norm = decode_vector(m->final_norm_t);

    int64_t max_q = 0, max_k = 0, max_v = 0, max_attn = 0, max_inter = 0, max_experts = 0;
    m->num_moe_layers = 0;
    m->max_top_k = 0;
    for (int64_t li = 0; li < static_cast<int64_t>(m->layers.size()); ++li) {
        auto& L = m->layers[li];
        auto& lp = L.p;
        const bool mtp = li >= p.num_layers;
        if (!L.params_set) fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: parameters were not set", (long)li);
        check_positive(lp.num_heads, li, "num_heads");
        check_positive(lp.num_kv_heads, li, "num_kv_heads");
        check_positive(lp.head_dim_qk, li, "head_dim_qk");
        check_positive(lp.head_dim_v, li, "head_dim_v");
        if (lp.num_heads % lp.num_kv_heads != 0) {
            fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: num_heads %ld is not a multiple of num_kv_heads %ld",
                 (long)li, (long)lp.num_heads, (long)lp.num_kv_heads);
        }
        if (lp.rotary_dim < 0 || lp.rotary_dim > lp.head_dim_qk || lp.rotary_dim % 2 != 0) {
            fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: rotary_dim %ld must be even and within head_dim_qk %ld",
                 (long)li, (long)lp.rotary_dim, (long)lp.head_dim_qk);
        }
        if (static_cast<int64_t>(L.inv_freq.size()) != lp.rotary_dim / 2) {
            fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: %zu RoPE frequencies set, expected %ld",
                 (long)li, L.inv_freq.size(), (long)(lp.rotary_dim / 2));
        }
        if (lp.attn_kind == XPU_ATTN_SLIDING) check_positive(lp.window, li, "window");
        if (lp.kv_group < 0 || lp.kv_group >= p.num_kv_groups) {
            fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: kv_group %ld outside [0, %ld)", (long)li, (long)lp.kv_group, (long)p.num_kv_groups);
        }
        const int64_t nq = lp.num_heads * lp.head_dim_qk, nk = lp.num_kv_heads * lp.head_dim_qk;
        const int64_t nv = lp.num_kv_heads * lp.head_dim_v, no = lp.num_heads * lp.head_dim_v;
        require(L.t[XPU_T_ATTN_NORM], li, XPU_T_ATTN_NORM, 1, H);
        require(L.t[XPU_T_Q], li, XPU_T_Q, nq, H);
        require(L.t[XPU_T_K], li, XPU_T_K, nk, H);
        require(L.t[XPU_T_V], li, XPU_T_V, nv, H);
        require(L.t[XPU_T_O], li, XPU_T_O, H, no);
        require(L.t[XPU_T_FFN_NORM], li, XPU_T_FFN_NORM, 1, H);
        L.attn_norm = decode_vector(L.t[XPU_T_ATTN_NORM]);
        L.ffn_norm = decode_vector(L.t[XPU_T_FFN_NORM]);
        if (lp.has_qkv_bias) {
            require(L.t[XPU_T_Q_BIAS], li, XPU_T_Q_BIAS, 1, nq);
            require(L.t[XPU_T_K_BIAS], li, XPU_T_K_BIAS, 1, nk);
            require(L.t[XPU_T_V_BIAS], li, XPU_T_V_BIAS, 1, nv);
            L.q_bias = decode_vector(L.t[XPU_T_Q_BIAS]);
            L.k_bias = decode_vector(L.t[XPU_T_K_BIAS]);
            L.v_bias = decode_vector(L.t[XPU_T_V_BIAS]);
        }
        if (lp.has_qk_norm) {
            require(L.t[XPU_T_Q_NORM], li, XPU_T_Q_NORM, 1, lp.head_dim_qk);
            require(L.t[XPU_T_K_NORM], li, XPU_T_K_NORM, 1, lp.head_dim_qk);
            L.q_norm = decode_vector(L.t[XPU_T_Q_NORM]);
            L.k_norm = decode_vector(L.t[XPU_T_K_NORM]);
        }
        if (lp.has_sink) {
            require(L.t[XPU_T_SINK], li, XPU_T_SINK, 1, lp.num_heads);
            L.sink = decode_vector(L.t[XPU_T_SINK]);
        }
        if (mtp) {
            require(L.t[XPU_T_MTP_ENORM], li, XPU_T_MTP_ENORM, 1, H);
            require(L.t[XPU_T_MTP_HNORM], li, XPU_T_MTP_HNORM, 1, H);
            require(L.t[XPU_T_MTP_EH_PROJ], li, XPU_T_MTP_EH_PROJ, H, 2 * H);
            require(L.t[XPU_T_MTP_FINAL_NORM], li, XPU_T_MTP_FINAL_NORM, 1, H);
            L.mtp_enorm = decode_vector(L.t[XPU_T_MTP_ENORM]);
            L.mtp_hnorm = decode_vector(L.t[XPU_T_MTP_HNORM]);
            L.mtp_final_norm = decode_vector(L.t[XPU_T_MTP_FINAL_NORM]);
        }
        max_q = std::max(max_q, nq);
        max_k = std::max(max_k, nk);
        max_v = std::max(max_v, nv);
        max_attn = std::max(max_attn, no);
        if (lp.ffn_kind == XPU_FFN_DENSE) {
            check_positive(lp.intermediate_size, li, "intermediate_size");
            require(L.t[XPU_T_GATE], li, XPU_T_GATE, lp.intermediate_size, H);
            require(L.t[XPU_T_UP], li, XPU_T_UP, lp.intermediate_size, H);
            require(L.t[XPU_T_DOWN], li, XPU_T_DOWN, H, lp.intermediate_size);
            max_inter = std::max(max_inter, lp.intermediate_size);
        } else if (lp.ffn_kind == XPU_FFN_MOE) {
            if (mtp) fail(XPU_ERR_UNSUPPORTED, "layer %ld: MTP layers must have a dense FFN", (long)li);
            check_positive(lp.num_experts, li, "num_experts");
            check_positive(lp.moe_intermediate_size, li, "moe_intermediate_size");
            if (lp.top_k <= 0 || lp.top_k > lp.num_experts) {
                fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: top_k %ld outside [1, %ld]", (long)li, (long)lp.top_k, (long)lp.num_experts);
            }
            const int64_t groups = std::max<int64_t>(1, lp.num_expert_groups);
            if (lp.num_experts % groups != 0 || lp.topk_groups > groups ||
                (groups > 1 && (lp.topk_groups <= 0 || lp.topk_groups * (lp.num_experts / groups) < lp.top_k))) {
                fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: %ld experts cannot be routed in %ld groups keeping %ld for top-%ld",
                     (long)li, (long)lp.num_experts, (long)groups, (long)lp.topk_groups, (long)lp.top_k);
            }
            require(L.t[XPU_T_ROUTER], li, XPU_T_ROUTER, lp.num_experts, H);
            if (lp.has_correction_bias) {
                require(L.t[XPU_T_ROUTER_BIAS], li, XPU_T_ROUTER_BIAS, 1, lp.num_experts);
                L.router_bias = decode_vector(L.t[XPU_T_ROUTER_BIAS]);
            }
            if (static_cast<int64_t>(L.expert_gate.size()) != lp.num_experts) {
                L.expert_gate.resize(lp.num_experts);
                L.expert_up.resize(lp.num_experts);
                L.expert_down.resize(lp.num_experts);
            }
            for (int64_t e = 0; e < lp.num_experts; ++e) {
                require(L.expert_gate[e], li, XPU_T_EXPERT_GATE, lp.moe_intermediate_size, H, e);
                require(L.expert_up[e], li, XPU_T_EXPERT_UP, lp.moe_intermediate_size, H, e);
                require(L.expert_down[e], li, XPU_T_EXPERT_DOWN, H, lp.moe_intermediate_size, e);
            }
            if (lp.shared_intermediate_size > 0) {
                require(L.t[XPU_T_SHARED_GATE], li, XPU_T_SHARED_GATE, lp.shared_intermediate_size, H);
                require(L.t[XPU_T_SHARED_UP], li, XPU_T_SHARED_UP, lp.shared_intermediate_size, H);
                require(L.t[XPU_T_SHARED_DOWN], li, XPU_T_SHARED_DOWN, H, lp.shared_intermediate_size);
                if (lp.has_shared_expert_gate) require(L.t[XPU_T_SHARED_EXPERT_GATE], li, XPU_T_SHARED_EXPERT_GATE, 1, H);
                max_inter = std::max(max_inter, lp.shared_intermediate_size);
            }
            max_inter = std::max(max_inter, lp.moe_intermediate_size);
            max_experts = std::max(max_experts, lp.num_experts);
            m->max_top_k = std::max(m->max_top_k, lp.top_k);
            if (!mtp) L.moe_index = static_cast<int>(m->num_moe_layers++);
        } else {
            fail(XPU_ERR_INVALID_ARGUMENT, "layer %ld: unknown ffn_kind %ld", (long)li, (long)lp.ffn_kind);
        }
    }

    const size_t n = static_cast<size_t>(p.max_tokens_per_step);
    auto& s = m->s;
    const size_t Hs = static_cast<size_t>(H);
    s.x.assign(n * Hs, 0.f);
    s.h.assign(n * Hs, 0.f);
    s.tmp.assign(n * Hs, 0.f);
    s.normed.assign(n * Hs, 0.f);
    s.q.assign(n * max_q, 0.f);
    s.k.assign(n * max_k, 0.f);
    s.v.assign(n * max_v, 0.f);
    s.attn.assign(n * max_attn, 0.f);
    // MoE runs chunks of at most kMoeChunkRows rows, top_k slots each (cpu_forward.cpp)
    const size_t moe_rows = std::min<size_t>(n, kMoeChunkRows) * static_cast<size_t>(std::max<int64_t>(1, m->max_top_k));
    const size_t ffn_rows = std::max(n, moe_rows);
    s.gate.assign(ffn_rows * max_inter, 0.f);
    s.up.assign(ffn_rows * max_inter, 0.f);
    s.router.assign(n * max_experts, 0.f);
    s.moe_out.assign(n * Hs, 0.f);
    if (m->num_moe_layers > 0) {
        s.moe_in.assign(p.weight_format == XPU_WEIGHTS_EXACT ? moe_rows * Hs : 0, 0.f);
        s.moe_y.assign(moe_rows * Hs, 0.f);
        s.row_slots.assign(moe_rows, 0);
        s.row_fill.assign(std::min<size_t>(n, kMoeChunkRows), 0);
    }
    s.logits_in.assign(n * Hs, 0.f);
    if (p.num_mtp_layers > 0) {
        s.mtp_in.assign(n * 2 * Hs, 0.f);
        s.mtp_x.assign(n * Hs, 0.f);
        s.mtp_h.assign(n * Hs, 0.f);
        s.mtp_seq.assign(n, 0);
        s.mtp_pos.assign(n, 0);
        s.mtp_last_pos.assign(static_cast<size_t>(p.max_seqs_per_step), 0);
        s.mtp_blk_checked.assign(static_cast<size_t>(p.max_seqs_per_step), 0);
    }
    if (p.weight_format != XPU_WEIGHTS_EXACT) {
        // the widest matrix input: hidden, attention output, FFN intermediate or MTP's [embed, hidden]
        const int64_t widest = std::max({H, max_attn, max_inter, p.num_mtp_layers > 0 ? 2 * H : int64_t(0)});
        // rows start 64 bytes apart at most; a row holds `widest` BF16 values or its Q8 blocks
        s.act_stride = 2 * pairs_for(widest) + 32;
        static_assert(kQBlock + 8 <= 2 * kQBlock, "a Q8 row must fit in the BF16 row of the same width");
        const size_t stride = static_cast<size_t>(s.act_stride);
        s.act_a.assign(n * stride, 0);
        s.act_b.assign(ffn_rows * stride, 0);
        s.moe_in_b.assign(m->num_moe_layers > 0 ? moe_rows * stride : 0, 0);
    }
    s.row_seq.assign(n, 0);
    s.row_pos.assign(n, 0);
    const size_t routed = n * static_cast<size_t>(std::max<int64_t>(1, m->max_top_k));
    s.topk_ids.assign(routed, 0);
    s.topk_w.assign(routed, 0.f);
    s.expert_rows.assign(routed, 0);
    s.expert_row_w.assign(routed, 0.f);
    s.expert_offsets.assign(static_cast<size_t>(max_experts) + 1, 0);
    s.expert_cursor.assign(static_cast<size_t>(max_experts) + 1, 0);
    m->finalized = true;
}

int64_t kv_elem_bytes(const xpu_model* m) { return m->p.kv_dtype == XPU_KV_BF16 ? 2 : 4; }

int64_t kv_block_bytes(const xpu_model* m, int64_t group, int64_t block_size) {
    int64_t bytes = 0;
    for (const auto& L : m->layers) {
        if (L.p.kv_group == group) {
            bytes += block_size * L.p.num_kv_heads * (L.p.head_dim_qk + L.p.head_dim_v) * kv_elem_bytes(m);
        }
    }
    return bytes;
}

void kv_create(xpu_model* m, int64_t block_size, const int64_t* num_blocks_per_group, xpu_kv_cache* kv) {
    if (!m->finalized) fail(XPU_ERR_INVALID_ARGUMENT, "kv_create: model is not finalized");
    if (block_size <= 0) fail(XPU_ERR_INVALID_ARGUMENT, "kv_create: block_size must be positive, was %ld", (long)block_size);
    kv->model = m;
    kv->block_size = block_size;
    kv->num_blocks.assign(num_blocks_per_group, num_blocks_per_group + m->p.num_kv_groups);
    for (int64_t g = 0; g < m->p.num_kv_groups; ++g) {
        if (kv->num_blocks[g] < 0) fail(XPU_ERR_INVALID_ARGUMENT, "kv_create: group %ld has a negative block count", (long)g);
    }
    for (const auto& L : m->layers) {
        const int64_t blocks = kv->num_blocks[L.p.kv_group];
        int64_t slots = 0, k_elems = 0, v_elems = 0;
        if (__builtin_mul_overflow(blocks, block_size, &slots) || __builtin_mul_overflow(slots, L.p.num_kv_heads, &slots) ||
            __builtin_mul_overflow(slots, L.p.head_dim_qk, &k_elems) ||
            __builtin_mul_overflow(slots, L.p.head_dim_v, &v_elems) || k_elems > (int64_t(1) << 58) ||
            v_elems > (int64_t(1) << 58)) {
            fail(XPU_ERR_INVALID_ARGUMENT, "kv_create: %ld blocks of %ld tokens overflow the KV cache size", (long)blocks,
                 (long)block_size);
        }
        const size_t esz = static_cast<size_t>(kv_elem_bytes(m));
        void* k = std::aligned_alloc(64, std::max<size_t>(64, (size_t(k_elems) * esz + 63) / 64 * 64));
        kv->allocations.push_back(k);
        void* v = std::aligned_alloc(64, std::max<size_t>(64, (size_t(v_elems) * esz + 63) / 64 * 64));
        kv->allocations.push_back(v);
        if (k == nullptr || v == nullptr) {
            fail(XPU_ERR_OUT_OF_MEMORY, "kv_create: cannot allocate %ld bytes of KV cache", (long)((k_elems + v_elems) * int64_t(esz)));
        }
        kv->k.push_back(k);
        kv->v.push_back(v);
    }
}

}  // namespace xpu
