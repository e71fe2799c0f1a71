// Internal helpers shared by the CPU device: errors, dtype conversions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace xpu {

// Thrown inside the device; converted to an xpu_status + message at the C ABI boundary (api.cpp).
class Error : public std::runtime_error {
public:
    Error(int status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
    int status() const { return status_; }
private:
    int status_;
};

[[noreturn]] void fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
#define XPU_CHECK_ARG(cond, ...) do { if (!(cond)) ::xpu::fail(XPU_ERR_INVALID_ARGUMENT, __VA_ARGS__); } while (0)

// Engine-owned memory, 64-byte aligned (a cache line, a zmm load). Move-only; freed with its owner.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(size_t bytes) : bytes_(bytes) {
        const size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
        data_ = std::aligned_alloc(64, rounded);
        if (data_ == nullptr) throw std::bad_alloc();
    }
    ~Buffer() { std::free(data_); }
    Buffer(Buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    Buffer& operator=(Buffer&& o) noexcept {
        if (this != &o) {
            std::free(data_);
            data_ = std::exchange(o.data_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() const { return data_; }
    size_t size() const { return bytes_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

inline float bf16_to_f32(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// float -> bf16, rounded to nearest even; a NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

// IEEE half -> float, exact for every code including subnormals, inf and NaN.
inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do { mant <<= 1; ++e; } while ((mant & 0x400) == 0);
            u = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// OCP float8_e4m3fn -> float: 1 sign, 4 exponent (bias 7), 3 mantissa; no infinities, S.1111.111 is NaN.
inline float fp8_e4m3_to_f32(uint8_t c) {
    uint32_t sign = uint32_t(c & 0x80) << 24;
    uint32_t exp = (c >> 3) & 0xf;
    uint32_t mant = c & 0x7;
    uint32_t u;
    if (exp == 0xf && mant == 0x7) {
        u = sign | 0x7fc00000u;
    } else if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else {  // subnormal: mant * 2^-9
            float f = float(mant) * (1.0f / 512.0f);
            return sign ? -f : f;
        }
    } else {
        u = sign | ((exp + 127 - 7) << 23) | (mant << 20);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace xpu
