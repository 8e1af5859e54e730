// The conformance properties. Each one draws its own case inside a rapidcheck run and checks one backend against
// an independent statement of DESIGN.md (brute-force checkers written here, never the backend under test).
// conformance_test.cpp runs them over the registry; teeth_test.cpp runs them over deliberately broken backends.
#pragma once

#include <span>

#include "multibox/backend.hpp"

namespace multibox::proptest {

using PropertyFn = void (*)(const Backend& backend);

void prop_forced_matches(const Backend& backend);
void prop_threshold_matches(const Backend& backend);
void prop_mining(const Backend& backend);
void prop_loss_definition(const Backend& backend);
void prop_no_positives(const Backend& backend);
void prop_extreme_logits(const Backend& backend);
void prop_finite_differences(const Backend& backend);
void prop_encode_decode(const Backend& backend);
void prop_permute_ground_truths(const Backend& backend);
void prop_scale_power_of_two(const Backend& backend);
void prop_split_batch(const Backend& backend);
void prop_add_far_ground_truth(const Backend& backend);
void prop_agrees_with_reference(const Backend& backend);
void prop_deterministic(const Backend& backend);
void prop_rejects_invalid_input(const Backend& backend);

}  // namespace multibox::proptest
