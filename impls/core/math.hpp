// The math every backend shares (DESIGN.md sections 2-5), written once and compiled into host and device code.
// IoU must be evaluated in exactly this order without fused multiply-add (targets that include this header
// build with -ffp-contract=off / nvcc -fmad=false) so every backend makes bit-identical matching decisions.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MULTIBOX_HD __host__ __device__ __forceinline__
#else
#define MULTIBOX_HD inline
#endif

namespace multibox::core {

struct Box {  // corners, normalised
  float x1, y1, x2, y2;
};

struct Encoded {  // (dx, dy, dw, dh) in variance units
  float v[4];
};

MULTIBOX_HD float min_f(float a, float b) { return b < a ? b : a; }
MULTIBOX_HD float max_f(float a, float b) { return a < b ? b : a; }

MULTIBOX_HD Box prior_corners(float cx, float cy, float w, float h) {
  return {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
}

MULTIBOX_HD float area(const Box& b) { return (b.x2 - b.x1) * (b.y2 - b.y1); }

// Split out so vectorised code can reuse precomputed areas and still produce the same bits.
MULTIBOX_HD float iou_with_areas(const Box& g, float area_g, const Box& p, float area_p) {
  const float iw = max_f(0.0f, min_f(g.x2, p.x2) - max_f(g.x1, p.x1));
  const float ih = max_f(0.0f, min_f(g.y2, p.y2) - max_f(g.y1, p.y1));
  const float inter = iw * ih;
  return inter / (area_g + area_p - inter);
}

MULTIBOX_HD float iou(const Box& g, const Box& p) { return iou_with_areas(g, area(g), p, area(p)); }

// Centre-size offsets of a ground truth relative to a prior (DESIGN.md section 3).
MULTIBOX_HD Encoded encode(const Box& g, float pcx, float pcy, float pw, float ph, float var_xy, float var_wh) {
  const float gcx = (g.x1 + g.x2) / 2;
  const float gcy = (g.y1 + g.y2) / 2;
  const float gw = g.x2 - g.x1;
  const float gh = g.y2 - g.y1;
  return {{(gcx - pcx) / pw / var_xy, (gcy - pcy) / ph / var_xy, ::logf(gw / pw) / var_wh,
           ::logf(gh / ph) / var_wh}};
}

MULTIBOX_HD Box decode(const Encoded& t, float pcx, float pcy, float pw, float ph, float var_xy, float var_wh) {
  const float cx = t.v[0] * var_xy * pw + pcx;
  const float cy = t.v[1] * var_xy * ph + pcy;
  const float w = ::expf(t.v[2] * var_wh) * pw;
  const float h = ::expf(t.v[3] * var_wh) * ph;
  return {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
}

template <class T>
MULTIBOX_HD T smooth_l1(T x, T beta) {
  const T ax = x < T(0) ? -x : x;
  return ax < beta ? T(0.5) * x * x / beta : ax - T(0.5) * beta;
}

// d smooth_l1 / dx; beta == 0 degenerates to sign(x) (plain L1), sign(0) = 0.
template <class T>
MULTIBOX_HD T smooth_l1_grad(T x, T beta) {
  const T ax = x < T(0) ? -x : x;
  if (ax < beta) return x / beta;
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

// Hard-negative order: larger cross-entropy first, lower prior index on ties (DESIGN.md section 4).
template <class T>
MULTIBOX_HD bool harder_negative(T ce_a, int32_t prior_a, T ce_b, int32_t prior_b) {
  return ce_a > ce_b || (ce_a == ce_b && prior_a < prior_b);
}

// K_b = min(max(min_neg, ratio * P_b), N_neg_b).
MULTIBOX_HD int64_t mining_quota(int64_t positives, int64_t negatives, int64_t ratio, int64_t min_negatives) {
  int64_t target = ratio * positives;
  if (target < min_negatives) target = min_negatives;
  return target < negatives ? target : negatives;
}

// log(sum(exp(row))) with the row maximum subtracted first so +-1e4 logits neither overflow nor underflow.
template <class Acc>
MULTIBOX_HD Acc logsumexp(const float* row, int n) {
  float m = row[0];
  for (int c = 1; c < n; ++c) m = max_f(m, row[c]);
  Acc sum = 0;
  for (int c = 0; c < n; ++c) sum += static_cast<Acc>(::exp(static_cast<Acc>(row[c]) - static_cast<Acc>(m)));
  return static_cast<Acc>(m) + static_cast<Acc>(::log(sum));
}

}  // namespace multibox::core
