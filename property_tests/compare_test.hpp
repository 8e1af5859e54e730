// What the comparator's own tests share: the tolerances as docs/SPEC.md section 9 states them, and report lookups.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "multibox/compare.hpp"

namespace multibox::compare_test {

// The documented tolerances, written out rather than read from compare.hpp: a test that pins a tolerance from both
// sides plants errors sized from these, so loosening a constant in compare.hpp fails it instead of moving with it.
inline constexpr double kSpecGradRel = 1e-5;
inline constexpr double kSpecGradFloorTimesN = 4 * 0x1p-23;  // 4 ulps of 1.0: 4.77e-7
inline constexpr double kSpecTargetRel = 1e-5;
inline constexpr double kSpecTargetAbs = 1e-6;
inline constexpr double kSpecLossRel = 1e-5;
inline constexpr double kSpecLossAbsPerTerm = 1e-7;
inline constexpr double kSpecMiningTieBand = 1e-5;

// Error sizes for the two sides of a pin, in units of the allowed error.
inline constexpr double kJustInside = 0.9;
inline constexpr double kFewTimesOutside = 3.0;

// The verdict on `quantity`; a test failure (and an empty verdict) when the report has none.
QuantityVerdict find(const AgreementReport& report, const std::string& quantity);

// The gradient row a correct backend writes for a mined negative (target class 0) with these logits and N, in double.
void write_mined_gradient_row(std::span<const float> logits, int64_t num_positives, std::span<float> row);

}  // namespace multibox::compare_test
