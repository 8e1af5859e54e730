#include "stream.hpp"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace multibox::bench {
namespace {

// A non-inlined kernel per operation so the compiler cannot merge passes or drop a pass whose result
// is overwritten by the next one.
[[gnu::noinline]] void copy_kernel(const double* a, double* c, std::ptrdiff_t n, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::ptrdiff_t i = 0; i < n; ++i) c[i] = a[i];
}

[[gnu::noinline]] void triad_kernel(double* a, const double* b, const double* c, double s, std::ptrdiff_t n,
                                    int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::ptrdiff_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace

StreamResult measure_stream(int threads, size_t array_bytes, int trials) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(array_bytes / sizeof(double));
  // Uninitialised on purpose: the first touch happens in the same static schedule as the kernels, so each
  // thread's pages sit where that thread runs (STREAM's first-touch rule; it matters on multi-socket machines).
  std::unique_ptr<double[]> a(new double[n]), b(new double[n]), c(new double[n]);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    a[i] = 1.0;
    b[i] = 2.0;
    c[i] = 0.0;
  }

  double best_copy = 1e30, best_triad = 1e30;
  for (int t = 0; t <= trials; ++t) {
    const double t0 = omp_get_wtime();
    copy_kernel(a.get(), c.get(), n, threads);
    const double t1 = omp_get_wtime();
    triad_kernel(a.get(), b.get(), c.get(), 3.0, n, threads);
    const double t2 = omp_get_wtime();
    if (t == 0) continue;  // warm-up pass
    best_copy = std::min(best_copy, t1 - t0);
    best_triad = std::min(best_triad, t2 - t1);
  }

  StreamResult r;
  r.copy_gb_per_s = 2.0 * sizeof(double) * static_cast<double>(n) / best_copy / 1e9;
  r.triad_gb_per_s = 3.0 * sizeof(double) * static_cast<double>(n) / best_triad / 1e9;
  r.threads = threads;
  r.array_bytes = static_cast<size_t>(n) * sizeof(double);
  r.trials = trials;
  return r;
}

CopyProbe::CopyProbe(int threads, size_t array_bytes)
    : threads_(threads), n_(static_cast<std::ptrdiff_t>(array_bytes / sizeof(double))) {}

CopyProbe::~CopyProbe() = default;

size_t CopyProbe::array_bytes() const { return static_cast<size_t>(n_) * sizeof(double); }

double CopyProbe::copy_gb_per_s(int trials) {
  if (!a_) {
    // First touch in the kernels' static schedule, as in measure_stream; this pass also faults every page in.
    a_.reset(new double[n_]);
    c_.reset(new double[n_]);
    double* a = a_.get();
    double* c = c_.get();
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (std::ptrdiff_t i = 0; i < n_; ++i) {
      a[i] = 1.0;
      c[i] = 0.0;
    }
  }
  double best = 1e30;
  for (int t = 0; t < trials; ++t) {
    const double t0 = omp_get_wtime();
    copy_kernel(a_.get(), c_.get(), n_, threads_);
    best = std::min(best, omp_get_wtime() - t0);
  }
  return 2.0 * sizeof(double) * static_cast<double>(n_) / best / 1e9;
}

bool first_two_cpus(int (&cpus)[2]) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus[found++] = c;
  }
  return found == 2;
}

bool pin_this_thread(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
}

double core_round_trip_ns(int bounces, int trials) {
  int cpus[2];
  if (!first_two_cpus(cpus)) return 0;
  cpu_set_t caller;
  if (pthread_getaffinity_np(pthread_self(), sizeof caller, &caller) != 0 || !pin_this_thread(cpus[0])) return 0;
  // One line, bounced: the caller writes odd values, the partner answers with the next even one, until the caller
  // writes -1. `ready` says whether the partner got its CPU (1) or not (-1), so neither side can wait for the other
  // forever. A trial stops after kTrialBudget even if short of `bounces`: with the other CPU busy (ctest -j2 runs
  // the smoke benchmark beside other tests) a round trip can take a scheduler slice.
  constexpr auto kTrialBudget = std::chrono::milliseconds(20);
  alignas(64) std::atomic<int64_t> line{0};
  alignas(64) std::atomic<int> ready{0};
  std::thread partner([&] {
    const bool pinned = pin_this_thread(cpus[1]);
    ready.store(pinned ? 1 : -1, std::memory_order_release);
    if (!pinned) return;
    for (;;) {
      int64_t v;
      while ((v = line.load(std::memory_order_acquire)) % 2 == 0) {
      }
      if (v < 0) return;
      line.store(v + 1, std::memory_order_release);
    }
  });
  while (ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  std::vector<double> times;
  int64_t next = 1;  // the next odd value to write
  for (int t = 0; t < trials && ready.load(std::memory_order_relaxed) == 1; ++t) {
    const auto start = std::chrono::steady_clock::now();
    int done = 0;
    for (; done < bounces; ++done, next += 2) {
      line.store(next, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != next + 1) {
      }
      if (done % 16 == 15 && std::chrono::steady_clock::now() - start > kTrialBudget) break;
    }
    times.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
                    std::max(done, 1));
  }
  line.store(-1, std::memory_order_release);
  partner.join();
  pthread_setaffinity_np(pthread_self(), sizeof caller, &caller);
  if (times.empty()) return 0;
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace multibox::bench
