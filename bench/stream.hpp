// STREAM-style memory bandwidth, measured inside the benchmark process so the roofline ratio of every
// benchmark is judged against the bandwidth this machine delivers in the same run (not a number from elsewhere).
#pragma once

#include <cstddef>

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

}  // namespace multibox::bench
