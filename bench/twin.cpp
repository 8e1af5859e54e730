#include "twin.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include "simd/image_pool.hpp"
#include "simd/loss.hpp"
#include "simd/row_math.hpp"
#include "simd/streaming.hpp"
#include "stream.hpp"

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
  // An item's matching and loss, paired as the backend pairs an image's (ImagePool::run_pairs): one pool run, the
  // loss on the thread that matched where it can.
  std::unique_ptr<simd::ImagePool::PairSlot[]> pairs;

  Impl(const ProblemShape& s, int total_ground_truths, int t)
      : shape(s),
        threads(t),
        out(s, total_ground_truths),
        pool(t),
        sink(static_cast<size_t>(t) * 16),
        pairs(std::make_unique<simd::ImagePool::PairSlot[]>(static_cast<size_t>(items()))) {}

  int pieces() const { return shape.batch >= threads ? 1 : (threads + shape.batch - 1) / shape.batch; }
  int items() const { return shape.batch * pieces(); }

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
  // cut into threads / B pieces so every thread has work. Calls segment(b, p0, p1, acc) for the item's rows.
  template <class Segment>
  void run_item(int item, int worker, Segment&& segment) {
    const int64_t P = shape.num_priors;
    const int64_t per_piece = (P + pieces() - 1) / pieces();
    const int b = item / pieces();
    const int64_t p0 = (item % pieces()) * per_piece, p1 = std::min(P, p0 + per_piece);
    const DF d;
    VF acc = hn::LoadU(d, sink.data() + worker * 16);
    if (p0 < p1) segment(b, p0, p1, acc);
    hn::StoreU(acc, d, sink.data() + worker * 16);
    simd::flush_streaming_stores();
  }

  void replay(const GroundTruthView& gt, const PredictionView& pred, std::span<const float> priors, Stage stage) {
    const bool encode = stage >= Stage::encode, backward = stage >= Stage::backward;
    auto match = [&](int item, int worker) {
      run_item(item, worker, [&](int b, int64_t p0, int64_t p1, VF& acc) {
        match_segment(gt, priors, encode, b, p0, p1, acc);
      });
    };
    auto loss = [&](int item, int worker, const auto&) {
      run_item(item, worker, [&](int b, int64_t p0, int64_t p1, VF& acc) {
        loss_segment(pred, backward, b, p0, p1, acc);
      });
    };
    if (stage < Stage::forward) return pool.run(items(), match);
    pool.run_pairs({pairs.get(), static_cast<size_t>(items())}, match, [] {}, loss);
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
  return median(std::move(times));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : 0.5 * (v[(n - 1) / 2] + v[n / 2]);
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

double core_vector_balance() {
  int cpus[2];
  if (!first_two_cpus(cpus)) return 0;
  double rate[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    // A thread of its own, so the caller's affinity is never touched.
    std::thread([&rate, k, cpu = cpus[k]] {
      if (!pin_this_thread(cpu)) return;
      const DF d;
      constexpr int kChains = 12;  // more than an FMA's latency x the vector pipes, so the figure is the issue rate
      constexpr int kReps = 100000;
      std::vector<double> times;
      volatile float sink = 0;
      for (int t = 0; t < 7; ++t) {
        VF acc[kChains];
        for (int c = 0; c < kChains; ++c) acc[c] = hn::Set(d, 1.0f + 1e-3f * static_cast<float>(c));
        const VF m = hn::Set(d, 0.9999999f), a = hn::Set(d, 1e-7f);
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kReps; ++i)
          for (VF& v : acc) v = hn::MulAdd(v, m, a);
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        for (const VF& v : acc) sink = sink + hn::GetLane(v);  // observable, so the chains are computed
      }
      rate[k] = 1.0 / median(std::move(times));
    }).join();
  }
  if (rate[0] <= 0 || rate[1] <= 0) return 0;
  return std::min(rate[0], rate[1]) / std::max(rate[0], rate[1]);
}

namespace {

// A row's vector of lane maxima (lanes past the row hold -inf) and, given its max, its vector of exp(x - max) sums.
HWY_INLINE VF row_max_lanes(const float* row, size_t C) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF lowest = hn::Set(d, -HUGE_VALF);
  VF m0 = lowest, m1 = lowest;  // two chains, so a row's latency is half its length
  size_t i = 0;
  for (; i + 2 * N <= C; i += 2 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, row + i));
    m1 = hn::Max(m1, hn::LoadU(d, row + i + N));
  }
  for (; i < C; i += N) {
    const auto valid = hn::FirstN(d, C - i);
    m0 = hn::Max(m0, hn::IfThenElse(valid, hn::MaskedLoad(valid, d, row + i), lowest));
  }
  return hn::Max(m0, m1);
}

HWY_INLINE VF row_exp_sums(const float* row, size_t C, VF max) {
  const DF d;
  const size_t N = hn::Lanes(d);
  VF s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= C; i += 2 * N) {
    s0 = hn::Add(s0, simd::exp_nonpositive(hn::Sub(hn::LoadU(d, row + i), max)));
    s1 = hn::Add(s1, simd::exp_nonpositive(hn::Sub(hn::LoadU(d, row + i + N), max)));
  }
  for (; i < C; i += N) {
    const auto valid = hn::FirstN(d, C - i);
    const VF t = hn::Sub(hn::MaskedLoad(valid, d, row + i), max);
    s0 = hn::Add(s0, hn::IfThenElseZero(valid, simd::exp_nonpositive(t)));
  }
  return hn::Add(s0, s1);
}

// max + log(sum(exp(x - max))) of the N rows at x, as one vector (lane r = row r), written the way the simd
// backend's kernels are: 2-4 logits a row read as columns by deinterleaving loads, longer rows reduced N at a time
// by its shuffle tree where the target has one.
HWY_INLINE VF log_sum_exp_rows(const float* x, size_t C) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (C >= 2 && C <= 4) {
    VF col[4];
    if (C == 2) hn::LoadInterleaved2(d, x, col[0], col[1]);
    if (C == 3) hn::LoadInterleaved3(d, x, col[0], col[1], col[2]);
    if (C == 4) hn::LoadInterleaved4(d, x, col[0], col[1], col[2], col[3]);
    VF max = col[0];
    for (size_t c = 1; c < C; ++c) max = hn::Max(max, col[c]);
    VF sum = hn::Zero(d);
    for (size_t c = 0; c < C; ++c) sum = hn::Add(sum, simd::exp_nonpositive(hn::Sub(col[c], max)));
    return hn::Add(max, hn::Log(d, sum));
  }
#if HWY_TARGET <= HWY_AVX3 || HWY_TARGET == HWY_AVX2
  static_assert(simd::kTreeRows == hn::MaxLanes(DF()), "one tree per vector of rows");
  simd::RowVec v[simd::kTreeRows];
  for (size_t r = 0; r < N; ++r) v[simd::kSlotRow[r]] = row_max_lanes(x + r * C, C).raw;
  const VF max{simd::reduce_rows(v, [](auto a, auto b) { return hn::Max(VF{a}, VF{b}).raw; })};
  HWY_ALIGN float top[hn::MaxLanes(DF())];
  hn::Store(max, d, top);
  for (size_t r = 0; r < N; ++r) v[simd::kSlotRow[r]] = row_exp_sums(x + r * C, C, hn::Set(d, top[r])).raw;
  const VF sum{simd::reduce_rows(v, [](auto a, auto b) { return hn::Add(VF{a}, VF{b}).raw; })};
  return hn::Add(max, hn::Log(d, sum));
#else
  HWY_ALIGN float top[hn::MaxLanes(DF())], sums[hn::MaxLanes(DF())];
  for (size_t r = 0; r < N; ++r) {
    const VF m = hn::MaxOfLanes(d, row_max_lanes(x + r * C, C));
    top[r] = hn::GetLane(m);
    sums[r] = hn::GetLane(hn::SumOfLanes(d, row_exp_sums(x + r * C, C, m)));
  }
  return hn::Add(hn::Load(d, top), hn::Log(d, hn::Load(d, sums)));
#endif
}

}  // namespace

double softmax_rows_per_ns(int classes) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t C = static_cast<size_t>(classes);
  // About 16 KiB of rows, a whole number of vectors of rows, swept until some 2 million logits went through.
  const size_t rows = std::max<size_t>(1, 4096 / C / N) * N;
  const size_t sweeps = std::max<size_t>(1, (size_t{2} << 20) / (rows * C));
  hwy::AlignedFreeUniquePtr<float[]> a = hwy::AllocateAligned<float>(rows * C);
  for (size_t i = 0; i < rows * C; ++i) a[i] = -4.0f + 8.0f * static_cast<float>(i * 37 % 101) / 101.0f;
  volatile float sink = 0;
  auto opaque = [](const float* p) {
    asm volatile("" : "+r"(p) : : "memory");
    return p;
  };
  // The kernel must compute what it claims: every row's value against a double-precision log-sum-exp.
  for (size_t r0 = 0; r0 < rows; r0 += N) {
    HWY_ALIGN float got[hn::MaxLanes(DF())];
    hn::Store(log_sum_exp_rows(a.get() + r0 * C, C), d, got);
    for (size_t k = 0; k < N; ++k) {
      const float* row = a.get() + (r0 + k) * C;
      const double m = *std::max_element(row, row + C);
      double sum = 0;
      for (size_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
      const double expect = m + std::log(sum);
      if (!(std::abs(got[k] - expect) <= 1e-5 * std::abs(expect) + 1e-5)) {
        std::fprintf(stderr, "multibox_bench: the softmax ceiling's kernel is wrong at C=%d, row %zu: %g, "
                     "expected %g\n", classes, r0 + k, got[k], expect);
        return 0;  // no ceiling rather than the speed of a wrong kernel
      }
    }
  }
  // Best of 15 short trials: on a shared VM the quietest of them is the core's own rate.
  const double seconds = best_seconds(15, [&] {
    VF total = hn::Zero(d);
    for (size_t s = 0; s < sweeps; ++s) {
      const float* x = opaque(a.get());
      for (size_t r = 0; r < rows; r += N) total = hn::Add(total, log_sum_exp_rows(x + r * C, C));
    }
    sink = hn::GetLane(hn::SumOfLanes(d, total));
  });
  return static_cast<double>(rows * sweeps) / (seconds * 1e9);
}

}  // namespace multibox::bench
