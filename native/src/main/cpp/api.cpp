// The C ABI entry points: argument checks, C++ exceptions -> xpu_status + thread-local message.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <cstdarg>
#include <cstdio>
#include <new>
#include <string>

#include "cpu_device.h"
#include "kernels.h"
#include "xpuflow/xpuflow.h"

namespace xpu {

namespace {
thread_local std::string g_last_error;
}

void fail(int status, const char* fmt, ...) {
    char buf[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    throw Error(status, buf);
}

template <typename F>
xpu_status guarded(const char* op, F&& body) {
    try {
        g_last_error.clear();
        body();
        return XPU_OK;
    } catch (const Error& e) {
        g_last_error = std::string(op) + ": " + e.what();
        return static_cast<xpu_status>(e.status());
    } catch (const std::bad_alloc&) {
        g_last_error = std::string(op) + ": out of memory";
        return XPU_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        g_last_error = std::string(op) + ": " + e.what();
        return XPU_ERR_INTERNAL;
    } catch (...) {
        g_last_error = std::string(op) + ": unknown error";
        return XPU_ERR_INTERNAL;
    }
}

}  // namespace xpu

using xpu::fail;
using xpu::guarded;

namespace {

// Largest element count of one weight: its byte size must fit in int64 for every dtype.
constexpr int64_t kMaxElements = int64_t(1) << 60;
constexpr int kMaxThreads = 1024;

int64_t dtype_bytes(int dtype) {
    return dtype == XPU_DTYPE_F32 ? 4 : dtype == XPU_DTYPE_F8_E4M3 ? 1 : 2;
}

// Copies the caller's weight (and FP8 scales) into engine-owned memory, so the model never reads the
// caller's mapping after registration: a checkpoint file truncated or rewritten while the model is
// served cannot fault (SIGBUS) or silently change the weights. A weight registered again from the
// same address with the same layout (tied embedding and LM head) shares the first copy.
void own(xpu_model* m, xpu::Tensor& t, const void* data, const float* scale) {
    for (const xpu::Tensor* other : {&m->embed, &m->lm_head}) {
        if (other->storage != nullptr && other->source == data && other->dtype == t.dtype && other->rows == t.rows && other->cols == t.cols &&
            other->scale_rows == t.scale_rows && other->scale_cols == t.scale_cols) {
            t.storage = other->storage;
            t.scale_storage = other->scale_storage;
            t.data = other->data;
            t.scale = other->scale;
            return;
        }
    }
    const size_t bytes = static_cast<size_t>(t.rows * t.cols * dtype_bytes(t.dtype));
    auto storage = std::make_shared<xpu::Buffer>(bytes);
    std::memcpy(storage->data(), data, bytes);
    t.data = storage->data();
    t.storage = std::move(storage);
    m->weight_bytes += static_cast<int64_t>(bytes);
    if (scale != nullptr && t.dtype == XPU_DTYPE_F8_E4M3) {
        const size_t scale_bytes = static_cast<size_t>(t.scale_rows * t.scale_cols) * sizeof(float);
        auto scales = std::make_shared<xpu::Buffer>(scale_bytes);
        std::memcpy(scales->data(), scale, scale_bytes);
        t.scale = static_cast<const float*>(scales->data());
        t.scale_storage = std::move(scales);
        m->weight_bytes += static_cast<int64_t>(scale_bytes);
    }
}

}  // namespace

extern "C" {

const char* xpu_last_error(void) { return xpu::g_last_error.c_str(); }

const char* xpu_cpu_isa(void) { return xpu::kernels().isa; }

const char* xpu_cpu_isa_warning(void) { return xpu::isa_warning(); }

xpu_status xpu_cpu_force_isa(const char* isa) {
    return guarded("xpu_cpu_force_isa", [&] {
        if (isa == nullptr || !xpu::force_isa(isa)) {
            fail(XPU_ERR_UNSUPPORTED, "instruction set '%s' is unknown or not supported by this CPU", isa ? isa : "(null)");
        }
    });
}

xpu_status xpu_map_file(const char* path, int64_t* out_addr, int64_t* out_size) {
    return guarded("xpu_map_file", [&] {
        XPU_CHECK_ARG(path != nullptr && out_addr != nullptr && out_size != nullptr, "null argument");
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail(XPU_ERR_IO, "cannot open %s: %s", path, std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            const int err = errno;
            ::close(fd);
            fail(XPU_ERR_IO, "cannot stat %s: %s", path, std::strerror(err));
        }
        if (st.st_size == 0) {
            ::close(fd);
            fail(XPU_ERR_IO, "%s is empty", path);
        }
        void* addr = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
        const int err = errno;
        ::close(fd);
        if (addr == MAP_FAILED) fail(XPU_ERR_IO, "cannot map %s: %s", path, std::strerror(err));
        ::madvise(addr, static_cast<size_t>(st.st_size), MADV_WILLNEED);
        *out_addr = reinterpret_cast<int64_t>(addr);
        *out_size = static_cast<int64_t>(st.st_size);
    });
}

xpu_status xpu_unmap_file(int64_t addr, int64_t size) {
    return guarded("xpu_unmap_file", [&] {
        if (::munmap(reinterpret_cast<void*>(addr), static_cast<size_t>(size)) != 0) {
            fail(XPU_ERR_IO, "munmap failed: %s", std::strerror(errno));
        }
    });
}

xpu_status xpu_device_open(const char* kind, int64_t num_threads, xpu_device** out) {
    return guarded("xpu_device_open", [&] {
        XPU_CHECK_ARG(out != nullptr, "null output");
        if (kind == nullptr || std::strcmp(kind, "cpu") != 0) {
            fail(XPU_ERR_UNSUPPORTED, "unknown device kind '%s' (available: cpu)", kind ? kind : "(null)");
        }
        // the caller resolves "all cores": only it knows the cores a container or a Flink slot grants
        XPU_CHECK_ARG(num_threads >= 1 && num_threads <= kMaxThreads, "num_threads %ld outside [1, %d]",
                      (long)num_threads, kMaxThreads);
        *out = new xpu_device(static_cast<int>(num_threads));
    });
}

xpu_status xpu_device_close(xpu_device* dev) {
    return guarded("xpu_device_close", [&] { delete dev; });
}

xpu_status xpu_roofline(xpu_device* dev, int64_t read_bytes, double* out4) {
    return guarded("xpu_roofline", [&] {
        XPU_CHECK_ARG(dev != nullptr && out4 != nullptr, "null argument");
        XPU_CHECK_ARG(read_bytes >= (int64_t(64) << 20) && read_bytes <= (int64_t(64) << 30),
                      "read_bytes %ld outside [64 MiB, 64 GiB]", (long)read_bytes);
        xpu::roofline(dev, read_bytes, out4);
    });
}

xpu_status xpu_model_create(xpu_device* dev, const xpu_model_params* params, xpu_model** out) {
    return guarded("xpu_model_create", [&] {
        XPU_CHECK_ARG(dev != nullptr && params != nullptr && out != nullptr, "null argument");
        XPU_CHECK_ARG(params->api_version == XPU_API_VERSION, "API version %ld, this library implements %d",
                      (long)params->api_version, XPU_API_VERSION);
        XPU_CHECK_ARG(params->vocab_size > 0 && params->hidden_size > 0 && params->num_layers > 0,
                      "vocab_size, hidden_size and num_layers must be positive");
        // token ids, positions and row indices cross the ABI as int32
        XPU_CHECK_ARG(params->vocab_size <= INT32_MAX && params->max_tokens_per_step <= INT32_MAX,
                      "vocab_size %ld and max_tokens_per_step %ld must fit in int32", (long)params->vocab_size,
                      (long)params->max_tokens_per_step);
        XPU_CHECK_ARG(params->hidden_size <= (int64_t(1) << 24), "hidden_size %ld is larger than %ld",
                      (long)params->hidden_size, (long)(int64_t(1) << 24));
        XPU_CHECK_ARG(params->num_mtp_layers >= 0 && params->num_kv_groups > 0, "bad num_mtp_layers or num_kv_groups");
        XPU_CHECK_ARG(params->max_tokens_per_step > 0 && params->max_seqs_per_step > 0,
                      "max_tokens_per_step and max_seqs_per_step must be positive");
        XPU_CHECK_ARG(std::isfinite(params->norm_eps) && params->norm_eps > 0, "norm_eps must be positive and finite");
        XPU_CHECK_ARG(params->weight_format >= XPU_WEIGHTS_EXACT && params->weight_format <= XPU_WEIGHTS_INT8,
                      "unknown weight_format %ld", (long)params->weight_format);
        XPU_CHECK_ARG(params->kv_dtype == XPU_KV_F32 || params->kv_dtype == XPU_KV_BF16, "unknown kv_dtype %ld",
                      (long)params->kv_dtype);
        auto* m = new xpu_model();
        m->dev = dev;
        m->p = *params;
        m->layers.resize(static_cast<size_t>(params->num_layers + params->num_mtp_layers));
        *out = m;
    });
}

xpu_status xpu_model_set_layer(xpu_model* m, int64_t layer, const xpu_layer_params* params) {
    return guarded("xpu_model_set_layer", [&] {
        XPU_CHECK_ARG(m != nullptr && params != nullptr, "null argument");
        XPU_CHECK_ARG(!m->finalized, "model is already finalized");
        XPU_CHECK_ARG(layer >= 0 && layer < static_cast<int64_t>(m->layers.size()), "layer %ld outside [0, %zu)", (long)layer, m->layers.size());
        m->layers[layer].p = *params;
        m->layers[layer].params_set = true;
    });
}

xpu_status xpu_model_set_tensor(xpu_model* m, int64_t role, int64_t layer, int64_t expert, const void* data,
                                int64_t dtype, int64_t rows, int64_t cols, const float* scale, int64_t scale_rows,
                                int64_t scale_cols, int64_t block_rows, int64_t block_cols) {
    return guarded("xpu_model_set_tensor", [&] {
        XPU_CHECK_ARG(m != nullptr && data != nullptr, "null argument");
        XPU_CHECK_ARG(!m->finalized, "model is already finalized");
        XPU_CHECK_ARG(role >= 0 && role < XPU_T_ROLE_COUNT, "unknown role %ld", (long)role);
        XPU_CHECK_ARG(dtype >= XPU_DTYPE_F32 && dtype <= XPU_DTYPE_F8_E4M3, "unknown dtype %ld", (long)dtype);
        XPU_CHECK_ARG(rows > 0 && cols > 0, "role %ld: shape [%ld, %ld] must be positive", (long)role, (long)rows, (long)cols);
        XPU_CHECK_ARG(rows <= kMaxElements / cols, "role %ld: shape [%ld, %ld] is too large", (long)role, (long)rows, (long)cols);
        xpu::Tensor t;
        t.source = data;
        t.dtype = static_cast<int>(dtype);
        t.rows = rows;
        t.cols = cols;
        if (dtype == XPU_DTYPE_F8_E4M3) {
            XPU_CHECK_ARG(scale != nullptr && block_rows > 0 && block_cols > 0, "role %ld: FP8 needs a scale and a block shape", (long)role);
            XPU_CHECK_ARG(scale_rows == (rows + block_rows - 1) / block_rows && scale_cols == (cols + block_cols - 1) / block_cols,
                          "role %ld: scale shape [%ld, %ld] does not cover [%ld, %ld] in blocks of [%ld, %ld]",
                          (long)role, (long)scale_rows, (long)scale_cols, (long)rows, (long)cols, (long)block_rows, (long)block_cols);
            t.scale_rows = scale_rows;
            t.scale_cols = scale_cols;
            t.block_rows = block_rows;
            t.block_cols = block_cols;
        }
        if (m->p.weight_format != XPU_WEIGHTS_EXACT && xpu::packed_role(static_cast<int>(role))) {
            xpu::pack(m, t, data, scale);
        } else {
            own(m, t, data, scale);
        }
        if (role == XPU_T_EMBED) { m->embed = t; return; }
        if (role == XPU_T_LM_HEAD) { m->lm_head = t; return; }
        if (role == XPU_T_FINAL_NORM) { m->final_norm_t = t; return; }
        XPU_CHECK_ARG(layer >= 0 && layer < static_cast<int64_t>(m->layers.size()), "role %ld: layer %ld outside [0, %zu)", (long)role, (long)layer, m->layers.size());
        xpu::Layer& L = m->layers[layer];
        if (role == XPU_T_EXPERT_GATE || role == XPU_T_EXPERT_UP || role == XPU_T_EXPERT_DOWN) {
            XPU_CHECK_ARG(L.params_set, "layer %ld: set the layer parameters before its experts", (long)layer);
            XPU_CHECK_ARG(expert >= 0 && expert < L.p.num_experts, "layer %ld: expert %ld outside [0, %ld)", (long)layer, (long)expert, (long)L.p.num_experts);
            if (static_cast<int64_t>(L.expert_gate.size()) != L.p.num_experts) {
                L.expert_gate.resize(L.p.num_experts);
                L.expert_up.resize(L.p.num_experts);
                L.expert_down.resize(L.p.num_experts);
            }
            auto& slot = role == XPU_T_EXPERT_GATE ? L.expert_gate : role == XPU_T_EXPERT_UP ? L.expert_up : L.expert_down;
            slot[expert] = t;
            return;
        }
        L.t[role] = t;
    });
}

xpu_status xpu_model_set_rope(xpu_model* m, int64_t layer, const float* inv_freq, int64_t n) {
    return guarded("xpu_model_set_rope", [&] {
        XPU_CHECK_ARG(m != nullptr && (n == 0 || inv_freq != nullptr) && n >= 0, "bad argument");
        XPU_CHECK_ARG(layer >= 0 && layer < static_cast<int64_t>(m->layers.size()), "layer %ld outside [0, %zu)", (long)layer, m->layers.size());
        m->layers[layer].inv_freq.assign(inv_freq, inv_freq + n);
    });
}

xpu_status xpu_model_finalize(xpu_model* m) {
    return guarded("xpu_model_finalize", [&] {
        XPU_CHECK_ARG(m != nullptr, "null model");
        xpu::model_finalize(m);
    });
}

xpu_status xpu_model_free(xpu_model* m) {
    return guarded("xpu_model_free", [&] { delete m; });
}

xpu_status xpu_model_weight_bytes(xpu_model* m, int64_t* out_bytes) {
    return guarded("xpu_model_weight_bytes", [&] {
        XPU_CHECK_ARG(m != nullptr && out_bytes != nullptr, "null argument");
        *out_bytes = m->weight_bytes;
    });
}

xpu_status xpu_model_set_taps(xpu_model* m, float* buf, int64_t max_rows) {
    return guarded("xpu_model_set_taps", [&] {
        XPU_CHECK_ARG(m != nullptr, "null model");
        XPU_CHECK_ARG(buf == nullptr || max_rows > 0, "max_rows %ld must be positive", (long)max_rows);
        m->taps = buf;
        m->tap_rows = buf == nullptr ? 0 : max_rows;
    });
}

xpu_status xpu_model_trace(xpu_model* m, int64_t capacity) {
    return guarded("xpu_model_trace", [&] {
        XPU_CHECK_ARG(m != nullptr, "null model");
        XPU_CHECK_ARG(capacity >= 0 && capacity <= (int64_t(1) << 26), "capacity %ld outside [0, 2^26]", (long)capacity);
        xpu::Trace& t = m->trace;
        t.events.clear();
        t.events.shrink_to_fit();
        t.events.reserve(static_cast<size_t>(capacity));
        t.capacity = static_cast<size_t>(capacity);
        t.dropped = 0;
    });
}

xpu_status xpu_model_trace_read(xpu_model* m, int64_t* out, int64_t max_events, int64_t* out_count,
                                int64_t* out_dropped) {
    return guarded("xpu_model_trace_read", [&] {
        XPU_CHECK_ARG(m != nullptr && out_count != nullptr && out_dropped != nullptr, "null argument");
        XPU_CHECK_ARG(max_events >= 0 && (out != nullptr || max_events == 0), "bad output buffer");
        xpu::Trace& t = m->trace;
        const int64_t n = std::min<int64_t>(max_events, static_cast<int64_t>(t.events.size()));
        if (n > 0) std::memcpy(out, t.events.data(), static_cast<size_t>(n) * sizeof(xpu::TraceEvent));
        t.events.erase(t.events.begin(), t.events.begin() + n);
        *out_count = n;
        *out_dropped = t.dropped;
        t.dropped = 0;
    });
}

xpu_status xpu_kv_create(xpu_model* m, int64_t block_size, const int64_t* num_blocks_per_group, xpu_kv_cache** out) {
    return guarded("xpu_kv_create", [&] {
        XPU_CHECK_ARG(m != nullptr && num_blocks_per_group != nullptr && out != nullptr, "null argument");
        auto* kv = new xpu_kv_cache();
        try {
            xpu::kv_create(m, block_size, num_blocks_per_group, kv);
        } catch (...) {
            delete kv;
            throw;
        }
        *out = kv;
    });
}

xpu_status xpu_kv_block_bytes(xpu_model* m, int64_t group, int64_t block_size, int64_t* out_bytes) {
    return guarded("xpu_kv_block_bytes", [&] {
        XPU_CHECK_ARG(m != nullptr && out_bytes != nullptr, "null argument");
        XPU_CHECK_ARG(group >= 0 && group < m->p.num_kv_groups, "group %ld outside [0, %ld)", (long)group, (long)m->p.num_kv_groups);
        *out_bytes = xpu::kv_block_bytes(m, group, block_size);
    });
}

xpu_status xpu_kv_free(xpu_kv_cache* kv) {
    return guarded("xpu_kv_free", [&] { delete kv; });
}

xpu_status xpu_step(xpu_model* m, xpu_kv_cache* kv, const xpu_batch* batch) {
    return guarded("xpu_step", [&] {
        XPU_CHECK_ARG(m != nullptr && kv != nullptr && batch != nullptr, "null argument");
        xpu::step(m, kv, batch);
    });
}

int64_t xpu_abi_struct_size(const char* name) {
    if (name == nullptr) return -1;
    if (std::strcmp(name, "model_params") == 0) return sizeof(xpu_model_params);
    if (std::strcmp(name, "layer_params") == 0) return sizeof(xpu_layer_params);
    if (std::strcmp(name, "batch") == 0) return sizeof(xpu_batch);
    return -1;
}

}  // extern "C"
