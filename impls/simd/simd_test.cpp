// Tests of what is particular to the SIMD backend (the conformance suite covers agreement in general): bitwise
// determinism across thread counts, the incremental bipartite stage under heavy conflicts, the precision of
// confident rows, the NaN scan fused into the loss pass, the thread pool's two-phase runs, and the mining bounds that
// spare most rows' exact CE: their cheap exp within its stated error, and the cut's margin holding on CEs closer
// together than that error.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/math.hpp"
#include "multibox/compare.hpp"
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/image_pool.hpp"
#include "simd/loss.hpp"
#include "simd/row_math.hpp"
#include "simd/simd_backend.hpp"

namespace multibox {
namespace {

BatchOutputs run_simd(const Workload& w, const Config& config, Stage stage, int threads) {
  PlanOptions options;
  options.num_threads = threads;
  auto plan = simd::backend().prepare(w.shape, w.priors, config, options);
  EXPECT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  const Status s = plan.value()->run(w.data.ground_truths(), w.data.predictions(), stage, out.view());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

BatchOutputs run_reference(const Workload& w, const Config& config, Stage stage) {
  auto plan = reference_backend().prepare(w.shape, w.priors, config);
  EXPECT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  const Status s = plan.value()->run(w.data.ground_truths(), w.data.predictions(), stage, out.view());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// One image through the simd loss on the calling thread, with or without the bounds that spare rows their exact CE.
struct LossRun {
  std::vector<uint8_t> mined;
  std::vector<float> grad_conf, grad_loc;
  simd::ImageLoss loss;
  bool sample_missed = false;  // LossScratch::sample_missed
};
// One image's loss on the calling thread; `split`: phase by phase and chunk by chunk, as a plan runs an image split
// across threads (pass 1 without the matches, loss_select masking its bounds).
LossRun run_image_loss(const Config& config, simd::ImageLossInputs in, bool prune, bool split = false) {
  const size_t P = static_cast<size_t>(in.num_priors), C = static_cast<size_t>(in.num_classes);
  LossRun r{std::vector<uint8_t>(P), std::vector<float>(P * C, NAN), std::vector<float>(P * 4, NAN), {}};
  simd::LossScratch scratch(in.num_priors);
  in.prune_negatives = prune;
  const simd::ImageLossOutputs out{r.mined.data(), r.grad_conf.data(), r.grad_loc.data()};
  if (split) {
    const int chunks = simd::loss_chunks(in.num_priors);
    for (int c = 0; c < chunks; ++c) simd::loss_bounds(in, out, scratch, c);
    simd::loss_select(config, in, scratch);
    for (int c = 0; c < chunks; ++c) simd::loss_exact(config, in, out, scratch, c);
    r.loss = simd::loss_finish(config, in, out, scratch);
  } else {
    r.loss = simd::image_loss(config, in, out, scratch);
  }
  r.sample_missed = scratch.sample_missed;
  return r;
}

class SimdBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = simd::backend().available(); !s) GTEST_SKIP() << "simd backend unavailable: " << s.message();
  }
};

void expect_same_bits(const BatchOutputs& one, const BatchOutputs& many) {
  EXPECT_TRUE(same_bits(one.matches, many.matches));
  EXPECT_TRUE(same_bits(one.forced_prior, many.forced_prior));
  EXPECT_TRUE(same_bits(one.targets, many.targets));
  EXPECT_TRUE(same_bits(one.mined, many.mined));
  EXPECT_TRUE(same_bits(one.grad_conf, many.grad_conf));
  EXPECT_TRUE(same_bits(one.grad_loc, many.grad_loc));
  EXPECT_EQ(std::memcmp(&one.loss, &many.loss, sizeof(LossTerms)), 0);
}

// 8 threads on 5 images split every image's loss into chunks of rows across threads (fewer images than threads);
// 2 and 3 threads take whole images.
TEST_F(SimdBackend, ThreadCountChangesNoBit) {
  for (const char* name : {"crowded", "ssd300-coco"}) {
    WorkloadOptions options;
    options.batch = 5;  // odd, so images split unevenly across threads
    Result<Workload> w = make_workload(name, options);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    const BatchOutputs one = run_simd(*w, w->config, Stage::backward, 1);
    ASSERT_GT(one.loss.num_positives, 0) << name << ": a batch without positives would prove nothing";
    for (int threads : {2, 3, 8}) {
      const BatchOutputs many = run_simd(*w, w->config, Stage::backward, threads);
      SCOPED_TRACE(std::string(name) + ", " + std::to_string(threads) + " threads");
      expect_same_bits(one, many);
    }
  }
}

// A batch smaller than the thread count (batch-1 on every count above 1) splits its images into chunks of rows, which
// the workers claim from their own shares first (simd_backend.cpp, claim_unit); the loss terms must still add up in
// one order. C = 2 takes the column-wise bounds, C = 21 the lane-maxima ones; with 3 images on 7 threads a share
// spans two images; the forward stage leaves the gradients out.
TEST_F(SimdBackend, OneImageSplitAcrossThreadsChangesNoBit) {
  for (auto [batch, classes] : {std::pair{1, 2}, std::pair{1, 21}, std::pair{3, 21}}) {
    SyntheticSpec spec;
    spec.batch = batch;
    spec.num_classes = classes;
    spec.min_objects = 10;
    spec.max_objects = 20;
    Result<Workload> w = make_synthetic(spec, "one image");
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    for (Stage stage : {Stage::forward, Stage::backward}) {
      const BatchOutputs one = run_simd(*w, w->config, stage, 1);
      ASSERT_GT(one.loss.num_positives, 0);
      ASSERT_GT(one.loss.conf_sum, 0);
      for (int threads : {2, 3, 7}) {
        SCOPED_TRACE("B = " + std::to_string(batch) + ", C = " + std::to_string(classes) + ", " + to_string(stage) +
                     ", " + std::to_string(threads) + " threads");
        expect_same_bits(one, run_simd(*w, w->config, stage, threads));
      }
    }
  }
}

// Dozens of ground truths clustered on the tutorial's 441 priors share their best priors, so the incremental
// bipartite stage re-scans constantly; it must still make the literal greedy loop's choices.
TEST_F(SimdBackend, BipartiteUnderHeavyConflictMatchesTheGreedyLoop) {
  SyntheticSpec spec;
  spec.prior_set = "tutorial";
  spec.batch = 4;
  spec.num_classes = 5;
  spec.min_objects = 40;
  spec.max_objects = 60;
  spec.min_box_size = 0.1f;
  spec.max_box_size = 0.5f;
  Result<Workload> w = make_synthetic(spec, "clustered");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
    Config config = w->config;
    config.forced_match = mode;
    const BatchOutputs ref = run_reference(*w, config, Stage::match);
    const BatchOutputs got = run_simd(*w, config, Stage::match, 2);
    const AgreementReport report = compare_outputs(w->shape, config, w->data.ground_truths(), w->data.predictions(),
                                                   Stage::match, ref, got);
    EXPECT_EQ(report.overall(), Verdict::passed) << to_string(mode) << "\n" << report.to_string();
  }
}

// A positive whose label beats every other class by 20: CE = log(1 + 80 e^-20) ~ 1.6e-7. A float logsumexp that
// adds the max element's 1 first would lose it entirely; the backend sums the rest separately.
TEST_F(SimdBackend, ConfidentRowsKeepTheirRelativePrecision) {
  const std::vector<float> priors = {0.5f, 0.5f, 0.4f, 0.4f};
  ProblemShape shape{1, 1, 81, 1};
  BatchData data;
  data.gt_boxes = {0.3f, 0.3f, 0.7f, 0.7f};
  data.gt_labels = {7};
  data.gt_offsets = {0, 1};
  data.conf.assign(81, 0.0f);
  data.conf[7] = 20.0f;
  data.loc.assign(4, 0.0f);
  auto plan = simd::backend().prepare(shape, priors, Config{});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(shape, 1);
  ASSERT_TRUE(plan.value()->run(data.ground_truths(), data.predictions(), Stage::backward, out.view()).ok());
  const double rest = 80.0 * std::exp(-20.0);
  EXPECT_NEAR(out.loss.conf_sum, std::log1p(rest), 1e-5 * std::log1p(rest));
  EXPECT_NEAR(out.grad_conf[7], -rest / (1.0 + rest), 1e-5 * rest);
}

// Ignored priors are skipped by the cross-entropy pass, yet their logits must still be scanned, and the error must
// be the shared validator's, naming the element, as from every other backend.
TEST_F(SimdBackend, NanInAnIgnoredRowIsReportedLikeTheReference) {
  WorkloadOptions options;
  options.batch = 2;
  Result<Workload> w = make_workload("ssd300-coco", options);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  Config config = w->config;
  config.neg_threshold = 0.3f;
  const BatchOutputs clean = run_simd(*w, config, Stage::match, 1);
  size_t ignored = clean.matches.size();
  for (size_t i = clean.matches.size(); i-- > 0;)
    if (clean.matches[i] == kIgnored) ignored = i;
  ASSERT_LT(ignored, clean.matches.size()) << "the workload has no ignored prior";
  const size_t C = static_cast<size_t>(w->shape.num_classes);
  w->data.conf[ignored * C + 3] = NAN;

  const Status want = validate_predictions(w->shape, w->data.predictions(), true);
  ASSERT_FALSE(want.ok());
  for (int threads : {1, 4}) {  // 4: each image's rows split across threads
    PlanOptions options;
    options.num_threads = threads;
    auto plan = simd::backend().prepare(w->shape, w->priors, config, options);
    ASSERT_TRUE(plan.ok());
    BatchOutputs out(w->shape, w->shape.max_ground_truths);
    const Status got = plan.value()->run(w->data.ground_truths(), w->data.predictions(), Stage::forward, out.view());
    EXPECT_EQ(got.to_string(), want.to_string()) << threads << " threads";
  }
}

// Pass 1 checks the loc predictions a group of rows at a time, beside the group's logits: a non-finite value at a
// group's or a chunk's edge, or in an image's last, partial group (an odd row count on tutorial priors), is
// reported as the shared validator reports it, with rows split across threads or not.
TEST_F(SimdBackend, NonFiniteLocIsFoundAtGroupAndChunkEdges) {
  for (const char* prior_set : {"ssd300", "tutorial"}) {
    for (int C : {2, 21, 81}) {
      SyntheticSpec spec;
      spec.batch = 2;
      spec.prior_set = prior_set;
      spec.num_classes = C;
      spec.min_objects = 1;
      spec.max_objects = 5;
      spec.seed = 3;
      Result<Workload> w = make_synthetic(spec);
      ASSERT_TRUE(w.ok()) << w.status().to_string();
      const int P = w->shape.num_priors;
      for (int threads : {1, 4}) {  // 4: each image's rows split across threads
        PlanOptions options;
        options.num_threads = threads;
        auto plan = simd::backend().prepare(w->shape, w->priors, w->config, options);
        ASSERT_TRUE(plan.ok()) << plan.status().to_string();
        BatchOutputs out(w->shape, w->shape.max_ground_truths);
        for (int prior : {0, 15, 16, 511, 512, P - 2, P - 1}) {
          if (prior >= P) continue;
          for (int j : {0, 3}) {
            float& value = w->data.loc[(static_cast<size_t>(P) + prior) * 4 + j];  // image 1
            const float kept = value;
            value = j == 0 ? NAN : -HUGE_VALF;
            const Status want = validate_predictions(w->shape, w->data.predictions(), true);
            ASSERT_FALSE(want.ok());
            const Status got =
                plan.value()->run(w->data.ground_truths(), w->data.predictions(), Stage::backward, out.view());
            EXPECT_EQ(got.to_string(), want.to_string())
                << prior_set << " C=" << C << ", " << threads << " threads, prior " << prior << "[" << j << "]";
            value = kept;
          }
        }
      }
    }
  }
}

// The loss computes exact CEs only for the negatives whose bound says they may be mined. On COCO-like rows (81
// classes, SSD300 priors) that must spare most rows and change nothing: the same mined set, bit for bit the same
// gradients, the same loss up to the order its terms are added in. VOC-like rows (21 classes, few objects) take the
// folded bounds (loss.cpp: on AVX-512 4 ways, x0_fold_stride; on AVX2 kFoldLanes), crowded scenes (21 classes, a
// quota of a fifth of the rows) the full ones on AVX2 and an 8-way fold on AVX-512.
class MiningBounds : public SimdBackend, public ::testing::WithParamInterface<const char*> {};

// Image b of w as the loss reads it, with the matches and targets of `matched` (an encode run).
simd::ImageLossInputs image_inputs(const Workload& w, const BatchOutputs& matched, int b, int64_t batch_positives) {
  const size_t P = static_cast<size_t>(w.shape.num_priors), C = static_cast<size_t>(w.shape.num_classes);
  simd::ImageLossInputs in;
  in.num_priors = w.shape.num_priors;
  in.num_classes = w.shape.num_classes;
  in.conf = w.data.conf.data() + static_cast<size_t>(b) * P * C;
  in.loc = w.data.loc.data() + static_cast<size_t>(b) * P * 4;
  in.matches = matched.matches.data() + static_cast<size_t>(b) * P;
  in.labels = w.data.gt_labels.data() + w.data.gt_offsets[b];
  in.targets = matched.targets.data() + static_cast<size_t>(b) * P * 4;
  in.positives = matched.positives[b];
  in.batch_positives = batch_positives;
  return in;
}

TEST_P(MiningBounds, SpareMostRowsAndChangeNothing) {
  WorkloadOptions options;
  options.batch = 3;
  Result<Workload> w = make_workload(GetParam(), options);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const bool crowded = std::string(GetParam()) == "crowded";
  const BatchOutputs matched = run_simd(*w, w->config, Stage::encode, 1);
  const int P = w->shape.num_priors;
  int64_t batch_positives = 0;
  for (int b = 0; b < w->shape.batch; ++b) batch_positives += matched.positives[b];
  ASSERT_GT(batch_positives, 0);

  for (int b = 0; b < w->shape.batch; ++b) {
    const simd::ImageLossInputs in = image_inputs(*w, matched, b, batch_positives);
    int non_ignored = 0;
    for (int p = 0; p < P; ++p) non_ignored += in.matches[p] != kIgnored;

    const LossRun pruned = run_image_loss(w->config, in, true), exact = run_image_loss(w->config, in, false);
    SCOPED_TRACE("image " + std::to_string(b));
    EXPECT_EQ(exact.loss.exact_rows, non_ignored);
    EXPECT_LT(pruned.loss.exact_rows, crowded ? P * 3 / 5 : P / 5)
        << "the bounds should spare most rows of trained-looking logits";
    EXPECT_GT(pruned.loss.mined, 0);
    EXPECT_FALSE(pruned.sample_missed) << "the sampled histogram should judge trained-looking logits";
    EXPECT_EQ(pruned.loss.mined, exact.loss.mined);
    EXPECT_TRUE(pruned.mined == exact.mined);
    EXPECT_TRUE(same_bits(pruned.grad_conf, exact.grad_conf));
    EXPECT_TRUE(same_bits(pruned.grad_loc, exact.grad_loc));
    EXPECT_EQ(pruned.loss.loc_sum, exact.loss.loc_sum);
    EXPECT_NEAR(pruned.loss.conf_sum, exact.loss.conf_sum, 1e-12 * exact.loss.conf_sum);
  }
}

// Pass 1's bounds hold: every negative's exact CE lies between its lower and upper bound, up to the errors the cut's
// margin allows for (exp_bound and log1p_bound, 1.09e-4 each, and float rounding). The outputs compared above can
// survive a bound slightly off (the margin absorbs it on those rows): folded lanes counted as 16 went unnoticed there.
TEST_P(MiningBounds, HoldEveryNegativesCE) {
  WorkloadOptions options;
  options.batch = 3;
  Result<Workload> w = make_workload(GetParam(), options);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const BatchOutputs matched = run_simd(*w, w->config, Stage::encode, 1);
  const int P = w->shape.num_priors;
  const int C = w->shape.num_classes;
  for (int b = 0; b < w->shape.batch; ++b) {
    SCOPED_TRACE("image " + std::to_string(b));
    const simd::ImageLossInputs in = image_inputs(*w, matched, b, 0);
    simd::LossScratch scratch(P);
    std::vector<uint8_t> mined(static_cast<size_t>(P));
    simd::image_loss_bounds(w->config, in, {mined.data(), nullptr, nullptr}, scratch);
    int negatives = 0;
    for (int p = 0; p < P; ++p) {
      if (in.matches[p] != kNegative) continue;
      ++negatives;
      const float* x = in.conf + static_cast<size_t>(p) * static_cast<size_t>(C);
      const double ce = core::logsumexp<double>(x, C) - x[0], error = 2.5e-4 + 1e-5 * ce;
      ASSERT_LE(scratch.lower[static_cast<size_t>(p)], ce + error) << "prior " << p;
      ASSERT_GE(scratch.upper[static_cast<size_t>(p)], ce - error) << "prior " << p;
    }
    EXPECT_GT(negatives, P / 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Workloads, MiningBounds, ::testing::Values("ssd300-coco", "ssd300-voc", "crowded"));

// The same bounds at every row length whose layout differs (AVX-512: x[0] alone in lane 0, the rest 15 columns a
// vector, loss.cpp row_lanes_x0_alone): the fixed instantiations of 2 and 6 vectors with and without the extra
// vector that C = 32 and 92..96 take, the generic loop on both sides of them, and each fold (a sparse scene folds
// 4 or 8 ways by C, a crowded one 8 or none), with the outputs those bounds prune to the exact ones'.
TEST(SimdLoss, BoundsHoldAtEveryRowLength) {
  for (int C : {17, 20, 31, 32, 33, 48, 80, 81, 91, 92, 96, 97, 201}) {
    for (int objects : {2, 40}) {
      SCOPED_TRACE("C = " + std::to_string(C) + ", " + std::to_string(objects) + " objects");
      SyntheticSpec spec;
      spec.prior_set = "ssd300";
      spec.batch = 1;
      spec.num_classes = C;
      spec.min_objects = spec.max_objects = objects;
      spec.seed = static_cast<uint64_t>(C * 100 + objects);
      Result<Workload> w = make_synthetic(spec);
      ASSERT_TRUE(w.ok()) << w.status().to_string();
      const BatchOutputs matched = run_simd(*w, w->config, Stage::encode, 1);
      const int P = w->shape.num_priors;
      const simd::ImageLossInputs in = image_inputs(*w, matched, 0, matched.positives[0]);
      simd::LossScratch scratch(P);
      std::vector<uint8_t> mined(static_cast<size_t>(P));
      simd::image_loss_bounds(w->config, in, {mined.data(), nullptr, nullptr}, scratch);
      for (int p = 0; p < P; ++p) {
        if (in.matches[p] != kNegative) continue;
        const float* x = in.conf + static_cast<size_t>(p) * static_cast<size_t>(C);
        const double ce = core::logsumexp<double>(x, C) - x[0], error = 2.5e-4 + 1e-5 * ce;
        ASSERT_LE(scratch.lower[static_cast<size_t>(p)], ce + error) << "prior " << p;
        ASSERT_GE(scratch.upper[static_cast<size_t>(p)], ce - error) << "prior " << p;
      }
      const LossRun pruned = run_image_loss(w->config, in, true), exact = run_image_loss(w->config, in, false);
      // Sparse scenes only: with 40 objects the quota is larger, and the 16-lane c % 16 bounds of the
      // AVX2 path leave more than half of them to the exact pass at C = 97 and 201 (5394 and 8732 of 8732 rows).
      if (objects == 2) {
        EXPECT_LT(pruned.loss.exact_rows, P / 2) << "the bounds should spare most rows of trained-looking logits";
      }
      EXPECT_TRUE(pruned.mined == exact.mined);
      EXPECT_TRUE(same_bits(pruned.grad_conf, exact.grad_conf));
    }
  }
}

// The plan's runs rest on this order: N is added up only once every image is matched, and no loss starts before.
// Items of uneven length let a worker run out of first items while another is still in one.
TEST(SimdImagePool, SecondItemsSeeEveryFirstItemAndBetweenOnceTheyWait) {
  for (int threads : {1, 2, 4}) {
    simd::ImagePool pool(threads);
    for (int first_count : {0, 1, 3, 8}) {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> first_runs(static_cast<size_t>(first_count));
        std::vector<std::atomic<int>> second_runs(5);
        std::atomic<int> firsts_ended{0}, between_runs{0}, between_saw{-1}, early_seconds{0};
        pool.run_phases(
            first_count,
            [&](int item, int) {
              volatile double x = 0;
              for (int k = 0; k < (item % 3) * 20000; ++k) x = x + k;
              first_runs[static_cast<size_t>(item)].fetch_add(1);
              firsts_ended.fetch_add(1);
            },
            [&] {
              between_saw.store(firsts_ended.load());
              between_runs.fetch_add(1);
            },
            5,
            [&](int item, int, const auto& wait_for_first) {
              if (item % 2 == 0) {  // odd items never wait: the run still ends with every item and between() done
                wait_for_first();
                if (between_runs.load() != 1 || firsts_ended.load() != first_count) early_seconds.fetch_add(1);
              }
              second_runs[static_cast<size_t>(item)].fetch_add(1);
            });
        for (auto& r : first_runs) EXPECT_EQ(r.load(), 1);
        for (auto& r : second_runs) EXPECT_EQ(r.load(), 1);
        EXPECT_EQ(between_runs.load(), 1);
        EXPECT_EQ(between_saw.load(), first_count) << "between() ran before every first item had ended";
        EXPECT_EQ(early_seconds.load(), 0) << threads << " threads, " << first_count << " first items";
      }
    }
  }
}

// The plan's whole-image runs rest on this: an image's loss starts only once its own matching has ended, each pair's
// halves run once, between() once after every first half. Uneven first halves let a worker run out of them while
// another is still in one, so some second halves are taken across threads.
TEST(SimdImagePool, PairsRunTheirSecondHalfAfterTheirFirstOnce) {
  for (int threads : {1, 2, 4}) {
    simd::ImagePool pool(threads);
    for (int count : {0, 1, 3, 8}) {
      std::vector<simd::ImagePool::PairSlot> slots(static_cast<size_t>(count));
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> first_runs(slots.size()), second_runs(slots.size());
        std::vector<std::atomic<bool>> first_ended(slots.size());
        std::atomic<int> between_runs{0}, early_seconds{0}, other_workers{0};
        std::vector<std::atomic<int>> first_worker(slots.size());
        pool.run_pairs(
            slots,
            [&](int i, int worker) {
              volatile double x = 0;
              for (int k = 0; k < (i % 3) * 20000; ++k) x = x + k;
              first_worker[static_cast<size_t>(i)].store(worker);
              first_runs[static_cast<size_t>(i)].fetch_add(1);
              first_ended[static_cast<size_t>(i)].store(true);
            },
            [&] { between_runs.fetch_add(1); },
            [&](int i, int worker, const auto& wait_for_first) {
              if (!first_ended[static_cast<size_t>(i)].load()) early_seconds.fetch_add(1);
              if (first_worker[static_cast<size_t>(i)].load() != worker) other_workers.fetch_add(1);
              wait_for_first();
              second_runs[static_cast<size_t>(i)].fetch_add(1);
            });
        for (auto& r : first_runs) EXPECT_EQ(r.load(), 1);
        for (auto& r : second_runs) EXPECT_EQ(r.load(), 1);
        EXPECT_EQ(between_runs.load(), 1);
        EXPECT_EQ(early_seconds.load(), 0) << threads << " threads, " << count << " pairs";
        if (threads == 1) {
          EXPECT_EQ(other_workers.load(), 0);
        }
      }
    }
  }
}

// Which second half a worker takes: its own pairs' first, lowest first, then the others' from the top down, so the
// thread that ran a pair's first half (and holds what it wrote in its cache) runs the second where it can.
TEST(SimdImagePool, ClaimsItsOwnPairsFirstThenTheOthersFromTheTop) {
  std::vector<simd::ImagePool::PairSlot> slots(6);
  const int first_worker[6] = {0, 1, 0, 1, 0, -1};  // -1: a first half whose worker has not been noted yet
  for (size_t i = 0; i < slots.size(); ++i) slots[i].first_worker.store(first_worker[i]);
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 0), 0);
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 1), 1);
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 0), 2);
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 0), 4);
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 0), 5);  // none of its own left: the top
  EXPECT_EQ(simd::ImagePool::claim_second(slots, 0), 3);
  for (const auto& slot : slots) EXPECT_TRUE(slot.second_claimed.load());
}

// Which first half (and which split unit) a worker takes: its own fixed share first, the same every run, then the
// others' from the top down, where their owners reach last.
TEST(SimdImagePool, ClaimsItsOwnShareFirstThenTheOthersFromTheTop) {
  std::vector<std::atomic<bool>> claimed(7);
  auto claim = [&](int worker) {
    return simd::ImagePool::claim_in_share(7, worker, 2, [&](int i) -> auto& { return claimed[static_cast<size_t>(i)]; });
  };
  EXPECT_EQ(claim(1), 3);  // worker 1 of 2 owns [3, 7)
  EXPECT_EQ(claim(0), 0);  // worker 0 owns [0, 3)
  EXPECT_EQ(claim(0), 1);
  EXPECT_EQ(claim(0), 2);
  EXPECT_EQ(claim(0), 6);  // its share taken: worker 1's, from the top
  EXPECT_EQ(claim(1), 4);
  EXPECT_EQ(claim(0), 5);
  for (const auto& c : claimed) EXPECT_TRUE(c.load());
}

// The mining bounds use exp_bound, an exp good to 1.06e-4 relative; the cut's margin in the loss is sized on that
// figure, so it is checked here on a dense sweep of every t the bounds can give it.
TEST(SimdRowMath, ExpBoundStaysWithinItsStatedError) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  std::vector<float> t, got;
  constexpr int kSteps = 1 << 22;
  for (int i = 0; i <= kSteps; ++i) t.push_back(-87.3f * static_cast<float>(i) / kSteps);
  for (float x : {-0.0f, -1e-30f, -1e-7f, -0.34657359f, -0.34657360f, -87.29f, -87.3f}) t.push_back(x);
  const size_t in_range = t.size();
  for (float x : {-87.31f, -88.0f, -103.0f, -200.0f, -1e30f, -HUGE_VALF}) t.push_back(x);
  t.resize((t.size() + N - 1) / N * N, -HUGE_VALF);
  got.resize(t.size());
  for (size_t i = 0; i < t.size(); i += N) hn::StoreU(simd::exp_bound(hn::LoadU(d, t.data() + i)), d, got.data() + i);
  double worst = 0;
  float worst_t = 0;
  for (size_t i = 0; i < in_range; ++i) {
    const double e = std::abs(got[i] / std::exp(static_cast<double>(t[i])) - 1.0);
    if (e > worst) worst = e, worst_t = t[i];
  }
  EXPECT_LE(worst, 1.06e-4) << "at t = " << worst_t;  // 1.02e-4 with FMA; 1.054e-4 on the portable target
  EXPECT_EQ(got[0], 1.0f) << "the row maximum's own term must stay exactly 1";
  for (size_t i = in_range; i < t.size(); ++i) {
    EXPECT_GE(got[i], 0.0f) << "t = " << t[i];
    EXPECT_LE(got[i], 1.3e-38f) << "t = " << t[i];
  }
}

// log1p_bound, the bounds' log, on x from 0 to 1e6 (a row's rest is below its class count) and on non-finite x,
// which must stay non-finite for the loss's check of its bounds.
TEST(SimdRowMath, Log1pBoundStaysWithinItsStatedError) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  std::vector<float> x = {0.0f, 1e-30f, 1e-8f, 0.41421356f, 0.41421357f, 1.0f, 2.0f, 1e6f};
  constexpr int kSteps = 1 << 22;
  for (int i = 0; i <= kSteps; ++i) x.push_back(std::pow(10.0f, -8.0f + 14.0f * static_cast<float>(i) / kSteps));
  for (int i = 0; i <= kSteps; ++i) x.push_back(4.0f * static_cast<float>(i) / kSteps);
  const size_t finite = x.size();
  for (float v : {HUGE_VALF, -HUGE_VALF, NAN}) x.push_back(v);
  x.resize((x.size() + N - 1) / N * N, NAN);
  std::vector<float> got(x.size());
  for (size_t i = 0; i < x.size(); i += N) hn::StoreU(simd::log1p_bound(hn::LoadU(d, x.data() + i)), d, got.data() + i);
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < finite; ++i) {
    const double e = std::abs(got[i] - std::log1p(static_cast<double>(x[i])));
    if (e > worst) worst = e, worst_x = x[i];
  }
  EXPECT_LE(worst, 2.5e-6) << "at x = " << worst_x;  // 2.02e-6 with FMA; 2.49e-6 on the portable target
  EXPECT_EQ(got[0], 0.0f);
  for (size_t i = finite; i < x.size(); ++i) EXPECT_TRUE(std::isnan(got[i])) << "x = " << x[i] << " gave " << got[i];
}

// One image of P rows of C logits for the mining tests: every row a negative until made a positive, the loc values
// and targets fixed (the mining does not read them).
struct SyntheticImage {
  int P, C;
  std::vector<float> conf, loc, targets;
  std::vector<int32_t> matches;
  std::vector<int32_t> labels;
  int positives = 0;
  std::mt19937 random;

  SyntheticImage(int P, int C, unsigned seed)
      : P(P), C(C), conf(static_cast<size_t>(P) * C), loc(static_cast<size_t>(P) * 4, 0.25f),
        targets(static_cast<size_t>(P) * 4, 0.5f), matches(P, kNegative), labels{C - 1}, random(seed) {}

  void make_positive(int p) { matches[p] = 0, ++positives; }
  // Row p's other logits drawn at random in [-3, 0], so exp_bound errs by different amounts in different rows, and
  // x[0] (the background class every negative is scored on) set so that the row's CE is `ce`: CE = log1p(S e^-x[0]),
  // S the sum of the other logits' exps. With `x0`, x[0] is that instead.
  void set_row(int p, double ce, std::optional<float> x0 = std::nullopt) {
    std::uniform_real_distribution<float> other(-3.0f, 0.0f);
    float* x = conf.data() + static_cast<size_t>(p) * C;
    double sum = 0;
    for (int c = 1; c < C; ++c) sum += std::exp(static_cast<double>(x[c] = other(random)));
    x[0] = x0 ? *x0 : static_cast<float>(std::log(sum) - std::log(std::expm1(ce)));
  }
  simd::ImageLossInputs inputs() const {
    simd::ImageLossInputs in;
    in.num_priors = P;
    in.num_classes = C;
    in.conf = conf.data();
    in.loc = loc.data();
    in.matches = matches.data();
    in.labels = labels.data();
    in.targets = targets.data();
    in.positives = positives;
    in.batch_positives = positives;
    return in;
  }
};

// Rows whose CEs lie 1e-6 apart, far closer than exp_bound's error, around the K-th hardest negative: only the
// cut's margin keeps a row the exact CEs would mine from being skipped on its bound. At C=16 each of the 16 lanes
// holds one logit, so lower and upper bounds meet and the margin is all there is; C=4 takes the column-wise bounds
// and C=21 the lane-maxima ones with uneven lanes; with a positive every 128 rows instead of 64, the quota is few
// enough of the rows for C=21, 32 and 40 to take the 4-way folded lane maxima on AVX-512 (loss.cpp, x0_fold_stride;
// C=32 with the extra vector its row takes there). A third of the negatives are easy, so the bounds do prune.
TEST(SimdLoss, MiningBoundsKeepNearTiesAtTheCut) {
  const Config config;
  const int P = 1024;
  for (auto [C, positive_every] : {std::pair{4, 64}, {16, 64}, {21, 64}, {21, 128}, {32, 128}, {40, 128}}) {
    SCOPED_TRACE("C = " + std::to_string(C) + ", a positive every " + std::to_string(positive_every) + " rows");
    SyntheticImage image(P, C, 7);
    int non_ignored = 0;
    for (int p = 0; p < P; ++p) {
      // CE 2 + 1e-6 (p % 97), every third row easy instead.
      image.set_row(p, 2.0 + 1e-6 * (p % 97), p % 3 == 0 ? std::optional<float>(6.0f) : std::nullopt);
      if (p % positive_every == 5) image.make_positive(p);
      non_ignored += image.matches[p] != kIgnored;
    }
    const int positives = image.positives;
    const simd::ImageLossInputs in = image.inputs();
    const LossRun pruned = run_image_loss(config, in, true), exact = run_image_loss(config, in, false);
    EXPECT_EQ(exact.loss.exact_rows, non_ignored);
    EXPECT_LT(pruned.loss.exact_rows, non_ignored * 3 / 4) << "the easy third should be pruned";
    EXPECT_EQ(pruned.loss.mined, 3 * positives);
    EXPECT_TRUE(pruned.mined == exact.mined);
    EXPECT_TRUE(same_bits(pruned.grad_conf, exact.grad_conf));
    EXPECT_NEAR(pruned.loss.conf_sum, exact.loss.conf_sum, 1e-12 * exact.loss.conf_sum);
  }
}

// Pass 1 counts only a sample of the rows into the histogram that sets the mining boundary (loss.cpp,
// sampled_lane). With the hard negatives all among the sampled rows and fewer of them than the quota, fewer than the
// quota clear the boundary taken from the sample: every negative must then compete, and the mined set, gradients and
// loss stay the exact ones, on one thread and phase by phase as a split image runs. With the same hard rows among the
// rows the sample skips, the boundary serves. Either way the cut it leads to prunes the easy rows. C=2 takes the
// column-wise bounds, C=21 and C=81 the lane maxima.
TEST(SimdLoss, MiningSurvivesASampleThatMisjudgesTheRows) {
  // Rows 0 and 1 share a vector unless vectors have one lane (the portable build's scalar target).
  if (simd::histogram_samples_row(1)) GTEST_SKIP() << "one lane a vector: every row is counted, none misjudged";
  const Config config;
  const int P = 2048;  // four chunks, so the split run has several
  for (int C : {2, 21, 81}) {
    for (bool hard_sampled : {true, false}) {
      SCOPED_TRACE("C = " + std::to_string(C) + (hard_sampled ? ", hard rows sampled" : ", hard rows not sampled"));
      SyntheticImage image(P, C, 11);
      std::vector<uint8_t> is_hard(P);
      int hard = 0;
      // A positive every 64 rows: 32 of them, a quota of 96. 64 hard negatives: at least the boundary's share of
      // the sample (s + 3 sqrt(s) + 8 for s = 96 / lanes: 22 at 16 lanes, 47 at 4) and fewer than the quota.
      for (int p = 0; p < P; ++p) {
        if (p % 64 == 5)
          image.make_positive(p);
        else if (hard < 64 && simd::histogram_samples_row(p) == hard_sampled)
          ++hard, is_hard[p] = 1;
      }
      ASSERT_EQ(hard, 64);
      // CEs about 10 for the hard rows and 5 for every eighth row, where the cut falls; the rest are easy, their
      // upper bounds (1.8 at most here: the lane maxima are loose where x[0] is the row's max) below the cut.
      for (int p = 0; p < P; ++p) {
        const bool easy = !is_hard[p] && p % 8 != 3;
        image.set_row(p, is_hard[p] ? 10.0 + 1e-3 * (p % 13) : 5.0 + 1e-3 * (p % 29),
                      easy ? std::optional<float>(12.0f) : std::nullopt);
      }
      const int positives = image.positives;
      const simd::ImageLossInputs in = image.inputs();
      const LossRun exact = run_image_loss(config, in, false);
      for (bool split : {false, true}) {
        SCOPED_TRACE(split ? "split into chunks" : "whole image");
        const LossRun pruned = run_image_loss(config, in, true, split);
        EXPECT_EQ(pruned.sample_missed, hard_sampled);
        EXPECT_LT(pruned.loss.exact_rows, P / 4) << "the easy rows should be pruned";
        EXPECT_EQ(pruned.loss.mined, 3 * positives);
        EXPECT_TRUE(pruned.mined == exact.mined);
        EXPECT_TRUE(same_bits(pruned.grad_conf, exact.grad_conf));
        EXPECT_TRUE(same_bits(pruned.grad_loc, exact.grad_loc));
        EXPECT_NEAR(pruned.loss.conf_sum, exact.loss.conf_sum, 1e-12 * exact.loss.conf_sum);
      }
    }
  }
}

}  // namespace
}  // namespace multibox
