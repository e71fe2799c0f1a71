// The forward step of the CPU device: one call computes every layer for a batch of token rows that
// belong to several sequences, reading and writing the paged KV cache.
//
// Shapes (T = rows in the step, H = hidden size):
//   x      (T, H)        residual stream
//   h      (T, H)        normed input of the current sub-layer
//   q      (T, heads*dqk), k (T, kv_heads*dqk), v (T, kv_heads*dv)
//   attn   (T, heads*dv) attention output before o_proj
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "cpu_device.h"
#include "kernels.h"
#include "packed.h"

namespace xpu {
namespace {

// ---- Profiling -----------------------------------------------------------------------------------
//
// One scope per op: with tracing on it records the op's event (and makes it the op that the thread
// pool's sections inside it are attributed to); with tracing off it does nothing but test a flag.
class OpScope {
public:
    OpScope(xpu_model* m, int64_t op, int64_t layer, int64_t rows) : m_(m->trace.capacity > 0 ? m : nullptr) {
        if (m_ == nullptr) return;
        prev_op_ = m_->trace.op;
        prev_layer_ = m_->trace.layer;
        m_->trace.op = op;
        m_->trace.layer = layer;
        e_ = TraceEvent{op, layer, rows, 0, 0, -1, now_ns(), 0};
    }
    ~OpScope() {
        if (m_ == nullptr) return;
        e_.end_ns = now_ns();
        m_->trace.add(e_);
        m_->trace.op = prev_op_;
        m_->trace.layer = prev_layer_;
    }
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;
    bool on() const { return m_ != nullptr; }
    void add(int64_t bytes, int64_t flops) {
        e_.bytes += bytes;
        e_.flops += flops;
    }

private:
    xpu_model* m_;
    int64_t prev_op_ = 0, prev_layer_ = -1;
    TraceEvent e_{};
};

// Bytes a product reads of weight w (its stored or packed form).
int64_t weight_bytes_of(const Tensor& w) {
    if (w.packed.data) return static_cast<int64_t>(w.packed.data->size());
    const int64_t per = w.dtype == XPU_DTYPE_F32 ? 4 : w.dtype == XPU_DTYPE_F8_E4M3 ? 1 : 2;
    return w.rows * w.cols * per;
}

// Installs the step's section observer while tracing is on; removes it however the step ends.
class SectionRecording {
public:
    SectionRecording(xpu_model* m, ThreadPool& pool) : pool_(pool), on_(m->trace.capacity > 0) {
        if (!on_) return;
        Trace& t = m->trace;
        t.observer = [&t](const Span* spans, int threads) {
            for (int i = 0; i < threads; ++i) {
                if (spans[i].end_ns != 0) t.add(TraceEvent{t.op, t.layer, 0, 0, 0, i, spans[i].start_ns, spans[i].end_ns});
            }
        };
        pool_.observe(&t.observer);
    }
    ~SectionRecording() {
        if (on_) pool_.observe(nullptr);
    }
    SectionRecording(const SectionRecording&) = delete;
    SectionRecording& operator=(const SectionRecording&) = delete;

private:
    ThreadPool& pool_;
    bool on_;
};

constexpr int64_t kRowGrain = 8;
constexpr int64_t kAttnRows = 8;  // rows of one sequence that attend together, at most  // weight rows per parallel chunk, at least

// ---- Matrix products ------------------------------------------------------------------------------
//
// A step's products run as jobs: one parallel section computes every weight that reads the same input
// (q, k and v; gate and up), threads taking units of output columns (64 for packed weights: a panel
// pair; 16 for exact ones). Work is split over columns only, never over k or rows, so a row's result
// is the same alone, in any batch and with any thread count. Products too small to pay for waking the
// other threads run on the calling thread.

constexpr int64_t kParallelMinMacs = int64_t(1) << 17;

// The rows a product reads: FP32 for exact weights; for packed ones the same rows in the weights'
// activation format (BF16 values, or Q8 blocks in 2 * lda bytes per row: packed.h).
struct MatIn {
    const float* x = nullptr;     // [rows, k], rows k apart
    const uint16_t* xb = nullptr;  // [rows, lda]
    int64_t lda = 0;
    int64_t rows = 0;
};

struct Job {
    const MatIn* in;
    const Tensor* w;
    float* y;
    int64_t ldy;
};

inline bool is_packed(const Tensor& w) { return w.packed.format != XPU_WEIGHTS_EXACT; }
inline int64_t unit_cols(const Tensor& w) { return is_packed(w) ? 2 * kPanel : 16; }
inline int64_t units_of(const Tensor& w) { return (w.rows + unit_cols(w) - 1) / unit_cols(w); }

// y[r][c] = in[r] . W[c] for the output columns [c0, c1) (c0 a multiple of unit_cols(W)).
void gemm_cols(const MatIn& in, const Tensor& W, int64_t c0, int64_t c1, float* y, int64_t ldy) {
    const KernelTable& kt = kernels();
    if (is_packed(W)) {
        const auto& P = W.packed;
        if (P.format == XPU_WEIGHTS_INT8) {
            kt.gemm_q8(reinterpret_cast<const uint8_t*>(in.xb), 2 * in.lda, in.rows,
                       static_cast<const uint8_t*>(P.data->data()), P.blocks, W.rows, c0 / kPanel, panels_for(c1), y,
                       ldy);
        } else {
            kt.gemm_bf16(in.xb, in.lda, in.rows, static_cast<const uint16_t*>(P.data->data()), P.pairs, W.rows,
                         c0 / kPanel, panels_for(c1), y, ldy);
        }
        return;
    }
    // exact: four weight rows decoded to FP32 at a time, run against every input row
    const int64_t K = W.cols, T = in.rows;
    thread_local std::vector<float> buf;
    if (static_cast<int64_t>(buf.size()) < 4 * K) buf.resize(static_cast<size_t>(4 * K));
    int64_t n = c0;
    for (; n + 4 <= c1; n += 4) {
        const float* w0 = W.row(n, buf.data());
        const float* w1 = W.row(n + 1, buf.data() + K);
        const float* w2 = W.row(n + 2, buf.data() + 2 * K);
        const float* w3 = W.row(n + 3, buf.data() + 3 * K);
        float out[4];
        for (int64_t t = 0; t < T; ++t) {
            kt.dot4_f32(in.x + t * K, w0, w1, w2, w3, K, out);
            float* yr = y + t * ldy + n;
            yr[0] = out[0]; yr[1] = out[1]; yr[2] = out[2]; yr[3] = out[3];
        }
    }
    for (; n < c1; ++n) {
        const float* w = W.row(n, buf.data());
        for (int64_t t = 0; t < T; ++t) y[t * ldy + n] = kt.dot_f32(in.x + t * K, w, K);
    }
}

// Runs fn(job, c0, c1) for every unit of output columns of every job, in one parallel section (on the
// calling thread alone when the jobs are small).
template <typename Fn>
void for_each_unit(ThreadPool& pool, const Job* jobs, int64_t njobs, Fn&& fn) {
    int64_t total = 0, macs = 0;
    for (int64_t j = 0; j < njobs; ++j) {
        total += units_of(*jobs[j].w);
        macs += jobs[j].in->rows * jobs[j].w->rows * jobs[j].w->cols;
    }
    pool.parallel_for(total, macs < kParallelMinMacs ? total : 1, [&](int64_t b, int64_t e) {
        int64_t j = 0, base = 0;
        for (int64_t u = b; u < e; ++u) {
            while (u >= base + units_of(*jobs[j].w)) base += units_of(*jobs[j++].w);
            const int64_t unit = unit_cols(*jobs[j].w);
            const int64_t c0 = (u - base) * unit;
            fn(jobs[j], c0, std::min(jobs[j].w->rows, c0 + unit));
        }
    });
}

void run_jobs_list(ThreadPool& pool, const Job* jobs, int64_t njobs) {
    for_each_unit(pool, jobs, njobs,
                  [](const Job& j, int64_t c0, int64_t c1) { gemm_cols(*j.in, *j.w, c0, c1, j.y, j.ldy); });
}

void run_jobs(ThreadPool& pool, std::initializer_list<Job> jobs) {
    run_jobs_list(pool, jobs.begin(), static_cast<int64_t>(jobs.size()));
}

// Elements between FP32 input rows for w (its k).
inline int64_t in_k(const MatIn&, const Tensor& w) { return w.cols; }

// Columns [c0, c1) of one input row x (FP32) in the activation format of packed weights `w` (k columns in
// all), into the row at `row` (its BF16 values, or its Q8 blocks: c0 a multiple of 32, whole blocks).
void convert_cols(const KernelTable& kt, const Tensor& w, const float* x, int64_t c0, int64_t c1, int64_t k,
                  uint16_t* row) {
    if (w.packed.format == XPU_WEIGHTS_INT8) {
        const Q8Row r = q8_row(row, q8_blocks_for(k));
        kt.quantize_q8(x + c0, c1 - c0, r.q + c0, r.d + c0 / kQBlock, r.corr + c0 / kQBlock);
        return;
    }
    kt.f32_to_bf16(x + c0, row + c0, c1 - c0);
    if (c1 == k && k % 2 != 0) row[k] = 0;  // odd k: the last pair's second half
}

// The input rows x (rows k apart) as a MatIn for `w`, converted to its activation format into `buf`
// when w is packed.
MatIn mat_in(ThreadPool& pool, xpu_model* m, const float* x, int64_t rows, int64_t k, const Tensor& w,
             uint16_t* buf) {
    MatIn in;
    in.x = x;
    in.rows = rows;
    if (is_packed(w)) {
        const int64_t lda = m->s.act_stride;
        const KernelTable& kt = kernels();
        pool.parallel_for(rows, rows * k < kParallelMinMacs / 4 ? rows : 16, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) convert_cols(kt, w, x + t * k, 0, k, k, buf + t * lda);
        });
        in.xb = buf;
        in.lda = lda;
    }
    return in;
}

// x (T, K) @ W (N, K)^T -> y (T, N), y rows ldy apart
void matmul(ThreadPool& pool, xpu_model* m, const float* x, int64_t T, const Tensor& W, float* y, int64_t ldy) {
    const MatIn in = mat_in(pool, m, x, T, W.cols, W, m->s.act_a.data());
    run_jobs(pool, {Job{&in, &W, y, ldy}});
}

// y = w * x / sqrt(mean(x^2) + eps), sum of squares in double
void rmsnorm(const float* x, const float* w, float* y, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const float inv = float(1.0 / std::sqrt(ss / double(n) + eps));
    for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * inv);
}

void rmsnorm_rows(ThreadPool& pool, const float* x, const float* w, float* y, int64_t rows, int64_t n, double eps) {
    pool.parallel_for(rows, 16, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) rmsnorm(x + r * n, w, y + r * n, n, eps);
    });
}

inline float silu(float g) { return g / (1.0f + std::exp(-g)); }

// The rotation of position pos: cos and sin of pos * inv_freq[i] for i < rotary_dim / 2, the angle formed
// in FP32 as the reference does, cos/sin then evaluated exactly. Computed once per row, used by every head.
void rope_angles(const float* inv_freq, int64_t rotary_dim, int32_t pos, float* cos_out, float* sin_out) {
    for (int64_t i = 0; i < rotary_dim / 2; ++i) {
        const float angle = float(pos) * inv_freq[i];
        cos_out[i] = float(std::cos(double(angle)));
        sin_out[i] = float(std::sin(double(angle)));
    }
}

// NeoX rotate-half on the first rotary_dim dims of one head vector
void rope(float* v, const float* cos_a, const float* sin_a, int64_t rotary_dim) {
    const int64_t half = rotary_dim / 2;
    for (int64_t i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cos_a[i] - x2 * sin_a[i];
        v[i + half] = x2 * cos_a[i] + x1 * sin_a[i];
    }
}

// Rows of one sub-batch (the decoder rows, or the MTP rows) with their sequence and position.
struct Rows {
    int64_t n;
    const int32_t* seq;  // [n] sequence index into the batch's block tables
    const int32_t* pos;  // [n] absolute position
};

struct StepContext {
    xpu_model* m;
    xpu_kv_cache* kv;
    const xpu_batch* b;
    ThreadPool& pool;
};

inline const int32_t* block_table(const StepContext& c, int64_t group, int64_t seq) {
    return c.b->block_tables + (group * c.b->num_seqs + seq) * c.b->max_blocks_per_seq;
}

// o_proj of the attention output rows s.attn (n, heads * dv) -> out (n, H)
void run_jobs_o(const StepContext& c, int64_t li, int64_t n, float* out) {
    xpu_model* m = c.m;
    matmul(c.pool, m, m->s.attn.data(), n, m->layers[li].t[XPU_T_O], out, m->p.hidden_size);
}

// Keys the rows attend to in a layer of this kind, summed over the rows.
int64_t attended_keys(const xpu_layer_params& P, const Rows& rows) {
    int64_t keys = 0;
    for (int64_t r = 0; r < rows.n; ++r) {
        const int64_t p = rows.pos[r];
        keys += P.attn_kind == XPU_ATTN_SLIDING ? std::min<int64_t>(p + 1, P.window) : p + 1;
    }
    return keys;
}

// Attention over the paged cache (packed.h layout, FP32 or BF16): K/V of the step written first, then each (row,
// KV head) runs its GQA group of query heads through the allowed keys block by block with an online
// softmax (attend_block); the sink logit joins the softmax at the end and carries no value.
void attention_kv(const StepContext& c, int64_t li, const Rows& rows) {
    xpu_model* m = c.m;
    const Layer& L = m->layers[li];
    const xpu_layer_params& P = L.p;
    auto& s = m->s;
    const int64_t n = rows.n;
    const int64_t Hq = P.num_heads, Hkv = P.num_kv_heads, dqk = P.head_dim_qk, dv = P.head_dim_v;
    const int64_t nq = Hq * dqk, nk = Hkv * dqk, nv = Hkv * dv, g = Hq / Hkv;
    const int64_t bs = c.kv->block_size;
    const bool bf16 = m->p.kv_dtype == XPU_KV_BF16;
    const int64_t esz = bf16 ? 2 : 4;
    char* kcache = static_cast<char*>(c.kv->k[li]);
    char* vcache = static_cast<char*>(c.kv->v[li]);
    const int64_t kblock = dqk * bs * esz, vblock = bs * dv * esz;  // bytes of one head's block
    for (int64_t r = 0; r < n; ++r) {
        const int32_t p = rows.pos[r];
        const int64_t block = block_table(c, P.kv_group, rows.seq[r])[p / bs], j = p % bs;
        for (int64_t hk = 0; hk < Hkv; ++hk) {
            const float* k = s.k.data() + r * nk + hk * dqk;
            const float* v = s.v.data() + r * nv + hk * dv;
            char* kb = kcache + (block * Hkv + hk) * kblock;
            char* vb = vcache + (block * Hkv + hk) * vblock + j * dv * esz;
            if (bf16) {
                for (int64_t d = 0; d < dqk; ++d) reinterpret_cast<uint16_t*>(kb)[d * bs + j] = f32_to_bf16(k[d]);
                for (int64_t d = 0; d < dv; ++d) reinterpret_cast<uint16_t*>(vb)[d] = f32_to_bf16(v[d]);
            } else {
                for (int64_t d = 0; d < dqk; ++d) reinterpret_cast<float*>(kb)[d * bs + j] = k[d];
                std::copy(v, v + dv, reinterpret_cast<float*>(vb));
            }
        }
    }
    const float scale = float(P.attn_scale);
    const bool sliding = P.attn_kind == XPU_ATTN_SLIDING;
    // multiply-adds of the keys the rows actually attend to: a short context stays on this thread (waking
    // the pool for a few microseconds of work cost a small model 10x its attention time)
    const int64_t work = attended_keys(P, rows) * Hq * (dqk + dv);
    // Rows of one sequence at ascending positions (a verification's or a prefill chunk's) go through the
    // blocks together, up to kAttnRows at a time: they share every K/V load, and each row still visits its
    // own blocks with its own key ranges, so its result is the one it gets alone (attend_rows).
    int32_t few[65];  // a step of up to 64 rows needs no heap (nor thread-local) scratch
    thread_local std::vector<int32_t> many;
    int32_t* starts = few;
    if (n > 64) {
        many.resize(static_cast<size_t>(n + 1));
        starts = many.data();  // (the lambda runs on pool threads: it names only this pointer)
    }
    int64_t groups = 0;
    for (int64_t r = 0; r < n; ++r) {
        const bool joins = r > 0 && r - starts[groups - 1] < kAttnRows && rows.seq[r] == rows.seq[r - 1] &&
                           rows.pos[r] > rows.pos[r - 1];
        if (!joins) starts[groups++] = int32_t(r);
    }
    starts[groups] = int32_t(n);
    c.pool.parallel_for(groups * Hkv, work < kParallelMinMacs ? groups * Hkv : 1, [&](int64_t b, int64_t e) {
        const KernelTable& kt = kernels();
        thread_local std::vector<float> qs, mx, l, acc;
        qs.resize(static_cast<size_t>(kAttnRows * g * dqk));
        mx.resize(static_cast<size_t>(kAttnRows * g));
        l.resize(static_cast<size_t>(kAttnRows * g));
        acc.resize(static_cast<size_t>(kAttnRows * g * dv));
        int64_t lo[kAttnRows], j0[kAttnRows], j1[kAttnRows];
        for (int64_t item = b; item < e; ++item) {
            const int64_t gi = item / Hkv, hk = item % Hkv;
            const int64_t r0 = starts[gi], nr = starts[gi + 1] - r0;
            const int32_t* table = block_table(c, P.kv_group, rows.seq[r0]);
            for (int64_t i = 0; i < nr; ++i) {
                const int32_t p = rows.pos[r0 + i];
                lo[i] = sliding ? std::max<int64_t>(0, int64_t(p) - P.window + 1) : 0;
                const float* q = s.q.data() + (r0 + i) * nq + hk * g * dqk;
                for (int64_t t = 0; t < g * dqk; ++t) qs[i * g * dqk + t] = q[t] * scale;
            }
            std::fill(mx.begin(), mx.begin() + nr * g, -std::numeric_limits<float>::infinity());
            std::fill(l.begin(), l.begin() + nr * g, 0.f);
            std::fill(acc.begin(), acc.begin() + nr * g * dv, 0.f);
            // positions ascend, so the rows that visit a block are a contiguous run [ra, rb)
            int64_t ra = 0, rb = 0;
            const int64_t last = rows.pos[r0 + nr - 1];
            for (int64_t blk = lo[0] / bs; blk <= last / bs; ++blk) {
                while (ra < nr && rows.pos[r0 + ra] / bs < blk) ++ra;
                while (rb < nr && lo[rb] / bs <= blk) ++rb;
                if (ra >= rb) continue;
                for (int64_t i = ra; i < rb; ++i) {
                    const int32_t p = rows.pos[r0 + i];
                    j0[i] = blk == lo[i] / bs ? lo[i] % bs : 0;
                    j1[i] = blk == p / bs ? p % bs + 1 : bs;
                }
                const int64_t id = table[blk];
                if (rb - ra == 1) {  // one row: the single-row kernel, without the rows' bookkeeping
                    kt.attend_block(qs.data() + ra * g * dqk, g, dqk, dv, kcache + (id * Hkv + hk) * kblock,
                                    vcache + (id * Hkv + hk) * vblock, bs, j0[ra], j1[ra], bf16, mx.data() + ra * g,
                                    l.data() + ra * g, acc.data() + ra * g * dv);
                    continue;
                }
                kt.attend_rows(qs.data() + ra * g * dqk, rb - ra, g, dqk, dv, kcache + (id * Hkv + hk) * kblock,
                               vcache + (id * Hkv + hk) * vblock, bs, j0 + ra, j1 + ra, bf16, mx.data() + ra * g,
                               l.data() + ra * g, acc.data() + ra * g * dv);
            }
            for (int64_t i = 0; i < nr; ++i) {
                const int64_t r = r0 + i;
                for (int64_t h = 0; h < g; ++h) {
                    const int64_t hi = i * g + h;
                    float norm;
                    if (P.has_sink) {
                        const float sink = L.sink[hk * g + h];
                        const float top = std::max(mx[hi], sink);
                        const float keep = std::exp(mx[hi] - top);
                        norm = keep / (l[hi] * keep + std::exp(sink - top));
                    } else {
                        norm = 1.0f / l[hi];
                    }
                    float* o = s.attn.data() + r * (Hq * dv) + (hk * g + h) * dv;
                    for (int64_t d = 0; d < dv; ++d) o[d] = acc[hi * dv + d] * norm;
                }
            }
        }
    });
}

// Self-attention of layer li over the rows; h (n, H) -> out (n, H) (o_proj applied).
void attention(const StepContext& c, int64_t li, const float* h, const Rows& rows, float* out) {
    xpu_model* m = c.m;
    const Layer& L = m->layers[li];
    const xpu_layer_params& P = L.p;
    auto& s = m->s;
    const int64_t n = rows.n, H = m->p.hidden_size;
    const int64_t Hq = P.num_heads, Hkv = P.num_kv_heads, dqk = P.head_dim_qk, dv = P.head_dim_v;
    const int64_t nq = Hq * dqk, nk = Hkv * dqk, nv = Hkv * dv;

    {
        OpScope op(m, XPU_OP_QKV, li, n);
        if (op.on()) {
            for (int role : {XPU_T_Q, XPU_T_K, XPU_T_V}) op.add(weight_bytes_of(L.t[role]), 2 * n * L.t[role].rows * H);
        }
        const MatIn in = mat_in(c.pool, m, h, n, H, L.t[XPU_T_Q], s.act_a.data());
        run_jobs(c.pool, {Job{&in, &L.t[XPU_T_Q], s.q.data(), nq}, Job{&in, &L.t[XPU_T_K], s.k.data(), nk},
                          Job{&in, &L.t[XPU_T_V], s.v.data(), nv}});
    }

    const float value_scale = float(P.value_scale);
    const double eps = m->p.norm_eps;
    // the attention's phases, one op each (emplace ends the previous one)
    std::optional<OpScope> phase;
    phase.emplace(m, XPU_OP_QK_POST, li, n);
    c.pool.parallel_for(n, n * (nq + nk) < 4096 ? n : 4, [&](int64_t b, int64_t e) {
        const KernelTable& kt = kernels();
        for (int64_t r = b; r < e; ++r) {
            float* q = s.q.data() + r * nq;
            float* k = s.k.data() + r * nk;
            float* v = s.v.data() + r * nv;
            if (P.has_qkv_bias) {
                kt.axpy_f32(1.0f, L.q_bias.data(), q, nq);
                kt.axpy_f32(1.0f, L.k_bias.data(), k, nk);
                kt.axpy_f32(1.0f, L.v_bias.data(), v, nv);
            }
            if (P.has_qk_norm) {
                for (int64_t hh = 0; hh < Hq; ++hh) rmsnorm(q + hh * dqk, L.q_norm.data(), q + hh * dqk, dqk, eps);
                for (int64_t hh = 0; hh < Hkv; ++hh) rmsnorm(k + hh * dqk, L.k_norm.data(), k + hh * dqk, dqk, eps);
            }
            if (P.rotary_dim > 0) {
                thread_local std::vector<float> cos_a, sin_a;
                cos_a.resize(static_cast<size_t>(P.rotary_dim / 2));
                sin_a.resize(cos_a.size());
                rope_angles(L.inv_freq.data(), P.rotary_dim, rows.pos[r], cos_a.data(), sin_a.data());
                for (int64_t hh = 0; hh < Hq; ++hh) rope(q + hh * dqk, cos_a.data(), sin_a.data(), P.rotary_dim);
                for (int64_t hh = 0; hh < Hkv; ++hh) rope(k + hh * dqk, cos_a.data(), sin_a.data(), P.rotary_dim);
            }
            if (value_scale != 1.0f) {
                for (int64_t i = 0; i < nv; ++i) v[i] *= value_scale;
            }
        }
    });

    phase.emplace(m, XPU_OP_ATTENTION, li, n);
    if (phase->on()) {
        // keys each row attends to, times the K and V bytes and the score and value flops of one key
        const int64_t esz = m->p.kv_dtype == XPU_KV_BF16 ? 2 : 4;
        const int64_t keys = attended_keys(P, rows);
        phase->add(keys * Hkv * (dqk + dv) * esz, keys * Hq * (dqk + dv) * 2);
    }
    attention_kv(c, li, rows);
    phase.emplace(m, XPU_OP_O_PROJ, li, n);
    phase->add(weight_bytes_of(L.t[XPU_T_O]), 2 * n * H * L.t[XPU_T_O].cols);
    run_jobs_o(c, li, n, out);
}

// SwiGLU: down(silu(gate h) * up h). Gate and up run in one section whose units also apply the
// activation to the columns they computed (and convert them to BF16 for a packed down projection); the
// down projection is the second section. Several FFNs at once (the experts of a MoE layer): group g
// reads rows [row0[g], row0[g] + rows[g]) of the inputs and writes the same rows of out.
struct Ffn {
    const Tensor* gate;
    const Tensor* up;
    const Tensor* down;
    int64_t row0, rows;
};

void swiglu_many(ThreadPool& pool, xpu_model* m, const MatIn& in, const Ffn* ffns, int64_t count, float* out) {
    auto& s = m->s;
    const int64_t H = m->p.hidden_size;
    const int64_t I = count > 0 ? ffns[0].gate->rows : 0;  // every FFN of one call has the same shape
    thread_local std::vector<MatIn> ins;  // grow to a high-water mark, then no allocation
    thread_local std::vector<Job> jobs;
    ins.resize(static_cast<size_t>(2 * count));
    jobs.resize(static_cast<size_t>(count));
    const bool packed_down = count > 0 && is_packed(*ffns[0].down);
    for (int64_t f = 0; f < count; ++f) {
        MatIn& gi = ins[static_cast<size_t>(f)];
        gi = in;
        gi.rows = ffns[f].rows;
        if (gi.x) gi.x = in.x + ffns[f].row0 * in_k(in, *ffns[f].gate);
        if (gi.xb) gi.xb = in.xb + ffns[f].row0 * in.lda;
        jobs[static_cast<size_t>(f)] = Job{&gi, ffns[f].gate, s.gate.data() + ffns[f].row0 * I, I};
    }
    const KernelTable& kt = kernels();
    const int64_t lda = s.act_stride;
    uint16_t* actb = s.act_b.data();
    // (the lambda runs on pool threads: it must not name the thread_local vectors, only these pointers)
    const Job* job0 = jobs.data();
    for_each_unit(pool, job0, count, [&](const Job& j, int64_t c0, int64_t c1) {
        const Ffn& f = ffns[&j - job0];
        float* g = j.y;
        float* u = s.up.data() + f.row0 * I;
        gemm_cols(*j.in, *f.gate, c0, c1, g, I);
        gemm_cols(*j.in, *f.up, c0, c1, u, I);
        for (int64_t r = 0; r < f.rows; ++r) {
            float* gr = g + r * I;
            const float* ur = u + r * I;
            if (packed_down) {
                kt.silu_mul_f32(gr + c0, ur + c0, c1 - c0);  // the fast formats' vector exp
            } else {
                for (int64_t i = c0; i < c1; ++i) gr[i] = silu(gr[i]) * ur[i];
            }
            if (packed_down) convert_cols(kt, *f.down, gr, c0, c1, I, actb + (f.row0 + r) * lda);
        }
    });
    for (int64_t f = 0; f < count; ++f) {
        MatIn& di = ins[static_cast<size_t>(count + f)];
        di.rows = ffns[f].rows;
        di.x = s.gate.data() + ffns[f].row0 * I;
        di.xb = packed_down ? actb + ffns[f].row0 * lda : nullptr;
        di.lda = lda;
        jobs[static_cast<size_t>(f)] = Job{&di, ffns[f].down, out + ffns[f].row0 * H, H};
    }
    run_jobs_list(pool, jobs.data(), count);
}

// SwiGLU on rows h (n, H) -> out (n, H)
void swiglu(ThreadPool& pool, xpu_model* m, const float* h, int64_t n, const Tensor& gate, const Tensor& up,
            const Tensor& down, float* out) {
    const MatIn in = mat_in(pool, m, h, n, m->p.hidden_size, gate, m->s.act_a.data());
    const Ffn f{&gate, &up, &down, 0, n};
    swiglu_many(pool, m, in, &f, 1, out);
}

// Selects top_k experts for one row. scores: routing scores; choice: scores used for selection;
// gscore and keep: scratch of num_expert_groups entries.
void route_row(const xpu_layer_params& P, const float* logits, const float* bias, float* scores,
               float* choice, float* gscore, uint8_t* keep, int32_t* ids, float* weights) {
    const int64_t E = P.num_experts, K = P.top_k;
    if (P.scoring == XPU_SCORING_SIGMOID) {
        for (int64_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    } else {
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t e = 0; e < E; ++e) mx = std::max(mx, logits[e]);
        double sum = 0;
        for (int64_t e = 0; e < E; ++e) { scores[e] = std::exp(logits[e] - mx); sum += scores[e]; }
        for (int64_t e = 0; e < E; ++e) scores[e] = float(scores[e] / sum);
    }
    for (int64_t e = 0; e < E; ++e) choice[e] = bias != nullptr ? scores[e] + bias[e] : scores[e];

    const int64_t G = std::max<int64_t>(1, P.num_expert_groups);
    if (G > 1 && P.topk_groups < G) {
        // group-limited routing: a group's score is the sum of its two best choices when a
        // correction bias is used (DeepSeek-V3 noaux_tc), else its best choice
        const int64_t per = E / G;
        for (int64_t g = 0; g < G; ++g) {
            float best = -std::numeric_limits<float>::infinity(), second = best;
            for (int64_t e = g * per; e < (g + 1) * per; ++e) {
                if (choice[e] > best) { second = best; best = choice[e]; }
                else if (choice[e] > second) second = choice[e];
            }
            gscore[g] = bias != nullptr && per >= 2 ? best + second : best;
            keep[g] = 0;
        }
        for (int64_t kept = 0; kept < P.topk_groups; ++kept) {
            int64_t arg = -1;
            for (int64_t g = 0; g < G; ++g) {
                if (!keep[g] && (arg < 0 || gscore[g] > gscore[arg])) arg = g;
            }
            keep[arg] = 1;
        }
        for (int64_t g = 0; g < G; ++g) {
            if (!keep[g]) {
                for (int64_t e = g * per; e < (g + 1) * per; ++e) choice[e] = -std::numeric_limits<float>::infinity();
            }
        }
    }
    // top-k by choice, best first, ties to the lower expert id
    for (int64_t k = 0; k < K; ++k) {
        int64_t arg = -1;
        for (int64_t e = 0; e < E; ++e) {
            bool taken = false;
            for (int64_t j = 0; j < k; ++j) taken |= ids[j] == e;
            if (taken) continue;
            if (arg < 0 || choice[e] > choice[arg]) arg = e;
        }
        ids[k] = int32_t(arg);
        weights[k] = scores[arg];
    }
    if (P.norm_topk_prob) {
        float sum = 0.f;
        for (int64_t k = 0; k < K; ++k) sum += weights[k];
        for (int64_t k = 0; k < K; ++k) weights[k] /= sum;
    }
    const float rs = float(P.routed_scaling);
    if (rs != 1.0f) {
        for (int64_t k = 0; k < K; ++k) weights[k] *= rs;
    }
}

// Mixture of experts for rows h (n, H) -> out (n, H). trace: optional (n, top_k) expert ids.
void moe(const StepContext& c, int64_t li, const float* h, int64_t n, float* out, int32_t* trace) {
    xpu_model* m = c.m;
    const Layer& L = m->layers[li];
    const xpu_layer_params& P = L.p;
    auto& s = m->s;
    const int64_t E = P.num_experts, K = P.top_k, H = m->p.hidden_size;

    std::optional<OpScope> phase;
    phase.emplace(m, XPU_OP_ROUTER, li, n);
    phase->add(weight_bytes_of(L.t[XPU_T_ROUTER]), 2 * n * E * H);
    matmul(c.pool, c.m, h, n, L.t[XPU_T_ROUTER], s.router.data(), E);
    const float* bias = P.has_correction_bias ? L.router_bias.data() : nullptr;
    c.pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
        thread_local std::vector<float> scores, choice, gscore;
        thread_local std::vector<uint8_t> keep;
        scores.resize(static_cast<size_t>(E));
        choice.resize(static_cast<size_t>(E));
        gscore.resize(static_cast<size_t>(std::max<int64_t>(1, P.num_expert_groups)));
        keep.resize(gscore.size());
        for (int64_t r = b; r < e; ++r) {
            route_row(P, s.router.data() + r * E, bias, scores.data(), choice.data(), gscore.data(), keep.data(),
                      s.topk_ids.data() + r * K, s.topk_w.data() + r * K);
        }
    });
    if (trace != nullptr) std::copy(s.topk_ids.data(), s.topk_ids.data() + n * K, trace);

    // routed experts, rows in chunks (bounded scratch; a row's result does not depend on its chunk)
    phase.emplace(m, XPU_OP_EXPERTS, li, n);
    if (phase->on()) {
        std::vector<uint8_t> used(static_cast<size_t>(E), 0);
        for (int64_t i = 0; i < n * K; ++i) used[static_cast<size_t>(s.topk_ids[i])] = 1;
        const int64_t I = L.expert_gate[0].rows;
        for (int64_t e = 0; e < E; ++e) {
            if (used[static_cast<size_t>(e)]) {
                phase->add(weight_bytes_of(L.expert_gate[e]) + weight_bytes_of(L.expert_up[e]) +
                           weight_bytes_of(L.expert_down[e]), 0);
            }
        }
        phase->add(0, 2 * n * K * 3 * I * H);
    }
    const bool packed = is_packed(L.expert_gate[0]);
    MatIn h_in = mat_in(c.pool, m, h, n, H, L.expert_gate[0], s.act_a.data());
    const KernelTable& kt = kernels();
    const int64_t lda = s.act_stride;
    for (int64_t r0 = 0; r0 < n; r0 += kMoeChunkRows) {
        const int64_t nc = std::min(kMoeChunkRows, n - r0);
        // group the chunk's (row, weight) pairs by expert: counting sort on expert id
        int32_t* offsets = s.expert_offsets.data();
        std::fill(offsets, offsets + E + 1, 0);
        for (int64_t i = r0 * K; i < (r0 + nc) * K; ++i) offsets[s.topk_ids[i] + 1]++;
        for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
        int32_t* cursor = s.expert_cursor.data();
        std::copy(offsets, offsets + E, cursor);
        for (int64_t r = r0; r < r0 + nc; ++r) {
            for (int64_t k = 0; k < K; ++k) {
                const int32_t e = s.topk_ids[r * K + k];
                const int32_t at = cursor[e]++;
                s.expert_rows[at] = int32_t(r);
                s.expert_row_w[at] = s.topk_w[r * K + k];
            }
        }
        // the experts' input rows, in slot order
        const int64_t slots = nc * K;
        MatIn in;
        in.rows = slots;
        if (packed) {
            for (int64_t i = 0; i < slots; ++i) {
                const uint16_t* src = h_in.xb + int64_t(s.expert_rows[i]) * lda;
                std::copy(src, src + lda, s.moe_in_b.data() + i * lda);
            }
            in.xb = s.moe_in_b.data();
            in.lda = lda;
        } else {
            for (int64_t i = 0; i < slots; ++i) {
                const float* src = h + int64_t(s.expert_rows[i]) * H;
                std::copy(src, src + H, s.moe_in.data() + i * H);
            }
            in.x = s.moe_in.data();
        }
        thread_local std::vector<Ffn> ffns;
        ffns.clear();
        for (int64_t e = 0; e < E; ++e) {
            if (offsets[e + 1] > offsets[e]) {
                ffns.push_back(Ffn{&L.expert_gate[e], &L.expert_up[e], &L.expert_down[e], offsets[e], offsets[e + 1] - offsets[e]});
            }
        }
        swiglu_many(c.pool, m, in, ffns.data(), static_cast<int64_t>(ffns.size()), s.moe_y.data());
        // each row: its experts' outputs, weighted, in increasing expert order (slots are sorted by expert)
        int32_t* row_slots = s.row_slots.data();
        int32_t* filled = s.row_fill.data();
        std::fill(filled, filled + nc, 0);
        for (int64_t i = 0; i < slots; ++i) {
            const int64_t r = s.expert_rows[i] - r0;
            row_slots[r * K + filled[r]++] = int32_t(i);
        }
        c.pool.parallel_for(nc, nc * K * H < kParallelMinMacs ? nc : 8, [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r) {
                float* o = out + (r0 + r) * H;
                std::fill(o, o + H, 0.f);
                for (int64_t k = 0; k < K; ++k) {
                    const int32_t i = row_slots[r * K + k];
                    kt.axpy_f32(s.expert_row_w[i], s.moe_y.data() + int64_t(i) * H, o, H);
                }
            }
        });
    }

    if (P.shared_intermediate_size > 0) {
        phase.emplace(m, XPU_OP_SHARED, li, n);
        for (int role : {XPU_T_SHARED_GATE, XPU_T_SHARED_UP, XPU_T_SHARED_DOWN}) {
            phase->add(weight_bytes_of(L.t[role]), 2 * n * L.t[role].rows * L.t[role].cols);
        }
        swiglu(c.pool, m, h, n, L.t[XPU_T_SHARED_GATE], L.t[XPU_T_SHARED_UP], L.t[XPU_T_SHARED_DOWN], s.moe_out.data());
        // the router logits are consumed: reuse their buffer for the shared expert's gate (n, 1)
        if (P.has_shared_expert_gate) matmul(c.pool, c.m, h, n, L.t[XPU_T_SHARED_EXPERT_GATE], s.router.data(), 1);
        for (int64_t r = 0; r < n; ++r) {
            const float g = P.has_shared_expert_gate ? 1.0f / (1.0f + std::exp(-s.router[r])) : 1.0f;
            kt.axpy_f32(g, s.moe_out.data() + r * H, out + r * H, H);
        }
    }
}

// One pre-norm decoder layer on the residual x (n, H), in place.
// Copies rows (n, H) to tap slot `slot` when taps are on (decoder layers only, not MTP's).
void tap(const xpu_model* m, int64_t slot, int64_t layer, const float* rows, int64_t n) {
    if (m->taps == nullptr || layer >= m->p.num_layers) return;
    const int64_t H = m->p.hidden_size;
    std::copy(rows, rows + n * H, m->taps + slot * m->tap_rows * H);
}

void decoder_layer(const StepContext& c, int64_t li, float* x, const Rows& rows, int32_t* trace) {
    xpu_model* m = c.m;
    const Layer& L = m->layers[li];
    auto& s = m->s;
    const int64_t n = rows.n, H = m->p.hidden_size;
    const KernelTable& kt = kernels();

    {
        OpScope op(m, XPU_OP_NORM, li, n);
        rmsnorm_rows(c.pool, x, L.attn_norm.data(), s.h.data(), n, H, m->p.norm_eps);
    }
    attention(c, li, s.h.data(), rows, s.tmp.data());
    tap(m, 2 * li, li, s.tmp.data(), n);
    {
        OpScope op(m, XPU_OP_RESIDUAL, li, n);
        for (int64_t r = 0; r < n; ++r) kt.axpy_f32(1.0f, s.tmp.data() + r * H, x + r * H, H);
    }
    {
        OpScope op(m, XPU_OP_NORM, li, n);
        rmsnorm_rows(c.pool, x, L.ffn_norm.data(), s.h.data(), n, H, m->p.norm_eps);
    }
    if (L.p.ffn_kind == XPU_FFN_DENSE) {
        OpScope op(m, XPU_OP_FFN, li, n);
        if (op.on()) {
            for (int role : {XPU_T_GATE, XPU_T_UP, XPU_T_DOWN}) {
                op.add(weight_bytes_of(L.t[role]), 2 * n * L.t[role].rows * L.t[role].cols);
            }
        }
        swiglu(c.pool, m, s.h.data(), n, L.t[XPU_T_GATE], L.t[XPU_T_UP], L.t[XPU_T_DOWN], s.tmp.data());
    } else {
        moe(c, li, s.h.data(), n, s.tmp.data(), trace);
    }
    tap(m, 2 * li + 1, li, s.tmp.data(), n);
    OpScope op(m, XPU_OP_RESIDUAL, li, n);
    for (int64_t r = 0; r < n; ++r) kt.axpy_f32(1.0f, s.tmp.data() + r * H, x + r * H, H);
}

// rows (n, H) of normed hidden states -> logits (n, vocab)
void lm_head(const StepContext& c, const float* hn, int64_t n, float* logits) {
    OpScope op(c.m, XPU_OP_LM_HEAD, -1, n);
    op.add(weight_bytes_of(c.m->lm_head), 2 * n * c.m->lm_head.rows * c.m->lm_head.cols);
    matmul(c.pool, c.m, hn, n, c.m->lm_head, logits, c.m->p.vocab_size);
}

void validate(const xpu_model* m, const xpu_kv_cache* kv, const xpu_batch* b) {
    XPU_CHECK_ARG(m->finalized, "step: model is not finalized");
    XPU_CHECK_ARG(kv->model == m, "step: the KV cache belongs to another model");
    const int64_t T = b->num_tokens, S = b->num_seqs;
    XPU_CHECK_ARG(T >= 0 && T <= m->p.max_tokens_per_step, "step: num_tokens %ld outside [0, %ld]", (long)T, (long)m->p.max_tokens_per_step);
    XPU_CHECK_ARG(S >= 1 && S <= m->p.max_seqs_per_step, "step: num_seqs %ld outside [1, %ld]", (long)S, (long)m->p.max_seqs_per_step);
    XPU_CHECK_ARG(b->block_tables, "step: block_tables is null");
    XPU_CHECK_ARG(b->max_blocks_per_seq >= 1, "step: max_blocks_per_seq %ld must be positive", (long)b->max_blocks_per_seq);
    XPU_CHECK_ARG(b->num_mtp_rows >= 0, "step: negative num_mtp_rows %ld", (long)b->num_mtp_rows);
    if (T == 0) {
        // an MTP-only step: the sequences only name block tables
        XPU_CHECK_ARG(b->num_mtp_rows > 0, "step: num_tokens 0 and no MTP rows: nothing to compute");
        XPU_CHECK_ARG(b->num_logit_rows == 0, "step: %ld logit rows requested in a step without token rows", (long)b->num_logit_rows);
        return;
    }
    XPU_CHECK_ARG(b->token_ids && b->positions && b->seq_starts, "step: a required batch array (token_ids, positions, seq_starts) is null");
    XPU_CHECK_ARG(b->seq_starts[0] == 0 && b->seq_starts[S] == T, "step: seq_starts must run from 0 to num_tokens %ld", (long)T);
    const int64_t bs = kv->block_size, maxb = b->max_blocks_per_seq;
    for (int64_t sq = 0; sq < S; ++sq) {
        const int32_t b0 = b->seq_starts[sq], b1 = b->seq_starts[sq + 1];
        XPU_CHECK_ARG(b0 < b1, "step: sequence %ld has no tokens", (long)sq);
        const int32_t first = b->positions[b0];
        XPU_CHECK_ARG(first >= 0, "step: sequence %ld starts at negative position %d", (long)sq, first);
        for (int32_t r = b0; r < b1; ++r) {
            XPU_CHECK_ARG(b->token_ids[r] >= 0 && b->token_ids[r] < m->p.vocab_size, "step: row %d token id %d outside [0, %ld)", r, b->token_ids[r], (long)m->p.vocab_size);
            XPU_CHECK_ARG(b->positions[r] == first + (r - b0), "step: sequence %ld positions are not consecutive at row %d", (long)sq, r);
        }
        const int64_t last = first + (b1 - b0) - 1;
        XPU_CHECK_ARG(last / bs < maxb, "step: sequence %ld reaches position %ld beyond its %ld blocks", (long)sq, (long)last, (long)maxb);
        // every block a layer will touch must exist: full layers read 0..last, sliding layers the window
        for (const auto& L : m->layers) {
            const int64_t g = L.p.kv_group;
            const int64_t lo = L.p.attn_kind == XPU_ATTN_SLIDING ? std::max<int64_t>(0, first - L.p.window + 1) : 0;
            const int32_t* table = b->block_tables + (g * S + sq) * maxb;
            for (int64_t blk = lo / bs; blk <= last / bs; ++blk) {
                XPU_CHECK_ARG(table[blk] >= 0 && table[blk] < kv->num_blocks[g],
                              "step: sequence %ld group %ld block slot %ld holds block %d, outside [0, %ld)",
                              (long)sq, (long)g, (long)blk, table[blk], (long)kv->num_blocks[g]);
            }
        }
    }
    XPU_CHECK_ARG(m->taps == nullptr || T <= m->tap_rows, "step: %ld rows, the taps hold %ld", (long)T, (long)m->tap_rows);
    XPU_CHECK_ARG(b->num_logit_rows >= 0 && b->num_logit_rows <= T, "step: num_logit_rows %ld outside [0, %ld]", (long)b->num_logit_rows, (long)T);
    XPU_CHECK_ARG(b->num_logit_rows == 0 || (b->logit_rows && b->logits), "step: logit rows requested without buffers");
    for (int64_t i = 0; i < b->num_logit_rows; ++i) {
        XPU_CHECK_ARG(b->logit_rows[i] >= 0 && b->logit_rows[i] < T, "step: logit row %d outside [0, %ld)", b->logit_rows[i], (long)T);
    }
}

// Checks the MTP rows of a step (after validate, with s.row_seq filled for the decoder rows) and resolves
// each row's sequence and position into s.mtp_seq and s.mtp_pos.
void resolve_mtp_rows(xpu_model* m, const xpu_kv_cache* kv, const xpu_batch* b) {
    const int64_t nm = b->num_mtp_rows, T = b->num_tokens, S = b->num_seqs;
    XPU_CHECK_ARG(m->p.num_mtp_layers > 0, "step: %ld MTP rows requested, the model has no MTP layer", (long)nm);
    XPU_CHECK_ARG(b->mtp_layer >= 0 && b->mtp_layer < m->p.num_mtp_layers, "step: MTP layer %ld requested, the model has %ld",
                  (long)b->mtp_layer, (long)m->p.num_mtp_layers);
    XPU_CHECK_ARG(nm <= m->p.max_tokens_per_step, "step: num_mtp_rows %ld exceeds max_tokens_per_step %ld", (long)nm,
                  (long)m->p.max_tokens_per_step);
    XPU_CHECK_ARG(b->mtp_next_tokens, "step: MTP rows requested but mtp_next_tokens is null");
    XPU_CHECK_ARG((b->mtp_seqs == nullptr) == (b->mtp_positions == nullptr),
                  "step: mtp_seqs and mtp_positions go together, but %s is null", b->mtp_seqs ? "mtp_positions" : "mtp_seqs");
    const bool explicit_pos = b->mtp_positions != nullptr;
    if (T == 0) {
        XPU_CHECK_ARG(b->mtp_hidden_in && explicit_pos, "step: an MTP-only step (num_tokens 0) needs mtp_hidden_in, mtp_seqs and mtp_positions (%s is null)",
                      b->mtp_hidden_in ? "mtp_seqs" : "mtp_hidden_in");
    }
    const bool need_rows = !explicit_pos || b->mtp_hidden_in == nullptr;
    XPU_CHECK_ARG(!need_rows || b->mtp_rows, "step: mtp_rows is null (it may be only with mtp_hidden_in and mtp_positions)");
    auto& s = m->s;
    std::fill(s.mtp_last_pos.begin(), s.mtp_last_pos.begin() + S, -1);
    std::fill(s.mtp_blk_checked.begin(), s.mtp_blk_checked.begin() + S, -1);
    const Layer& L = m->layers[m->p.num_layers + b->mtp_layer];
    const int64_t g = L.p.kv_group, bs = kv->block_size, maxb = b->max_blocks_per_seq;
    const bool sliding = L.p.attn_kind == XPU_ATTN_SLIDING;
    for (int64_t i = 0; i < nm; ++i) {
        XPU_CHECK_ARG(b->mtp_next_tokens[i] >= 0 && b->mtp_next_tokens[i] < m->p.vocab_size, "step: MTP row %ld next token %d outside [0, %ld)",
                      (long)i, b->mtp_next_tokens[i], (long)m->p.vocab_size);
        if (need_rows) {
            XPU_CHECK_ARG(b->mtp_rows[i] >= 0 && b->mtp_rows[i] < T, "step: MTP row %ld: mtp_rows %d outside the step's rows [0, %ld)",
                          (long)i, b->mtp_rows[i], (long)T);
        }
        int32_t sq, pos;
        if (explicit_pos) {
            sq = b->mtp_seqs[i];
            pos = b->mtp_positions[i];
            XPU_CHECK_ARG(sq >= 0 && sq < S, "step: MTP row %ld: mtp_seqs %d outside [0, %ld)", (long)i, sq, (long)S);
            XPU_CHECK_ARG(pos >= 0, "step: MTP row %ld: mtp_positions %d is negative", (long)i, pos);
        } else {
            sq = s.row_seq[b->mtp_rows[i]];
            pos = b->positions[b->mtp_rows[i]];
        }
        XPU_CHECK_ARG(pos > s.mtp_last_pos[sq], "step: MTP row %ld at position %d of sequence %d: positions of a sequence's MTP rows must be strictly ascending (an earlier row is at %d)",
                      (long)i, pos, sq, s.mtp_last_pos[sq]);
        s.mtp_last_pos[sq] = pos;
        XPU_CHECK_ARG(pos / bs < maxb, "step: MTP row %ld position %d is beyond the %ld blocks of sequence %d", (long)i, pos, (long)maxb, sq);
        // the blocks the row writes and reads (positions ascend: blocks below the last checked one were checked)
        const int64_t lo = sliding ? std::max<int64_t>(0, int64_t(pos) - L.p.window + 1) : 0;
        const int32_t* table = b->block_tables + (g * S + sq) * maxb;
        for (int64_t blk = std::max<int64_t>(lo / bs, s.mtp_blk_checked[sq] + 1); blk <= pos / bs; ++blk) {
            XPU_CHECK_ARG(table[blk] >= 0 && table[blk] < kv->num_blocks[g],
                          "step: MTP row %ld: sequence %d group %ld block slot %ld holds block %d, outside [0, %ld)",
                          (long)i, sq, (long)g, (long)blk, table[blk], (long)kv->num_blocks[g]);
        }
        s.mtp_blk_checked[sq] = int32_t(std::max<int64_t>(s.mtp_blk_checked[sq], pos / bs));
        s.mtp_seq[i] = sq;
        s.mtp_pos[i] = pos;
    }
}

// The decoder rows of a step: every layer, the final norm, hidden states and logits.
void decoder_rows(const StepContext& c) {
    xpu_model* m = c.m;
    const xpu_batch* b = c.b;
    auto& s = m->s;
    const int64_t T = b->num_tokens, H = m->p.hidden_size;
    Rows rows{T, s.row_seq.data(), b->positions};

    std::optional<OpScope> phase;
    phase.emplace(m, XPU_OP_EMBED, -1, T);
    c.pool.parallel_for(T, 16, [&](int64_t b0, int64_t e0) {
        for (int64_t r = b0; r < e0; ++r) {
            float* dst = s.x.data() + r * H;
            const float* src = m->embed.row(b->token_ids[r], dst);
            if (src != dst) std::copy(src, src + H, dst);
        }
    });

    phase.reset();
    for (int64_t li = 0; li < m->p.num_layers; ++li) {
        const Layer& L = m->layers[li];
        int32_t* trace = nullptr;
        if (b->expert_ids_out != nullptr && L.moe_index >= 0) trace = b->expert_ids_out + int64_t(L.moe_index) * T * m->max_top_k;
        decoder_layer(c, li, s.x.data(), rows, trace);
    }

    phase.emplace(m, XPU_OP_NORM, -1, T);
    rmsnorm_rows(c.pool, s.x.data(), m->final_norm.data(), s.normed.data(), T, H, m->p.norm_eps);
    phase.reset();
    tap(m, 2 * m->p.num_layers, 0, s.normed.data(), T);
    if (b->hidden_out != nullptr) std::copy(s.normed.data(), s.normed.data() + T * H, b->hidden_out);

    if (b->num_logit_rows > 0) {
        for (int64_t i = 0; i < b->num_logit_rows; ++i) {
            const float* src = s.normed.data() + int64_t(b->logit_rows[i]) * H;
            std::copy(src, src + H, s.logits_in.data() + i * H);
        }
        lm_head(c, s.logits_in.data(), b->num_logit_rows, b->logits);
    }
}

// MTP: e = enorm(embed(next token)), g = hnorm(input hidden), x = eh_proj([e, g]), then one decoder
// layer over the MTP layer's own KV, its final norm and the shared LM head. Runs after the decoder rows
// (whose normed hidden states are the default input).
void mtp_rows(const StepContext& c) {
    xpu_model* m = c.m;
    const xpu_batch* b = c.b;
    auto& s = m->s;
    const int64_t H = m->p.hidden_size;
    const int64_t li = m->p.num_layers + b->mtp_layer;
    const Layer& L = m->layers[li];
    const int64_t nm = b->num_mtp_rows;
    std::optional<OpScope> phase;
    phase.emplace(m, XPU_OP_MTP_IN, li, nm);
    phase->add(weight_bytes_of(L.t[XPU_T_MTP_EH_PROJ]), 2 * nm * H * 2 * H);
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(H));
    for (int64_t i = 0; i < nm; ++i) {
        float* in = s.mtp_in.data() + i * 2 * H;
        const float* e = m->embed.row(b->mtp_next_tokens[i], row.data());
        rmsnorm(e, L.mtp_enorm.data(), in, H, m->p.norm_eps);
        const float* hid = b->mtp_hidden_in != nullptr ? b->mtp_hidden_in + i * H : s.normed.data() + int64_t(b->mtp_rows[i]) * H;
        rmsnorm(hid, L.mtp_hnorm.data(), in + H, H, m->p.norm_eps);
    }
    matmul(c.pool, c.m, s.mtp_in.data(), nm, L.t[XPU_T_MTP_EH_PROJ], s.mtp_x.data(), H);
    Rows mrows{nm, s.mtp_seq.data(), s.mtp_pos.data()};
    phase.reset();
    decoder_layer(c, li, s.mtp_x.data(), mrows, nullptr);
    phase.emplace(m, XPU_OP_NORM, li, nm);
    rmsnorm_rows(c.pool, s.mtp_x.data(), L.mtp_final_norm.data(), s.mtp_h.data(), nm, H, m->p.norm_eps);
    phase.reset();
    // (the input was read before: mtp_hidden_out may be the same buffer as mtp_hidden_in)
    if (b->mtp_hidden_out != nullptr) std::copy(s.mtp_h.data(), s.mtp_h.data() + nm * H, b->mtp_hidden_out);
    if (b->mtp_logits != nullptr) lm_head(c, s.mtp_h.data(), nm, b->mtp_logits);
}

}  // namespace

void step(xpu_model* m, xpu_kv_cache* kv, const xpu_batch* b) {
    validate(m, kv, b);
    auto& s = m->s;
    const int64_t T = b->num_tokens;
    for (int64_t sq = 0; T > 0 && sq < b->num_seqs; ++sq) {
        for (int32_t r = b->seq_starts[sq]; r < b->seq_starts[sq + 1]; ++r) s.row_seq[r] = int32_t(sq);
    }
    if (b->num_mtp_rows > 0) resolve_mtp_rows(m, kv, b);
    StepContext c{m, kv, b, m->dev->pool};
    SectionRecording recording(m, c.pool);
    OpScope whole(m, XPU_OP_STEP, -1, T);
    if (T > 0) decoder_rows(c);
    if (b->num_mtp_rows > 0) mtp_rows(c);
}

}  // namespace xpu
