// Host tests of the CUDA backend, which run on every machine (none here has a GPU): launch geometry and the device
// memory layout for every shape the workloads produce, the device functions (device_math.hpp) compiled for the host
// and run the way the kernels run them (a row split over W lanes, reduced by an xor-shuffle tree; the mining sort
// keys), judged against the naive backend with compare_outputs, and the mapping of CUDA errors to Status.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_backend.hpp"
#include "multibox/cuda.hpp"
#include "cuda/device_math.hpp"
#include "cuda/launch.hpp"
#include "multibox/compare.hpp"
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"

#if MULTIBOX_TEST_CUDA_ERRORS
#include "cuda/errors.hpp"
#endif

namespace multibox::cuda::detail {
namespace {

using ::testing::HasSubstr;

// ---- geometry and memory ----

TEST(RowWidth, IsAPowerOfTwoGivingEachLaneAboutFourLogits) {
  for (int C = 2; C <= 1000; ++C) {
    const int w = row_width_for(C);
    ASSERT_TRUE(w >= 1 && w <= kMaxRowWidth && (w & (w - 1)) == 0) << "C=" << C << " width " << w;
    EXPECT_TRUE(w == kMaxRowWidth || w * 4 >= C) << "C=" << C << ": lanes would loop more than 4 times";
    EXPECT_TRUE(w == 1 || (w / 2) * 4 < C) << "C=" << C << ": half the lanes would do";
  }
  EXPECT_EQ(row_width_for(2), 1);
  EXPECT_EQ(row_width_for(21), 8);
  EXPECT_EQ(row_width_for(81), 32);
}

// Every named workload (COCO128 included when its file is present) and the extremes of the property generators.
std::vector<ProblemShape> shapes_to_cover() {
  std::vector<ProblemShape> shapes;
  for (const WorkloadInfo& info : list_workloads()) {
    WorkloadOptions options;
    options.predictions = false;
    Result<Workload> w = make_workload(info.name, options);
    if (w) shapes.push_back(w->shape);
  }
  for (int B : {1, 3, 64})
    for (int P : {1, 7, 255, 256, 257, 8732, 24564, 100000})
      for (int C : {2, 3, 17, 21, 32, 81, 401}) shapes.push_back({B, P, C, B * 200});
  return shapes;
}

TEST(Launch, CoversEveryPriorAndRowOfEveryWorkloadShape) {
  const std::vector<ProblemShape> shapes = shapes_to_cover();
  ASSERT_GE(shapes.size(), 100u);
  for (const ProblemShape& s : shapes) {
    Result<Launch> l = plan_launch(s);
    ASSERT_TRUE(l.ok()) << s.describe() << ": " << l.status().to_string();
    EXPECT_EQ(l->batch, s.batch);
    EXPECT_GE(l->prior_blocks * kPriorBlock, s.num_priors) << s.describe();
    EXPECT_LT((l->prior_blocks - 1) * kPriorBlock, s.num_priors) << s.describe() << ": an idle block";
    EXPECT_EQ(l->rows_per_block * l->row_width, kRowBlock);
    const int64_t rows = int64_t{s.batch} * s.num_priors;
    EXPECT_GE(l->row_blocks * l->rows_per_block, rows) << s.describe();
    EXPECT_LT((l->row_blocks - 1) * l->rows_per_block, rows) << s.describe();
    EXPECT_LE(l->gt_tile_bytes, DeviceLimits{}.shared_per_block);
  }
}

TEST(Launch, RefusesShapesPastTheDeviceLimitsWithTheNumbers) {
  Result<Launch> too_many_images = plan_launch({70000, 8732, 2, 1});
  ASSERT_FALSE(too_many_images.ok());
  EXPECT_THAT(too_many_images.status().message(), HasSubstr("70000"));
  EXPECT_THAT(too_many_images.status().message(), HasSubstr("grid.y"));
  // 64 x 40,000,000 priors: 2.56e9 keys, past the int item count of CUB's segmented sort.
  Result<Launch> too_many_rows = plan_launch({64, 40000000, 2, 1});
  ASSERT_FALSE(too_many_rows.ok());
  EXPECT_THAT(too_many_rows.status().message(), HasSubstr("2560000000"));
  DeviceLimits small;
  small.max_grid_x = 1000;
  Result<Launch> small_grid = plan_launch({32, 8732, 81, 1}, small);
  ASSERT_FALSE(small_grid.ok());
  EXPECT_THAT(small_grid.status().message(), HasSubstr("grid.x"));
}

TEST(Layout, GivesEveryBufferItsOwnAlignedRangeSizedForTheShape) {
  const ProblemShape s{32, 8732, 81, 416};
  const size_t cub = 12345;
  const Layout l = plan_layout(s, cub);
  const size_t rows = 32 * 8732;
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::conf)], rows * 81 * 4);
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::grad_conf)], rows * 81 * 4);
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::keys_in)], rows * 8);
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::gt_key)], 416u * 8);
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::cub_temp)], cub);
  EXPECT_EQ(l.bytes[static_cast<int>(Buf::loss)], sizeof(LossTerms));
  size_t end = 0;
  for (int i = 0; i < kBufferCount; ++i) {
    EXPECT_EQ(l.offset[i] % 256, 0u) << to_string(static_cast<Buf>(i));
    EXPECT_GE(l.offset[i], end) << to_string(static_cast<Buf>(i)) << " overlaps the buffer before it";
    end = l.offset[i] + l.bytes[i];
    EXPECT_STRNE(to_string(static_cast<Buf>(i)), "?");
  }
  EXPECT_LE(end, l.total);
  EXPECT_EQ(l.memory.total_bytes(), l.total);
  EXPECT_EQ(l.memory.items.size(), static_cast<size_t>(kBufferCount));
  // The headline shape: about 2 x 90 MB of logits and gradients mirrored, about 20 MB of scratch.
  EXPECT_GT(l.memory.io_bytes, 2 * rows * 81 * 4);
  EXPECT_LT(l.memory.scratch_bytes, rows * 48 + cub + (1 << 20));
  EXPECT_THAT(l.memory.describe(), HasSubstr("MiB"));
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(size_t{3} << 30), "3.00 GiB");
}

// ---- keys that carry the contract's tie rules ----

TEST(Keys, PriorKeyMaximumIsTheLargestIouThenTheLowestPrior) {
  EXPECT_EQ(prior_key(0.0f, 5), 0u) << "IoU 0 is never a forced candidate";
  EXPECT_GT(prior_key(0.5f, 9), prior_key(0.25f, 1));
  EXPECT_GT(prior_key(0.5f, 1), prior_key(0.5f, 9));
  EXPECT_GT(prior_key(1e-30f, 100000), 0u);
  EXPECT_EQ(prior_of_key(prior_key(0.7f, 123456)), 123456);
  EXPECT_EQ(prior_of_key(prior_key(1.0f, 0)), 0);
}

TEST(Keys, NegativeKeysSortInTheMiningOrder) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> prior(0, 8731);
  std::uniform_real_distribution<float> ce(0.0f, 30.0f);
  const int bits = mining_index_bits(8732);
  EXPECT_EQ(bits, 14);
  EXPECT_EQ(mining_index_bits(8191), 13);
  EXPECT_EQ(mining_index_bits(8192), 14) << "2^bits must exceed P so no negative key has all its bits set";
  for (int i = 0; i < 20000; ++i) {
    float a = ce(rng), b = i % 3 == 0 ? a : ce(rng);
    if (i % 7 == 0) a = 0.0f;
    const int pa = prior(rng), pb = prior(rng);
    if (pa == pb) continue;
    const bool key_order = negative_key(a, pa, bits) < negative_key(b, pb, bits);
    ASSERT_EQ(key_order, core::harder_negative(a, pa, b, pb)) << a << "@" << pa << " vs " << b << "@" << pb;
    ASSERT_EQ(prior_of_negative_key(negative_key(a, pa, bits), bits), pa);
    // The sort looks at the low 31 + bits bits only: there, a negative still sorts before every non-negative.
    const uint64_t mask = (uint64_t{1} << (31 + bits)) - 1;
    ASSERT_LT(negative_key(a, pa, bits) & mask, kNotANegative & mask);
  }
  EXPECT_LT(negative_key(HUGE_VALF, 3, bits) & ((uint64_t{1} << (31 + bits)) - 1), kNotANegative);
}

TEST(Keys, MatchOfFollowsStageTwo) {
  EXPECT_EQ(match_of(3, 0.0f, 1, 0.5f, 0.4f), 3) << "a forced prior keeps its ground truth";
  EXPECT_EQ(match_of(-1, 0.5f, 2, 0.5f, 0.4f), 2);
  EXPECT_EQ(match_of(-1, 0.45f, 2, 0.5f, 0.4f), kIgnored);
  EXPECT_EQ(match_of(-1, 0.4f, 2, 0.5f, 0.4f), kIgnored);
  EXPECT_EQ(match_of(-1, 0.39f, 2, 0.5f, 0.4f), kNegative);
  EXPECT_EQ(match_of(-1, 0.0f, -1, 0.5f, 0.5f), kNegative);
}

// ---- matching, emulated on the host with the kernels' keys and round rule ----

// What iou_kernel, forced_kernel and assign_kernel compute, serially: per prior the best ground truth (strict '>'),
// per ground truth the maximum prior_key, then stage 1 (argmax, or bipartite rounds over better_candidate with
// rescans of the ground truths whose candidate was taken) and stage 2 through match_of.
void emulate_matching(const Workload& w, BatchOutputs& out) {
  const GroundTruthView gt = w.data.ground_truths();
  const int P = w.shape.num_priors;
  std::vector<core::Box> priors(P);
  for (int p = 0; p < P; ++p) {
    const float* v = &w.priors[static_cast<size_t>(p) * 4];
    priors[p] = core::prior_corners(v[0], v[1], v[2], v[3]);
  }
  for (int b = 0; b < w.shape.batch; ++b) {
    const int first = gt.offsets[b], G = gt.count(b);
    auto box = [&](int g) {
      const float* v = &gt.boxes[static_cast<size_t>(first + g) * 4];
      return core::Box{v[0], v[1], v[2], v[3]};
    };
    auto iou = [&](int g, int p) { return core::iou_with_areas(box(g), core::area(box(g)), priors[p], core::area(priors[p])); };
    std::vector<float> best(P, 0.0f);
    std::vector<int> best_g(P, -1), owner(P, -1);
    std::vector<uint64_t> key(G, 0);
    for (int p = 0; p < P; ++p)
      for (int g = 0; g < G; ++g) {
        const float v = iou(g, p);
        if (v > best[p]) best[p] = v, best_g[p] = g;
        key[g] = std::max(key[g], prior_key(v, p));
      }
    int32_t* forced = &out.forced_prior[first];
    if (w.config.forced_match == ForcedMatch::argmax) {
      for (int g = 0; g < G; ++g)
        if (key[g] != 0) owner[prior_of_key(key[g])] = std::max(owner[prior_of_key(key[g])], g);
      for (int g = 0; g < G; ++g) forced[g] = key[g] != 0 && owner[prior_of_key(key[g])] == g ? prior_of_key(key[g]) : -1;
    } else {
      std::fill(forced, forced + G, -1);
      for (int round = 0; round < G; ++round) {
        Candidate c = no_candidate();
        for (int g = 0; g < G; ++g) c = better_candidate(c, Candidate{key[g], g});
        if (c.key == 0) break;
        const int taken = prior_of_key(c.key);
        owner[taken] = c.g;
        forced[c.g] = taken;
        key[c.g] = 0;
        for (int g = 0; g < G; ++g) {
          if (key[g] == 0 || prior_of_key(key[g]) != taken) continue;
          uint64_t k = 0;
          for (int p = 0; p < P; ++p)
            if (owner[p] < 0) k = std::max(k, prior_key(iou(g, p), p));
          key[g] = k;
        }
      }
    }
    for (int p = 0; p < P; ++p)
      out.matches[static_cast<size_t>(b) * P + p] =
          match_of(owner[p], best[p], best_g[p], w.config.pos_threshold, w.config.negative_threshold());
  }
}

TEST(MatchingEmulation, EqualsTheReferenceInBothModesOnCrowdedAndAdversarialScenes) {
  int conflicts = 0;
  for (const char* name : {"tutorial", "crowded", "adversarial", "ssd300-coco"}) {
    for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax}) {
      WorkloadOptions options;
      options.predictions = false;
      options.batch = 2;
      Result<Workload> w = make_workload(name, options);
      ASSERT_TRUE(w.ok()) << name << ": " << w.status().to_string();
      w->config.forced_match = mode;
      Result<std::unique_ptr<Plan>> plan = reference_backend().prepare(w->shape, w->priors, w->config);
      ASSERT_TRUE(plan.ok());
      const int G = w->data.ground_truths().total();
      BatchOutputs reference(w->shape, G), emulated(w->shape, G);
      ASSERT_TRUE((*plan)->run(w->data.ground_truths(), w->data.predictions(), Stage::match, reference.view()).ok());
      emulate_matching(*w, emulated);
      EXPECT_EQ(emulated.forced_prior, reference.forced_prior) << name << " " << to_string(mode);
      EXPECT_EQ(emulated.matches, reference.matches) << name << " " << to_string(mode);
      if (mode == ForcedMatch::argmax)
        for (int32_t p : reference.forced_prior) conflicts += p < 0;
    }
  }
  EXPECT_GT(conflicts, 0) << "the scenes should include argmax conflicts, or the highest-index rule goes untested";
}

// ---- the loss pipeline, emulated on the host with the kernels' own functions ----

struct RowStats {
  float max, log_sum;
};

// What row_stats_kernel<W> computes for one row: W lanes, each over classes lane, lane + W, ..., combined by the
// xor-shuffle tree (lane l takes its own value op the value of lane l ^ o, for o = W/2 .. 1).
RowStats emulate_row(const float* x, int C, int W) {
  std::vector<float> m(W);
  for (int l = 0; l < W; ++l) m[l] = partial_max(x, C, l, W);
  for (int o = W / 2; o > 0; o >>= 1) {
    const std::vector<float> prev = m;
    for (int l = 0; l < W; ++l) m[l] = core::max_f(prev[l], prev[l ^ o]);
  }
  std::vector<RestPart> r(W);
  for (int l = 0; l < W; ++l) r[l] = partial_rest(x, C, l, W, m[0]);
  for (int o = W / 2; o > 0; o >>= 1) {
    const std::vector<RestPart> prev = r;
    for (int l = 0; l < W; ++l) r[l] = {prev[l].rest + prev[l ^ o].rest, prev[l].ties + prev[l ^ o].ties};
  }
  for (int l = 1; l < W; ++l) EXPECT_EQ(m[l], m[0]) << "every lane must end with the same row maximum";
  return {m[0], log_sum_of(r[0])};
}

// The forward and backward stages as the kernels compute them, on the reference's matches and targets.
BatchOutputs emulate_loss(const Workload& w, const BatchOutputs& matched, int W) {
  const ProblemShape& s = w.shape;
  const GroundTruthView gt = w.data.ground_truths();
  const size_t P = s.num_priors, C = s.num_classes;
  BatchOutputs out = matched;
  const int bits = mining_index_bits(s.num_priors);
  std::vector<float> ce(P * s.batch);
  std::vector<RowStats> stats(P * s.batch);
  std::vector<uint64_t> keys(P);
  int64_t n = 0;
  for (int b = 0; b < s.batch; ++b) n += matched.positives[b];
  LossTerms loss;
  for (int b = 0; b < s.batch; ++b) {
    int negatives = 0;
    for (size_t p = 0; p < P; ++p) {
      const size_t r = b * P + p;
      const float* x = &w.data.conf[r * C];
      stats[r] = emulate_row(x, s.num_classes, W);
      const int m = matched.matches[r];
      const int y = m >= 0 ? gt.labels[gt.offsets[b] + m] : 0;
      ce[r] = cross_entropy(stats[r].max, stats[r].log_sum, x[y]);
      keys[p] = m == kNegative ? negative_key(ce[r], static_cast<int32_t>(p), bits) : kNotANegative;
      negatives += m == kNegative;
    }
    std::vector<uint64_t> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    const int quota = static_cast<int>(core::mining_quota(matched.positives[b], negatives, w.config.neg_pos_ratio,
                                                          w.config.min_negatives_per_image));
    out.mined_negatives[b] = quota;
    double conf = 0, loc = 0;
    for (size_t p = 0; p < P; ++p) {
      const size_t r = b * P + p;
      out.mined[r] = quota > 0 && keys[p] <= sorted[quota - 1];
      const int m = matched.matches[r];
      if (m >= 0 || out.mined[r]) conf += ce[r];
      if (m >= 0)
        for (int k = 0; k < 4; ++k) loc += loc_loss(w.data.loc[r * 4 + k], matched.targets[r * 4 + k], w.config.smooth_l1_beta);
    }
    loss.conf_sum += conf;
    loss.loc_sum += loc;
  }
  loss.num_positives = n;
  if (n > 0) {
    loss.conf = loss.conf_sum / n;
    loss.loc = loss.loc_sum / n;
    loss.total = (loss.conf_sum + w.config.alpha * loss.loc_sum) / n;
  }
  out.loss = loss;
  const float inv_n = n > 0 ? static_cast<float>(1.0 / static_cast<double>(n)) : 0.0f;
  for (int b = 0; b < s.batch; ++b)
    for (size_t p = 0; p < P; ++p) {
      const size_t r = b * P + p;
      const int m = matched.matches[r];
      const bool selected = n > 0 && (m >= 0 || out.mined[r]);
      const int y = m >= 0 ? gt.labels[gt.offsets[b] + m] : 0;
      for (size_t c = 0; c < C; ++c)
        out.grad_conf[r * C + c] =
            selected ? logit_gradient(w.data.conf[r * C + c], stats[r].max, stats[r].log_sum, static_cast<int>(c) == y, inv_n)
                     : 0.0f;
      for (int k = 0; k < 4; ++k)
        out.grad_loc[r * 4 + k] = n > 0 && m >= 0 ? loc_gradient(w.data.loc[r * 4 + k], matched.targets[r * 4 + k],
                                                                  w.config.alpha, w.config.smooth_l1_beta,
                                                                  static_cast<double>(n))
                                                   : 0.0f;
    }
  return out;
}

struct EmulationCase {
  SyntheticSpec spec;
  const char* label;
};

class LossEmulation : public ::testing::TestWithParam<EmulationCase> {};

TEST_P(LossEmulation, AgreesWithTheReferenceAtEveryRowWidth) {
  Result<Workload> w = make_synthetic(GetParam().spec, GetParam().label);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const Backend& naive = reference_backend();
  Result<std::unique_ptr<Plan>> plan = naive.prepare(w->shape, w->priors, w->config);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs reference(w->shape, w->data.ground_truths().total());
  ASSERT_TRUE((*plan)->run(w->data.ground_truths(), w->data.predictions(), Stage::backward, reference.view()).ok());
  ASSERT_GT(reference.loss.num_positives, 0);
  // The width the launch picks for this C, and every other one, since the kernels are instantiated for all.
  for (int W : {row_width_for(w->shape.num_classes), 1, 2, 4, 8, 16, 32}) {
    const BatchOutputs emulated = emulate_loss(*w, reference, W);
    const AgreementReport report = compare_outputs(w->shape, w->config, w->data.ground_truths(),
                                                   w->data.predictions(), Stage::backward, reference, emulated);
    EXPECT_EQ(report.overall(), Verdict::passed) << GetParam().label << " W=" << W << "\n" << report.to_string();
    EXPECT_EQ(emulated.mined, reference.mined) << GetParam().label << " W=" << W << ": mined sets differ";
  }
}

SyntheticSpec spec(const char* priors, int batch, int classes, LogitModel logits, uint64_t seed) {
  SyntheticSpec s;
  s.prior_set = priors;
  s.batch = batch;
  s.num_classes = classes;
  s.logits = logits;
  s.seed = seed;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, LossEmulation,
    ::testing::Values(EmulationCase{spec("ssd300", 2, 81, LogitModel::trained, 1), "ssd300_c81_trained"},
                      EmulationCase{spec("ssd300", 2, 21, LogitModel::random, 2), "ssd300_c21_random"},
                      EmulationCase{spec("ssd300", 2, 2, LogitModel::trained, 3), "ssd300_c2_trained"},
                      EmulationCase{spec("tutorial", 4, 17, LogitModel::extreme, 4), "tutorial_c17_extreme"},
                      EmulationCase{spec("tutorial", 4, 401, LogitModel::random, 5), "tutorial_c401_random"}),
    [](const auto& info) { return std::string(info.param.label); });

// Rows of equal logits: the ties counted apart from the exponential sum give log_sum = log(C) exactly enough, and
// the maximum entries contribute nothing to `rest`.
TEST(RowMath, TiedAndConfidentRowsKeepTheirPrecision) {
  std::vector<float> flat(81, 2.5f);
  for (int W : {1, 4, 32}) {
    const RowStats s = emulate_row(flat.data(), 81, W);
    EXPECT_EQ(s.max, 2.5f);
    EXPECT_NEAR(s.log_sum, std::log(81.0), 1e-6);
  }
  std::vector<float> confident(81, -30.0f);
  confident[7] = 30.0f;
  const RowStats s = emulate_row(confident.data(), 81, 32);
  const double exact = std::log1p(80 * std::exp(-60.0));  // 7e-25: a float sum including the 1 would give 0
  EXPECT_NEAR(s.log_sum / exact, 1.0, 1e-5);
  const float g = logit_gradient(confident[7], s.max, s.log_sum, true, 1.0f);
  EXPECT_NEAR(g / -exact, 1.0, 1e-5) << "softmax - 1 of a confident target keeps its relative precision";
  EXPECT_EQ(cross_entropy(s.max, s.log_sum, confident[7]), s.log_sum);
}

// ---- errors and availability ----

#if MULTIBOX_TEST_CUDA_ERRORS
TEST(Errors, NameTheFailingCallAndTheRuntimeError) {
  EXPECT_TRUE(cuda_status(cudaSuccess, "cudaMalloc").ok());
  const Status oom = cuda_status(cudaErrorMemoryAllocation, "cudaMalloc(1.62 GiB)");
  EXPECT_EQ(oom.code(), ErrorCode::unavailable);
  EXPECT_THAT(oom.message(), HasSubstr("cudaMalloc(1.62 GiB)"));
  EXPECT_THAT(oom.message(), HasSubstr("cudaErrorMemoryAllocation"));
  const Status launch = cuda_status(cudaErrorInvalidConfiguration, "iou kernel");
  EXPECT_EQ(launch.code(), ErrorCode::internal);
  EXPECT_THAT(launch.message(), HasSubstr("iou kernel"));
  EXPECT_THAT(launch.message(), HasSubstr("cudaErrorInvalidConfiguration"));
  const Status fault = cuda_status(cudaErrorIllegalAddress, "cudaStreamSynchronize(stream_)");
  EXPECT_EQ(fault.code(), ErrorCode::internal);
  EXPECT_THAT(fault.message(), HasSubstr("cudaErrorIllegalAddress"));
}

TEST(Errors, AvailabilityExplainsEachReason) {
  EXPECT_TRUE(availability(cudaSuccess, 1, 9, 0).ok());
  EXPECT_TRUE(availability(cudaSuccess, 2, 10, 0).ok()) << "newer devices JIT-compile the compute_90 PTX";
  EXPECT_THAT(availability(cudaErrorNoDevice, 0, 0, 0).message(), HasSubstr("no CUDA device"));
  EXPECT_THAT(availability(cudaSuccess, 0, 0, 0).message(), HasSubstr("no CUDA device"));
  EXPECT_THAT(availability(cudaErrorInsufficientDriver, 0, 0, 0).message(), HasSubstr("driver"));
  const Status old = availability(cudaSuccess, 1, 8, 6);
  EXPECT_EQ(old.code(), ErrorCode::unavailable);
  EXPECT_THAT(old.message(), HasSubstr("8.6"));
  EXPECT_THAT(availability(cudaErrorUnknown, 0, 0, 0).message(), HasSubstr("cudaErrorUnknown"));
}
#endif

// On a machine without a GPU (every build machine here) the backend is registered, says why it cannot run, and
// refuses to prepare instead of crashing; on a GPU machine it prepares the headline shape and reports its memory.
TEST(Backend, IsRegisteredAndEitherRunsOrSaysWhy) {
  const Backend* b = find_backend("cuda");
  ASSERT_NE(b, nullptr) << "impls/registry.cpp must list the cuda backend";
  const Status s = b->available();
  Result<Workload> w = make_workload("tutorial");
  ASSERT_TRUE(w.ok());
  Result<std::unique_ptr<Plan>> plan = b->prepare(w->shape, w->priors, w->config);
  if (!s.ok()) {
    EXPECT_EQ(s.code(), ErrorCode::unavailable);
    EXPECT_FALSE(s.message().empty());
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), ErrorCode::unavailable);
    GTEST_SKIP() << "cuda is unavailable here: " << s.message();
  }
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  auto* cuda_plan = dynamic_cast<CudaPlan*>(plan->get());
  ASSERT_NE(cuda_plan, nullptr) << "the cuda backend's plans are CudaPlans";
  EXPECT_EQ(cuda_plan->memory().items.size(), static_cast<size_t>(kBufferCount));
  EXPECT_GE(cuda_plan->memory().total_bytes(), plan_layout(w->shape, 0).total);
}

// ---- on a GPU only (skipped with the reason elsewhere) ----

class OnDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = backend().available(); !s) GTEST_SKIP() << "cuda is unavailable here: " << s.message();
  }
  static std::unique_ptr<Plan> prepare(const Workload& w) {
    Result<std::unique_ptr<Plan>> plan = backend().prepare(w.shape, w.priors, w.config);
    EXPECT_TRUE(plan.ok()) << plan.status().to_string();
    return plan ? std::move(plan.value()) : nullptr;
  }
};

// The device-resident path runs the same kernels on the caller's buffers: every output bit for bit as run() gives.
TEST_F(OnDevice, DeviceResidentRunEqualsTheHostViewRunBitForBit) {
  for (const char* name : {"ssd300-coco", "crowded", "tutorial"}) {
    Result<Workload> w = make_workload(name);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    std::unique_ptr<Plan> plan = prepare(*w);
    ASSERT_NE(plan, nullptr);
    const int G = w->data.ground_truths().total();
    BatchOutputs host(w->shape, G), device(w->shape, G);
    ASSERT_TRUE(plan->run(w->data.ground_truths(), w->data.predictions(), Stage::backward, host.view()).ok());
    Result<std::unique_ptr<DeviceBatch>> batch = upload_batch(w->shape, w->data);
    ASSERT_TRUE(batch.ok()) << batch.status().to_string();
    auto& cuda_plan = dynamic_cast<CudaPlan&>(*plan);
    ASSERT_TRUE(cuda_plan
                    .run_device((*batch)->ground_truths(), (*batch)->predictions(), Stage::backward,
                                (*batch)->outputs(), nullptr)
                    .ok());
    ASSERT_TRUE(cuda_plan.device_input_status().ok());
    ASSERT_TRUE((*batch)->download(Stage::backward, device).ok());
    EXPECT_EQ(device.matches, host.matches) << name;
    EXPECT_EQ(device.mined, host.mined) << name;
    EXPECT_EQ(device.grad_conf, host.grad_conf) << name;
    EXPECT_EQ(device.grad_loc, host.grad_loc) << name;
    EXPECT_EQ(device.loss.total, host.loss.total) << name;
    const RunTimings t = cuda_plan.last_timings();
    EXPECT_GT(t.upload_ms, 0.0);
    EXPECT_GT(t.kernels_ms, 0.0);
    EXPECT_GT(t.download_ms, 0.0);
  }
}

TEST_F(OnDevice, HostPointersToRunDeviceAreRefusedByName) {
  Result<Workload> w = make_workload("tutorial");
  ASSERT_TRUE(w.ok());
  std::unique_ptr<Plan> plan = prepare(*w);
  ASSERT_NE(plan, nullptr);
  BatchOutputs out(w->shape, w->data.ground_truths().total());
  const Status s = dynamic_cast<CudaPlan&>(*plan).run_device(w->data.ground_truths(), w->data.predictions(),
                                                             Stage::backward, out.view(), nullptr);
  EXPECT_EQ(s.code(), ErrorCode::invalid_input);
  EXPECT_THAT(s.message(), HasSubstr("gt.boxes"));
  EXPECT_THAT(s.message(), HasSubstr("not device memory"));
}

TEST_F(OnDevice, InvalidGroundTruthsOnTheDeviceAreReportedLikeTheHostValidatorDoes) {
  Result<Workload> w = make_workload("tutorial");
  ASSERT_TRUE(w.ok());
  std::unique_ptr<Plan> plan = prepare(*w);
  ASSERT_NE(plan, nullptr);
  BatchData bad = w->data;
  bad.gt_labels[1] = w->shape.num_classes;  // one past the last class
  Result<std::unique_ptr<DeviceBatch>> batch = upload_batch(w->shape, bad);
  ASSERT_TRUE(batch.ok());
  auto& cuda_plan = dynamic_cast<CudaPlan&>(*plan);
  ASSERT_TRUE(cuda_plan
                  .run_device((*batch)->ground_truths(), (*batch)->predictions(), Stage::backward,
                              (*batch)->outputs(), nullptr)
                  .ok());
  const Status device = cuda_plan.device_input_status();
  BatchOutputs out(w->shape, bad.ground_truths().total());
  const Status host = plan->run(bad.ground_truths(), bad.predictions(), Stage::backward, out.view());
  EXPECT_EQ(device.code(), ErrorCode::invalid_input);
  EXPECT_EQ(device.message(), host.message());
}

TEST_F(OnDevice, APlanTooLargeForTheDeviceFailsInPrepareWithTheNumbers) {
  Result<Workload> w = make_workload("ssd300-voc");
  ASSERT_TRUE(w.ok());
  // 60,000 images of SSD300's 8732 priors and 401 classes: 1.7 TB of logits and gradients mirrored.
  Result<std::unique_ptr<Plan>> plan = backend().prepare({60000, 8732, 401, 1}, w->priors, w->config);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("free of"));
}

}  // namespace
}  // namespace multibox::cuda::detail
