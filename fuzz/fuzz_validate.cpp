// libFuzzer target: `multibox validate --outputs` on a golden case: read_outputs, then validate_case_outputs against
// the reference run up to the latest stage provided, as cli/cmd_validate.cpp does. The input is a golden case's name
// and then the ten output files, joined by fuzz::kFileSeparator (kOutputQuantities order; an empty part is absent).
#include <array>
#include <map>
#include <string>

#include "fuzz_support.hpp"
#include "multibox/case_file.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"

namespace {

using namespace multibox;

struct Golden {
  Case c;
  std::array<BatchOutputs, 4> reference;  // by Stage
};

// nullptr for a name that is not a golden case; small ones only, so an input runs in microseconds.
const Golden* golden(std::string_view name) {
  static std::map<std::string, Golden, std::less<>> loaded;
  if (name != "no-overlap" && name != "overflow") return nullptr;
  if (auto it = loaded.find(name); it != loaded.end()) return &it->second;
  Golden g;
  auto c = read_case(std::filesystem::path(MULTIBOX_FUZZ_GOLDEN_CASES) / std::string(name));
  if (!c) fuzz::finding("cannot read the golden case: " + c.status().to_string());
  g.c = std::move(*c);
  for (Stage stage : {Stage::match, Stage::encode, Stage::forward, Stage::backward}) {
    auto out = run_on_case(reference_backend(), g.c, stage);
    if (!out) fuzz::finding("the reference fails on a golden case: " + out.status().to_string());
    g.reference[static_cast<size_t>(stage)] = std::move(*out);
  }
  return &loaded.emplace(std::string(name), std::move(g)).first->second;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto dir = [] {
    auto d = fuzz::scratch_folder() / "outputs";
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::vector<fuzz::Bytes> parts = fuzz::split_files({data, size});
  const Golden* g = golden(std::string_view(reinterpret_cast<const char*>(parts[0].data()), parts[0].size()));
  if (!g) return 0;
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const char* q : kOutputQuantities) n.push_back(output_file_name(q));
    return n;
  }();
  static const std::vector<const char*> name_ptrs = [] {
    std::vector<const char*> p;
    for (const std::string& n : names) p.push_back(n.c_str());
    return p;
  }();
  fuzz::write_files(dir, name_ptrs, {parts.begin() + 1, parts.end()});

  auto loaded = read_outputs(dir, g->c);
  if (!loaded) {
    if (loaded.status().message().empty()) fuzz::finding("a rejection without a message");
    return 0;
  }
  if (loaded->present.empty()) return 0;
  const BatchOutputs& reference = g->reference[static_cast<size_t>(latest_stage(loaded->present))];
  auto result = validate_case_outputs(g->c, reference, loaded->outputs, loaded->present);
  if (!result)
    fuzz::finding("validate_case_outputs refused outputs read_outputs accepted: " + result.status().to_string());
  (void)result->to_string();
  (void)result->overall();
  return 0;
}
