// Judges whether a candidate's outputs agree with the reference's under the rules of DESIGN.md section 6.
// Used by the conformance properties, `multibox validate` and the golden checks, so all three speak the same verdicts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"

namespace multibox {

// float32 logsumexp/softmax against a double-accumulating reference: a few ulps per term, summed over at most
// a few hundred thousand terms with pairwise-ish error growth, stays well inside 1e-5 relative on the totals.
inline constexpr double kLossRelTol = 1e-5;
// Absolute floor per loss term (a CE or a smooth-L1 coordinate), for totals near 0 where relative error is
// meaningless: CE = logsumexp - x[y] from logits of magnitude 1e4 carries a few ulps of 1e4 even in double (1.8e-12
// each), so a candidate that keeps a confident row's 4e-13 can disagree with a reference that rounds it to 0.
inline constexpr double kLossAbsTolPerTerm = 1e-7;
// The absolute floors of the loss totals, from the number of terms each adds up: `conf_terms` CEs (positives and
// mined negatives) and four smooth-L1 coordinates per positive; the normalised terms divide by max(N, 1).
struct LossAbsFloors {
  double conf_sum, loc_sum, conf, loc, total;
};
inline LossAbsFloors loss_abs_floors(double conf_terms, int64_t num_positives, double alpha) {
  const double conf_sum = kLossAbsTolPerTerm * conf_terms;
  const double loc_sum = kLossAbsTolPerTerm * 4.0 * static_cast<double>(num_positives);
  const double n = static_cast<double>(num_positives > 1 ? num_positives : 1);
  return {conf_sum, loc_sum, conf_sum / n, loc_sum / n, (conf_sum + (alpha < 0 ? -alpha : alpha) * loc_sum) / n};
}
// Per-element gradients are single float32 expressions of softmax - onehot divided by N: 1e-5 relative.
inline constexpr double kGradRelTol = 1e-5;
// Absolute floor for gradient elements near 0 (a confident row's softmax - 1, a softmax tail), in units of the
// gradient's own scale 1/N: every element is (softmax - onehot) / N or alpha * smoothL1' / N with both factors in
// [-1, 1], so float32 leaves an absolute error of ulps of 1.0 times 1/N (measured: at most 2.9e-7 / N on any element,
// and never over 21 % of the whole allowance, for simd, torchvision and the PyTorch example).
// A fixed floor instead would cover a 5e-4 relative error of every element of a batch with N = 5000.
inline constexpr double kGradScaledAbsTol = 4 * 0x1p-23;  // 4 ulps of 1.0
// The absolute floor for a gradient over `num_positives` positives; `weight` is alpha for grad_loc.
inline double grad_abs_tol(int64_t num_positives, double weight = 1.0) {
  return kGradScaledAbsTol * (weight > 0 ? weight : 1.0) / static_cast<double>(num_positives > 1 ? num_positives : 1);
}
// Encoded targets go through logf and divisions in float32: a few ulps relative.
inline constexpr double kTargetRelTol = 1e-5;
// Floor for targets near 0 (a ground truth centred on its prior): about 8 ulps of 1.0. Targets are O(1) at any batch
// size (|t| up to 25 measured), not O(1/N), so this floor does not blunt the relative tolerance of the large ones.
inline constexpr double kTargetAbsTol = 1e-6;
// Near-tie band for mined negatives: a candidate may pick a different negative only if the reference CE of
// everything it picked is within this (relative to max(1, |CE|)) of the K_b-th largest reference CE. A float32 CE
// adds C exponentials, each addition rounding by up to half an ulp of a sum in [1, C]: at most C x 2^-24 of
// max(1, CE), 4.8e-6 at C = 81; this band is twice that.
inline constexpr double kMiningTieRelEps = 1e-5;

// An implementation that rebuilds each prior's centre and size from float32 corners (torchvision's BoxCoder does,
// as do most PyTorch SSD heads) moves a prior coordinate by up to a few ulps of 1.0; through (g - p) / (var * side)
// that is this much divided by variance x prior side in each target (measured: 4.2e-6 on SSD300's 0.1-wide priors).
inline constexpr double kPriorRoundTripError = 4 * 0x1p-23;  // 4 ulps of 1.0

struct CompareOptions {
  // When set ([P][4] centre-size), targets and grad_loc also allow kPriorRoundTripError / (variance x prior side)
  // per element (times alpha / (beta N) for grad_loc). `multibox validate` sets it for outputs written by other
  // programs; backends built on core::encode are held to the tighter tolerances above.
  std::span<const float> priors;
};

enum class Verdict { passed, failed, mistrusted };
const char* to_string(Verdict v) noexcept;

struct QuantityVerdict {
  std::string quantity;  // "matches", "forced_prior", "positives", "mined", "loss.total", "grad_conf", ...
  Verdict verdict = Verdict::passed;
  size_t elements = 0;    // elements compared
  size_t mismatches = 0;  // elements outside tolerance
  double worst_error = 0; // largest error seen (relative where a tolerance is relative)
  std::string detail;     // worst element named by image/prior/class, with both values; or why MISTRUSTED
};

struct AgreementReport {
  std::vector<QuantityVerdict> quantities;
  // failed if any failed; else mistrusted if any mistrusted; else passed.
  Verdict overall() const noexcept;
  // One line per quantity: "  PASSED      matches            279424 elements" ...
  std::string to_string() const;
};

// Compares `candidate` with `reference` for everything `stage` produces. `gt`, `pred` and `config` are the inputs
// both were computed from (needed to recompute reference cross-entropies for the near-tie rule).
AgreementReport compare_outputs(const ProblemShape& shape, const Config& config, const GroundTruthView& gt,
                                const PredictionView& pred, Stage stage, const BatchOutputs& reference,
                                const BatchOutputs& candidate, const CompareOptions& options = {});

}  // namespace multibox
