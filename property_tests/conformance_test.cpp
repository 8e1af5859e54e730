// The conformance suite: every property of properties.hpp, run by rapidcheck inside a GoogleTest parameterised over
// the registry, so a backend added to impls/registry.cpp is checked here with no further code.
#include <gtest/gtest.h>

#include <cctype>
#include <iostream>
#include <string>

#include "multibox/registry.hpp"
#include "properties.hpp"
#include "support/runner.hpp"

namespace multibox::proptest {
namespace {

class Conformance : public ::testing::TestWithParam<const Backend*> {
 protected:
  void SetUp() override {
    if (Status s = GetParam()->available(); !s)
      GTEST_SKIP() << "backend '" << GetParam()->name() << "' is unavailable: " << s.message();
  }

  // Runs `property` for this test's backend; the GoogleTest full name doubles as the rapidcheck id, so the printed
  // RC_PARAMS="reproduce=..." replays exactly this property with --gtest_filter=<that name>.
  void check(int base_cases, PropertyFn property) {
    const Backend& backend = *GetParam();
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string id = std::string(info->test_suite_name()) + "." + info->name();
    const PropertyResult result = check_property(id, backend.name(), base_cases, [&backend, property] { property(backend); });
    if (!result.passed) ADD_FAILURE() << result.report;
    else std::cout << result.report << "\n";  // case count and the tag distribution: what the cases covered
  }
};

// Case counts are per backend, before MULTIBOX_PROPERTY_SCALE; cheap properties get more.
TEST_P(Conformance, ForcedMatchesFollowTheDefinition) { check(450, prop_forced_matches); }
TEST_P(Conformance, ThresholdMatchesFollowTheDefinition) { check(450, prop_threshold_matches); }
TEST_P(Conformance, MiningSelectsTheHardestNegatives) { check(450, prop_mining); }
TEST_P(Conformance, LossFollowsTheDefinition) { check(300, prop_loss_definition); }
TEST_P(Conformance, NoPositivesGivesZeroLossAndGradients) { check(180, prop_no_positives); }
TEST_P(Conformance, ExtremeLogitsStayFinite) { check(300, prop_extreme_logits); }
TEST_P(Conformance, GradientsMatchFiniteDifferences) { check(300, prop_finite_differences); }
TEST_P(Conformance, EncodeThenDecodeReturnsTheGroundTruth) { check(300, prop_encode_decode); }
TEST_P(Conformance, PermutingGroundTruthsPermutesMatches) { check(300, prop_permute_ground_truths); }
TEST_P(Conformance, ScalingByAPowerOfTwoChangesNothing) { check(300, prop_scale_power_of_two); }
TEST_P(Conformance, SplittingTheBatchKeepsTheTotals) { check(300, prop_split_batch); }
TEST_P(Conformance, AddingAGroundTruthOverlappingNothingChangesNothingElse) { check(300, prop_add_far_ground_truth); }
TEST_P(Conformance, AgreesWithTheReference) { check(450, prop_agrees_with_reference); }
TEST_P(Conformance, IsDeterministic) { check(180, prop_deterministic); }
TEST_P(Conformance, RejectsInvalidInputNamingTheElement) { check(180, prop_rejects_invalid_input); }

// A plugin from MULTIBOX_PLUGINS that failed to load is absent from the instantiation below, so without this test
// the suite would pass without having checked it.
TEST(Plugins, EveryPluginLoaded) {
  const Status s = plugin_status();
  EXPECT_TRUE(s.ok()) << s.message();
}

std::string backend_test_name(const ::testing::TestParamInfo<const Backend*>& info) {
  std::string name(info.param->name());
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Conformance, ::testing::ValuesIn(all_backends().begin(), all_backends().end()),
                         backend_test_name);

}  // namespace
}  // namespace multibox::proptest
