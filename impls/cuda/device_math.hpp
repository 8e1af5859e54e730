// The per-prior and per-row pieces of the CUDA kernels that are not plain core::math: sort keys that carry the
// contract's tie rules, the split of a logits row over a group of threads, and the gradient of one logit. Written as
// MULTIBOX_HD functions so the host tests run exactly this code against the naive backend (no GPU needed).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/math.hpp"

namespace multibox::cuda::detail {

MULTIBOX_HD uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

// Bits of a float that order as unsigned integers like the floats do (negative values included).
MULTIBOX_HD uint32_t orderable(float x) {
  const uint32_t u = float_bits(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A (ground truth, prior) candidate: the larger key is the larger IoU, then the lower prior index, which is the
// contract's per-ground-truth argmax. IoUs are >= 0, so their raw bits order like them; key 0 means "no prior with
// IoU > 0" (the only candidates stage 1 may force).
MULTIBOX_HD uint64_t prior_key(float iou, int32_t prior) {
  if (!(iou > 0.0f)) return 0;
  return (static_cast<uint64_t>(float_bits(iou)) << 32) | (0xffffffffu - static_cast<uint32_t>(prior));
}
MULTIBOX_HD int32_t prior_of_key(uint64_t key) { return static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(key)); }

// Mining sort key: ascending order is the contract's mining order (larger CE first, then lower prior index). The
// prior index takes the low `index_bits` bits (mining_index_bits: 2^index_bits > P), the CE's inverted orderable
// bits the 31 above (CE >= 0, so the top bit of ~orderable is 0): the sort needs to look at 31 + index_bits bits.
// Every prior that is not a negative sorts after all negatives, because no negative has all those bits set.
inline constexpr uint64_t kNotANegative = ~uint64_t{0};
MULTIBOX_HD uint64_t negative_key(float ce, int32_t prior, int index_bits) {
  return (static_cast<uint64_t>(~orderable(ce)) << index_bits) | static_cast<uint32_t>(prior);
}
MULTIBOX_HD int32_t prior_of_negative_key(uint64_t key, int index_bits) {
  return static_cast<int32_t>(key & ((uint64_t{1} << index_bits) - 1));
}
MULTIBOX_HD int mining_index_bits(int num_priors) {
  int bits = 1;
  while ((int64_t{1} << bits) <= num_priors) ++bits;
  return bits;
}

// A ground truth's candidate in a bipartite round: its best free prior's key. The round takes the larger IoU, then
// the lower ground-truth index (the key already holds the lowest prior among that ground truth's equal IoUs), which is
// the reference's scan order: ground truths outer, priors inner, strict '>'.
struct Candidate {
  uint64_t key;
  int32_t g;
};
MULTIBOX_HD Candidate better_candidate(const Candidate& x, const Candidate& y) {
  const uint32_t xi = static_cast<uint32_t>(x.key >> 32), yi = static_cast<uint32_t>(y.key >> 32);
  if (xi != yi) return xi > yi ? x : y;
  return x.g <= y.g ? x : y;
}
MULTIBOX_HD Candidate no_candidate() { return {0, 0x7fffffff}; }

// Stage 2 decision for one prior, given its stage-1 owner (-1 if none) and its best ground truth.
MULTIBOX_HD int32_t match_of(int32_t forced_owner, float best_iou, int32_t best_gt, float pos, float neg) {
  if (forced_owner >= 0) return forced_owner;
  if (best_iou >= pos) return best_gt;
  return best_iou < neg ? -1 : -2;  // kNegative, kIgnored
}

// One thread's share of a logits row: the classes lane, lane + width, ... of the row's C.
MULTIBOX_HD float partial_max(const float* row, int C, int lane, int width) {
  float m = -HUGE_VALF;
  for (int c = lane; c < C; c += width) m = core::max_f(m, row[c]);
  return m;
}

// sum(exp(x - max)) over this thread's classes, leaving out the entries equal to the max (each exactly 1) and
// counting them instead, so the row total minus 1 keeps full relative precision on confident rows, where it is tiny
// and log1p of it is the whole CE (the simd backend's row_rest, one thread's part).
struct RestPart {
  float rest = 0;
  int ties = 0;
};
MULTIBOX_HD RestPart partial_rest(const float* row, int C, int lane, int width, float max) {
  RestPart r;
  for (int c = lane; c < C; c += width) {
    const float t = row[c] - max;
    if (t == 0.0f) ++r.ties;
    else r.rest += ::expf(t);
  }
  return r;
}

// log(sum(exp(x - max))) of a row from its combined parts.
MULTIBOX_HD float log_sum_of(RestPart whole) { return ::log1pf(whole.rest + static_cast<float>(whole.ties - 1)); }

// CE = logsumexp(x) - x[y], arranged so that no large terms cancel: (max - x[y]) is exact-ish and >= 0.
MULTIBOX_HD float cross_entropy(float max, float log_sum, float x_target) { return (max - x_target) + log_sum; }

// dL/dx[c] of a selected row: (softmax[c] - [c == y]) / N. The target's softmax - 1 goes through expm1 so a confident
// row's tiny gradient keeps its relative precision.
MULTIBOX_HD float logit_gradient(float x, float max, float log_sum, bool target, float inv_n) {
  const float t = (x - max) - log_sum;
  return (target ? ::expm1f(t) : ::expf(t)) * inv_n;
}

// Smooth L1 of one coordinate and its gradient, in double as the reference accumulates them.
MULTIBOX_HD double loc_loss(float loc, float target, float beta) {
  return core::smooth_l1<double>(static_cast<double>(loc) - static_cast<double>(target), static_cast<double>(beta));
}
MULTIBOX_HD float loc_gradient(float loc, float target, float alpha, float beta, double n) {
  const double d = static_cast<double>(loc) - static_cast<double>(target);
  return static_cast<float>(static_cast<double>(alpha) * core::smooth_l1_grad<double>(d, static_cast<double>(beta)) / n);
}

}  // namespace multibox::cuda::detail
