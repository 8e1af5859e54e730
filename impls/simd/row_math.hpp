// The row math of the simd backend's loss kernels (its exps and the shuffle tree that reduces a vector of rows at
// once), shared with the benchmark's softmax ceiling (bench/twin.cpp), which must do a row's softmax the same way to
// say what the vector width allows.
#pragma once

#include <cstddef>

#include <hwy/highway.h>

namespace multibox::simd {

using FloatVec = hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::ScalableTag<float>>;

// The two exps below share their range reduction and their scaling. reduce_exp: t clamped below at `lowest`, then
// t = n ln2 + r with |r| <= ln2/2 (n a whole float). n comes from adding 1.5 * 2^23 to t log2(e) in one FMA, which
// rounds the sum to a whole number and leaves n in the low bits of `shifted`: no vroundps and no vcvttps2dq, which
// were the AVX2 EPYC's bottleneck in the mining bounds (two of each per row; a same-count FMA/add replacement took
// SSD300 C=21 forward, batch 8, one thread, best of 1200 runs from 1.033 to 0.942 ms). exp_polynomial: p(r) by
// Horner from the highest coefficient down to the constant 1 (so p(0) = 1 exactly). times_pow2: p * 2^n, without
// the flush of results below 2^-126.
struct ExpReduction {
  FloatVec n, r;
  FloatVec shifted;  // 1.5 * 2^23 + n: n + 0x400000 in its low mantissa bits
};
HWY_INLINE ExpReduction reduce_exp(FloatVec t, float lowest) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  const FloatVec magic = hn::Set(d, 12582912.0f);
  t = hn::Max(t, hn::Set(d, lowest));
  const FloatVec shifted = hn::MulAdd(t, hn::Set(d, 1.44269504088896341f), magic);
  const FloatVec n = hn::Sub(shifted, magic);
  return {n, hn::MulAdd(n, hn::Set(d, -0.693147180559945309f), t), shifted};
}

template <size_t K>
HWY_INLINE FloatVec exp_polynomial(FloatVec r, const float (&highest_first)[K]) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  FloatVec p = hn::Set(d, highest_first[0]);
  for (size_t i = 1; i < K; ++i) p = hn::MulAdd(p, r, hn::Set(d, highest_first[i]));
  return hn::MulAdd(p, r, hn::Set(d, 1.0f));
}

HWY_INLINE FloatVec times_pow2(FloatVec p, const ExpReduction& e) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
#if HWY_TARGET <= HWY_AVX3
  // vscalefps: p * 2^n in one instruction, with gradual underflow (Highway 1.0 has no op for it).
  (void)d;
  return FloatVec{_mm512_scalef_ps(p.raw, e.n.raw)};
#else
  // 2^n through the exponent bits: `shifted`'s bits shifted left by 23 are n << 23 (its exponent and the 0x400000
  // shift out). Normal for n >= -126 (the caller flushes smaller results if it can meet them).
  const hn::RebindToSigned<decltype(d)> di;
  return hn::BitCast(d, hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::BitCast(di, e.shifted))));
#endif
}

// exp(t) for the t <= 0 of a max-shifted row, in 10 vector operations on AVX-512 against ~24 for hwy::Exp (which
// also handles t > 0): t = n ln2 + r with |r| <= ln2/2, a degree-5 polynomial with p(0) = 1 fitted for minimax
// relative error on that interval (1.5e-7 with float rounding, against 7e-8 for the degree-7 Taylor polynomial it
// replaced; the comparator allows 1e-5), then r scaled by 2^n. The single-constant reduction costs |n| * 2e-9
// relative (< 3e-7 down to the clamp at -200, below which the result underflows to 0 anyway). exp(0) is exactly 1.
HWY_INLINE FloatVec exp_nonpositive(FloatVec t) {
  // The clamp keeps t * log2(e) and the reduction finite when x - max overflows.
  const ExpReduction e = reduce_exp(t, -200.0f);
  static constexpr float kHighestFirst[] = {0.008290315046906471f, 0.04189793020486832f, 0.1666763573884964f,
                                            0.4999915063381195f, 0.9999997019767761f};
  const FloatVec scaled = times_pow2(exp_polynomial(e.r, kHighestFirst), e);
#if HWY_TARGET <= HWY_AVX3
  return scaled;  // vscalefps underflows gradually
#else
  // Below 2^-126 the exponent bits would wrap: those results are flushed to 0.
  namespace hn = hwy::HWY_NAMESPACE;
  return hn::IfThenZeroElse(hn::Lt(e.n, hn::Set(hn::ScalableTag<float>(), -125.0f)), scaled);
#endif
}

// exp(t) for t <= 0 to 1.06e-4 relative, for the loss's mining bounds alone. They only rank rows against a cut
// that leaves a margin of 1e-3 (select_impl in loss.cpp): an error of e in every exp moves a bound by at most e
// (log1p(rest (1 + e)) - log1p(rest) <= e), so a row the exact CEs would mine is still kept while 2e stays below
// the margin. A degree-3 polynomial (minimax relative error 1.01e-4 on |r| <= ln2/2, p(0) = 1 so the row
// maximum's own term stays exactly 1; 1.02e-4 in float with FMA, 1.054e-4 on targets without, whose reduction
// t - n ln2 rounds once more) and a clamp at -87.3, where 2^n is still a normal float, so nothing needs
// flushing (and vscalefps meets no underflow): 9 vector operations on AVX2 against exp_nonpositive's 13. Below
// the clamp the result is at most 1.3e-38, which no bound can feel. Measured against the exact exp in the bounds
// (SSD300, B=8, 2 threads, alternated binaries, median of 9 runs): C=21 1.16 -> 1.04 ms, 100k priors 20.8 ->
// 17.1 ms, the C=81 headline 10.1 -> 9.2 ms.
HWY_INLINE FloatVec exp_bound(FloatVec t) {
  const ExpReduction e = reduce_exp(t, -87.3f);
  static constexpr float kHighestFirst[] = {0.1651797592639923f, 0.504130482673645f, 1.000195860862732f};
  return times_pow2(exp_polynomial(e.r, kHighestFirst), e);
}

// log1p(x) for the x >= 0 of the mining bounds (rest = sum(exp(x - max)) - 1) to 2.5e-6 absolute, in 17 vector
// operations and no division (hwy::Log1p: about 28 and two divisions, for the last ulp the bounds do not need; see
// exp_bound for why they do not). 1 + x = 2^e m with m in [sqrt(1/2), sqrt(2)), then e ln2 + a degree-6 minimax
// polynomial in m - 1 (1.5e-6 absolute; float rounding of e ln2 adds the rest up to x = 1e6: 2.02e-6 with FMA,
// 2.49e-6 without). 1 + x rounds a tiny x away, an error of x itself, far below that. A NaN or Inf x gives NaN, as
// the loss's check of its bounds needs (the bit arithmetic alone would give a finite value). Measured against
// hwy::Log1p in the bounds (alternated binaries, 4 rounds x 3 runs, one thread): SSD300 C=21 forward 8.18 -> 7.45
// ms, forward + backward 10.2 -> 9.95.
HWY_INLINE FloatVec log1p_bound(FloatVec x) {
  namespace hn = hwy::HWY_NAMESPACE;
  using DF = hn::ScalableTag<float>;
  using VF = FloatVec;
  const DF d;
  const hn::RebindToSigned<DF> di;
  const VF y = hn::Add(x, hn::Set(d, 1.0f));
  // Offsetting the bits by 1 - sqrt(1/2) moves the exponent step to sqrt(1/2) (as hwy::Log does).
  const auto bits = hn::Add(hn::BitCast(di, y), hn::Set(di, 0x3F800000 - 0x3F3504F3));
  const VF e = hn::ConvertTo(d, hn::Sub(hn::ShiftRight<23>(bits), hn::Set(di, 0x7F)));
  const VF s = hn::Sub(hn::BitCast(d, hn::Add(hn::And(bits, hn::Set(di, 0x7FFFFF)), hn::Set(di, 0x3F3504F3))),
                       hn::Set(d, 1.0f));
  VF p = hn::Set(d, -0.14319874346256256f);
  p = hn::MulAdd(p, s, hn::Set(d, 0.2233010232448578f));
  p = hn::MulAdd(p, s, hn::Set(d, -0.2547246813774109f));
  p = hn::MulAdd(p, s, hn::Set(d, 0.3322587013244629f));
  p = hn::MulAdd(p, s, hn::Set(d, -0.4998505115509033f));
  p = hn::MulAdd(p, s, hn::Set(d, 1.000012755393982f));
  return hn::Add(hn::MulAdd(e, hn::Set(d, 0.693147180559945309f), hn::Mul(p, s)), hn::Sub(x, x));
}

#if HWY_TARGET <= HWY_AVX3
// Rows reduce_rows takes at once (a vector's lanes), and their vector type.
inline constexpr int kTreeRows = 16;
using RowVec = __m512;
// Slot s of reduce_rows' input holds row kSlotRow[s]: the order in which its shuffles deliver lane r = row r.
inline constexpr int kSlotRow[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

// Reduces 16 vectors at once into one vector of their 16 horizontal reductions: 15 combining steps of two shuffles
// and one op, all independent within a level, instead of 16 serial horizontal reductions of 4 dependent steps each.
template <class Op>
HWY_INLINE __m512 reduce_rows(__m512 (&v)[16], Op op) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)  // 256-bit halves: [v0 lo, v1 lo] op [v0 hi, v1 hi]
    a[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int i = 0; i < 4; ++i)  // 128-bit blocks: one per vector
    b[i] = op(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
              _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int i = 0; i < 2; ++i)  // pairs of lanes within each block
    c[i] = op(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return op(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Transposes 16 vectors of 16 lanes: afterwards v[l] lane r holds what v[r] lane l held. 64 shuffles, 4 a vector.
HWY_INLINE void transpose_rows(__m512 (&v)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {  // pairs of lanes of row pairs
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // 128-bit blocks of 4 rows
    v[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    v[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    v[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    v[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 2; ++i)  // then the 128-bit blocks across 8 and 16 rows
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    v[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}
#elif HWY_TARGET == HWY_AVX2
inline constexpr int kTreeRows = 8;
using RowVec = __m256;
// reduce_rows for 8-lane vectors: row r goes in slot kSlotRow[r] of the input, and comes out in lane r. Every row's
// lanes are combined in the same order whatever its slot, as in the 16-lane tree.
inline constexpr int kSlotRow[8] = {0, 2, 4, 6, 1, 3, 5, 7};

template <class Op>
HWY_INLINE __m256 reduce_rows(__m256 (&v)[8], Op op) {
  __m256 a[4], b[2];
  for (int i = 0; i < 4; ++i)  // 128-bit halves: [v0 lo, v1 lo] op [v0 hi, v1 hi]
    a[i] = op(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
              _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
  for (int i = 0; i < 2; ++i)  // pairs of lanes within each half
    b[i] = op(_mm256_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm256_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return op(_mm256_shuffle_ps(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm256_shuffle_ps(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
#endif

}  // namespace multibox::simd
