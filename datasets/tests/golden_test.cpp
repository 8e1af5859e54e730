// Every registered backend, in argmax mode, against torchvision's own SSD loss on the committed golden cases
// (datasets/golden/cases/*/torchvision, made by make_golden.py; no torch needed here). Where DESIGN.md section 7
// says the two agree, they must agree under the section 6 rules; on the cases built to hit a documented difference,
// the difference must be exactly the documented one and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/math.hpp"
#include "multibox/case_file.hpp"
#include "multibox/compare.hpp"
#include "multibox/npy.hpp"
#include "multibox/registry.hpp"

namespace multibox {
namespace {

namespace fs = std::filesystem;

const fs::path kCasesDir = fs::path(MULTIBOX_GOLDEN_DIR) / "cases";

enum class Kind {
  clean,       // none of the documented differences: must agree
  conflict,    // two ground truths share their argmax prior: argmax mode agrees; bipartite differs only there
  overflow,    // 3 * P_b exceeds the negatives: torchvision counts some positives' CE a second time
  no_overlap,  // a ground truth overlaps no prior: torchvision forces prior 0 onto it
};

struct GoldenCase {
  const char* name;
  Kind kind;
};

// gtest prints parameters with this (instead of their bytes).
void PrintTo(const GoldenCase& g, std::ostream* os) { *os << g.name; }

// Must list exactly the folders under datasets/golden/cases (checked below), so a new case cannot go unchecked.
constexpr GoldenCase kGoldenCases[] = {
    {"tutorial-random", Kind::clean},  {"tutorial-extreme", Kind::clean}, {"ssd300-voc-trained", Kind::clean},
    {"coco128-tutorial", Kind::clean}, {"conflict", Kind::conflict},      {"overflow", Kind::overflow},
    {"no-overlap", Kind::no_overlap},
};

struct Golden {
  Case c;
  BatchOutputs tv;                    // torchvision's answers in our output layout
  std::vector<uint8_t> selected;      // torchvision's own selection mask (may include positives)
  std::vector<int32_t> argmax_prior;  // each GT's argmax prior before conflicts
};

Golden load_golden(const std::string& name) {
  Golden g;
  const fs::path dir = kCasesDir / name;
  auto c = read_case(dir);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  if (!c.ok()) return g;
  g.c = std::move(c).value();
  auto tv = read_outputs(dir / "torchvision", g.c);
  EXPECT_TRUE(tv.ok()) << tv.status().to_string();
  if (!tv.ok()) return g;
  EXPECT_EQ(tv->complete_stage(), std::optional<Stage>(Stage::backward)) << name << ": torchvision outputs incomplete";
  g.tv = std::move(tv->outputs);
  const int64_t B = g.c.shape.batch, P = g.c.shape.num_priors, G = static_cast<int64_t>(g.c.data.gt_labels.size());
  auto selected = npy::read_as<uint8_t>(dir / "torchvision" / "selected.npy", {B, P});
  EXPECT_TRUE(selected.ok()) << selected.status().to_string();
  if (selected.ok()) g.selected = std::move(selected).value();
  auto argmax = npy::read_as<int32_t>(dir / "torchvision" / "argmax_prior.npy", {G});
  EXPECT_TRUE(argmax.ok()) << argmax.status().to_string();
  if (argmax.ok()) g.argmax_prior = std::move(argmax).value();
  return g;
}

Result<BatchOutputs> run_backend(const Backend& backend, const Case& c, const Config& config) {
  auto plan = backend.prepare(c.shape, c.priors, config);
  if (!plan) return plan.status();
  BatchOutputs out(c.shape, static_cast<int>(c.data.gt_labels.size()));
  if (Status s = (*plan)->run(c.data.ground_truths(), c.data.predictions(), Stage::backward, out.view()); !s) return s;
  return out;
}

// Cross-entropy of prior p of image b against class y, in double (DESIGN.md section 4).
double cross_entropy(const Case& c, int b, int p, int y) {
  const int C = c.shape.num_classes;
  const float* z = &c.data.conf[(static_cast<size_t>(b) * c.shape.num_priors + p) * C];
  const double m = *std::max_element(z, z + C);
  double sum = 0;
  for (int k = 0; k < C; ++k) sum += std::exp(static_cast<double>(z[k]) - m);
  return m + std::log(sum) - z[y];
}

double best_iou(const Case& c, int g) {
  const float* gb = &c.data.gt_boxes[static_cast<size_t>(g) * 4];
  float best = 0;
  for (int p = 0; p < c.shape.num_priors; ++p) {
    const float* pr = &c.priors[static_cast<size_t>(p) * 4];
    best = std::max(best, core::iou({gb[0], gb[1], gb[2], gb[3]}, core::prior_corners(pr[0], pr[1], pr[2], pr[3])));
  }
  return best;
}

// torchvision's BoxCoder rebuilds each prior's centre and size from its float32 corners (x1 + 0.5 * (x2 - x1)) and
// each ground truth's centre as x1 + 0.5 * w where we use (x1 + x2) / 2: each is off by about an ulp of a unit
// coordinate, which the encoding divides by variance * prior side. compare.hpp's kPriorRoundTripError covers it.
// Extra allowance for element `e` of a [B][P][4] target array computed by torchvision.
double torchvision_target_slack(const Case& c, size_t e) {
  const size_t p = (e / 4) % static_cast<size_t>(c.shape.num_priors), k = e % 4;
  const double side = c.priors[p * 4 + (k % 2 == 0 ? 2 : 3)];
  const double variance = k < 2 ? c.config.variance_xy : c.config.variance_wh;
  return kPriorRoundTripError / (variance * side);
}
// The same through the loc gradient: smoothL1' is 1/beta-Lipschitz and the gradient is scaled by alpha / N.
double torchvision_grad_loc_slack(const Case& c, int64_t num_positives, size_t e) {
  return torchvision_target_slack(c, e) * c.config.alpha / (c.config.smooth_l1_beta * std::max<int64_t>(1, num_positives));
}

// |candidate - reference| <= abs + rel * |reference| (+ slack), element by element, reporting the worst element.
void expect_close(const char* what, std::span<const float> reference, std::span<const float> candidate, double scale,
                  double rel, double abs, const std::function<bool(size_t)>& include = nullptr,
                  const std::function<double(size_t)>& slack = nullptr) {
  ASSERT_EQ(reference.size(), candidate.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < reference.size(); ++i) {
    if (include && !include(i)) continue;
    const double r = reference[i] * scale, c = candidate[i];
    const double excess = std::abs(c - r) - (abs + rel * std::abs(r) + (slack ? slack(i) : 0.0));
    if (excess > 0) ++bad;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " elements outside tolerance; worst at flat index " << worst
                     << ": expected " << reference[worst] * scale << ", got " << candidate[worst];
}

void expect_relative(const char* what, double expected, double actual, double rel) {
  EXPECT_LE(std::abs(actual - expected), rel * std::abs(expected))
      << what << ": expected " << expected << ", got " << actual;
}

// Largest |a - b| / max(|a|, floor) over the elements: the measured agreement the README quotes.
double max_rel_error(std::span<const float> a, std::span<const float> b, double floor) {
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / std::max(std::abs(double{a[i]}), floor));
  return worst;
}
double rel_error(double a, double b) { return a == b ? 0.0 : std::abs(a - b) / std::abs(a); }

void print_agreement(const std::string& label, const BatchOutputs& tv, const BatchOutputs& ours) {
  std::printf("[ golden   ] %-36s targets %.2e  grad_conf %.2e  grad_loc %.2e  loss.total %.2e  conf %.2e  "
              "loc %.2e\n",
              label.c_str(), max_rel_error(tv.targets, ours.targets, kTargetAbsTol / kTargetRelTol),
              max_rel_error(tv.grad_conf, ours.grad_conf, grad_abs_tol(ours.loss.num_positives) / kGradRelTol),
              max_rel_error(tv.grad_loc, ours.grad_loc, grad_abs_tol(ours.loss.num_positives) / kGradRelTol),
              rel_error(tv.loss.total, ours.loss.total), rel_error(tv.loss.conf, ours.loss.conf),
              rel_error(tv.loss.loc, ours.loss.loc));
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const Backend* b : all_backends()) names.emplace_back(b->name());
  return names;
}

TEST(GoldenCases, FoldersOnDiskAreExactlyTheListedCases) {
  std::set<std::string> on_disk, listed;
  for (const auto& entry : fs::directory_iterator(kCasesDir))
    if (entry.is_directory()) on_disk.insert(entry.path().filename().string());
  for (const GoldenCase& g : kGoldenCases) listed.insert(g.name);
  EXPECT_EQ(on_disk, listed) << "add new golden cases to kGoldenCases with the difference they hit";
}

class GoldenTest : public ::testing::TestWithParam<std::tuple<std::string, GoldenCase>> {
 protected:
  void SetUp() override {
    const auto& [backend_name, golden_case] = GetParam();
    backend_ = find_backend(backend_name);
    ASSERT_NE(backend_, nullptr);
    if (Status s = backend_->available(); !s) GTEST_SKIP() << backend_name << " unavailable: " << s.message();
    golden_ = load_golden(golden_case.name);
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(golden_.c.config.forced_match, ForcedMatch::argmax) << "golden cases run in torchvision's mode";
    auto ours = run_backend(*backend_, golden_.c, golden_.c.config);
    ASSERT_TRUE(ours.ok()) << ours.status().to_string();
    ours_ = std::move(ours).value();
    label_ = fmt::format("{} {}", golden_case.name, backend_name);
  }

  // One line that reruns exactly this backend on this committed case.
  std::string repro() const {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return fmt::format("reproduce: multibox_case_tests --gtest_filter='{}.{}' (case datasets/golden/cases/{})",
                       info->test_suite_name(), info->name(), std::get<1>(GetParam()).name);
  }

  const Backend* backend_ = nullptr;
  Golden golden_;
  BatchOutputs ours_;
  std::string label_;
};

// One suite per kind of case, so no test is instantiated only to be skipped.
class GoldenAgreement : public GoldenTest {};
class GoldenConflict : public GoldenTest {};
class GoldenOverflow : public GoldenTest {};
class GoldenNoOverlap : public GoldenTest {};

// Clean cases and the argmax-mode conflict case: torchvision and we implement the same rule, so every quantity
// agrees under DESIGN.md section 6 (matches bitwise: both see bit-identical IoUs).
TEST_P(GoldenAgreement, AgreesWhereTheContractSaysEqual) {
  const Case& c = golden_.c;
  print_agreement(label_, golden_.tv, ours_);
  // Targets and grad_loc carry torchvision's different (equally valid) float32 encoding formula, which the
  // comparator allows for when given the priors, exactly as `multibox validate` does for outside implementations.
  const AgreementReport report = compare_outputs(c.shape, c.config, c.data.ground_truths(), c.data.predictions(),
                                                 Stage::backward, golden_.tv, ours_, CompareOptions{c.priors});
  for (const QuantityVerdict& q : report.quantities)
    EXPECT_EQ(q.verdict, Verdict::passed) << q.quantity << "\n" << report.to_string() << repro();
  // torchvision's selection never reached a positive here, so its own mask is the mined set.
  EXPECT_EQ(golden_.selected, golden_.tv.mined) << repro();
}

// Conflict, bipartite mode: the ground truths that share an argmax prior get distinct priors (the pair with the
// larger IoU keeps the shared one, not the higher index). Forced priors of every other ground truth, and the matches
// of every prior neither side forced onto a conflicting ground truth, are torchvision's.
TEST_P(GoldenConflict, BipartiteDiffersOnlyAtTheConflictingGroundTruths) {
  const Case& c = golden_.c;
  Config bipartite = c.config;
  bipartite.forced_match = ForcedMatch::bipartite;
  auto ours = run_backend(*backend_, c, bipartite);
  ASSERT_TRUE(ours.ok()) << ours.status().to_string();
  const BatchOutputs& tv = golden_.tv;
  const int P = c.shape.num_priors;
  std::set<size_t> differing;  // flat [b][p] priors either side forced onto a conflicting ground truth
  int conflicting = 0;
  for (int b = 0; b < c.shape.batch; ++b) {
    const int first = c.data.gt_offsets[b], last = c.data.gt_offsets[b + 1];
    std::set<int32_t> shared, ours_forced;
    for (int g = first; g < last; ++g)
      for (int h = first; h < last; ++h)
        if (g != h && golden_.argmax_prior[g] == golden_.argmax_prior[h]) shared.insert(golden_.argmax_prior[g]);
    for (int g = first; g < last; ++g) {
      if (!shared.count(golden_.argmax_prior[g])) {
        EXPECT_EQ(ours->forced_prior[g], tv.forced_prior[g]) << "ground truth " << g << "; " << repro();
        continue;
      }
      ++conflicting;
      ASSERT_GE(ours->forced_prior[g], 0) << "bipartite gives every conflicting ground truth a prior; " << repro();
      EXPECT_TRUE(ours_forced.insert(ours->forced_prior[g]).second) << "two ground truths forced onto one prior";
      differing.insert(static_cast<size_t>(b) * P + ours->forced_prior[g]);
      if (tv.forced_prior[g] >= 0) differing.insert(static_cast<size_t>(b) * P + tv.forced_prior[g]);
      EXPECT_EQ(ours->matches[static_cast<size_t>(b) * P + ours->forced_prior[g]], g - first);
    }
    for (int32_t p : shared) EXPECT_TRUE(ours_forced.count(p)) << "shared prior " << p << " left unforced";
  }
  ASSERT_GE(conflicting, 2) << "the conflict case must contain a conflict";
  EXPECT_GT(differing.size(), 1u);
  for (size_t i = 0; i < tv.matches.size(); ++i) {
    if (!differing.count(i)) {
      EXPECT_EQ(ours->matches[i], tv.matches[i]) << "image " << i / P << ", prior " << i % P << "; " << repro();
    }
  }
}

// 3P_b above the negatives: both select every negative; torchvision's quota then runs into the positives (their
// -inf sort keys), whose CE it adds a second time. Its loss is ours plus exactly those CEs, its gradient rows there
// twice ours, everything else equal.
TEST_P(GoldenOverflow, AddsExactlyTheRequotedPositivesCrossEntropy) {
  const Case& c = golden_.c;
  const BatchOutputs& tv = golden_.tv;
  const int P = c.shape.num_priors, C = c.shape.num_classes;
  EXPECT_EQ(ours_.matches, tv.matches) << repro();
  EXPECT_EQ(ours_.forced_prior, tv.forced_prior) << repro();
  EXPECT_EQ(ours_.positives, tv.positives) << repro();
  EXPECT_EQ(ours_.mined, tv.mined) << "every negative is mined on both sides; " << repro();
  EXPECT_EQ(ours_.mined_negatives, tv.mined_negatives) << repro();
  expect_close("targets", tv.targets, ours_.targets, 1.0, kTargetRelTol, kTargetAbsTol, nullptr,
               [&](size_t e) { return torchvision_target_slack(c, e); });

  double counted_twice = 0;
  int overflow_images = 0;
  std::vector<bool> doubled(static_cast<size_t>(c.shape.batch) * P, false);
  for (int b = 0; b < c.shape.batch; ++b) {
    int negatives = 0;
    for (int p = 0; p < P; ++p) negatives += tv.matches[static_cast<size_t>(b) * P + p] == kNegative;
    const int quota = c.config.neg_pos_ratio * tv.positives[b];
    const int expected_twice = std::clamp(quota - negatives, 0, tv.positives[b]);
    overflow_images += expected_twice > 0;
    int twice = 0;
    for (int p = 0; p < P; ++p) {
      const size_t i = static_cast<size_t>(b) * P + p;
      const int32_t m = tv.matches[i];
      if (m < 0 || !golden_.selected[i]) continue;
      ++twice;
      doubled[i] = true;
      counted_twice += cross_entropy(c, b, p, c.data.gt_labels[c.data.gt_offsets[b] + m]);
    }
    EXPECT_EQ(twice, expected_twice) << "image " << b << ": positives inside torchvision's quota; " << repro();
  }
  ASSERT_GT(overflow_images, 0) << "the overflow case must overflow";
  EXPECT_EQ(tv.loss.num_positives, ours_.loss.num_positives);
  expect_relative("conf_sum", ours_.loss.conf_sum + counted_twice, tv.loss.conf_sum, kLossRelTol);
  expect_relative("loc_sum", ours_.loss.loc_sum, tv.loss.loc_sum, kLossRelTol);
  expect_relative("total", ours_.loss.total + counted_twice / ours_.loss.num_positives, tv.loss.total, kLossRelTol);
  // Rows counted twice carry twice our gradient (tv / 2 == ours); all other rows agree as they are.
  std::vector<float> halved = tv.grad_conf;
  for (size_t e = 0; e < halved.size(); ++e)
    if (doubled[e / C]) halved[e] /= 2;
  const double grad_floor = grad_abs_tol(ours_.loss.num_positives, c.config.alpha);
  expect_close("grad_conf (doubled rows halved)", halved, ours_.grad_conf, 1.0, kGradRelTol,
               grad_abs_tol(ours_.loss.num_positives));
  expect_close("grad_loc", tv.grad_loc, ours_.grad_loc, 1.0, kGradRelTol, grad_floor, nullptr,
               [&](size_t e) { return torchvision_grad_loc_slack(c, ours_.loss.num_positives, e); });
}

// A ground truth overlapping no prior: we force nothing; torchvision's argmax over an all-zero row is prior 0, so it
// forces prior 0 onto it. That adds one positive (N + 1), a mining quota 3 larger in that image, a CE and a
// smooth-L1 term at prior 0, and rescales every gradient by N / (N + 1). Nothing else may differ.
TEST_P(GoldenNoOverlap, GroundTruthGetsPriorZeroAndNothingElseDiffers) {
  const Case& c = golden_.c;
  const BatchOutputs& tv = golden_.tv;
  const int P = c.shape.num_priors, C = c.shape.num_classes;
  int image = -1, local = -1;
  for (int b = 0; b < c.shape.batch; ++b)
    for (int g = c.data.gt_offsets[b]; g < c.data.gt_offsets[b + 1]; ++g) {
      if (best_iou(c, g) > 0) {
        EXPECT_EQ(ours_.forced_prior[g], tv.forced_prior[g]) << "ground truth " << g;
        continue;
      }
      ASSERT_EQ(image, -1) << "the case is built with one ground truth overlapping nothing";
      image = b, local = g - c.data.gt_offsets[b];
      EXPECT_EQ(ours_.forced_prior[g], -1) << "we force no prior onto a ground truth that overlaps none";
      EXPECT_EQ(tv.forced_prior[g], 0) << "torchvision forces prior 0";
    }
  ASSERT_GE(image, 0) << "the no-overlap case must contain a ground truth overlapping no prior";
  const size_t p0 = static_cast<size_t>(image) * P;  // prior 0 of that image
  ASSERT_EQ(ours_.matches[p0], kNegative) << "the case keeps prior 0 free so the forced match is visible";
  EXPECT_EQ(tv.matches[p0], local);
  for (size_t i = 0; i < tv.matches.size(); ++i) {
    if (i != p0) {
      EXPECT_EQ(ours_.matches[i], tv.matches[i]) << "image " << i / P << ", prior " << i % P;
    }
  }
  for (int b = 0; b < c.shape.batch; ++b)
    EXPECT_EQ(tv.positives[b], ours_.positives[b] + (b == image)) << "image " << b;
  ASSERT_EQ(tv.loss.num_positives, ours_.loss.num_positives + 1);
  expect_close("targets", tv.targets, ours_.targets, 1.0, kTargetRelTol, kTargetAbsTol,
               [&](size_t e) { return e / 4 != p0; }, [&](size_t e) { return torchvision_target_slack(c, e); });

  // Mining: same CE order, quota 3 larger in that image (prior 0 is no longer a candidate); equal elsewhere.
  const int label = c.data.gt_labels[c.data.gt_offsets[image] + local];
  double extra_conf = cross_entropy(c, image, 0, label);
  int negatives_tv = 0;
  for (int p = 0; p < P; ++p) negatives_tv += tv.matches[p0 + p] == kNegative;
  EXPECT_EQ(tv.mined_negatives[image], std::min(c.config.neg_pos_ratio * tv.positives[image], negatives_tv));
  for (size_t i = 0; i < tv.mined.size(); ++i) {
    const bool in_image = i / P == static_cast<size_t>(image);
    if (!in_image) {
      EXPECT_EQ(ours_.mined[i], tv.mined[i]) << "image " << i / P << ", prior " << i % P;
      continue;
    }
    if (ours_.mined[i] && i != p0) {
      EXPECT_TRUE(tv.mined[i]) << "prior " << i % P << ": ours mined, torchvision not";
    }
    if (tv.mined[i] && !ours_.mined[i]) extra_conf += cross_entropy(c, image, static_cast<int>(i % P), 0);
  }
  if (ours_.mined[p0]) extra_conf -= cross_entropy(c, image, 0, 0);
  double extra_loc = 0;
  for (int k = 0; k < 4; ++k)
    extra_loc += core::smooth_l1(static_cast<double>(c.data.loc[p0 * 4 + k]) - tv.targets[p0 * 4 + k],
                                 static_cast<double>(c.config.smooth_l1_beta));
  expect_relative("conf_sum", ours_.loss.conf_sum + extra_conf, tv.loss.conf_sum, kLossRelTol);
  expect_relative("loc_sum", ours_.loss.loc_sum + extra_loc, tv.loss.loc_sum, kLossRelTol);

  // Gradients: rows both sides count are ours scaled by N / (N + 1).
  const double scale = static_cast<double>(ours_.loss.num_positives) / tv.loss.num_positives;
  auto counted_by_both = [&](size_t row) {
    const bool ours_counted = ours_.matches[row] >= 0 || ours_.mined[row];
    const bool tv_counted = tv.matches[row] >= 0 || tv.mined[row];
    return ours_counted && tv_counted && row != p0;
  };
  // Floors at torchvision's scale 1/(N + 1), the smaller of the two.
  expect_close("grad_conf (common rows, rescaled)", ours_.grad_conf, tv.grad_conf, scale, kGradRelTol,
               grad_abs_tol(tv.loss.num_positives), [&](size_t e) { return counted_by_both(e / C); });
  expect_close("grad_loc (common rows, rescaled)", ours_.grad_loc, tv.grad_loc, scale, kGradRelTol,
               grad_abs_tol(tv.loss.num_positives, c.config.alpha),
               [&](size_t e) { return counted_by_both(e / 4); },
               [&](size_t e) { return torchvision_grad_loc_slack(c, tv.loss.num_positives, e); });
  auto counted_by_neither = [&](size_t row) {
    return ours_.matches[row] < 0 && !ours_.mined[row] && tv.matches[row] < 0 && !tv.mined[row];
  };
  expect_close("grad_conf (rows neither counts)", ours_.grad_conf, tv.grad_conf, 1.0, 0.0, 0.0,
               [&](size_t e) { return counted_by_neither(e / C); });
}

std::vector<GoldenCase> cases_of(std::initializer_list<Kind> kinds) {
  std::vector<GoldenCase> out;
  for (const GoldenCase& g : kGoldenCases)
    if (std::find(kinds.begin(), kinds.end(), g.kind) != kinds.end()) out.push_back(g);
  return out;
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<std::string, GoldenCase>>& info) {
  std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, GoldenAgreement,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::ValuesIn(cases_of({Kind::clean, Kind::conflict}))),
                         param_name);
INSTANTIATE_TEST_SUITE_P(AllBackends, GoldenConflict,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::ValuesIn(cases_of({Kind::conflict}))),
                         param_name);
INSTANTIATE_TEST_SUITE_P(AllBackends, GoldenOverflow,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::ValuesIn(cases_of({Kind::overflow}))),
                         param_name);
INSTANTIATE_TEST_SUITE_P(AllBackends, GoldenNoOverlap,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::ValuesIn(cases_of({Kind::no_overlap}))),
                         param_name);

}  // namespace
}  // namespace multibox
