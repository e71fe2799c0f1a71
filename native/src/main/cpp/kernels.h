// CPU kernel table. Each entry has a scalar reference (kernels_scalar.cpp) and, where it pays,
// AVX2/FMA and AVX-512 versions compiled with per-function target attributes, so the library runs
// (slowly) on any x86-64 CPU and fast on new ones. dispatch.cpp picks one table at load time.
#pragma once

#include <cstdint>

namespace xpu {

struct KernelTable {
    const char* isa;
    // a (n) . b (n) -> scalar, FP32 accumulation
    float (*dot_f32)(const float* a, const float* b, int64_t n);
    // W rows w0..w3 (n each) . x (n) -> out[0..3]; one pass over x for four weight rows
    void (*dot4_f32)(const float* x, const float* w0, const float* w1, const float* w2,
                     const float* w3, int64_t n, float* out);
    // y (n) += a * x (n)
    void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
    // bf16 (n) -> f32 (n), exact
    void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);
    // f16 (n) -> f32 (n), exact
    void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
    // e4m3 codes (n) -> f32 (n): code * scales[c / block] (the block-scale row of this weight row)
    void (*fp8_to_f32)(const uint8_t* src, float* dst, int64_t n, const float* scales, int64_t block);

    // ---- BF16 weight format (see packed.h for the layouts) ----
    // f32 (n) -> bf16 (n), rounded to nearest even; NaN stays NaN
    void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
    // y[m][c] = sum_k a[m][k] * w[c][k] for rows m < M and the columns of panels [p0, p1) (kPanel columns
    // each, n columns in all: a partial last panel is stored in part). a: BF16 rows, lda elements apart,
    // 2 * pairs elements used (odd K padded with a zero); w: BF16 panels of `pairs` pairs. y: row 0,
    // column 0 of the output, rows ldy apart. Each output is one FP32 sum over k in increasing pairs,
    // whatever M, p0 and p1 are: a row's result does not depend on the rows or panels beside it.
    void (*gemm_bf16)(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs, int64_t n,
                      int64_t p0, int64_t p1, float* y, int64_t ldy);

    // ---- INT8 weight format (Q8 blocks, see packed.h) ----
    // x (n) -> one quantised activation row's blocks: q, d and corr of ceil(n / 32) blocks (the last one
    // padded with zeros). Codes are round-to-nearest-even(x * 127 / max|x|); a block holding a non-finite
    // value gets codes 0 and a NaN scale.
    void (*quantize_q8)(const float* x, int64_t n, int8_t* q, float* d, int32_t* corr);
    // y[m][c] = sum over blocks b of float(sum_k wcode[c][k] * q[m][k] + corr[m][b]) * (d[m][b] * wd[c][b]),
    // one FP32 multiply-add per block in increasing b, for rows m < M (quantised rows of `blocks` blocks,
    // lda bytes apart) and the columns of panels [p0, p1) of w (n columns in all). The integer sums are
    // exact, so every ISA gives the scalar kernel's result bit for bit, whatever M, p0 and p1 are.
    void (*gemm_q8)(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n,
                    int64_t p0, int64_t p1, float* y, int64_t ldy);

    // g (n) = silu(g) * u = g / (1 + exp(-g)) * u, the SwiGLU activation of the fast formats (the exact
    // mode keeps std::exp). Element by element: a value's result does not depend on the others. The
    // scalar kernel is the exact mode's formula; vector ones use a polynomial exp (relative error ~2e-7).
    void (*silu_mul_f32)(float* g, const float* u, int64_t n);

    // ---- attention of the fast formats (KV layout in packed.h) ----
    // One step of online softmax: the g query heads q [g][dqk] (already scaled) that share one KV head
    // attend to keys j0 <= j < j1 of one KV block (K [dqk][bs], V [bs][dv], FP32 or BF16 by kv_bf16).
    // Per head: m the running max of the scores, l the running sum of exp(score - m), acc [dv] the
    // running sum of exp(score - m) * v. Start from m = -inf, l = 0, acc = 0.
    void (*attend_block)(const float* q, int64_t g, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                         int64_t bs, int64_t j0, int64_t j1, bool kv_bf16, float* m, float* l, float* acc);
    // attend_block for `rows` query rows of one sequence at once (the rows of a speculative verification or a
    // prefill chunk): row r has its g heads at q + r * g * dqk, m + r * g, l + r * g, acc + r * g * dv and
    // attends to keys j0[r] <= j < j1[r] (j0[r] < j1[r]) of the same block. Each row's result is bit for bit
    // what attend_block gives for that row alone: rows only share the loads of K and V.
    void (*attend_rows)(const float* q, int64_t rows, int64_t g, int64_t dqk, int64_t dv, const void* kb,
                        const void* vb, int64_t bs, const int64_t* j0, const int64_t* j1, bool kv_bf16, float* m,
                        float* l, float* acc);
};

const KernelTable& kernels();                 // the table in use
const KernelTable& scalar_kernels();          // the reference
const KernelTable* avx2_kernels();            // nullptr if the CPU lacks AVX2+FMA+F16C
const KernelTable* avx512_kernels();          // nullptr if the CPU lacks AVX-512 F/BW/VL/DQ
const KernelTable* avx512bf16_kernels();      // nullptr if it also lacks AVX-512 BF16 and VNNI
bool force_isa(const char* isa);              // tests and benchmarks
const char* isa_warning();                    // why XPUFLOW_ISA was not followed, or ""

void scalar_quantize_q8(const float* x, int64_t n, int8_t* q, float* d, int32_t* corr);
void scalar_gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n,
                    int64_t p0, int64_t p1, float* y, int64_t ldy);
// The INT8 GEMM without VNNI (vpmaddwd on widened codes) also serves the AVX-512 table.
void avx2_gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n,
                  int64_t p0, int64_t p1, float* y, int64_t ldy);
void scalar_attend_block(const float* q, int64_t g, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                         int64_t bs, int64_t j0, int64_t j1, bool kv_bf16, float* m, float* l, float* acc);
void scalar_silu_mul_f32(float* g, const float* u, int64_t n);
void scalar_attend_rows(const float* q, int64_t rows, int64_t g, int64_t dqk, int64_t dv, const void* kb,
                        const void* vb, int64_t bs, const int64_t* j0, const int64_t* j1, bool kv_bf16, float* m,
                        float* l, float* acc);

}  // namespace xpu
