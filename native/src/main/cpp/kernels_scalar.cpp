// Scalar reference kernels: the portable fallback and the yardstick for the SIMD versions.
#include <cmath>

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

}  // namespace

const KernelTable& scalar_kernels() {
    static const KernelTable table{"scalar", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row,
                                   f32_to_bf16_row, gemm_bf16};
    return table;
}

}  // namespace xpu
