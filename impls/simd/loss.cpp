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
// Most negatives need no exact CE (issue 5): with C >= 48 and a quota under half the negatives, one scan of the
// per-lane maxima bounds each negative's CE from both sides (row_bounds: one exp vector per row instead of one per
// 16 logits), and only negatives whose upper bound reaches the quota-th largest lower bound get the exact CE, so
// the selection is exactly the one over all CEs, ties included. On ssd300-coco (C=81) 5.5% of the negatives stay
// candidates. Pairs old/new binaries, medians of 3-5 repetitions, 2 threads, alternated on the noisy shared VM:
// forward C=81 6.58->5.47, 6.50->5.59, 5.91->4.96, 6.09->5.32, 6.26->5.41 ms; forward+backward C=81 9.92->9.02,
// 9.58->9.17, 8.29->7.89, 9.27->8.93, 9.33->8.97 ms; C=21 (pruning off: the bounds cost as much as the exp there)
// unchanged (3.25->3.34, 3.34->3.40 ms). Still ~2x the memory floor at C=81: the per-row horizontal reductions
// and the logits' loads, not the exp, now bound the scan.
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

// Row maximum, with bounds on the row's rest = sum(exp(x - max)) - 1 (what row_rest computes) from the per-lane
// maxima, without an exp per element: each lane's largest element other than the row maximum is a distinct term of
// the sum (lower bound), and no element of a lane exceeds that lane's maximum (upper bound: the lane's element
// count times that term). The NaN/Inf probe is always on (summed into `probe`, reduced once per group): the bounds
// are only valid for finite rows. `lane_count` holds each lane's number of elements.
template <bool kBounds, bool kProbe>
HWY_INLINE float row_bounds(const float* x, size_t C, VF lane_count, float& rest_lo, float& rest_up, VF& probe) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d), lowest = hn::Set(d, -HUGE_VALF);
  VF m1 = lowest, m2 = lowest, nan_probe = zero;
  size_t i = 0;
  for (; i + N <= C; i += N) {
    const VF v = hn::LoadU(d, x + i);
    if constexpr (kBounds) m2 = hn::Max(m2, hn::Min(m1, v));
    m1 = hn::Max(m1, v);
    if constexpr (kProbe) nan_probe = hn::Add(nan_probe, hn::Mul(v, zero));
  }
  if (i < C) {
    const auto valid = hn::FirstN(d, C - i);
    const VF loaded = hn::MaskedLoad(valid, d, x + i);
    const VF v = hn::IfThenElse(valid, loaded, lowest);
    if constexpr (kBounds) m2 = hn::Max(m2, hn::Min(m1, v));
    m1 = hn::Max(m1, v);
    if constexpr (kProbe) nan_probe = hn::Add(nan_probe, hn::Mul(loaded, zero));
  }
  if constexpr (kProbe) probe = hn::Add(probe, nan_probe);
  const float m = hn::GetLane(hn::MaxOfLanes(d, m1));
  if constexpr (!kBounds) return m;
  const auto top = hn::Eq(m1, hn::Set(d, m));
  if (hn::CountTrue(d, top) > 1) {  // a tied maximum: rest >= 1 exactly, and no term exceeds 1
    rest_lo = 1.0f;
    rest_up = static_cast<float>(C - 1);
    return m;
  }
  // The top lane is represented by its second element, which stands for one element fewer.
  const VF e = exp_nonpositive(hn::Sub(hn::IfThenElse(top, m2, m1), hn::Set(d, m)));
  rest_lo = hn::GetLane(hn::SumOfLanes(d, e));
  rest_up = rest_lo * hn::GetLane(lane_count);  // lane 0 holds the most elements
  return m;
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

// The histogram bucket of a CE >= 0 (or +0.0f-clamped bound): its top bits, which order like the value.
inline uint32_t ce_bucket(float ce) {
  uint32_t bits;
  std::memcpy(&bits, &ce, sizeof bits);
  return bits >> (32 - kHistogramBits);
}

// Puts the `quota` hardest negatives first (in no particular order) and returns how many entries the selection
// looked at. CEs are >= 0 (max - x[y] >= 0 and log1p(rest) >= 0), so their bit patterns order like their values:
// a histogram of the top bits finds a bucket boundary with at least `quota` CEs at or above it, those few are
// compacted to the front, and nth_element runs on them alone. Exact: every one of the quota hardest lies at or
// above that boundary, ties included.
void select_hardest(std::vector<NegativeCe>& negatives, int64_t quota, std::vector<uint32_t>& histogram) {
  const size_t n = negatives.size();
  if (quota <= 0 || quota >= static_cast<int64_t>(n)) return;
  auto bucket = ce_bucket;
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

template <bool kCheck, bool kPrune>
ImageLoss image_loss_impl(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                          LossScratch& s, int64_t quota) {
  const int P = in.num_priors;
  const size_t C = static_cast<size_t>(in.num_classes);
  const bool backward = out.grad_conf != nullptr;
  const double n = static_cast<double>(in.batch_positives);
  const float inv_n = in.batch_positives > 0 ? static_cast<float>(1.0 / n) : 0.0f;
  const double beta = config.smooth_l1_beta, alpha = config.alpha;
  auto logits = [&](int p) { return in.conf + static_cast<size_t>(p) * C; };
  const DF df;
  const size_t lanes = hn::Lanes(df);

  ImageLoss result;
  if constexpr (kCheck) {
    result.non_finite_prediction = any_non_finite(in.loc, static_cast<size_t>(P) * 4);
    if (result.non_finite_prediction) return result;
  }
  std::memset(out.mined, 0, static_cast<size_t>(P));
  if (backward) stream_zero(out.grad_loc, static_cast<size_t>(P) * 4);
  s.negatives.clear();

  // With kPrune, pass 1 computes exact CEs for positives (and for negatives whose upper bound reaches the last
  // image's threshold, while they are in cache) and only bounds for the other negatives. A negative whose upper
  // bound is below the quota-th largest lower bound has at least `quota` negatives strictly harder than it and
  // cannot be mined; the rest get their exact CE after pass 1, and the selection among them is the one over all.
  constexpr bool prune = kPrune;
  if constexpr (prune) std::fill(s.histogram.begin(), s.histogram.end(), 0u);
  bool non_finite = false;
  HWY_ALIGN float counts[hn::MaxLanes(DF())];
  for (size_t l = 0; l < lanes; ++l) counts[l] = static_cast<float>(C / lanes + (l < C % lanes ? 1 : 0));
  const VF lane_count = hn::Load(df, counts);

  // Pass 1: every row but the ignored ones (which are still scanned for NaN when asked).
  HWY_ALIGN float log_sum[kRowGroup];
  HWY_ALIGN float gap[kRowGroup];     // lower bound of a negative row's rest, then of its CE
  HWY_ALIGN float up_rest[kRowGroup]; // upper bound of its rest
  HWY_ALIGN float margin[kRowGroup];  // max - x[0] of negative rows
  bool exact_now[kRowGroup] = {};     // negative rows whose CE pass 1 computes while they are in cache
  // With the backward stage, the zero gradient rows are streamed out group by group between the rows' compute, so
  // the writes overlap the exp work instead of taking a pass of their own. Only whole vectors are streamed at a
  // group's end, so the next group never writes into a partially streamed vector.
  size_t zero_from = 0;  // gradient elements before this are written
  auto zero_until = [&](size_t end) {
    if (end > zero_from) {
      stream_zero(out.grad_conf + zero_from, end - zero_from);
      zero_from = end;
    }
  };
  for (int p0 = 0; p0 < P; p0 += kRowGroup) {
    const int p1 = std::min(P, p0 + kRowGroup);
    VF probe = hn::Zero(df);
    for (int p = p0; p < p0 + kRowGroup; ++p) {
      gap[p - p0] = 0.0f;
      up_rest[p - p0] = 0.0f;
      margin[p - p0] = 0.0f;
      exact_now[p - p0] = false;
      if (p >= p1 || (!kCheck && in.matches[p] == kIgnored)) continue;
      float rest_lo, rest_up;
      s.row_max[p] = row_bounds<prune, prune || kCheck>(logits(p), C, lane_count, rest_lo, rest_up, probe);
      if (prune && in.matches[p] == kNegative) {
        gap[p - p0] = rest_lo;
        up_rest[p - p0] = rest_up;
        margin[p - p0] = s.row_max[p] - logits(p)[0];
      }
    }
    non_finite |= !(hn::GetLane(hn::SumOfLanes(df, probe)) == 0.0f);
    if constexpr (prune) {
      // Margins cover the exp polynomial (3e-7 relative, and not monotonic to the ulp), Log1p's few ulps and the
      // float sum of up to C terms; the absolute 1e-30 covers terms that underflow to denormals. lower and upper
      // then bound the float CE the exact path computes, since float addition of max - x[0] is monotonic.
      const VF zero = hn::Zero(df);
      for (int k = 0; k < kRowGroup; k += static_cast<int>(lanes)) {
        const VF a = hn::Load(df, margin + k);
        const VF lo = hn::Add(a, hn::Mul(hn::Log1p(df, hn::Mul(hn::Load(df, gap + k), hn::Set(df, 1.0f - 1e-4f))),
                                         hn::Set(df, 1.0f - 1e-4f)));
        const VF up = hn::Add(a, hn::Mul(hn::Log1p(df, hn::MulAdd(hn::Load(df, up_rest + k), hn::Set(df, 1.0f + 1e-4f),
                                                                  hn::Set(df, 1e-30f))),
                                         hn::Set(df, 1.0f + 1e-4f)));
        hn::Store(hn::IfThenElseZero(hn::Gt(lo, zero), lo), df, gap + k);  // no -0.0f: its bits would sort last
        hn::Store(up, df, margin + k);
      }
      for (int p = p0; p < p1; ++p) {
        if (in.matches[p] != kNegative) continue;
        s.row_upper[p] = margin[p - p0];
        exact_now[p - p0] = margin[p - p0] >= s.threshold_estimate;
        ++s.histogram[ce_bucket(gap[p - p0])];
      }
    }
    for (int p = p0; p < p0 + kRowGroup; ++p) {
      const bool exact = p < p1 && in.matches[p] != kIgnored && (!prune || in.matches[p] != kNegative || exact_now[p - p0]);
      log_sum[p - p0] = exact ? row_rest(logits(p), C, s.row_max[p]) : 0.0f;
    }
    for (int k = 0; k < kRowGroup; k += static_cast<int>(lanes))
      hn::Store(hn::Log1p(df, hn::Load(df, log_sum + k)), df, log_sum + k);
    for (int p = p0; p < p1; ++p) {
      const int32_t m = in.matches[p];
      if (m == kIgnored || (prune && m == kNegative && !exact_now[p - p0])) continue;
      s.row_log_sum[p] = log_sum[p - p0];
      const float* x = logits(p);
      const int32_t y = m >= 0 ? in.labels[m] : 0;
      // CE = logsumexp - x[y] = (max - x[y]) + log_sum: no large terms cancel, even with logits of 1e4.
      const float ce = (s.row_max[p] - x[y]) + s.row_log_sum[p];
      if (m < 0) {
        // A NaN would break nth_element's ordering (unchecked input with check_prediction_values off): rank it
        // as +Inf instead, so selection stays well defined and the loss comes out infinite.
        s.negatives.push_back({ce == ce ? ce : HUGE_VALF, p});
        if (prune) s.row_upper[p] = -HUGE_VALF;  // has its exact CE already
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

  if constexpr (kCheck) {
    result.non_finite_prediction = non_finite;
    if (non_finite) return result;
  }

  if constexpr (prune) {
    // Threshold: the lower edge of the bucket where the count of lower bounds at or above reaches the quota, so
    // at least `quota` negatives have CE >= threshold. Unchecked non-finite logits void the bounds: keep all.
    float threshold = -HUGE_VALF;
    if (non_finite) s.negatives.clear();  // recomputed below, all of them
    if (!non_finite && quota > 0) {
      uint32_t boundary = static_cast<uint32_t>(s.histogram.size());
      for (int64_t seen = 0; seen < quota;) seen += s.histogram[--boundary];
      const uint32_t bits = boundary << (32 - kHistogramBits);
      std::memcpy(&threshold, &bits, sizeof threshold);
    } else if (!non_finite) {
      threshold = HUGE_VALF;
    }
    int group[kRowGroup];
    int count = 0;
    auto flush = [&] {
      for (int k = 0; k < kRowGroup; ++k) log_sum[k] = k < count ? row_rest(logits(group[k]), C, s.row_max[group[k]]) : 0.0f;
      for (int k = 0; k < kRowGroup; k += static_cast<int>(lanes))
        hn::Store(hn::Log1p(df, hn::Load(df, log_sum + k)), df, log_sum + k);
      for (int k = 0; k < count; ++k) {
        const int p = group[k];
        s.row_log_sum[p] = log_sum[k];
        const float ce = (s.row_max[p] - logits(p)[0]) + log_sum[k];
        s.negatives.push_back({ce == ce ? ce : HUGE_VALF, p});
      }
      count = 0;
    };
    for (int p = 0; p < P; ++p) {
      if (in.matches[p] != kNegative || !(non_finite || s.row_upper[p] >= threshold)) continue;
      group[count++] = p;
      if (count == kRowGroup) flush();
    }
    if (count > 0) flush();
    s.threshold_estimate = threshold;
  }

  // Hard negative mining by selection: afterwards the first K entries are the K hardest in the contract's order
  // (larger CE first, lower prior index on ties), a strict total order, so the set is unique.
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
    : row_max(num_priors), row_log_sum(num_priors), row_upper(num_priors), histogram(size_t{1} << kHistogramBits), threshold_estimate(HUGE_VALF) {
  negatives.reserve(num_priors);
}

ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch) {
  // The quota depends only on the counts, so it is known before any exp. Pruning pays for its bounds (a per-row
  // exp vector and two reductions) only on wide rows and when few negatives are mined; otherwise the plain path.
  int64_t num_negatives = 0;
  for (int p = 0; p < in.num_priors; ++p) num_negatives += in.matches[p] == kNegative;
  const int64_t quota = core::mining_quota(in.positives, num_negatives, config.neg_pos_ratio,
                                           config.min_negatives_per_image);
  const bool prune = in.num_classes >= 48 && quota < num_negatives / 2;
  if (in.check_values)
    return prune ? image_loss_impl<true, true>(config, in, out, scratch, quota)
                 : image_loss_impl<true, false>(config, in, out, scratch, quota);
  return prune ? image_loss_impl<false, true>(config, in, out, scratch, quota)
               : image_loss_impl<false, false>(config, in, out, scratch, quota);
}

}  // namespace multibox::simd
