// The shared math of impls/core/math.hpp (DESIGN.md sections 2-4) against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/math.hpp"

namespace multibox::core {
namespace {

// ---- IoU -------------------------------------------------------------------------------------------------
// Coordinates are multiples of 1/8, so every intermediate (widths, areas, intersections) is exact in float and
// the only rounding is the final division: the expected values are exact, not approximate.

TEST(Iou, DisjointBoxesGiveZero) {
  // g = [0, .25]^2, p = [.5, .75]^2: iw = max(0, min(.25,.75) - max(0,.5)) = max(0, -.25) = 0, so inter = 0.
  EXPECT_EQ(iou({0, 0, 0.25f, 0.25f}, {0.5f, 0.5f, 0.75f, 0.75f}), 0.0f);
  // Overlapping in x only: iw = .25 but ih = max(0, .25 - .5) = 0.
  EXPECT_EQ(iou({0, 0, 0.5f, 0.25f}, {0.25f, 0.5f, 0.75f, 0.75f}), 0.0f);
}

TEST(Iou, NestedBoxIsRatioOfAreas) {
  // g = [0, .5]^2 (area .25) contains p = [.125, .375]^2 (area .0625): inter = .0625,
  // union = .25 + .0625 - .0625 = .25, IoU = .0625 / .25 = 0.25 exactly.
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0.125f, 0.125f, 0.375f, 0.375f}), 0.25f);
  EXPECT_EQ(iou({0.125f, 0.125f, 0.375f, 0.375f}, {0, 0, 0.5f, 0.5f}), 0.25f);
}

TEST(Iou, IdenticalBoxesGiveOne) {
  // inter = area, union = area + area - area = area.
  EXPECT_EQ(iou({0.1f, 0.2f, 0.7f, 0.9f}, {0.1f, 0.2f, 0.7f, 0.9f}), 1.0f);
}

TEST(Iou, TouchingEdgesAndCornersGiveZero) {
  // Shared edge x = .5: iw = min(.5, 1) - max(0, .5) = 0, so inter = 0 although ih = .5.
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0.5f, 0, 1, 0.5f}), 0.0f);
  // Shared edge y = .5.
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0, 0.5f, 0.5f, 1}), 0.0f);
  // Shared corner (.5, .5).
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0.5f, 0.5f, 1, 1}), 0.0f);
}

TEST(Iou, PartialOverlap) {
  // g = [0,.5]x[0,.5], p = [.25,.75]x[0,.5]: inter = .25 * .5 = .125, union = .25 + .25 - .125 = .375,
  // IoU = .125 / .375 = 1/3 (both operands exact, so the float result is the float nearest 1/3).
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0.25f, 0, 0.75f, 0.5f}), 1.0f / 3.0f);
  // Offset in both axes: g = [0,.5]^2, p = [.25,.75]^2: inter = .25^2 = .0625, union = .25+.25-.0625 = .4375,
  // IoU = .0625 / .4375 = 1/7.
  EXPECT_EQ(iou({0, 0, 0.5f, 0.5f}, {0.25f, 0.25f, 0.75f, 0.75f}), 1.0f / 7.0f);
}

TEST(Iou, IsSymmetricAndMatchesPrecomputedAreas) {
  const Box a{0.1f, 0.15f, 0.62f, 0.8f}, b{0.3f, 0.05f, 0.9f, 0.55f};
  EXPECT_EQ(iou(a, b), iou(b, a));
  // Vectorised backends reuse areas; the bits must not change (DESIGN.md section 2).
  EXPECT_EQ(iou_with_areas(a, area(a), b, area(b)), iou(a, b));
}

TEST(Iou, PriorCornersFromCentreSize) {
  // (cx, cy, w, h) = (.5, .5, .25, .5) -> (.5 - .125, .5 - .25, .5 + .125, .5 + .25).
  const Box p = prior_corners(0.5f, 0.5f, 0.25f, 0.5f);
  EXPECT_EQ(p.x1, 0.375f);
  EXPECT_EQ(p.y1, 0.25f);
  EXPECT_EQ(p.x2, 0.625f);
  EXPECT_EQ(p.y2, 0.75f);
}

// ---- encode / decode -------------------------------------------------------------------------------------

TEST(Encode, KnownBox) {
  // GT corners (.375, .25, .875, .75): centre (.625, .5), size (.5, .5). Prior (.5, .5, .25, .5), variances (.1, .2):
  //   dx = (.625 - .5) / .25 / .1 = .5 / .1 = 5
  //   dy = (.5 - .5) / .5 / .1   = 0
  //   dw = log(.5 / .25) / .2    = log 2 / .2 = 3.4657359
  //   dh = log(.5 / .5) / .2     = 0
  const Encoded t = encode({0.375f, 0.25f, 0.875f, 0.75f}, 0.5f, 0.5f, 0.25f, 0.5f, 0.1f, 0.2f);
  EXPECT_FLOAT_EQ(t.v[0], 5.0f);
  EXPECT_EQ(t.v[1], 0.0f);
  EXPECT_FLOAT_EQ(t.v[2], 3.4657359f);
  EXPECT_EQ(t.v[3], 0.0f);
}

TEST(Encode, SmallerAndOffsetBox) {
  // GT (.1, .2, .3, .6): centre (.2, .4), size (.2, .4). Prior (.25, .5, .4, .8), variances (.1, .2):
  //   dx = (.2 - .25) / .4 / .1 = -1.25
  //   dy = (.4 - .5) / .8 / .1  = -1.25
  //   dw = log(.2 / .4) / .2    = -log 2 / .2 = -3.4657359
  //   dh = log(.4 / .8) / .2    = -3.4657359
  const Encoded t = encode({0.1f, 0.2f, 0.3f, 0.6f}, 0.25f, 0.5f, 0.4f, 0.8f, 0.1f, 0.2f);
  EXPECT_NEAR(t.v[0], -1.25f, 1e-5f);
  EXPECT_NEAR(t.v[1], -1.25f, 1e-5f);
  EXPECT_NEAR(t.v[2], -3.4657359f, 1e-5f);
  EXPECT_NEAR(t.v[3], -3.4657359f, 1e-5f);
}

TEST(Decode, KnownOffsets) {
  // t = (1, -1, 0, 0), prior (.5, .5, .2, .4), variances (.1, .2):
  //   cx = 1 * .1 * .2 + .5 = .52, cy = -1 * .1 * .4 + .5 = .46, w = e^0 * .2 = .2, h = .4
  //   corners (.52 - .1, .46 - .2, .52 + .1, .46 + .2) = (.42, .26, .62, .66)
  const Box b = decode({{1, -1, 0, 0}}, 0.5f, 0.5f, 0.2f, 0.4f, 0.1f, 0.2f);
  EXPECT_NEAR(b.x1, 0.42f, 1e-6f);
  EXPECT_NEAR(b.y1, 0.26f, 1e-6f);
  EXPECT_NEAR(b.x2, 0.62f, 1e-6f);
  EXPECT_NEAR(b.y2, 0.66f, 1e-6f);
  // t = (0, 0, 5 log 2, -5 log 2) on prior (.5, .5, .25, .5): w = e^(log 2) * .25 = .5, h = e^(-log 2) * .5 = .25,
  // corners (.25, .375, .75, .625).
  const float l = 5.0f * std::log(2.0f);
  const Box c = decode({{0, 0, l, -l}}, 0.5f, 0.5f, 0.25f, 0.5f, 0.1f, 0.2f);
  EXPECT_NEAR(c.x1, 0.25f, 1e-6f);
  EXPECT_NEAR(c.y1, 0.375f, 1e-6f);
  EXPECT_NEAR(c.x2, 0.75f, 1e-6f);
  EXPECT_NEAR(c.y2, 0.625f, 1e-6f);
}

TEST(Decode, InvertsEncode) {
  const Box g{0.13f, 0.27f, 0.58f, 0.91f};
  const Box back = decode(encode(g, 0.4f, 0.6f, 0.3f, 0.45f, 0.1f, 0.2f), 0.4f, 0.6f, 0.3f, 0.45f, 0.1f, 0.2f);
  EXPECT_NEAR(back.x1, g.x1, 1e-6f);
  EXPECT_NEAR(back.y1, g.y1, 1e-6f);
  EXPECT_NEAR(back.x2, g.x2, 1e-6f);
  EXPECT_NEAR(back.y2, g.y2, 1e-6f);
}

// ---- smooth L1 -------------------------------------------------------------------------------------------

TEST(SmoothL1, BothSidesOfBetaOne) {
  // |x| < 1: .5 x^2 / 1;  |x| >= 1: |x| - .5.
  EXPECT_DOUBLE_EQ(smooth_l1(0.5, 1.0), 0.125);   // .5 * .25
  EXPECT_DOUBLE_EQ(smooth_l1(-0.5, 1.0), 0.125);
  EXPECT_DOUBLE_EQ(smooth_l1(1.0, 1.0), 0.5);     // boundary: both branches give .5, continuity
  EXPECT_DOUBLE_EQ(smooth_l1(2.0, 1.0), 1.5);     // 2 - .5
  EXPECT_DOUBLE_EQ(smooth_l1(-3.0, 1.0), 2.5);    // 3 - .5
  EXPECT_DOUBLE_EQ(smooth_l1(0.0, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(smooth_l1_grad(0.5, 1.0), 0.5);  // x / beta
  EXPECT_DOUBLE_EQ(smooth_l1_grad(-0.25, 1.0), -0.25);
  EXPECT_DOUBLE_EQ(smooth_l1_grad(2.0, 1.0), 1.0);  // sign(x)
  EXPECT_DOUBLE_EQ(smooth_l1_grad(-3.0, 1.0), -1.0);
}

TEST(SmoothL1, OtherBeta) {
  // beta = .5: |x| < .5: x^2 (= .5 x^2 / .5); else |x| - .25.
  EXPECT_DOUBLE_EQ(smooth_l1(0.25, 0.5), 0.0625);  // .5 * .0625 / .5
  EXPECT_DOUBLE_EQ(smooth_l1(1.0, 0.5), 0.75);     // 1 - .25
  EXPECT_DOUBLE_EQ(smooth_l1(-0.5, 0.5), 0.25);    // boundary: .5 - .25 = .25 = .5 * .25 / .5
  EXPECT_DOUBLE_EQ(smooth_l1_grad(0.25, 0.5), 0.5);  // .25 / .5
  EXPECT_DOUBLE_EQ(smooth_l1_grad(-1.0, 0.5), -1.0);
  // float instantiation, as the backends' float paths use it
  EXPECT_FLOAT_EQ(smooth_l1(0.25f, 0.5f), 0.0625f);
  EXPECT_FLOAT_EQ(smooth_l1(3.0f, 2.0f), 2.0f);  // 3 - 1
}

TEST(SmoothL1, BetaZeroIsPlainL1WithoutNaN) {
  // beta = 0 never takes the quadratic branch (|x| < 0 is false): |x| - 0 = |x|, gradient sign(x), sign(0) = 0.
  EXPECT_DOUBLE_EQ(smooth_l1(0.3, 0.0), 0.3);
  EXPECT_DOUBLE_EQ(smooth_l1(-2.0, 0.0), 2.0);
  EXPECT_EQ(smooth_l1(0.0, 0.0), 0.0);  // would be 0/0 = NaN if the quadratic branch were taken
  EXPECT_DOUBLE_EQ(smooth_l1_grad(0.3, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(smooth_l1_grad(-2.0, 0.0), -1.0);
  EXPECT_EQ(smooth_l1_grad(0.0, 0.0), 0.0);
}

// ---- logsumexp, mining order and quota ---------------------------------------------------------------------

TEST(LogSumExp, StableForHugeLogits) {
  // log(e^1000 + e^1000) = 1000 + log 2: exp(1000) overflows unless the max is subtracted first.
  const float big[2] = {1000.0f, 1000.0f};
  EXPECT_DOUBLE_EQ(logsumexp<double>(big, 2), 1000.0 + std::log(2.0));
  // log(e^-1000 + e^-1000) = -1000 + log 2: exp(-1000) underflows to 0 (log 0 = -inf) without the shift.
  const float tiny[2] = {-1000.0f, -1000.0f};
  EXPECT_DOUBLE_EQ(logsumexp<double>(tiny, 2), -1000.0 + std::log(2.0));
  // Four equal logits: log 4.
  const float zeros[4] = {0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(logsumexp<double>(zeros, 4), std::log(4.0));
  // (0, log 3): log(1 + 3) = log 4; float path within a few ulps.
  const float row[2] = {0.0f, std::log(3.0f)};
  EXPECT_NEAR(logsumexp<float>(row, 2), std::log(4.0f), 1e-6f);
  EXPECT_TRUE(std::isfinite(logsumexp<float>(big, 2)));
}

TEST(Mining, QuotaIsRatioTimesPositivesCappedByNegatives) {
  EXPECT_EQ(mining_quota(2, 10, 3, 0), 6);  // 3 * 2 = 6 <= 10
  EXPECT_EQ(mining_quota(2, 4, 3, 0), 4);   // 6 capped at the 4 negatives there are
  EXPECT_EQ(mining_quota(0, 10, 3, 0), 0);  // no positives, no minimum: the image contributes nothing
  EXPECT_EQ(mining_quota(0, 10, 3, 5), 5);  // max(5, 0) = 5
  EXPECT_EQ(mining_quota(1, 10, 3, 5), 5);  // max(5, 3) = 5
  EXPECT_EQ(mining_quota(2, 10, 3, 5), 6);  // max(5, 6) = 6
  EXPECT_EQ(mining_quota(0, 3, 3, 5), 3);   // minimum raised first, then capped: min(5, 3) = 3
  EXPECT_EQ(mining_quota(100000, 8732, 3, 0), 8732);  // no int overflow on large counts
}

TEST(Mining, HarderNegativeOrdersByCeThenLowestPrior) {
  EXPECT_TRUE(harder_negative(2.0, 5, 1.0, 1));   // larger CE first, whatever the index
  EXPECT_FALSE(harder_negative(1.0, 1, 2.0, 5));
  EXPECT_TRUE(harder_negative(1.0, 1, 1.0, 5));   // equal CE: lower prior index first
  EXPECT_FALSE(harder_negative(1.0, 5, 1.0, 1));
  EXPECT_FALSE(harder_negative(1.0, 3, 1.0, 3));  // irreflexive, as std::sort requires
}

}  // namespace
}  // namespace multibox::core
