#include "simd/image_pool.hpp"

namespace multibox::simd {

ImagePool::ImagePool(int threads) {
  workers_.reserve(threads > 1 ? threads - 1 : 0);
  for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ImagePool::~ImagePool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ImagePool::work(const Job& job, int worker) {
  const uint64_t tag = static_cast<uint64_t>(job.generation) << 32;
  uint64_t ticket = ticket_.load(std::memory_order_relaxed);
  for (;;) {
    if ((ticket & ~uint64_t{0xffffffff}) != tag) return;  // a newer job: this one is finished
    const int item = static_cast<int>(ticket & 0xffffffff);
    if (item >= job.count) return;
    if (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acquire, std::memory_order_relaxed))
      continue;
    job.call(job.fn, item, worker);
    done_.fetch_add(1, std::memory_order_release);
    ticket = ticket_.load(std::memory_order_relaxed);
  }
}

void ImagePool::run_erased(int count, Call call, void* fn) {
  Job job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job = {call, fn, count, job_.generation + 1};
    done_.store(0, std::memory_order_relaxed);
    ticket_.store(static_cast<uint64_t>(job.generation) << 32, std::memory_order_release);
    job_ = job;
  }
  if (!workers_.empty()) wake_.notify_all();
  work(job, 0);
  // Only items a worker has already claimed can be outstanding.
  wait_until([&] { return done_.load(std::memory_order_acquire) >= count; });
}

int ImagePool::claim_second(std::span<PairSlot> slots, int worker) {
  const int count = static_cast<int>(slots.size());
  for (int i = 0; i < count; ++i) {
    if (slots[i].first_worker.load(std::memory_order_relaxed) == worker && take(slots[i].second_claimed)) return i;
  }
  return take_from_top(count, [&](int i) -> auto& { return slots[i].second_claimed; });
}

void ImagePool::worker_loop(int worker) {
  uint32_t seen = 0;
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || job_.generation != seen; });
      if (stop_) return;
      job = job_;
      seen = job.generation;
    }
    work(job, worker);
  }
}

}  // namespace multibox::simd
