// Scalar reference kernels: the portable fallback and the yardstick for the SIMD versions.
#include "kernels.h"
#include "common.h"

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

}  // namespace

const KernelTable& scalar_kernels() {
    static const KernelTable table{"scalar", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row};
    return table;
}

}  // namespace xpu
