// An out-of-tree backend, loaded by every multibox tool as a plugin: the reference computation under a new name, the
// smallest thing that passes the conformance suite. Replace ExamplePlan::run with your own C++ or CUDA code.
//
// Built twice by CMakeLists.txt: as `example-reference` (correct), and with EXAMPLE_PLANT_TIE_BUG as
// `example-buggy-ties`, which breaks mining ties towards the highest prior index instead of the lowest (SPEC section
// 5). The suite must reject the second with a one-line repro naming it.
#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "multibox/plugin.hpp"
#include "naive/naive_backend.hpp"

namespace example {
namespace {

#ifdef EXAMPLE_PLANT_TIE_BUG
constexpr std::string_view kName = "example-buggy-ties";
constexpr std::string_view kDescription =
    "example plugin with a planted bug: mining ties go to the highest prior index";

// Within each set of bitwise-identical negative logit rows of an image (equal cross-entropies in any arithmetic),
// moves the mined flags, and their gradient rows, from the lowest indices to the highest.
void break_ties_towards_the_highest_index(const multibox::ProblemShape& shape, const multibox::PredictionView& pred,
                                          multibox::Stage stage, const multibox::OutputView& out) {
  const int P = shape.num_priors, C = shape.num_classes;
  const bool has_gradients = stage == multibox::Stage::backward;
  std::vector<int> order(P);
  std::vector<float> gradient_row(C);
  for (int b = 0; b < shape.batch; ++b) {
    const std::size_t base = static_cast<std::size_t>(b) * P;
    auto row = [&](int p) { return &pred.conf[(base + p) * C]; };
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
      return std::memcmp(row(x), row(y), sizeof(float) * C) < 0;
    });
    for (int first = 0; first < P;) {
      int last = first + 1;
      while (last < P && std::memcmp(row(order[first]), row(order[last]), sizeof(float) * C) == 0) ++last;
      std::vector<int> negatives;  // ascending: stable_sort kept index order within the group
      for (int k = first; k < last; ++k)
        if (out.matches[base + order[k]] == multibox::kNegative) negatives.push_back(order[k]);
      first = last;
      const auto mined = std::count_if(negatives.begin(), negatives.end(), [&](int p) { return out.mined[base + p]; });
      if (mined == 0 || mined == static_cast<long>(negatives.size())) continue;
      const int donor = *std::find_if(negatives.begin(), negatives.end(), [&](int p) { return out.mined[base + p]; });
      if (has_gradients) std::copy_n(&out.grad_conf[(base + donor) * C], C, gradient_row.begin());
      for (std::size_t k = 0; k < negatives.size(); ++k) {
        const int p = negatives[k];
        const bool now_mined = k >= negatives.size() - static_cast<std::size_t>(mined);
        out.mined[base + p] = now_mined ? 1 : 0;
        if (has_gradients)
          for (int c = 0; c < C; ++c) out.grad_conf[(base + p) * C + c] = now_mined ? gradient_row[c] : 0.0f;
      }
    }
  }
}
#else
constexpr std::string_view kName = "example-reference";
constexpr std::string_view kDescription = "example plugin: the scalar reference under another name";
#endif

class ExamplePlan final : public multibox::Plan {
 public:
  explicit ExamplePlan(std::unique_ptr<multibox::Plan> inner) : inner_(std::move(inner)) {}
  multibox::Status run(const multibox::GroundTruthView& gt, const multibox::PredictionView& pred, multibox::Stage stage,
                       const multibox::OutputView& out) override {
    if (multibox::Status s = inner_->run(gt, pred, stage, out); !s) return s;
#ifdef EXAMPLE_PLANT_TIE_BUG
    if (stage >= multibox::Stage::forward) break_ties_towards_the_highest_index(shape(), pred, stage, out);
#endif
    return {};
  }
  const multibox::ProblemShape& shape() const noexcept override { return inner_->shape(); }
  const multibox::Config& config() const noexcept override { return inner_->config(); }

 private:
  std::unique_ptr<multibox::Plan> inner_;
};

class ExampleBackend final : public multibox::Backend {
 public:
  std::string_view name() const noexcept override { return kName; }
  std::string_view description() const noexcept override { return kDescription; }
  multibox::Status available() const override { return {}; }
  multibox::Result<std::unique_ptr<multibox::Plan>> prepare(const multibox::ProblemShape& shape,
                                                            std::span<const float> priors,
                                                            const multibox::Config& config,
                                                            const multibox::PlanOptions& options) const override {
    auto inner = multibox::naive::backend().prepare(shape, priors, config, options);
    if (!inner) return inner.status();
    return std::unique_ptr<multibox::Plan>(std::make_unique<ExamplePlan>(std::move(inner.value())));
  }
};

}  // namespace

// Named so that a test binary with its own main can also compile this file in and call multibox::add_backend().
const multibox::Backend& backend() noexcept {
  static const ExampleBackend instance;
  return instance;
}

}  // namespace example

MULTIBOX_PLUGIN(&example::backend())
