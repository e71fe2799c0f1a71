// Unit tests for the CPU device's building blocks: the kernel tables (every SIMD table against the
// scalar reference), ISA dispatch, the thread pool, and the parts of the C ABI that need no model.
//
// Self-contained on purpose (no test framework): CHECK macros count passes and failures, print
// file:line plus the kernel, ISA, n and the values on failure, and main returns 1 if anything failed.
//
// Buffers: kernel inputs live in vectors that end exactly at the last element, so an over-read is an
// ASan error in the sanitizer build; kernel outputs get guard elements on both sides holding a
// sentinel, so an over-write is caught in every build. Start pointers are shifted by a few elements
// to exercise unaligned loads and stores.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "kernels.h"
#include "packed.h"
#include "thread_pool.h"
#include "xpuflow/xpuflow.h"

using xpu::KernelTable;
using xpu::ThreadPool;

namespace {

// ---------------------------------------------------------------------------------------------
// Test harness
// ---------------------------------------------------------------------------------------------

int g_passed = 0;
int g_failed = 0;
constexpr int kMaxPrintedFailures = 200;  // keep a systematic bug from flooding the log

// What a check was about: printed with every failure.
struct Where {
    const char* kernel;
    const char* isa;
    int64_t n;
};

void check_impl(bool ok, const char* file, int line, const char* expr, const Where* where, const char* fmt, ...)
    __attribute__((format(printf, 6, 7)));

void check_impl(bool ok, const char* file, int line, const char* expr, const Where* where, const char* fmt, ...) {
    if (ok) {
        ++g_passed;
        return;
    }
    ++g_failed;
    if (g_failed > kMaxPrintedFailures) {
        if (g_failed == kMaxPrintedFailures + 1) std::printf("... further failures not printed\n");
        return;
    }
    std::printf("FAIL %s:%d: %s", file, line, expr);
    if (where != nullptr) {
        std::printf(" [kernel=%s isa=%s n=%lld]", where->kernel, where->isa, static_cast<long long>(where->n));
    }
    if (fmt != nullptr && *fmt != '\0') {
        std::printf(": ");
        va_list args;
        va_start(args, fmt);
        std::vprintf(fmt, args);
        va_end(args);
    }
    std::printf("\n");
    std::fflush(stdout);
}

#define CHECK(cond) check_impl(static_cast<bool>(cond), __FILE__, __LINE__, #cond, nullptr, "%s", "")
#define CHECK_MSG(cond, ...) check_impl(static_cast<bool>(cond), __FILE__, __LINE__, #cond, nullptr, __VA_ARGS__)
#define CHECK_AT(where, cond, ...) check_impl(static_cast<bool>(cond), __FILE__, __LINE__, #cond, &(where), __VA_ARGS__)

// A watchdog turns a hang (a deadlocked thread pool) into a reported failure instead of a test that
// never ends: every section sets a deadline, and a background thread aborts the run past it.
std::atomic<const char*> g_section{"start-up"};
std::atomic<int64_t> g_deadline_ms{0};

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

void start_watchdog() {
    std::thread([] {
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            const int64_t deadline = g_deadline_ms.load();
            if (deadline != 0 && now_ms() > deadline) {
                std::printf("FAIL: section '%s' did not finish in time (hang)\n",
                            g_section.load());
                std::printf("kernels_test: %d passed, %d failed (aborted)\n", g_passed, g_failed + 1);
                std::fflush(stdout);
                std::_Exit(1);
            }
        }
    }).detach();
}

void begin_section(const char* name, int seconds) {
    g_section.store(name);
    g_deadline_ms.store(now_ms() + int64_t(seconds) * 1000);
    std::printf("-- %s\n", name);
    std::fflush(stdout);
}

// Runs body on a detached thread and reports whether it finished within the timeout. A body that
// hangs stays blocked forever; main then leaves with _Exit, since such a thread cannot be joined.
bool g_left_hung_thread = false;

bool finishes_within(int seconds, std::function<void()> body) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    std::thread([done, body] {
        body();
        done->set_value();
    }).detach();
    if (finished.wait_for(std::chrono::seconds(seconds)) == std::future_status::ready) return true;
    g_left_hung_thread = true;
    return false;
}

// ---------------------------------------------------------------------------------------------
// Float helpers and buffers
// ---------------------------------------------------------------------------------------------

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Bitwise equality, except that any NaN equals any NaN (SIMD conversions may quiet a signalling NaN).
bool same_value(float a, float b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    return bits_of(a) == bits_of(b);
}

// First element where got and want differ under same_value, and how many differ.
struct Mismatch {
    int64_t first = -1;
    int64_t count = 0;
};

Mismatch compare_exact(const float* got, const float* want, int64_t n) {
    Mismatch m;
    for (int64_t i = 0; i < n; ++i) {
        if (!same_value(got[i], want[i])) {
            if (m.first < 0) m.first = i;
            ++m.count;
        }
    }
    return m;
}

// A kernel argument: `misalign` spare elements before the data (to shift the start pointer) and
// `guard` sentinel elements after it. Inputs use guard = 0 so the vector ends at the last element.
template <typename T>
class Buffer {
public:
    static constexpr int64_t kGuard = 32;

    Buffer(int64_t n, int64_t misalign, int64_t guard, T sentinel = T())
        : n_(n), misalign_(misalign), guard_(guard), sentinel_(sentinel),
          v_(static_cast<size_t>(misalign + n + guard), sentinel) {}

    T* data() { return v_.data() + misalign_; }
    const T* data() const { return v_.data() + misalign_; }
    T& operator[](int64_t i) { return data()[i]; }
    int64_t size() const { return n_; }

    // True if the spare elements on both sides still hold the sentinel, bit for bit.
    bool guards_intact() const {
        for (int64_t i = 0; i < misalign_; ++i) {
            if (std::memcmp(&v_[i], &sentinel_, sizeof(T)) != 0) return false;
        }
        for (int64_t i = misalign_ + n_; i < misalign_ + n_ + guard_; ++i) {
            if (std::memcmp(&v_[i], &sentinel_, sizeof(T)) != 0) return false;
        }
        return true;
    }

private:
    int64_t n_, misalign_, guard_;
    T sentinel_;
    std::vector<T> v_;
};

// A quiet NaN with a payload no kernel produces: a write into a guard cell is always visible.
float sentinel_float() {
    const uint32_t u = 0x7fa5a5a5u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

using Rng = std::mt19937;

Buffer<float> random_floats(Rng& rng, int64_t n, int64_t misalign, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    Buffer<float> b(n, misalign, 0);
    for (int64_t i = 0; i < n; ++i) b[i] = dist(rng);
    return b;
}

// The tables under test: the scalar one always, AVX2 and AVX-512 where this CPU runs them.
std::vector<const KernelTable*> tables_under_test() {
    std::vector<const KernelTable*> t{&xpu::scalar_kernels()};
    if (xpu::avx2_kernels() != nullptr) t.push_back(xpu::avx2_kernels());
    if (xpu::avx512_kernels() != nullptr) t.push_back(xpu::avx512_kernels());
    if (xpu::avx512bf16_kernels() != nullptr) t.push_back(xpu::avx512bf16_kernels());
    return t;
}

// Every n in 0..130 (all tail lengths of every vector width, twice over), the power-of-two
// neighbourhoods, and random sizes up to 5000 of which about half are odd.
std::vector<int64_t> test_sizes(Rng& rng) {
    std::vector<int64_t> sizes;
    for (int64_t n = 0; n <= 130; ++n) sizes.push_back(n);
    for (int64_t n : {255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 4999, 5000}) sizes.push_back(n);
    std::uniform_int_distribution<int64_t> dist(131, 5000);
    for (int i = 0; i < 40; ++i) {
        int64_t n = dist(rng);
        if (i % 2 == 0) n |= 1;  // odd
        sizes.push_back(std::min<int64_t>(n, 5000));
    }
    return sizes;
}

// ---------------------------------------------------------------------------------------------
// Scalar conversions (common.h): known values and independent formulas
// ---------------------------------------------------------------------------------------------

// IEEE half from its fields with ldexp, independent of the bit manipulation in common.h.
float f16_by_formula(uint16_t h) {
    const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0) v = std::ldexp(double(mant), -24);
    else if (exp == 0x1f) v = mant == 0 ? HUGE_VAL : NAN;
    else v = std::ldexp(double(1024 + mant), exp - 25);
    return static_cast<float>(sign ? -v : v);
}

// OCP e4m3fn from its fields: bias 7, subnormals m * 2^-9, S.1111.111 is NaN, no infinities.
float e4m3_by_formula(uint8_t c) {
    const int sign = c >> 7, exp = (c >> 3) & 0xf, mant = c & 0x7;
    double v;
    if (exp == 0xf && mant == 0x7) v = NAN;
    else if (exp == 0) v = std::ldexp(double(mant), -9);
    else v = std::ldexp(double(8 + mant), exp - 10);
    return static_cast<float>(sign ? -v : v);
}

void expect_value(const char* kernel, unsigned code, float got, float want) {
    const Where w{kernel, "scalar", 1};
    CHECK_AT(w, same_value(got, want), "code 0x%04x: got %.9g (0x%08x), want %.9g (0x%08x)", code, got,
             bits_of(got), want, bits_of(want));
}

void test_scalar_conversions() {
    begin_section("scalar conversions", 60);
    // known values
    expect_value("bf16_to_f32", 0x3F80, xpu::bf16_to_f32(0x3F80), 1.0f);
    expect_value("bf16_to_f32", 0xC000, xpu::bf16_to_f32(0xC000), -2.0f);
    expect_value("bf16_to_f32", 0xFF80, xpu::bf16_to_f32(0xFF80), -INFINITY);
    expect_value("f16_to_f32", 0x3C00, xpu::f16_to_f32(0x3C00), 1.0f);
    expect_value("f16_to_f32", 0x0001, xpu::f16_to_f32(0x0001), std::ldexp(1.0f, -24));
    expect_value("f16_to_f32", 0x03FF, xpu::f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
    expect_value("f16_to_f32", 0x0400, xpu::f16_to_f32(0x0400), std::ldexp(1.0f, -14));
    expect_value("f16_to_f32", 0x7BFF, xpu::f16_to_f32(0x7BFF), 65504.0f);
    expect_value("f16_to_f32", 0x7C00, xpu::f16_to_f32(0x7C00), INFINITY);
    expect_value("f16_to_f32", 0xFC00, xpu::f16_to_f32(0xFC00), -INFINITY);
    expect_value("f16_to_f32", 0x7E00, xpu::f16_to_f32(0x7E00), NAN);
    expect_value("f16_to_f32", 0x8000, xpu::f16_to_f32(0x8000), -0.0f);  // bitwise: the sign survives
    expect_value("fp8_e4m3_to_f32", 0x38, xpu::fp8_e4m3_to_f32(0x38), 1.0f);
    expect_value("fp8_e4m3_to_f32", 0x7E, xpu::fp8_e4m3_to_f32(0x7E), 448.0f);
    expect_value("fp8_e4m3_to_f32", 0xFE, xpu::fp8_e4m3_to_f32(0xFE), -448.0f);
    expect_value("fp8_e4m3_to_f32", 0x01, xpu::fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
    expect_value("fp8_e4m3_to_f32", 0x07, xpu::fp8_e4m3_to_f32(0x07), std::ldexp(7.0f, -9));
    expect_value("fp8_e4m3_to_f32", 0x08, xpu::fp8_e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
    expect_value("fp8_e4m3_to_f32", 0x7F, xpu::fp8_e4m3_to_f32(0x7F), NAN);
    expect_value("fp8_e4m3_to_f32", 0xFF, xpu::fp8_e4m3_to_f32(0xFF), NAN);
    expect_value("fp8_e4m3_to_f32", 0x80, xpu::fp8_e4m3_to_f32(0x80), -0.0f);
    CHECK(std::signbit(xpu::fp8_e4m3_to_f32(0x80)));
    CHECK(!std::signbit(xpu::fp8_e4m3_to_f32(0x00)));

    // Exhaustive against the independent formulas (one check per dtype, first mismatch reported).
    {
        int64_t bad = 0, first = -1;
        for (uint32_t h = 0; h < 65536; ++h) {
            if (!same_value(xpu::f16_to_f32(uint16_t(h)), f16_by_formula(uint16_t(h)))) {
                if (first < 0) first = h;
                ++bad;
            }
        }
        const Where w{"f16_to_f32 (vs formula)", "scalar", 65536};
        CHECK_AT(w, bad == 0, "%lld codes differ, first 0x%04llx", (long long)bad, (long long)first);
    }
    {
        // bf16 is the top half of an f32: the low 16 bits must be zero and the top half the code
        int64_t bad = 0, first = -1;
        for (uint32_t h = 0; h < 65536; ++h) {
            if (bits_of(xpu::bf16_to_f32(uint16_t(h))) != (h << 16)) {
                if (first < 0) first = h;
                ++bad;
            }
        }
        const Where w{"bf16_to_f32 (vs bits)", "scalar", 65536};
        CHECK_AT(w, bad == 0, "%lld codes differ, first 0x%04llx", (long long)bad, (long long)first);
    }
    {
        int64_t bad = 0, first = -1;
        for (uint32_t c = 0; c < 256; ++c) {
            if (!same_value(xpu::fp8_e4m3_to_f32(uint8_t(c)), e4m3_by_formula(uint8_t(c)))) {
                if (first < 0) first = c;
                ++bad;
            }
        }
        const Where w{"fp8_e4m3_to_f32 (vs formula)", "scalar", 256};
        CHECK_AT(w, bad == 0, "%lld codes differ, first 0x%02llx", (long long)bad, (long long)first);
    }
}

// ---------------------------------------------------------------------------------------------
// dot_f32 / dot4_f32: against a double-precision dot
// ---------------------------------------------------------------------------------------------

struct DotRef {
    double value;  // exact enough: double accumulation of float products
    double abs;    // sum |a_i b_i|, the scale of the FP32 rounding error
};

DotRef dot_reference(const float* a, const float* b, int64_t n) {
    DotRef r{0.0, 0.0};
    for (int64_t i = 0; i < n; ++i) {
        const double p = double(a[i]) * double(b[i]);
        r.value += p;
        r.abs += std::fabs(p);
    }
    return r;
}

// FP32 accumulation in any order: error within a few thousand ulps of sum |a_i b_i| for n <= 5000
// in the worst case, far less for random signs; 1e-5 relative leaves margin but catches a dropped
// or doubled element (error ~ |a_i b_i|, i.e. ~1e-4 relative or more).
bool dot_close(float got, const DotRef& ref) {
    return std::fabs(double(got) - ref.value) <= 1e-5 * ref.abs + 1e-30;
}

void test_dot(const KernelTable& k, const std::vector<int64_t>& sizes, Rng& rng) {
    for (int64_t n : sizes) {
        const Where w{"dot_f32", k.isa, n};
        const int64_t mis_a = n % 3, mis_b = (n / 3) % 5;  // varied, unaligned start pointers
        Buffer<float> a = random_floats(rng, n, mis_a), b = random_floats(rng, n, mis_b);
        const DotRef ref = dot_reference(a.data(), b.data(), n);
        const float got = k.dot_f32(a.data(), b.data(), n);
        CHECK_AT(w, dot_close(got, ref), "got %.9g, want %.12g (sum|ab| %.6g)", got, ref.value, ref.abs);

        // all ones: the exact answer is n, so every element must be counted exactly once
        Buffer<float> ones(n, mis_b, 0, 1.0f);
        const float count = k.dot_f32(ones.data(), ones.data(), n);
        CHECK_AT(w, count == float(n), "ones . ones = %.9g, want %lld", count, (long long)n);
    }
}

void test_dot4(const KernelTable& k, const std::vector<int64_t>& sizes, Rng& rng) {
    for (int64_t n : sizes) {
        const Where w{"dot4_f32", k.isa, n};
        Buffer<float> x = random_floats(rng, n, n % 2);
        std::vector<Buffer<float>> rows;
        for (int r = 0; r < 4; ++r) rows.push_back(random_floats(rng, n, (n + r) % 4));
        Buffer<float> out(4, 1, Buffer<float>::kGuard, sentinel_float());
        k.dot4_f32(x.data(), rows[0].data(), rows[1].data(), rows[2].data(), rows[3].data(), n, out.data());
        for (int r = 0; r < 4; ++r) {
            const DotRef ref = dot_reference(x.data(), rows[r].data(), n);
            CHECK_AT(w, dot_close(out[r], ref), "row %d: got %.9g, want %.12g (sum|ab| %.6g)", r, out[r], ref.value,
                     ref.abs);
        }
        CHECK_AT(w, out.guards_intact(), "wrote outside out[0..3]");

        // x = ones, row r = r + 1: exact answers (r + 1) * n
        Buffer<float> ones(n, 0, 0, 1.0f);
        std::vector<Buffer<float>> consts;
        for (int r = 0; r < 4; ++r) consts.emplace_back(n, r, 0, float(r + 1));
        k.dot4_f32(ones.data(), consts[0].data(), consts[1].data(), consts[2].data(), consts[3].data(), n, out.data());
        for (int r = 0; r < 4; ++r) {
            CHECK_AT(w, out[r] == float((r + 1) * n), "row %d of constants: got %.9g, want %lld", r, out[r],
                     (long long)((r + 1) * n));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// axpy_f32: against the scalar kernel and a double-precision reference
// ---------------------------------------------------------------------------------------------

void test_axpy(const KernelTable& k, const std::vector<int64_t>& sizes, Rng& rng) {
    std::uniform_real_distribution<float> coef(-2.0f, 2.0f);
    const float u = std::ldexp(1.0f, -24);  // unit roundoff of FP32
    for (int64_t n : sizes) {
        const Where w{"axpy_f32", k.isa, n};
        const float a = coef(rng);
        Buffer<float> x = random_floats(rng, n, n % 4);
        Buffer<float> y0 = random_floats(rng, n, 0);

        Buffer<float> want(n, 0, 0);
        std::copy(y0.data(), y0.data() + n, want.data());
        xpu::scalar_kernels().axpy_f32(a, x.data(), want.data(), n);

        Buffer<float> y(n, (n + 1) % 4, Buffer<float>::kGuard, sentinel_float());
        std::copy(y0.data(), y0.data() + n, y.data());
        k.axpy_f32(a, x.data(), y.data(), n);

        // Scalar rounds a*x and then the sum; FMA rounds once. Each result is within u*(|ax|+|y|)
        // of the exact value (plus u|ax| for the separate product), so they differ by at most a few
        // u*(|ax|+|y0|); 4u leaves room for an FMA-contracted tail. Also check against double.
        int64_t bad = 0, first = -1;
        double first_got = 0, first_want = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double ax = double(a) * double(x[i]);
            const double exact = ax + double(y0[i]);
            const double scale = std::fabs(ax) + std::fabs(double(y0[i]));
            const bool vs_scalar = std::fabs(double(y[i]) - double(want[i])) <= 4 * u * scale + 1e-37;
            const bool vs_exact = std::fabs(double(y[i]) - exact) <= 2 * u * scale + 1e-37;
            if (!vs_scalar || !vs_exact) {
                if (first < 0) { first = i; first_got = y[i]; first_want = want[i]; }
                ++bad;
            }
        }
        CHECK_AT(w, bad == 0, "a=%.9g: %lld elements off, first [%lld] got %.9g, scalar %.9g", a, (long long)bad,
                 (long long)first, first_got, first_want);
        CHECK_AT(w, y.guards_intact(), "wrote outside y[0..n)");

        // a = 0 leaves y bitwise unchanged (y0 holds no -0.0)
        Buffer<float> same(n, 0, 0);
        std::copy(y0.data(), y0.data() + n, same.data());
        k.axpy_f32(0.0f, x.data(), same.data(), n);
        const Mismatch m = compare_exact(same.data(), y0.data(), n);
        CHECK_AT(w, m.count == 0, "a=0 changed %lld elements, first [%lld]", (long long)m.count, (long long)m.first);
    }
}

// ---------------------------------------------------------------------------------------------
// bf16_to_f32 / f16_to_f32: exhaustive, bitwise equal to common.h (NaN as NaN)
// ---------------------------------------------------------------------------------------------

using Conv16 = void (*)(const uint16_t*, float*, int64_t);
using Scalar16 = float (*)(uint16_t);

// One conversion call over `src`, compared with the element-wise scalar function.
void check_conv16(const Where& w, Conv16 conv, Scalar16 scalar, const uint16_t* src, int64_t n, int64_t dst_misalign) {
    Buffer<float> dst(n, dst_misalign, Buffer<float>::kGuard, sentinel_float());
    conv(src, dst.data(), n);
    Buffer<float> want(n, 0, 0);
    for (int64_t i = 0; i < n; ++i) want[i] = scalar(src[i]);
    const Mismatch m = compare_exact(dst.data(), want.data(), n);
    if (m.count != 0) {
        const int64_t i = m.first;
        CHECK_AT(w, m.count == 0, "%lld elements differ, first [%lld] code 0x%04x: got %.9g (0x%08x), want %.9g (0x%08x)",
                 (long long)m.count, (long long)i, src[i], dst[i], bits_of(dst[i]), want[i], bits_of(want[i]));
    } else {
        CHECK_AT(w, true, "%s", "");
    }
    CHECK_AT(w, dst.guards_intact(), "wrote outside dst[0..n)");
}

// Counts NaN codes whose SIMD result is a NaN with other bits than the scalar one (informational:
// vcvtph2ps quiets signalling NaNs, which the NaN-as-NaN comparison accepts).
int64_t nan_payload_differences(Conv16 conv, Scalar16 scalar) {
    std::vector<uint16_t> src(65536);
    for (uint32_t h = 0; h < 65536; ++h) src[h] = uint16_t(h);
    std::vector<float> dst(65536);
    conv(src.data(), dst.data(), 65536);
    int64_t diff = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        if (std::isnan(dst[h]) && bits_of(dst[h]) != bits_of(scalar(uint16_t(h)))) ++diff;
    }
    return diff;
}

void test_conv16(const KernelTable& k, const char* name, Conv16 conv, Scalar16 scalar, Rng& rng) {
    // every code, in order, in one call: the whole SIMD body runs over every bit pattern
    {
        Buffer<uint16_t> src(65536, 0, 0);
        for (uint32_t h = 0; h < 65536; ++h) src[h] = uint16_t(h);
        check_conv16(Where{name, k.isa, 65536}, conv, scalar, src.data(), 65536, 0);
    }
    // every code again from an odd start, so the vector loads straddle differently
    {
        Buffer<uint16_t> src(65535, 1, 0);
        for (uint32_t h = 0; h < 65535; ++h) src[h] = uint16_t(h + 1);
        check_conv16(Where{name, k.isa, 65535}, conv, scalar, src.data(), 65535, 3);
    }
    // short and odd lengths with unaligned source and destination: every tail length
    std::uniform_int_distribution<uint32_t> code(0, 65535);
    std::vector<int64_t> lengths;
    for (int64_t n = 0; n <= 40; ++n) lengths.push_back(n);
    for (int64_t n : {63, 64, 65, 127, 128, 129, 1001, 4097}) lengths.push_back(n);
    for (int64_t n : lengths) {
        for (int64_t mis = 0; mis < 4; ++mis) {
            Buffer<uint16_t> src(n, mis, 0);
            for (int64_t i = 0; i < n; ++i) src[i] = uint16_t(code(rng));
            check_conv16(Where{name, k.isa, n}, conv, scalar, src.data(), n, (mis + 1) % 4);
        }
    }
    const int64_t payload = nan_payload_differences(conv, scalar);
    if (payload != 0) {
        std::printf("   note: %s/%s returns a different NaN bit pattern for %lld NaN codes (accepted)\n", name, k.isa,
                    (long long)payload);
    }
}

// ---------------------------------------------------------------------------------------------
// fp8_to_f32: exhaustive codes, several block sizes, bitwise equal to scalar (NaN as NaN)
// ---------------------------------------------------------------------------------------------

// Block scales for `blocks` blocks: ordinary values plus signs, powers of two, a tiny scale (subnormal
// products) and a huge one (448 * 1e36 overflows to inf).
std::vector<float> make_scales(Rng& rng, int64_t blocks) {
    static const float specials[] = {1.0f, 0.5f, -2.0f, 3.14159265f, 1e-3f, 1e-40f, 1e36f, -0.75f};
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    std::vector<float> s(static_cast<size_t>(blocks));
    for (int64_t i = 0; i < blocks; ++i) {
        s[i] = (i % 3 == 0) ? specials[(i / 3) % 8] : dist(rng);
    }
    return s;
}

void check_fp8(const KernelTable& k, const std::vector<uint8_t>& codes, int64_t src_misalign, int64_t dst_misalign,
               int64_t block, Rng& rng) {
    const int64_t n = static_cast<int64_t>(codes.size());
    const Where w{"fp8_to_f32", k.isa, n};
    Buffer<uint8_t> src(n, src_misalign, 0);
    std::copy(codes.begin(), codes.end(), src.data());
    const int64_t blocks = (n + block - 1) / block;
    // the scale row ends exactly at the last block: reading a scale past it is an ASan error
    const std::vector<float> scales = make_scales(rng, blocks);

    Buffer<float> got(n, dst_misalign, Buffer<float>::kGuard, sentinel_float());
    k.fp8_to_f32(src.data(), got.data(), n, scales.data(), block);
    Buffer<float> want(n, 0, 0);
    xpu::scalar_kernels().fp8_to_f32(src.data(), want.data(), n, scales.data(), block);

    // the scalar kernel itself: code value times the scale of its block, one rounding
    int64_t ref_bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!same_value(want[i], xpu::fp8_e4m3_to_f32(src[i]) * scales[i / block])) ++ref_bad;
    }
    CHECK_AT(w, ref_bad == 0, "block %lld: scalar kernel differs from code*scale in %lld elements", (long long)block,
             (long long)ref_bad);

    const Mismatch m = compare_exact(got.data(), want.data(), n);
    if (m.count != 0) {
        const int64_t i = m.first;
        CHECK_AT(w, m.count == 0, "block %lld: %lld elements differ, first [%lld] code 0x%02x scale %.9g: got %.9g, want %.9g",
                 (long long)block, (long long)m.count, (long long)i, src[i], scales[i / block], got[i], want[i]);
    } else {
        CHECK_AT(w, true, "%s", "");
    }
    CHECK_AT(w, got.guards_intact(), "block %lld: wrote outside dst[0..n)", (long long)block);
}

void test_fp8(const KernelTable& k, Rng& rng) {
    // all 256 codes in order; 3 and 100 do not divide 256, so the last block is partial
    std::vector<uint8_t> all(256);
    for (int c = 0; c < 256; ++c) all[c] = uint8_t(c);
    for (int64_t block : {1, 3, 16, 128, 100, 256, 1000}) {
        check_fp8(k, all, 0, 0, block, rng);
        check_fp8(k, all, 1, 3, block, rng);  // unaligned source and destination
    }
    // random codes at many lengths: tails inside a block and blocks that end mid-vector
    std::uniform_int_distribution<int> code(0, 255);
    std::vector<int64_t> lengths;
    for (int64_t n = 0; n <= 40; ++n) lengths.push_back(n);
    for (int64_t n : {255, 257, 1000, 4099}) lengths.push_back(n);
    for (int64_t n : lengths) {
        std::vector<uint8_t> codes(static_cast<size_t>(n));
        for (auto& c : codes) c = uint8_t(code(rng));
        for (int64_t block : {1, 3, 7, 16, 128, 100, 5000}) check_fp8(k, codes, n % 5, n % 3, block, rng);
    }
}

// f32_to_bf16: every table rounds to nearest even like the scalar f32_to_bf16 (NaN stays NaN); the
// native vcvtneps2bf16 treats subnormal inputs as zero, which is the only difference allowed.
void test_f32_to_bf16(const KernelTable& k, Rng& rng) {
    std::vector<float> specials = {0.f, -0.f, 1.f, -1.f, 1.00390625f, 1.0078125f, 3.0e38f, -3.4e38f,
                                   std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::quiet_NaN(), 1e-40f, -1e-42f};
    std::uniform_int_distribution<uint32_t> bits;
    for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 33, 100, 1001}) {
        Buffer<float> src(n, n % 3, 0);
        for (int64_t i = 0; i < n; ++i) {
            if (i < static_cast<int64_t>(specials.size()) && n > 20) {
                src[i] = specials[static_cast<size_t>(i)];
            } else {
                const uint32_t u = bits(rng);
                std::memcpy(&src[i], &u, 4);
            }
        }
        Buffer<uint16_t> got(n, n % 2, Buffer<uint16_t>::kGuard, uint16_t(0xabcd));
        k.f32_to_bf16(src.data(), got.data(), n);
        const Where w{"f32_to_bf16", k.isa, n};
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
            const uint16_t want = xpu::f32_to_bf16(src[i]);
            const float x = src[i];
            const bool nan = x != x;
            const bool subnormal = x != 0.f && std::fabs(x) < std::numeric_limits<float>::min();
            if (nan) {
                if (!std::isnan(xpu::bf16_to_f32(got[i]))) ++bad;
            } else if (got[i] != want && !(subnormal && (got[i] & 0x7fff) == 0)) {
                ++bad;
            }
        }
        CHECK_AT(w, bad == 0, "%lld of %lld values rounded differently from the scalar conversion", (long long)bad,
                 (long long)n);
        CHECK_AT(w, got.guards_intact(), "%s", "wrote outside dst[0..n)");
    }
}

// Batch invariance of a panel GEMM whose full result (M rows, N columns, rows ldy apart) is `got`: the
// last row alone, and the last panel alone, give the same bits (the invariance the serving engine relies
// on). run(row0, rows, p0, y) computes rows [row0, row0 + rows) over panels [p0, last] into y.
template <typename Run>
void check_batch_invariance(const Where& where, Buffer<float>& got, int64_t M, int64_t N, int64_t ldy, Run&& run) {
    const int64_t panels = xpu::panels_for(N);
    std::vector<float> alone(static_cast<size_t>(ldy), sentinel_float());
    run(M - 1, 1, 0, alone.data());
    std::vector<float> last_panel(static_cast<size_t>(M * ldy), sentinel_float());
    run(0, M, panels - 1, last_panel.data());
    int64_t differ = 0;
    for (int64_t c = 0; c < N; ++c) differ += !same_value(alone[c], got[(M - 1) * ldy + c]);
    for (int64_t m = 0; m < M; ++m) {
        for (int64_t c = (panels - 1) * xpu::kPanel; c < N; ++c) differ += !same_value(last_panel[m * ldy + c], got[m * ldy + c]);
    }
    CHECK_AT(where, differ == 0, "M=%lld N=%lld: %lld outputs depend on the rows or panels beside them", (long long)M,
             (long long)N, (long long)differ);
}

// gemm_bf16 on odd shapes against the scalar kernel: the tables that widen BF16 and use FMA match it bit
// for bit; vdpbf16ps (its own rounding of the pair sum) within a bound relative to sum |a w|. Every table:
// a row alone equals that row in a batch, and a panel computed alone equals it in a wider call
// (the batch invariance the serving engine relies on).
void test_gemm_bf16(const KernelTable& k, Rng& rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    const bool exact = std::strcmp(k.isa, "avx512bf16") != 0;
    for (int64_t K : {1, 2, 3, 31, 64, 129, 300}) {
        for (int64_t N : {1, 5, 32, 33, 64, 97, 160}) {
            for (int64_t M : {1, 2, 5, 6, 7, 13}) {
                const int64_t pairs = xpu::pairs_for(K), lda = 2 * pairs + 2;
                std::vector<uint16_t> w(static_cast<size_t>(xpu::packed_bf16_elements(N, K)), 0);
                std::vector<float> wf(static_cast<size_t>(N * K)), row(static_cast<size_t>(K));
                for (int64_t r = 0; r < N; ++r) {
                    for (int64_t i = 0; i < K; ++i) row[i] = xpu::bf16_to_f32(xpu::f32_to_bf16(normal(rng)));
                    std::copy(row.begin(), row.end(), wf.begin() + r * K);
                    xpu::pack_bf16_row(row.data(), K, r, w.data());
                }
                std::vector<uint16_t> a(static_cast<size_t>(M * lda), 0);
                std::vector<float> af(static_cast<size_t>(M * K));
                for (int64_t m = 0; m < M; ++m) {
                    for (int64_t i = 0; i < K; ++i) {
                        a[m * lda + i] = xpu::f32_to_bf16(normal(rng));
                        af[m * K + i] = xpu::bf16_to_f32(a[m * lda + i]);
                    }
                }
                const int64_t panels = xpu::panels_for(N), ldy = N + 3;
                Buffer<float> want(M * ldy, 0, 0, 0.f), got(M * ldy, 1, Buffer<float>::kGuard, sentinel_float());
                for (int64_t i = 0; i < M * ldy; ++i) got[i] = sentinel_float();
                xpu::scalar_kernels().gemm_bf16(a.data(), lda, M, w.data(), pairs, N, 0, panels, want.data(), ldy);
                k.gemm_bf16(a.data(), lda, M, w.data(), pairs, N, 0, panels, got.data(), ldy);
                const Where where{"gemm_bf16", k.isa, K};
                int64_t bad = 0, untouched = 0;
                double worst = 0;
                for (int64_t m = 0; m < M; ++m) {
                    for (int64_t c = 0; c < ldy; ++c) {
                        const float g = got[m * ldy + c];
                        if (c >= N) {
                            if (!same_value(g, sentinel_float())) ++bad;  // wrote past the last column
                            continue;
                        }
                        double mag = 0, ref = 0;
                        for (int64_t i = 0; i < K; ++i) {
                            mag += std::fabs(double(af[m * K + i]) * wf[c * K + i]);
                            ref += double(af[m * K + i]) * wf[c * K + i];
                        }
                        if (same_value(g, sentinel_float())) ++untouched;
                        const double err = std::fabs(double(g) - double(want[m * ldy + c]));
                        worst = std::max(worst, err / (mag + 1e-30));
                        if (exact ? !same_value(g, want[m * ldy + c]) : err > 1e-6 * mag + 1e-30) ++bad;
                        // and the scalar kernel itself is an FP32 sum: close to the double-precision dot
                        if (std::fabs(double(want[m * ldy + c]) - ref) > 1e-6 * mag + 1e-30) ++bad;
                    }
                }
                CHECK_AT(where, bad == 0 && untouched == 0, "M=%lld N=%lld: %lld wrong, %lld not written (worst rel %.3g)",
                         (long long)M, (long long)N, (long long)bad, (long long)untouched, worst);
                CHECK_AT(where, got.guards_intact(), "M=%lld N=%lld: wrote outside y", (long long)M, (long long)N);

                check_batch_invariance(where, got, M, N, ldy, [&](int64_t row0, int64_t rows, int64_t p0, float* y) {
                    k.gemm_bf16(a.data() + row0 * lda, lda, rows, w.data(), pairs, N, p0, panels, y, ldy);
                });
            }
        }
    }
}

// quantize_q8 against the scalar kernel (bit for bit: codes, scales and corrections) and against its
// definition: codes within 1/2 of x / d, |code| <= 127, padding zero, a non-finite block poisoned.
void test_quantize_q8(const KernelTable& k, Rng& rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    for (int64_t n : {1, 5, 16, 31, 32, 33, 64, 100, 1001}) {
        for (int variant = 0; variant < 3; ++variant) {
            std::vector<float> x(static_cast<size_t>(n));
            for (auto& v : x) v = normal(rng) * (variant == 1 ? 1e-3f : 3.f);
            if (variant == 2) {  // a zero block and a NaN block
                for (int64_t i = 0; i < std::min<int64_t>(n, 32); ++i) x[i] = 0.f;
                if (n > 40) x[40] = std::numeric_limits<float>::quiet_NaN();
            }
            const int64_t blocks = xpu::q8_blocks_for(n);
            std::vector<uint8_t> want(static_cast<size_t>(xpu::q8_row_bytes(n)), 0xab), got(want);
            const xpu::Q8Row w = xpu::q8_row(want.data(), blocks), g = xpu::q8_row(got.data(), blocks);
            xpu::scalar_kernels().quantize_q8(x.data(), n, w.q, w.d, w.corr);
            k.quantize_q8(x.data(), n, g.q, g.d, g.corr);
            const Where where{"quantize_q8", k.isa, n};
            CHECK_AT(where, std::memcmp(want.data(), got.data(), want.size()) == 0, "variant %d differs from scalar",
                     variant);
            int64_t bad = 0;
            for (int64_t b = 0; b < blocks; ++b) {
                int32_t sum = 0;
                bool finite = true;
                for (int64_t i = b * 32; i < std::min(n, b * 32 + 32); ++i) finite = finite && std::isfinite(x[i]);
                for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
                    sum += w.q[i];
                    if (i >= n || !finite) { bad += w.q[i] != 0; continue; }
                    bad += std::abs(w.q[i]) > 127;
                    if (w.d[b] > 0) bad += std::fabs(x[i] / w.d[b] - w.q[i]) > 0.5f + 1e-3f;
                }
                bad += w.corr[b] != -128 * sum;
                bad += finite == std::isnan(w.d[b]);
            }
            CHECK_AT(where, bad == 0, "variant %d: %lld values break the definition", variant, (long long)bad);
        }
    }
}

// gemm_q8 on odd shapes: every table equals the scalar kernel bit for bit (integer block sums), the
// scalar kernel equals the double-precision dot of the dequantised values closely, and a row or panel
// alone equals it in a wider call.
void test_gemm_q8(const KernelTable& k, Rng& rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    for (int64_t K : {1, 3, 31, 32, 64, 100, 300}) {
        for (int64_t N : {1, 5, 32, 33, 97}) {
            for (int64_t M : {1, 2, 5, 6, 7, 13}) {
                const int64_t blocks = xpu::q8_blocks_for(K), lda = xpu::q8_row_bytes(K) + 24;
                std::vector<uint8_t> w(static_cast<size_t>(xpu::packed_q8_bytes(N, K)), 0);
                std::vector<float> row(static_cast<size_t>(K));
                for (int64_t r = 0; r < N; ++r) {
                    for (auto& v : row) v = normal(rng);
                    xpu::pack_q8_row(row.data(), K, r, w.data());
                }
                std::vector<uint8_t> a(static_cast<size_t>(M * lda), 0);
                for (int64_t m = 0; m < M; ++m) {
                    for (auto& v : row) v = normal(rng);
                    const xpu::Q8Row q = xpu::q8_row(a.data() + m * lda, blocks);
                    xpu::scalar_kernels().quantize_q8(row.data(), K, q.q, q.d, q.corr);
                }
                const int64_t panels = xpu::panels_for(N), ldy = N + 3;
                Buffer<float> want(M * ldy, 0, 0, 0.f), got(M * ldy, 1, Buffer<float>::kGuard, sentinel_float());
                for (int64_t i = 0; i < M * ldy; ++i) got[i] = sentinel_float();
                xpu::scalar_kernels().gemm_q8(a.data(), lda, M, w.data(), blocks, N, 0, panels, want.data(), ldy);
                k.gemm_q8(a.data(), lda, M, w.data(), blocks, N, 0, panels, got.data(), ldy);
                const Where where{"gemm_q8", k.isa, K};
                int64_t bad = 0, untouched = 0;
                for (int64_t m = 0; m < M; ++m) {
                    const xpu::Q8Row q = xpu::q8_row(a.data() + m * lda, blocks);
                    for (int64_t c = 0; c < ldy; ++c) {
                        const float g = got[m * ldy + c];
                        if (c >= N) {
                            bad += !same_value(g, sentinel_float());
                            continue;
                        }
                        untouched += same_value(g, sentinel_float());
                        bad += !same_value(g, want[m * ldy + c]);
                        // the definition, in double: sum over k of (q * da) * (code * wd)
                        const uint8_t* panel = w.data() + (c / 32) * blocks * xpu::kQBlockBytes;
                        double ref = 0, mag = 0;
                        for (int64_t b = 0; b < blocks; ++b) {
                            float wd;
                            std::memcpy(&wd, panel + b * xpu::kQBlockBytes + 32 * 32 + (c % 32) * 4, 4);
                            for (int64_t i = 0; i < 32; ++i) {
                                const int code = int(panel[b * xpu::kQBlockBytes + ((i / 4) * 32 + c % 32) * 4 + i % 4]) - 128;
                                const double t = double(q.q[b * 32 + i]) * q.d[b] * code * wd;
                                ref += t;
                                mag += std::fabs(t);
                            }
                        }
                        bad += std::fabs(double(want[m * ldy + c]) - ref) > 1e-5 * mag + 1e-30;
                    }
                }
                CHECK_AT(where, bad == 0 && untouched == 0, "M=%lld N=%lld: %lld wrong, %lld not written",
                         (long long)M, (long long)N, (long long)bad, (long long)untouched);
                CHECK_AT(where, got.guards_intact(), "M=%lld N=%lld: wrote outside y", (long long)M, (long long)N);
                check_batch_invariance(where, got, M, N, ldy, [&](int64_t row0, int64_t rows, int64_t p0, float* y) {
                    k.gemm_q8(a.data() + row0 * lda, lda, rows, w.data(), blocks, N, p0, panels, y, ldy);
                });
            }
        }
    }
}

// silu_mul_f32 against the scalar formula (the exact mode's std::exp): odd lengths, large magnitudes and a
// NaN, which must stay NaN; each element's result must not depend on its neighbours.
void test_silu_mul(const KernelTable& k, Rng& rng) {
    std::uniform_real_distribution<float> val(-20.f, 20.f);
    for (int64_t n : {1, 7, 16, 17, 33, 172, 301}) {
        const Where w{"silu_mul_f32", k.isa, n};
        std::vector<float> g(static_cast<size_t>(n)), u(static_cast<size_t>(n));
        for (auto& x : g) x = val(rng);
        for (auto& x : u) x = val(rng);
        if (n > 3) { g[1] = 100.f; g[2] = -100.f; g[3] = std::numeric_limits<float>::quiet_NaN(); }
        std::vector<float> want = g, got = g;
        xpu::scalar_silu_mul_f32(want.data(), u.data(), n);
        k.silu_mul_f32(got.data(), u.data(), n);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
            if (std::isnan(want[i]) != std::isnan(got[i])) ++bad;
            else if (!std::isnan(want[i]) && std::fabs(want[i] - got[i]) > 1e-6f * std::fabs(want[i]) + 1e-30f) ++bad;
        }
        CHECK_AT(w, bad == 0, "%lld of %lld values differ", (long long)bad, (long long)n);
        // one element alone gives the same bits
        int64_t differ = 0;
        for (int64_t i = 0; i < n; i += 5) {
            float one = g[i];
            k.silu_mul_f32(&one, &u[i], 1);
            differ += std::memcmp(&one, &got[i], 4) != 0;
        }
        CHECK_AT(w, differ == 0, "%lld values differ computed alone", (long long)differ);
    }
}

// attend_block against the scalar kernel: two blocks in a row (so the running state is rescaled), FP32
// and BF16 caches, GQA groups wider than one pass, partial key ranges.
void test_attend_block(const KernelTable& k, Rng& rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    const int64_t bs = 16;
    for (bool bf16 : {false, true}) {
        for (int64_t g : {1, 3, 8, 11}) {
            for (int64_t dqk : {8, 13, 96}) {
                for (int64_t dv : {8, 20, 64}) {
                    for (auto range : {std::pair<int64_t, int64_t>{0, 16}, {3, 9}, {15, 16}, {0, 1}}) {
                        std::vector<float> q(static_cast<size_t>(g * dqk));
                        for (auto& x : q) x = normal(rng) * 0.3f;
                        std::vector<float> kf(static_cast<size_t>(2 * dqk * bs)), vf(static_cast<size_t>(2 * bs * dv));
                        for (auto& x : kf) x = normal(rng);
                        for (auto& x : vf) x = normal(rng);
                        std::vector<uint16_t> kb(kf.size()), vb(vf.size());
                        for (size_t i = 0; i < kf.size(); ++i) kb[i] = xpu::f32_to_bf16(kf[i]);
                        for (size_t i = 0; i < vf.size(); ++i) vb[i] = xpu::f32_to_bf16(vf[i]);
                        const void* K = bf16 ? static_cast<const void*>(kb.data()) : kf.data();
                        const void* V = bf16 ? static_cast<const void*>(vb.data()) : vf.data();
                        const int64_t esz = bf16 ? 2 : 4;
                        auto run = [&](const KernelTable& t, std::vector<float>& m, std::vector<float>& l, std::vector<float>& acc) {
                            m.assign(static_cast<size_t>(g), -std::numeric_limits<float>::infinity());
                            l.assign(static_cast<size_t>(g), 0.f);
                            acc.assign(static_cast<size_t>(g * dv), 0.f);
                            t.attend_block(q.data(), g, dqk, dv, K, V, bs, range.first, range.second, bf16, m.data(), l.data(), acc.data());
                            t.attend_block(q.data(), g, dqk, dv, static_cast<const char*>(K) + dqk * bs * esz,
                                           static_cast<const char*>(V) + bs * dv * esz, bs, 0, 16, bf16, m.data(), l.data(), acc.data());
                        };
                        std::vector<float> m0, l0, a0, m1, l1, a1;
                        run(xpu::scalar_kernels(), m0, l0, a0);
                        run(k, m1, l1, a1);
                        const Where w{"attend_block", k.isa, dqk};
                        int64_t bad = 0;
                        for (int64_t h = 0; h < g; ++h) {
                            if (std::fabs(m0[h] - m1[h]) > 1e-5f * (1 + std::fabs(m0[h]))) ++bad;
                            if (std::fabs(l0[h] - l1[h]) > 1e-5f * l0[h]) ++bad;
                            for (int64_t d = 0; d < dv; ++d) {
                                if (std::fabs(a0[h * dv + d] - a1[h * dv + d]) > 1e-5f * (l0[h] + std::fabs(a0[h * dv + d]))) ++bad;
                            }
                        }
                        CHECK_AT(w, bad == 0, "bf16=%d g=%lld dv=%lld keys [%lld, %lld): %lld values differ", bf16, (long long)g,
                                 (long long)dv, (long long)range.first, (long long)range.second, (long long)bad);
                    }
                }
            }
        }
    }
}

// attend_rows: several rows of one sequence at once, each with its own key range in each of two blocks.
// Each row's m, l and acc must equal, bit for bit, what attend_block gives for that row alone in the same
// table (batch invariance), and be close to the scalar reference.
void test_attend_rows(const KernelTable& k, Rng& rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    std::uniform_int_distribution<int64_t> key(0, 15);
    const int64_t bs = 16;
    for (bool bf16 : {false, true}) {
        for (int64_t g : {1, 2, 3, 8, 11}) {
            for (int64_t dqk : {8, 13}) {
                for (int64_t dv : {8, 20}) {
                    for (int64_t rows : {1, 2, 3, 4, 5, 7, 9}) {
                        std::vector<float> q(static_cast<size_t>(rows * g * dqk));
                        for (auto& x : q) x = normal(rng) * 0.3f;
                        std::vector<float> kf(static_cast<size_t>(2 * dqk * bs)), vf(static_cast<size_t>(2 * bs * dv));
                        for (auto& x : kf) x = normal(rng);
                        for (auto& x : vf) x = normal(rng);
                        std::vector<uint16_t> kb(kf.size()), vb(vf.size());
                        for (size_t i = 0; i < kf.size(); ++i) kb[i] = xpu::f32_to_bf16(kf[i]);
                        for (size_t i = 0; i < vf.size(); ++i) vb[i] = xpu::f32_to_bf16(vf[i]);
                        const void* K = bf16 ? static_cast<const void*>(kb.data()) : kf.data();
                        const void* V = bf16 ? static_cast<const void*>(vb.data()) : vf.data();
                        const int64_t esz = bf16 ? 2 : 4;
                        const void* K2 = static_cast<const char*>(K) + dqk * bs * esz;
                        const void* V2 = static_cast<const char*>(V) + bs * dv * esz;
                        // per row and block a key range [a, b), a < b
                        std::vector<int64_t> a0(rows), b0(rows), a1(rows), b1(rows);
                        for (int64_t r = 0; r < rows; ++r) {
                            int64_t x = key(rng), y = key(rng);
                            a0[r] = std::min(x, y);
                            b0[r] = std::max(x, y) + 1;
                            x = key(rng), y = key(rng);
                            a1[r] = std::min(x, y);
                            b1[r] = std::max(x, y) + 1;
                        }
                        const size_t nh = static_cast<size_t>(rows * g);
                        auto fresh = [&](std::vector<float>& m, std::vector<float>& l, std::vector<float>& acc) {
                            m.assign(nh, -std::numeric_limits<float>::infinity());
                            l.assign(nh, 0.f);
                            acc.assign(nh * static_cast<size_t>(dv), 0.f);
                        };
                        auto together = [&](const KernelTable& t, std::vector<float>& m, std::vector<float>& l, std::vector<float>& acc) {
                            fresh(m, l, acc);
                            t.attend_rows(q.data(), rows, g, dqk, dv, K, V, bs, a0.data(), b0.data(), bf16, m.data(), l.data(), acc.data());
                            t.attend_rows(q.data(), rows, g, dqk, dv, K2, V2, bs, a1.data(), b1.data(), bf16, m.data(), l.data(), acc.data());
                        };
                        std::vector<float> m0, l0, c0, m1, l1, c1, m2, l2, c2;
                        together(xpu::scalar_kernels(), m0, l0, c0);
                        together(k, m1, l1, c1);
                        fresh(m2, l2, c2);
                        for (int64_t r = 0; r < rows; ++r) {
                            float *mr = m2.data() + r * g, *lr = l2.data() + r * g, *ar = c2.data() + r * g * dv;
                            k.attend_block(q.data() + r * g * dqk, g, dqk, dv, K, V, bs, a0[r], b0[r], bf16, mr, lr, ar);
                            k.attend_block(q.data() + r * g * dqk, g, dqk, dv, K2, V2, bs, a1[r], b1[r], bf16, mr, lr, ar);
                        }
                        const Where w{"attend_rows", k.isa, dqk};
                        int64_t bad = 0, differ = 0;
                        for (size_t h = 0; h < nh; ++h) {
                            if (std::fabs(m0[h] - m1[h]) > 1e-5f * (1 + std::fabs(m0[h]))) ++bad;
                            if (std::fabs(l0[h] - l1[h]) > 1e-5f * l0[h]) ++bad;
                            differ += std::memcmp(&m1[h], &m2[h], 4) != 0 || std::memcmp(&l1[h], &l2[h], 4) != 0;
                            for (int64_t d = 0; d < dv; ++d) {
                                const size_t i = h * static_cast<size_t>(dv) + static_cast<size_t>(d);
                                if (std::fabs(c0[i] - c1[i]) > 1e-5f * (l0[h] + std::fabs(c0[i]))) ++bad;
                                differ += std::memcmp(&c1[i], &c2[i], 4) != 0;
                            }
                        }
                        CHECK_AT(w, bad == 0, "bf16=%d g=%lld dv=%lld rows=%lld: %lld values differ from the scalar kernel's",
                                 bf16, (long long)g, (long long)dv, (long long)rows, (long long)bad);
                        CHECK_AT(w, differ == 0, "bf16=%d g=%lld dv=%lld rows=%lld: %lld values differ from attend_block row by row",
                                 bf16, (long long)g, (long long)dv, (long long)rows, (long long)differ);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel tables
// ---------------------------------------------------------------------------------------------

void test_kernel_tables() {
    const auto tables = tables_under_test();
    std::printf("   tables:");
    for (const KernelTable* t : tables) std::printf(" %s", t->isa);
    std::printf(" (reference: scalar)\n");

    Rng rng(20240611u);  // fixed seed: failures reproduce
    const std::vector<int64_t> sizes = test_sizes(rng);
    for (const KernelTable* t : tables) {
        CHECK(t->dot_f32 && t->dot4_f32 && t->axpy_f32 && t->bf16_to_f32 && t->f16_to_f32 && t->fp8_to_f32);
        begin_section("dot_f32", 300);
        test_dot(*t, sizes, rng);
        begin_section("dot4_f32", 300);
        test_dot4(*t, sizes, rng);
        begin_section("axpy_f32", 300);
        test_axpy(*t, sizes, rng);
        begin_section("bf16_to_f32", 300);
        test_conv16(*t, "bf16_to_f32", t->bf16_to_f32, xpu::bf16_to_f32, rng);
        begin_section("f16_to_f32", 300);
        test_conv16(*t, "f16_to_f32", t->f16_to_f32, xpu::f16_to_f32, rng);
        begin_section("fp8_to_f32", 300);
        test_fp8(*t, rng);
        begin_section("f32_to_bf16", 300);
        test_f32_to_bf16(*t, rng);
        begin_section("gemm_bf16", 300);
        test_gemm_bf16(*t, rng);
        begin_section("quantize_q8", 300);
        test_quantize_q8(*t, rng);
        begin_section("gemm_q8", 300);
        test_gemm_q8(*t, rng);
        begin_section("silu_mul_f32", 300);
        CHECK(t->silu_mul_f32 != nullptr);
        test_silu_mul(*t, rng);
        begin_section("attend_block", 300);
        test_attend_block(*t, rng);
        begin_section("attend_rows", 300);
        CHECK(t->attend_rows != nullptr);
        test_attend_rows(*t, rng);
    }
}

// ---------------------------------------------------------------------------------------------
// ISA dispatch
// ---------------------------------------------------------------------------------------------

void test_force_isa() {
    begin_section("force_isa", 60);
    const KernelTable* original = &xpu::kernels();
    CHECK(std::strcmp(xpu_cpu_isa(), original->isa) == 0);

    // unknown names fail and leave the table alone
    for (const char* bad : {"", "sse", "AVX2", "avx512f", "avx", "scalar "}) {
        CHECK_MSG(!xpu::force_isa(bad), "force_isa(\"%s\") accepted", bad);
        CHECK_MSG(&xpu::kernels() == original, "force_isa(\"%s\") changed the table", bad);
    }
    CHECK(xpu_cpu_force_isa("bogus") == XPU_ERR_UNSUPPORTED);
    CHECK(std::strstr(xpu_last_error(), "bogus") != nullptr);
    CHECK(xpu_cpu_force_isa(nullptr) == XPU_ERR_UNSUPPORTED);

    // known names succeed exactly when this CPU has the table, and then select it
    struct Known { const char* name; const KernelTable* table; };
    for (const Known& k : {Known{"scalar", &xpu::scalar_kernels()}, Known{"avx2", xpu::avx2_kernels()},
                           Known{"avx512", xpu::avx512_kernels()}, Known{"avx512bf16", xpu::avx512bf16_kernels()}}) {
        const bool ok = xpu::force_isa(k.name);
        CHECK_MSG(ok == (k.table != nullptr), "force_isa(\"%s\") returned %d", k.name, ok);
        if (ok) {
            CHECK_MSG(&xpu::kernels() == k.table, "after force_isa(\"%s\") the table is %s", k.name, xpu::kernels().isa);
            CHECK_MSG(std::strcmp(xpu::kernels().isa, k.name) == 0, "isa '%s' after forcing '%s'", xpu::kernels().isa, k.name);
            CHECK(std::strcmp(xpu_cpu_isa(), k.name) == 0);
        }
        CHECK((xpu_cpu_force_isa(k.name) == XPU_OK) == (k.table != nullptr));
    }

    // restore what dispatch chose
    CHECK(xpu::force_isa(original->isa));
    CHECK(&xpu::kernels() == original);
}

// ---------------------------------------------------------------------------------------------
// ThreadPool
// ---------------------------------------------------------------------------------------------

// A pool whose workers have (almost certainly) reached their wait loop. Works around the start-up
// race that test_pool_startup_race reproduces: a job or shutdown issued before a worker thread
// first reads generation_ is never seen by that worker. Once one parallel_for that used the workers
// has returned, every worker has started, so the remaining tests are unaffected.
std::unique_ptr<ThreadPool> started_pool(int threads) {
    auto pool = std::make_unique<ThreadPool>(threads);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return pool;
}

// parallel_for over n with grain: every index exactly once, chunks inside [0, n), non-empty, and at
// least `grain` long except the last.
void check_coverage(ThreadPool& pool, int64_t n, int64_t grain) {
    const Where w{"parallel_for", "-", n};
    const int64_t size = std::max<int64_t>(n, 0);
    std::unique_ptr<std::atomic<int>[]> hits(new std::atomic<int>[static_cast<size_t>(size) + 1]);
    for (int64_t i = 0; i < size; ++i) hits[i].store(0);
    std::atomic<int64_t> bad_range{0}, short_chunk{0}, calls{0};
    const int64_t min_chunk = std::max<int64_t>(1, grain);
    pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        calls.fetch_add(1);
        if (b < 0 || e > n || b >= e) {
            bad_range.fetch_add(1);
            return;
        }
        if (e - b < min_chunk && e != n) short_chunk.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
    int64_t missed = 0, repeated = 0, first_bad = -1;
    for (int64_t i = 0; i < size; ++i) {
        const int h = hits[i].load();
        if (h != 1) {
            if (first_bad < 0) first_bad = i;
            (h == 0 ? missed : repeated) += 1;
        }
    }
    CHECK_AT(w, missed == 0 && repeated == 0, "threads %d grain %lld: %lld missed, %lld repeated, first [%lld]",
             pool.size(), (long long)grain, (long long)missed, (long long)repeated, (long long)first_bad);
    CHECK_AT(w, bad_range == 0, "threads %d grain %lld: %lld chunks outside [0, n) or empty", pool.size(),
             (long long)grain, (long long)bad_range.load());
    CHECK_AT(w, short_chunk == 0, "threads %d grain %lld: %lld chunks shorter than the grain", pool.size(),
             (long long)grain, (long long)short_chunk.load());
    if (n <= 0) CHECK_AT(w, calls == 0, "threads %d: fn called %lld times for n <= 0", pool.size(), (long long)calls.load());
}

struct ChunkError {
    int64_t begin;
};

// An exception from one chunk comes back out of parallel_for, and the pool then runs normally.
void check_exceptions(ThreadPool& pool) {
    const Where w{"parallel_for (exception)", "-", 1000};
    for (int64_t grain : {1, 7, 1000, 5000}) {  // 1000 and 5000: the whole range runs inline
        bool caught = false;
        try {
            pool.parallel_for(1000, grain, [&](int64_t b, int64_t e) {
                if (b <= 500 && 500 < e) throw std::runtime_error("chunk 500 failed");
            });
        } catch (const std::runtime_error& e) {
            caught = std::strcmp(e.what(), "chunk 500 failed") == 0;
        } catch (...) {
        }
        CHECK_AT(w, caught, "threads %d grain %lld: the chunk's runtime_error did not come back", pool.size(),
                 (long long)grain);
        check_coverage(pool, 1000, grain);  // still usable
    }
    // every chunk throws: exactly one exception, of the thrown type, comes back
    bool caught = false;
    try {
        pool.parallel_for(100003, 1, [](int64_t b, int64_t) { throw ChunkError{b}; });
    } catch (const ChunkError& e) {
        caught = e.begin >= 0 && e.begin < 100003;
    } catch (...) {
    }
    CHECK_AT(w, caught, "threads %d: a ChunkError from every chunk did not come back", pool.size());
    check_coverage(pool, 100003, 7);
}

// Many short sections back to back, as a decode step issues them.
void check_back_to_back(ThreadPool& pool, int iterations) {
    const Where w{"parallel_for (back to back)", "-", 33};
    std::atomic<int64_t> total{0};
    int64_t wrong_calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < iterations; ++it) {
        std::atomic<int64_t> sum{0};
        pool.parallel_for(33, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
        if (sum.load() != 33) ++wrong_calls;
        total.fetch_add(sum.load());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    CHECK_AT(w, wrong_calls == 0 && total == int64_t(iterations) * 33, "threads %d: %lld calls wrong, total %lld",
             pool.size(), (long long)wrong_calls, (long long)total.load());
    std::printf("   %d back-to-back parallel_for on %d threads: %.1f ms\n", iterations, pool.size(), ms);
}

void test_thread_pool() {
    begin_section("ThreadPool", 300);
    {
        ThreadPool p0(0), pn(-3), p1(1);  // no workers: no start-up race
        CHECK(p0.size() == 1);
        CHECK(pn.size() == 1);
        CHECK(p1.size() == 1);
    }
    for (int threads : {1, 2, 4}) {
        auto pool = started_pool(threads);
        CHECK(pool->size() == threads);
        for (int64_t n : {-5, 0, 1, 7, 1000, 100003}) {
            for (int64_t grain : {0, 1, 7, 1000, 100003}) check_coverage(*pool, n, grain);
        }
        check_exceptions(*pool);
        check_back_to_back(*pool, 10000);
    }
}

// Regression: a ThreadPool used or destroyed right after construction. Workers that read the job
// counter only once they first ran could miss a job issued before that, so parallel_for waited
// forever (active_workers_ never reached 0) and ~ThreadPool hung in join(). Each case runs under a timeout so a hang is a failure, not a stuck test.
void test_pool_startup_race() {
    begin_section("ThreadPool start-up race", 120);
    const bool destroy_ok = finishes_within(10, [] {
        for (int i = 0; i < 200; ++i) ThreadPool pool(4);
    });
    CHECK_MSG(destroy_ok, "%s", "ThreadPool(4) destroyed right after construction hangs in ~ThreadPool (join)");

    const bool job_ok = finishes_within(10, [] {
        for (int i = 0; i < 200; ++i) {
            ThreadPool pool(4);
            std::atomic<int64_t> sum{0};
            pool.parallel_for(64, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
        }
    });
    CHECK_MSG(job_ok, "%s", "parallel_for right after ThreadPool(4) construction hangs (a worker missed the job)");

    // the same through the C ABI: a device opened and closed at once (e.g. a failed model load)
    const bool device_ok = finishes_within(10, [] {
        for (int i = 0; i < 50; ++i) {
            xpu_device* dev = nullptr;
            if (xpu_device_open("cpu", 4, &dev) == XPU_OK) xpu_device_close(dev);
        }
    });
    CHECK_MSG(device_ok, "%s", "xpu_device_open(\"cpu\", 4) followed by xpu_device_close hangs");
}

// ---------------------------------------------------------------------------------------------
// C ABI edges that need no model
// ---------------------------------------------------------------------------------------------

bool write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    return std::fclose(f) == 0 && ok;
}

bool error_mentions(const std::string& what) { return std::strstr(xpu_last_error(), what.c_str()) != nullptr; }

void test_map_file() {
    begin_section("xpu_map_file", 60);
    const char* tmp_env = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp_env && *tmp_env ? tmp_env : "/tmp") + "/xpuflow_kernels_test.XXXXXX";
    std::vector<char> dir_buf(tmpl.begin(), tmpl.end());
    dir_buf.push_back('\0');
    if (::mkdtemp(dir_buf.data()) == nullptr) {
        CHECK_MSG(false, "mkdtemp(%s) failed", tmpl.c_str());
        return;
    }
    const std::string dir = dir_buf.data();
    int64_t addr = -1, size = -1;

    // missing file: I/O error naming the path, outputs untouched
    const std::string missing = dir + "/does-not-exist.safetensors";
    CHECK(xpu_map_file(missing.c_str(), &addr, &size) == XPU_ERR_IO);
    CHECK_MSG(error_mentions(missing), "message '%s' does not name %s", xpu_last_error(), missing.c_str());
    CHECK(addr == -1 && size == -1);

    // empty file: nothing to map
    const std::string empty = dir + "/empty.bin";
    CHECK(write_file(empty, {}));
    CHECK(xpu_map_file(empty.c_str(), &addr, &size) == XPU_ERR_IO);
    CHECK_MSG(error_mentions(empty), "message '%s' does not name %s", xpu_last_error(), empty.c_str());

    // a directory opens but cannot be mapped
    CHECK(xpu_map_file(dir.c_str(), &addr, &size) == XPU_ERR_IO);
    CHECK_MSG(error_mentions(dir), "message '%s' does not name %s", xpu_last_error(), dir.c_str());

    // null arguments
    CHECK(xpu_map_file(nullptr, &addr, &size) == XPU_ERR_INVALID_ARGUMENT);
    CHECK(xpu_map_file(missing.c_str(), nullptr, &size) == XPU_ERR_INVALID_ARGUMENT);
    CHECK(xpu_map_file(missing.c_str(), &addr, nullptr) == XPU_ERR_INVALID_ARGUMENT);

    // a real file, not a multiple of the page size: right size, right bytes, error cleared
    const std::string real = dir + "/weights.bin";
    std::vector<uint8_t> bytes(12345);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 131 + 7);
    CHECK(write_file(real, bytes));
    addr = -1;
    size = -1;
    CHECK(xpu_map_file(real.c_str(), &addr, &size) == XPU_OK);
    CHECK_MSG(*xpu_last_error() == '\0', "error '%s' after success", xpu_last_error());
    CHECK_MSG(size == int64_t(bytes.size()), "size %lld, want %zu", (long long)size, bytes.size());
    if (addr != -1 && addr != 0 && size == int64_t(bytes.size())) {
        CHECK(std::memcmp(reinterpret_cast<const void*>(addr), bytes.data(), bytes.size()) == 0);
        CHECK(xpu_unmap_file(addr, size) == XPU_OK);
    } else {
        CHECK_MSG(false, "no usable mapping (addr %lld)", (long long)addr);
    }

    std::remove(real.c_str());
    std::remove(empty.c_str());
    ::rmdir(dir.c_str());
}

void test_device_open() {
    begin_section("xpu_device_open", 60);
    xpu_device* dev = nullptr;
    CHECK(xpu_device_open("gpu", 1, &dev) == XPU_ERR_UNSUPPORTED);
    CHECK(dev == nullptr);
    CHECK_MSG(error_mentions("gpu"), "message '%s' does not name the kind", xpu_last_error());
    CHECK(xpu_device_open(nullptr, 1, &dev) == XPU_ERR_UNSUPPORTED);
    CHECK(dev == nullptr);
    CHECK(xpu_device_open("cpu", 1, nullptr) == XPU_ERR_INVALID_ARGUMENT);
    // one thread: no workers, so no start-up race (multi-thread open/close is in the race section)
    CHECK(xpu_device_open("cpu", 1, &dev) == XPU_OK);
    CHECK(dev != nullptr);
    CHECK(xpu_device_close(dev) == XPU_OK);
}

void test_abi_struct_size() {
    begin_section("xpu_abi_struct_size", 60);
    struct Named { const char* name; int64_t size; };
    for (const Named& s : {Named{"model_params", int64_t(sizeof(xpu_model_params))},
                           Named{"layer_params", int64_t(sizeof(xpu_layer_params))},
                           Named{"batch", int64_t(sizeof(xpu_batch))}}) {
        const int64_t got = xpu_abi_struct_size(s.name);
        CHECK_MSG(got == s.size, "%s: %lld, sizeof %lld", s.name, (long long)got, (long long)s.size);
        // Java fills these at fixed 8-byte offsets: only 8-byte fields, no padding
        CHECK_MSG(got > 0 && got % 8 == 0, "%s: %lld is not a positive multiple of 8", s.name, (long long)got);
    }
    for (const char* unknown : {"", "unknown", "Batch", "model_params ", "kv_cache"}) {
        CHECK_MSG(xpu_abi_struct_size(unknown) == -1, "'%s' -> %lld", unknown, (long long)xpu_abi_struct_size(unknown));
    }
    CHECK(xpu_abi_struct_size(nullptr) == -1);
}

}  // namespace

int main() {
    start_watchdog();
    test_scalar_conversions();
    test_kernel_tables();
    test_force_isa();
    test_thread_pool();
    test_map_file();
    test_device_open();
    test_abi_struct_size();
    test_pool_startup_race();  // last: a hang there leaves a blocked thread behind
    g_deadline_ms.store(0);

    std::printf("kernels_test: %d passed, %d failed\n", g_passed, g_failed);
    std::fflush(stdout);
    const int rc = g_failed == 0 ? 0 : 1;
    if (g_left_hung_thread) std::_Exit(rc);  // a deadlocked thread cannot be joined or destroyed
    return rc;
}
