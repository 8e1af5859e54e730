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
// Then the pass over every row stopped computing exact CEs (perf showed that pass stalled on loads and on per-row
// reduction chains, not on the exp): it bounds each negative's CE from 16 lane maxima (one vector exp per row),
// reduces 16 rows at a time with one shuffle tree, and the exact CE (an exp per logit) runs only on positives and
// on negatives whose upper bound reaches the K-th largest lower bound, 2-9% of the rows on SSD300/COCO-like
// logits. Two things mattered besides: reading a group's rows in memory order (a transposed order defeated the
// hardware prefetcher and cost more than the bounds saved), and software prefetch 8 KiB ahead. Measured on the
// shared 2-core VM, alternating old and new binaries, best of 15 runs at 2 threads: forward C=81 6.76 -> 3.81 ms,
// forward+backward 8.77 -> 6.10 ms; C=21 4.14 -> 2.48 and 4.84 -> 2.99 ms.
#include "simd/loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <utility>

#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include "core/math.hpp"
#include "multibox/batch.hpp"
#include "simd/row_math.hpp"
#include "simd/streaming.hpp"

#ifdef MULTIBOX_SIMD_EXPECT_TARGET
static_assert(HWY_TARGET == MULTIBOX_SIMD_EXPECT_TARGET, "the preset's flags do not give the Highway target it tests");
#endif

namespace multibox::simd {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr int kRowGroup = kLossRowGroup;
// Bits of a CE's histogram bucket (see ce_bucket).
constexpr int kHistogramBits = 12;
// How far ahead pass 1 asks for logits. On the AVX-512 Zen 5 (2 vCPUs), rows asked for one at a time (below):
// forward + backward, SSD300/C=81, batch 32, one thread, 4 alternated rounds of 40 runs, median of the rounds' best:
// 8 KiB 9.77, 4 KiB 9.31, 2 KiB 9.57 ms. The AVX2 path keeps the distance it was tuned with.
constexpr size_t kPrefetchBytes = HWY_TARGET <= HWY_AVX3 ? 4096 : 8192;
// Asks for the lines of [from + kPrefetchBytes, + bytes), stopping at `end` (the image's last logit).
HWY_INLINE void prefetch_ahead(const float* from, size_t bytes, const char* end) {
  const char* a = reinterpret_cast<const char*>(from) + kPrefetchBytes;
  for (const char* e = std::min(end, a + bytes); a < e; a += 64) hwy::Prefetch(a);
}

// Whether pass 1 asks for each row's lines as it reaches the row, rather than a whole group's at once (in
// start_group). On an AVX2 EPYC (Zen 3, 2 vCPUs) the group's 81 prefetches at C=81 stalled the core on their own
// (perf: 22% of pass 1's samples on them, and no prefetch at all was faster); one row's 5 lines at a time, spread over
// the math, took forward C=81 on one thread from 12.5 to 10.2 ms and forward + backward at 2 threads from 9.8 to 8.4
// ms (4, 8 and 16 KiB ahead, prefetcht0 or prefetcht1 all within noise of each other). The AVX-512 path, tuned with
// the burst on a Xeon, gained the same for long rows on a Zen 5: each image's loss took twice as long cold (batch 32)
// as hot in cache (batch 1, repeated), 0.25 against 0.13 ms forward at C=81 with values checked (the plans' default),
// so the reads were not overlapping the math; row by row, forward + backward at C=81, batch 32 (rounds as above),
// checked: one thread 10.86 -> 9.31 ms, 2 threads 5.65 -> 5.02 ms; unchecked, as the benchmarks run it: 9.63 -> 9.47
// and 5.08 -> 5.08 ms. Prefetching to L2 (prefetcht1) or with NTA was slower (9.90, 9.72 ms). Rows of up to 4
// AVX-512 vectors (C <= 64) keep the burst: row by row, the benchmarks at C=21 (batch 8 and 1, unchecked, 2 threads,
// 2 x 5 alternated rounds of 3 repetitions) took 2-11% longer, 20-ish prefetches a group becoming 32.
template <int kVectors>
HWY_INLINE bool prefetch_rows_singly(size_t C) {
  if constexpr (!(HWY_TARGET <= HWY_AVX3)) return true;
  if constexpr (kVectors > 0) return kVectors > 4;
  return C > 4 * hn::MaxLanes(DF());
}

// One row's lines, kPrefetchBytes ahead of `row`. kVectors > 0 (rows of that many vectors): a fixed count of lines
// from the row's first byte, unclamped (a prefetch past the image is harmless); rows follow each other, so together
// they cover every line. The clamped loop of prefetch_ahead cost ~10 instructions a row of ~70 (AVX2).
template <int kVectors>
HWY_INLINE void prefetch_row_ahead(const float* row, size_t C, const char* end) {
  if constexpr (kVectors > 0) {
    const char* a = reinterpret_cast<const char*>(row) + kPrefetchBytes;
    constexpr size_t kRowBytes = kVectors * hn::MaxLanes(DF()) * sizeof(float);
    [&]<size_t... L>(std::index_sequence<L...>) { (hwy::Prefetch(a + 64 * L), ...); }(
        std::make_index_sequence<(kRowBytes + 63) / 64>{});
  } else {
    prefetch_ahead(row, C * sizeof(float), end);
  }
}

// The 16 lane maxima of a row, kRowGroup / N vectors of N lanes: column c goes to lane c % 16 (vector i of the
// row into accumulator i % (16 / N)), so the bounds below are as tight on narrow vectors as on 16-lane ones. Lanes
// past a short row hold -inf. With kCheck, each vector also goes through mark_non_finite.
constexpr size_t kLaneVectors = kRowGroup / hn::MaxLanes(DF());

// The NaN scan's step: v - v is +0 for a finite value and NaN for NaN or +-Inf, so or-ed into `probe` it leaves a
// NaN lane once any value was not finite. One cheap op per vector and no chain longer than the loads' own.
HWY_INLINE void mark_non_finite(VF& probe, VF v) { probe = hn::Or(probe, hn::Sub(v, v)); }

#if HWY_TARGET <= HWY_AVX3
// A row of C > 16 logits as the AVX-512 bounds take it: x[0] alone in lane 0, column c >= 1 in lane 1 + (c - 1) % 15
// (vector j >= 1 loaded from column 15 j, its lane 0 left out). With column c in lane c % 16, x[0] shared its lane,
// and a negative whose x[0] is its maximum (most rows: confident background) carried the other columns of that lane
// in rest's upper bound as if each were as large as x[0]: a whole 1 at C=21, 2 with the fold to 8 lanes, 5 at C=81.
// Alone, x[0] adds nothing there, so the bounds are tighter at the same exps, and folds that lost before now gain
// (x0_fold_stride). After the transpose lane 0 is the group's x[0], one store instead of a load and a store a row.
// Rows of C <= 91 take as many vectors as before (C=32 and 92..96 one more). Negatives left to the exact pass, SSD300
// batch 8 (records in reports/measured/2026-12-03-x0-lane/): C=21 2404 -> 1418 at 16 lanes, 2712 at 5; C=81 3222 ->
// 2851 at 16; priors-tutorial 1121 -> 400. Forward + backward against c % 16, alternated binaries, 2 threads, median
// of the rounds' best (4 x 300 runs): C=21 0.265 -> 0.241 ms, 30 objects 0.417 -> 0.391, 100 objects 0.845 -> 0.809,
// batch 1 0.0460 -> 0.0440; C=81 at batch 32 and 8 within 1 %. Outputs byte for byte the same.
struct X0Layout {
  int loads;         // 1 + ceil((C - 16) / 15)
  __mmask16 last;    // the lanes of the last vector that hold columns
  __mmask16 at_k1;   // of vector kVectors - 1 (rows of kVectors vectors): `last` if it is the last, else lanes 1..15
};
inline X0Layout x0_layout(size_t C) {
  const int vectors = static_cast<int>((C + 15) / 16);
  X0Layout l{1, 0xFFFF, 0xFFFE};
  if (C <= 16) return l;
  l.loads = 1 + static_cast<int>((C - 16 + 14) / 15);
  const size_t in_last = C - 1 - 15 * static_cast<size_t>(l.loads - 1);  // columns of the last vector, 1..15
  l.last = static_cast<__mmask16>(((1u << in_last) - 1) << 1);
  l.at_k1 = l.loads == vectors ? l.last : 0xFFFE;
  return l;
}
#endif

// A row's last vector, for rows of kVectors vectors (row_lane_maxima): lanes past the row are not loaded, and hold
// -inf once `fill` is or-ed in (0 in the lanes of the row). Made once per pass: computed per row, with a branch on
// how much of the row was left, the tail was the hottest part of pass 1 at C=21 (perf on the AVX2 EPYC). On AVX-512
// it also carries the row's X0Layout, made once per pass as well.
struct RowTail {
  hn::Mask<DF> valid;
  VF fill;
#if HWY_TARGET <= HWY_AVX3
  X0Layout x0;
#endif
};
RowTail row_tail(size_t C) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const auto valid = hn::FirstN(d, C % N == 0 ? N : C % N);
#if HWY_TARGET <= HWY_AVX3
  return {valid, hn::IfThenZeroElse(valid, hn::Set(d, -HUGE_VALF)), x0_layout(C)};
#else
  return {valid, hn::IfThenZeroElse(valid, hn::Set(d, -HUGE_VALF))};
#endif
}

// Calls whole(i) for each whole vector of a row of C floats at offset i, then last(i, valid) for what is left,
// if anything. kVectors > 0: the row is exactly that many vectors (the last one possibly partial, as `tail` says), a
// count the compiler unrolls; kVectors = 0 takes any length and ignores `tail` (pass 1 walks a group's loc values so).
template <int kVectors, class Whole, class Last>
HWY_INLINE void for_row_vectors(size_t C, const RowTail& tail, Whole whole, Last last) {
  const size_t N = hn::Lanes(DF());
  if constexpr (kVectors > 0) {
    [&]<size_t... J>(std::index_sequence<J...>) { (whole(J * N), ...); }(std::make_index_sequence<kVectors - 1>{});
    last((kVectors - 1) * N, tail.valid);
  } else {
    size_t i = 0;
    for (; i + N <= C; i += N) whole(i);
    if (i < C) last(i, hn::FirstN(DF(), C - i));
  }
}

// kVectors > 0: rows of exactly that many vectors (with_row_vectors picks it for short rows, VOC's 21 classes among
// them), loaded by a fold the compiler lays out in full, with the tail above. Against the loop below, on SSD300 C=21,
// batch 8, forward, one thread (best of 1200 runs, alternated binaries, AVX2 EPYC): 0.943 -> 0.837 ms.
template <bool kCheck, int kVectors = 0>
HWY_INLINE void row_lane_maxima(const float* x, size_t C, VF& probe, VF (&mx)[kLaneVectors],
                                const RowTail& tail_shape) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if constexpr (kVectors > 0) {
    static_assert(kVectors >= static_cast<int>(kLaneVectors), "a whole first round");
    [&]<size_t... J>(std::index_sequence<J...>) {
      ([&] {
        VF v;
        if constexpr (J + 1 < kVectors) {
          v = hn::LoadU(d, x + J * N);
          if constexpr (kCheck) mark_non_finite(probe, v);
        } else {
          v = hn::MaskedLoad(tail_shape.valid, d, x + J * N);
          if constexpr (kCheck) mark_non_finite(probe, v);
          v = hn::Or(v, tail_shape.fill);
        }
        if constexpr (J < kLaneVectors)
          mx[J] = v;
        else
          mx[J % kLaneVectors] = hn::Max(mx[J % kLaneVectors], v);
      }(), ...);
    }(std::make_index_sequence<kVectors>{});
    return;
  }
  const VF lowest = hn::Set(d, -HUGE_VALF);
  size_t i = 0;
  if (kLaneVectors * N <= C) {
    for (size_t j = 0; j < kLaneVectors; ++j) {
      mx[j] = hn::LoadU(d, x + j * N);
      if constexpr (kCheck) mark_non_finite(probe, mx[j]);
    }
    i = kLaneVectors * N;
  } else {
    for (VF& v : mx) v = lowest;
  }
  // A whole round of accumulators per step, so each is a fixed register: indexing mx by a running (a + 1) % 2 kept
  // them on the stack on AVX2, a store-forwarding chain through every load (perf: the largest hot spot of pass 1).
  for (; i + kLaneVectors * N <= C; i += kLaneVectors * N) {
    for (size_t j = 0; j < kLaneVectors; ++j) {
      const VF v = hn::LoadU(d, x + i + j * N);
      mx[j] = hn::Max(mx[j], v);
      if constexpr (kCheck) mark_non_finite(probe, v);
    }
  }
  // Less than a round left: each accumulator in turn takes the next vector, whole or masked. The fold names each
  // accumulator by a constant, so they stay in registers (a tail indexed by a running count, or a loop the compiler
  // did not unroll, put them back on the stack: 4% of pass 1 at C=21, a store-forwarding wait per row).
  auto tail = [&](VF& acc) {
    if (i >= C) return;
    if (i + N <= C) {
      const VF v = hn::LoadU(d, x + i);
      acc = hn::Max(acc, v);
      if constexpr (kCheck) mark_non_finite(probe, v);
    } else {  // the row's last vector (C - i = C % N), as tail_shape describes it
      const VF v = hn::MaskedLoad(tail_shape.valid, d, x + i);  // zero in the lanes past the row
      acc = hn::Max(acc, hn::Or(v, tail_shape.fill));
      if constexpr (kCheck) mark_non_finite(probe, v);
    }
    i += N;
  };
  [&]<size_t... J>(std::index_sequence<J...>) { (tail(mx[J]), ...); }(std::make_index_sequence<kLaneVectors>{});
}

// Whether an image's bounds may come from its rows' 16 lane maxima folded to 8 (lane l + 8 into lane l, so column c
// counts in lane c % 8), 8 exps a row instead of 16: rows of C = 17..32 (VOC's 21 classes among them), 2 vectors on
// AVX-512, 3 or 4 on AVX2 (whose two accumulators fold into one), where those 16 exps are most of what an exact CE
// would take. Folded bounds are looser (lane l of C=21 holds 3 logits, not 2 or 1), so they leave more negatives to the
// exact pass; that costs less than the exps saved where the quota is a small share of the rows, and more where it is
// large, its cut low and many rows near it (fold_lanes_for decides per image). Forward + backward, SSD300 batch 8,
// values unchecked as the benchmarks run it, alternated binaries on the AVX-512 Zen 5, median of the rounds' best, 2
// threads, every image folded against none: C=21 0.359 -> 0.334 ms (5 x 300 runs; one thread 0.619 -> 0.544), C=17
// 0.342 -> 0.315; by objects per image at C=21 (quota over rows): 10 (2.3%) 0.436 -> 0.404, 13 (3.0%) 0.530 -> 0.512,
// 20 (4.6%) 0.569 -> 0.554, 30 (6.6%) 0.684 -> 0.751, 100 (19%) 1.45 -> 1.75 ms; 100k dense priors (3.9%) 9.29 -> 11.19
// ms. The avx2 preset on the same machine, images folded where fold_lanes_for allows (as it builds on the AVX2 EPYC
// these paths were tuned on): C=21 0.419 -> 0.393 ms (4 x 300 runs), one thread 0.751 -> 0.657, C=28 0.464 -> 0.427; 30
// objects, not folded, 0.738 -> 0.720. Rows of 3 AVX-512 vectors gained on these scenes too (C=33 0.410 -> 0.407, C=40
// 0.454 -> 0.423, C=48 0.478 -> 0.465 ms; C=40 with 20 objects, 4.6%, 0.754 -> 0.838), but with 5 or 6 logits a lane
// the bounds of rows whose maximum dominates stay high: on the rows of MiningBoundsKeepNearTiesAtTheCut (simd_test) at
// C=40 nothing was pruned. Wider rows lost even on the default scenes (C=64 0.676 -> 0.802 ms, C=81 0.82 -> 1.40 ms);
// folded to 12 or 10 lanes C=21 took 0.334 and 0.333 ms against 8 lanes' 0.326, to 4 lanes 0.565 ms. Keeping folded
// bounds per group only where they rule out every row (against a running estimate of the cut) and adding the other 8
// exps elsewhere was slower than never folding (C=21 0.370 -> 0.409 ms): the branch went both ways. The bounds only
// decide which rows are computed exactly, so outputs are byte-identical either way.
// The AVX-512 path has since given x[0] a lane of its own (row_lanes_x0_alone) and folds by x0_fold_stride instead:
// what made wide folds lose was x[0]'s lane, whose other columns counted as if each were as large as the maximum.
template <int kVectors>
constexpr bool kFoldLanes = HWY_TARGET == HWY_AVX2 ? kVectors == 3 || kVectors == 4 : false;

// Whether an image may take folded bounds: its quota at most about 3% of its rows (1 in 32).
bool fold_lanes_for(int64_t quota, int num_priors) { return quota * 32 <= num_priors; }

#if HWY_TARGET <= HWY_AVX3
// How far an image's lanes 1..15 fold (bound_rows), from its mining quota (-1: not known yet, an image split across
// threads, whose pass 1 runs beside its matching). Fewer lanes are fewer exps a row but looser bounds, so more
// negatives reach the exact pass; with x[0] alone in lane 0 the bounds stay useful at up to ~8 columns a lane where
// the quota is at most 1/32 of the rows, ~2.5 where it is more (a lower cut, more rows near it). Forward + backward,
// batch 8, one thread, alternated, best runs (ms), strides 4 / 8 / 15: C=21 0.420 / 0.436 / 0.509; C=32 0.556 /
// 0.585 / 0.650; C=40 0.670 / 0.687 / 0.730; 30 objects (C=21, quota 6.6 %) 0.844 / 0.838 / 0.884; 100 objects
// (19 %) 2.53 / 1.85 / 1.84; C=201 4.35 / 3.76 / 3.21; C=81 at batch 32 6.99 / 5.83 / 5.71.
int x0_fold_stride(size_t C, int64_t quota, int num_priors) {
  if (C <= 16) return 15;  // one column a lane: the bounds are exact
  const double per_lane = quota >= 0 && fold_lanes_for(quota, num_priors) ? 8.0 : 2.5;
  for (int stride : {4, 8})
    if (static_cast<double>(C - 1) <= per_lane * stride) return stride;
  return 15;
}

// The number of columns in each lane, with lanes 1..15 folded to `stride` (4, 8, or 15: none): column c >= 1 is
// in lane 1 + ((c - 1) % 15) % stride.
inline void x0_lane_counts(size_t C, int stride, float* count) {
  count[0] = 1.0f;
  for (size_t k = 0; k < 15 && k + 1 < C; ++k)
    count[1 + (stride == 15 ? k : k & static_cast<size_t>(stride - 1))] += static_cast<float>((C - 2 - k) / 15 + 1);
}

template <bool kCheck, int kVectors>
HWY_INLINE __m512 row_lanes_x0_alone(const float* x, VF& probe, const RowTail& tail) {
  const X0Layout& layout = tail.x0;
  __m512 acc = _mm512_loadu_ps(x);
  if constexpr (kCheck) mark_non_finite(probe, VF{acc});
  // Zero-masked loads (finite for the NaN scan; a masked load does not fault past the row) and a masked max, so lane
  // 0 and the lanes past the row keep what they hold.
  auto take = [&](int j, __mmask16 m) {
    const __m512 w = _mm512_maskz_loadu_ps(m, x + 15 * j);
    if constexpr (kCheck) mark_non_finite(probe, VF{w});
    acc = _mm512_mask_max_ps(acc, m, acc, w);
  };
  if constexpr (kVectors > 0) {
    [&]<int... J>(std::integer_sequence<int, J...>) {
      (take(J + 1, J + 2 < kVectors ? __mmask16{0xFFFE} : layout.at_k1), ...);
    }(std::make_integer_sequence<int, kVectors - 1>{});
    if (layout.loads > kVectors) take(kVectors, layout.last);
  } else {
    for (int j = 1; j + 1 < layout.loads; ++j) take(j, 0xFFFE);
    take(layout.loads - 1, layout.last);
  }
  return acc;
}
#endif

// What pass 1 knows of a group of rows: each row's maximum, x[0] and bounds on rest = sum(exp(x - max)) - 1.
struct GroupBounds {
  HWY_ALIGN float max[kRowGroup], rest_lo[kRowGroup], rest_hi[kRowGroup], first[kRowGroup];
};

// For the `rows` (<= kRowGroup) rows starting at x: each row's exact maximum, and bounds on rest from its 16 lane
// maxima alone (AVX-512: x[0] and `fold` more, x0_fold_stride; AVX2: 8 with `fold`, kFoldLanes), 16 exps per row or
// fewer instead of one per logit. Every lane maximum is a
// distinct element of the row and lane l holds lane_count[l] elements, so
//   sum_l e^(lanemax_l - max) - 1  <=  rest  <=  sum_l lane_count_l e^(lanemax_l - max) - 1.
// Entries past `rows` are left unspecified.
// `after_row(r)` runs after row r's loads (AVX-512 path only).
template <bool kCheck, int kVectors, class AfterRow>
HWY_INLINE void bound_rows(const float* x, int rows, size_t C, const float* lane_count, GroupBounds& g, VF& probe,
                           [[maybe_unused]] const char* prefetch_end, const RowTail& tail, [[maybe_unused]] int fold,
                           [[maybe_unused]] AfterRow after_row) {
  float* const row_max = g.max;
  [[maybe_unused]] float* const rest_lo = g.rest_lo;
  [[maybe_unused]] float* const rest_hi = g.rest_hi;
  float* const row_first = g.first;
#if HWY_TARGET <= HWY_AVX3
  static_assert(kRowGroup == 16 && kLaneVectors == 1, "one row per lane of a 512-bit vector");
  __m512 v[16];
  const bool singly = prefetch_rows_singly<kVectors>(C);
  // The row's masks from a local copy, and its address by a step: through `tail` (a reference, which the stores of
  // v[] may alias) each row reloaded its masks from memory, and each row's std::min(r, rows - 1) * C took a compare,
  // a cmov, a sign extension and a multiply. This loop of 2 loads and a max a row held 44% of the function's samples,
  // about half of them on that bookkeeping (perf, batch 1, C=21, one thread, AVX-512 Zen 5). Forward + backward,
  // SSD300, C=21, alternated binaries, median runs: batch 1, one thread 0.0655-0.0663 -> 0.0626-0.0646 ms; batch 8,
  // 2 threads 0.258-0.261 -> 0.247-0.252 ms. Unrolling the 16 rows instead left bound_rows out of line, its transpose
  // spilling, and was slower (batch 1: 0.066 -> 0.074 ms).
  const RowTail local_tail = tail;
  const float* at = x;
  const float* const last = x + (rows - 1) * C;  // rows past `rows` repeat the last one
  for (int r = 0; r < 16; ++r) {  // rows in memory order: another order defeats the hardware prefetcher
    if (singly) prefetch_row_ahead<kVectors>(x + r * C, C, prefetch_end);
    if (kVectors == 0 && C <= 16) {
      VF mx[1];
      row_lane_maxima<kCheck, kVectors>(at, C, probe, mx, local_tail);
      v[r] = mx[0].raw;
    } else {
      v[r] = row_lanes_x0_alone<kCheck, kVectors>(at, probe, local_tail);
    }
    after_row(r);
    at = at == last ? at : at + C;
  }
  // Transposed, v[l] holds lane maximum l of every row (row r in lane r), so the row maxima, the exps and both sums
  // are vertical ops on 16 rows at once. Kept as rows, they took a 16-row shuffle tree each (the maxima, the lower
  // and the upper sum), a broadcast of the maximum and a multiply per row: 167 vector ops a group besides the exps,
  // 111 here (64 of them the transpose), and no chain from the maxima's tree through a broadcast to the sums'.
  // One thread, forward, SSD300 batch 8, alternated binaries on a 2-vCPU AMD EPYC Zen 5: C=21 0.441 -> 0.406 ms
  // (best of 3000 runs), C=81 0.81 -> 0.69 ms (best of 1200); outputs byte-identical.
  transpose_rows(v);
  _mm512_store_ps(row_first, v[0]);  // lane 0 holds x[0] alone
  // A tree, not a chain: 4 dependent maxima instead of 15 between the transpose and the exps, and two sums of each
  // kind below (perf put 15 % of bound_rows on the chain of maxima at C=21). Forward + backward, SSD300, batch 8,
  // C=21, alternated, median of the rounds' best: one thread 0.418 -> 0.397 ms, 2 threads 0.263 -> 0.243 (forward
  // alone, one thread, 0.335 -> 0.314); C=81 at batch 32 the same. The row maximum is exact in any order.
  __m512 m[8];
  for (int l = 0; l < 8; ++l) m[l] = _mm512_max_ps(v[l], v[l + 8]);
  for (int l = 0; l < 4; ++l) m[l] = _mm512_max_ps(m[l], m[l + 4]);
  for (int l = 0; l < 2; ++l) m[l] = _mm512_max_ps(m[l], m[l + 2]);
  const __m512 max = _mm512_max_ps(m[0], m[1]);
  _mm512_store_ps(row_max, max);
  const __m512 one = _mm512_set1_ps(1.0f);
  // kLong: C > 16, every lane holds 1 or more elements. Otherwise each holds 0 or 1, so both sums are the
  // count-weighted one, and the lanes past a short row (at -inf, whose exp_bound is a tiny normal: an exact exp's
  // underflow in vscalefps was a microcode assist each) count 0.
  // Folded to kStride lanes besides lane 0 (x[0], never folded): lane l >= 1 into lane 1 + (l - 1) % kStride.
  auto sums = [&]<bool kLong, int kStride = 15>(std::bool_constant<kLong>, std::integral_constant<int, kStride> = {}) {
    // Two sums of each kind, even and odd lanes, halve the chains of adds after the exps.
    __m512 lo[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, hi[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int l = 1 + kStride; l < 16; ++l) v[1 + (l - 1) % kStride] = _mm512_max_ps(v[1 + (l - 1) % kStride], v[l]);
    for (int l = 0; l <= kStride; ++l) {
      const __m512 e = exp_bound(VF{_mm512_sub_ps(v[l], max)}).raw;
      if constexpr (kLong) lo[l % 2] = _mm512_add_ps(lo[l % 2], e);
      hi[l % 2] = _mm512_fmadd_ps(e, _mm512_set1_ps(lane_count[l]), hi[l % 2]);
    }
    const __m512 hi_sum = _mm512_add_ps(hi[0], hi[1]);
    _mm512_store_ps(rest_lo, _mm512_sub_ps(kLong ? _mm512_add_ps(lo[0], lo[1]) : hi_sum, one));
    _mm512_store_ps(rest_hi, _mm512_sub_ps(hi_sum, one));
  };
  if (C <= 16) return sums(std::false_type{});
  switch (fold) {
    case 8: return sums(std::true_type{}, std::integral_constant<int, 8>{});
    case 4: return sums(std::true_type{}, std::integral_constant<int, 4>{});
    default: return sums(std::true_type{});
  }
#elif HWY_TARGET == HWY_AVX2
  // Eight rows at a time through reduce_rows, as the AVX-512 path does sixteen: the three horizontal reductions
  // per row of the generic path below were serial chains of shuffles that left the FMA pipe idle (perf on an AVX2
  // EPYC: pass 1 was 62% of the headline, twice its same-traffic twin).
  static_assert(kRowGroup == 16 && kLaneVectors == 2, "two 8-lane vectors per row");
  // Both halves' loads and maxima before either half's exps: in sequence, each half's chain of loads, max tree,
  // store and broadcasts, then exps and sum trees, left the FMA pipes idle (SSD300 C=21, batch 8, forward, one
  // thread, best of 1000 runs, alternated binaries: 0.804 -> 0.758 ms).
  __m256 lanes[kRowGroup][2];
  for (int h = 0; h < kRowGroup; h += 8) {
    __m256 m[8];
    [&]<int... R>(std::integer_sequence<int, R...>) {
      ([&] {
        VF mx[2];
        const float* at = x + std::min(h + R, rows - 1) * C;
        prefetch_row_ahead<kVectors>(x + (h + R) * C, C, prefetch_end);
        row_lane_maxima<kCheck, kVectors>(at, C, probe, mx, tail);
        // x[0], which the bounds need, from the row's own line: a gather per vector of rows (microcoded on Zen)
        // cost more (C=21 forward as above: 0.832 -> 0.800 ms).
        row_first[h + R] = *at;
        lanes[h + R][0] = mx[0].raw;
        lanes[h + R][1] = mx[1].raw;
        m[kSlotRow[R]] = _mm256_max_ps(mx[0].raw, mx[1].raw);
      }(), ...);
    }(std::make_integer_sequence<int, 8>{});
    _mm256_store_ps(row_max + h, reduce_rows(m, [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); }));
  }
  const __m256 count0 = _mm256_load_ps(lane_count), count1 = _mm256_load_ps(lane_count + 8);
  const __m256 one = _mm256_set1_ps(1.0f);
  auto add = [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); };
  // Folded (kFoldLanes): the row's two accumulators into one, one exp of 8 lanes a row instead of two; count0 then
  // holds the folded lanes' counts.
  auto sums = [&]<bool kFold>(std::bool_constant<kFold>) {
    for (int h = 0; h < kRowGroup; h += 8) {
      __m256 lo[8], hi[8];
      for (int r = 0; r < 8; ++r) {
        // Lanes past a short row hold -inf: exp_bound clamps them to 1.3e-38, below anything a bound can feel.
        const VF top{_mm256_broadcast_ss(row_max + h + r)};
        if constexpr (kFold) {
          const __m256 e = exp_bound(hn::Sub(VF{_mm256_max_ps(lanes[h + r][0], lanes[h + r][1])}, top)).raw;
          lo[kSlotRow[r]] = e;
          hi[kSlotRow[r]] = _mm256_mul_ps(e, count0);
        } else {
          const __m256 e0 = exp_bound(hn::Sub(VF{lanes[h + r][0]}, top)).raw;
          const __m256 e1 = exp_bound(hn::Sub(VF{lanes[h + r][1]}, top)).raw;
          lo[kSlotRow[r]] = _mm256_add_ps(e0, e1);
          hi[kSlotRow[r]] = _mm256_fmadd_ps(e1, count1, _mm256_mul_ps(e0, count0));
        }
      }
      _mm256_store_ps(rest_lo + h, _mm256_sub_ps(reduce_rows(lo, add), one));
      _mm256_store_ps(rest_hi + h, _mm256_sub_ps(reduce_rows(hi, add), one));
    }
  };
  if constexpr (kFoldLanes<kVectors>) {
    if (fold != 0) return sums(std::true_type{});
  }
  sums(std::false_type{});
#else
  const DF d;
  const size_t N = hn::Lanes(d);
  for (int r = 0; r < rows; ++r) {
    VF mx[kLaneVectors];
    prefetch_ahead(x + r * C, C * sizeof(float), prefetch_end);
    row_lane_maxima<kCheck, kVectors>(x + r * C, C, probe, mx, tail);
    VF all = mx[0];
    for (size_t j = 1; j < kLaneVectors; ++j) all = hn::Max(all, mx[j]);
    const float m = hn::GetLane(hn::MaxOfLanes(d, all));
    VF lo = hn::Zero(d), hi = hn::Zero(d);
    for (size_t j = 0; j < kLaneVectors; ++j) {
      const VF e = exp_bound(hn::Sub(mx[j], hn::Set(d, m)));
      lo = hn::Add(lo, e);
      hi = hn::Add(hi, hn::Mul(e, hn::Load(d, lane_count + j * N)));
    }
    row_max[r] = m;
    row_first[r] = x[r * C];
    rest_lo[r] = hn::GetLane(hn::SumOfLanes(d, lo)) - 1.0f;
    rest_hi[r] = hn::GetLane(hn::SumOfLanes(d, hi)) - 1.0f;
  }
  for (int r = rows; r < kRowGroup; ++r) row_max[r] = row_first[r] = rest_lo[r] = rest_hi[r] = 0.0f;
#endif
}

// Rows of at most this many logits are bounded a column at a time (bound_rows_by_column).
constexpr size_t kColumnClasses = 8;

// bound_rows for short rows (C <= kColumnClasses): a vector of rows at a time, one gather (or a deinterleaving load)
// and one exp per column, where bound_rows spends a load, 16 exps and three 16-row reductions per row whatever C is.
// The bounds are then the rows' CEs themselves (every lane maximum is a single element), up to exp_bound's and
// log1p_bound's error and rounding: the cut's margin covers that as it covers the same errors in the 16-lane bounds.
// Perf on classes-2 (SSD300, B=8) after the vscalefps fix: no hot spot left, the time spread over bound_rows' per-row
// work; C=2 stayed as slow as C=21. kC is C, so the columns stay in registers: with C known only at run time they
// went through the stack behind a compare and a branch each (34 instructions a vector of rows at C=2, callgrind).
// Only rest_lo is written: for these rows the main loop takes it as both bounds.
template <bool kCheck, size_t kC>
HWY_INLINE void bound_rows_by_column(const float* x, int rows, GroupBounds& g, VF& probe) {
  static_assert(kC >= 2 && kC <= kColumnClasses);
  constexpr size_t C = kC;
  float *const row_max = g.max, *const rest = g.rest_lo, *const row_first = g.first;
  const DF d;
  const hn::RebindToSigned<DF> di;
  const size_t N = hn::Lanes(d);
  for (size_t k = 0; k < static_cast<size_t>(kRowGroup); k += N) {
    VF column[kC];
    // A whole vector of rows with 2-4 logits each is read as it lies and split into columns by shuffles: the
    // gathers were the largest part of pass 1 at C=2 on an AVX2 EPYC, whose gathers are microcoded (perf).
    const float* at = x + k * C;
    if (kC <= 4 && k + N <= static_cast<size_t>(rows)) {
      if constexpr (kC == 2) hn::LoadInterleaved2(d, at, column[0], column[1]);
      if constexpr (kC == 3) hn::LoadInterleaved3(d, at, column[0], column[1], column[2]);
      if constexpr (kC == 4) hn::LoadInterleaved4(d, at, column[0], column[1], column[2], column[3]);
    } else {
      // Lanes past the group's last row repeat it: their results are unspecified, as bound_rows leaves them.
      const auto first = hn::Mul(hn::Min(hn::Iota(di, static_cast<int32_t>(k)), hn::Set(di, rows - 1)),
                                 hn::Set(di, static_cast<int32_t>(C)));
      for (size_t c = 0; c < C; ++c)
        column[c] = hn::GatherIndex(d, x, hn::Add(first, hn::Set(di, static_cast<int32_t>(c))));
    }
    VF max = hn::Set(d, -HUGE_VALF);
    for (size_t c = 0; c < C; ++c) {
      if constexpr (kCheck) mark_non_finite(probe, column[c]);
      max = hn::Max(max, column[c]);  // the column second: a NaN in it makes max NaN (x86 max returns operand 2)
    }
    hn::Store(column[0], d, row_first + k);  // x[0] of each row, which the bounds need
    if constexpr (kC == 2) {
      // One of the two terms is the maximum's own exp(0) = 1: rest is the other term alone, one exp instead of two.
      hn::Store(exp_bound(hn::Sub(hn::Min(column[0], column[1]), max)), d, rest + k);
    } else {
      VF sum = hn::Zero(d);
      for (size_t c = 0; c < C; ++c) sum = hn::Add(sum, exp_bound(hn::Sub(column[c], max)));
      hn::Store(hn::Sub(sum, hn::Set(d, 1.0f)), d, rest + k);
    }
    hn::Store(max, d, row_max + k);
  }
}

// Calls fn(std::integral_constant<size_t, C>{}) for 2 <= C <= kColumnClasses.
template <class Fn>
HWY_INLINE void with_columns(size_t C, Fn&& fn) {
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((C == I + 2 ? (fn(std::integral_constant<size_t, I + 2>{}), 0) : 0), ...);
  }(std::make_index_sequence<kColumnClasses - 1>{});
}

// sum(exp(x - max)) - 1. The max element's term (exactly 1) is left out of the sum and added back as a count, so
// the result keeps full relative precision on confident rows, where it is tiny and log1p(rest) is the whole CE.
// Returns the row's vector of partial sums and the count of its maximal elements minus one; group_log_sums reduces them.
template <int kVectors>
HWY_INLINE VF row_rest_lanes(const float* x, size_t C, float max, int32_t& ties_minus_one, const RowTail& tail) {
  const DF d;
  const VF vmax = hn::Set(d, max), zero = hn::Zero(d);
  VF sum = zero;
  int32_t ties = 0;
  auto whole = [&](size_t i) {
    const VF t = hn::Sub(hn::LoadU(d, x + i), vmax);
    const auto top = hn::Eq(t, zero);
    sum = hn::Add(sum, hn::IfThenZeroElse(top, exp_nonpositive(t)));
    ties += static_cast<int32_t>(hn::CountTrue(d, top));
  };
  auto last = [&](size_t i, hn::Mask<DF> valid) {
    const VF t = hn::Sub(hn::MaskedLoad(valid, d, x + i), vmax);
    const auto top = hn::And(valid, hn::Eq(t, zero));
    sum = hn::Add(sum, hn::IfThenElseZero(hn::AndNot(top, valid), exp_nonpositive(t)));
    ties += static_cast<int32_t>(hn::CountTrue(d, top));
  };
  for_row_vectors<kVectors>(C, tail, whole, last);
  ties_minus_one = ties - 1;
  return sum;
}

// One value per row of a group, row k in lane k % N of vector k / N, put together in registers: written to a stack
// array a row at a time and loaded back as vectors, each load waited for its 16 stores to reach the cache, since a
// load takes a forwarded value from one store only (perf, classes-2, pass 2: 22 % of exact_impl's samples on the two
// instructions after such loads, the tie counts' and the top terms').
struct GroupLanes {
  VF v[kLaneVectors];
  GroupLanes() {
    for (VF& x : v) x = hn::Zero(DF());
  }
  HWY_INLINE void set(int k, float value) {
    const DF d;
    const hn::RebindToSigned<DF> di;
    constexpr int N = static_cast<int>(hn::MaxLanes(DF()));
    VF& x = v[k / N];
    x = hn::IfThenElse(hn::RebindMask(d, hn::Eq(hn::Iota(di, 0), hn::Set(di, k % N))), hn::Set(d, value), x);
  }
  HWY_INLINE void store(float* out) const {
    for (size_t i = 0; i < kLaneVectors; ++i) hn::Store(v[i], DF(), out + i * hn::MaxLanes(DF()));
  }
};

// log1p(rest) of up to kRowGroup rows (rows[0..n), each row's logits at conf + row * C) into log_sum[0..kRowGroup);
// lanes past n get 0. On AVX-512 the 16 rows' sums are reduced together by one shuffle tree (on AVX2 by two), which
// adds every row's lanes in the same order whatever its slot, so a row's result does not depend on the rows beside
// it (a horizontal sum per row was a fifth of the exact pass on objects-100, perf).
template <int kVectors>
HWY_INLINE void group_log_sums(const float* conf, size_t C, const int32_t* rows, int n, const float* row_max,
                               float* log_sum, const RowTail& tail) {
  const DF d;
#if HWY_TARGET <= HWY_AVX3 || HWY_TARGET == HWY_AVX2
  static_assert(kTreeRows == hn::MaxLanes(DF()), "a tree's rows are one vector of ties");
  GroupLanes ties;  // each row's count of maximal elements minus one, exact in a float
  for (int h = 0; h < kRowGroup; h += kTreeRows) {
    RowVec v[kTreeRows];
    for (int r = 0; r < kTreeRows; ++r) {
      if (h + r < n) {
        const size_t p = static_cast<size_t>(rows[h + r]);
        int32_t t;
        v[kSlotRow[r]] = row_rest_lanes<kVectors>(conf + p * C, C, row_max[p], t, tail).raw;
        ties.set(h + r, static_cast<float>(t));
      } else {
        v[kSlotRow[r]] = hn::Zero(d).raw;
      }
    }
    const VF sums{reduce_rows(v, [](RowVec a, RowVec b) { return hn::Add(VF{a}, VF{b}).raw; })};
    hn::Store(hn::Log1p(d, hn::Add(sums, ties.v[h / kTreeRows])), d, log_sum + h);
  }
#else
  const size_t N = hn::Lanes(d);
  int32_t ties[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) {
    float rest = 0.0f;
    if (r < n) {
      const size_t p = static_cast<size_t>(rows[r]);
      const VF lanes = row_rest_lanes<kVectors>(conf + p * C, C, row_max[p], ties[r], tail);
      rest = hn::GetLane(hn::SumOfLanes(d, lanes)) + static_cast<float>(ties[r]);
    }
    log_sum[r] = rest;
  }
  for (size_t k = 0; k < static_cast<size_t>(kRowGroup); k += N) hn::Store(hn::Log1p(d, hn::Load(d, log_sum + k)), d, log_sum + k);
#endif
}

// softmax(x)[y] - 1 = expm1(log softmax(x)[y]), exact where the row is confident and the difference is tiny, times
// `scale`, for a group's rows at once: t holds each row's (x[y] - max) - log_sum, and gets the results.
HWY_INLINE void group_expm1(GroupLanes& t, float scale) {
  const DF d;
  for (VF& x : t.v) x = hn::Mul(hn::Expm1(d, x), hn::Set(d, scale));
}

// out[c] = softmax(x)[c] * scale = exp((x[c] - max) - log_sum) * scale.
template <int kVectors>
HWY_INLINE void softmax_row(const float* x, size_t C, float max, float log_sum, float scale, float* out,
                            const RowTail& tail) {
  const DF d;
  const VF vmax = hn::Set(d, max), vls = hn::Set(d, log_sum), vscale = hn::Set(d, scale);
  auto whole = [&](size_t i) {
    hn::StoreU(hn::Mul(exp_nonpositive(hn::Sub(hn::Sub(hn::LoadU(d, x + i), vmax), vls)), vscale), d, out + i);
  };
  auto last = [&](size_t i, hn::Mask<DF> valid) {
    const VF t = hn::Sub(hn::Sub(hn::MaskedLoad(valid, d, x + i), vmax), vls);
    hn::BlendedStore(hn::Mul(exp_nonpositive(t), vscale), valid, d, out + i);
  };
  for_row_vectors<kVectors>(C, tail, whole, last);
}

// Hard negatives are pre-selected by a histogram of their CEs' top bits: CEs are >= 0 (max - x[y] >= 0 and
// log1p(rest) >= 0), so their bit patterns order like their values. Sign, exponent and 3 mantissa bits make 4096
// buckets, each a factor of at most 1.125 wide.
HWY_INLINE uint32_t ce_bucket(float ce) {
  uint32_t bits;
  std::memcpy(&bits, &ce, sizeof bits);
  return bits >> (32 - kHistogramBits);
}

// The histogram counts one row of each vector of rows, not all of them: the 16 increments a vector, each fed by a lane
// extraction, were pass 1's hottest instructions at C=2 (perf on classes-2, one thread: 44% of the samples in
// bounds_impl, most on vpextrd). The sampled lane turns with the vector, so that with A boxes a location (A = 4 or 6
// on SSD) the sample holds every box shape, not one. The sample only picks which negatives compete (select_impl); a
// sample that misjudges them costs a second scan, never a different result.
HWY_INLINE size_t sampled_lane(size_t first_row) {
  // A constant on fixed-width targets: hn::Lanes was a division at run time there.
  const size_t lanes = HWY_HAVE_SCALABLE ? hn::Lanes(DF()) : hn::MaxLanes(DF());
  return (first_row / lanes) % lanes;
}

// The highest bucket boundary with at least `quota` counted CEs at or above it, or bucket 0 if fewer are counted.
// Empty buckets are skipped a vector at a time: the upper half (sign bit set) is always empty for CEs >= 0, and
// walking it one bucket at a time was a third of loss_select on classes-2 (perf).
uint32_t bucket_boundary(const std::vector<uint32_t>& histogram, int64_t quota) {
  const hn::ScalableTag<uint32_t> du;
  const uint32_t N = static_cast<uint32_t>(hn::Lanes(du));
  uint32_t boundary = static_cast<uint32_t>(histogram.size());
  for (int64_t seen = 0; seen < quota && boundary > 0;) {
    if (boundary >= N && hn::AllTrue(du, hn::Eq(hn::LoadU(du, histogram.data() + boundary - N), hn::Zero(du)))) {
      boundary -= N;
      continue;
    }
    seen += histogram[--boundary];
  }
  return boundary;
}

// Puts the `quota` hardest of the `count` entries first (in no particular order), given the boundary bucket_boundary
// found for `quota`: those at or above it are compacted to the front, and only the boundary bucket's own entries
// compete for the places left, since fewer than `quota` lie above it and each of those is harder than any entry in
// it. Exact: every one of the quota hardest lies at or above the boundary, ties included. (nth_element over every
// kept entry was 7% of objects-100, where the quota is a fifth of the negatives and most kept entries are mined.)
void select_above(NegativeCe* negatives, size_t count, int64_t quota, uint32_t boundary) {
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {  // branch-free stable compaction
    const NegativeCe e = negatives[i];
    negatives[kept] = e;
    kept += ce_bucket(e.ce) >= boundary;
  }
  if (quota >= static_cast<int64_t>(kept)) return;
  NegativeCe* const in_boundary =
      std::partition(negatives, negatives + kept, [&](const NegativeCe& e) { return ce_bucket(e.ce) > boundary; });
  auto harder = [](const NegativeCe& a, const NegativeCe& b) { return core::harder_negative(a.ce, a.prior, b.ce, b.prior); };
  std::nth_element(in_boundary, negatives + (quota - 1), negatives + kept, harder);
}

void select_hardest(NegativeCe* negatives, size_t count, int64_t quota, std::vector<uint32_t>& histogram) {
  if (quota <= 0 || quota >= static_cast<int64_t>(count)) return;
  std::fill(histogram.begin(), histogram.end(), 0u);
  for (size_t i = 0; i < count; ++i) ++histogram[ce_bucket(negatives[i].ce)];
  select_above(negatives, count, quota, bucket_boundary(histogram, quota));
}

// Calls fn(lane) for every lane set in `mask`, lowest first: the scans below find a few rows among many, so they
// test a vector of rows at a time and visit only the hits.
template <class D, class Fn>
HWY_INLINE void for_each_set_lane(D d, hn::Mask<D> mask, Fn fn) {
  uint8_t bytes[8] = {};
  static_assert(hn::MaxLanes(D()) <= 64, "a lane bit per bit of a uint64_t");
  hn::StoreMaskBits(d, mask, bytes);
  uint64_t bits;
  std::memcpy(&bits, bytes, sizeof bits);
  for (; bits != 0; bits &= bits - 1) fn(static_cast<int>(__builtin_ctzll(bits)));
}

// Calls body(p, whole, valid) for each vector of rows [begin, end), p its first row: whole vectors with `whole` a
// std::true_type (load them with load_rows, which then needs no mask), then any part-vector with std::false_type and
// `valid` its lanes. The scans over every row below find a few rows among thousands: with a mask made and applied
// to every vector they ran 22-26 instructions a vector of 8 rows (callgrind, C=2).
template <class D, class Body>
HWY_INLINE void for_row_vectors_in(D d, int begin, int end, Body body) {
  const int N = static_cast<int>(hn::Lanes(d));
  int p = begin;
  for (; p + N <= end; p += N) body(p, std::true_type{}, hn::FirstN(d, static_cast<size_t>(N)));
  if (p < end) body(p, std::false_type{}, hn::FirstN(d, static_cast<size_t>(end - p)));
}

template <class D, class T, bool kWhole>
HWY_INLINE hn::Vec<D> load_rows(D d, std::bool_constant<kWhole>, hn::Mask<D> valid, const T* from) {
  if constexpr (kWhole)
    return hn::LoadU(d, from);
  else
    return hn::MaskedLoad(valid, d, from);
}

// Asks for a row's cache lines ahead of its use, for the scattered rows of pass 2 and of the mined gradients. With
// kForWrite, for a row about to be written over: its lines were streamed out to memory, so a store first reads them.
template <bool kForWrite = false>
HWY_INLINE void prefetch_row(const float* x, size_t C) {
  const char* a = reinterpret_cast<const char*>(x);
  const char* end = a + C * sizeof(float);
  for (a = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(a) & ~uintptr_t{63}); a < end; a += 64)
    __builtin_prefetch(a, kForWrite ? 1 : 0);
}

struct ChunkRange {
  int first, end;
};
ChunkRange chunk_range(int num_priors, int chunk) {
  const int first = chunk * kLossChunkRows;
  return {first, std::min(num_priors, first + kLossChunkRows)};
}

// Pass 1 over one chunk's rows: the row maximum and bounds on each negative's CE, and (backward) zeros streamed over
// the chunk's gradient rows, group by group, so the writes overlap the reads. Mining needs only the K hardest
// negatives' CEs; a negative whose upper bound is below the K-th largest lower bound cannot be among them, so its
// exact CE (an exp per logit) is never computed. On SSD300/COCO-like logits that skips ~95% of the rows.
// `quota`: the image's mining quota with every row a negative, which decides how far the lanes fold, or -1 where the
// matches are not known yet (an image split across threads, its pass 1 running beside its matching).
template <bool kCheck, int kVectors>
void bounds_impl(const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& s, int chunk, int64_t quota) {
  const int P = in.num_priors;
  const ChunkRange range = chunk_range(P, chunk);
  const int c0 = range.first, c1 = range.end;  // not a structured binding: clang 14's lambdas cannot capture those
  const size_t C = static_cast<size_t>(in.num_classes);
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const bool backward = out.grad_conf != nullptr;
  auto logits = [&](int p) { return in.conf + static_cast<size_t>(p) * C; };
  LossChunk& r = s.chunks[chunk];
  r = LossChunk{};
  std::memset(out.mined + c0, 0, static_cast<size_t>(c1 - c0));

  // Folded bounds where the image allows them (fold_lanes_for); without the matches pass 1 does not know the quota.
  HWY_ALIGN float lane_count[kRowGroup] = {};  // elements of a row in each of the lanes bound_rows keeps
  // Counted without a division a column: per column, and per chunk, the divisions of a run-time modulus were 16 % of
  // pass 1's own samples (outside bound_rows) at C=81 (perf, 2 threads, batch 32).
#if HWY_TARGET <= HWY_AVX3
  const int fold = x0_fold_stride(C, quota, P);
  x0_lane_counts(C, fold, lane_count);
#else
  const int fold = kFoldLanes<kVectors> && quota >= 0 && fold_lanes_for(quota, P) ? 8 : 0;
  for (size_t c = 0; c < C; ++c) lane_count[c & (fold ? 7 : kRowGroup - 1)] += 1.0f;
#endif
  GroupBounds groups[2];  // the group whose bounds are being used, and the one ahead of it
  const bool by_column = C <= kColumnClasses;
  const RowTail tail = row_tail(C);
  VF probe = hn::Zero(d);
  VF bound_probe = hn::Zero(d);  // NaN in a lane once a bound was not finite
  ZeroStream zeros(backward ? out.grad_conf + static_cast<size_t>(c0) * C : nullptr);
  // The loc gradient's zeros too, group by group: streamed all at once at the chunk's start, they were 7% of pass 1
  // at C=2 (perf), where the loc gradient is twice the conf gradient's bytes, with no math to overlap them.
  ZeroStream loc_zeros(backward ? out.grad_loc + static_cast<size_t>(c0) * 4 : nullptr);
  // In locals: Highway's vector stores may alias anything, so through `s` and `in` the compiler reloaded each of
  // these pointers for every vector of rows (C=2: 1.8 of pass 1's 44 instructions a row, callgrind).
  float* const row_max = s.row_max.data();
  float* const lower_out = s.lower.data();
  float* const upper_out = s.upper.data();
  // The prefetch runs past the chunk into the image's next rows, which the next chunk (on this thread or another)
  // reads soon.
  const char* conf_end = reinterpret_cast<const char*>(in.conf + static_cast<size_t>(P) * C);
  // The loc predictions, which pass 1 only checks, a group at a time beside its logits: checked in one loop at the
  // chunk's start, their loads (twice the logits' bytes at C=2) waited on memory with no math to overlap them
  // (perf on classes-2: 14% of pass 1's samples on that loop).
  [[maybe_unused]] auto check_loc = [&](int p0, int rows, VF& group_probe) {
    const float* l = in.loc + static_cast<size_t>(p0) * 4;
    constexpr size_t kGroupVectors = size_t{kRowGroup} * 4 / hn::MaxLanes(DF());
    if (rows == kRowGroup && kGroupVectors * lanes == size_t{kRowGroup} * 4) {
      // A whole group: a count known here, laid out in full (the loop below took 6 instructions a vector, callgrind).
      [&]<size_t... J>(std::index_sequence<J...>) {
        (mark_non_finite(group_probe, hn::LoadU(d, l + J * lanes)), ...);
      }(std::make_index_sequence<kGroupVectors>{});
      return;
    }
    for_row_vectors<0>(
        static_cast<size_t>(rows) * 4, tail,
        [&](size_t i) {
          const VF v = hn::LoadU(d, l + i);
          mark_non_finite(group_probe, v);
        },
        [&](size_t i, hn::Mask<DF> valid) {
          const VF v = hn::MaskedLoad(valid, d, l + i);
          mark_non_finite(group_probe, v);
        });
  };
  // Long rows, which bound_rows asks for one at a time (prefetch_rows_singly), stream the group ahead's zero gradient
  // rows 4 rows at a time between their own loads, not all at once after them: at C=81 a group's 81 streamed vectors
  // in one burst held up the loads and math behind them while memory was the limit. On the AVX-512 Zen 5, forward +
  // backward, alternated, median of the rounds' best: C=81, batch 32, 2 threads 3.36 -> 3.02 ms (one thread 5.24 ->
  // 5.13), batch 8 0.504 -> 0.492; C=201 batch 8, 2 threads, 1.83 -> 1.54. Shorter rows lost (2 threads, batch 8: C=48
  // +4 %, C=21 +10 %, as the row-by-row cuts of ZeroStream's note did at one thread), so they keep the burst.
  const bool spread_zeros = backward && HWY_TARGET <= HWY_AVX3 && prefetch_rows_singly<kVectors>(C);
  auto start_group = [&](int p0, GroupBounds& g) {
    const int rows = std::min(kRowGroup, c1 - p0);
    // Software prefetch a fixed distance ahead: the hardware prefetcher stops running ahead while a group's math
    // issues no loads, so without it the reads and the math hardly overlap (pass 1 of SSD300/C=81 on one thread,
    // Xeon: 91 -> 75 us an image at 8 KiB ahead). Long rows are asked for one at a time, in bound_rows
    // (prefetch_rows_singly); the rest, and the short rows taken column-wise, a group at once here.
    if (by_column || !prefetch_rows_singly<kVectors>(C))
      prefetch_ahead(logits(p0), kRowGroup * C * sizeof(float), conf_end);
    // The probe as a local of the group: through the captured reference it stayed in memory, since Highway's
    // vectors may alias any float and the group stores floats, a load and a store of it in every row, one chain
    // through the pass (SSD300, batch 8, values checked as the plans check them by default, forward, one thread,
    // best of 400-600 runs, alternated binaries: C=21 0.883 -> 0.764 ms; C=2 and C=201 unchanged).
    VF group_probe = probe;
    if constexpr (kCheck) check_loc(p0, rows, group_probe);
    if (by_column)
      with_columns(C, [&]<size_t kC>(std::integral_constant<size_t, kC>) {
        bound_rows_by_column<kCheck, kC>(logits(p0), rows, g, group_probe);
      });
    else
      bound_rows<kCheck, kVectors>(logits(p0), rows, C, lane_count, g, group_probe, conf_end, tail, fold, [&](int r) {
        if (spread_zeros && p0 > c0 && r % 4 == 3) zeros.until(static_cast<size_t>(p0 - kRowGroup + r + 1 - c0) * C);
      });
    probe = group_probe;
  };
  // Each group's bounds are formed one group behind its loads and maxima, so that the chain of one group's
  // log1p and stores overlaps the next group's loads (SSD300, batch 8, forward, one thread, best of
  // 800-1000 runs, alternated binaries: C=2 0.320 -> 0.268 ms, C=81 1.43 -> 1.37, C=21 0.767 -> 0.757).
  if (c0 < c1) start_group(c0, groups[0]);
  for (int p0 = c0, current = 0; p0 < c1; p0 += kRowGroup, current ^= 1) {
    const int rows = std::min(kRowGroup, c1 - p0);
    const GroupBounds& g = groups[current];
    if (p0 + kRowGroup < c1) start_group(p0 + kRowGroup, groups[current ^ 1]);
    // The group's zero gradient rows, streamed now that its math is issued (right after the loads, or spread over
    // the math, measured the same within noise).
    if (backward) {
      zeros.until(static_cast<size_t>(p0 + rows - c0) * C);
      loc_zeros.until(static_cast<size_t>(p0 + rows - c0) * 4);
    }
    // The bounds of the group's rows, a vector of rows at a time. The exact CE is (max - x[0]) + log1p(rest), so
    // the bounds are formed the same way. Every row gets them, a negative or not: whatever reads them checks the
    // matches (select_impl's sample and scan, collect_rows), so pass 1 needs no match and runs the same beside the
    // matching (a split image) as after it.
    for (int k = 0; k < rows; k += static_cast<int>(lanes)) {
      const int p = p0 + k;
      const auto valid = hn::FirstN(d, static_cast<size_t>(rows - k));
      const VF max = hn::Load(d, g.max + k);
      const VF base = hn::Sub(max, hn::Load(d, g.first + k));
      const VF lo = hn::Load(d, g.rest_lo + k);
      const VF lower = hn::IfThenElseZero(valid, hn::Add(base, log1p_bound(lo)));
      // Column-wise bounds are the CE itself (rest_lo == rest_hi): one log1p instead of two, the same bits (perf on
      // classes-2: the two log1p were the largest part of pass 1 once a row costs two gathers and two exps).
      const VF hi = by_column ? lo : hn::Load(d, g.rest_hi + k);
      const VF upper = by_column ? lower : hn::IfThenElseZero(valid, hn::Add(base, log1p_bound(hi)));
      hn::StoreU(max, d, row_max + p);
      hn::StoreU(lower, d, lower_out + p);
      hn::StoreU(upper, d, upper_out + p);
      bound_probe = hn::Or(bound_probe, hn::Or(hn::Sub(lower, lower), hn::Sub(upper, upper)));
    }
  }
  r.bounds_finite = hn::AllTrue(d, hn::Eq(bound_probe, hn::Zero(d)));
  if (backward) {
    zeros.finish(static_cast<size_t>(c1 - c0) * C);
    loc_zeros.finish(static_cast<size_t>(c1 - c0) * 4);
  }
  if constexpr (kCheck) r.non_finite = !hn::AllTrue(d, hn::Eq(probe, hn::Zero(d)));
}

// Between the passes, for the whole image: the mining quota and the cut below which a negative's upper bound rules
// it out. The negatives come from the matcher's count (in.negatives), or are counted here from the matches where
// the caller has none; pass 1 reads no match (every reader of the bounds checks it), so a split image, whose pass 1
// runs beside its matching, needs no masking pass over every row's bounds here (removing it: batch-1, 2 threads,
// C=21 0.0572 -> 0.0561 ms).
void select_impl(const Config& config, const ImageLossInputs& in, LossScratch& s) {
  const int P = in.num_priors;
  int64_t negatives = 0;
  bool bounds_finite = true;
  s.failed = false;
  s.sample_missed = false;
  for (const LossChunk& r : s.chunks) {
    bounds_finite = bounds_finite && r.bounds_finite;
    s.failed = s.failed || r.non_finite;
  }
  if (s.failed) return;
  if (in.negatives >= 0) {
    negatives = in.negatives;  // the matcher's count: a pass over every match less (C=2: a quarter of this function)
  } else {
    const hn::ScalableTag<int32_t> di;
    for_row_vectors_in(di, 0, P, [&](int p, auto whole, auto valid) {
      auto negative = hn::Eq(load_rows(di, whole, valid, in.matches + p), hn::Set(di, kNegative));
      if constexpr (!decltype(whole)::value) negative = hn::And(negative, valid);
      negatives += static_cast<int64_t>(hn::CountTrue(di, negative));
    });
  }
  // Which negatives need their exact CE. Unchecked non-finite logits make the bounds meaningless: every negative
  // is then computed exactly, as is every one when all are mined anyway.
  s.quota = core::mining_quota(in.positives, negatives, config.neg_pos_ratio, config.min_negatives_per_image);
  s.cut = -HUGE_VALF;
  if (s.quota == 0) {
    s.cut = HUGE_VALF;
  } else if (s.quota < negatives && bounds_finite && in.prune_negatives) {
    const DF d;
    const hn::RebindToSigned<DF> di;
    const hn::RebindToUnsigned<DF> du;
    // The K-th largest lower bound. The histogram holds one row of each vector (sampled_lane): a boundary that the
    // quota's share s of those rows clears, with 3 sqrt(s) + 8 to spare, keeps K negatives and some more (K = 90 at
    // 16 lanes: 21 sampled rows, about 340 negatives; K = 3000: 237, about 3800), among which select_hardest finds
    // the exact K-th. If fewer than K clear it, every negative competes. (Twice the share, the first margin tried,
    // collected 2K and more: objects-30 and objects-100 took 1-2 % longer.) Lower bounds are >= 0, so their buckets
    // compare as signed integers.
    const auto lanes = static_cast<int64_t>(hn::Lanes(d));
    // The sample, read back from the stored bounds: counted in pass 1 from the register, its lane extraction and
    // increment sat on the chain from each vector's log1p to its stores (forward + backward, SSD300, batch 8, C=2,
    // alternated, median run: one thread 0.263 -> 0.244 ms, two 0.160 -> 0.145; C=21 and C=81 within the noise).
    std::fill(s.histogram.begin(), s.histogram.end(), 0u);
    for (int64_t p = 0; p < P; p += lanes) {
      const int64_t j = static_cast<int64_t>(sampled_lane(static_cast<size_t>(p)));
      if (p + j < P && in.matches[p + j] == kNegative) ++s.histogram[ce_bucket(s.lower[static_cast<size_t>(p + j)])];
    }
    size_t count = 0;
    auto collect = [&](uint32_t boundary) {
      count = 0;
      const auto vboundary = hn::Set(di, static_cast<int32_t>(boundary));
      for_row_vectors_in(di, 0, P, [&](int p, auto whole, auto valid) {
        const VF lower = hn::LoadU(d, s.lower.data() + p);
        const auto bucket = hn::BitCast(di, hn::ShiftRight<32 - kHistogramBits>(hn::BitCast(du, lower)));
        auto hit = hn::Not(hn::Lt(bucket, vboundary));
        if (hn::AllFalse(di, hit)) return;  // most vectors
        hit = hn::And(hit, hn::Eq(load_rows(di, whole, valid, in.matches + p), hn::Set(di, kNegative)));
        if constexpr (!decltype(whole)::value) hit = hn::And(hit, valid);
        for_each_set_lane(di, hit, [&](int i) { s.negatives[count++] = {s.lower[p + i], p + i}; });
      });
    };
    const double share = static_cast<double>(s.quota) / static_cast<double>(lanes);
    collect(bucket_boundary(s.histogram, static_cast<int64_t>(std::ceil(share + 3.0 * std::sqrt(share))) + 8));
    s.sample_missed = static_cast<int64_t>(count) < s.quota;
    if (s.sample_missed) collect(0);
    select_hardest(s.negatives.data(), count, s.quota, s.histogram);
    float kth_lower = HUGE_VALF;
    for (int64_t k = 0; k < s.quota; ++k) kth_lower = std::min(kth_lower, s.negatives[k].ce);
    // The bounds are off by up to 1.09e-4 each (exp_bound, log1p_bound) plus float rounding (~1e-6 relative), the
    // exact CEs by their rounding alone; a row the exact CEs would mine has an upper bound within 2.2e-4 + 1e-6 |CE|
    // of the cut's own lower bound or above it, and the margin is over four times that, so a skipped row is strictly
    // easier than K others whatever the errors.
    s.cut = kth_lower - 1e-3f * std::max(1.0f, kth_lower);
  }
}

// Pass 2's rows of one chunk, at s.rows + its first row: its positives and the negatives whose upper bound reaches
// the cut.
void collect_rows(const ImageLossInputs& in, LossScratch& s, int chunk) {
  const auto [c0, c1] = chunk_range(in.num_priors, chunk);
  const DF d;
  const hn::RebindToSigned<DF> di;
  LossChunk& r = s.chunks[chunk];
  int32_t* rows = s.rows.data() + c0;
  int32_t count = 0, candidates = 0;
  const VF cut = hn::Set(d, s.cut);
  for_row_vectors_in(di, c0, c1, [&](int p, auto whole, auto valid) {
    const auto m = load_rows(di, whole, valid, in.matches + p);
    // Positives (m >= 0) and negatives whose bound reaches the cut; ignored rows (m < 0, not kNegative) never.
    auto candidate = hn::And(hn::Eq(m, hn::Set(di, kNegative)),
                             hn::RebindMask(di, hn::Not(hn::Lt(hn::LoadU(d, s.upper.data() + p), cut))));
    auto hit = hn::Or(candidate, hn::Not(hn::Lt(m, hn::Zero(di))));
    if constexpr (!decltype(whole)::value) candidate = hn::And(candidate, valid), hit = hn::And(hit, valid);
    if (hn::AllFalse(di, hit)) return;  // most vectors
    candidates += static_cast<int32_t>(hn::CountTrue(di, candidate));
    for_each_set_lane(di, hit, [&](int i) { rows[count++] = p + i; });
  });
  r.candidates = candidates;
  r.exact_rows = count;
}

// Pass 2 over one chunk's collected rows: exact CE, loc loss, positives' gradients. `next`: the collected rows of
// the chunk this thread computes next (empty if none), whose first group is asked for during this chunk's last one.
template <int kVectors>
void exact_impl(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& s,
                int chunk, std::span<const int32_t> next) {
  const int c0 = chunk_range(in.num_priors, chunk).first;
  const size_t C = static_cast<size_t>(in.num_classes);
  const RowTail tail = row_tail(C);
  const bool gradients = out.grad_conf != nullptr && in.batch_positives > 0;
  const double n = static_cast<double>(in.batch_positives);
  const float inv_n = in.batch_positives > 0 ? static_cast<float>(1.0 / n) : 0.0f;
  const double beta = config.smooth_l1_beta, alpha = config.alpha;
  auto logits = [&](int p) { return in.conf + static_cast<size_t>(p) * C; };
  LossChunk& r = s.chunks[chunk];
  const int32_t* rows = s.rows.data() + c0;
  const int32_t count = r.exact_rows;
  r.conf_sum = 0;
  r.loc_sum = 0;
  NegativeCe* negatives = s.negatives.data() + c0;
  int32_t exact_negatives = 0;
  HWY_ALIGN float log_sum[kRowGroup], top[kRowGroup];
  GroupLanes top_lanes;
  // The rows are scattered and were read long ago (a chunk's first ones may be out of L2): each group asks for the
  // next group's rows (and the positives' offsets, targets and gradient rows) while it computes, so their misses
  // overlap (a few rows ahead cut this pass by a fifth; the positives' loc offsets, not asked for, were 6% of it on
  // objects-100). A chunk holds only ~25 such rows on SSD300/COCO-like logits, so the last group asks for the next
  // chunk's first (the first group of every chunk waiting on its rows was a third of the pass's samples, perf).
  auto prefetch_group = [&](const int32_t* list, int n_rows) {
    for (int i = 0; i < std::min(n_rows, kRowGroup); ++i) {
      const int p = list[i];
      prefetch_row(logits(p), C);
      if (in.matches[p] < 0) continue;
      hwy::Prefetch(in.loc + static_cast<size_t>(p) * 4);
      hwy::Prefetch(in.targets + static_cast<size_t>(p) * 4);
      if (gradients) prefetch_row<true>(out.grad_conf + static_cast<size_t>(p) * C, C);
    }
  };
  prefetch_group(rows, count);
  for (int i0 = 0; i0 < count; i0 += kRowGroup) {
    const int group = std::min(count - i0, kRowGroup);
    if (i0 + kRowGroup < count)
      prefetch_group(rows + i0 + kRowGroup, count - i0 - kRowGroup);
    else
      prefetch_group(next.data(), static_cast<int>(next.size()));
    group_log_sums<kVectors>(in.conf, C, rows + i0, group, s.row_max.data(), log_sum, tail);
    top_lanes = GroupLanes();
    for (int k = 0; k < group; ++k) {
      const int p = rows[i0 + k];
      const int32_t m = in.matches[p];
      s.row_log_sum[p] = log_sum[k];
      const float* x = logits(p);
      const int32_t y = m >= 0 ? in.labels[m] : 0;
      // CE = logsumexp - x[y] = (max - x[y]) + log_sum: no large terms cancel, even with logits of 1e4.
      const float ce = (s.row_max[p] - x[y]) + log_sum[k];
      if (m < 0) {
        // A NaN would break nth_element's ordering (unchecked input with check_prediction_values off): rank it
        // as +Inf instead, so selection stays well defined and the loss comes out infinite.
        negatives[exact_negatives++] = {ce == ce ? ce : HUGE_VALF, p};
        continue;
      }
      r.conf_sum += ce;
      for (int j = 0; j < 4; ++j) {
        const size_t e = static_cast<size_t>(p) * 4 + j;
        const double diff = static_cast<double>(in.loc[e]) - in.targets[e];
        r.loc_sum += core::smooth_l1<double>(diff, beta);
        if (gradients) out.grad_loc[e] = static_cast<float>(alpha * core::smooth_l1_grad<double>(diff, beta) / n);
      }
      top_lanes.set(k, (x[y] - s.row_max[p]) - log_sum[k]);
    }
    if (!gradients) continue;
    group_expm1(top_lanes, inv_n);
    top_lanes.store(top);
    for (int k = 0; k < group; ++k) {
      const int p = rows[i0 + k];
      const int32_t m = in.matches[p];
      if (m < 0) continue;
      float* grad = out.grad_conf + static_cast<size_t>(p) * C;
      softmax_row<kVectors>(logits(p), C, s.row_max[p], log_sum[k], inv_n, grad, tail);
      grad[in.labels[m]] = top[k];
    }
  }
  r.exact_negatives = exact_negatives;
}

// Pass 2 over every chunk on the calling thread: the rows of all chunks first, so each chunk can ask for the next's.
template <int kVectors>
void exact_all(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& s) {
  const int chunks = static_cast<int>(s.chunks.size());
  for (int c = 0; c < chunks; ++c) collect_rows(in, s, c);
  for (int c = 0; c < chunks; ++c) {
    std::span<const int32_t> next;
    if (c + 1 < chunks)
      next = {s.rows.data() + chunk_range(in.num_priors, c + 1).first, static_cast<size_t>(s.chunks[c + 1].exact_rows)};
    exact_impl<kVectors>(config, in, out, s, c, next);
  }
}

template <int kVectors>
ImageLoss finish_impl(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& s) {
  ImageLoss result;
  if (s.failed) {
    result.non_finite_prediction = true;
    return result;
  }
  const int chunks = static_cast<int>(s.chunks.size());
  int64_t candidates = 0;
  for (const LossChunk& r : s.chunks) candidates += r.candidates;
  if (candidates < s.quota) {  // cannot happen with valid bounds; exact everywhere is always right
    s.cut = -HUGE_VALF;
    exact_all<kVectors>(config, in, out, s);
  }
  // The chunks' sums in chunk order, and their candidates compacted in chunk order (prior order): neither depends
  // on which thread ran which chunk.
  size_t count = 0;
  for (int c = 0; c < chunks; ++c) {
    const LossChunk& r = s.chunks[c];
    result.conf_sum += r.conf_sum;
    result.loc_sum += r.loc_sum;
    result.exact_rows += r.exact_rows;
    std::memmove(s.negatives.data() + count, s.negatives.data() + static_cast<size_t>(c) * kLossChunkRows,
                 static_cast<size_t>(r.exact_negatives) * sizeof(NegativeCe));
    count += static_cast<size_t>(r.exact_negatives);
  }

  // Hard negative mining by selection among the candidates: afterwards the first K entries are the K hardest in
  // the contract's order (larger CE first, lower prior index on ties), a strict total order, so the set is unique.
  const int64_t quota = s.quota;
  select_hardest(s.negatives.data(), count, quota, s.histogram);
  for (int64_t k = 0; k < quota; ++k) {
    out.mined[s.negatives[k].prior] = 1;
    result.conf_sum += s.negatives[k].ce;
  }
  result.mined = static_cast<int32_t>(quota);

  if (out.grad_conf != nullptr && in.batch_positives > 0) {
    const size_t C = static_cast<size_t>(in.num_classes);
    const RowTail tail = row_tail(C);
    const float inv_n = static_cast<float>(1.0 / static_cast<double>(in.batch_positives));
    auto row = [&](int64_t k) { return static_cast<size_t>(s.negatives[k].prior); };
    // The mined rows are scattered: the next group's logits and gradient rows are asked for while one computes.
    auto prefetch_group = [&](int64_t k0) {
      for (int64_t k = k0; k < std::min(quota, k0 + kRowGroup); ++k) {
        prefetch_row(in.conf + row(k) * C, C);
        prefetch_row<true>(out.grad_conf + row(k) * C, C);
      }
    };
    HWY_ALIGN float top[kRowGroup];
    prefetch_group(0);
    for (int64_t k0 = 0; k0 < quota; k0 += kRowGroup) {
      const int group = static_cast<int>(std::min<int64_t>(kRowGroup, quota - k0));
      prefetch_group(k0 + kRowGroup);
      GroupLanes top_lanes;
      for (int k = 0; k < group; ++k) {
        const size_t p = row(k0 + k);
        top_lanes.set(k, (in.conf[p * C] - s.row_max[p]) - s.row_log_sum[p]);
      }
      group_expm1(top_lanes, inv_n);
      top_lanes.store(top);
      for (int k = 0; k < group; ++k) {
        const size_t p = row(k0 + k);
        float* grad = out.grad_conf + p * C;
        softmax_row<kVectors>(in.conf + p * C, C, s.row_max[p], s.row_log_sum[p], inv_n, grad, tail);
        grad[0] = top[k];
      }
    }
  }
  return result;
}

// Runs fn(std::integral_constant<int, kVectors>{}) with the row length the kernels are compiled for: rows of 2-4
// vectors (C = 9..32 on AVX2) get their own instantiation, where the per-row overhead of a generic loop (the tail's
// mask, a branch on what is left of the row) is a large share of a row's few loads; other lengths take the loop
// (kVectors = 0), as do rows of up to kColumnClasses logits, which pass 1 bounds a column at a time anyway.
// On AVX-512, rows of 6 vectors too: C = 81..96, COCO's 81 classes (the headline) and torchvision's 91. There the
// loop's overhead, and the clamped prefetch loop of a row of unknown length, were a large share of pass 1 on the Zen 5
// (SSD300, C=81, batch 32, forward + backward, values unchecked as the benchmarks run it, alternated binaries,
// median of the rounds' best: one thread 9.42 -> 8.62 ms, 6 x 40 runs; 2 threads 5.63 -> 5.30 ms, 10 x 80 runs).
template <class Fn>
decltype(auto) with_row_vectors(int num_classes, Fn&& fn) {
  const size_t N = hn::Lanes(DF());
  const size_t C = static_cast<size_t>(num_classes);
  const size_t vectors = (C + N - 1) / N;
  auto fixed = [&]<int kVectors>(std::integral_constant<int, kVectors>) {
    if constexpr (kVectors >= static_cast<int>(kLaneVectors)) return C > kColumnClasses && vectors == kVectors;
    return false;  // narrower targets: only the loop
  };
  if constexpr (kLaneVectors <= 2) {
    if (fixed(std::integral_constant<int, 2>{})) return fn(std::integral_constant<int, 2>{});
  }
  if constexpr (kLaneVectors <= 3) {
    if (fixed(std::integral_constant<int, 3>{})) return fn(std::integral_constant<int, 3>{});
  }
  if constexpr (kLaneVectors <= 4) {
    if (fixed(std::integral_constant<int, 4>{})) return fn(std::integral_constant<int, 4>{});
  }
  if constexpr (kLaneVectors == 1) {
    if (fixed(std::integral_constant<int, 6>{})) return fn(std::integral_constant<int, 6>{});
  }
  return fn(std::integral_constant<int, 0>{});
}

template <int kVectors>
void bounds_for(const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& s, int chunk, int64_t quota) {
  if (in.check_values)
    bounds_impl<true, kVectors>(in, out, s, chunk, quota);
  else
    bounds_impl<false, kVectors>(in, out, s, chunk, quota);
}

}  // namespace

LossScratch::Lengths LossScratch::lengths(int num_priors) {
  const size_t P = static_cast<size_t>(num_priors);
  return {P, P + kRowGroup, size_t{1} << kHistogramBits, static_cast<size_t>(loss_chunks(num_priors))};
}

uint64_t LossScratch::bytes(int num_priors) {
  const Lengths n = lengths(num_priors);
  return n.padded_rows * 3 * sizeof(float) + n.rows * (sizeof(float) + sizeof(NegativeCe) + sizeof(int32_t)) +
         n.buckets * sizeof(uint32_t) + n.chunks * sizeof(LossChunk);
}

LossScratch::LossScratch(int num_priors) : LossScratch(lengths(num_priors)) {}

LossScratch::LossScratch(const Lengths& n)
    : row_max(n.padded_rows),
      row_log_sum(n.rows),
      lower(n.padded_rows),
      upper(n.padded_rows),
      negatives(n.rows),
      rows(n.rows),
      histogram(n.buckets),
      chunks(n.chunks) {}

bool histogram_samples_row(int prior) {
  const size_t p = static_cast<size_t>(prior), lanes = hn::Lanes(DF());
  return sampled_lane(p - p % lanes) == p % lanes;
}

void loss_bounds(const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& scratch, int chunk) {
  with_row_vectors(in.num_classes, [&]<int V>(std::integral_constant<int, V>) {
    bounds_for<V>(in, out, scratch, chunk, -1);
  });
}

void loss_select(const Config& config, const ImageLossInputs& in, LossScratch& scratch) {
  select_impl(config, in, scratch);
}

void loss_exact(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& scratch,
                int chunk) {
  if (scratch.failed) return;
  collect_rows(in, scratch, chunk);
  with_row_vectors(in.num_classes, [&]<int V>(std::integral_constant<int, V>) {
    exact_impl<V>(config, in, out, scratch, chunk, {});
  });
}

ImageLoss loss_finish(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                      LossScratch& scratch) {
  return with_row_vectors(in.num_classes, [&]<int V>(std::integral_constant<int, V>) {
    return finish_impl<V>(config, in, out, scratch);
  });
}

void image_loss_bounds(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                       LossScratch& scratch) {
  const int chunks = loss_chunks(in.num_priors);
  // The quota with every row a negative (select_impl counts the negatives after pass 1): at least the image's own.
  const int64_t quota =
      core::mining_quota(in.positives, in.num_priors, config.neg_pos_ratio, config.min_negatives_per_image);
  with_row_vectors(in.num_classes, [&]<int V>(std::integral_constant<int, V>) {
    for (int c = 0; c < chunks; ++c) bounds_for<V>(in, out, scratch, c, quota);
  });
  if (out.grad_conf != nullptr) flush_streaming_stores();  // the streamed zeros before the stores over some rows
  select_impl(config, in, scratch);
}

ImageLoss image_loss_rest(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                          LossScratch& scratch) {
  return with_row_vectors(in.num_classes, [&]<int V>(std::integral_constant<int, V>) {
    if (!scratch.failed) exact_all<V>(config, in, out, scratch);
    return finish_impl<V>(config, in, out, scratch);
  });
}

ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch) {
  image_loss_bounds(config, in, out, scratch);
  return image_loss_rest(config, in, out, scratch);
}

}  // namespace multibox::simd
