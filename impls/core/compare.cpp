// The agreement rules of DESIGN.md section 6: exact for integer outputs, near-tie aware for the mined sets,
// relative (plus an absolute floor for elementwise gradients, scaled by 1/N, and targets) for floating-point outputs.
#include "multibox/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "math.hpp"

namespace multibox {

const char* to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::passed: return "PASSED";
    case Verdict::failed: return "FAILED";
    case Verdict::mistrusted: return "MISTRUSTED";
  }
  return "UNKNOWN";
}

Verdict AgreementReport::overall() const noexcept {
  Verdict result = Verdict::passed;
  for (const QuantityVerdict& q : quantities) {
    if (q.verdict == Verdict::failed) return Verdict::failed;
    if (q.verdict == Verdict::mistrusted) result = Verdict::mistrusted;
  }
  return result;
}

std::string AgreementReport::to_string() const {
  std::string text;
  for (const QuantityVerdict& q : quantities) {
    text += fmt::format("  {:<11} {:<18} {:>10} elements", multibox::to_string(q.verdict), q.quantity, q.elements);
    if (q.mismatches > 0) text += fmt::format(", {} outside tolerance", q.mismatches);
    if (!q.detail.empty()) text += ": " + q.detail;
    text += '\n';
  }
  return text;
}

namespace {

// Names element `index` of a [B][P][inner] array the way a user indexes it.
std::string name_element(size_t index, int num_priors, int inner, const char* inner_name) {
  const size_t row = inner > 0 ? index / static_cast<size_t>(inner) : index;
  std::string name = fmt::format("image {}, prior {}", row / static_cast<size_t>(num_priors),
                                 row % static_cast<size_t>(num_priors));
  if (inner > 0) name += fmt::format(", {} {}", inner_name, index % static_cast<size_t>(inner));
  return name;
}

// Image and in-image index of global ground truth `index`.
std::string name_ground_truth(const GroundTruthView& gt, size_t index) {
  int image = 0;
  while (image + 1 < gt.batch() && static_cast<size_t>(gt.offsets[image + 1]) <= index) ++image;
  return fmt::format("image {}, ground truth {}", image, index - static_cast<size_t>(gt.offsets[image]));
}

QuantityVerdict size_mismatch(std::string quantity, size_t reference, size_t candidate) {
  QuantityVerdict q;
  q.quantity = std::move(quantity);
  q.verdict = Verdict::failed;
  q.elements = reference;
  q.mismatches = reference > candidate ? reference - candidate : candidate - reference;
  q.detail = fmt::format("reference holds {} elements, candidate {}", reference, candidate);
  return q;
}

// Integer outputs must agree exactly; the first differing element is named (there is no "worst" among labels).
template <class T>
QuantityVerdict compare_exact(std::string quantity, std::span<const T> reference, std::span<const T> candidate,
                              const std::function<std::string(size_t)>& name) {
  if (reference.size() != candidate.size()) return size_mismatch(std::move(quantity), reference.size(), candidate.size());
  QuantityVerdict q;
  q.quantity = std::move(quantity);
  q.elements = reference.size();
  for (size_t i = 0; i < reference.size(); ++i) {
    if (reference[i] == candidate[i]) continue;
    if (q.mismatches++ == 0)
      q.detail = fmt::format("{}: reference {}, candidate {}", name(i), static_cast<int64_t>(reference[i]),
                             static_cast<int64_t>(candidate[i]));
    q.worst_error = std::max(q.worst_error, std::abs(static_cast<double>(reference[i]) - candidate[i]));
  }
  if (q.mismatches > 0) {
    q.verdict = Verdict::failed;
    q.detail = fmt::format("{} of {} differ, first at {}", q.mismatches, q.elements, q.detail);
  } else if (q.elements == 0) {
    q.verdict = Verdict::mistrusted;
    q.detail = "nothing to compare (zero elements)";
  }
  return q;
}

// Elementwise |c - r| <= abs_tol + rel_tol * |r|. NaN or Inf in either side fails (a reference never produces one,
// and a NaN comparison would otherwise slip through as "not greater than the tolerance"). worst_error is the
// relative error of the element furthest outside (or closest to) its tolerance, with |r| floored at abs/rel.
QuantityVerdict compare_close(std::string quantity, std::span<const float> reference, std::span<const float> candidate,
                              double rel_tol, double abs_tol, const std::function<std::string(size_t)>& name,
                              const std::function<double(size_t)>& slack = nullptr) {
  if (reference.size() != candidate.size()) return size_mismatch(std::move(quantity), reference.size(), candidate.size());
  QuantityVerdict q;
  q.quantity = std::move(quantity);
  q.elements = reference.size();
  double worst_excess = -1;  // error / allowed error of the worst element
  size_t worst = 0, first_nonfinite = reference.size();
  bool any_nonzero = false;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i], c = candidate[i];
    if (!std::isfinite(c) || !std::isfinite(r)) {
      ++q.mismatches;
      if (first_nonfinite == reference.size()) first_nonfinite = i;
      continue;
    }
    any_nonzero = any_nonzero || r != 0.0 || c != 0.0;
    const double err = std::abs(c - r);
    const double allowed = abs_tol + rel_tol * std::abs(r) + (slack ? slack(i) : 0.0);
    if (err > allowed) ++q.mismatches;
    const double excess = err / allowed;
    if (excess > worst_excess) worst_excess = excess, worst = i;
    q.worst_error = std::max(q.worst_error, err / std::max(std::abs(r), abs_tol / rel_tol));
  }
  if (first_nonfinite < reference.size()) {
    q.verdict = Verdict::failed;
    q.worst_error = std::numeric_limits<double>::infinity();
    q.detail = fmt::format("{}: reference {:.9g}, candidate {:.9g} (not finite)", name(first_nonfinite),
                           reference[first_nonfinite], candidate[first_nonfinite]);
    return q;
  }
  if (q.elements == 0) {
    q.verdict = Verdict::mistrusted;
    q.detail = "nothing to compare (zero elements)";
    return q;
  }
  const double r = reference[worst], c = candidate[worst];
  const std::string worst_text =
      fmt::format("{}: reference {:.9g}, candidate {:.9g}, |diff| {:.3g} (allowed {:.3g})", name(worst), r, c,
                  std::abs(c - r), abs_tol + rel_tol * std::abs(r) + (slack ? slack(worst) : 0.0));
  if (q.mismatches > 0) {
    q.verdict = Verdict::failed;
    q.detail = "worst at " + worst_text;
  } else if (!any_nonzero) {
    q.verdict = Verdict::mistrusted;
    q.detail = "every element is 0 in both: agreement proves nothing";
  } else {
    q.detail = "worst at " + worst_text;
  }
  return q;
}

QuantityVerdict compare_scalar(std::string quantity, double reference, double candidate, double rel_tol,
                               double abs_tol = 0.0) {
  QuantityVerdict q;
  q.quantity = std::move(quantity);
  q.elements = 1;
  const double err = std::abs(candidate - reference);
  q.worst_error = reference != 0.0 ? err / std::abs(reference) : err;
  q.detail = fmt::format("reference {:.17g}, candidate {:.17g}, rel err {:.3g}", reference, candidate, q.worst_error);
  if (!std::isfinite(candidate) || !std::isfinite(reference) ||
      !(err <= std::max(rel_tol * std::abs(reference), abs_tol))) {
    q.verdict = Verdict::failed;
    q.mismatches = 1;
  }
  return q;
}

// Mined sets: equal, or differing only among negatives whose reference CE is within kMiningTieRelEps of the
// K_b-th largest reference CE (a candidate whose CE rounds differently may legitimately break a near-tie
// the other way). Both sides of a swap are checked: what the candidate added and what it dropped.
QuantityVerdict compare_mined(const ProblemShape& shape, const PredictionView& pred,
                              const BatchOutputs& reference, const BatchOutputs& candidate) {
  const size_t bp = static_cast<size_t>(shape.batch) * shape.num_priors;
  if (reference.mined.size() != bp || candidate.mined.size() != bp)
    return size_mismatch("mined", reference.mined.size(), candidate.mined.size());
  QuantityVerdict q;
  q.quantity = "mined";
  q.elements = bp;
  const int P = shape.num_priors;
  const int C = shape.num_classes;
  const bool have_logits = pred.conf.size() == bp * static_cast<size_t>(C);
  int64_t total_quota = 0;
  size_t swaps = 0;
  std::string first_problem;
  auto problem = [&](std::string text) {
    ++q.mismatches;
    if (first_problem.empty()) first_problem = std::move(text);
  };
  std::vector<double> ce;
  for (int b = 0; b < shape.batch; ++b) {
    const size_t base = static_cast<size_t>(b) * P;
    int64_t ref_count = 0, cand_count = 0;
    bool differs = false;
    for (int p = 0; p < P; ++p) {
      ref_count += reference.mined[base + p] != 0;
      cand_count += candidate.mined[base + p] != 0;
      differs = differs || (reference.mined[base + p] != 0) != (candidate.mined[base + p] != 0);
      if (candidate.mined[base + p] != 0 && reference.matches[base + p] != kNegative)
        problem(fmt::format("image {}, prior {}: candidate selected a prior the reference matched as {}", b, p,
                            reference.matches[base + p] == kIgnored ? std::string("ignored")
                                                                    : fmt::format("positive (GT {})",
                                                                                  reference.matches[base + p])));
    }
    total_quota += ref_count;
    if (ref_count != cand_count)
      problem(fmt::format("image {}: reference selected {} negatives, candidate {}", b, ref_count, cand_count));
    if (!differs) continue;
    if (!have_logits) {
      problem(fmt::format("image {}: mined sets differ and no logits were given to judge near-ties", b));
      continue;
    }
    // Reference CE of every negative, in double, from the reference's own matches (negatives have target 0).
    ce.assign(P, 0.0);
    double threshold = std::numeric_limits<double>::infinity();  // the K_b-th largest reference CE
    for (int p = 0; p < P; ++p) {
      if (reference.matches[base + p] != kNegative) continue;
      const float* row = &pred.conf[(base + p) * static_cast<size_t>(C)];
      ce[p] = core::logsumexp<double>(row, C) - static_cast<double>(row[0]);
      if (reference.mined[base + p] != 0) threshold = std::min(threshold, ce[p]);
    }
    for (int p = 0; p < P; ++p) {
      const bool r = reference.mined[base + p] != 0, c = candidate.mined[base + p] != 0;
      if (r == c || reference.matches[base + p] != kNegative) continue;
      ++swaps;
      const double scale = std::max(1.0, std::abs(threshold));
      const double distance = std::isfinite(threshold) ? std::abs(ce[p] - threshold) / scale
                                                       : std::numeric_limits<double>::infinity();
      q.worst_error = std::max(q.worst_error, distance);
      if (!(distance <= kMiningTieRelEps))
        problem(fmt::format("image {}, prior {}: {} by the candidate with reference CE {:.9g}, but the K_b-th "
                            "largest CE is {:.9g} (relative gap {:.3g} > {:g}: not a near-tie)",
                            b, p, c ? "selected" : "dropped", ce[p], threshold, distance, kMiningTieRelEps));
    }
  }
  if (q.mismatches > 0) {
    q.verdict = Verdict::failed;
    q.detail = fmt::format("{} problem(s), first: {}", q.mismatches, first_problem);
  } else if (total_quota == 0) {
    q.verdict = Verdict::mistrusted;
    q.detail = "no negative selected anywhere in the batch: agreement proves nothing";
  } else if (swaps > 0) {
    q.detail = fmt::format("{} near-tie swap(s), largest relative CE gap {:.3g}", swaps, q.worst_error);
  }
  return q;
}

}  // namespace

AgreementReport compare_outputs(const ProblemShape& shape, const Config& config, const GroundTruthView& gt,
                                const PredictionView& pred, Stage stage, const BatchOutputs& reference,
                                const BatchOutputs& candidate, const CompareOptions& options) {
  AgreementReport report;
  const int P = shape.num_priors;
  const int C = shape.num_classes;
  auto prior_name = [P](size_t i) { return name_element(i, P, 0, ""); };
  auto image_name = [](size_t i) { return fmt::format("image {}", i); };
  auto gt_name = [&gt](size_t i) { return name_ground_truth(gt, i); };

  using I32 = std::span<const int32_t>;
  report.quantities.push_back(compare_exact<int32_t>("matches", I32(reference.matches), I32(candidate.matches),
                                                     prior_name));
  report.quantities.push_back(compare_exact<int32_t>("forced_prior", I32(reference.forced_prior),
                                                     I32(candidate.forced_prior), gt_name));
  report.quantities.push_back(compare_exact<int32_t>("positives", I32(reference.positives), I32(candidate.positives),
                                                     image_name));
  report.quantities.push_back(compare_exact<int32_t>("unmatched_gts", I32(reference.unmatched_ground_truths),
                                                     I32(candidate.unmatched_ground_truths), image_name));

  int64_t positives = 0;
  for (int32_t p : reference.positives) positives += p;
  // Everything below is computed from positives only (targets, loc loss, the normaliser N, the mining quota), so
  // when the batch has none, agreement there is agreement between two zeros.
  auto distrust_without_positives = [&](QuantityVerdict q) {
    if (positives == 0 && q.verdict == Verdict::passed) {
      q.verdict = Verdict::mistrusted;
      q.detail = "no positives in the whole batch: agreement proves nothing";
    }
    return q;
  };

  // Allowance for implementations that round-trip priors through corners (see kPriorRoundTripError).
  std::function<double(size_t)> target_slack, grad_loc_slack;
  if (options.priors.size() == static_cast<size_t>(P) * 4) {
    target_slack = [&options, &config, P](size_t i) {
      const size_t prior = (i / 4) % static_cast<size_t>(P), k = i % 4;
      const double side = options.priors[prior * 4 + 2 + (k % 2)];
      const double variance = k < 2 ? config.variance_xy : config.variance_wh;
      return kPriorRoundTripError / (variance * side);
    };
    const double n = static_cast<double>(std::max<int64_t>(1, reference.loss.num_positives));
    const double beta = config.smooth_l1_beta > 0 ? config.smooth_l1_beta : 1.0;  // L1's derivative is a step
    grad_loc_slack = [target_slack, &config, n, beta](size_t i) {
      return target_slack(i) * config.alpha / (beta * n);
    };
  }
  if (stage >= Stage::encode)
    report.quantities.push_back(distrust_without_positives(
        compare_close("targets", reference.targets, candidate.targets, kTargetRelTol, kTargetAbsTol,
                      [P](size_t i) { return name_element(i, P, 4, "coord"); }, target_slack)));
  if (stage >= Stage::forward) {
    report.quantities.push_back(compare_exact<int32_t>("mined_negatives", I32(reference.mined_negatives),
                                                       I32(candidate.mined_negatives), image_name));
    report.quantities.push_back(compare_mined(shape, pred, reference, candidate));
    QuantityVerdict n;
    n.quantity = "loss.N";
    n.elements = 1;
    if (reference.loss.num_positives != candidate.loss.num_positives) {
      n.verdict = Verdict::failed;
      n.mismatches = 1;
      n.worst_error = std::abs(static_cast<double>(reference.loss.num_positives - candidate.loss.num_positives));
      n.detail = fmt::format("reference {}, candidate {}", reference.loss.num_positives,
                             candidate.loss.num_positives);
    }
    report.quantities.push_back(distrust_without_positives(n));
    const LossTerms &r = reference.loss, &c = candidate.loss;
    // Absolute floors from the number of terms each total adds up (the reference's): CEs of positives and mined
    // negatives, four smooth-L1 coordinates per positive.
    double conf_terms = static_cast<double>(r.num_positives);
    for (int32_t k : reference.mined_negatives) conf_terms += k;
    const LossAbsFloors floor = loss_abs_floors(conf_terms, r.num_positives, static_cast<double>(config.alpha));
    report.quantities.push_back(
        distrust_without_positives(compare_scalar("loss.total", r.total, c.total, kLossRelTol, floor.total)));
    report.quantities.push_back(
        distrust_without_positives(compare_scalar("loss.conf", r.conf, c.conf, kLossRelTol, floor.conf)));
    report.quantities.push_back(
        distrust_without_positives(compare_scalar("loss.loc", r.loc, c.loc, kLossRelTol, floor.loc)));
    report.quantities.push_back(
        distrust_without_positives(compare_scalar("loss.conf_sum", r.conf_sum, c.conf_sum, kLossRelTol, floor.conf_sum)));
    report.quantities.push_back(
        distrust_without_positives(compare_scalar("loss.loc_sum", r.loc_sum, c.loc_sum, kLossRelTol, floor.loc_sum)));
  }
  if (stage >= Stage::backward) {
    // A near-tie swap in the mined sets (judged by compare_mined above) legitimately changes the gradient row of
    // each swapped prior. Those rows of the reference are re-derived for the candidate's selection, in double from
    // the logits: (softmax - onehot(background)) / N where the candidate mined the prior, 0 where it did not, so
    // the candidate's rows are still checked rather than skipped.
    const std::vector<float>* reference_grad = &reference.grad_conf;
    std::vector<float> reference_adjusted;
    const size_t rows = reference.mined.size();
    const size_t width = static_cast<size_t>(C);
    if (candidate.mined.size() == rows && reference.mined != candidate.mined &&
        reference.grad_conf.size() == rows * width && pred.conf.size() == rows * width) {
      reference_adjusted = reference.grad_conf;
      const double n = static_cast<double>(reference.loss.num_positives);
      for (size_t r = 0; r < rows; ++r) {
        if ((reference.mined[r] != 0) == (candidate.mined[r] != 0)) continue;
        float* expected = &reference_adjusted[r * width];
        const float* row = &pred.conf[r * width];
        const double lse = core::logsumexp<double>(row, C);
        for (int c = 0; c < C; ++c) {
          const double softmax = std::exp(static_cast<double>(row[c]) - lse);
          expected[c] = candidate.mined[r] != 0 && n > 0 ? static_cast<float>((softmax - (c == 0 ? 1.0 : 0.0)) / n)
                                                         : 0.0f;
        }
      }
      reference_grad = &reference_adjusted;
    }
    // The floors follow the reference's 1/N, the scale of every element.
    const int64_t n = reference.loss.num_positives;
    report.quantities.push_back(distrust_without_positives(
        compare_close("grad_conf", *reference_grad, candidate.grad_conf, kGradRelTol, grad_abs_tol(n),
                      [P, C](size_t i) { return name_element(i, P, C, "class"); })));
    report.quantities.push_back(distrust_without_positives(
        compare_close("grad_loc", reference.grad_loc, candidate.grad_loc, kGradRelTol, grad_abs_tol(n, config.alpha),
                      [P](size_t i) { return name_element(i, P, 4, "coord"); }, grad_loc_slack)));
  }
  return report;
}

}  // namespace multibox
