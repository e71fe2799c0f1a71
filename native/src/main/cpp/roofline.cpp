// The roofline probe: this machine's limits with the device's threads, measured the way the kernels
// use the machine, so benchmarks can state their efficiency as a fraction of a measured number.
//
//   read bandwidth  every thread streams its share of a buffer far larger than the caches (64-byte
//                   loads summed into four accumulators, as a GEMV streams its weights)
//   FP32            independent chains of vfmadd (2 flops per lane)
//   BF16            independent chains of vdpbf16ps (2 multiply-adds = 4 flops per 32-bit lane)
//   INT8            independent chains of vpdpbusd (4 multiply-adds = 8 ops per 32-bit lane)
//
// Each figure is the best of a few timed repetitions; the chains are long enough (12 accumulators)
// to hide the instructions' latency, so the result is the issue rate of the vector units.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "cpu_device.h"
#include "kernels.h"

#define XPU_RF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define XPU_RF_BF16 __attribute__((target("avx512bf16,avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define XPU_RF_AVX2 __attribute__((target("avx2,fma")))

// GCC 12 reports a false -Wuninitialized inside avx512fintrin.h's reduce helpers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace xpu {
namespace {

constexpr int kChains = 12;

// Streams p[0, bytes) through four XOR accumulators (XOR: no overflow, the same one-op-per-load cost).
XPU_RF_AVX512 uint64_t read_avx512(const uint8_t* p, int64_t bytes) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i + 256 <= bytes; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
    }
    alignas(64) uint64_t lanes[8];
    _mm512_store_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
    uint64_t x = 0;
    for (uint64_t v : lanes) x ^= v;
    return x;
}

XPU_RF_AVX2 uint64_t read_avx2(const uint8_t* p, int64_t bytes) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i + 128 <= bytes; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
    return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
}

// Returns a value that depends on every result, so nothing is optimised away.
XPU_RF_AVX512 float fma_avx512(int64_t iters) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    __m512 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}

XPU_RF_AVX2 float fma_avx2(int64_t iters) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(float(c));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    __m256 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    return lanes[0] + lanes[7];
}

XPU_RF_BF16 float dpbf16(int64_t iters) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    __m512 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}

XPU_RF_BF16 float dpbusd(int64_t iters) {
    __m512i acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(c);
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-1);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    __m512i s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_epi32(s, acc[c]);
    return float(_mm512_reduce_add_epi32(s));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best rate (units per second) of `reps` runs of `chunks` pieces of work spread over the pool.
template <typename Piece>
double best_rate(ThreadPool& pool, int64_t chunks, double units_per_chunk, int reps, Piece&& piece) {
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
            float local = 0;
            for (int64_t c = b; c < e; ++c) local += piece(c);
            sink = sink + local;
        });
        best = std::max(best, double(chunks) * units_per_chunk / seconds_since(t0));
    }
    return best;
}

}  // namespace

void roofline(xpu_device* dev, int64_t read_bytes, double out[4]) {
    ThreadPool& pool = dev->pool;
    const int64_t threads = pool.size();
    // what the CPU has, as the kernel tables decide it
    const bool avx512 = avx512_kernels() != nullptr;
    const bool avx2 = avx2_kernels() != nullptr;
    const bool bf16 = avx512bf16_kernels() != nullptr;

    // read bandwidth: every thread streams slices of one buffer (touched first by the pool, so its pages
    // lie where the threads run)
    const int64_t slice = int64_t(1) << 20;
    const int64_t slices = std::max<int64_t>(threads, read_bytes / slice);
    Buffer buffer(static_cast<size_t>(slices * slice));
    auto* base = static_cast<uint8_t*>(buffer.data());
    pool.parallel_for(slices, 1, [&](int64_t b, int64_t e) {
        std::memset(base + b * slice, 1, static_cast<size_t>((e - b) * slice));
    });
    out[0] = best_rate(pool, slices, double(slice), 5, [&](int64_t c) -> float {
        const uint8_t* p = base + c * slice;
        if (avx512) return float(read_avx512(p, slice));
        if (avx2) return float(read_avx2(p, slice));
        uint64_t s = 0;
        for (int64_t i = 0; i < slice; i += 8) { uint64_t v; std::memcpy(&v, p + i, 8); s ^= v; }
        return float(s);
    }) / 1e9;

    // arithmetic: 8 chunks per thread of `iters` rounds of kChains instructions each
    const int64_t chunks = 8 * threads, iters = 200000;
    const double rounds = double(iters) * kChains;
    if (avx512) out[1] = best_rate(pool, chunks, rounds * 16 * 2, 3, [&](int64_t) { return fma_avx512(iters); }) / 1e9;
    else if (avx2) out[1] = best_rate(pool, chunks, rounds * 8 * 2, 3, [&](int64_t) { return fma_avx2(iters); }) / 1e9;
    else out[1] = 0;
    out[2] = bf16 ? best_rate(pool, chunks, rounds * 16 * 4, 3, [&](int64_t) { return dpbf16(iters); }) / 1e9 : 0;
    out[3] = bf16 ? best_rate(pool, chunks, rounds * 16 * 8, 3, [&](int64_t) { return dpbusd(iters); }) / 1e9 : 0;
}

}  // namespace xpu
