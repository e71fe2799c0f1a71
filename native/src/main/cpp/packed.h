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
// INT8 (Q8 blocks): W is cut into the same panels of 32 columns; along k each column is split into blocks
// of kQBlock = 32 values with one FP32 scale d = max|w| / 127 and symmetric codes round(w / d). A panel is
// a stream of blocks; one block holds, for each quad of input positions (4j .. 4j+3), the 32 columns' four
// codes side by side, stored with +128 (unsigned, the first operand of vpdpbusd), then the 32 scales:
//
//     w[panel][b][j][c][e] = W[panel * 32 + c][32b + 4j + e] / d + 128     (j < 8, c < 32, e < 4)
//     d[panel][b][c]       (FP32, after the block's 1024 code bytes)
//
// Activation rows are quantised per row on the fly, in the same blocks of 32, as signed codes q with one
// FP32 scale each and the block's correction -128 * sum(q), which removes the weights' +128:
//
//     row = [q: blocks * 32 int8][d: blocks FP32][corr: blocks int32]
//
// so a block's integer dot product is exact and one FP32 multiply-add per block joins the sum.
//
// KV cache, per layer and block of bs tokens: K [kv_head][dqk][bs] (a block's keys
// transposed, so the scores of bs keys are bs lanes of one vector) and V [kv_head][bs][dv]; FP32 or BF16.
// Every weight format uses it: the exact mode with an FP32 cache runs the same online softmax in FP32.
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

constexpr int64_t kQBlock = 32;                             // values per INT8 block along k
constexpr int64_t kQBlockBytes = kPanel * kQBlock + kPanel * 4;  // one panel's block: codes, then scales

inline int64_t q8_blocks_for(int64_t k) { return (k + kQBlock - 1) / kQBlock; }
// Bytes of a packed INT8 [n, k] weight.
inline int64_t packed_q8_bytes(int64_t n, int64_t k) { return panels_for(n) * q8_blocks_for(k) * kQBlockBytes; }
// Bytes of one quantised activation row of k values.
inline int64_t q8_row_bytes(int64_t k) { return q8_blocks_for(k) * (kQBlock + 8); }

// The parts of a quantised activation row of `blocks` blocks starting at `row`.
struct Q8Row {
    int8_t* q;
    float* d;
    int32_t* corr;
};
inline Q8Row q8_row(void* row, int64_t blocks) {
    auto* base = static_cast<uint8_t*>(row);
    return Q8Row{reinterpret_cast<int8_t*>(base), reinterpret_cast<float*>(base + blocks * kQBlock),
                 reinterpret_cast<int32_t*>(base + blocks * (kQBlock + 4))};
}

// Writes row r of W (k values, FP32) into its panel of `packed` ([n, k] packed INT8, zero-filled
// beforehand). A block holding a non-finite value gets a NaN scale, so it poisons its outputs as the
// exact mode would instead of vanishing into codes.
void pack_q8_row(const float* row, int64_t k, int64_t r, uint8_t* packed);

}  // namespace xpu
