#include "twin.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "simd/image_pool.hpp"
#include "simd/loss.hpp"
#include "simd/streaming.hpp"

namespace multibox::bench {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Loads every float of [x, x + n) into a running max: one op per vector, so the loads are the whole cost.
HWY_INLINE VF touch(const float* x, size_t n, VF acc) {
  const DF d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) acc = hn::Max(acc, hn::LoadU(d, x + i));
  if (i < n) {
    const auto valid = hn::FirstN(d, n - i);
    acc = hn::Max(acc, hn::IfThenElseZero(valid, hn::MaskedLoad(valid, d, x + i)));
  }
  return acc;
}

HWY_INLINE VF touch(const int32_t* x, size_t n, VF acc) {
  return touch(reinterpret_cast<const float*>(x), n, acc);  // bits are not interpreted, only loaded
}

// Ordinary stores of zeros over [x, x + n), whole vectors where possible, as the backend's row stores are.
template <class T>
HWY_INLINE void store_zeros(T* x, size_t n) {
  static_assert(sizeof(T) == sizeof(float));
  const DF d;
  const size_t N = hn::Lanes(d);
  float* f = reinterpret_cast<float*>(x);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Zero(d), d, f + i);
  if (i < n) hn::BlendedStore(hn::Zero(d), hn::FirstN(d, n - i), d, f + i);
}

// The backend streams the gradient zeros after every row group's logits (simd::kLossRowGroup).
constexpr int64_t kGroupRows = simd::kLossRowGroup;

}  // namespace

struct TrafficTwin::Impl {
  ProblemShape shape;
  int threads;
  BatchOutputs out;
  simd::ImagePool pool;
  std::vector<int64_t> positive_rows, mined_rows;  // flat row indices b * P + p, ascending
  std::vector<float> sink;                          // one cache line per worker: keeps every load live

  Impl(const ProblemShape& s, int total_ground_truths, int t)
      : shape(s), threads(t), out(s, total_ground_truths), pool(t), sink(static_cast<size_t>(t) * 16) {}

  // The rows of `rows` within [r0, r1).
  static std::span<const int64_t> within(const std::vector<int64_t>& rows, int64_t r0, int64_t r1) {
    const auto a = std::lower_bound(rows.begin(), rows.end(), r0);
    const auto b = std::lower_bound(a, rows.end(), r1);
    return {rows.data() + (a - rows.begin()), static_cast<size_t>(b - a)};
  }

  // Matching: the priors and ground truths read; a match per row (and each image's forced priors) stored; with
  // encode, the targets streamed as zeros and the positives' rows overwritten.
  void match_segment(const GroundTruthView& gt, std::span<const float> priors, bool encode, int b, int64_t p0,
                     int64_t p1, VF& acc) {
    const int64_t P = shape.num_priors;
    const int64_t r0 = b * P + p0, r1 = b * P + p1;
    acc = touch(priors.data() + p0 * 4, static_cast<size_t>(p1 - p0) * 4, acc);
    if (p0 == 0) {
      const size_t g0 = static_cast<size_t>(gt.offsets[b]), g1 = static_cast<size_t>(gt.offsets[b + 1]);
      acc = touch(gt.boxes.data() + g0 * 4, (g1 - g0) * 4, acc);
      store_zeros(out.forced_prior.data() + g0, g1 - g0);
    }
    store_zeros(out.matches.data() + r0, static_cast<size_t>(r1 - r0));
    if (!encode) return;
    simd::stream_zero(out.targets.data() + r0 * 4, static_cast<size_t>(r1 - r0) * 4);
    for (int64_t r : within(positive_rows, r0, r1)) store_zeros(out.targets.data() + r * 4, 4);
  }

  // The loss: every logit read once and the matches with it; the mined mask stored; with backward, both gradients
  // streamed as zeros group by group as the logits are read, then the positives' and mined rows overwritten. The
  // positives' loc offsets and targets are read (the only ones the loss reads without the NaN scan).
  void loss_segment(const PredictionView& pred, bool backward, int b, int64_t p0, int64_t p1, VF& acc) {
    const int64_t P = shape.num_priors;
    const size_t C = static_cast<size_t>(shape.num_classes);
    const int64_t r0 = b * P + p0, r1 = b * P + p1;
    std::memset(out.mined.data() + r0, 0, static_cast<size_t>(r1 - r0));
    if (backward) simd::stream_zero(out.grad_loc.data() + r0 * 4, static_cast<size_t>(r1 - r0) * 4);
    simd::ZeroStream zeros(out.grad_conf.data() + r0 * C);
    for (int64_t r = r0; r < r1; r += kGroupRows) {
      const int64_t e = std::min<int64_t>(r1, r + kGroupRows);
      acc = touch(pred.conf.data() + r * C, static_cast<size_t>(e - r) * C, acc);
      acc = touch(out.matches.data() + r, static_cast<size_t>(e - r), acc);
      if (backward) zeros.until(static_cast<size_t>(e - r0) * C);
    }
    if (backward) {
      zeros.finish(static_cast<size_t>(r1 - r0) * C);
      simd::flush_streaming_stores();
    }
    for (int64_t r : within(positive_rows, r0, r1)) {
      acc = touch(pred.loc.data() + r * 4, 4, acc);
      acc = touch(out.targets.data() + r * 4, 4, acc);
      if (backward) {
        store_zeros(out.grad_loc.data() + r * 4, 4);
        store_zeros(out.grad_conf.data() + r * C, C);
      }
    }
    for (int64_t r : within(mined_rows, r0, r1)) {
      out.mined[static_cast<size_t>(r)] = 0;
      if (backward) store_zeros(out.grad_conf.data() + r * C, C);
    }
  }

  // Items of work: whole images when there are at least as many as threads (the backend's split), else each image
  // cut into threads / B pieces so every thread has work.
  template <class Segment>
  void for_each_item(Segment&& segment) {
    const int B = shape.batch;
    const int64_t P = shape.num_priors;
    const int pieces = B >= threads ? 1 : (threads + B - 1) / B;
    const int64_t per_piece = (P + pieces - 1) / pieces;
    pool.run(B * pieces, [&](int item, int worker) {
      const int b = item / pieces;
      const int64_t p0 = (item % pieces) * per_piece, p1 = std::min(P, p0 + per_piece);
      const DF d;
      VF acc = hn::LoadU(d, sink.data() + worker * 16);
      if (p0 < p1) segment(b, p0, p1, acc);
      hn::StoreU(acc, d, sink.data() + worker * 16);
      simd::flush_streaming_stores();
    });
  }

  void replay(const GroundTruthView& gt, const PredictionView& pred, std::span<const float> priors, Stage stage) {
    const bool encode = stage >= Stage::encode;
    for_each_item([&](int b, int64_t p0, int64_t p1, VF& acc) { match_segment(gt, priors, encode, b, p0, p1, acc); });
    if (stage < Stage::forward) return;
    const bool backward = stage >= Stage::backward;
    for_each_item([&](int b, int64_t p0, int64_t p1, VF& acc) { loss_segment(pred, backward, b, p0, p1, acc); });
  }
};

TrafficTwin::TrafficTwin(const ProblemShape& shape, int total_ground_truths, int threads)
    : impl_(std::make_unique<Impl>(shape, total_ground_truths, threads)) {}

TrafficTwin::~TrafficTwin() = default;

void TrafficTwin::learn_rows(const OutputView& run) {
  impl_->positive_rows.clear();
  impl_->mined_rows.clear();
  for (size_t r = 0; r < run.matches.size(); ++r) {
    if (run.matches[r] >= 0) impl_->positive_rows.push_back(static_cast<int64_t>(r));
    if (run.mined[r] != 0) impl_->mined_rows.push_back(static_cast<int64_t>(r));
  }
}

double TrafficTwin::seconds(const GroundTruthView& gt, const PredictionView& pred, std::span<const float> priors,
                            Stage stage, int runs) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    impl_->replay(gt, pred, priors, stage);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  return n == 0 ? 0 : 0.5 * (times[(n - 1) / 2] + times[n / 2]);
}

namespace {

// Best of `trials` timings of fn(), in seconds.
template <class Fn>
double best_seconds(int trials, Fn&& fn) {
  double best = 1e30;
  for (int t = 0; t < trials; ++t) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

VectorLimits measure_vector_limits() {
  const DF d;
  const size_t N = hn::Lanes(d);
  VectorLimits limits;
  limits.lanes = static_cast<int>(N);
  // 16 KiB of operands, well inside L1, swept many times: the kernels' issue rate, not memory.
  constexpr size_t kFloats = 4096, kSweeps = 2000;
  hwy::AlignedFreeUniquePtr<float[]> a = hwy::AllocateAligned<float>(kFloats * 5);
  for (size_t i = 0; i < kFloats * 5; ++i) a[i] = 0.25f + 0.5f * static_cast<float>(i % 97) / 97.0f;
  volatile float sink = 0;  // every kernel's result is observable, or the compiler may drop the kernel
  // Max is idempotent: without a barrier the compiler may fold repeated sweeps over the same operands into one.
  auto opaque = [](const float* p) {
    asm volatile("" : "+r"(p) : : "memory");
    return p;
  };

  // Eight accumulators: more chains than max latency x issue width, so the figure is the load/issue rate.
  constexpr size_t kChains = 8;
  const double logits = best_seconds(5, [&] {
    VF m[kChains];
    for (VF& v : m) v = hn::Zero(d);
    for (size_t s = 0; s < kSweeps; ++s) {
      const float* x = opaque(a.get());
      for (size_t i = 0; i + kChains * N <= kFloats; i += kChains * N)
        for (size_t k = 0; k < kChains; ++k) m[k] = hn::Max(m[k], hn::Load(d, x + i + k * N));
    }
    for (size_t k = 1; k < kChains; ++k) m[0] = hn::Max(m[0], m[k]);
    sink = hn::GetLane(hn::MaxOfLanes(d, m[0]));
  });
  limits.logits_per_ns = static_cast<double>(kFloats * kSweeps) / (logits * 1e9);

  // The matcher's IoU of one ground truth against kPriors priors (structure of arrays), kept by a running max.
  constexpr size_t kPriors = kFloats / 5 / 16 * 16;
  const double iou = best_seconds(5, [&] {
    const VF gx1 = hn::Set(d, 0.3f), gy1 = hn::Set(d, 0.3f), gx2 = hn::Set(d, 0.6f), gy2 = hn::Set(d, 0.6f);
    const VF garea = hn::Set(d, 0.09f), zero = hn::Zero(d);
    VF best = zero;
    for (size_t s = 0; s < kSweeps; ++s) {
      const float* x1 = opaque(a.get());
      const float* y1 = x1 + kPriors;
      const float* x2 = y1 + kPriors;
      const float* y2 = x2 + kPriors;
      const float* area = y2 + kPriors;
      for (size_t j = 0; j < kPriors; j += N) {
        const VF iw = hn::Max(zero, hn::Sub(hn::Min(gx2, hn::Load(d, x2 + j)), hn::Max(gx1, hn::Load(d, x1 + j))));
        const VF ih = hn::Max(zero, hn::Sub(hn::Min(gy2, hn::Load(d, y2 + j)), hn::Max(gy1, hn::Load(d, y1 + j))));
        const VF inter = hn::Mul(iw, ih);
        best = hn::Max(best, hn::Div(inter, hn::Sub(hn::Add(garea, hn::Load(d, area + j)), inter)));
      }
    }
    sink = hn::GetLane(hn::MaxOfLanes(d, best));
  });
  limits.iou_pairs_per_ns = static_cast<double>(kPriors * kSweeps) / (iou * 1e9);
  return limits;
}

}  // namespace multibox::bench
