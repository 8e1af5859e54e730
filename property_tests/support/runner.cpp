#include "support/runner.hpp"

#include <cstdlib>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

namespace rc::detail {
// Defined in librapidcheck (the encoder behind RC_PARAMS="reproduce=..."), not declared in its installed headers.
std::string reproduceMapToString(const std::unordered_map<std::string, Reproduce>& reproduceMap);
}  // namespace rc::detail

namespace multibox::proptest {
namespace {

class SilentListener final : public rc::detail::TestListener {
 public:
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

// The first line of the first counterexample value that is a case summary ("B=..."), else of the first value.
std::string case_line(const rc::detail::Example& example) {
  std::string fallback = "(no generated value)";
  for (const auto& [type, value] : example) {
    const std::string first = value.substr(0, value.find('\n'));
    if (first.rfind("B=", 0) == 0) return first;
    if (fallback.front() == '(') fallback = first;
  }
  return fallback;
}

}  // namespace

int property_scale() {
  const char* text = std::getenv(kScaleEnvVar);
  if (text == nullptr || *text == '\0') return 1;
  const int scale = std::atoi(text);
  return scale >= 1 ? scale : 1;
}

void fail(std::string message) {
  throw rc::detail::CaseResult(rc::detail::CaseResult::Type::Failure, std::move(message));
}

PropertyResult check_property_impl(const std::string& id, std::string_view backend, int base_cases,
                                   const rc::detail::Property& property) {
  const rc::detail::Configuration& config = rc::detail::configuration();
  rc::detail::TestParams params = config.testParams;
  // rapidcheck's default is 100; any other value came from RC_PARAMS and is honoured as given.
  if (params.maxSuccess == rc::detail::TestParams().maxSuccess) params.maxSuccess = base_cases * property_scale();
  rc::detail::TestMetadata metadata;
  metadata.id = id;
  metadata.description = id;
  SilentListener listener;
  const rc::detail::TestResult result = rc::detail::checkProperty(property, metadata, params, listener, config.reproduce);

  PropertyResult out;
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  out.report = message.str();
  rc::detail::FailureResult failure;
  if (result.match(failure)) {
    const std::string reproduce = rc::detail::reproduceMapToString({{id, failure.reproduce}});
    out.repro = fmt::format("REPRO backend={} property={} case=\"{}\" RC_PARAMS=\"reproduce={}\" --gtest_filter='{}'",
                            backend, id, case_line(failure.counterExample), reproduce, id);
    out.report += "\n" + out.repro;
    return out;
  }
  out.passed = result.template is<rc::detail::SuccessResult>();
  if (!out.passed) out.repro = fmt::format("REPRO backend={} property={} (gave up or errored, see report)", backend, id);
  if (!out.passed) out.report += "\n" + out.repro;
  return out;
}

}  // namespace multibox::proptest
