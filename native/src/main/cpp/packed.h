// Weight layouts of the fast formats, made once when a weight is registered.
//
// BF16: the matrix W [n, k] (y = x W^T) is cut into panels of kPanel = 32 output columns. A panel holds,
// for each pair of input positions (2q, 2q+1), the 32 columns' two BF16 values side by side:
//
//     w[panel][q][c][e] = W[panel * 32 + c][2q + e]       (c < 32, e < 2; zeros past n and k)
//
// so one 64-byte load gives 16 columns x 2 positions, the operand of vdpbf16ps, and a panel is one
// contiguous stream over k: decode reads every weight byte once, in order. Activations are plain BF16
// rows; a 32-bit broadcast of a[m][2q..2q+1] meets the panel row q.
//
// KV cache of the fast formats, per layer and block of bs tokens: K [kv_head][dqk][bs] (a block's keys
// transposed, so the scores of bs keys are bs lanes of one vector) and V [kv_head][bs][dv]; FP32 or BF16.
// (The exact mode keeps K [bs][kv_head][dqk] and V [bs][kv_head][dv] in FP32.)
#pragma once

#include <cstdint>

namespace xpu {

constexpr int64_t kPanel = 32;  // output columns per panel

inline int64_t panels_for(int64_t n) { return (n + kPanel - 1) / kPanel; }
inline int64_t pairs_for(int64_t k) { return (k + 1) / 2; }

// BF16 elements of a packed [n, k] weight (panels padded to kPanel columns, k to pairs).
inline int64_t packed_bf16_elements(int64_t n, int64_t k) { return panels_for(n) * pairs_for(k) * 2 * kPanel; }

// Writes row r of W (k values, FP32) into its panel of `packed` ([n, k] packed, zero-filled beforehand),
// rounding to BF16 (exact for values that are BF16 already).
void pack_bf16_row(const float* row, int64_t k, int64_t r, uint16_t* packed);

}  // namespace xpu
