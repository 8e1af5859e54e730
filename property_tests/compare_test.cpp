// Tests of the agreement comparator itself (benchdnn self/compare.cpp style): a judge that cannot say FAILED or
// MISTRUSTED would let every backend through, so each verdict is provoked on purpose here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "compare_test.hpp"
#include "core/math.hpp"
#include "multibox/compare.hpp"
#include "multibox/multibox.hpp"

namespace multibox {
namespace compare_test {

// By value: callers pass temporaries straight from compare().
QuantityVerdict find(const AgreementReport& report, const std::string& quantity) {
  for (const QuantityVerdict& q : report.quantities)
    if (q.quantity == quantity) return q;
  ADD_FAILURE() << "no quantity '" << quantity << "' in report:\n" << report.to_string();
  return {};
}

void write_mined_gradient_row(std::span<const float> logits, int64_t num_positives, std::span<float> row) {
  const double lse = core::logsumexp<double>(logits.data(), static_cast<int>(logits.size()));
  for (size_t c = 0; c < logits.size(); ++c)
    row[c] = static_cast<float>((std::exp(static_cast<double>(logits[c]) - lse) - (c == 0 ? 1.0 : 0.0)) /
                                static_cast<double>(num_positives));
}

}  // namespace compare_test

namespace {

using namespace compare_test;

// One image on a 4x4 grid of 0.3-wide priors (neighbours overlap by IoU ~0.09, so only the prior equal to the
// ground truth is positive), three classes, and logits chosen so the negatives' cross-entropies are known:
// row (0, x, 0) of a negative has CE = log(2 + e^x).
struct Fixture {
  ProblemShape shape{1, 16, 3, 4};
  Config config;
  std::vector<float> priors;
  BatchData data;
  BatchOutputs reference;

  explicit Fixture(bool with_ground_truth = true) {
    priors = grid_priors(4, 4, {0.3f}, {1.0f}).value();
    if (with_ground_truth) {
      const float* p = &priors[5 * 4];  // ground truth equal to prior 5
      data.gt_boxes = {p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2};
      data.gt_labels = {2};
      data.gt_offsets = {0, 1};
    } else {
      data.gt_offsets = {0, 0};
    }
    data.conf.assign(16 * 3, 0.0f);
    data.loc.assign(16 * 4, 0.0f);
    set_x(0, 5.0f);
    set_x(1, 4.0f);
    set_x(2, 3.0f);
    set_x(3, 3.000001f);  // CE above prior 2's by ~1e-6 relative: a near-tie
    for (int p = 0; p < 16; ++p) data.loc[p * 4] = 0.1f * static_cast<float>(p % 5) - 0.2f;
    reference = run(data);
  }

  void set_x(int prior, float x) { data.conf[prior * 3 + 1] = x; }

  BatchOutputs run(const BatchData& d) const {
    auto plan = reference_backend().prepare(shape, priors, config);
    EXPECT_TRUE(plan.ok()) << plan.status().to_string();
    BatchOutputs out(shape, static_cast<int>(d.gt_labels.size()));
    const Status s = (*plan)->run(d.ground_truths(), d.predictions(), Stage::backward, out.view());
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }

  AgreementReport compare(const BatchOutputs& candidate) const {
    return compare_outputs(shape, config, data.ground_truths(), data.predictions(), Stage::backward, reference,
                           candidate);
  }
};

TEST(Compare, FixtureHasWhatTheTestsAssume) {
  Fixture f;
  ASSERT_EQ(f.reference.positives[0], 1);
  ASSERT_EQ(f.reference.matches[5], 0);
  ASSERT_EQ(f.reference.mined_negatives[0], 3);
  EXPECT_EQ(f.reference.mined[0], 1);
  EXPECT_EQ(f.reference.mined[1], 1);
  EXPECT_EQ(f.reference.mined[3], 1);  // the near-tie partner with the slightly larger CE wins
  EXPECT_EQ(f.reference.mined[2], 0);
}

TEST(Compare, IdenticalOutputsPass) {
  Fixture f;
  const AgreementReport report = f.compare(f.reference);
  EXPECT_EQ(report.overall(), Verdict::passed) << report.to_string();
  EXPECT_NE(report.to_string().find("PASSED"), std::string::npos);
}

TEST(Compare, DifferencesWithinTolerancePass) {
  Fixture f;
  BatchOutputs c = f.reference;
  for (float& g : c.grad_conf) g *= 1.0f + 2e-6f;
  for (float& g : c.grad_loc) g = std::nextafter(g, 1.0f);
  for (float& t : c.targets) t = std::nextafter(t, -1.0f);
  c.loss.total *= 1 + 3e-6;
  c.loss.conf_sum *= 1 - 3e-6;
  const AgreementReport report = f.compare(c);
  EXPECT_EQ(report.overall(), Verdict::passed) << report.to_string();
}

TEST(Compare, GradientOutsideToleranceFailsAndNamesTheElement) {
  Fixture f;
  BatchOutputs c = f.reference;
  const size_t i = (5 * 3) + 2;  // image 0, prior 5, class 2 (the positive's label)
  ASSERT_NE(c.grad_conf[i], 0.0f);
  c.grad_conf[i] *= 1.001f;
  const AgreementReport report = f.compare(c);
  EXPECT_EQ(report.overall(), Verdict::failed);
  const QuantityVerdict q = find(report, "grad_conf");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_EQ(q.mismatches, 1u);
  EXPECT_NE(q.detail.find("image 0, prior 5, class 2"), std::string::npos) << q.detail;
  EXPECT_NEAR(q.worst_error, 1e-3, 1e-5);
}

// Targets computed from priors rebuilt out of float32 corners (torchvision's BoxCoder) drift by a few ulps of a
// coordinate divided by variance x prior side. Prior 5 is 0.3 wide, so with var_xy = 0.1 one coordinate ulp of 1.0
// (1.19e-7) moves dx by 1.19e-7 / 0.03 = 4.0e-6: outside kTargetAbsTol + kTargetRelTol |t| for a target near 0,
// inside the allowance of 4 ulps / 0.03 = 1.6e-5 granted when the comparator is given the priors.
TEST(Compare, PriorRoundTripDriftNeedsThePriorsAllowance) {
  Fixture f;
  BatchOutputs c = f.reference;
  const size_t dx = 5 * 4;
  c.targets[dx] = static_cast<float>(c.targets[dx] + 0x1p-23 / (0.1 * 0.3));
  const AgreementReport strict = f.compare(c);
  EXPECT_EQ(find(strict, "targets").verdict, Verdict::failed) << strict.to_string();
  const AgreementReport lenient = compare_outputs(f.shape, f.config, f.data.ground_truths(), f.data.predictions(),
                                                  Stage::backward, f.reference, c, CompareOptions{f.priors});
  EXPECT_EQ(find(lenient, "targets").verdict, Verdict::passed) << lenient.to_string();
  // Beyond the allowance it fails even with the priors given, naming the element.
  c.targets[dx] = static_cast<float>(f.reference.targets[dx] + 8 * 0x1p-23 / (0.1 * 0.3));
  const AgreementReport beyond = compare_outputs(f.shape, f.config, f.data.ground_truths(), f.data.predictions(),
                                                 Stage::backward, f.reference, c, CompareOptions{f.priors});
  const QuantityVerdict q = find(beyond, "targets");
  EXPECT_EQ(q.verdict, Verdict::failed) << beyond.to_string();
  EXPECT_NE(q.detail.find("image 0, prior 5, coord 0"), std::string::npos) << q.detail;
}

TEST(Compare, LossOutsideToleranceFails) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.loss.loc *= 1 + 1e-4;
  const AgreementReport report = f.compare(c);
  EXPECT_EQ(find(report, "loss.loc").verdict, Verdict::failed);
  EXPECT_EQ(find(report, "loss.total").verdict, Verdict::passed);
  EXPECT_EQ(report.overall(), Verdict::failed);
}

// A total near 0 is judged by an absolute floor per term instead: here 1e-7 for each of the 4 CEs (1 positive, 3
// mined negatives), so just under 4e-7 off a reference of exactly 0 passes and a few times that fails.
TEST(Compare, LossNearZeroHasAnAbsoluteFloorPerTerm) {
  Fixture f;
  f.reference.loss.conf_sum = 0.0;
  BatchOutputs c = f.reference;
  const double floor = 4 * kSpecLossAbsPerTerm;
  c.loss.conf_sum = kJustInside * floor;
  EXPECT_EQ(find(f.compare(c), "loss.conf_sum").verdict, Verdict::passed);
  c.loss.conf_sum = kFewTimesOutside * floor;
  EXPECT_EQ(find(f.compare(c), "loss.conf_sum").verdict, Verdict::failed);
}

// The absolute floors at N = 1, where the gradient's scale 1/N is 1: an element the reference leaves at 0 (prior 10
// is neither positive nor mined) may be off by just under 4 ulps of 1.0, not by a few times that; a zero target
// (prior 7 is not positive) by just under 1e-6.
TEST(Compare, AbsoluteFloorsArePinnedFromBothSides) {
  Fixture f;
  ASSERT_EQ(f.reference.loss.num_positives, 1);
  struct Plant {
    const char* quantity;
    std::vector<float> BatchOutputs::*values;
    size_t index;
    double floor;
  };
  for (const Plant& plant : {Plant{"grad_conf", &BatchOutputs::grad_conf, 10 * 3 + 1, kSpecGradFloorTimesN},
                             Plant{"grad_loc", &BatchOutputs::grad_loc, 7 * 4 + 2, kSpecGradFloorTimesN},
                             Plant{"targets", &BatchOutputs::targets, 7 * 4 + 0, kSpecTargetAbs}}) {
    ASSERT_EQ((f.reference.*plant.values)[plant.index], 0.0f) << plant.quantity;
    for (const double size : {kJustInside, kFewTimesOutside}) {
      BatchOutputs c = f.reference;
      (c.*plant.values)[plant.index] = static_cast<float>(size * plant.floor);
      const QuantityVerdict q = find(f.compare(c), plant.quantity);
      EXPECT_EQ(q.verdict, size < 1 ? Verdict::passed : Verdict::failed)
          << plant.quantity << " off by " << size << " x its floor: " << q.detail;
    }
  }
}

TEST(Compare, NaNInCandidateFails) {
  Fixture f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  {
    BatchOutputs c = f.reference;
    c.grad_loc[7 * 4 + 1] = nan;  // a non-positive: the reference has 0 there
    const QuantityVerdict q = find(f.compare(c), "grad_loc");
    EXPECT_EQ(q.verdict, Verdict::failed);
    EXPECT_NE(q.detail.find("image 0, prior 7, coord 1"), std::string::npos) << q.detail;
  }
  {
    BatchOutputs c = f.reference;
    c.loss.total = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(find(f.compare(c), "loss.total").verdict, Verdict::failed);
  }
  {
    BatchOutputs c = f.reference;
    c.targets[5 * 4 + 3] = nan;
    EXPECT_EQ(find(f.compare(c), "targets").verdict, Verdict::failed);
  }
}

TEST(Compare, MatchMismatchFailsExactly) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.matches[9] = kIgnored;
  const QuantityVerdict q = find(f.compare(c), "matches");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_NE(q.detail.find("image 0, prior 9: reference -1, candidate -2"), std::string::npos) << q.detail;

  BatchOutputs d = f.reference;
  d.mined_negatives[0] = 4;
  EXPECT_EQ(find(f.compare(d), "mined_negatives").verdict, Verdict::failed);
  BatchOutputs e = f.reference;
  e.forced_prior[0] = 6;
  const QuantityVerdict fq = find(f.compare(e), "forced_prior");
  EXPECT_EQ(fq.verdict, Verdict::failed);
  EXPECT_NE(fq.detail.find("image 0, ground truth 0"), std::string::npos) << fq.detail;
}

TEST(Compare, SizeMismatchFails) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.grad_conf.pop_back();
  EXPECT_EQ(find(f.compare(c), "grad_conf").verdict, Verdict::failed);
}

// The gradient row a correct backend writes for prior `p` of image 0 when it mines it (a negative: target 0).
void write_mined_gradient_row(const Fixture& f, BatchOutputs& out, int p) {
  compare_test::write_mined_gradient_row(std::span<const float>(f.data.conf).subspan(p * 3, 3), out.loss.num_positives,
                                         std::span<float>(out.grad_conf).subspan(p * 3, 3));
}

TEST(Compare, NearTieSwapInMinedSetIsAccepted) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.mined[3] = 0;  // drop the reference's pick ...
  c.mined[2] = 1;  // ... for its near-tie partner (CE within ~1e-6 relative)
  // ... and write the gradients that selection implies: the swapped rows are checked against them.
  std::fill_n(c.grad_conf.begin() + 3 * 3, 3, 0.0f);
  write_mined_gradient_row(f, c, 2);
  const AgreementReport report = f.compare(c);
  const QuantityVerdict q = find(report, "mined");
  EXPECT_EQ(q.verdict, Verdict::passed) << q.detail;
  EXPECT_NE(q.detail.find("near-tie"), std::string::npos) << q.detail;
  EXPECT_GT(q.worst_error, 0.0);
  EXPECT_LE(q.worst_error, kMiningTieRelEps);
  EXPECT_EQ(report.overall(), Verdict::passed) << report.to_string();
}

TEST(Compare, NearTieSwapWithGradientsOfTheOtherSelectionIsRejected) {
  // Accepting the swap does not excuse gradients that belong to the reference's selection.
  Fixture f;
  BatchOutputs c = f.reference;
  c.mined[3] = 0;
  c.mined[2] = 1;
  const AgreementReport report = f.compare(c);
  EXPECT_EQ(find(report, "mined").verdict, Verdict::passed);
  const QuantityVerdict q = find(report, "grad_conf");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_GE(q.mismatches, 4u);  // rows 2 and 3, every class with a non-negligible softmax
  EXPECT_NE(q.detail.find("image 0, prior 3"), std::string::npos) << q.detail;  // the dropped row: ~-1/N vs 0
}

// The near-tie band from both sides: prior 2's logit is set so that its CE lies `gap` (relative to max(1, CE_K))
// below prior 3's, the K_b-th largest. Selecting prior 2 instead is a near-tie just inside the band and a wrong
// selection a few times outside it.
TEST(Compare, MiningNearTieBandIsPinnedFromBothSides) {
  for (const double size : {kJustInside, kFewTimesOutside}) {
    Fixture f;
    const double gap = size * kSpecMiningTieBand;
    const double ce_k = std::log(2 + std::exp(static_cast<double>(f.data.conf[3 * 3 + 1])));
    f.set_x(2, static_cast<float>(std::log(std::exp(ce_k - gap * std::max(1.0, ce_k)) - 2)));
    f.reference = f.run(f.data);
    ASSERT_EQ(f.reference.mined[3], 1);
    ASSERT_EQ(f.reference.mined[2], 0);
    BatchOutputs c = f.reference;
    c.mined[3] = 0;
    c.mined[2] = 1;
    const QuantityVerdict q = find(f.compare(c), "mined");
    EXPECT_EQ(q.verdict, size < 1 ? Verdict::passed : Verdict::failed) << "relative CE gap " << gap << ": " << q.detail;
    EXPECT_NEAR(q.worst_error, gap, 1e-7);
  }
}

TEST(Compare, NonTieSwapInMinedSetIsRejected) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.mined[3] = 0;
  c.mined[10] = 1;  // CE log(3) ~ 1.1, far below the K_b-th largest (~3.1)
  const QuantityVerdict q = find(f.compare(c), "mined");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_NE(q.detail.find("image 0, prior 10"), std::string::npos) << q.detail;
}

TEST(Compare, DroppingAClearlyHarderNegativeIsRejected) {
  // Equal counts and an added near-tie prior do not excuse dropping prior 0, whose CE (~5) is far above the cut.
  Fixture f;
  BatchOutputs c = f.reference;
  c.mined[0] = 0;
  c.mined[2] = 1;
  const QuantityVerdict q = find(f.compare(c), "mined");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_NE(q.detail.find("dropped"), std::string::npos) << q.detail;
}

TEST(Compare, SelectingAPositiveIsRejected) {
  Fixture f;
  BatchOutputs c = f.reference;
  c.mined[3] = 0;
  c.mined[5] = 1;
  const QuantityVerdict q = find(f.compare(c), "mined");
  EXPECT_EQ(q.verdict, Verdict::failed);
  EXPECT_NE(q.detail.find("positive"), std::string::npos) << q.detail;
}

TEST(Compare, NoPositivesInTheBatchIsMistrusted) {
  Fixture f(/*with_ground_truth=*/false);
  ASSERT_EQ(f.reference.positives[0], 0);
  const AgreementReport report = f.compare(f.reference);
  EXPECT_EQ(report.overall(), Verdict::mistrusted) << report.to_string();
  EXPECT_EQ(find(report, "loss.total").verdict, Verdict::mistrusted);
  EXPECT_EQ(find(report, "grad_conf").verdict, Verdict::mistrusted);
  EXPECT_NE(report.to_string().find("MISTRUSTED"), std::string::npos);
}

TEST(Compare, FailureBeatsMistrust) {
  // Without positives a candidate that still reports a loss is wrong, not merely unproven.
  Fixture f(/*with_ground_truth=*/false);
  BatchOutputs c = f.reference;
  c.loss.total = 0.5;
  c.grad_conf[0] = 0.25f;
  const AgreementReport report = f.compare(c);
  EXPECT_EQ(report.overall(), Verdict::failed) << report.to_string();
  EXPECT_EQ(find(report, "grad_conf").verdict, Verdict::failed);
}

}  // namespace
}  // namespace multibox
