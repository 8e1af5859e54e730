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

}  // namespace multibox::bench
