// Scalar reference kernels: the portable fallback and the yardstick for the SIMD versions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "kernels.h"
#include "packed.h"

namespace xpu {
namespace {

float dot_f32(const float* a, const float* b, int64_t n) {
    // four accumulators: the same association as the SIMD lanes would give is not needed, but it
    // keeps the dependency chain short and the rounding error of long sums small
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; ++i) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

void dot4_f32(const float* x, const float* w0, const float* w1, const float* w2, const float* w3,
              int64_t n, float* out) {
    out[0] = dot_f32(x, w0, n);
    out[1] = dot_f32(x, w1, n);
    out[2] = dot_f32(x, w2, n);
    out[3] = dot_f32(x, w3, n);
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void fp8_to_f32_row(const uint8_t* src, float* dst, int64_t n, const float* scales, int64_t block) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(src[i]) * scales[i / block];
}

void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// The definition the SIMD versions are checked against: per output, one FP32 sum over the pairs.
void gemm_bf16(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs, int64_t n,
               int64_t p0, int64_t p1, float* y, int64_t ldy) {
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t* panel = w + p * pairs * 2 * kPanel;
        for (int64_t c = 0; c < kPanel && p * kPanel + c < n; ++c) {
            for (int64_t m = 0; m < M; ++m) {
                const uint16_t* am = a + m * lda;
                float acc = 0.f;
                for (int64_t q = 0; q < pairs; ++q) {
                    const uint16_t* wq = panel + q * 2 * kPanel + 2 * c;
                    acc = std::fma(bf16_to_f32(am[2 * q]), bf16_to_f32(wq[0]), acc);
                    acc = std::fma(bf16_to_f32(am[2 * q + 1]), bf16_to_f32(wq[1]), acc);
                }
                y[m * ldy + p * kPanel + c] = acc;
            }
        }
    }
}

void quantize_q8(const float* x, int64_t n, int8_t* q, float* d, int32_t* corr) {
    for (int64_t b = 0; b * kQBlock < n; ++b) {
        const int64_t k0 = b * kQBlock, k1 = std::min(n, k0 + kQBlock);
        float amax = 0.f;
        bool finite = true;
        for (int64_t i = k0; i < k1; ++i) {
            finite = finite && std::isfinite(x[i]);
            amax = std::max(amax, std::fabs(x[i]));
        }
        const float id = finite && amax > 0.f ? 127.f / amax : 0.f;
        int32_t sum = 0;
        for (int64_t i = k0; i < k0 + kQBlock; ++i) {
            // |x * id| <= 127 up to one rounding, so the code needs no clamp
            const int32_t c = finite && i < k1 ? static_cast<int32_t>(std::nearbyint(x[i] * id)) : 0;
            q[i] = static_cast<int8_t>(c);
            sum += c;
        }
        d[b] = finite ? amax / 127.f : std::numeric_limits<float>::quiet_NaN();
        corr[b] = -128 * sum;
    }
}

// The definition the SIMD versions are checked against.
void gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n, int64_t p0,
             int64_t p1, float* y, int64_t ldy) {
    for (int64_t p = p0; p < p1; ++p) {
        const uint8_t* panel = w + p * blocks * kQBlockBytes;
        for (int64_t c = 0; c < kPanel && p * kPanel + c < n; ++c) {
            for (int64_t m = 0; m < M; ++m) {
                Q8Row row = q8_row(const_cast<uint8_t*>(a + m * lda), blocks);
                float acc = 0.f;
                for (int64_t b = 0; b < blocks; ++b) {
                    const uint8_t* block = panel + b * kQBlockBytes;
                    int32_t sum = row.corr[b];
                    for (int64_t i = 0; i < kQBlock; ++i) {
                        sum += int32_t(block[((i / 4) * kPanel + c) * 4 + i % 4]) * int32_t(row.q[b * kQBlock + i]);
                    }
                    float wd;
                    std::memcpy(&wd, block + kPanel * kQBlock + c * 4, 4);
                    acc = std::fma(float(sum), row.d[b] * wd, acc);
                }
                y[m * ldy + p * kPanel + c] = acc;
            }
        }
    }
}

void attend_block(const float* q, int64_t g, int64_t dqk, int64_t dv, const void* kb, const void* vb, int64_t bs,
                  int64_t j0, int64_t j1, bool kv_bf16, float* m, float* l, float* acc) {
    auto kval = [&](int64_t d, int64_t j) {
        return kv_bf16 ? bf16_to_f32(static_cast<const uint16_t*>(kb)[d * bs + j]) : static_cast<const float*>(kb)[d * bs + j];
    };
    auto vval = [&](int64_t j, int64_t d) {
        return kv_bf16 ? bf16_to_f32(static_cast<const uint16_t*>(vb)[j * dv + d]) : static_cast<const float*>(vb)[j * dv + d];
    };
    float scores[1024];  // bs <= 1024 (the engine's limit on the block size)
    for (int64_t h = 0; h < g; ++h) {
        const float* qh = q + h * dqk;
        float mx = m[h];
        for (int64_t j = j0; j < j1; ++j) {
            float sc = 0.f;
            for (int64_t d = 0; d < dqk; ++d) sc = std::fma(qh[d], kval(d, j), sc);
            scores[j] = sc;
            mx = std::max(mx, sc);
        }
        const float corr = std::exp(m[h] - mx);
        float sum = 0.f;
        float* ah = acc + h * dv;
        for (int64_t d = 0; d < dv; ++d) ah[d] *= corr;
        for (int64_t j = j0; j < j1; ++j) {
            const float p = std::exp(scores[j] - mx);
            sum += p;
            for (int64_t d = 0; d < dv; ++d) ah[d] = std::fma(p, vval(j, d), ah[d]);
        }
        l[h] = l[h] * corr + sum;
        m[h] = mx;
    }
}

}  // namespace

// The scalar INT8 kernels serve the tables without VNNI.
void scalar_quantize_q8(const float* x, int64_t n, int8_t* q, float* d, int32_t* corr) { quantize_q8(x, n, q, d, corr); }
void scalar_gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n,
                    int64_t p0, int64_t p1, float* y, int64_t ldy) {
    gemm_q8(a, lda, M, w, blocks, n, p0, p1, y, ldy);
}

// The scalar attention also serves the AVX2 table.
void scalar_attend_block(const float* q, int64_t g, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                         int64_t bs, int64_t j0, int64_t j1, bool kv_bf16, float* m, float* l, float* acc) {
    attend_block(q, g, dqk, dv, kb, vb, bs, j0, j1, kv_bf16, m, l, acc);
}

void scalar_silu_mul_f32(float* g, const float* u, int64_t n) {
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// One row after the other: the reference of the multi-row kernels.
void scalar_attend_rows(const float* q, int64_t rows, int64_t g, int64_t dqk, int64_t dv, const void* kb,
                        const void* vb, int64_t bs, const int64_t* j0, const int64_t* j1, bool kv_bf16, float* m,
                        float* l, float* acc) {
    for (int64_t r = 0; r < rows; ++r) {
        attend_block(q + r * g * dqk, g, dqk, dv, kb, vb, bs, j0[r], j1[r], kv_bf16, m + r * g, l + r * g,
                     acc + r * g * dv);
    }
}

const KernelTable& scalar_kernels() {
    static const KernelTable table{"scalar", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row,
                                   f32_to_bf16_row, gemm_bf16, quantize_q8, gemm_q8, scalar_silu_mul_f32, attend_block,
                                   scalar_attend_rows};
    return table;
}

}  // namespace xpu
