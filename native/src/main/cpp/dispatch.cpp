// Picks the kernel table once, from the CPU's features (or XPUFLOW_ISA=avx512|avx2|scalar).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace xpu {
namespace {

const KernelTable* best_table() {
    const char* forced = std::getenv("XPUFLOW_ISA");
    const KernelTable* avx512bf16 = avx512bf16_kernels();
    const KernelTable* avx512 = avx512_kernels();
    const KernelTable* avx2 = avx2_kernels();
    if (forced != nullptr && *forced != '\0') {
        if (std::strcmp(forced, "scalar") == 0) return &scalar_kernels();
        if (std::strcmp(forced, "avx2") == 0 && avx2 != nullptr) return avx2;
        if (std::strcmp(forced, "avx512") == 0 && avx512 != nullptr) return avx512;
        if (std::strcmp(forced, "avx512bf16") == 0 && avx512bf16 != nullptr) return avx512bf16;
        // an unknown or unsupported request falls through to the best supported table
    }
    if (avx512bf16 != nullptr) return avx512bf16;
    if (avx512 != nullptr) return avx512;
    if (avx2 != nullptr) return avx2;
    return &scalar_kernels();
}

std::atomic<const KernelTable*>& active() {
    static std::atomic<const KernelTable*> table{best_table()};
    return table;
}

}  // namespace

const KernelTable& kernels() { return *active().load(std::memory_order_acquire); }

bool force_isa(const char* isa) {
    if (isa == nullptr) return false;
    const KernelTable* t = nullptr;
    if (std::strcmp(isa, "scalar") == 0) t = &scalar_kernels();
    else if (std::strcmp(isa, "avx2") == 0) t = avx2_kernels();
    else if (std::strcmp(isa, "avx512") == 0) t = avx512_kernels();
    else if (std::strcmp(isa, "avx512bf16") == 0) t = avx512bf16_kernels();
    if (t == nullptr) return false;
    active().store(t, std::memory_order_release);
    return true;
}

}  // namespace xpu
