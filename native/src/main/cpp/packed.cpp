// Packing of weights into the fast formats' layouts (packed.h).
#include "packed.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"

namespace xpu {

void pack_bf16_row(const float* row, int64_t k, int64_t r, uint16_t* packed) {
    const int64_t pairs = pairs_for(k);
    uint16_t* panel = packed + (r / kPanel) * pairs * 2 * kPanel + (r % kPanel) * 2;
    for (int64_t i = 0; i < k; ++i) panel[(i / 2) * 2 * kPanel + (i % 2)] = f32_to_bf16(row[i]);
}

void pack_q8_row(const float* row, int64_t k, int64_t r, uint8_t* packed) {
    const int64_t blocks = q8_blocks_for(k);
    const int64_t c = r % kPanel;
    uint8_t* panel = packed + (r / kPanel) * blocks * kQBlockBytes;
    for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* block = panel + b * kQBlockBytes;
        const int64_t k0 = b * kQBlock, k1 = std::min(k, k0 + kQBlock);
        float amax = 0.f;
        bool finite = true;
        for (int64_t i = k0; i < k1; ++i) {
            finite = finite && std::isfinite(row[i]);
            amax = std::max(amax, std::fabs(row[i]));
        }
        const float d = finite ? amax / 127.f : std::numeric_limits<float>::quiet_NaN();
        const float id = finite && amax > 0.f ? 127.f / amax : 0.f;
        for (int64_t i = 0; i < kQBlock; ++i) {
            float code = 0.f;
            if (finite && k0 + i < k1) code = std::clamp(std::nearbyint(row[k0 + i] * id), -127.f, 127.f);
            block[((i / 4) * kPanel + c) * 4 + i % 4] = static_cast<uint8_t>(static_cast<int>(code) + 128);
        }
        std::memcpy(block + kPanel * kQBlock + c * 4, &d, 4);
    }
}

}  // namespace xpu
