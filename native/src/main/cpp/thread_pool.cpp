#include "thread_pool.h"

#include <algorithm>
#include <chrono>

namespace xpu {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

ThreadPool::ThreadPool(int num_threads) {
    const int workers = std::max(0, num_threads - 1);
    spans_.resize(static_cast<size_t>(workers + 1));
    workers_.reserve(workers);
    // each worker starts from generation 0: reading the counter inside the new thread would race with
    // a parallel_for (or the destructor) issued before the thread got to run, and miss that job
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1, 0); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(int index) {
    const bool record = observer_ != nullptr;
    Span span;
    if (record) span.start_ns = now_ns();
    for (;;) {
        const int64_t begin = next_.fetch_add(chunk_, std::memory_order_relaxed);
        if (begin >= n_) break;
        const int64_t end = std::min(n_, begin + chunk_);
        try {
            (*fn_)(begin, end);
            if (record) span.end_ns = now_ns();
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
            next_.store(n_, std::memory_order_relaxed);  // abandon the remaining chunks
            break;
        }
    }
    if (record) spans_[static_cast<size_t>(index)] = span;
}

void ThreadPool::worker_loop(int index, uint64_t seen) {
    for (;;) {
        // A step issues many short parallel sections back to back: spin briefly before sleeping
        // so the next section does not pay a futex wake-up.
        bool fresh = false;
        for (int spin = 0; spin < 4000; ++spin) {
            if (generation_.load(std::memory_order_acquire) != seen) { fresh = true; break; }
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
        if (!fresh) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load(std::memory_order_relaxed)) return;
        run_chunks(index);
        if (active_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (workers_.empty() || n <= grain) {
        if (observer_ == nullptr) {
            fn(0, n);
            return;
        }
        std::fill(spans_.begin(), spans_.end(), Span{});
        spans_[0].start_ns = now_ns();
        fn(0, n);
        spans_[0].end_ns = now_ns();
        (*observer_)(spans_.data(), size());
        return;
    }
    const int64_t threads = size();
    // about four chunks per thread balances uneven rows without much counter traffic
    int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
    chunk = std::max(chunk, grain);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = &fn;
        n_ = n;
        chunk_ = chunk;
        next_.store(0, std::memory_order_relaxed);
        error_ = nullptr;
        active_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunks(0);
    // the workers finish within microseconds of the caller in a balanced section: spin before sleeping
    for (int spin = 0; spin < 4000 && active_workers_.load(std::memory_order_acquire) != 0; ++spin) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return active_workers_.load(std::memory_order_acquire) == 0; });
        fn_ = nullptr;
    }
    if (observer_ != nullptr) (*observer_)(spans_.data(), size());
    if (error_) std::rethrow_exception(error_);
}

}  // namespace xpu
