// Highway rather than Eigen for the row kernels: the accuracy the comparator asks of confident rows (softmax - 1
// near 0) needs the exp-sum without the max element's exact 1, i.e. a masked sum, and a NaN scan fused into the
// same loads. Eigen 3.4 has no vectorised select and does not vectorise a float->double cast inside a reduction:
// measured on 32 x 8732 rows of 81 logits (thread CPU time, this machine), Eigen's plain float logsumexp took
// 12.6 ms, Eigen with a double sum 85-91 ms, Highway with the masked sum, the NaN scan and hwy::Exp 12.9 ms
// (7.5 against Eigen's 10.5 ms at C=21). The cheaper exp below, row groups and the histogram pre-selection of
// negatives then took the forward stage (SSD300, batch 32, C=81, one thread) from 18 to 13-14 ms of CPU.
// The FMA pipe bounds the row kernels (5 exp vectors per row alone run at 35 cycles a row, one 512-bit FMA per
// cycle here), so the exp polynomial went from degree 7 to 5, and the zero gradient rows are streamed during the
// logits pass rather than in a pass of their own (measured on the shared 2-core VM, best of 25 runs of one thread
// over the 32 images: forward C=81 9.0-9.3 -> 8.8-9.1 ms, hot in cache 7.6-7.8 -> 6.9-7.1 ms, C=21 4.5-4.9 ->
// 4.2-4.4 ms; forward+backward C=81 12.5-15.0 -> 11.9-14.2 ms, C=21 5.6-5.7 -> 4.9-5.2 ms). Tried and dropped:
// gathering the C % 16 tail columns across a row group (C=21 got 8% slower: gathers cost more than the masked
// exp they save) and reducing a group's 16 rows with one permute tree instead of a horizontal reduction per row
// (no measurable change).
#include "simd/loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include "core/math.hpp"
#include "multibox/batch.hpp"
#include "simd/streaming.hpp"

namespace multibox::simd {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Rows are processed in groups, one kernel at a time across the group, so the latency chains of one row's
// reductions overlap with the next row's loads, and log1p runs once per vector of rows instead of once per row.
constexpr int kRowGroup = 16;
// Sign, exponent and 3 mantissa bits of a CE: 4096 buckets, each a factor of at most 1.125 wide.
constexpr int kHistogramBits = 12;

// exp(t) for the t <= 0 of a max-shifted row, in 10 vector operations on AVX-512 against ~24 for hwy::Exp (which
// also handles t > 0): t = n ln2 + r with |r| <= ln2/2, a degree-5 polynomial with p(0) = 1 fitted for minimax
// relative error on that interval (1.5e-7 with float rounding, against 7e-8 for the degree-7 Taylor polynomial it
// replaced; the comparator allows 1e-5), then r scaled by 2^n. The single-constant reduction costs |n| * 2e-9
// relative (< 3e-7 down to the clamp at -200, below which the result underflows to 0 anyway). exp(0) is exactly 1.
HWY_INLINE VF exp_nonpositive(VF t) {
  const DF d;
  t = hn::Max(t, hn::Set(d, -200.0f));  // keeps t * log2(e) and the reduction finite when x - max overflows
  const VF n = hn::Round(hn::Mul(t, hn::Set(d, 1.44269504088896341f)));
  const VF r = hn::MulAdd(n, hn::Set(d, -0.693147180559945309f), t);
  VF p = hn::Set(d, 0.008290315046906471f);
  p = hn::MulAdd(p, r, hn::Set(d, 0.04189793020486832f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.1666763573884964f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.4999915063381195f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.9999997019767761f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
#if HWY_TARGET <= HWY_AVX3
  // vscalefps: p * 2^n in one instruction, with gradual underflow (Highway 1.0 has no op for it).
  return VF{_mm512_scalef_ps(p.raw, n.raw)};
#else
  // 2^n through the exponent bits; n >= -126 keeps it normal, smaller results are flushed to 0.
  const hn::RebindToSigned<DF> di;
  const auto tiny = hn::Lt(n, hn::Set(d, -125.0f));
  const VF scaled = hn::BitCast(d, hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::ConvertTo(di, n))));
  return hn::IfThenZeroElse(tiny, scaled);
#endif
}

// Row maximum. With kCheck, also flags a non-finite value: x * 0 is NaN exactly when x is NaN or +-Inf.
template <bool kCheck>
HWY_INLINE float row_max(const float* x, size_t C, bool& non_finite) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d), lowest = hn::Set(d, -HUGE_VALF);
  VF mx = lowest, nan_probe = zero;
  size_t i = 0;
  for (; i + N <= C; i += N) {
    const VF v = hn::LoadU(d, x + i);
    mx = hn::Max(mx, v);
    if constexpr (kCheck) nan_probe = hn::Add(nan_probe, hn::Mul(v, zero));
  }
  if (i < C) {
    const auto valid = hn::FirstN(d, C - i);
    const VF v = hn::MaskedLoad(valid, d, x + i);
    mx = hn::Max(mx, hn::IfThenElse(valid, v, lowest));
    if constexpr (kCheck) nan_probe = hn::Add(nan_probe, hn::Mul(v, zero));
  }
  if constexpr (kCheck) non_finite |= !(hn::GetLane(hn::SumOfLanes(d, nan_probe)) == 0.0f);
  return hn::GetLane(hn::MaxOfLanes(d, mx));
}

// sum(exp(x - max)) - 1. The max element's term (exactly 1) is left out of the sum and added back as a count, so
// the result keeps full relative precision on confident rows, where it is tiny and log1p(rest) is the whole CE.
HWY_INLINE float row_rest(const float* x, size_t C, float max) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF vmax = hn::Set(d, max), zero = hn::Zero(d);
  VF sum = zero;
  int32_t ties = 0;
  size_t i = 0;
  for (; i + N <= C; i += N) {
    const VF t = hn::Sub(hn::LoadU(d, x + i), vmax);
    const auto top = hn::Eq(t, zero);
    sum = hn::Add(sum, hn::IfThenZeroElse(top, exp_nonpositive(t)));
    ties += static_cast<int32_t>(hn::CountTrue(d, top));
  }
  if (i < C) {
    const auto valid = hn::FirstN(d, C - i);
    const VF t = hn::Sub(hn::MaskedLoad(valid, d, x + i), vmax);
    const auto top = hn::And(valid, hn::Eq(t, zero));
    sum = hn::Add(sum, hn::IfThenElseZero(hn::AndNot(top, valid), exp_nonpositive(t)));
    ties += static_cast<int32_t>(hn::CountTrue(d, top));
  }
  return hn::GetLane(hn::SumOfLanes(d, sum)) + static_cast<float>(ties - 1);
}

// out[c] = softmax(x)[c] * scale = exp((x[c] - max) - log_sum) * scale.
HWY_INLINE void softmax_row(const float* x, size_t C, float max, float log_sum, float scale, float* out) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF vmax = hn::Set(d, max), vls = hn::Set(d, log_sum), vscale = hn::Set(d, scale);
  size_t i = 0;
  for (; i + N <= C; i += N)
    hn::StoreU(hn::Mul(exp_nonpositive(hn::Sub(hn::Sub(hn::LoadU(d, x + i), vmax), vls)), vscale), d, out + i);
  if (i < C) {
    const auto valid = hn::FirstN(d, C - i);
    const VF t = hn::Sub(hn::Sub(hn::MaskedLoad(valid, d, x + i), vmax), vls);
    hn::BlendedStore(hn::Mul(exp_nonpositive(t), vscale), valid, d, out + i);
  }
}

// Puts the `quota` hardest negatives first (in no particular order) and returns how many entries the selection
// looked at. CEs are >= 0 (max - x[y] >= 0 and log1p(rest) >= 0), so their bit patterns order like their values:
// a histogram of the top bits finds a bucket boundary with at least `quota` CEs at or above it, those few are
// compacted to the front, and nth_element runs on them alone. Exact: every one of the quota hardest lies at or
// above that boundary, ties included.
void select_hardest(std::vector<NegativeCe>& negatives, int64_t quota, std::vector<uint32_t>& histogram) {
  const size_t n = negatives.size();
  if (quota <= 0 || quota >= static_cast<int64_t>(n)) return;
  constexpr int kShift = 32 - kHistogramBits;
  auto bucket = [](float ce) {
    uint32_t bits;
    std::memcpy(&bits, &ce, sizeof bits);
    return bits >> kShift;
  };
  std::fill(histogram.begin(), histogram.end(), 0u);
  for (const NegativeCe& e : negatives) ++histogram[bucket(e.ce)];
  uint32_t boundary = static_cast<uint32_t>(histogram.size());
  for (int64_t seen = 0; seen < quota;) seen += histogram[--boundary];
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {  // branch-free stable compaction
    const NegativeCe e = negatives[i];
    negatives[kept] = e;
    kept += bucket(e.ce) >= boundary;
  }
  auto harder = [](const NegativeCe& a, const NegativeCe& b) { return core::harder_negative(a.ce, a.prior, b.ce, b.prior); };
  if (quota < static_cast<int64_t>(kept))
    std::nth_element(negatives.begin(), negatives.begin() + (quota - 1), negatives.begin() + kept, harder);
}

bool any_non_finite(const float* x, size_t n) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  VF probe = zero;
  size_t i = 0;
  for (; i + N <= n; i += N) probe = hn::Add(probe, hn::Mul(hn::LoadU(d, x + i), zero));
  float tail = 0.0f;
  for (; i < n; ++i) tail += x[i] * 0.0f;
  return !(hn::GetLane(hn::SumOfLanes(d, probe)) + tail == 0.0f);
}

template <bool kCheck>
ImageLoss image_loss_impl(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                          LossScratch& s) {
  const int P = in.num_priors;
  const size_t C = static_cast<size_t>(in.num_classes);
  const bool backward = out.grad_conf != nullptr;
  const double n = static_cast<double>(in.batch_positives);
  const float inv_n = in.batch_positives > 0 ? static_cast<float>(1.0 / n) : 0.0f;
  const double beta = config.smooth_l1_beta, alpha = config.alpha;
  auto logits = [&](int p) { return in.conf + static_cast<size_t>(p) * C; };

  ImageLoss result;
  if constexpr (kCheck) {
    result.non_finite_prediction = any_non_finite(in.loc, static_cast<size_t>(P) * 4);
    if (result.non_finite_prediction) return result;
  }
  std::memset(out.mined, 0, static_cast<size_t>(P));
  if (backward) stream_zero(out.grad_loc, static_cast<size_t>(P) * 4);
  s.negatives.clear();

  // Pass 1: every row but the ignored ones (which are still scanned for NaN when asked).
  HWY_ALIGN float log_sum[kRowGroup];
  // With the backward stage, the zero gradient rows are streamed out group by group between the rows' compute, so
  // the writes overlap the exp work instead of taking a pass of their own. Only whole vectors are streamed at a
  // group's end, so the next group never writes into a partially streamed vector.
  const size_t lanes = hn::Lanes(DF());
  size_t zero_from = 0;  // gradient elements before this are written
  auto zero_until = [&](size_t end) {
    if (end > zero_from) {
      stream_zero(out.grad_conf + zero_from, end - zero_from);
      zero_from = end;
    }
  };
  for (int p0 = 0; p0 < P; p0 += kRowGroup) {
    const int p1 = std::min(P, p0 + kRowGroup);
    for (int p = p0; p < p1; ++p)
      if (kCheck || in.matches[p] != kIgnored) s.row_max[p] = row_max<kCheck>(logits(p), C, result.non_finite_prediction);
    for (int p = p0; p < p0 + kRowGroup; ++p)
      log_sum[p - p0] = p < p1 && in.matches[p] != kIgnored ? row_rest(logits(p), C, s.row_max[p]) : 0.0f;
    for (int k = 0; k < kRowGroup; k += static_cast<int>(hn::Lanes(DF())))
      hn::Store(hn::Log1p(DF(), hn::Load(DF(), log_sum + k)), DF(), log_sum + k);
    for (int p = p0; p < p1; ++p) {
      const int32_t m = in.matches[p];
      if (m == kIgnored) continue;
      s.row_log_sum[p] = log_sum[p - p0];
      const float* x = logits(p);
      const int32_t y = m >= 0 ? in.labels[m] : 0;
      // CE = logsumexp - x[y] = (max - x[y]) + log_sum: no large terms cancel, even with logits of 1e4.
      const float ce = (s.row_max[p] - x[y]) + s.row_log_sum[p];
      if (m < 0) {
        // A NaN would break nth_element's ordering (unchecked input with check_prediction_values off): rank it
        // as +Inf instead, so selection stays well defined and the loss comes out infinite.
        s.negatives.push_back({ce == ce ? ce : HUGE_VALF, p});
        continue;
      }
      result.conf_sum += ce;
      for (int k = 0; k < 4; ++k) {
        const size_t i = static_cast<size_t>(p) * 4 + k;
        const double diff = static_cast<double>(in.loc[i]) - in.targets[i];
        result.loc_sum += core::smooth_l1<double>(diff, beta);
        if (backward && in.batch_positives > 0)
          out.grad_loc[i] = static_cast<float>(alpha * core::smooth_l1_grad<double>(diff, beta) / n);
      }
      if (backward && in.batch_positives > 0) {
        const size_t row_start = static_cast<size_t>(p) * C;
        zero_until(row_start);
        zero_from = row_start + C;
        float* grad = out.grad_conf + row_start;
        softmax_row(x, C, s.row_max[p], s.row_log_sum[p], inv_n, grad);
        // softmax - 1 = expm1(log softmax): exact where the row is confident and the difference is tiny.
        grad[y] = std::expm1((x[y] - s.row_max[p]) - s.row_log_sum[p]) * inv_n;
      }
    }
    if (backward) {
      size_t end = static_cast<size_t>(p1) * C;
      if (p1 < P) end -= (reinterpret_cast<uintptr_t>(out.grad_conf + end) / sizeof(float)) % lanes;
      zero_until(end);
    }
  }

  if (kCheck && result.non_finite_prediction) return result;

  // Hard negative mining by selection: afterwards the first K entries are the K hardest in the contract's order
  // (larger CE first, lower prior index on ties), a strict total order, so the set is unique.
  const int64_t quota = core::mining_quota(in.positives, static_cast<int64_t>(s.negatives.size()),
                                           config.neg_pos_ratio, config.min_negatives_per_image);
  select_hardest(s.negatives, quota, s.histogram);
  for (int64_t k = 0; k < quota; ++k) {
    out.mined[s.negatives[k].prior] = 1;
    result.conf_sum += s.negatives[k].ce;
  }
  result.mined = static_cast<int32_t>(quota);

  // Pass 2: mined rows get their gradient over the zeros pass 1 streamed; positive rows keep theirs from pass 1.
  if (backward && in.batch_positives > 0) {
    flush_streaming_stores();  // orders the streamed zeros before the ordinary stores that overwrite some of them
    for (int64_t k = 0; k < quota; ++k) {
      const int p = s.negatives[k].prior;
      const float* x = logits(p);
      float* grad = out.grad_conf + static_cast<size_t>(p) * C;
      softmax_row(x, C, s.row_max[p], s.row_log_sum[p], inv_n, grad);
      grad[0] = std::expm1((x[0] - s.row_max[p]) - s.row_log_sum[p]) * inv_n;
    }
  }
  return result;
}

}  // namespace

LossScratch::LossScratch(int num_priors)
    : row_max(num_priors), row_log_sum(num_priors), histogram(size_t{1} << kHistogramBits) {
  negatives.reserve(num_priors);
}

ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch) {
  return in.check_values ? image_loss_impl<true>(config, in, out, scratch)
                         : image_loss_impl<false>(config, in, out, scratch);
}

}  // namespace multibox::simd
