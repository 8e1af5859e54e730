// Matching (DESIGN.md section 2) on scenes small enough to work out by hand, on every registered backend.
// Scenes are built from full-height strips (support.hpp): a box covering x in [a, b] and y in [0, 1], so
// IoU = overlap length / (length_g + length_p - overlap), with every length a multiple of 1/16.
#include <gtest/gtest.h>

#include "core/math.hpp"
#include "support.hpp"

namespace multibox {
namespace {

using testing::BackendTest;
using testing::Scene;
using testing::strip_box;
using testing::strip_prior;

float strip_iou(const std::array<float, 4>& gt_corners, const std::array<float, 4>& prior) {
  const auto& g = gt_corners;
  return core::iou({g[0], g[1], g[2], g[3]}, core::prior_corners(prior[0], prior[1], prior[2], prior[3]));
}

// The tutorial's situation, in one dimension. Priors (x ranges):
//   p0 [0, .25]   p1 [.25, .5]   p2 [.5, .75]   p3 [.75, 1]   p4 [0, .5]   p5 [.5, 1]
// Ground truths:
//   g0 "small" [.1875, .3125] (length .125), label 1
//   g1 "exact" [.25, .5]      (length .25),  label 2
//   g2 "wide"  [.5, .875]     (length .375), label 3
// IoU table (overlap / union):
//          p0                  p1                 p2                 p3                  p4                 p5
//   g0  .0625/.3125 = .2    .0625/.3125 = .2      0                  0                  .125/.5 = .25         0
//   g1  0 (touch .25)       1                  0 (touch .5)          0                  .25/.5 = .5      0 (touch .5)
//   g2  0                   0 (touch .5)      .25/.375 = 2/3    .125/.5 = .25            0 (touch .5)   .375/.5 = .75
// g0's best prior is p4 with IoU .25 < pos_threshold .5, while p4 has IoU .5 >= .5 with g1: stage 2 alone would
// give p4 to g1. Stage 1 forces it to g0, and the forced match must win.
Scene tutorial_scene() {
  Scene s;
  s.num_classes = 4;
  for (auto [a, b] : {std::pair{0.0f, 0.25f}, {0.25f, 0.5f}, {0.5f, 0.75f}, {0.75f, 1.0f}, {0.0f, 0.5f}, {0.5f, 1.0f}})
    s.add_prior(strip_prior(a, b));
  s.add_image({{strip_box(0.1875f, 0.3125f), 1}, {strip_box(0.25f, 0.5f), 2}, {strip_box(0.5f, 0.875f), 3}});
  return s;
}

class Matching : public BackendTest {};

TEST_P(Matching, TutorialSceneForcedMatchBeatsThresholdMatch) {
  const Scene s = tutorial_scene();
  // The premise, so the test cannot pass by accident if the scene is edited: p4 is above threshold with g1 and
  // g0's best prior is p4 while below threshold.
  const float* p4 = &s.priors[4 * 4];
  ASSERT_EQ(strip_iou(strip_box(0.25f, 0.5f), {p4[0], p4[1], p4[2], p4[3]}), 0.5f);
  ASSERT_EQ(strip_iou(strip_box(0.1875f, 0.3125f), {p4[0], p4[1], p4[2], p4[3]}), 0.25f);

  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
    SCOPED_TRACE(to_string(mode));
    Scene scene = s;
    scene.config.forced_match = mode;
    auto out = run_stage(backend(), scene, Stage::match);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    // bipartite: best pair (g1, p1) = 1; then among g0, g2 and p0, p2..p5: (g2, p5) = .75; then g0's best free prior
    // p4 = .25. argmax: g0 -> p4, g1 -> p1, g2 -> p5, no conflict. Both give forced = [4, 1, 5].
    EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{4, 1, 5}));
    // Stage 2 on the rest: p0 best .2 (g0) < .5 -> negative; p2 best 2/3 (g2) -> positive g2;
    // p3 best .25 (g2) -> negative. p4 stays with g0 although IoU(g1, p4) = .5 >= .5.
    EXPECT_EQ(out->matches, (std::vector<int32_t>{kNegative, 1, 2, kNegative, 0, 2}));
    EXPECT_EQ(out->positives, (std::vector<int32_t>{4}));
    EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{0}));
  }
}

TEST_P(Matching, TutorialSceneEncodesForcedAndThresholdTargets) {
  Scene s = tutorial_scene();
  auto out = run_stage(backend(), s, Stage::encode);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const auto t = [&](int p, int k) { return out->targets[static_cast<size_t>(p) * 4 + k]; };
  // p1 is g1 exactly: every offset is 0 (log 1 = 0).
  for (int k = 0; k < 4; ++k) EXPECT_EQ(t(1, k), 0.0f) << "p1 k=" << k;
  // p4 (cx .25, w .5) carries g0 (cx .25, w .125), both full height:
  //   dx = 0, dy = 0, dw = log(.125 / .5) / .2 = log(.25) / .2 = -6.9314718, dh = log 1 / .2 = 0.
  EXPECT_EQ(t(4, 0), 0.0f);
  EXPECT_EQ(t(4, 1), 0.0f);
  EXPECT_NEAR(t(4, 2), -6.9314718f, 1e-5f);
  EXPECT_EQ(t(4, 3), 0.0f);
  // p2 (cx .625, w .25) carries g2 (cx .6875, w .375): dx = .0625 / .25 / .1 = 2.5, dw = log(1.5) / .2 = 2.0273255.
  EXPECT_NEAR(t(2, 0), 2.5f, 1e-5f);
  EXPECT_EQ(t(2, 1), 0.0f);
  EXPECT_NEAR(t(2, 2), 2.0273255f, 1e-5f);
  EXPECT_EQ(t(2, 3), 0.0f);
  // p5 (cx .75, w .5) carries g2: dx = (.6875 - .75) / .5 / .1 = -1.25, dw = log(.75) / .2 = -1.4384104.
  EXPECT_NEAR(t(5, 0), -1.25f, 1e-5f);
  EXPECT_NEAR(t(5, 2), -1.4384104f, 1e-5f);
  // Negatives carry zeros, not stale memory.
  for (int p : {0, 3})
    for (int k = 0; k < 4; ++k) EXPECT_EQ(t(p, k), 0.0f) << "p" << p << " k=" << k;
}

// Two ground truths share their best prior. Priors: p0 [0, .5], p1 [.5, 1], p2 [.375, .625].
//   g0 [0, .5]    : p0 1,                 p1 0 (touch), p2 .125/.625 = .2
//   g1 [.125, .5] : p0 .375/.5 = .75,     p1 0 (touch), p2 .125/.5   = .25
// Both have argmax p0.
Scene conflict_scene() {
  Scene s;
  s.num_classes = 3;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_prior(strip_prior(0.375f, 0.625f));
  s.add_image({{strip_box(0.0f, 0.5f), 1}, {strip_box(0.125f, 0.5f), 2}});
  return s;
}

TEST_P(Matching, BipartiteGivesConflictingGroundTruthsDistinctPriors) {
  Scene s = conflict_scene();
  s.config.forced_match = ForcedMatch::bipartite;
  auto out = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // Round 1: the best pair overall is (g0, p0) = 1. Round 2: g1 among p1, p2: p1 = 0 is not eligible, p2 = .25.
  EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{0, 2}));
  // p1 has IoU 0 with both: negative.
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, kNegative, 1}));
  EXPECT_EQ(out->positives, (std::vector<int32_t>{2}));
  EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{0}));
}

TEST_P(Matching, ArgmaxDropsTheLowerIndexOnAConflict) {
  Scene s = conflict_scene();
  s.config.forced_match = ForcedMatch::argmax;
  auto out = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // Both pick p0; the highest GT index wins (torchvision's later write), even though g0's IoU there (1) beats g1's
  // (.75). g0 loses its forced match.
  EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{-1, 0}));
  // Stage 2: p1 best 0 -> negative; p2 best .25 (g1) < .5 -> negative. g0 ends with no prior at all and is reported.
  EXPECT_EQ(out->matches, (std::vector<int32_t>{1, kNegative, kNegative}));
  EXPECT_EQ(out->positives, (std::vector<int32_t>{1}));
  EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{1}));
}

TEST_P(Matching, BipartiteTiesGoToLowestGroundTruthThenLowestPrior) {
  // Two identical priors p0 = p1 = [0, .5] and two identical GTs [0, .5]: every pair has IoU 1.
  // Round 1 takes (g0, p0) (lowest GT, then lowest prior); round 2 takes (g1, p1).
  Scene s;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_image({{strip_box(0.0f, 0.5f), 1}, {strip_box(0.0f, 0.5f), 1}});
  auto out = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, 1, kNegative}));

  // argmax: both GTs take p0 (lowest prior on the tie); g1 wins it, g0 is left to stage 2, where p1's best GT
  // on the tie is the lowest index g0 (IoU 1 >= .5).
  s.config.forced_match = ForcedMatch::argmax;
  auto arg = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(arg.ok()) << arg.status().to_string();
  EXPECT_EQ(arg->forced_prior, (std::vector<int32_t>{-1, 0}));
  EXPECT_EQ(arg->matches, (std::vector<int32_t>{1, 0, kNegative}));
  EXPECT_EQ(arg->unmatched_ground_truths, (std::vector<int32_t>{0}));
}

// One GT g0 = [0, .5] and priors at chosen IoUs:
//   p0 [0, .5]     1                      (forced)
//   p1 [0, .25]    .25/.5 = .5            (>= pos .5: positive, on the boundary)
//   p2 [.25, .75]  .25/.75 = 1/3          (in [.25, .5): ignored)
//   p3 [.375, .875] .125/.875 = 1/7       (< .25: negative)
//   p4 [.375, .5]  .125/.5 = .25          (== neg .25: not below it, so ignored)
//   p5 [.5, 1]     0 (touch)              (negative)
Scene band_scene() {
  Scene s;
  s.num_classes = 3;
  for (auto [a, b] : {std::pair{0.0f, 0.5f}, {0.0f, 0.25f}, {0.25f, 0.75f}, {0.375f, 0.875f}, {0.375f, 0.5f},
                      {0.5f, 1.0f}})
    s.add_prior(strip_prior(a, b));
  s.add_image({{strip_box(0.0f, 0.5f), 2}});
  return s;
}

TEST_P(Matching, IgnoreBandBetweenNegAndPosThresholds) {
  Scene s = band_scene();
  s.config.neg_threshold = 0.25f;
  auto out = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, 0, kIgnored, kNegative, kIgnored, kNegative}));
  EXPECT_EQ(out->positives, (std::vector<int32_t>{2}));

  // Without a band (neg_threshold unset = pos_threshold) the same priors are negatives.
  Scene plain = band_scene();
  auto no_band = run_stage(backend(), plain, Stage::match);
  ASSERT_TRUE(no_band.ok()) << no_band.status().to_string();
  EXPECT_EQ(no_band->matches, (std::vector<int32_t>{0, 0, kNegative, kNegative, kNegative, kNegative}));
}

TEST_P(Matching, IgnoredPriorsAreNeitherLossNorMined) {
  Scene s = band_scene();
  s.config.neg_threshold = 0.25f;
  s.zero_predictions();
  // Make the ignored priors p2 and p4 the hardest "negatives" by far: if they were treated as negatives they would
  // be mined first. CE for background with logits (0, 0, 20) = log(2 + e^20) ~ 20.
  s.logits(0, 2)[2] = 20.0f;
  s.logits(0, 4)[2] = 20.0f;
  auto out = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // P = 2, quota 3 * 2 = 6, capped at the 2 negatives p3, p5.
  EXPECT_EQ(out->mined_negatives, (std::vector<int32_t>{2}));
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{0, 0, 0, 1, 0, 1}));
  // All logits 0 elsewhere: every counted CE is log 3, four of them (2 positives, 2 negatives), N = 2.
  EXPECT_NEAR(out->loss.conf, 4 * std::log(3.0) / 2, 1e-6);
  for (int p : {2, 4})
    for (int c = 0; c < 3; ++c) EXPECT_EQ(out->grad_conf[p * 3 + c], 0.0f) << "ignored prior " << p;
}

TEST_P(Matching, ImageWithoutGroundTruthsIsAllNegative) {
  // Image 0 has one GT on p0; image 1 has none: all its priors negative, nothing forced, nothing unmatched.
  Scene s;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_image({{strip_box(0.0f, 0.5f), 1}});
  s.add_image({});
  auto out = run_stage(backend(), s, Stage::encode);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, kNegative, kNegative, kNegative}));
  EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{0}));
  EXPECT_EQ(out->positives, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{0, 0}));
  for (size_t i = 4; i < out->targets.size(); ++i) EXPECT_EQ(out->targets[i], 0.0f) << "target " << i;
}

TEST_P(Matching, GroundTruthOverlappingNoPriorIsReportedUnmatched) {
  // g0 [0, .25] overlaps p0 [0, .5] (IoU .5); g1 lies in a gap no prior covers (x in [.5, 1] only touches p0).
  Scene s;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_image({{strip_box(0.0f, 0.25f), 1}, {strip_box(0.5f, 1.0f), 1}});
  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
    SCOPED_TRACE(to_string(mode));
    s.config.forced_match = mode;
    auto out = run_stage(backend(), s, Stage::match);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    // IoU 0 is never eligible for a forced match (torchvision would force prior 0: a documented difference).
    EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{0, -1}));
    EXPECT_EQ(out->matches, (std::vector<int32_t>{0}));
    EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{1}));
  }
}

TEST_P(Matching, RaggedBatchUsesImageRelativeIndices) {
  // Image 0: two GTs, image 1: one GT. Matches are relative to each image, forced_prior is per GT row.
  Scene s;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_image({{strip_box(0.0f, 0.5f), 1}, {strip_box(0.5f, 1.0f), 1}});
  s.add_image({{strip_box(0.5f, 1.0f), 1}});
  auto out = run_stage(backend(), s, Stage::match);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, 1, kNegative, 0}));
  EXPECT_EQ(out->forced_prior, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(out->positives, (std::vector<int32_t>{2, 1}));
}

MULTIBOX_INSTANTIATE_ALL_BACKENDS(Matching);

}  // namespace
}  // namespace multibox
