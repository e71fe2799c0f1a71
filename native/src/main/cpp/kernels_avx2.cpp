// AVX2 + FMA + F16C kernels. Compiled into the baseline object with per-function target attributes,
// so the file is safe to link into a library that must also load on CPUs without AVX2.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "common.h"
#include "kernels.h"
#include "packed.h"

#define XPU_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace xpu {
namespace {

XPU_AVX2 inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 shuf = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, shuf);
    shuf = _mm_movehl_ps(shuf, sums);
    sums = _mm_add_ss(sums, shuf);
    return _mm_cvtss_f32(sums);
}

XPU_AVX2 float dot_f32(const float* a, const float* b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

XPU_AVX2 void dot4_f32(const float* x, const float* w0, const float* w1, const float* w2,
                       const float* w3, int64_t n, float* out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + i), a0);
        a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1 + i), a1);
        a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2 + i), a2);
        a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3 + i), a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (; i < n; ++i) {
        s0 += x[i] * w0[i];
        s1 += x[i] * w1[i];
        s2 += x[i] * w2[i];
        s3 += x[i] * w3[i];
    }
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
}

XPU_AVX2 void axpy_f32(float a, const float* x, float* y, int64_t n) {
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] += a * x[i];
}

XPU_AVX2 void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

XPU_AVX2 void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

struct Fp8Table {
    float v[256];
    Fp8Table() { for (int c = 0; c < 256; ++c) v[c] = fp8_e4m3_to_f32(uint8_t(c)); }
};
const Fp8Table& fp8_table() { static const Fp8Table t; return t; }

XPU_AVX2 void fp8_to_f32_row(const uint8_t* src, float* dst, int64_t n, const float* scales, int64_t block) {
    const float* table = fp8_table().v;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        const int64_t end = b0 + block < n ? b0 + block : n;
        const float s = scales[b0 / block];
        const __m256 sv = _mm256_set1_ps(s);
        int64_t i = b0;
        for (; i + 8 <= end; i += 8) {
            __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i)));
            _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_i32gather_ps(table, idx, 4), sv));
        }
        for (; i < end; ++i) dst[i] = table[src[i]] * s;
    }
}

// f32 -> bf16 with round to nearest even, NaN kept quiet (as the scalar f32_to_bf16)
XPU_AVX2 inline __m128i f32_to_bf16_8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, quiet, nan);
    // 8 x 32-bit (values < 2^16) -> 8 x 16-bit
    const __m256i packed = _mm256_packus_epi32(r, r);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}

XPU_AVX2 void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), f32_to_bf16_8(_mm256_loadu_ps(src + i)));
    }
    for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// MR rows x one panel (32 columns = 4 x 8 lanes). BF16 widens to FP32 exactly (a shift), so each pair
// is two FMAs in the scalar reference's order: the result equals the scalar kernel's bit for bit.
template <int MR>
XPU_AVX2 inline void bf16_tile(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t pairs, float* y,
                               int64_t ldy, int64_t cols) {
    __m256 acc[MR][4];
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < 4; ++z) acc[m][z] = _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32(int(0xffff0000u));
    for (int64_t q = 0; q < pairs; ++q) {
        __m256 ae[MR], ao[MR];
        for (int m = 0; m < MR; ++m) {
            uint32_t pair;
            std::memcpy(&pair, a + m * lda + 2 * q, 4);
            const __m256i b = _mm256_set1_epi32(int(pair));
            ae[m] = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
            ao[m] = _mm256_castsi256_ps(_mm256_and_si256(b, hi));
        }
        const uint16_t* wq = panel + q * 2 * kPanel;
        for (int z = 0; z < 4; ++z) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + 16 * z));
            const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
            const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(x, hi));
            for (int m = 0; m < MR; ++m) {
                acc[m][z] = _mm256_fmadd_ps(ae[m], we, acc[m][z]);
                acc[m][z] = _mm256_fmadd_ps(ao[m], wo, acc[m][z]);
            }
        }
    }
    for (int m = 0; m < MR; ++m) {
        for (int z = 0; z < 4; ++z) {
            const int64_t left = cols - 8 * z;
            if (left >= 8) {
                _mm256_storeu_ps(y + m * ldy + 8 * z, acc[m][z]);
            } else if (left > 0) {
                alignas(32) float tmp[8];
                _mm256_store_ps(tmp, acc[m][z]);
                std::memcpy(y + m * ldy + 8 * z, tmp, size_t(left) * sizeof(float));
            }
        }
    }
}

XPU_AVX2 void gemm_bf16(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs, int64_t n,
                        int64_t p0, int64_t p1, float* y, int64_t ldy) {
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t* panel = w + p * pairs * 2 * kPanel;
        const int64_t cols = std::min<int64_t>(kPanel, n - p * kPanel);
        int64_t m = 0;
        for (; m + 2 <= M; m += 2) bf16_tile<2>(a + m * lda, lda, panel, pairs, y + m * ldy + p * kPanel, ldy, cols);
        if (m < M) bf16_tile<1>(a + m * lda, lda, panel, pairs, y + m * ldy + p * kPanel, ldy, cols);
    }
}

// ---- INT8 format (Q8 blocks, packed.h) without VNNI: codes widened to 16 bits and multiplied in pairs
// (vpmaddwd), which is exact where vpmaddubsw would saturate on the +128 codes; the same integer block
// sums as the scalar kernel, so the same bits.

// One row x one panel: eight accumulators of four columns x two partial sums each.
XPU_AVX2 void q8_row_panel(const uint8_t* a, const uint8_t* panel, int64_t blocks, float* y, int64_t cols) {
    const Q8Row row = q8_row(const_cast<uint8_t*>(a), blocks);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* block = panel + b * kQBlockBytes;
        __m256i sum[8];
        for (auto& v : sum) v = _mm256_setzero_si256();
        for (int j = 0; j < kQBlock / 4; ++j) {
            // the row's four codes of this quad as 16-bit lanes, repeated for four columns
            const int8_t* q = row.q + b * kQBlock + 4 * j;
            const __m256i av = _mm256_setr_epi16(q[0], q[1], q[2], q[3], q[0], q[1], q[2], q[3], q[0], q[1], q[2], q[3],
                                                 q[0], q[1], q[2], q[3]);
            for (int g = 0; g < 8; ++g) {  // columns 4g .. 4g+3: 16 code bytes
                const __m128i w8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + (j * kPanel + 4 * g) * 4));
                sum[g] = _mm256_add_epi32(sum[g], _mm256_madd_epi16(_mm256_cvtepu8_epi16(w8), av));
            }
        }
        const __m256i corr = _mm256_set1_epi32(row.corr[b]);
        const __m256 da = _mm256_set1_ps(row.d[b]);
        for (int h = 0; h < 4; ++h) {
            // lanes of sum[2h]: (c0 k01, c0 k23, c1 k01, c1 k23 | c2 .., c3 ..); hadd pairs the partial sums
            const __m256i pairs = _mm256_hadd_epi32(sum[2 * h], sum[2 * h + 1]);  // c0 c1 c4 c5 | c2 c3 c6 c7
            const __m256i cols8 = _mm256_add_epi32(_mm256_permute4x64_epi64(pairs, 0xd8), corr);
            const __m256 wd = _mm256_loadu_ps(reinterpret_cast<const float*>(block + kPanel * kQBlock) + 8 * h);
            acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(cols8), _mm256_mul_ps(da, wd), acc[h]);
        }
    }
    alignas(32) float out[kPanel];
    for (int h = 0; h < 4; ++h) _mm256_store_ps(out + 8 * h, acc[h]);
    std::memcpy(y, out, static_cast<size_t>(cols) * sizeof(float));
}

XPU_AVX2 void gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n,
                      int64_t p0, int64_t p1, float* y, int64_t ldy) {
    for (int64_t p = p0; p < p1; ++p) {
        const uint8_t* panel = w + p * blocks * kQBlockBytes;
        const int64_t cols = std::min<int64_t>(kPanel, n - p * kPanel);
        for (int64_t m = 0; m < M; ++m) q8_row_panel(a + m * lda, panel, blocks, y + m * ldy + p * kPanel, cols);
    }
}

}  // namespace

void avx2_gemm_q8(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks, int64_t n, int64_t p0,
                  int64_t p1, float* y, int64_t ldy) {
    gemm_q8(a, lda, M, w, blocks, n, p0, p1, y, ldy);
}

const KernelTable* avx2_kernels() {
    static const KernelTable table{"avx2", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row,
                                   f32_to_bf16_row, gemm_bf16, scalar_quantize_q8, gemm_q8, scalar_silu_mul_f32, scalar_attend_block,
                                   scalar_attend_rows};
    __builtin_cpu_init();
    const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return ok ? &table : nullptr;
}

}  // namespace xpu
