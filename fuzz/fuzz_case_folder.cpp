// libFuzzer target: the case-folder reader (read_case: case.json and the six arrays together). The input is the seven
// files joined by fuzz::kFileSeparator in the order of kCaseFiles. A case it accepts has passed the input contract,
// so the reference must then run on it without an error.
#include <string>

#include "fuzz_support.hpp"
#include "multibox/case_file.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"

namespace {

constexpr const char* kCaseFiles[] = {"case.json", "priors.npy", "gt_boxes.npy", "gt_labels.npy",
                                      "gt_offsets.npy", "conf.npy", "loc.npy"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace multibox;
  static const auto dir = [] {
    auto d = fuzz::scratch_folder() / "case";
    std::filesystem::create_directories(d);
    return d;
  }();
  fuzz::write_files(dir, kCaseFiles, fuzz::split_files({data, size}));
  auto c = read_case(dir);
  if (!c) {
    if (c.status().message().empty()) fuzz::finding("a rejection without a message");
    return 0;
  }
  auto out = run_on_case(reference_backend(), *c, Stage::backward);
  if (!out) fuzz::finding("read_case accepted a case the reference refuses: " + out.status().to_string());
  return 0;
}
