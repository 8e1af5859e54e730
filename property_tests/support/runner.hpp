// Runs one rapidcheck property for one backend with a scaled case count, and on failure produces the report and the
// one-line reproduction (backend, case, RC_PARAMS) the conformance suite prints.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <rapidcheck.h>

namespace multibox::proptest {

// Environment variable multiplying every property's case count (a soak run: MULTIBOX_PROPERTY_SCALE=10).
inline constexpr const char* kScaleEnvVar = "MULTIBOX_PROPERTY_SCALE";
int property_scale();

struct PropertyResult {
  bool passed = false;
  std::string report;  // rapidcheck's message (counterexample, shrinks) followed by the reproduction line
  std::string repro;   // the reproduction line alone
};

// `id` names the property run uniquely (the GoogleTest full name is used, so --gtest_filter=<id> selects it);
// it is also the key rapidcheck's RC_PARAMS="reproduce=..." looks up. base_cases is multiplied by
// property_scale(), unless RC_PARAMS sets max_success, which then wins.
PropertyResult check_property_impl(const std::string& id, std::string_view backend, int base_cases,
                                   const rc::detail::Property& property);

template <class Testable>
PropertyResult check_property(const std::string& id, std::string_view backend, int base_cases, Testable&& testable) {
  return check_property_impl(id, backend, base_cases, rc::detail::toProperty(std::forward<Testable>(testable)));
}

// Fails the current rapidcheck case with `message` (no file/line/expression noise: messages name the element).
[[noreturn]] void fail(std::string message);

}  // namespace multibox::proptest
