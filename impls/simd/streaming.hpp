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
  // Four vectors a step: the compiler kept one store a step, 6 instructions a vector, 4.4 of pass 1's 44 a row on
  // classes-2 (callgrind), where each call streams 4-8 vectors.
  for (; i + 4 * N <= n; i += 4 * N) {
    hn::Stream(zero, d, out + i);
    hn::Stream(zero, d, out + i + N);
    hn::Stream(zero, d, out + i + 2 * N);
    hn::Stream(zero, d, out + i + 3 * N);
  }
  for (; i + N <= n; i += N) hn::Stream(zero, d, out + i);
  std::fill(out + i, out + n, 0.0f);
}

// Zeros an output slab front to back in pieces, as the caller reaches each point, so the writes overlap the work
// between them. (Streaming after every row instead of every 16 rows measured slower: backward C=21 3.1 -> 3.6 ms;
// tried again with the whole-line cuts below, a row, 4 rows or 8 rows at a time inside the next group's loads, one
// thread, C=21 forward + backward: +50 %, +14 %, +6 %.)
// Only whole cache lines are streamed before finish(), so no line is written partly by one call and partly by the
// next: a slab from malloc starts 16 bytes into a line, and cut at vector boundaries every call of pass 1 left a
// line half-written in a write-combining buffer while other stores ran (SSD300, batch 8, C=2, values checked,
// forward + backward, one thread, best of 600 runs, alternated binaries, AVX2 EPYC: 0.457 -> 0.430 ms; forward,
// which streams nothing, unchanged).
class ZeroStream {
 public:
  explicit ZeroStream(float* out) : out_(out) {}
  void until(size_t end) {
    constexpr size_t kLineFloats = 64 / sizeof(float);
    const size_t partial = (reinterpret_cast<uintptr_t>(out_ + end) / sizeof(float)) % kLineFloats;
    if (end < partial) return;  // not one whole line yet
    end -= partial;
    if (end >= done_ + kMinStreamed) {
      stream_zero(out_ + done_, end - done_);
      done_ = end;
    }
  }
  void finish(size_t end) {
    if (end > done_) stream_zero(out_ + done_, end - done_);
    done_ = end;
  }

 private:
  // until() waits for at least this much: stream_zero writes a piece under 4 vectors with ordinary stores (fill_n, a
  // memset call), and at C=2 and 3 every group's piece of the conf gradient (32 or 48 floats) was one, each line read
  // for ownership (forward + backward, SSD300, batch 8, C=2, alternated, best of each round: 2 threads 0.141 -> 0.134
  // ms, one thread 0.216 -> 0.214; the twin streams through this class too).
  static constexpr size_t kMinStreamed = 4 * hwy::HWY_NAMESPACE::MaxLanes(hwy::HWY_NAMESPACE::ScalableTag<float>());
  float* out_;
  size_t done_ = 0;
};

// Makes this thread's streaming stores visible to other threads; call before leaving the parallel region.
inline void flush_streaming_stores() { hwy::FlushStream(); }

}  // namespace multibox::simd
