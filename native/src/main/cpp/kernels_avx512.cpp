// AVX-512 (F/BW/VL/DQ) kernels, selected at run time when the CPU has them.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "kernels.h"
#include "packed.h"

#define XPU_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define XPU_AVX512BF16 __attribute__((target("avx512bf16,avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

// GCC 12 reports a false -Wmaybe-uninitialized inside avx512fintrin.h's reduce helpers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace xpu {
namespace {

XPU_AVX512 float dot_f32(const float* a, const float* b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) {  // masked tail: no scalar loop
        __mmask16 m = __mmask16((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

XPU_AVX512 void dot4_f32(const float* x, const float* w0, const float* w1, const float* w2,
                         const float* w3, int64_t n, float* out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w0 + i), a0);
        a1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w1 + i), a1);
        a2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w2 + i), a2);
        a3 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w3 + i), a3);
    }
    if (i < n) {
        __mmask16 m = __mmask16((1u << (n - i)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        a0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, w0 + i), a0);
        a1 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, w1 + i), a1);
        a2 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, w2 + i), a2);
        a3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, w3 + i), a3);
    }
    out[0] = _mm512_reduce_add_ps(a0);
    out[1] = _mm512_reduce_add_ps(a1);
    out[2] = _mm512_reduce_add_ps(a2);
    out[3] = _mm512_reduce_add_ps(a3);
}

XPU_AVX512 void axpy_f32(float a, const float* x, float* y, int64_t n) {
    __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    }
    if (i < n) {
        __mmask16 m = __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

XPU_AVX512 void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

XPU_AVX512 void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    }
    for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

struct Fp8Table {
    float v[256];
    Fp8Table() { for (int c = 0; c < 256; ++c) v[c] = fp8_e4m3_to_f32(uint8_t(c)); }
};
const Fp8Table& fp8_table() { static const Fp8Table t; return t; }

XPU_AVX512 void fp8_to_f32_row(const uint8_t* src, float* dst, int64_t n, const float* scales, int64_t block) {
    const float* table = fp8_table().v;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        const int64_t end = b0 + block < n ? b0 + block : n;
        const float s = scales[b0 / block];
        const __m512 sv = _mm512_set1_ps(s);
        int64_t i = b0;
        for (; i + 16 <= end; i += 16) {
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
            _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_i32gather_ps(idx, table, 4), sv));
        }
        for (; i < end; ++i) dst[i] = table[src[i]] * s;
    }
}

// ---- BF16 format without vdpbf16ps: BF16 widens to FP32 exactly (a shift), then two FMAs per pair in
// the scalar reference's order, so results equal the scalar kernel's bit for bit.

XPU_AVX512 inline __m256i f32_to_bf16_16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

XPU_AVX512 void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), f32_to_bf16_16(_mm512_loadu_ps(src + i)));
    }
    if (i < n) {
        const __mmask16 m = __mmask16((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(dst + i, m, f32_to_bf16_16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

XPU_AVX512 inline __mmask16 lanes(int64_t left) {
    return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// MR rows x NP panels (NP * 2 zmm of 16 columns)
template <int MR, int NP>
XPU_AVX512 inline void bf16_tile(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t pairs, float* y,
                                 int64_t ldy, int64_t cols) {
    constexpr int NZ = 2 * NP;
    __m512 acc[MR][NZ];
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) acc[m][z] = _mm512_setzero_ps();
    const __m512i hi = _mm512_set1_epi32(int(0xffff0000u));
    const int64_t panel_stride = pairs * 2 * kPanel;
    for (int64_t q = 0; q < pairs; ++q) {
        __m512 ae[MR], ao[MR];
        for (int m = 0; m < MR; ++m) {
            uint32_t pair;
            std::memcpy(&pair, a + m * lda + 2 * q, 4);
            const __m512i b = _mm512_set1_epi32(int(pair));
            ae[m] = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
            ao[m] = _mm512_castsi512_ps(_mm512_and_si512(b, hi));
        }
        for (int z = 0; z < NZ; ++z) {
            const __m512i x = _mm512_loadu_si512(panel + (z / 2) * panel_stride + q * 2 * kPanel + 32 * (z % 2));
            const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
            const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(x, hi));
            for (int m = 0; m < MR; ++m) {
                acc[m][z] = _mm512_fmadd_ps(ae[m], we, acc[m][z]);
                acc[m][z] = _mm512_fmadd_ps(ao[m], wo, acc[m][z]);
            }
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) _mm512_mask_storeu_ps(y + m * ldy + 16 * z, lanes(cols - 16 * z), acc[m][z]);
}

// Panels two at a time (64 columns), rows MR at a time, then the remaining rows in one tail tile; a
// panel pair stays in L2 while every row passes.
template <int MR, typename Tile1, typename Tile2, typename Tail1, typename Tail2>
XPU_AVX512 inline void gemm_panels(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs,
                                   int64_t n, int64_t p0, int64_t p1, float* y, int64_t ldy, Tile1 tile1, Tile2 tile2,
                                   Tail1 tail1, Tail2 tail2) {
    const int64_t panel_stride = pairs * 2 * kPanel;
    for (int64_t p = p0; p < p1; p += 2) {
        const bool two = p + 1 < p1;
        const int64_t cols = std::min<int64_t>(two ? 2 * kPanel : kPanel, n - p * kPanel);
        const uint16_t* panel = w + p * panel_stride;
        float* yp = y + p * kPanel;
        int64_t m = 0;
        for (; m + MR <= M; m += MR) {
            if (two) tile2(a + m * lda, panel, yp + m * ldy, cols);
            else tile1(a + m * lda, panel, yp + m * ldy, cols);
        }
        // the last M % MR rows in one pass over the panels (tails take the row count)
        if (m < M) {
            if (two) tail2(a + m * lda, M - m, panel, yp + m * ldy, cols);
            else tail1(a + m * lda, M - m, panel, yp + m * ldy, cols);
        }
    }
}

XPU_AVX512 void gemm_bf16(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs, int64_t n,
                          int64_t p0, int64_t p1, float* y, int64_t ldy) {
    gemm_panels<4>(a, lda, M, w, pairs, n, p0, p1, y, ldy,
        [&](const uint16_t* am, const uint16_t* pw, float* yo, int64_t c) { bf16_tile<4, 1>(am, lda, pw, pairs, yo, ldy, c); },
        [&](const uint16_t* am, const uint16_t* pw, float* yo, int64_t c) { bf16_tile<4, 2>(am, lda, pw, pairs, yo, ldy, c); },
        [&](const uint16_t* am, int64_t rows, const uint16_t* pw, float* yo, int64_t c) {
            switch (rows) {
                case 1: bf16_tile<1, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                case 2: bf16_tile<2, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                default: bf16_tile<3, 1>(am, lda, pw, pairs, yo, ldy, c); break;
            }
        },
        [&](const uint16_t* am, int64_t rows, const uint16_t* pw, float* yo, int64_t c) {
            switch (rows) {
                case 1: bf16_tile<1, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                case 2: bf16_tile<2, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                default: bf16_tile<3, 2>(am, lda, pw, pairs, yo, ldy, c); break;
            }
        });
}

// ---- BF16 format with vdpbf16ps (AVX-512 BF16): 32 multiply-adds per instruction.

XPU_AVX512BF16 void f32_to_bf16_row_bf16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        std::memcpy(dst + i, &v, 32);
    }
    for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

template <int MR, int NP>
XPU_AVX512BF16 inline void dpbf16_tile(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t pairs,
                                       float* y, int64_t ldy, int64_t cols) {
    constexpr int NZ = 2 * NP;
    __m512 acc[MR][NZ];
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) acc[m][z] = _mm512_setzero_ps();
    const int64_t panel_stride = pairs * 2 * kPanel;
    for (int64_t q = 0; q < pairs; ++q) {
        __m512bh wv[NZ];
        for (int z = 0; z < NZ; ++z) {
            wv[z] = (__m512bh)_mm512_loadu_si512(panel + (z / 2) * panel_stride + q * 2 * kPanel + 32 * (z % 2));
        }
        for (int m = 0; m < MR; ++m) {
            uint32_t pair;
            std::memcpy(&pair, a + m * lda + 2 * q, 4);
            const __m512bh av = (__m512bh)_mm512_set1_epi32(int(pair));
            for (int z = 0; z < NZ; ++z) acc[m][z] = _mm512_dpbf16_ps(acc[m][z], av, wv[z]);
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) _mm512_mask_storeu_ps(y + m * ldy + 16 * z, lanes(cols - 16 * z), acc[m][z]);
}

XPU_AVX512BF16 void gemm_bf16_dp(const uint16_t* a, int64_t lda, int64_t M, const uint16_t* w, int64_t pairs,
                                 int64_t n, int64_t p0, int64_t p1, float* y, int64_t ldy) {
    gemm_panels<6>(a, lda, M, w, pairs, n, p0, p1, y, ldy,
        [&](const uint16_t* am, const uint16_t* pw, float* yo, int64_t c) { dpbf16_tile<6, 1>(am, lda, pw, pairs, yo, ldy, c); },
        [&](const uint16_t* am, const uint16_t* pw, float* yo, int64_t c) { dpbf16_tile<6, 2>(am, lda, pw, pairs, yo, ldy, c); },
        [&](const uint16_t* am, int64_t rows, const uint16_t* pw, float* yo, int64_t c) {
            switch (rows) {
                case 1: dpbf16_tile<1, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                case 2: dpbf16_tile<2, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                case 3: dpbf16_tile<3, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                case 4: dpbf16_tile<4, 1>(am, lda, pw, pairs, yo, ldy, c); break;
                default: dpbf16_tile<5, 1>(am, lda, pw, pairs, yo, ldy, c); break;
            }
        },
        [&](const uint16_t* am, int64_t rows, const uint16_t* pw, float* yo, int64_t c) {
            switch (rows) {
                case 1: dpbf16_tile<1, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                case 2: dpbf16_tile<2, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                case 3: dpbf16_tile<3, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                case 4: dpbf16_tile<4, 2>(am, lda, pw, pairs, yo, ldy, c); break;
                default: dpbf16_tile<5, 2>(am, lda, pw, pairs, yo, ldy, c); break;
            }
        });
}

// ---- INT8 format (Q8 blocks, packed.h)

// One block of up to 32 values: two vectors, masked past n. Same arithmetic as the scalar kernel: the
// code is the product x * (127 / amax) rounded to nearest even by the conversion.
XPU_AVX512 void quantize_q8_row(const float* x, int64_t n, int8_t* q, float* d, int32_t* corr) {
    const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b * kQBlock < n; ++b) {
        const int64_t k0 = b * kQBlock;
        const __mmask16 m0 = lanes(n - k0), m1 = lanes(n - k0 - 16);
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, x + k0), x1 = _mm512_maskz_loadu_ps(m1, x + k0 + 16);
        // fpclass 0x99: QNaN, SNaN, +inf, -inf
        const bool finite = (_mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99)) == 0;
        int32_t sum = 0;
        __m128i c0 = _mm_setzero_si128(), c1 = _mm_setzero_si128();
        float amax = 0.f;
        if (finite) {
            amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, abs_mask), _mm512_and_ps(x1, abs_mask)));
            const __m512 id = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
            sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            c0 = _mm512_cvtepi32_epi8(i0);
            c1 = _mm512_cvtepi32_epi8(i1);
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0), c0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0 + 16), c1);
        d[b] = finite ? amax / 127.f : std::numeric_limits<float>::quiet_NaN();
        corr[b] = -128 * sum;
    }
}

// MR rows x NP panels (2 NP vectors of 16 columns): per block, eight vpdpbusd per (row, vector) into
// integer sums started at the row's correction, then one conversion and multiply-add into FP32. With
// S = 2 the even and odd quads go to separate sums (added before the conversion: integer addition, so
// the same bits) to give a row or two enough independent chains to hide vpdpbusd's latency.
template <int MR, int NP, int S>
XPU_AVX512BF16 inline void q8_tile(const uint8_t* a, int64_t lda, const uint8_t* panel, int64_t blocks, float* y,
                                   int64_t ldy, int64_t cols) {
    constexpr int NZ = 2 * NP;
    const int64_t panel_stride = blocks * kQBlockBytes;
    __m512 acc[MR][NZ];
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) acc[m][z] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* block[NP];
        for (int np = 0; np < NP; ++np) block[np] = panel + np * panel_stride + b * kQBlockBytes;
        __m512i sum[S][MR][NZ];
        for (int m = 0; m < MR; ++m) {
            const Q8Row row = q8_row(const_cast<uint8_t*>(a + m * lda), blocks);
            for (int z = 0; z < NZ; ++z) {
                sum[0][m][z] = _mm512_set1_epi32(row.corr[b]);
                if (S == 2) sum[S - 1][m][z] = _mm512_setzero_si512();
            }
        }
        for (int j = 0; j < kQBlock / 4; ++j) {
            __m512i w[NZ];
            for (int z = 0; z < NZ; ++z) w[z] = _mm512_loadu_si512(block[z / 2] + j * 4 * kPanel + 64 * (z % 2));
            for (int m = 0; m < MR; ++m) {
                int32_t quad;
                std::memcpy(&quad, a + m * lda + b * kQBlock + 4 * j, 4);
                const __m512i av = _mm512_set1_epi32(quad);
                for (int z = 0; z < NZ; ++z) sum[j % S][m][z] = _mm512_dpbusd_epi32(sum[j % S][m][z], w[z], av);
            }
        }
        __m512 d[NZ];
        for (int z = 0; z < NZ; ++z) d[z] = _mm512_loadu_ps(block[z / 2] + kPanel * kQBlock + 64 * (z % 2));
        for (int m = 0; m < MR; ++m) {
            const Q8Row row = q8_row(const_cast<uint8_t*>(a + m * lda), blocks);
            const __m512 da = _mm512_set1_ps(row.d[b]);
            for (int z = 0; z < NZ; ++z) {
                const __m512i total = S == 2 ? _mm512_add_epi32(sum[0][m][z], sum[S - 1][m][z]) : sum[0][m][z];
                acc[m][z] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_mul_ps(da, d[z]), acc[m][z]);
            }
        }
    }
    for (int m = 0; m < MR; ++m)
        for (int z = 0; z < NZ; ++z) _mm512_mask_storeu_ps(y + m * ldy + 16 * z, lanes(cols - 16 * z), acc[m][z]);
}

// Rows 6 at a time over one panel; the last one or two rows (all of them in decode) over two panels with
// split sums, three to five over one.
XPU_AVX512BF16 void gemm_q8_vnni(const uint8_t* a, int64_t lda, int64_t M, const uint8_t* w, int64_t blocks,
                                 int64_t n, int64_t p0, int64_t p1, float* y, int64_t ldy) {
    constexpr int MR = 6;
    const int64_t panel_stride = blocks * kQBlockBytes;
    for (int64_t p = p0; p < p1; p += 2) {
        const int np = p + 1 < p1 ? 2 : 1;
        const uint8_t* panel = w + p * panel_stride;
        float* yp = y + p * kPanel;
        const int64_t cols = std::min<int64_t>(np * kPanel, n - p * kPanel);
        int64_t m = 0;
        for (; m + MR <= M; m += MR) {
            for (int i = 0; i < np; ++i) {
                q8_tile<MR, 1, 1>(a + m * lda, lda, panel + i * panel_stride, blocks, yp + m * ldy + i * kPanel, ldy,
                                  std::min<int64_t>(kPanel, cols - i * kPanel));
            }
        }
        const uint8_t* am = a + m * lda;
        float* ym = yp + m * ldy;
        const int64_t rows = M - m;
        if (rows == 0) continue;
        if (rows <= 2) {
            if (np == 2) {
                if (rows == 1) q8_tile<1, 2, 2>(am, lda, panel, blocks, ym, ldy, cols);
                else q8_tile<2, 2, 2>(am, lda, panel, blocks, ym, ldy, cols);
            } else {
                if (rows == 1) q8_tile<1, 1, 2>(am, lda, panel, blocks, ym, ldy, cols);
                else q8_tile<2, 1, 2>(am, lda, panel, blocks, ym, ldy, cols);
            }
            continue;
        }
        for (int i = 0; i < np; ++i) {
            const uint8_t* pi = panel + i * panel_stride;
            float* yi = ym + i * kPanel;
            const int64_t ci = std::min<int64_t>(kPanel, cols - i * kPanel);
            switch (rows) {
                case 3: q8_tile<3, 1, 1>(am, lda, pi, blocks, yi, ldy, ci); break;
                case 4: q8_tile<4, 1, 1>(am, lda, pi, blocks, yi, ldy, ci); break;
                default: q8_tile<5, 1, 1>(am, lda, pi, blocks, yi, ldy, ci); break;
            }
        }
    }
}

// ---- attention (fast formats), blocks of 16 keys as the 16 lanes of a vector

// exp(x) = 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2, e^r by its degree-6 Taylor polynomial
// (relative error about 2e-7); arguments below -87 give about 1e-38, callers mask what must be zero.
XPU_AVX512 inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// silu(g) * u with exp512; a NaN g stays NaN (g / anything), as in the scalar formula
XPU_AVX512 void silu_mul(float* g, const float* u, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

XPU_AVX512 inline __m512 load16(const void* base, int64_t at, bool bf16, __mmask16 mask = 0xffff) {
    if (bf16) {
        const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(base) + at);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(base) + at);
}

// HN query heads against one block of 16 keys, head h attending to the keys j0[h] <= j < j1[h] with
// PerHead, all of them to j0[0] <= j < j1[0] without (a GQA group of one row: no per-head masks on the
// values). A head's arithmetic never depends on the other heads beside it (lane-wise vector ops, its own
// accumulators; a key outside its range leaves its accumulator as it is), and the two forms do the same
// arithmetic for a head, so a head's result is the same alone, next to other rows' heads, or in either
// form (kernels_test checks it bit for bit).
template <int HN, bool PerHead>
XPU_AVX512 inline void attend_heads(const float* q, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                                    const int64_t* j0, const int64_t* j1, bool bf16, float* m, float* l,
                                    float* acc) {
    __mmask16 valid[HN];
    int64_t jlo = 16, jhi = 0;
    for (int h = 0; h < HN; ++h) {
        const int64_t lo = j0[PerHead ? h : 0], hi = j1[PerHead ? h : 0];
        valid[h] = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
        jlo = std::min(jlo, lo);
        jhi = std::max(jhi, hi);
    }
    __m512 s[HN];
    for (int h = 0; h < HN; ++h) s[h] = _mm512_setzero_ps();
    for (int64_t d = 0; d < dqk; ++d) {
        const __m512 kd = load16(kb, d * 16, bf16);
        for (int h = 0; h < HN; ++h) s[h] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * dqk + d]), kd, s[h]);
    }
    alignas(64) float p[HN][16];
    // the rescale factors exp(m_old - m_new) of all heads in one vector exp (a scalar exp per head cost as
    // much as the block's multiply-adds); m_old = -inf gives about 1e-38, which multiplies zeros
    alignas(64) float shift[16] = {};
    for (int h = 0; h < HN; ++h) {
        const float mx = std::max(m[h], _mm512_mask_reduce_max_ps(valid[h], s[h]));
        shift[h] = std::max(m[h] - mx, -87.0f);
        m[h] = mx;
    }
    alignas(64) float corr[16];
    _mm512_store_ps(corr, exp512(_mm512_load_ps(shift)));
    for (int h = 0; h < HN; ++h) {
        const __m512 e = _mm512_maskz_mov_ps(valid[h], exp512(_mm512_sub_ps(s[h], _mm512_set1_ps(m[h]))));
        _mm512_store_ps(p[h], e);
        l[h] = l[h] * corr[h] + _mm512_reduce_add_ps(e);
    }
    // values: every head takes each V row from one load (a head past its range keeps its sum)
    for (int64_t c = 0; c < dv; c += 16) {
        const __mmask16 cm = lanes(dv - c);
        __m512 a[HN];
        for (int h = 0; h < HN; ++h) a[h] = _mm512_mul_ps(_mm512_maskz_loadu_ps(cm, acc + h * dv + c), _mm512_set1_ps(corr[h]));
        for (int64_t j = jlo; j < jhi; ++j) {
            const __m512 v = load16(vb, j * dv + c, bf16, cm);
            for (int h = 0; h < HN; ++h) {
                if (PerHead) {
                    const __mmask16 in = __mmask16(-int((valid[h] >> j) & 1));
                    a[h] = _mm512_mask3_fmadd_ps(_mm512_set1_ps(p[h][j]), v, a[h], in);
                } else {
                    a[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h][j]), v, a[h]);
                }
            }
        }
        for (int h = 0; h < HN; ++h) _mm512_mask_storeu_ps(acc + h * dv + c, cm, a[h]);
    }
}

// HN heads with their own key ranges: the shared-range form when the ranges happen to agree.
template <int HN>
XPU_AVX512 inline void attend_heads_ranges(const float* q, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                                           const int64_t* j0, const int64_t* j1, bool bf16, float* m, float* l,
                                           float* acc) {
    bool uniform = true;
    for (int h = 1; h < HN; ++h) uniform = uniform && j0[h] == j0[0] && j1[h] == j1[0];
    if (uniform) {
        attend_heads<HN, false>(q, dqk, dv, kb, vb, j0, j1, bf16, m, l, acc);
    } else {
        attend_heads<HN, true>(q, dqk, dv, kb, vb, j0, j1, bf16, m, l, acc);
    }
}

// nh heads with their key ranges, eight at a time
XPU_AVX512 inline void attend_heads_n(const float* q, int64_t nh, int64_t dqk, int64_t dv, const void* kb,
                                      const void* vb, const int64_t* j0, const int64_t* j1, bool bf16, float* m,
                                      float* l, float* acc) {
    for (int64_t h0 = 0; h0 < nh; h0 += 8) {
        const float* qh = q + h0 * dqk;
        const int64_t *a0 = j0 + h0, *a1 = j1 + h0;
        float *mh = m + h0, *lh = l + h0, *ah = acc + h0 * dv;
        switch (std::min<int64_t>(8, nh - h0)) {
            case 1: attend_heads_ranges<1>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 2: attend_heads_ranges<2>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 3: attend_heads_ranges<3>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 4: attend_heads_ranges<4>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 5: attend_heads_ranges<5>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 6: attend_heads_ranges<6>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            case 7: attend_heads_ranges<7>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
            default: attend_heads_ranges<8>(qh, dqk, dv, kb, vb, a0, a1, bf16, mh, lh, ah); break;
        }
    }
}

XPU_AVX512 void attend_block(const float* q, int64_t g, int64_t dqk, int64_t dv, const void* kb, const void* vb,
                             int64_t bs, int64_t j0, int64_t j1, bool kv_bf16, float* m, float* l, float* acc) {
    if (bs != 16) {
        scalar_attend_block(q, g, dqk, dv, kb, vb, bs, j0, j1, kv_bf16, m, l, acc);
        return;
    }
    for (int64_t h0 = 0; h0 < g; h0 += 8) {
        const float* qh = q + h0 * dqk;
        float *mh = m + h0, *lh = l + h0, *ah = acc + h0 * dv;
        switch (std::min<int64_t>(8, g - h0)) {
            case 1: attend_heads<1, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 2: attend_heads<2, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 3: attend_heads<3, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 4: attend_heads<4, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 5: attend_heads<5, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 6: attend_heads<6, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            case 7: attend_heads<7, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
            default: attend_heads<8, false>(qh, dqk, dv, kb, vb, &j0, &j1, kv_bf16, mh, lh, ah); break;
        }
    }
}

// The rows' heads side by side, up to 64 at a time, each with its row's key range.
XPU_AVX512 void attend_rows(const float* q, int64_t rows, int64_t g, int64_t dqk, int64_t dv, const void* kb,
                            const void* vb, int64_t bs, const int64_t* j0, const int64_t* j1, bool kv_bf16, float* m,
                            float* l, float* acc) {
    if (bs != 16 || g > 64 || rows == 1) {
        for (int64_t r = 0; r < rows; ++r) {
            attend_block(q + r * g * dqk, g, dqk, dv, kb, vb, bs, j0[r], j1[r], kv_bf16, m + r * g, l + r * g,
                         acc + r * g * dv);
        }
        return;
    }
    const int64_t per = 64 / g;  // whole rows per pass
    for (int64_t r0 = 0; r0 < rows; r0 += per) {
        const int64_t nr = std::min(per, rows - r0);
        int64_t h0[64], h1[64];
        for (int64_t r = 0; r < nr; ++r) {
            for (int64_t h = 0; h < g; ++h) { h0[r * g + h] = j0[r0 + r]; h1[r * g + h] = j1[r0 + r]; }
        }
        attend_heads_n(q + r0 * g * dqk, nr * g, dqk, dv, kb, vb, h0, h1, kv_bf16, m + r0 * g, l + r0 * g,
                       acc + r0 * g * dv);
    }
}


bool has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

}  // namespace

const KernelTable* avx512_kernels() {
    static const KernelTable table{"avx512", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row,
                                   f32_to_bf16_row, gemm_bf16, quantize_q8_row, avx2_gemm_q8, silu_mul,
                                   attend_block, attend_rows};
    return has_avx512() ? &table : nullptr;
}

const KernelTable* avx512bf16_kernels() {
    static const KernelTable table{"avx512bf16", dot_f32, dot4_f32, axpy_f32,
                                   bf16_to_f32_row, f16_to_f32_row, fp8_to_f32_row,
                                   f32_to_bf16_row_bf16, gemm_bf16_dp, quantize_q8_row, gemm_q8_vnni, silu_mul,
                                   attend_block, attend_rows};
    return has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni") ? &table
                                                                                                       : nullptr;
}

}  // namespace xpu
