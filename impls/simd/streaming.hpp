// Zero-filling of large output slabs with non-temporal stores. Outputs such as the gradients and targets are
// written once and not read back by this backend, so streaming them past the cache saves the read-for-ownership
// of every line; only a partial first and last vector use ordinary stores.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

namespace multibox::simd {

inline void stream_zero(float* out, size_t n) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t align = N * sizeof(float);
  if (n < 4 * N) {
    std::fill_n(out, n, 0.0f);
    return;
  }
  const size_t head = ((align - reinterpret_cast<uintptr_t>(out) % align) % align) / sizeof(float);
  std::fill_n(out, head, 0.0f);
  size_t i = head;
  const auto zero = hn::Zero(d);
  for (; i + N <= n; i += N) hn::Stream(zero, d, out + i);
  std::fill(out + i, out + n, 0.0f);
}

// Makes this thread's streaming stores visible to other threads; call before leaving the parallel region.
inline void flush_streaming_stores() { hwy::FlushStream(); }

}  // namespace multibox::simd
