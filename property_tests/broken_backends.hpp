// Deliberately wrong backends, built only into the property test binary to show the suite has teeth: each wraps the
// naive reference and breaks one rule of DESIGN.md the way a real implementation plausibly would. They are never in
// the registry (a test checks that).
#pragma once

#include <span>

#include "multibox/backend.hpp"

namespace multibox::proptest {

// bipartite requested, argmax run instead: conflicts go to the last ground truth, which loses the others' priors.
const Backend& broken_bipartite_last_gt_wins();
// K_b = max(min_neg, ratio * P_b) without the min(..., N_neg) cap; the shortfall is filled with positives, counted
// twice (torchvision's behaviour, kept out of the contract on purpose).
const Backend& broken_mining_ignores_cap();
// IoU > pos_threshold instead of >= for a positive.
const Backend& broken_threshold_strict();
// Cross-entropy as log(sum(exp(x))) in float without subtracting the row maximum: overflows at +-1e4.
const Backend& broken_logsumexp_without_max();
// dL/dconf of class 1 with the wrong sign.
const Backend& broken_gradient_sign();

std::span<const Backend* const> broken_backends();

}  // namespace multibox::proptest
