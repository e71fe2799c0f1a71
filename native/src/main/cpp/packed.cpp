// Packing of weights into the fast formats' layouts (packed.h).
#include "packed.h"

#include "common.h"

namespace xpu {

void pack_bf16_row(const float* row, int64_t k, int64_t r, uint16_t* packed) {
    const int64_t pairs = pairs_for(k);
    uint16_t* panel = packed + (r / kPanel) * pairs * 2 * kPanel + (r % kPanel) * 2;
    for (int64_t i = 0; i < k; ++i) panel[(i / 2) * 2 * kPanel + (i % 2)] = f32_to_bf16(row[i]);
}

}  // namespace xpu
