// The comparator's resolution at the sizes it judges in practice: ssd300-coco (B = 32) and coco128 (B = 128) at their
// full batch, where every gradient element is O(1/N). Small systematic errors planted in the reference's own outputs
// must be FAILED, naming the quantity, while the honest backends PASS; the tolerances whose effect grows with the batch
// are pinned from both sides here (compare_test.cpp pins the rest on a hand-made batch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <set>
#include <string>

#include <fmt/format.h>

#include "compare_test.hpp"
#include "core/math.hpp"
#include "multibox/compare.hpp"
#include "multibox/registry.hpp"
#include "multibox/workloads.hpp"

namespace multibox {
namespace {

using namespace compare_test;

BatchOutputs run_backward(const Backend& backend, const Workload& w) {
  auto plan = backend.prepare(w.shape, w.priors, w.config);
  EXPECT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(w.shape, static_cast<int>(w.data.gt_labels.size()));
  if (plan.ok()) {
    const Status s = (*plan)->run(w.data.ground_truths(), w.data.predictions(), Stage::backward, out.view());
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  return out;
}

class CompareResolution : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "coco128") {
      if (auto path = find_coco_json(); !path) GTEST_SKIP() << "COCO128 annotations absent: " << path.status().message();
    }
    auto w = make_workload(GetParam());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    w_ = std::move(w).value();
    reference_ = run_backward(reference_backend(), w_);
    ASSERT_GT(reference_.loss.num_positives, 1000) << "a realistic batch: every gradient element is below 1e-3";
  }

  AgreementReport compare(const BatchOutputs& candidate) const {
    return compare_outputs(w_.shape, w_.config, w_.data.ground_truths(), w_.data.predictions(), Stage::backward,
                           reference_, candidate);
  }

  // Every quantity of `report` is PASSED except those in `failed`, which are FAILED.
  static void expect_failed_exactly(const AgreementReport& report, std::initializer_list<const char*> failed,
                                    const std::string& plant) {
    const std::set<std::string> expected(failed.begin(), failed.end());
    for (const QuantityVerdict& q : report.quantities)
      EXPECT_EQ(q.verdict, expected.count(q.quantity) ? Verdict::failed : Verdict::passed)
          << plant << ": " << q.quantity << "\n" << report.to_string();
    for (const std::string& name : expected) find(report, name);  // each must be in the report
  }

  int64_t n() const { return reference_.loss.num_positives; }
  int priors() const { return w_.shape.num_priors; }
  int classes() const { return w_.shape.num_classes; }

  Workload w_;
  BatchOutputs reference_;
};

TEST_P(CompareResolution, HonestBackendsPass) {
  for (const Backend* backend : all_backends()) {
    if (!backend->available()) continue;
    const AgreementReport report = compare(run_backward(*backend, w_));
    EXPECT_EQ(report.overall(), Verdict::passed) << backend->name() << "\n" << report.to_string();
    // The measured margins (each "worst at" names the element closest to its allowance, and the allowance).
    for (const char* quantity : {"grad_conf", "grad_loc", "targets", "loss.total"})
      std::printf("[ margin   ] %s N=%lld %s %s: %s\n", GetParam(), static_cast<long long>(n()),
                  std::string(backend->name()).c_str(), quantity, find(report, quantity).detail.c_str());
  }
}

TEST_P(CompareResolution, EveryGradientOffBy1e4Fails) {
  {
    BatchOutputs c = reference_;
    for (float& g : c.grad_conf) g *= 1.0f + 1e-4f;
    expect_failed_exactly(compare(c), {"grad_conf"}, "grad_conf x (1 + 1e-4)");
  }
  BatchOutputs c = reference_;
  for (float& g : c.grad_loc) g *= 1.0f + 1e-4f;
  expect_failed_exactly(compare(c), {"grad_loc"}, "grad_loc x (1 + 1e-4)");
}

TEST_P(CompareResolution, OneImagesGradientsOffBy1e3Fail) {
  int image = w_.shape.batch / 2;
  while (image < w_.shape.batch && reference_.positives[image] == 0) ++image;
  ASSERT_LT(image, w_.shape.batch);
  BatchOutputs c = reference_;
  const size_t conf_row = static_cast<size_t>(image) * priors() * classes(), loc_row = static_cast<size_t>(image) * priors() * 4;
  for (size_t i = conf_row; i < conf_row + static_cast<size_t>(priors()) * classes(); ++i) c.grad_conf[i] *= 1.0f + 1e-3f;
  for (size_t i = loc_row; i < loc_row + static_cast<size_t>(priors()) * 4; ++i) c.grad_loc[i] *= 1.0f + 1e-3f;
  const AgreementReport report = compare(c);
  expect_failed_exactly(report, {"grad_conf", "grad_loc"}, fmt::format("image {}'s gradients x (1 + 1e-3)", image));
  for (const char* quantity : {"grad_conf", "grad_loc"}) {
    const QuantityVerdict q = find(report, quantity);
    EXPECT_NE(q.detail.find(fmt::format("image {},", image)), std::string::npos) << q.detail;
  }
}

TEST_P(CompareResolution, NOffByOneFails) {
  {
    BatchOutputs c = reference_;
    c.loss.num_positives += 1;
    expect_failed_exactly(compare(c), {"loss.N"}, "N reported one too large");
  }
  // Normalised by N + 1 while reporting N: every normalised output shrinks by 1/(N + 1), 2e-4 at coco128's N.
  BatchOutputs c = reference_;
  const double shrink = static_cast<double>(n()) / static_cast<double>(n() + 1);
  for (double* term : {&c.loss.total, &c.loss.conf, &c.loss.loc}) *term *= shrink;
  for (float& g : c.grad_conf) g = static_cast<float>(g * shrink);
  for (float& g : c.grad_loc) g = static_cast<float>(g * shrink);
  expect_failed_exactly(compare(c), {"loss.total", "loss.conf", "loss.loc", "grad_conf", "grad_loc"},
                        "normalised by N + 1");
}

// The y-centre offset of every positive divided by the size variance instead of the centre one.
TEST_P(CompareResolution, VariancesSwappedOnOneCoordinateFail) {
  BatchOutputs c = reference_;
  for (size_t i = 0; i < c.matches.size(); ++i)
    if (c.matches[i] >= 0) c.targets[i * 4 + 1] *= w_.config.variance_xy / w_.config.variance_wh;
  const AgreementReport report = compare(c);
  expect_failed_exactly(report, {"targets"}, "coordinate 1 encoded with variance_wh");
  const QuantityVerdict q = find(report, "targets");
  EXPECT_NE(q.detail.find("coord 1"), std::string::npos) << q.detail;
}

// One image's K_b-th hardest negative swapped for an unselected one whose CE is 1e-3 (relative) lower: well beyond
// the near-tie band, yet with consistent gradient rows and loss it moves conf_sum by less than 1e-7 relative, so only
// the mining rule can see it.
TEST_P(CompareResolution, NegativeBeyondTheNearTieBandFails) {
  const int P = priors(), C = classes();
  auto ce = [&](size_t row) {
    const float* x = &w_.data.conf[row * C];
    return core::logsumexp<double>(x, C) - static_cast<double>(x[0]);
  };
  size_t dropped = 0, added = 0;
  double gap = 0;
  for (int b = 0; b < w_.shape.batch && added == 0; ++b) {
    const size_t base = static_cast<size_t>(b) * P;
    double ce_k = std::numeric_limits<double>::infinity();
    for (int p = 0; p < P; ++p)
      if (reference_.mined[base + p] && ce(base + p) < ce_k) ce_k = ce(base + p), dropped = base + p;
    if (!std::isfinite(ce_k)) continue;
    for (int p = 0; p < P && added == 0; ++p) {
      if (reference_.matches[base + p] != kNegative || reference_.mined[base + p]) continue;
      gap = (ce_k - ce(base + p)) / std::max(1.0, ce_k);
      if (gap >= 1e-3 && gap < 2e-3) added = base + p;
    }
  }
  ASSERT_NE(added, 0u) << "no unselected negative 1e-3 below an image's K_b-th CE";
  BatchOutputs c = reference_;
  c.mined[dropped] = 0;
  c.mined[added] = 1;
  std::fill_n(c.grad_conf.begin() + static_cast<ptrdiff_t>(dropped * C), C, 0.0f);
  write_mined_gradient_row(std::span<const float>(w_.data.conf).subspan(added * C, C), n(),
                           std::span<float>(c.grad_conf).subspan(added * C, C));
  c.loss.conf_sum += ce(added) - ce(dropped);
  c.loss.conf = c.loss.conf_sum / static_cast<double>(n());
  c.loss.total = (c.loss.conf_sum + w_.config.alpha * c.loss.loc_sum) / static_cast<double>(n());
  const AgreementReport report = compare(c);
  expect_failed_exactly(report, {"mined"}, fmt::format("relative CE gap {:.3g}", gap));
  const QuantityVerdict q = find(report, "mined");
  EXPECT_NE(q.detail.find(fmt::format("image {}, prior {}", added / P, added % P)), std::string::npos) << q.detail;
}

TEST_P(CompareResolution, LossTotalOffBy1e4Fails) {
  BatchOutputs c = reference_;
  c.loss.total *= 1 + 1e-4;
  expect_failed_exactly(compare(c), {"loss.total"}, "loss.total x (1 + 1e-4)");
}

// Pins of the elementwise tolerances at this N: the reference's largest element, off by just under what the documented
// |c - r| <= floor + rel |r| allows and by a few times that, and likewise an element the reference leaves at 0. A
// comparator ten times looser on the relative tolerance or on the floor passes one of the FAILED plants. Each round
// plants one element per quantity, so every verdict is attributable to its plant.
TEST_P(CompareResolution, ElementwiseTolerancesArePinnedFromBothSides) {
  struct Quantity {
    const char* name;
    std::vector<float> BatchOutputs::*values;
    double floor;
    double rel;
  };
  const double grad_floor = kSpecGradFloorTimesN / static_cast<double>(n());
  const Quantity quantities[] = {
      {"grad_conf", &BatchOutputs::grad_conf, grad_floor, kSpecGradRel},
      {"grad_loc", &BatchOutputs::grad_loc, grad_floor * w_.config.alpha, kSpecGradRel},
      {"targets", &BatchOutputs::targets, kSpecTargetAbs, kSpecTargetRel},
  };
  for (const bool at_largest : {true, false}) {
    for (const double size : {kJustInside, kFewTimesOutside}) {
      BatchOutputs c = reference_;
      std::string plants;
      for (const Quantity& quantity : quantities) {
        const std::vector<float>& r = reference_.*quantity.values;
        const auto by_magnitude = [](float a, float b) { return std::abs(a) < std::abs(b); };
        const size_t i = static_cast<size_t>(
            (at_largest ? std::max_element(r.begin(), r.end(), by_magnitude) : std::find(r.begin(), r.end(), 0.0f)) -
            r.begin());
        ASSERT_LT(i, r.size()) << quantity.name;
        if (at_largest) {
          ASSERT_GT(quantity.rel * std::abs(r[i]), 10 * quantity.floor) << quantity.name << ": the relative part decides";
        }
        const double allowed = quantity.floor + quantity.rel * std::abs(r[i]);
        (c.*quantity.values)[i] = static_cast<float>(r[i] + std::copysign(size * allowed, r[i]));
        plants += fmt::format(" {}[{}] = {:.9g} off by {} x {:.3g};", quantity.name, i, r[i], size, allowed);
      }
      const AgreementReport report = compare(c);
      for (const Quantity& quantity : quantities) {
        const QuantityVerdict q = find(report, quantity.name);
        EXPECT_EQ(q.verdict, size < 1 ? Verdict::passed : Verdict::failed) << plants << "\n" << report.to_string();
      }
    }
  }
}

// kLossRelTol at this size, where the per-term floors are far below it. The five terms are judged apart, so one round
// plants all five.
TEST_P(CompareResolution, LossToleranceIsPinnedFromBothSides) {
  struct Term {
    const char* name;
    double LossTerms::*value;
    double terms;  // how many CEs or smooth-L1 coordinates it adds, over N for the normalised ones
  };
  double conf_terms = static_cast<double>(n());
  for (int32_t k : reference_.mined_negatives) conf_terms += k;
  const double loc_terms = 4.0 * static_cast<double>(n()), N = static_cast<double>(n());
  const Term terms[] = {{"loss.total", &LossTerms::total, (conf_terms + loc_terms) / N},
                        {"loss.conf", &LossTerms::conf, conf_terms / N},
                        {"loss.loc", &LossTerms::loc, loc_terms / N},
                        {"loss.conf_sum", &LossTerms::conf_sum, conf_terms},
                        {"loss.loc_sum", &LossTerms::loc_sum, loc_terms}};
  for (const double size : {kJustInside, kFewTimesOutside}) {
    BatchOutputs c = reference_;
    for (const Term& term : terms) {
      ASSERT_GT(kSpecLossRel * reference_.loss.*term.value, 10 * kSpecLossAbsPerTerm * term.terms) << term.name;
      c.loss.*term.value *= 1 + size * kSpecLossRel;
    }
    const AgreementReport report = compare(c);
    for (const Term& term : terms)
      EXPECT_EQ(find(report, term.name).verdict, size < 1 ? Verdict::passed : Verdict::failed)
          << term.name << " off by " << size << " x 1e-5 relative\n" << report.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(FullBatch, CompareResolution, ::testing::Values("ssd300-coco", "coco128"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace multibox
