// Limits stated rather than discovered (SPEC section 14): shapes whose element counts pass 2^31 are indexed in 64 bits
// or refused in prepare() with the numbers, plan_memory() tells what a run needs before anything is allocated, and the
// reference's bipartite cost is estimated. Nothing here allocates more than a few megabytes.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "multibox/limits.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"
#include "support.hpp"

namespace multibox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The issue's example: B x P x C = 64 x 100,000 x 401 = 2,566,400,000 logits, past 2^31.
constexpr ProblemShape kPast2To31{64, 100000, 401, 64 * 20};
constexpr uint64_t kPast2To31Logits = 2566400000ull;

std::vector<float> grid_priors(int count) {
  std::vector<float> priors;
  priors.reserve(static_cast<size_t>(count) * 4);
  for (int p = 0; p < count; ++p) {
    const float cx = (static_cast<float>(p % 1000) + 0.5f) / 1000.0f;
    const float cy = (static_cast<float>(p / 1000) + 0.5f) / 1000.0f;
    priors.insert(priors.end(), {cx, cy, 0.05f, 0.05f});
  }
  return priors;
}

TEST(ShapeLimits, ProductsPast2To31AreAccepted) {
  static_assert(kPast2To31Logits > uint64_t{1} << 31);
  EXPECT_TRUE(kPast2To31.validate().ok()) << kPast2To31.validate().to_string();
}

TEST(ShapeLimits, UnaddressableProductIsRefusedWithTheNumbers) {
  const int big = std::numeric_limits<int>::max();
  const Status s = ProblemShape{big, big, big, 0}.validate();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("B x P x C = 2147483647 x 2147483647 x 2147483647"),
                                 HasSubstr(std::to_string(std::numeric_limits<std::ptrdiff_t>::max()))));
}

// The size checks count in 64 bits: a 32-bit product would have wrapped to a negative or a smaller count.
TEST(ShapeLimits, ValidationCountsPast2To31Without32BitWrap) {
  const Status s = validate_predictions(kPast2To31, PredictionView{}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("expected B x P x C = 64 x 100000 x 401 = " + std::to_string(kPast2To31Logits)));
}

TEST(PlanMemory, CallerMemoryOfTheIssueShape) {
  const PlanMemory m = caller_memory(kPast2To31);
  const uint64_t rows = 64ull * 100000, G = kPast2To31.max_ground_truths;
  EXPECT_EQ(m.inputs, 100000ull * 16 + G * 20 + 65 * 4 + kPast2To31Logits * 4 + rows * 16);
  EXPECT_EQ(m.outputs, rows * (4 + 1 + 16 + 16) + kPast2To31Logits * 4 + G * 4 + 64 * 12);
  EXPECT_GT(m.inputs, uint64_t{9} << 30);  // 10.27 GB (9.56 GiB) of logits alone
}

TEST(PlanMemory, SaturatesInsteadOfWrapping) {
  const int big = std::numeric_limits<int>::max();
  EXPECT_EQ(caller_memory(ProblemShape{big, big, big, big}).inputs, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(format_bytes(std::numeric_limits<uint64_t>::max()), "more than 16 EiB");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(uint64_t{3} << 30), "3.00 GiB");
}

using LimitsPerBackend = testing::BackendTest;

// Every index is 64-bit, so the shape past 2^31 plans: prepare() allocates per-prior state only (a few MB), never
// the batch, and the plan is told apart from a refusal.
TEST_P(LimitsPerBackend, ShapePast2To31PreparesOrIsRefusedWithTheNumbers) {
  const Backend& backend = *GetParam();
  const std::vector<float> priors = grid_priors(kPast2To31.num_priors);
  auto memory = backend.plan_memory(kPast2To31, Config{});
  if (!memory && memory.status().code() == ErrorCode::unavailable) GTEST_SKIP() << memory.status().message();
  PlanOptions options;
  options.num_threads = 1;
  auto plan = backend.prepare(kPast2To31, priors, Config{}, options);
  if (!plan) {
    EXPECT_THAT(plan.status().message(), HasSubstr("64")) << "a refusal must name the numbers";
    return;
  }
  ASSERT_TRUE(memory.ok()) << memory.status().to_string();
  EXPECT_EQ(memory->inputs, caller_memory(kPast2To31).inputs);
  // The run path checks sizes in 64 bits too: empty outputs are refused by count, nothing is indexed.
  const Status s = (*plan)->run(GroundTruthView{}, PredictionView{}, Stage::backward, OutputView{});
  EXPECT_FALSE(s.ok());
}

TEST_P(LimitsPerBackend, PlanMemoryRefusesWhatPrepareRefuses) {
  const Backend& backend = *GetParam();
  auto bad_shape = backend.plan_memory(ProblemShape{0, 10, 2, 0}, Config{});
  if (!bad_shape && bad_shape.status().code() == ErrorCode::unavailable) GTEST_SKIP() << bad_shape.status().message();
  EXPECT_THAT(bad_shape.status().message(), HasSubstr("batch must be >= 1, got 0"));
  Config config;
  config.pos_threshold = 2;
  EXPECT_THAT(backend.plan_memory(ProblemShape{1, 10, 2, 0}, config).status().message(),
              HasSubstr("pos_threshold must be in (0, 1], got 2"));
}

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
uint64_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// The estimate is what the plan really allocates: prepare() plus a run in which one image holds every ground truth
// (the reference's IoU scratch grows to the largest image). Within a quarter and 64 KiB of allocator and thread-pool
// overhead either way, so an estimate that forgets a buffer or counts one twice fails.
TEST_P(LimitsPerBackend, PlanMemoryMatchesWhatThePlanAllocates) {
  const Backend& backend = *GetParam();
  auto priors = priors_by_name("ssd300");
  ASSERT_TRUE(priors.ok());
  const int P = static_cast<int>(priors->size() / 4), G = 60;
  const ProblemShape shape{4, P, 21, G};
  BatchData data;
  data.gt_offsets = {0, G, G, G, G};
  for (int g = 0; g < G; ++g) {
    const float x = 0.01f * static_cast<float>(g % 30), y = 0.3f * static_cast<float>(g / 30);
    data.gt_boxes.insert(data.gt_boxes.end(), {x, y, x + 0.3f, y + 0.4f});
    data.gt_labels.push_back(1 + g % 20);
  }
  data.conf.assign(static_cast<size_t>(4) * P * 21, 0.5f);
  data.loc.assign(static_cast<size_t>(4) * P * 4, 0.1f);
  BatchOutputs out(shape, G);
  PlanOptions options;
  options.num_threads = 2;
  auto estimate = backend.plan_memory(shape, Config{}, options);
  if (!estimate && estimate.status().code() == ErrorCode::unavailable) GTEST_SKIP() << estimate.status().message();
  ASSERT_TRUE(estimate.ok()) << estimate.status().to_string();

  const uint64_t before = heap_in_use();
  auto plan = backend.prepare(shape, *priors, Config{}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  ASSERT_TRUE((*plan)->run(data.ground_truths(), data.predictions(), Stage::backward, out.view()).ok());
  const uint64_t used = heap_in_use() - before;
  const double workspace = static_cast<double>(estimate->workspace);
  EXPECT_GE(static_cast<double>(used), 0.75 * workspace - 65536) << backend.name() << ": estimated " << workspace;
  EXPECT_LE(static_cast<double>(used), 1.25 * workspace + 65536) << backend.name() << ": estimated " << workspace;
}
#endif

MULTIBOX_INSTANTIATE_ALL_BACKENDS(LimitsPerBackend);

// simd's loss addresses 16 rows of logits with int32 lane offsets: C past INT32_MAX / 16 is refused by number, while
// the reference, indexing in size_t, plans the same shape (one image, one prior: nothing large is allocated).
TEST(SimdLimits, ClassesPastInt32LaneOffsetsAreRefusedWithTheNumbers) {
  const Backend* simd = find_backend("simd");
  if (simd == nullptr) GTEST_SKIP() << "no simd backend in this build";
  const ProblemShape shape{1, 1, 200000000, 0};
  EXPECT_THAT(simd->plan_memory(shape, Config{}).status().message(),
              HasSubstr("simd: C = 200000000 classes, at most 134217727"));
  const float prior[4] = {0.5f, 0.5f, 0.2f, 0.2f};
  EXPECT_THAT(simd->prepare(shape, prior, Config{}).status().message(), HasSubstr("at most 134217727"));
  EXPECT_TRUE(reference_backend().plan_memory(shape, Config{}).ok());
}

// The cuda backend's launch limits are host arithmetic: refused by number before the device is asked for anything.
TEST(CudaLimits, BatchPastGridYIsRefusedWithoutADevice) {
  const Backend* cuda = find_backend("cuda");
  if (cuda == nullptr) GTEST_SKIP() << "no cuda backend in this build";
  auto memory = cuda->plan_memory(ProblemShape{70000, 10, 2, 0}, Config{});
  if (!memory && memory.status().message().find("built without CUDA") != std::string::npos)
    GTEST_SKIP() << memory.status().message();
  EXPECT_THAT(memory.status().message(), HasSubstr("batch 70000 exceeds the device's grid.y limit of 65535"));
}

TEST(ReferenceCost, TenThousandObjectsInOneImageTakeMinutes) {
  const int counts[] = {3, 10000, 0};
  const ReferenceCost cost = reference_match_cost(counts, 8732, ForcedMatch::bipartite);
  EXPECT_EQ(cost.largest_image, 1);
  EXPECT_EQ(cost.largest_count, 10000);
  EXPECT_DOUBLE_EQ(cost.pairs, (3.0 * 4 / 2 + 10000.0 * 10001 / 2) * 8732);
  EXPECT_GT(cost.seconds, 10 * kSlowRunSeconds);  // 4.4e11 pairs: about 15 minutes a run
  // argmax visits no pairs: only the G x P IoUs, well under the announcement threshold.
  const ReferenceCost argmax = reference_match_cost(counts, 8732, ForcedMatch::argmax);
  EXPECT_EQ(argmax.pairs, 0);
  EXPECT_LT(argmax.seconds, kSlowRunSeconds);
}

TEST(ReferenceCost, NamedWorkloadSizesStayFarBelowAMinute) {
  const std::vector<int> crowded(8, 160);  // the "crowded" workload's largest images
  EXPECT_LT(reference_match_cost(crowded, 8732, ForcedMatch::bipartite).seconds, 10.0);
}

}  // namespace
}  // namespace multibox
