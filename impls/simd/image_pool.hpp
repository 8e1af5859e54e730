// A small fork-join pool over the images of a batch, with the calling thread as worker 0. Unlike an OpenMP
// region it never waits for a worker that has not started: items are claimed one at a time, and the caller only
// waits for items already claimed. On this shared 2-core machine a descheduled OpenMP thread held the
// end-of-region barrier for a whole scheduler slice: matching SSD300 x 32 images took 14-37 ms on 2 threads
// against 0.5 ms on 1 (load average 7); here the caller simply takes the late worker's images.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <type_traits>
#include <vector>

namespace multibox::simd {

class ImagePool {
 public:
  // threads >= 1: the caller plus threads - 1 workers started now.
  explicit ImagePool(int threads);
  ~ImagePool();
  ImagePool(const ImagePool&) = delete;
  ImagePool& operator=(const ImagePool&) = delete;

  int threads() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(item, worker) once for every item in [0, count), worker in [0, threads()), and returns when all
  // calls have returned, their writes visible to the caller. Not reentrant: one run() at a time.
  template <class Fn>
  void run(int count, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run_erased(count, [](void* f, int item, int worker) { (*static_cast<F*>(f))(item, worker); }, &fn);
  }

  // Calls first(item, worker) for every item in [0, first_count), then between() once, on the thread that ends the
  // last of them, and second(item, worker, wait_for_first) for every item in [0, second_count), as one run(): a
  // worker that runs out of first items waits (wait_until) only for first items already claimed, where two runs put it
  // to sleep and woke it again, about 20 us a wake on the 2-vCPU AMD EPYC VM this was measured on (a pool of 2 over
  // 8 items of 3 us: one run took 37-41 us at the median, two runs 59-60 us). Items are claimed in order, so a
  // second item starts only once every first item is claimed, but possibly before they have ended: it calls
  // wait_for_first() before it needs what they and between() wrote (once that returns, they have all ended and their
  // writes are visible), and whatever it does before that overlaps the first phase's last items.
  template <class First, class Between, class Second>
  void run_phases(int first_count, First&& first, Between&& between, int second_count, Second&& second) {
    std::atomic<int> ended{0};
    std::atomic<bool> ready{first_count <= 0};
    const auto wait_for_first = [&ready] {
      wait_until([&ready] { return ready.load(std::memory_order_acquire); });
    };
    if (first_count <= 0) between();
    run(std::max(first_count, 0) + second_count, [&](int item, int worker) {
      if (item < first_count) {
        first(item, worker);
        if (ended.fetch_add(1, std::memory_order_acq_rel) == first_count - 1) {
          between();
          ready.store(true, std::memory_order_release);
        }
        return;
      }
      second(item - std::max(first_count, 0), worker, wait_for_first);
    });
  }

  // Per pair of run_pairs: the caller owns one per pair (so a run allocates nothing), the pool resets it each run.
  struct PairSlot {
    std::atomic<bool> first_claimed{false};
    std::atomic<int> first_worker{-1};  // the worker that took first(i), set before it starts
    std::atomic<bool> first_ended{false};
    std::atomic<bool> second_claimed{false};
  };

  // run_phases over pairs, slots.size() of them, where second(i) reads what first(i) wrote: it starts only once
  // first(i) has ended, and on the worker that ran first(i) where it can. First items go by claim_in_share, each
  // worker taking its own fixed share before the others' (OpenMP's static schedule, with stealing); a worker out of
  // first items takes the second items of its own first items, lowest first, then the others', from the top down; a
  // worker that starts late still finds items to take. On a VM whose two vCPUs sit on different L3s (a cache line's
  // round trip between them ~400 ns), an image's loss on the other core than its matching took 15% longer (traced).
  // Pair i on the same core from run to run: first items taken in item order went to whichever worker came first (the
  // caller, while the woken worker took ~19 us to start, traced), so an image's rows, and the outputs its last run
  // left in the other core's cache, changed cores between runs. Forward + backward, SSD300, 2 threads, vCPUs far apart,
  // alternated binaries, median of 5 rounds' median runs: batch 8 C=2 0.181 -> 0.168 ms, C=21 0.382 -> 0.348; batch
  // 32 C=21 1.76 -> 1.57.
  template <class First, class Between, class Second>
  void run_pairs(std::span<PairSlot> slots, First&& first, Between&& between, Second&& second) {
    for (PairSlot& slot : slots) {
      slot.first_claimed.store(false, std::memory_order_relaxed);
      slot.first_worker.store(-1, std::memory_order_relaxed);
      slot.first_ended.store(false, std::memory_order_relaxed);
      slot.second_claimed.store(false, std::memory_order_relaxed);
    }
    const int count = static_cast<int>(slots.size());
    run_phases(
        count,
        [&](int, int worker) {
          const int i = claim_in_share(count, worker, threads(), [&](int j) -> auto& { return slots[j].first_claimed; });
          slots[i].first_worker.store(worker, std::memory_order_relaxed);
          first(i, worker);
          slots[i].first_ended.store(true, std::memory_order_release);
        },
        between, count,
        [&](int, int worker, const auto& wait_for_first) {
          const int i = claim_second(slots, worker);
          wait_until([&] { return slots[i].first_ended.load(std::memory_order_acquire); });
          second(i, worker, wait_for_first);
        });
  }

  // The pair whose second item `worker` takes in run_pairs. Each call claims one; a run makes one call per pair,
  // so every call finds one.
  static int claim_second(std::span<PairSlot> slots, int worker);

  // One of `count` items, each claimed by setting its flag(i) (a std::atomic<bool>&), for `worker` of `threads`: from
  // its own share first (items [w count / T, (w + 1) count / T)), the same every run, so an item's data stays in the
  // cache of the core that used it last run; its share taken, from the others' from the top down, where their
  // owners reach last. A run makes one call per item, so every call finds one.
  template <class Flag>
  static int claim_in_share(int count, int worker, int threads, Flag&& flag) {
    const int first = static_cast<int>(int64_t{count} * worker / threads);
    const int end = static_cast<int>(int64_t{count} * (worker + 1) / threads);
    for (int i = first; i < end; ++i)
      if (take(flag(i))) return i;
    return take_from_top(count, flag);
  }

 private:
  // Returns once done() holds, for waits on items already running: spinning first (2000 pauses, 36 us on the Zen 5),
  // then yielding so that a descheduled worker gets to finish. Yielding at once, a waiter saw the end of the item it
  // waited for up to a system call late, at every join of every run: sched_yield takes 1.4 us on the PVM guests this
  // was measured on, where a system call leaves the guest. SSD300, forward + backward, 2 threads, alternated
  // binaries, 4 rounds in one machine phase (spin-wait-ab.txt), median runs: batch 8 C=2 0.1336-0.1364 ->
  // 0.1245-0.1279 ms, C=21 0.273-0.281 -> 0.264-0.267; batch 1 C=21 0.0527-0.0537 -> 0.0522-0.0528.
  template <class Done>
  static void wait_until(Done&& done) {
    for (int i = 0; i < 2000; ++i) {
      if (done()) return;
      spin_pause();
    }
    while (!done()) std::this_thread::yield();
  }
  static void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  // The highest of `count` items whose flag(i) this call sets, scanning until one is free: callers make one call per
  // item, so one always is.
  template <class Flag>
  static int take_from_top(int count, Flag&& flag) {
    for (;;)
      for (int i = count - 1; i >= 0; --i)
        if (take(flag(i))) return i;
  }

  // Sets `claimed`, true if this call did (the load first: no write, so no line taken from another core, once set).
  static bool take(std::atomic<bool>& claimed) {
    return !claimed.load(std::memory_order_relaxed) && !claimed.exchange(true, std::memory_order_relaxed);
  }

  using Call = void (*)(void* fn, int item, int worker);
  struct Job {
    Call call = nullptr;
    void* fn = nullptr;
    int count = 0;
    uint32_t generation = 0;
  };

  void run_erased(int count, Call call, void* fn);
  // Claims and runs items of `job` until none is left or a newer job has replaced it.
  void work(const Job& job, int worker);
  void worker_loop(int worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Job job_;           // guarded by mutex_
  bool stop_ = false;  // guarded by mutex_
  // (generation << 32) | next item: a worker that wakes late for an old job can never claim an item of a new one.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
};

}  // namespace multibox::simd
