// The MultiBox loss, hard negative mining and gradients (DESIGN.md sections 4-5) on hand-worked examples, on every
// registered backend. Scenes use full-height strips (support.hpp) so matches are obvious; see test_matching.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "support.hpp"

namespace multibox {
namespace {

using testing::BackendTest;
using testing::Scene;
using testing::strip_box;
using testing::strip_prior;

// Logits and losses go through float32 logits (log 2, log 5 are rounded) and logf in the targets: 1e-6 absolute is
// far above that rounding yet far below any of the hand-computed differences the tests look for.
constexpr double kTol = 1e-6;

// 1 image, 2 priors, 3 classes.
//   p0 [0, .5] (cx .25, w .5), p1 [.5, 1] (cx .75, w .5); GT g0 [.0625, .5625], label 2.
//   IoU(g0, p0) = .4375 / .5625 = .778 -> forced positive; IoU(g0, p1) = .0625 / .9375 = .067 -> negative.
//   Target of p0: dx = (.3125 - .25) / .5 / .1 = 1.25, dy = 0, dw = log(.5 / .5) / .2 = 0, dh = 0.
//   loc p0 = (1.75, -.5, 2, 0): d = loc - t = (.5, -.5, 2, 0).
//   conf p0 = (0, log 2, log 5): exp -> (1, 2, 5), sum 8; y = 2: CE = log 8 - log 5 = log 1.6;
//     softmax = (1/8, 2/8, 5/8), gradient = (.125, .25, .625 - 1) = (.125, .25, -.375).
//   conf p1 = (0, log 3, 0): exp -> (1, 3, 1), sum 5; y = 0: CE = log 5 - 0 = log 5;
//     softmax = (.2, .6, .2), gradient = (.2 - 1, .6, .2) = (-.8, .6, .2).
//   P = 1, quota 3 * 1 = 3 capped at the 1 negative: K = 1, p1 mined.
//   L_conf = log 1.6 + log 5 = log 8 = 2.0794415; N = 1.
Scene hand_scene() {
  Scene s;
  s.num_classes = 3;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_image({{strip_box(0.0625f, 0.5625f), 2}});
  s.data.conf = {0.0f, std::log(2.0f), std::log(5.0f), 0.0f, std::log(3.0f), 0.0f};
  s.data.loc = {1.75f, -0.5f, 2.0f, 0.0f, 3.0f, -3.0f, 3.0f, -3.0f};  // p1's loc is a negative's: unused
  return s;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << what << "[" << i << "]";
}

class Loss : public BackendTest {};

TEST_P(Loss, HandWorkedOneImageTwoPriorsThreeClasses) {
  auto out = run_stage(backend(), hand_scene(), Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, kNegative}));
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(out->mined_negatives, (std::vector<int32_t>{1}));
  EXPECT_NEAR(out->targets[0], 1.25f, 1e-6f);
  // beta = 1: smoothL1(.5) = .125, smoothL1(-.5) = .125, smoothL1(2) = 2 - .5 = 1.5, smoothL1(0) = 0; L_loc = 1.75.
  const double conf_sum = std::log(8.0), loc_sum = 1.75;
  EXPECT_EQ(out->loss.num_positives, 1);
  EXPECT_NEAR(out->loss.conf_sum, conf_sum, kTol);
  EXPECT_NEAR(out->loss.loc_sum, loc_sum, kTol);
  EXPECT_NEAR(out->loss.conf, conf_sum, kTol);
  EXPECT_NEAR(out->loss.loc, loc_sum, kTol);
  EXPECT_NEAR(out->loss.total, conf_sum + loc_sum, kTol);  // (2.0794415 + 1 * 1.75) / 1 = 3.8294415
  expect_near_all(out->grad_conf, {0.125, 0.25, -0.375, -0.8, 0.6, 0.2}, kTol, "grad_conf");
  // smoothL1'(d) = d for |d| < 1, sign(d) otherwise: (.5, -.5, 1, 0); the negative p1 gets 0.
  expect_near_all(out->grad_loc, {0.5, -0.5, 1.0, 0.0, 0, 0, 0, 0}, kTol, "grad_loc");
}

TEST_P(Loss, NormalisesByPositivesOfTheWholeBatch) {
  // The hand scene twice: N = 2, sums double, L is unchanged and every gradient halves.
  Scene s = hand_scene();
  s.add_image({{strip_box(0.0625f, 0.5625f), 2}});
  s.data.conf.insert(s.data.conf.end(), s.data.conf.begin(), s.data.conf.end());
  s.data.loc.insert(s.data.loc.end(), s.data.loc.begin(), s.data.loc.end());
  auto out = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->loss.num_positives, 2);
  EXPECT_NEAR(out->loss.conf_sum, 2 * std::log(8.0), kTol);
  EXPECT_NEAR(out->loss.loc_sum, 3.5, kTol);
  EXPECT_NEAR(out->loss.total, std::log(8.0) + 1.75, kTol);
  expect_near_all(out->grad_conf, {0.0625, 0.125, -0.1875, -0.4, 0.3, 0.1, 0.0625, 0.125, -0.1875, -0.4, 0.3, 0.1},
                  kTol, "grad_conf");
  expect_near_all(out->grad_loc, {0.25, -0.25, 0.5, 0, 0, 0, 0, 0, 0.25, -0.25, 0.5, 0, 0, 0, 0, 0}, kTol, "grad_loc");
}

TEST_P(Loss, AlphaAndBetaScaleTheLocalisationTerm) {
  // beta = .25: every |d| in (.5, -.5, 2) is >= .25, so smoothL1 = |d| - .125: .375 + .375 + 1.875 + 0 = 2.625;
  // gradient sign(d) = (1, -1, 1, 0). alpha = 2: L = (log 8 + 2 * 2.625) / 1 = 7.3294415, grad_loc = (2, -2, 2, 0).
  Scene s = hand_scene();
  s.config.alpha = 2.0f;
  s.config.smooth_l1_beta = 0.25f;
  auto out = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_NEAR(out->loss.loc_sum, 2.625, kTol);
  EXPECT_NEAR(out->loss.loc, 2.625, kTol);  // L_loc / N, alpha not applied
  EXPECT_NEAR(out->loss.total, std::log(8.0) + 2 * 2.625, kTol);
  expect_near_all(out->grad_loc, {2, -2, 2, 0, 0, 0, 0, 0}, kTol, "grad_loc");
  // Conf gradients do not depend on alpha.
  expect_near_all(out->grad_conf, {0.125, 0.25, -0.375, -0.8, 0.6, 0.2}, kTol, "grad_conf");

  // beta = 0 is plain L1: .5 + .5 + 2 + 0 = 3, gradient sign(d) with sign(0) = 0 (no 0/0).
  s.config.alpha = 1.0f;
  s.config.smooth_l1_beta = 0.0f;
  auto l1 = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(l1.ok()) << l1.status().to_string();
  EXPECT_NEAR(l1->loss.loc_sum, 3.0, kTol);
  expect_near_all(l1->grad_loc, {1, -1, 1, 0, 0, 0, 0, 0}, kTol, "grad_loc beta=0");
}

TEST_P(Loss, GradientsMatchFiniteDifferences) {
  // With the selection held fixed, dL/dx ~ (L(x + h) - L(x - h)) / 2h. Central differences on float32 inputs with
  // h = 1e-3 are good to about 1e-4 here; the hand-computed gradients differ from wrong ones by far more.
  const Scene base = hand_scene();
  auto out = run_stage(backend(), base, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const float h = 1e-3f;
  auto loss_at = [&](bool conf, size_t i, float delta) {
    Scene s = base;
    (conf ? s.data.conf : s.data.loc)[i] += delta;
    auto r = run_stage(backend(), s, Stage::forward);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->loss.total : std::nan("");
  };
  for (size_t i = 0; i < base.data.conf.size(); ++i)
    EXPECT_NEAR((loss_at(true, i, h) - loss_at(true, i, -h)) / (2 * h), out->grad_conf[i], 2e-3) << "conf " << i;
  for (size_t i = 0; i < base.data.loc.size(); ++i)
    EXPECT_NEAR((loss_at(false, i, h) - loss_at(false, i, -h)) / (2 * h), out->grad_loc[i], 2e-3) << "loc " << i;
}

// ---- N = 0 -----------------------------------------------------------------------------------------------

void expect_zero_loss_and_gradients(const BatchOutputs& out) {
  EXPECT_EQ(out.loss.num_positives, 0);
  EXPECT_EQ(out.loss.total, 0.0);
  EXPECT_EQ(out.loss.conf, 0.0);
  EXPECT_EQ(out.loss.loc, 0.0);
  // run_stage pre-fills gradients with NaN: each must have been overwritten with exactly 0.
  for (size_t i = 0; i < out.grad_conf.size(); ++i) ASSERT_EQ(out.grad_conf[i], 0.0f) << "grad_conf " << i;
  for (size_t i = 0; i < out.grad_loc.size(); ++i) ASSERT_EQ(out.grad_loc[i], 0.0f) << "grad_loc " << i;
}

TEST_P(Loss, BatchWithoutPositivesHasZeroLossAndGradients) {
  // Two images: one without ground truths, one whose only GT overlaps no prior (so it gets no forced match).
  Scene s;
  s.num_classes = 3;
  s.add_prior(strip_prior(0.0f, 0.25f));
  s.add_prior(strip_prior(0.25f, 0.5f));
  s.add_image({});
  s.add_image({{strip_box(0.5f, 1.0f), 1}});
  s.zero_predictions();
  s.logits(0, 1)[2] = 1e4f;  // extreme logits must not turn 0 / 0 into NaN
  s.logits(1, 0)[1] = -1e4f;
  s.loc(1, 1)[0] = 50.0f;
  auto out = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->positives, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(out->unmatched_ground_truths, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(out->mined_negatives, (std::vector<int32_t>{0, 0}));  // ratio * 0 = 0 and no minimum
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{0, 0, 0, 0}));
  expect_zero_loss_and_gradients(*out);

  // A minimum number of negatives selects some (K_b = min(max(2, 0), 2) = 2 per image), yet N = 0 still means
  // L = 0 and zero gradients.
  s.config.min_negatives_per_image = 2;
  auto with_min = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(with_min.ok()) << with_min.status().to_string();
  EXPECT_EQ(with_min->mined_negatives, (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(with_min->mined, (std::vector<uint8_t>{1, 1, 1, 1}));
  expect_zero_loss_and_gradients(*with_min);
}

// ---- hard negative mining --------------------------------------------------------------------------------

TEST_P(Loss, MiningCapsAtAvailableNegativesAndNeverCountsPositives) {
  // p0 [0, .5] and p1 [0, .25] are positives of g0 [0, .5] (IoU 1 forced, IoU .5 threshold); p2 [.5, .75],
  // p3 [.75, 1], p4 [.5, 1] only touch g0: negatives. P = 2, 3 * 2 = 6 > 3 negatives -> K = 3: all of them.
  Scene s;
  for (auto [a, b] : {std::pair{0.0f, 0.5f}, {0.0f, 0.25f}, {0.5f, 0.75f}, {0.75f, 1.0f}, {0.5f, 1.0f}})
    s.add_prior(strip_prior(a, b));
  s.add_image({{strip_box(0.0f, 0.5f), 1}});
  s.zero_predictions();
  // The positives are badly wrong (background logit 10, class logit -10): CE = logsumexp(10, -10) + 10
  // = 20 + log(1 + e^-20). Were positives ranked among negatives (torchvision's -inf trick fills the overflowing
  // quota with them), they would be the hardest and be counted a second time.
  for (int p : {0, 1}) s.logits(0, p)[0] = 10.0f, s.logits(0, p)[1] = -10.0f;
  auto out = run_stage(backend(), s, Stage::forward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{0, 0, kNegative, kNegative, kNegative}));
  EXPECT_EQ(out->mined_negatives, (std::vector<int32_t>{3}));
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{0, 0, 1, 1, 1}));
  // L_conf = 2 * CE_pos + 3 * log 2 (negatives have logits (0, 0)): each prior exactly once.
  const double ce_pos = 20.0 + std::log1p(std::exp(-20.0));
  EXPECT_NEAR(out->loss.conf_sum, 2 * ce_pos + 3 * std::log(2.0), 1e-5);
  EXPECT_NEAR(out->loss.conf, (2 * ce_pos + 3 * std::log(2.0)) / 2, 1e-5);
}

// p2 [.25, .5] is the positive of g0 [.25, .5]; p0 [0, .125], p1 [.125, .25], p3 [.5, .625], p4 [.625, .75],
// p5 [.75, 1] overlap it nowhere (at most a touching edge): five negatives around one positive.
Scene one_positive_five_negatives() {
  Scene s;
  for (auto [a, b] : {std::pair{0.0f, 0.125f}, {0.125f, 0.25f}, {0.25f, 0.5f}, {0.5f, 0.625f}, {0.625f, 0.75f},
                      {0.75f, 1.0f}})
    s.add_prior(strip_prior(a, b));
  s.add_image({{strip_box(0.25f, 0.5f), 1}});
  s.zero_predictions();
  return s;
}

TEST_P(Loss, EqualCrossEntropiesAreMinedLowestPriorFirst) {
  // Every logit 0: every CE is log 2. K = 3 * 1 = 3 of the 5 negatives: the three lowest indices p0, p1, p3.
  auto out = run_stage(backend(), one_positive_five_negatives(), Stage::forward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->matches, (std::vector<int32_t>{kNegative, kNegative, 0, kNegative, kNegative, kNegative}));
  EXPECT_EQ(out->mined_negatives, (std::vector<int32_t>{3}));
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{1, 1, 0, 1, 0, 0}));
  EXPECT_NEAR(out->loss.conf_sum, 4 * std::log(2.0), kTol);  // 1 positive + 3 negatives, each log 2
}

TEST_P(Loss, LargestCrossEntropiesAreMinedWithTiesByLowestPrior) {
  // Background CE of logits (b, f) is log(e^b + e^f) - b:
  //   p4, p5: (0, 3) -> log(1 + e^3) = 3.0486 (equal: p4 before p5)
  //   p0, p1: (0, 0) -> log 2 = .6931         (equal: p0 before p1)
  //   p3:     (2, 0) -> log(1 + e^-2) = .1269
  // K = 3: p4, p5, then p0.
  Scene s = one_positive_five_negatives();
  s.logits(0, 4)[1] = 3.0f;
  s.logits(0, 5)[1] = 3.0f;
  s.logits(0, 3)[0] = 2.0f;
  auto out = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->mined, (std::vector<uint8_t>{1, 0, 0, 0, 1, 1}));
  // L_conf = log 2 (positive) + 2 log(1 + e^3) + log 2.
  EXPECT_NEAR(out->loss.conf_sum, 2 * std::log(2.0) + 2 * std::log1p(std::exp(3.0)), kTol);
  // Unselected negatives p1, p3 get no gradient; the selected p0 gets softmax - onehot(0) = (.5 - 1, .5).
  EXPECT_EQ(out->grad_conf[1 * 2 + 0], 0.0f);
  EXPECT_EQ(out->grad_conf[3 * 2 + 1], 0.0f);
  EXPECT_NEAR(out->grad_conf[0 * 2 + 0], -0.5, kTol);
  EXPECT_NEAR(out->grad_conf[0 * 2 + 1], 0.5, kTol);
}

TEST_P(Loss, MinNegativesPerImageRaisesTheQuota) {
  // Image 0: the one-positive scene; image 1: no ground truths, six negatives. All logits 0 (all CE log 2).
  Scene s = one_positive_five_negatives();
  s.add_image({});
  s.zero_predictions();
  s.config.min_negatives_per_image = 2;
  // K_0 = min(max(2, 3 * 1), 5) = 3; K_1 = min(max(2, 0), 6) = 2, the lowest indices p0, p1.
  auto low = run_stage(backend(), s, Stage::forward);
  ASSERT_TRUE(low.ok()) << low.status().to_string();
  EXPECT_EQ(low->mined_negatives, (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(low->mined, (std::vector<uint8_t>{1, 1, 0, 1, 0, 0, /* image 1 */ 1, 1, 0, 0, 0, 0}));
  // N = 1 (image 1 has no positives but its mined negatives count): (1 + 3 + 2) log 2 / 1.
  EXPECT_NEAR(low->loss.total, 6 * std::log(2.0), kTol);

  // min 5: K_0 = min(max(5, 3), 5) = 5 (every negative), K_1 = min(max(5, 0), 6) = 5.
  s.config.min_negatives_per_image = 5;
  auto high = run_stage(backend(), s, Stage::forward);
  ASSERT_TRUE(high.ok()) << high.status().to_string();
  EXPECT_EQ(high->mined_negatives, (std::vector<int32_t>{5, 5}));
  EXPECT_EQ(high->mined, (std::vector<uint8_t>{1, 1, 0, 1, 1, 1, /* image 1 */ 1, 1, 1, 1, 1, 0}));
  EXPECT_NEAR(high->loss.total, 11 * std::log(2.0), kTol);

  // min 9 exceeds what image 1 has: capped at its 6 negatives.
  s.config.min_negatives_per_image = 9;
  auto capped = run_stage(backend(), s, Stage::forward);
  ASSERT_TRUE(capped.ok()) << capped.status().to_string();
  EXPECT_EQ(capped->mined_negatives, (std::vector<int32_t>{5, 6}));
}

// ---- stages ----------------------------------------------------------------------------------------------

TEST_P(Loss, MatchAndEncodeStagesNeedNoPredictions) {
  Scene s = hand_scene();
  auto plan = backend().prepare(s.shape(), s.priors, s.config);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  // Only the spans the match stage produces; everything else empty, predictions empty.
  std::vector<int32_t> matches(2, 99), forced(1, 99), positives(1, 99), unmatched(1, 99);
  OutputView view;
  view.matches = matches;
  view.forced_prior = forced;
  view.positives = positives;
  view.unmatched_ground_truths = unmatched;
  Status match = (*plan)->run(s.data.ground_truths(), PredictionView{}, Stage::match, view);
  ASSERT_TRUE(match.ok()) << match.to_string();
  EXPECT_EQ(matches, (std::vector<int32_t>{0, kNegative}));
  EXPECT_EQ(forced, (std::vector<int32_t>{0}));
  EXPECT_EQ(positives, (std::vector<int32_t>{1}));

  std::vector<float> targets(8, 99.0f);
  view.targets = targets;
  Status encode = (*plan)->run(s.data.ground_truths(), PredictionView{}, Stage::encode, view);
  ASSERT_TRUE(encode.ok()) << encode.to_string();
  EXPECT_NEAR(targets[0], 1.25f, 1e-6f);

  // The forward stage does need them, and says which one is missing.
  LossTerms loss;
  std::vector<uint8_t> mined(2);
  std::vector<int32_t> mined_negatives(1);
  view.mined = mined;
  view.mined_negatives = mined_negatives;
  view.loss = &loss;
  Status forward = (*plan)->run(s.data.ground_truths(), PredictionView{}, Stage::forward, view);
  EXPECT_EQ(forward.code(), ErrorCode::shape_mismatch);
  EXPECT_NE(forward.message().find("conf holds 0 floats"), std::string::npos) << forward.message();
}

TEST_P(Loss, StagesAreCumulative) {
  const Scene s = hand_scene();
  auto match = run_stage(backend(), s, Stage::match);
  auto encode = run_stage(backend(), s, Stage::encode);
  auto forward = run_stage(backend(), s, Stage::forward);
  auto backward = run_stage(backend(), s, Stage::backward);
  ASSERT_TRUE(match.ok() && encode.ok() && forward.ok() && backward.ok());
  for (const BatchOutputs* later : {&*encode, &*forward, &*backward}) {
    EXPECT_EQ(later->matches, match->matches);
    EXPECT_EQ(later->forced_prior, match->forced_prior);
    EXPECT_EQ(later->positives, match->positives);
    EXPECT_EQ(later->unmatched_ground_truths, match->unmatched_ground_truths);
  }
  EXPECT_EQ(forward->targets, encode->targets);
  EXPECT_EQ(backward->targets, encode->targets);
  EXPECT_EQ(backward->mined, forward->mined);
  EXPECT_EQ(backward->mined_negatives, forward->mined_negatives);
  EXPECT_EQ(backward->loss.total, forward->loss.total);
  EXPECT_EQ(backward->loss.conf_sum, forward->loss.conf_sum);
  EXPECT_EQ(backward->loss.loc_sum, forward->loss.loc_sum);
}

TEST_P(Loss, PlanIsReusableAcrossBatchesAndDeterministic) {
  // One plan, run on a batch, then on a different (smaller) ground-truth set, then on the first again.
  Scene s = hand_scene();
  s.data.gt_labels.clear();
  s.data.gt_boxes.clear();
  s.data.gt_offsets = {0};
  s.add_image({{strip_box(0.0625f, 0.5625f), 2}, {strip_box(0.5f, 1.0f), 1}});
  ProblemShape shape = s.shape();
  auto plan = backend().prepare(shape, s.priors, s.config);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs first(shape, 2), again(shape, 2);
  ASSERT_TRUE((*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::backward, first.view()).ok());

  const Scene single = hand_scene();  // one GT: fewer than the plan's capacity of two
  BatchOutputs other(shape, 1);
  ASSERT_TRUE((*plan)->run(single.data.ground_truths(), single.data.predictions(), Stage::backward, other.view()).ok());
  EXPECT_NEAR(other.loss.total, std::log(8.0) + 1.75, kTol);

  ASSERT_TRUE((*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::backward, again.view()).ok());
  EXPECT_EQ(again.matches, first.matches);
  EXPECT_EQ(again.mined, first.mined);
  EXPECT_EQ(again.loss.total, first.loss.total);
  EXPECT_EQ(again.grad_conf, first.grad_conf);
  EXPECT_EQ(again.grad_loc, first.grad_loc);
  // With the second GT [.5, 1] = p1 exactly, both priors are positive: label 1 on p1.
  EXPECT_EQ(first.matches, (std::vector<int32_t>{0, 1}));
}

MULTIBOX_INSTANTIATE_ALL_BACKENDS(Loss);

}  // namespace
}  // namespace multibox
