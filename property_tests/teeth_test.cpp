// Shows the conformance suite has teeth: each deliberately broken backend must be rejected with a counterexample and
// a reproduction line by the property aimed at its bug, and by the differential check against the reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "broken_backends.hpp"
#include "multibox/registry.hpp"
#include "properties.hpp"
#include "support/runner.hpp"

namespace multibox::proptest {
namespace {

using ::testing::HasSubstr;

// Generous case counts: the run stops at the first counterexample, so only a suite without teeth pays for them.
constexpr int kCasesToFindTheBug = 500;

void expect_rejected(const Backend& broken, PropertyFn property) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string id = std::string(info->test_suite_name()) + "." + info->name();
  const PropertyResult result = check_property(id, broken.name(), kCasesToFindTheBug, [&broken, property] { property(broken); });
  ASSERT_FALSE(result.passed) << "the suite accepted '" << broken.name() << "' (" << broken.description()
                              << ") after " << kCasesToFindTheBug << " cases:\n"
                              << result.report;
  EXPECT_THAT(result.report, HasSubstr("Falsifiable"));
  EXPECT_THAT(result.repro, HasSubstr("REPRO backend=" + std::string(broken.name())));
  EXPECT_THAT(result.repro, HasSubstr("case=\"B="));
  EXPECT_THAT(result.repro, HasSubstr("RC_PARAMS=\"reproduce="));
  // One line, so a log grep finds the whole reproduction.
  EXPECT_EQ(result.repro.find('\n'), std::string::npos);
  std::cout << "  rejected as expected (" << result.report.substr(0, result.report.find('\n')) << "): " << result.repro
            << "\n";
}

TEST(SuiteHasTeeth, BipartiteLastGroundTruthWinsFailsForcedMatches) {
  expect_rejected(broken_bipartite_last_gt_wins(), prop_forced_matches);
}
TEST(SuiteHasTeeth, BipartiteLastGroundTruthWinsFailsDifferential) {
  expect_rejected(broken_bipartite_last_gt_wins(), prop_agrees_with_reference);
}
TEST(SuiteHasTeeth, MiningIgnoringTheCapFailsMining) { expect_rejected(broken_mining_ignores_cap(), prop_mining); }
TEST(SuiteHasTeeth, MiningIgnoringTheCapFailsDifferential) {
  expect_rejected(broken_mining_ignores_cap(), prop_agrees_with_reference);
}
TEST(SuiteHasTeeth, StrictThresholdFailsThresholdMatches) {
  expect_rejected(broken_threshold_strict(), prop_threshold_matches);
}
TEST(SuiteHasTeeth, StrictThresholdFailsDifferential) {
  expect_rejected(broken_threshold_strict(), prop_agrees_with_reference);
}
TEST(SuiteHasTeeth, LogsumexpWithoutMaxFailsExtremeLogits) {
  expect_rejected(broken_logsumexp_without_max(), prop_extreme_logits);
}
TEST(SuiteHasTeeth, LogsumexpWithoutMaxFailsDifferential) {
  expect_rejected(broken_logsumexp_without_max(), prop_agrees_with_reference);
}
TEST(SuiteHasTeeth, WrongGradientSignFailsFiniteDifferences) {
  expect_rejected(broken_gradient_sign(), prop_finite_differences);
}
TEST(SuiteHasTeeth, WrongGradientSignFailsDifferential) {
  expect_rejected(broken_gradient_sign(), prop_agrees_with_reference);
}

TEST(SuiteHasTeeth, BrokenBackendsAreNotRegistered) {
  for (const Backend* broken : broken_backends()) {
    EXPECT_EQ(find_backend(broken->name()), nullptr) << broken->name() << " must never be in the real registry";
    for (const Backend* real : all_backends()) EXPECT_NE(real, broken);
  }
}

}  // namespace
}  // namespace multibox::proptest
