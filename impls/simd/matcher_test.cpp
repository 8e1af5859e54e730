// The matcher's skip tests and its super-block-at-a-time pass against the reference, bit for bit, where they can go
// wrong: scenes of 100+ ground truths (many super-blocks per GT, a partial last vector of GTs), and boxes placed on
// the edges the tests compare (touching a prior exactly, copies of priors for IoU ties of exactly 1, duplicated
// ground truths for ties across GTs, slivers and the whole image).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/math.hpp"
#include "multibox/compare.hpp"
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/matcher.hpp"
#include "simd/prior_layout.hpp"
#include "simd/simd_backend.hpp"

namespace multibox {
namespace {

BatchOutputs run(const Backend& backend, const Workload& w, const Config& config, int threads) {
  PlanOptions options;
  options.num_threads = threads;
  auto plan = backend.prepare(w.shape, w.priors, config, options);
  EXPECT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  const Status s = plan.value()->run(w.data.ground_truths(), w.data.predictions(), Stage::match, out.view());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void expect_matches_reference(const Workload& w, const std::string& what) {
  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
    Config config = w.config;
    config.forced_match = mode;
    const BatchOutputs ref = run(reference_backend(), w, config, 1);
    for (int threads : {1, 2}) {
      SCOPED_TRACE(what + ", " + to_string(mode) + ", " + std::to_string(threads) + " threads");
      const BatchOutputs got = run(simd::backend(), w, config, threads);
      EXPECT_TRUE(same_bits(ref.matches, got.matches));
      EXPECT_TRUE(same_bits(ref.forced_prior, got.forced_prior));
      EXPECT_TRUE(same_bits(ref.targets, got.targets));
      const AgreementReport report = compare_outputs(w.shape, config, w.data.ground_truths(), w.data.predictions(),
                                                     Stage::match, ref, got);
      EXPECT_EQ(report.overall(), Verdict::passed) << report.to_string();
    }
  }
}

class SimdMatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = simd::backend().available(); !s) GTEST_SKIP() << "simd backend unavailable: " << s.message();
  }
};

TEST_F(SimdMatcher, CrowdedScenesMatchTheReference) {
  // The reference's bipartite stage costs O(G^2 P): one or two images keep this to seconds.
  for (const char* prior_set : {"ssd300", "ssd512"}) {
    SyntheticSpec spec;
    spec.prior_set = prior_set;
    spec.batch = std::string(prior_set) == "ssd300" ? 2 : 1;
    spec.num_classes = 3;
    spec.min_objects = 97;  // not a multiple of a vector of GTs
    spec.max_objects = 120;
    spec.seed = 7;
    Result<Workload> w = make_synthetic(spec, "crowded");
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    expect_matches_reference(*w, prior_set);
  }
}

TEST_F(SimdMatcher, BoxesOnTheTestedEdgesMatchTheReference) {
  SyntheticSpec spec;
  spec.batch = 1;
  spec.num_classes = 3;
  spec.min_objects = spec.max_objects = 1;
  Result<Workload> base = make_synthetic(spec, "edges");
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  Workload w = *base;
  const int P = w.shape.num_priors;
  std::vector<float>& boxes = w.data.gt_boxes;
  boxes.clear();
  auto corners = [&](int p) {
    const float* v = &w.priors[static_cast<size_t>(p) * 4];
    return core::prior_corners(v[0], v[1], v[2], v[3]);
  };
  // Priors at the ends of blocks (16) and super-blocks (256), and the last one.
  for (int p : {0, 15, 16, 255, 256, 257, 4095, 4096, P / 2, P - 17, P - 16, P - 1}) {
    const core::Box c = corners(p);
    boxes.insert(boxes.end(), {c.x1, c.y1, c.x2, c.y2});                    // IoU exactly 1 with p
    boxes.insert(boxes.end(), {c.x1, c.y1, c.x2, c.y2});                    // the same box again: a tie across GTs
    boxes.insert(boxes.end(), {c.x2, c.y1, c.x2 + 0.05f, c.y2});            // touches p on the right
    boxes.insert(boxes.end(), {c.x1 - 0.05f, c.y2, c.x1, c.y2 + 0.05f});    // touches p's bottom-left corner
    boxes.insert(boxes.end(), {c.x1, c.y1, c.x1 + 1e-6f, c.y2});            // a sliver on p's left edge
  }
  boxes.insert(boxes.end(), {0.0f, 0.0f, 1.0f, 1.0f});
  boxes.insert(boxes.end(), {0.5f, 0.5f, 0.5000001f, 0.5000001f});
  const int G = static_cast<int>(boxes.size() / 4);
  w.data.gt_labels.assign(G, 1);
  w.data.gt_offsets = {0, G};
  w.shape.max_ground_truths = G;
  expect_matches_reference(w, "edges");
}

// The loss takes its mining quota's negatives from the matcher's count (ImageMatch::negatives) instead of counting
// the matches again: the count must be the matches' own, forced priors included, with and without an ignore band, and
// where a prior overlapping nothing is ignored rather than negative.
TEST_F(SimdMatcher, CountsTheNegativesItWrites) {
  SyntheticSpec spec;
  spec.batch = 6;
  spec.num_classes = 3;
  spec.min_objects = 0;
  spec.max_objects = 40;
  spec.seed = 11;
  Result<Workload> w = make_synthetic(spec, "negatives");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const int P = w->shape.num_priors;
  const simd::PriorLayout priors = simd::PriorLayout::build(w->priors, P);
  simd::MatchScratch scratch(priors, w->shape.max_ground_truths);
  std::vector<int32_t> matches(static_cast<size_t>(P)), forced(static_cast<size_t>(w->shape.max_ground_truths));
  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
    for (std::optional<float> neg : {std::optional<float>{}, std::optional<float>{0.4f}, std::optional<float>{0.0f}}) {
      Config config = w->config;
      config.forced_match = mode;
      config.neg_threshold = neg;
      for (int b = 0; b < w->shape.batch; ++b) {
        SCOPED_TRACE(std::string(to_string(mode)) + ", neg_threshold " + (neg ? std::to_string(*neg) : "none") + ", image " +
                     std::to_string(b));
        const int32_t first = w->data.gt_offsets[b];
        const int G = w->data.gt_offsets[b + 1] - first;
        const simd::ImageMatch m = simd::match_image(priors, config, w->data.gt_boxes.data() + first * 4, G,
                                                     matches.data(), forced.data(), nullptr, scratch);
        EXPECT_EQ(m.negatives, std::count(matches.begin(), matches.end(), kNegative));
        EXPECT_EQ(m.positives, std::count_if(matches.begin(), matches.end(), [](int32_t v) { return v >= 0; }));
      }
    }
  }
}

}  // namespace
}  // namespace multibox
