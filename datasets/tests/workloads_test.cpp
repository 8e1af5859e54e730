// Workloads are reproducible (same seed, same bytes), seed-sensitive, valid under DESIGN.md section 1, and have
// the shapes and statistics their names promise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <omp.h>

#include "core/math.hpp"
#include "multibox/priors.hpp"
#include "multibox/workloads.hpp"
#include "random.hpp"

namespace multibox {
namespace {

template <class T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_workload(const Workload& a, const Workload& b) {
  return same_bytes(a.priors, b.priors) && same_bytes(a.data.gt_boxes, b.data.gt_boxes) &&
         same_bytes(a.data.gt_labels, b.data.gt_labels) && same_bytes(a.data.gt_offsets, b.data.gt_offsets) &&
         same_bytes(a.data.conf, b.data.conf) && same_bytes(a.data.loc, b.data.loc);
}

Workload make(std::string_view name, uint64_t seed = 0, int batch = 0) {
  WorkloadOptions o;
  o.seed = seed;
  o.batch = batch;
  auto w = make_workload(name, o);
  if (!w) ADD_FAILURE() << name << ": " << w.status().to_string();
  return w ? std::move(*w) : Workload{};
}

// Small batches keep the big prior sets quick while still exercising every generator.
int small_batch(std::string_view name) { return name == "adversarial" ? 8 : 2; }

class NamedWorkload : public ::testing::TestWithParam<std::string> {};

TEST_P(NamedWorkload, SameSeedGivesIdenticalBytes) {
  const Workload a = make(GetParam(), 7, small_batch(GetParam()));
  const Workload b = make(GetParam(), 7, small_batch(GetParam()));
  EXPECT_TRUE(same_workload(a, b));
}

TEST_P(NamedWorkload, ThreadCountDoesNotChangeTheBytes) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Workload serial = make(GetParam(), 11, 4);
  omp_set_num_threads(std::max(2, threads));
  const Workload parallel = make(GetParam(), 11, 4);
  omp_set_num_threads(threads);
  EXPECT_TRUE(same_workload(serial, parallel));
}

TEST_P(NamedWorkload, DifferentSeedGivesDifferentData) {
  const Workload a = make(GetParam(), 7, small_batch(GetParam()));
  const Workload b = make(GetParam(), 8, small_batch(GetParam()));
  EXPECT_FALSE(same_bytes(a.data.conf, b.data.conf));
  EXPECT_FALSE(same_bytes(a.data.loc, b.data.loc));
  EXPECT_FALSE(same_bytes(a.data.gt_boxes, b.data.gt_boxes));
}

TEST_P(NamedWorkload, InputsAreValidAndShapesAgree) {
  const Workload w = make(GetParam(), 3, small_batch(GetParam()));
  const ProblemShape& s = w.shape;
  ASSERT_TRUE(s.validate().ok()) << s.validate().to_string();
  EXPECT_EQ(s.batch, small_batch(GetParam()));
  EXPECT_EQ(w.data.batch(), s.batch);
  EXPECT_EQ(static_cast<int>(w.priors.size()), s.num_priors * 4);
  EXPECT_EQ(s.max_ground_truths, static_cast<int>(w.data.gt_labels.size()));
  EXPECT_EQ(w.data.conf.size(), static_cast<size_t>(s.batch) * s.num_priors * s.num_classes);
  EXPECT_EQ(w.data.loc.size(), static_cast<size_t>(s.batch) * s.num_priors * 4);
  EXPECT_TRUE(validate_priors(w.priors, s.num_priors).ok());
  const Status gt = validate_ground_truths(s, w.data.ground_truths());
  EXPECT_TRUE(gt.ok()) << gt.to_string();
  const Status pred = validate_predictions(s, w.data.predictions());
  EXPECT_TRUE(pred.ok()) << pred.to_string();
  for (size_t g = 0; g < w.data.gt_labels.size(); ++g) {
    const float* b = &w.data.gt_boxes[g * 4];
    for (int k = 0; k < 4; ++k) {
      EXPECT_GE(b[k], 0.0f) << "ground truth " << g;
      EXPECT_LE(b[k], 1.0f) << "ground truth " << g;
    }
  }
  EXPECT_TRUE(w.config.validate().ok());
}

TEST_P(NamedWorkload, PredictionsCanBeSkippedWithoutChangingBoxes) {
  WorkloadOptions o;
  o.seed = 5;
  o.batch = small_batch(GetParam());
  const Workload full = make(GetParam(), 5, o.batch);
  o.predictions = false;
  auto boxes_only = make_workload(GetParam(), o);
  ASSERT_TRUE(boxes_only) << boxes_only.status().to_string();
  EXPECT_TRUE(boxes_only->data.conf.empty());
  EXPECT_TRUE(same_bytes(full.data.gt_boxes, boxes_only->data.gt_boxes));
  EXPECT_TRUE(same_bytes(full.data.gt_labels, boxes_only->data.gt_labels));
  EXPECT_EQ(full.shape.num_priors, boxes_only->shape.num_priors);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, NamedWorkload,
                         ::testing::Values("tutorial", "ssd300-voc", "ssd300-coco", "ssd512-voc", "ssd512-coco",
                                           "crowded", "dense-100k", "adversarial"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// The generator is xoshiro256** seeded by splitmix64; these values come from an independent Python transcription of
// the published algorithms, so a change of engine (or a platform that computes it differently) is caught here.
TEST(Rng, MatchesTheReferenceAlgorithm) {
  datasets::Rng one(1);
  EXPECT_EQ(one.next(), 0xb3f2af6d0fc710c5ULL);
  EXPECT_EQ(one.next(), 0x853b559647364ceaULL);
  EXPECT_EQ(one.next(), 0x92f89756082a4514ULL);
  EXPECT_EQ(one.next(), 0x642e1c7bc266a3a7ULL);
  datasets::Rng zero(0);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ULL);
}

TEST(Rng, DistributionsHaveTheirMoments) {
  datasets::Rng rng(12345);
  const int n = 200000;
  double sum = 0, sq = 0, usum = 0;
  int64_t lo = 0, hi = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z, sq += z * z;
    usum += rng.uniform();
    const int64_t k = rng.uniform_int(3, 5);
    ASSERT_GE(k, 3);
    ASSERT_LE(k, 5);
    lo += k == 3, hi += k == 5;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  EXPECT_NEAR(usum / n, 0.5, 0.005);
  EXPECT_NEAR(static_cast<double>(lo) / n, 1.0 / 3, 0.01);
  EXPECT_NEAR(static_cast<double>(hi) / n, 1.0 / 3, 0.01);
}

struct Expected {
  const char* name;
  int priors;
  int classes;
  double min_mean_objects, max_mean_objects;
};

TEST(Workloads, NamedShapesAndStatistics) {
  const Expected expected[] = {
      {"tutorial", 441, 21, 1.5, 3.5},      {"ssd300-voc", 8732, 21, 2.0, 3.0},
      {"ssd300-coco", 8732, 81, 6.0, 8.0},  {"ssd512-voc", 24564, 21, 2.0, 3.0},
      {"crowded", 8732, 21, 100.0, 160.0},  {"dense-100k", 99225, 21, 4.0, 10.0},
  };
  for (const Expected& e : expected) {
    WorkloadOptions o;
    o.predictions = false;
    o.batch = 64;  // enough images for the mean to settle near its target
    auto w = make_workload(e.name, o);
    ASSERT_TRUE(w) << w.status().to_string();
    const WorkloadStats s = workload_stats(*w);
    EXPECT_EQ(s.priors, e.priors) << e.name;
    EXPECT_EQ(s.classes, e.classes) << e.name;
    EXPECT_EQ(s.images, 64) << e.name;
    const double mean = static_cast<double>(s.boxes) / s.images;
    EXPECT_GE(mean, e.min_mean_objects) << e.name;
    EXPECT_LE(mean, e.max_mean_objects) << e.name;
    EXPECT_LE(s.boxes_min, s.boxes_median);
    EXPECT_LE(s.boxes_median, s.boxes_max);
  }
  auto crowded = make_workload("crowded");
  ASSERT_TRUE(crowded);
  EXPECT_GE(workload_stats(*crowded).boxes_min, 100);
}

TEST(Workloads, SizeRangeOfCocoLikeScenesIsWide) {
  WorkloadOptions o;
  o.predictions = false;
  auto w = make_workload("ssd300-coco", o);
  ASSERT_TRUE(w);
  float smallest = 1, largest = 0;
  for (size_t g = 0; g < w->data.gt_labels.size(); ++g) {
    const float* b = &w->data.gt_boxes[g * 4];
    const float side = std::sqrt((b[2] - b[0]) * (b[3] - b[1]));
    smallest = std::min(smallest, side);
    largest = std::max(largest, side);
  }
  EXPECT_LT(smallest, 0.03f);
  EXPECT_GT(largest, 0.5f);
}

// The trained model must look trained: most negatives confidently background, but some hard ones.
TEST(Workloads, TrainedLogitsGiveRealisticCrossEntropies) {
  WorkloadOptions o;
  o.seed = 2;
  o.batch = 4;
  auto w = make_workload("ssd300-voc", o);
  ASSERT_TRUE(w);
  const int P = w->shape.num_priors, C = w->shape.num_classes;
  int confident = 0, hard = 0, total = 0;
  for (int b = 0; b < w->shape.batch; ++b) {
    for (int p = 0; p < P; ++p) {
      const float* z = &w->data.conf[(static_cast<size_t>(b) * P + p) * C];
      double m = z[0];
      for (int c = 1; c < C; ++c) m = std::max<double>(m, z[c]);
      double sum = 0;
      for (int c = 0; c < C; ++c) sum += std::exp(z[c] - m);
      const double ce_background = m + std::log(sum) - z[0];
      ++total;
      if (ce_background < 0.1) ++confident;
      if (ce_background > 2.0) ++hard;
    }
  }
  EXPECT_GT(confident, total * 6 / 10);
  EXPECT_GT(hard, total / 200);
  EXPECT_LT(hard, total / 10);
}

TEST(Workloads, AdversarialScenesHitTheirCases) {
  auto w = make_workload("adversarial");
  ASSERT_TRUE(w);
  const GroundTruthView gt = w->data.ground_truths();
  ASSERT_EQ(gt.batch(), 8);
  EXPECT_EQ(gt.count(3), 0) << "image 3 is the empty image";
  // Image 0: each ground truth equals a prior bit for bit, so its IoU with it is exactly 1.
  for (int g = gt.offsets[0]; g < gt.offsets[1]; ++g) {
    const float* b = &w->data.gt_boxes[static_cast<size_t>(g) * 4];
    float best = 0;
    for (int p = 0; p < w->shape.num_priors; ++p) {
      const float* q = &w->priors[static_cast<size_t>(p) * 4];
      best = std::max(best, core::iou({b[0], b[1], b[2], b[3]}, core::prior_corners(q[0], q[1], q[2], q[3])));
    }
    EXPECT_EQ(best, 1.0f) << "ground truth " << g;
  }
  // Image 2 holds exact duplicates.
  const float* first = &w->data.gt_boxes[static_cast<size_t>(gt.offsets[2]) * 4];
  EXPECT_EQ(std::memcmp(first, first + 4, 4 * sizeof(float)), 0);
  // Exact logit ties: image 0 has rows of equal logits.
  const int C = w->shape.num_classes;
  const float* row = &w->data.conf[0];
  for (int c = 1; c < C; ++c) EXPECT_EQ(row[c], row[0]);
}

TEST(Workloads, SyntheticSpecIsChecked) {
  SyntheticSpec s;
  s.num_classes = 1;
  auto w = make_synthetic(s);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), ErrorCode::invalid_config);
  EXPECT_NE(w.status().message().find("num_classes"), std::string::npos);
  s = {};
  s.min_objects = 5;
  s.max_objects = 2;
  EXPECT_FALSE(make_synthetic(s));
  s = {};
  s.prior_set = "nonsense";
  EXPECT_FALSE(make_synthetic(s));
}

TEST(Workloads, UnknownNameListsTheKnownOnes) {
  auto w = make_workload("nope");
  ASSERT_FALSE(w);
  EXPECT_NE(w.status().message().find("ssd300-voc"), std::string::npos);
  EXPECT_EQ(list_workloads().size(), 9u);
}

TEST(Workloads, LogitModelsDiffer) {
  SyntheticSpec s;
  s.prior_set = "tutorial";
  s.batch = 2;
  s.logits = LogitModel::extreme;
  auto extreme = make_synthetic(s);
  ASSERT_TRUE(extreme);
  float largest = 0;
  for (float v : extreme->data.conf) largest = std::max(largest, std::abs(v));
  EXPECT_GT(largest, 1000.0f);
  EXPECT_LE(largest, 1e4f);
  s.logits = LogitModel::random;
  auto random = make_synthetic(s);
  ASSERT_TRUE(random);
  double sum = 0, sq = 0;
  for (float v : random->data.conf) sum += v, sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(random->data.conf.size());
  EXPECT_NEAR(sum / n, 0.0, 0.05);
  EXPECT_NEAR(sq / n, 1.0, 0.05);
}

}  // namespace
}  // namespace multibox
