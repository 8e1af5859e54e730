// STREAM-style memory bandwidth, measured inside the benchmark process so the roofline ratio of every
// benchmark is judged against the bandwidth this machine delivers in the same run (not a number from elsewhere).
#pragma once

#include <cstddef>
#include <memory>

namespace multibox::bench {

struct StreamResult {
  double copy_gb_per_s = 0;   // c[i] = a[i]: 2 x 8 bytes per element, STREAM's convention (write-allocate not counted)
  double triad_gb_per_s = 0;  // a[i] = b[i] + s * c[i]: 3 x 8 bytes per element
  int threads = 0;
  size_t array_bytes = 0;     // bytes of each of the three arrays
  int trials = 0;
};

// Best of `trials` timed passes (the first pass, which faults the pages in, is not timed), as STREAM reports.
// Arrays must be far larger than the last-level cache or the figure measures the cache instead of memory.
StreamResult measure_stream(int threads, size_t array_bytes, int trials);

// STREAM copy only, cheap enough to run right before and right after every roofline benchmark: on a shared VM the
// bandwidth drifts within minutes, so a figure from start-up says little about a benchmark that runs later. The two
// arrays are allocated and faulted in on the first call and reused by every later one, so page faults are never
// timed and the allocation is paid only by runs that use the probe.
class CopyProbe {
 public:
  CopyProbe(int threads, size_t array_bytes);
  ~CopyProbe();
  CopyProbe(const CopyProbe&) = delete;
  CopyProbe& operator=(const CopyProbe&) = delete;

  // Best of `trials` copy passes, in GB/s (STREAM's 2 x 8 bytes per element).
  double copy_gb_per_s(int trials);

  int threads() const { return threads_; }
  size_t array_bytes() const;

 private:
  int threads_;
  std::ptrdiff_t n_;
  std::unique_ptr<double[]> a_, c_;
};

// How far apart two of this process's CPUs are: the round trip of a cache line bounced between two threads pinned to
// the first two CPUs it may run on, in ns, the median of `trials` runs of `bounces` round trips; 0 when it may run
// on only one CPU. On the 2-vCPU VMs this project is measured on the hypervisor moves the vCPUs: 170 ns at some
// times and 400-490 ns at others (2026-12-03), and the 2-thread times of the small benchmarks moved with it (SSD300,
// batch 8, C=2, forward + backward: 0.137 ms against 0.16-0.20 ms), so a run's ratios and times carry this figure.
// The calling thread's CPU affinity is restored before it returns.
double core_round_trip_ns(int bounces, int trials);

// The first two CPUs this process may run on, or false when it may run on only one.
bool first_two_cpus(int (&cpus)[2]);
// Pins the calling thread to `cpu`; false if it cannot be.
bool pin_this_thread(int cpu);

}  // namespace multibox::bench
