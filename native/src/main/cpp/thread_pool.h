// A fixed pool of kernel threads owned by one device. parallel_for splits [0, n) into chunks that
// the caller and the workers take from a shared counter; it returns when every chunk is done and
// rethrows the first exception a chunk threw. Not reentrant: kernels never nest parallel_for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xpu {

// Each thread's share of one parallel section, for the profiler (steady-clock nanoseconds; end_ns 0:
// the thread took no chunk).
struct Span {
    int64_t start_ns = 0, end_ns = 0;
};
// Called on the calling thread after every parallel section while it is installed, with size() spans
// (index 0: the calling thread).
using SectionObserver = std::function<void(const Span* spans, int threads)>;

int64_t now_ns();

class ThreadPool {
public:
    explicit ThreadPool(int num_threads);  // total threads, the calling thread included
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // fn(begin, end) over chunks of at least `grain` items.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

    // Installs (or, with nullptr, removes) the observer of every following section; not while one runs.
    void observe(const SectionObserver* observer) { observer_ = observer; }

private:
    void worker_loop(int index, uint64_t seen);
    void run_chunks(int index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    const SectionObserver* observer_ = nullptr;
    std::vector<Span> spans_;

    // the job in flight
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t n_ = 0;
    int64_t chunk_ = 1;
    std::atomic<int64_t> next_{0};
    std::atomic<int> active_workers_{0};
    std::exception_ptr error_;
    std::mutex error_mutex_;
};

}  // namespace xpu
