// Small builders for the hand-worked scenes of the unit tests: priors and ground truths laid out as strips
// spanning the full image height, so every IoU reduces to a ratio of interval lengths that can be checked by
// hand, and a runner that prepares a plan on a backend and runs one stage.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "multibox/multibox.hpp"

namespace multibox::testing {

// A prior covering x in [x1, x2] and the whole height: (cx, cy, w, h) = ((x1+x2)/2, 0.5, x2-x1, 1).
// With x1, x2 multiples of 1/16 every value and every corner is exact in float.
inline std::array<float, 4> strip_prior(float x1, float x2) { return {(x1 + x2) / 2, 0.5f, x2 - x1, 1.0f}; }

// A ground-truth box covering x in [x1, x2] and the whole height, as corners.
inline std::array<float, 4> strip_box(float x1, float x2) { return {x1, 0.0f, x2, 1.0f}; }

struct GroundTruth {
  std::array<float, 4> box;  // corners
  int32_t label;
};

struct Scene {
  std::vector<float> priors;  // [P][4] centre-size
  BatchData data;
  int num_classes = 2;
  Config config;
  // Set when a test breaks the batch description (offsets) and the plan must keep the shape the batch should have.
  std::optional<ProblemShape> fixed_shape;

  void add_prior(const std::array<float, 4>& p) { priors.insert(priors.end(), p.begin(), p.end()); }
  void add_image(std::initializer_list<GroundTruth> gts) {
    for (const GroundTruth& g : gts) {
      data.gt_boxes.insert(data.gt_boxes.end(), g.box.begin(), g.box.end());
      data.gt_labels.push_back(g.label);
    }
    data.gt_offsets.push_back(static_cast<int32_t>(data.gt_labels.size()));
  }
  int num_priors() const { return static_cast<int>(priors.size() / 4); }
  ProblemShape shape() const {
    if (fixed_shape) return *fixed_shape;
    return {data.batch(), num_priors(), num_classes, static_cast<int>(data.gt_labels.size())};
  }
  // Predictions that make every CE equal (all logits 0) and every loc 0; tests overwrite the rows they study.
  void zero_predictions() {
    const size_t rows = static_cast<size_t>(data.batch()) * num_priors();
    data.conf.assign(rows * num_classes, 0.0f);
    data.loc.assign(rows * 4, 0.0f);
  }
  float* logits(int image, int prior) {
    return &data.conf[(static_cast<size_t>(image) * num_priors() + prior) * num_classes];
  }
  float* loc(int image, int prior) { return &data.loc[(static_cast<size_t>(image) * num_priors() + prior) * 4]; }
};

// Runs `stage` of a fresh plan. Outputs are pre-filled with a sentinel so a backend that skips writing an element
// is caught instead of passing on zero-initialised memory.
inline Result<BatchOutputs> run_stage(const Backend& backend, const Scene& scene, Stage stage) {
  auto plan = backend.prepare(scene.shape(), scene.priors, scene.config);
  if (!plan) return plan.status();
  BatchOutputs out(scene.shape(), static_cast<int>(scene.data.gt_labels.size()));
  std::fill(out.matches.begin(), out.matches.end(), 12345);
  std::fill(out.forced_prior.begin(), out.forced_prior.end(), 12345);
  std::fill(out.positives.begin(), out.positives.end(), 12345);
  std::fill(out.unmatched_ground_truths.begin(), out.unmatched_ground_truths.end(), 12345);
  std::fill(out.mined_negatives.begin(), out.mined_negatives.end(), 12345);
  std::fill(out.targets.begin(), out.targets.end(), 777.0f);
  std::fill(out.mined.begin(), out.mined.end(), uint8_t{7});
  std::fill(out.grad_conf.begin(), out.grad_conf.end(), std::nanf(""));
  std::fill(out.grad_loc.begin(), out.grad_loc.end(), std::nanf(""));
  out.loss.total = out.loss.conf = out.loss.loc = std::nan("");
  if (Status s = (*plan)->run(scene.data.ground_truths(), scene.data.predictions(), stage, out.view()); !s) return s;
  return out;
}

// Behaviour tests run on every registered backend; one that cannot run here is skipped with its reason.
class BackendTest : public ::testing::TestWithParam<const Backend*> {
 protected:
  void SetUp() override {
    if (Status s = GetParam()->available(); !s) GTEST_SKIP() << GetParam()->name() << ": " << s.message();
  }
  const Backend& backend() const { return *GetParam(); }
};

inline std::string backend_param_name(const ::testing::TestParamInfo<const Backend*>& info) {
  return std::string(info.param->name());
}

}  // namespace multibox::testing

#define MULTIBOX_INSTANTIATE_ALL_BACKENDS(suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(AllBackends, suite, ::testing::ValuesIn(::multibox::all_backends().begin(), \
                                                                   ::multibox::all_backends().end()),  \
                           ::multibox::testing::backend_param_name)
