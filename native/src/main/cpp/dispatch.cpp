// Picks the kernel table once, from the CPU's features (or XPUFLOW_ISA=avx512|avx2|scalar).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"

namespace xpu {
namespace {

std::string& warning() {
    static std::string text;
    return text;
}

const KernelTable* table_named(const char* isa) {
    if (std::strcmp(isa, "scalar") == 0) return &scalar_kernels();
    if (std::strcmp(isa, "avx2") == 0) return avx2_kernels();
    if (std::strcmp(isa, "avx512") == 0) return avx512_kernels();
    if (std::strcmp(isa, "avx512bf16") == 0) return avx512bf16_kernels();
    return nullptr;
}

const KernelTable* best_supported() {
    if (const KernelTable* t = avx512bf16_kernels()) return t;
    if (const KernelTable* t = avx512_kernels()) return t;
    if (const KernelTable* t = avx2_kernels()) return t;
    return &scalar_kernels();
}

const KernelTable* best_table() {
    const char* forced = std::getenv("XPUFLOW_ISA");
    const KernelTable* best = best_supported();
    if (forced == nullptr || *forced == '\0') return best;
    if (const KernelTable* t = table_named(forced)) return t;
    // a typo must not silently benchmark the wrong kernels: keep the reason for the loader to log
    const bool known = std::strcmp(forced, "avx2") == 0 || std::strcmp(forced, "avx512") == 0 ||
                       std::strcmp(forced, "avx512bf16") == 0;
    warning() = std::string("XPUFLOW_ISA=") + forced +
                (known ? " is not supported by this CPU" : " is not an instruction set (scalar, avx2, avx512, avx512bf16)") +
                "; using " + best->isa;
    return best;
}

std::atomic<const KernelTable*>& active() {
    static std::atomic<const KernelTable*> table{best_table()};
    return table;
}

}  // namespace

const KernelTable& kernels() { return *active().load(std::memory_order_acquire); }

const char* isa_warning() {
    kernels();  // the choice (and its warning) is made once, on first use
    return warning().c_str();
}

bool force_isa(const char* isa) {
    if (isa == nullptr) return false;
    const KernelTable* t = table_named(isa);
    if (t == nullptr) return false;
    active().store(t, std::memory_order_release);
    return true;
}

}  // namespace xpu
