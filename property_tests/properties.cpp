#include "properties.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <rapidcheck.h>

#include "core/math.hpp"
#include "multibox/compare.hpp"
#include "multibox/registry.hpp"
#include "support/case.hpp"
#include "support/generators.hpp"
#include "support/runner.hpp"

namespace multibox::proptest {
namespace {

namespace gen = rc::gen;

// ---------------------------------------------------------------------------------------------------------------
// Tolerances of the properties that are not backend-vs-reference comparisons (those use compare.hpp's constants).

// Finite differences: central differences in double with these steps. For the conf term, the truncation error is
// h^2/6 * |CE'''| <= 1e-6/6 * 0.4 per unit of 1/N; rounding error is ~1e-16 * |CE| / h, below 1e-8 even for CE ~
// 1e4. Smooth L1 is piecewise quadratic/linear, so away from its kinks the central difference is exact up to rounding.
constexpr double kFdStepConf = 1e-3;
constexpr double kFdStepLoc = 1e-4;
// |fd - grad| <= kFdRelTol * |fd| + kFdAbsTol * scale / N: the float gradient carries ~1e-7 relative error and the
// truncation error above is < 1e-7 / N, so 1e-4 relative and 1e-6 / N absolute leave a wide margin while a wrong
// sign, a missing 1/N or a dropped softmax term (all O(|grad|)) cannot hide.
constexpr double kFdRelTol = 1e-4;
constexpr double kFdAbsTol = 1e-6;

// ---------------------------------------------------------------------------------------------------------------
// Running a backend.

BatchOutputs run_backend(const Backend& backend, const ProblemShape& shape, std::span<const float> priors,
                         const Config& config, const BatchData& data, Stage stage, const PlanOptions& options = {}) {
  auto plan = backend.prepare(shape, priors, config, options);
  if (!plan.ok())
    fail(fmt::format("backend '{}': prepare({}, {}) failed: {}", backend.name(), shape.describe(), config.describe(),
                     plan.status().to_string()));
  BatchOutputs out(shape, static_cast<int>(data.gt_labels.size()));
  const Status s = (*plan)->run(data.ground_truths(), data.predictions(), stage, out.view());
  if (!s.ok())
    fail(fmt::format("backend '{}': run(stage {}) on a valid batch failed: {}", backend.name(), to_string(stage),
                     s.to_string()));
  return out;
}

BatchOutputs run_case(const Backend& backend, const Case& c, const BatchData& data, Stage stage,
                      const PlanOptions& options = {}) {
  return run_backend(backend, c.shape(), c.priors.boxes, c.config, data, stage, options);
}

// ---------------------------------------------------------------------------------------------------------------
// Independent statements of the contract.

core::Box gt_box(const BatchData& data, int b, int g) {
  const float* v = &data.gt_boxes[static_cast<size_t>(data.gt_offsets[b] + g) * 4];
  return {v[0], v[1], v[2], v[3]};
}

const float* prior_of(const Case& c, int p) { return &c.priors.boxes[static_cast<size_t>(p) * 4]; }

// IoU[g][p] of image b, through the shared core::iou (DESIGN.md makes those bits part of the contract).
std::vector<float> iou_matrix(const Case& c, const BatchData& data, int b) {
  const int G = data.gt_offsets[b + 1] - data.gt_offsets[b];
  const int P = c.priors.count();
  std::vector<float> iou(static_cast<size_t>(G) * P);
  for (int g = 0; g < G; ++g) {
    const core::Box box = gt_box(data, b, g);
    for (int p = 0; p < P; ++p) {
      const float* v = prior_of(c, p);
      iou[static_cast<size_t>(g) * P + p] = core::iou(box, core::prior_corners(v[0], v[1], v[2], v[3]));
    }
  }
  return iou;
}

// Bipartite stage 1 restated as "walk all overlapping pairs from the largest IoU down (ties: lower GT, then lower
// prior) and keep a pair when both its GT and its prior are still free". The pair kept at each step is exactly
// the global best free pair of the literal repeat-loop, without being that loop.
std::vector<int32_t> expected_bipartite(const std::vector<float>& iou, int G, int P) {
  std::vector<std::tuple<float, int, int>> pairs;
  for (int g = 0; g < G; ++g)
    for (int p = 0; p < P; ++p)
      if (iou[static_cast<size_t>(g) * P + p] > 0.0f) pairs.emplace_back(iou[static_cast<size_t>(g) * P + p], g, p);
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
    if (std::get<1>(a) != std::get<1>(b)) return std::get<1>(a) < std::get<1>(b);
    return std::get<2>(a) < std::get<2>(b);
  });
  std::vector<int32_t> forced(G, -1);
  std::vector<uint8_t> taken(P, 0);
  for (const auto& [value, g, p] : pairs) {
    if (forced[g] >= 0 || taken[p]) continue;
    forced[g] = p;
    taken[p] = 1;
  }
  return forced;
}

// Argmax stage 1: each GT's best prior (lowest index on ties, IoU > 0); on a shared prior the highest GT keeps it.
std::vector<int32_t> expected_argmax(const std::vector<float>& iou, int G, int P) {
  std::vector<int32_t> best(G, -1), forced(G, -1);
  for (int g = 0; g < G; ++g) {
    float m = 0.0f;
    for (int p = 0; p < P; ++p)
      if (iou[static_cast<size_t>(g) * P + p] > m) m = iou[static_cast<size_t>(g) * P + p], best[g] = p;
  }
  for (int g = 0; g < G; ++g) {
    if (best[g] < 0) continue;
    bool later_claims = false;
    for (int h = g + 1; h < G; ++h) later_claims = later_claims || best[h] == best[g];
    if (!later_claims) forced[g] = best[g];
  }
  return forced;
}

// Cross-entropy of row (b, p) against class y, in double with the row maximum subtracted.
double cross_entropy(const float* row, int C, int y) {
  double m = row[0];
  for (int c = 1; c < C; ++c) m = std::max(m, static_cast<double>(row[c]));
  double s = 0;
  for (int c = 0; c < C; ++c) s += std::exp(static_cast<double>(row[c]) - m);
  return m + std::log(s) - static_cast<double>(row[y]);
}

double smooth_l1(double x, double beta) {
  const double a = std::abs(x);
  return a < beta ? 0.5 * x * x / beta : a - 0.5 * beta;
}

int target_class(const BatchData& data, const BatchOutputs& out, int b, int P, int p) {
  const int32_t m = out.matches[static_cast<size_t>(b) * P + p];
  return m >= 0 ? data.gt_labels[data.gt_offsets[b] + m] : 0;
}

std::string describe_match(int32_t m) {
  if (m == kNegative) return "negative";
  if (m == kIgnored) return "ignored";
  return fmt::format("gt {}", m);
}

// Exact equality of two arrays, naming the first difference.
template <class T>
void require_equal(const char* what, std::span<const T> expected, std::span<const T> actual,
                   const std::string& context) {
  if (expected.size() != actual.size())
    fail(fmt::format("{}: {} holds {} elements, expected {}", context, what, actual.size(), expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] != actual[i])
      fail(fmt::format("{}: {}[{}] is {}, expected {}", context, what, i, actual[i], expected[i]));
}

template <class T>
void require_equal(const char* what, const std::vector<T>& expected, const std::vector<T>& actual,
                   const std::string& context) {
  require_equal<T>(what, std::span<const T>(expected), std::span<const T>(actual), context);
}

void require_close(const char* what, std::span<const float> expected, std::span<const float> actual, double rel,
                   double abs, const std::string& context) {
  if (expected.size() != actual.size())
    fail(fmt::format("{}: {} holds {} elements, expected {}", context, what, actual.size(), expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i], a = actual[i];
    if (!(std::abs(e - a) <= abs + rel * std::abs(e)))
      fail(fmt::format("{}: {}[{}] is {:.9g}, expected {:.9g} (tolerance {:g} + {:g} relative)", context, what, i, a, e,
                       abs, rel));
  }
}

void require_close_scalar(const char* what, double expected, double actual, double rel, const std::string& context,
                          double abs_floor = 0.0) {
  if (!(std::abs(expected - actual) <= std::max(rel * std::abs(expected), abs_floor)))
    fail(fmt::format("{}: {} is {:.17g}, expected {:.17g} (relative tolerance {:g}, absolute floor {:g})", context,
                     what, actual, expected, rel, abs_floor));
}

bool bitwise_equal(const LossTerms& a, const LossTerms& b) {
  return std::memcmp(&a.total, &b.total, sizeof(double)) == 0 && std::memcmp(&a.conf, &b.conf, sizeof(double)) == 0 &&
         std::memcmp(&a.loc, &b.loc, sizeof(double)) == 0 &&
         std::memcmp(&a.conf_sum, &b.conf_sum, sizeof(double)) == 0 &&
         std::memcmp(&a.loc_sum, &b.loc_sum, sizeof(double)) == 0 && a.num_positives == b.num_positives;
}

template <class T>
std::string first_bit_difference(const char* what, const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return fmt::format("{}: sizes {} vs {}", what, a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0)
      return fmt::format("{}[{}]: {} vs {}", what, i, static_cast<double>(a[i]), static_cast<double>(b[i]));
  return {};
}

// Every output of a backward run, bit for bit; empty when identical.
std::string bit_difference(const BatchOutputs& a, const BatchOutputs& b) {
  for (std::string d : {first_bit_difference("matches", a.matches, b.matches),
                        first_bit_difference("forced_prior", a.forced_prior, b.forced_prior),
                        first_bit_difference("positives", a.positives, b.positives),
                        first_bit_difference("unmatched_ground_truths", a.unmatched_ground_truths,
                                             b.unmatched_ground_truths),
                        first_bit_difference("targets", a.targets, b.targets),
                        first_bit_difference("mined", a.mined, b.mined),
                        first_bit_difference("mined_negatives", a.mined_negatives, b.mined_negatives),
                        first_bit_difference("grad_conf", a.grad_conf, b.grad_conf),
                        first_bit_difference("grad_loc", a.grad_loc, b.grad_loc)})
    if (!d.empty()) return d;
  if (!bitwise_equal(a.loss, b.loss))
    return fmt::format("loss: total {:.17g} vs {:.17g}, conf_sum {:.17g} vs {:.17g}, loc_sum {:.17g} vs {:.17g}",
                       a.loss.total, b.loss.total, a.loss.conf_sum, b.loss.conf_sum, a.loss.loc_sum, b.loss.loc_sum);
  return {};
}

std::string context_of(const Backend& backend, const char* property) {
  return fmt::format("backend '{}', {}", backend.name(), property);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

void prop_forced_matches(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::match);
  const int P = c.priors.count();
  bool conflicts = false;
  for (int b = 0; b < c.batch(); ++b) {
    const int G = data.gt_offsets[b + 1] - data.gt_offsets[b];
    const std::vector<float> iou = iou_matrix(c, data, b);
    const std::vector<int32_t> expected = c.config.forced_match == ForcedMatch::bipartite ? expected_bipartite(iou, G, P)
                                                                                          : expected_argmax(iou, G, P);
    const int32_t* forced = out.forced_prior.data() + data.gt_offsets[b];  // G may be 0: no operator[] past the end
    for (int g = 0; g < G; ++g)
      if (forced[g] != expected[g])
        fail(fmt::format("image {}, gt {}: forced prior {}, but the {} definition gives {} (IoU there {:.9g})", b, g,
                         forced[g], to_string(c.config.forced_match), expected[g],
                         expected[g] >= 0 ? iou[static_cast<size_t>(g) * P + expected[g]] : 0.0f));
    // Distinct GTs hold distinct priors (at most one GT per prior), in both modes.
    std::map<int32_t, int> holder;
    for (int g = 0; g < G; ++g) {
      if (forced[g] < 0) continue;
      if (forced[g] >= P) fail(fmt::format("image {}, gt {}: forced prior {} is out of range (P = {})", b, g, forced[g], P));
      if (auto [it, fresh] = holder.emplace(forced[g], g); !fresh)
        fail(fmt::format("image {}: gts {} and {} are both forced onto prior {}", b, it->second, g, forced[g]));
    }
    if (c.config.forced_match != ForcedMatch::bipartite) continue;
    // Bipartite guarantee: a GT that overlaps some prior is left without a forced prior only when every prior it
    // overlaps went to another GT.
    for (int g = 0; g < G; ++g) {
      if (forced[g] >= 0) continue;
      for (int p = 0; p < P; ++p)
        if (iou[static_cast<size_t>(g) * P + p] > 0.0f && !holder.count(p))
          fail(fmt::format("image {}, gt {}: no forced prior although prior {} overlaps it (IoU {:.9g}) and is free", b,
                           g, p, iou[static_cast<size_t>(g) * P + p]));
    }
    std::vector<int32_t> argmax = expected_argmax(iou, G, P);
    for (int g = 0; g < G; ++g) conflicts = conflicts || (argmax[g] < 0 && expected[g] >= 0);
  }
  RC_TAG(to_string(c.config.forced_match), conflicts ? "best-prior conflicts" : "no conflicts");
}

void prop_threshold_matches(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::match);
  const int P = c.priors.count();
  const float pos = c.config.pos_threshold, neg = c.config.negative_threshold();
  for (int b = 0; b < c.batch(); ++b) {
    const int G = data.gt_offsets[b + 1] - data.gt_offsets[b];
    const std::vector<float> iou = iou_matrix(c, data, b);
    std::vector<int32_t> owner(P, -1);
    for (int g = 0; g < G; ++g) {
      const int32_t p = out.forced_prior[data.gt_offsets[b] + g];
      if (p < 0) continue;
      if (p >= P || owner[p] >= 0)
        fail(fmt::format("image {}: forced prior {} of gt {} is out of range or already forced", b, p, g));
      owner[p] = g;
    }
    int positives = 0;
    std::vector<uint8_t> has_prior(G, 0);
    for (int p = 0; p < P; ++p) {
      const int32_t got = out.matches[static_cast<size_t>(b) * P + p];
      int32_t want;
      float best = 0.0f;
      int best_g = -1;
      for (int g = 0; g < G; ++g)
        if (iou[static_cast<size_t>(g) * P + p] > best) best = iou[static_cast<size_t>(g) * P + p], best_g = g;
      if (owner[p] >= 0) want = owner[p];  // forced overrides the threshold rule, whatever the IoU
      else if (best >= pos) want = best_g;
      else if (best < neg) want = kNegative;
      else want = kIgnored;
      if (got != want)
        fail(fmt::format("image {}, prior {}: matched {}, expected {} (max IoU {:.9g} with gt {}, pos {:.9g}, neg "
                         "{:.9g}, forced owner {})",
                         b, p, describe_match(got), describe_match(want), best, best_g, pos, neg, owner[p]));
      if (got >= 0) ++positives, has_prior[got] = 1;
    }
    if (out.positives[b] != positives)
      fail(fmt::format("image {}: positives {} but {} priors are matched", b, out.positives[b], positives));
    const int unmatched = static_cast<int>(std::count(has_prior.begin(), has_prior.end(), 0));
    if (out.unmatched_ground_truths[b] != unmatched)
      fail(fmt::format("image {}: unmatched_ground_truths {} but {} gts have no prior", b,
                       out.unmatched_ground_truths[b], unmatched));
  }
  RC_TAG(c.config_note.empty() ? "thresholds from the list" : "threshold snapped to an IoU in the case");
}

void prop_mining(const Backend& backend) {
  CaseOptions options;
  options.stress_mining_cap = true;
  const Case c = *gen_case(options);
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::forward);
  const int P = c.priors.count(), C = c.num_classes;
  bool capped = false, index_ties = false;
  for (int b = 0; b < c.batch(); ++b) {
    const size_t base = static_cast<size_t>(b) * P;
    int64_t negatives = 0, selected = 0;
    for (int p = 0; p < P; ++p) {
      negatives += out.matches[base + p] == kNegative;
      if (out.mined[base + p] == 0) continue;
      ++selected;
      if (out.matches[base + p] != kNegative)
        fail(fmt::format("image {}, prior {}: mined although it is {}", b, p, describe_match(out.matches[base + p])));
    }
    const int64_t wanted = std::max<int64_t>(c.config.min_negatives_per_image,
                                             static_cast<int64_t>(c.config.neg_pos_ratio) * out.positives[b]);
    const int64_t quota = std::min(wanted, negatives);
    capped = capped || wanted > negatives;
    if (out.mined_negatives[b] != quota)
      fail(fmt::format("image {}: K_b = {}, expected min(max(min_neg {}, ratio {} * P_b {}), negatives {}) = {}", b,
                       out.mined_negatives[b], c.config.min_negatives_per_image, c.config.neg_pos_ratio,
                       out.positives[b], negatives, quota));
    if (selected != quota) fail(fmt::format("image {}: {} priors are marked mined, K_b = {}", b, selected, quota));
    // Top-k: the easiest selected negative is at least as hard as the hardest unselected one (near-ties allowed:
    // a backend's float CE may order two negatives within kMiningTieRelEps differently than this double CE).
    double easiest_selected = INFINITY, hardest_unselected = -INFINITY;
    int easiest_p = -1, hardest_p = -1;
    std::map<std::vector<float>, std::vector<int>> same_rows;
    for (int p = 0; p < P; ++p) {
      if (out.matches[base + p] != kNegative) continue;
      const float* row = &data.conf[(base + p) * C];
      const double ce = cross_entropy(row, C, 0);
      if (out.mined[base + p] && ce < easiest_selected) easiest_selected = ce, easiest_p = p;
      if (!out.mined[base + p] && ce > hardest_unselected) hardest_unselected = ce, hardest_p = p;
      same_rows[std::vector<float>(row, row + C)].push_back(p);
    }
    if (easiest_p >= 0 && hardest_p >= 0 &&
        hardest_unselected - easiest_selected > kMiningTieRelEps * std::max(1.0, std::abs(easiest_selected)))
      fail(fmt::format("image {}: negative prior {} (CE {:.9g}) is selected but prior {} (CE {:.9g}) is not", b,
                       easiest_p, easiest_selected, hardest_p, hardest_unselected));
    // Exact ties (bitwise identical rows, hence identical CE in any arithmetic) go to the lowest prior index.
    for (const auto& [row, priors] : same_rows) {
      bool seen_unselected = false;
      for (int p : priors) {  // ascending prior index
        if (!out.mined[base + p]) {
          seen_unselected = true;
          continue;
        }
        if (seen_unselected) {
          index_ties = true;
          fail(fmt::format("image {}: prior {} is mined but an identical negative row with a lower index is not; ties "
                           "go to the lowest prior index",
                           b, p));
        }
      }
      index_ties = index_ties || (priors.size() > 1);
    }
  }
  RC_TAG(capped ? "K_b capped by the negatives" : "K_b below the cap", index_ties ? "identical rows" : "distinct rows");
}

void prop_loss_definition(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::forward);
  const int P = c.priors.count(), C = c.num_classes;
  const LossTerms& loss = out.loss;
  int64_t n = 0, conf_terms = 0;
  double conf_sum = 0, loc_sum = 0;
  for (int b = 0; b < c.batch(); ++b) {
    n += out.positives[b];
    for (int p = 0; p < P; ++p) {
      const size_t i = static_cast<size_t>(b) * P + p;
      const int32_t m = out.matches[i];
      if (m < 0 && !out.mined[i]) continue;
      conf_sum += cross_entropy(&data.conf[i * C], C, target_class(data, out, b, P, p));
      ++conf_terms;
      if (m < 0) continue;
      // The backend's own float targets (checked against the ground truth by the encode/decode property): a double
      // re-encoding would differ from them by float rounding amplified 1 / (w_prior * var) times, which is the
      // encoding's tolerance, not the loss's.
      for (int k = 0; k < 4; ++k)
        loc_sum += smooth_l1(static_cast<double>(data.loc[i * 4 + k]) - out.targets[i * 4 + k], c.config.smooth_l1_beta);
    }
  }
  const std::string ctx = context_of(backend, "loss definition");
  if (loss.num_positives != n) fail(fmt::format("{}: N = {} but the positives sum to {}", ctx, loss.num_positives, n));
  for (double v : {loss.total, loss.conf, loss.loc, loss.conf_sum, loss.loc_sum})
    if (!std::isfinite(v) || v < 0)
      fail(fmt::format("{}: a loss term is {} (total {}, conf {}, loc {}, conf_sum {}, loc_sum {})", ctx, v, loss.total,
                       loss.conf, loss.loc, loss.conf_sum, loss.loc_sum));
  // The comparator's absolute floors, per term summed: a sum of confident rows' CEs (logits of 1e4, each CE a few
  // ulps of 1e4 or exactly 0) has no meaningful relative error, which made this property fail about once in 100
  // seeds for simd.
  const LossAbsFloors floor =
      loss_abs_floors(static_cast<double>(conf_terms), n, static_cast<double>(c.config.alpha));
  require_close_scalar("conf_sum", conf_sum, loss.conf_sum, kLossRelTol, ctx, floor.conf_sum);
  require_close_scalar("loc_sum", loc_sum, loss.loc_sum, kLossRelTol, ctx, floor.loc_sum);
  if (n == 0) {
    if (loss.total != 0 || loss.conf != 0 || loss.loc != 0)
      fail(fmt::format("{}: N = 0 but total {} conf {} loc {} (must be 0)", ctx, loss.total, loss.conf, loss.loc));
    RC_TAG("N = 0");
    return;
  }
  const double N = static_cast<double>(n);
  require_close_scalar("total", (conf_sum + static_cast<double>(c.config.alpha) * loc_sum) / N, loss.total, kLossRelTol,
                       ctx, floor.total);
  require_close_scalar("conf", conf_sum / N, loss.conf, kLossRelTol, ctx, floor.conf);
  require_close_scalar("loc", loc_sum / N, loss.loc, kLossRelTol, ctx, floor.loc);
  RC_TAG("N > 0");
}

void prop_no_positives(const Backend& backend) {
  CaseOptions options;
  options.scenes = {SceneKind::empty, SceneKind::far_away};
  const Case c = *gen_case(options);
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::backward);
  const std::string ctx = context_of(backend, "N = 0");
  for (int b = 0; b < c.batch(); ++b)
    if (out.positives[b] != 0) fail(fmt::format("{}: image {} has {} positives; its boxes overlap no prior", ctx, b,
                                                out.positives[b]));
  if (out.loss.num_positives != 0 || out.loss.total != 0 || out.loss.conf != 0 || out.loss.loc != 0)
    fail(fmt::format("{}: N {} total {} conf {} loc {} (all must be 0)", ctx, out.loss.num_positives, out.loss.total,
                     out.loss.conf, out.loss.loc));
  for (size_t i = 0; i < out.grad_conf.size(); ++i)
    if (out.grad_conf[i] != 0.0f) fail(fmt::format("{}: grad_conf[{}] = {} (must be 0)", ctx, i, out.grad_conf[i]));
  for (size_t i = 0; i < out.grad_loc.size(); ++i)
    if (out.grad_loc[i] != 0.0f) fail(fmt::format("{}: grad_loc[{}] = {} (must be 0)", ctx, i, out.grad_loc[i]));
  RC_TAG(c.config.min_negatives_per_image > 0 ? "min_neg > 0" : "min_neg = 0");
}

void prop_extreme_logits(const Backend& backend) {
  CaseOptions options;
  options.logits = {LogitKind::extreme};
  options.scenes = {SceneKind::jittered, SceneKind::adversarial, SceneKind::crowded, SceneKind::random};
  const Case c = *gen_case(options);
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::backward);
  const std::string ctx = context_of(backend, "extreme logits");
  const LossTerms& l = out.loss;
  for (double v : {l.total, l.conf, l.loc, l.conf_sum, l.loc_sum})
    if (!std::isfinite(v) || v < 0)
      fail(fmt::format("{}: loss term {} (total {}, conf {}, loc {}); must be finite and >= 0", ctx, v, l.total, l.conf,
                       l.loc));
  // softmax - onehot lies in [-1, 1], so no conf gradient may exceed 1/N in magnitude.
  const double bound = l.num_positives > 0 ? (1.0 + 1e-6) / static_cast<double>(l.num_positives) : 0.0;
  for (size_t i = 0; i < out.grad_conf.size(); ++i)
    if (!std::isfinite(out.grad_conf[i]) || std::abs(out.grad_conf[i]) > bound)
      fail(fmt::format("{}: grad_conf[image {}][prior {}][class {}] = {} (must be finite, |g| <= 1/N = {})", ctx,
                       i / c.num_classes / c.priors.count(), i / c.num_classes % c.priors.count(), i % c.num_classes,
                       out.grad_conf[i], bound));
  for (size_t i = 0; i < out.grad_loc.size(); ++i)
    if (!std::isfinite(out.grad_loc[i])) fail(fmt::format("{}: grad_loc[{}] = {}", ctx, i, out.grad_loc[i]));
  RC_TAG(l.num_positives > 0 ? "N > 0" : "N = 0");
}

void prop_finite_differences(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::backward);
  const int P = c.priors.count(), C = c.num_classes;
  const int64_t n = out.loss.num_positives;
  if (n == 0) {
    RC_TAG("N = 0 (covered by the N = 0 property)");
    return;
  }
  const double N = static_cast<double>(n);
  const double alpha = c.config.alpha, beta = c.config.smooth_l1_beta;
  std::vector<size_t> contributing, idle, positive;
  for (size_t i = 0; i < out.matches.size(); ++i) {
    const bool pos = out.matches[i] >= 0;
    (pos || out.mined[i] ? contributing : idle).push_back(i);
    if (pos) positive.push_back(i);
  }
  // A few rows spread over each group keep the cost bounded on 8732-prior sets.
  auto spread = [](const std::vector<size_t>& rows, size_t count) {
    std::vector<size_t> picked;
    for (size_t k = 0; k < std::min(count, rows.size()); ++k) picked.push_back(rows[k * rows.size() / std::min(count, rows.size())]);
    return picked;
  };
  const std::string ctx = context_of(backend, "finite differences");
  // The loss with the selection held fixed is a sum of per-row terms, so the difference quotient of the loss equals
  // that of the one row term the element lives in (the other terms cancel exactly).
  for (size_t row : spread(contributing, 4)) {
    const int b = static_cast<int>(row / P), p = static_cast<int>(row % P);
    const int y = target_class(data, out, b, P, p);
    std::vector<float> logits(&data.conf[row * C], &data.conf[row * C] + C);
    for (int k = 0; k < C; ++k) {
      auto term = [&](double delta) {
        // Evaluate the float loss in double at a perturbed point: same formula as cross_entropy, one element moved.
        double m = -INFINITY;
        for (int j = 0; j < C; ++j) m = std::max(m, logits[j] + (j == k ? delta : 0.0));
        double s = 0;
        for (int j = 0; j < C; ++j) s += std::exp(logits[j] + (j == k ? delta : 0.0) - m);
        return (m + std::log(s) - (logits[y] + (y == k ? delta : 0.0))) / N;
      };
      const double fd = (term(kFdStepConf) - term(-kFdStepConf)) / (2 * kFdStepConf);
      const double g = out.grad_conf[row * C + k];
      if (!(std::abs(fd - g) <= kFdRelTol * std::abs(fd) + kFdAbsTol / N))
        fail(fmt::format("{}: dL/dconf[image {}][prior {}][class {}] = {:.9g} but the central difference (h = {:g}) "
                         "is {:.9g} (target class {}, N = {})",
                         ctx, b, p, k, g, kFdStepConf, fd, y, n));
    }
  }
  for (size_t row : spread(positive, 4)) {
    const int b = static_cast<int>(row / P), p = static_cast<int>(row % P);
    for (int k = 0; k < 4; ++k) {
      const double d = static_cast<double>(data.loc[row * 4 + k]) - out.targets[row * 4 + k];
      // Central differences across a kink of smooth L1 (|d| = beta, or d = 0 for plain L1) measure the average of
      // two slopes; those points are skipped.
      if (std::abs(std::abs(d) - beta) < 2 * kFdStepLoc || (beta == 0 && std::abs(d) < 2 * kFdStepLoc)) continue;
      const double fd = alpha * (smooth_l1(d + kFdStepLoc, beta) - smooth_l1(d - kFdStepLoc, beta)) / (2 * kFdStepLoc) / N;
      const double g = out.grad_loc[row * 4 + k];
      if (!(std::abs(fd - g) <= kFdRelTol * std::abs(fd) + kFdAbsTol * std::max(1.0, alpha) / N))
        fail(fmt::format("{}: dL/dloc[image {}][prior {}][{}] = {:.9g} but the central difference (h = {:g}) is {:.9g} "
                         "(loc - target = {:.9g}, beta {}, alpha {}, N = {})",
                         ctx, b, p, k, g, kFdStepLoc, fd, d, beta, alpha, n));
    }
  }
  // Rows outside the selection have no influence on L: their gradient is exactly 0.
  for (size_t row : spread(idle, 3)) {
    for (int k = 0; k < C; ++k)
      if (out.grad_conf[row * C + k] != 0.0f)
        fail(fmt::format("{}: dL/dconf[image {}][prior {}][class {}] = {} for a prior that is neither positive nor "
                         "mined (must be 0)",
                         ctx, row / P, row % P, k, out.grad_conf[row * C + k]));
    for (int k = 0; k < 4; ++k)
      if (out.grad_loc[row * 4 + k] != 0.0f)
        fail(fmt::format("{}: dL/dloc[image {}][prior {}][{}] = {} for a non-positive prior (must be 0)", ctx, row / P,
                         row % P, k, out.grad_loc[row * 4 + k]));
  }
  RC_TAG(to_string(c.predictions.logits));
}

void prop_encode_decode(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const BatchOutputs out = run_case(backend, c, data, Stage::encode);
  const int P = c.priors.count();
  const double vxy = c.config.variance_xy, vwh = c.config.variance_wh;
  size_t checked = 0;
  for (int b = 0; b < c.batch(); ++b) {
    for (int p = 0; p < P; ++p) {
      const size_t i = static_cast<size_t>(b) * P + p;
      const int32_t m = out.matches[i];
      const float* t = &out.targets[i * 4];
      if (m < 0) {
        if (t[0] != 0 || t[1] != 0 || t[2] != 0 || t[3] != 0)
          fail(fmt::format("image {}, prior {}: {} prior has non-zero targets ({}, {}, {}, {})", b, p, describe_match(m),
                           t[0], t[1], t[2], t[3]));
        continue;
      }
      const float* v = prior_of(c, p);
      const core::Box g = gt_box(data, b, m);
      // Decode in double so only the encoding's error is measured.
      const double cx = t[0] * vxy * v[2] + v[0], cy = t[1] * vxy * v[3] + v[1];
      const double w = std::exp(t[2] * vwh) * v[2], h = std::exp(t[3] * vwh) * v[3];
      const double decoded[4] = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
      const double truth[4] = {g.x1, g.y1, g.x2, g.y2};
      // Tolerance: what kTargetRelTol/kTargetAbsTol allow on the targets, propagated through decoding, plus 8 float
      // ulps of the largest magnitude involved (rounding of the centre, width and corners in float encoding).
      const double magnitude = std::max({std::abs(truth[0]), std::abs(truth[2]), std::abs(truth[1]),
                                         std::abs(truth[3]), std::abs(static_cast<double>(v[0])),
                                         std::abs(static_cast<double>(v[1])), static_cast<double>(v[2]),
                                         static_cast<double>(v[3])});
      for (int k = 0; k < 4; ++k) {
        const int axis = k % 2;  // 0: x, 1: y
        const double dc = (kTargetAbsTol + kTargetRelTol * std::abs(t[axis])) * vxy * v[2 + axis];
        const double size = axis == 0 ? w : h;
        const double ds = size * std::expm1((kTargetAbsTol + kTargetRelTol * std::abs(t[2 + axis])) * vwh);
        const double tol = dc + ds / 2 + 8 * std::ldexp(magnitude, -23);
        if (!(std::abs(decoded[k] - truth[k]) <= tol))
          fail(fmt::format("image {}, prior {} (gt {}): decode(encode(gt)) coordinate {} is {:.9g}, gt has {:.9g} "
                           "(|diff| {:.3g} > tolerance {:.3g}); targets ({:.9g}, {:.9g}, {:.9g}, {:.9g})",
                           b, p, m, k, decoded[k], truth[k], std::abs(decoded[k] - truth[k]), tol, t[0], t[1], t[2],
                           t[3]));
      }
      ++checked;
    }
  }
  RC_TAG(checked > 0 ? "positives encoded" : "no positives");
}

namespace {

// True when some prior has two GTs at the same positive IoU (then the lowest-index rule decides and a permutation
// may legitimately change the answer), or, in argmax mode, when two GTs share their best prior (highest index wins).
bool order_dependent(const Case& c, const BatchData& data, int b) {
  const int G = data.gt_offsets[b + 1] - data.gt_offsets[b], P = c.priors.count();
  const std::vector<float> iou = iou_matrix(c, data, b);
  for (int p = 0; p < P; ++p) {
    std::vector<float> column;
    for (int g = 0; g < G; ++g)
      if (iou[static_cast<size_t>(g) * P + p] > 0) column.push_back(iou[static_cast<size_t>(g) * P + p]);
    std::sort(column.begin(), column.end());
    if (std::adjacent_find(column.begin(), column.end()) != column.end()) return true;
  }
  if (c.config.forced_match == ForcedMatch::argmax) {
    const std::vector<int32_t> forced = expected_argmax(iou, G, P);
    for (int g = 0; g < G; ++g)
      if (forced[g] < 0 && std::any_of(iou.begin() + static_cast<ptrdiff_t>(g) * P, iou.begin() + static_cast<ptrdiff_t>(g + 1) * P,
                                       [](float v) { return v > 0; }))
        return true;
  }
  return false;
}

void require_same_loss(const LossTerms& expected, const LossTerms& actual, const std::string& ctx) {
  if (expected.num_positives != actual.num_positives)
    fail(fmt::format("{}: N is {}, expected {}", ctx, actual.num_positives, expected.num_positives));
  require_close_scalar("loss.total", expected.total, actual.total, kLossRelTol, ctx);
  require_close_scalar("loss.conf_sum", expected.conf_sum, actual.conf_sum, kLossRelTol, ctx);
  require_close_scalar("loss.loc_sum", expected.loc_sum, actual.loc_sum, kLossRelTol, ctx);
}

// Everything from mining on (mined set, K_b, targets, loss terms, gradients) must be unchanged.
void require_same_mining_loss_and_gradients(const BatchOutputs& a, const BatchOutputs& z, const std::string& ctx) {
  require_equal("mined_negatives", a.mined_negatives, z.mined_negatives, ctx);
  require_equal("mined", a.mined, z.mined, ctx);
  require_close("targets", a.targets, z.targets, kTargetRelTol, kTargetAbsTol, ctx);
  require_same_loss(a.loss, z.loss, ctx);
  require_close("grad_conf", a.grad_conf, z.grad_conf, kGradRelTol, grad_abs_tol(a.loss.num_positives), ctx);
  require_close("grad_loc", a.grad_loc, z.grad_loc, kGradRelTol, grad_abs_tol(a.loss.num_positives), ctx);
}

}  // namespace

void prop_permute_ground_truths(const Backend& backend) {
  CaseOptions options;
  options.scenes = {SceneKind::random, SceneKind::jittered, SceneKind::crowded, SceneKind::adversarial};
  const Case c = *gen_case(options);
  const BatchData data = c.materialise();
  for (int b = 0; b < c.batch(); ++b)
    if (order_dependent(c, data, b)) {
      RC_TAG("tied IoUs: skipped (the index tie rule may change the answer)");
      return;
    }
  // perm[b][old] = new index, from sorting random keys (a uniformly shrinkable permutation).
  Case permuted = c;
  std::vector<std::vector<int>> perm(c.batch());
  for (int b = 0; b < c.batch(); ++b) {
    const size_t G = c.images[b].labels.size();
    const auto keys = *gen::container<std::vector<int>>(G, gen::inRange(0, 1 << 20));
    std::vector<int> order(G);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return keys[x] < keys[y]; });
    perm[b].resize(G);
    Scene& s = permuted.images[b];
    for (size_t k = 0; k < G; ++k) {
      perm[b][order[k]] = static_cast<int>(k);
      s.boxes[k] = c.images[b].boxes[order[k]];
      s.labels[k] = c.images[b].labels[order[k]];
      s.notes[k] = c.images[b].notes[order[k]];
    }
  }
  const BatchData pdata = permuted.materialise();
  const BatchOutputs a = run_case(backend, c, data, Stage::backward);
  const BatchOutputs z = run_case(backend, permuted, pdata, Stage::backward);
  const std::string ctx = context_of(backend, "GT permutation");
  const int P = c.priors.count();
  for (int b = 0; b < c.batch(); ++b) {
    for (int p = 0; p < P; ++p) {
      const int32_t m = a.matches[static_cast<size_t>(b) * P + p];
      const int32_t want = m >= 0 ? perm[b][m] : m;
      if (z.matches[static_cast<size_t>(b) * P + p] != want)
        fail(fmt::format("{}: image {}, prior {}: matched {} after permuting, expected {} (was {} before)", ctx, b, p,
                         describe_match(z.matches[static_cast<size_t>(b) * P + p]), describe_match(want),
                         describe_match(m)));
    }
    for (size_t g = 0; g < perm[b].size(); ++g)
      if (z.forced_prior[data.gt_offsets[b] + perm[b][g]] != a.forced_prior[data.gt_offsets[b] + g])
        fail(fmt::format("{}: image {}, gt {} (now {}): forced prior {} after permuting, {} before", ctx, b, g,
                         perm[b][g], z.forced_prior[data.gt_offsets[b] + perm[b][g]],
                         a.forced_prior[data.gt_offsets[b] + g]));
  }
  require_equal("positives", a.positives, z.positives, ctx);
  require_equal("unmatched_ground_truths", a.unmatched_ground_truths, z.unmatched_ground_truths, ctx);
  require_same_mining_loss_and_gradients(a, z, ctx);
  RC_TAG("tie-free: checked");
}

void prop_scale_power_of_two(const Backend& backend) {
  const Case c = *gen_case();
  const int exponent = *gen::element(-3, -1, 1, 2, 5);
  // Multiplying every coordinate by 2^k is exact in float (no overflow or subnormals at these magnitudes), and so is
  // every step of the IoU and of the encoding: the matching decisions and targets must not move at all.
  Case scaled = c;
  for (float& v : scaled.priors.boxes) v = std::ldexp(v, exponent);
  for (Scene& s : scaled.images)
    for (BoxCorners& box : s.boxes)
      for (float& v : box) v = std::ldexp(v, exponent);
  const BatchData data = c.materialise(), sdata = scaled.materialise();
  const BatchOutputs a = run_case(backend, c, data, Stage::forward);
  const BatchOutputs z = run_case(backend, scaled, sdata, Stage::forward);
  const std::string ctx = context_of(backend, fmt::format("coordinates scaled by 2^{}", exponent).c_str());
  require_equal("matches", a.matches, z.matches, ctx);
  require_equal("forced_prior", a.forced_prior, z.forced_prior, ctx);
  require_equal("positives", a.positives, z.positives, ctx);
  require_equal("unmatched_ground_truths", a.unmatched_ground_truths, z.unmatched_ground_truths, ctx);
  require_close("targets", a.targets, z.targets, kTargetRelTol, kTargetAbsTol, ctx);
  require_equal("mined_negatives", a.mined_negatives, z.mined_negatives, ctx);
  require_equal("mined", a.mined, z.mined, ctx);
  require_same_loss(a.loss, z.loss, ctx);
}

void prop_split_batch(const Backend& backend) {
  CaseOptions options;
  options.max_batch = 4;
  const Case c = *gen_case(options);
  const BatchData data = c.materialise();
  const BatchOutputs full = run_case(backend, c, data, Stage::backward);
  const std::string ctx = context_of(backend, "batch split into single images");
  const int P = c.priors.count(), C = c.num_classes;
  const double N = static_cast<double>(full.loss.num_positives);
  double conf_sum = 0, loc_sum = 0;
  int64_t n = 0;
  for (int b = 0; b < c.batch(); ++b) {
    const BatchData one = image_slice(c, data, b);
    const ProblemShape shape{1, P, C, static_cast<int>(one.gt_labels.size())};
    const BatchOutputs single = run_backend(backend, shape, c.priors.boxes, c.config, one, Stage::backward);
    const std::string where = fmt::format("{}, image {}", ctx, b);
    const size_t r0 = static_cast<size_t>(b) * P;
    auto slice = [](const auto& v, size_t from, size_t count) {
      return std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + from, v.begin() + from + count);
    };
    require_equal("matches", slice(full.matches, r0, P), single.matches, where);
    require_equal("forced_prior", slice(full.forced_prior, data.gt_offsets[b], one.gt_labels.size()),
                  single.forced_prior, where);
    require_equal("mined", slice(full.mined, r0, P), single.mined, where);
    if (full.positives[b] != single.positives[0] || full.mined_negatives[b] != single.mined_negatives[0])
      fail(fmt::format("{}: P_b/K_b {}/{} in the batch, {}/{} alone", where, full.positives[b],
                       full.mined_negatives[b], single.positives[0], single.mined_negatives[0]));
    conf_sum += single.loss.conf_sum;
    loc_sum += single.loss.loc_sum;
    n += single.loss.num_positives;
    // Re-normalise the image's gradients from 1/N_b to 1/N. An image without positives has all-zero gradients
    // alone (its L is 0 by definition) even when its mined negatives count in the batch, so it is skipped.
    if (single.loss.num_positives == 0) continue;
    const double factor = static_cast<double>(single.loss.num_positives) / N;
    std::vector<float> renormalised(single.grad_conf.size());
    for (size_t i = 0; i < renormalised.size(); ++i) renormalised[i] = static_cast<float>(single.grad_conf[i] * factor);
    require_close("grad_conf", slice(full.grad_conf, r0 * C, static_cast<size_t>(P) * C), renormalised,
                  2 * kGradRelTol, grad_abs_tol(full.loss.num_positives), where);
    renormalised.resize(single.grad_loc.size());
    for (size_t i = 0; i < renormalised.size(); ++i) renormalised[i] = static_cast<float>(single.grad_loc[i] * factor);
    require_close("grad_loc", slice(full.grad_loc, r0 * 4, static_cast<size_t>(P) * 4), renormalised, 2 * kGradRelTol,
                  grad_abs_tol(full.loss.num_positives), where);
  }
  if (n != full.loss.num_positives)
    fail(fmt::format("{}: N = {} for the batch, the images' N_b sum to {}", ctx, full.loss.num_positives, n));
  require_close_scalar("conf_sum", conf_sum, full.loss.conf_sum, kLossRelTol, ctx);
  require_close_scalar("loc_sum", loc_sum, full.loss.loc_sum, kLossRelTol, ctx);
  if (n > 0)
    require_close_scalar("total", (conf_sum + static_cast<double>(c.config.alpha) * loc_sum) / N, full.loss.total,
                         kLossRelTol, ctx);
  RC_TAG(fmt::format("B = {}", c.batch()));
}

void prop_add_far_ground_truth(const Backend& backend) {
  const Case c = *gen_case();
  const int b = *gen::inRange(0, c.batch());
  const int G = static_cast<int>(c.images[b].labels.size());
  const int at = *gen::inRange(0, G + 1);
  const float offset = *gen::element(0.0f, 0.25f, 3.0f);
  const int label = *gen::inRange(1, c.num_classes);
  Case more = c;
  Scene& s = more.images[b];
  s.boxes.insert(s.boxes.begin() + at, far_box(c.priors, offset, 0.125f));
  s.labels.insert(s.labels.begin() + at, label);
  s.notes.insert(s.notes.begin() + at, "added: overlaps no prior");
  const BatchData data = c.materialise(), mdata = more.materialise();
  const BatchOutputs a = run_case(backend, c, data, Stage::backward);
  const BatchOutputs z = run_case(backend, more, mdata, Stage::backward);
  const std::string ctx = context_of(backend, fmt::format("gt added to image {} at index {}", b, at).c_str());
  const int P = c.priors.count();
  std::vector<int32_t> matches = a.matches;  // indices at or after the insertion point move up by one
  for (int p = 0; p < P; ++p)
    if (int32_t& m = matches[static_cast<size_t>(b) * P + p]; m >= at) ++m;
  require_equal("matches", matches, z.matches, ctx);
  std::vector<int32_t> forced = a.forced_prior;
  forced.insert(forced.begin() + data.gt_offsets[b] + at, -1);
  require_equal("forced_prior", forced, z.forced_prior, ctx);
  std::vector<int32_t> unmatched = a.unmatched_ground_truths;
  ++unmatched[b];
  require_equal("unmatched_ground_truths", unmatched, z.unmatched_ground_truths, ctx);
  require_equal("positives", a.positives, z.positives, ctx);
  require_same_mining_loss_and_gradients(a, z, ctx);
}

void prop_agrees_with_reference(const Backend& backend) {
  const Case c = *gen_case();
  const Stage stage = *gen::weightedElement<Stage>(
      {{1, Stage::match}, {1, Stage::encode}, {1, Stage::forward}, {3, Stage::backward}});
  const BatchData data = c.materialise();
  const BatchOutputs reference = run_case(reference_backend(), c, data, stage);
  const BatchOutputs candidate = run_case(backend, c, data, stage);
  const AgreementReport report =
      compare_outputs(c.shape(), c.config, data.ground_truths(), data.predictions(), stage, reference, candidate);
  const Verdict verdict = report.overall();
  if (verdict == Verdict::failed)
    fail(fmt::format("backend '{}' disagrees with the reference '{}' at stage {}:\n{}", backend.name(),
                     reference_backend().name(), to_string(stage), report.to_string()));
  RC_TAG(to_string(stage), to_string(verdict));
}

void prop_deterministic(const Backend& backend) {
  const Case c = *gen_case();
  const BatchData data = c.materialise();
  const std::string ctx = context_of(backend, "determinism");
  auto plan = backend.prepare(c.shape(), c.priors.boxes, c.config);
  if (!plan.ok()) fail(fmt::format("{}: prepare failed: {}", ctx, plan.status().to_string()));
  // The same plan run twice (scratch reused), then fresh plans at several thread counts: all bit-identical.
  BatchOutputs first(c.shape(), c.total_ground_truths()), second(c.shape(), c.total_ground_truths());
  for (BatchOutputs* out : {&first, &second}) {
    const Status s = (*plan)->run(data.ground_truths(), data.predictions(), Stage::backward, out->view());
    if (!s.ok()) fail(fmt::format("{}: run failed: {}", ctx, s.to_string()));
  }
  if (std::string d = bit_difference(first, second); !d.empty())
    fail(fmt::format("{}: two runs of one plan differ at {}", ctx, d));
  for (int threads : {1, 2, 3}) {
    PlanOptions options;
    options.num_threads = threads;
    const BatchOutputs again = run_case(backend, c, data, Stage::backward, options);
    if (std::string d = bit_difference(first, again); !d.empty())
      fail(fmt::format("{}: num_threads = {} differs from the default at {}", ctx, threads, d));
  }
}

void prop_rejects_invalid_input(const Backend& backend) {
  CaseOptions options;
  options.scenes = {SceneKind::random, SceneKind::jittered, SceneKind::adversarial};
  options.standard_set_weight = 0;
  const Case c = *gen_case(options);
  BatchData data = c.materialise();
  const int kind = *gen::inRange(0, 4);
  const int b = *gen::inRange(0, c.batch());
  const int G = data.gt_offsets[b + 1] - data.gt_offsets[b];
  const int P = c.priors.count(), C = c.num_classes;
  std::string what;
  if (kind <= 1 && G > 0) {
    const int g = *gen::inRange(0, G);
    float* box = &data.gt_boxes[static_cast<size_t>(data.gt_offsets[b] + g) * 4];
    if (kind == 0) {
      box[2] = box[0];  // zero width
      what = fmt::format("image {}, ground truth {}", b, g);
    } else {
      data.gt_labels[data.gt_offsets[b] + g] = *gen::element(0, C, -3);
      what = fmt::format("image {}, ground truth {}", b, g);
    }
  } else {
    const int p = *gen::inRange(0, P);
    const float bad = *gen::element(NAN, INFINITY, -INFINITY);
    if (kind == 3) {
      data.loc[(static_cast<size_t>(b) * P + p) * 4 + *gen::inRange(0, 4)] = bad;
      what = fmt::format("loc[image {}][prior {}]", b, p);
    } else {
      data.conf[(static_cast<size_t>(b) * P + p) * C + *gen::inRange(0, C)] = bad;
      what = fmt::format("conf[image {}][prior {}]", b, p);
    }
  }
  auto plan = backend.prepare(c.shape(), c.priors.boxes, c.config);
  if (!plan.ok()) fail(fmt::format("backend '{}': prepare failed: {}", backend.name(), plan.status().to_string()));
  BatchOutputs out(c.shape(), c.total_ground_truths());
  const Status s = (*plan)->run(data.ground_truths(), data.predictions(), Stage::backward, out.view());
  if (s.ok()) fail(fmt::format("backend '{}' accepted an invalid batch ({} corrupted)", backend.name(), what));
  if (s.message().find(what) == std::string::npos)
    fail(fmt::format("backend '{}' rejected the batch but its message does not name '{}': {}", backend.name(), what,
                     s.to_string()));
}

}  // namespace multibox::proptest
