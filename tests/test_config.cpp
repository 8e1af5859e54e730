// Configuration defaults of DESIGN.md and the small value types of the public API (Status, Result, names).
#include <gtest/gtest.h>

#include "multibox/multibox.hpp"

namespace multibox {
namespace {

TEST(Config, DefaultsAreThoseOfTheDesign) {
  const Config c;
  EXPECT_EQ(c.forced_match, ForcedMatch::bipartite);
  EXPECT_EQ(c.pos_threshold, 0.5f);
  EXPECT_FALSE(c.neg_threshold.has_value());
  EXPECT_EQ(c.negative_threshold(), 0.5f);  // no ignore band unless asked for
  EXPECT_EQ(c.variance_xy, 0.1f);
  EXPECT_EQ(c.variance_wh, 0.2f);
  EXPECT_EQ(c.neg_pos_ratio, 3);
  EXPECT_EQ(c.min_negatives_per_image, 0);
  EXPECT_EQ(c.alpha, 1.0f);
  EXPECT_EQ(c.smooth_l1_beta, 1.0f);
  EXPECT_TRUE(c.validate().ok());
  EXPECT_EQ(c.describe(), "bipartite pos=0.5 neg=0.5 var=(0.1,0.2) ratio=3 min_neg=0 alpha=1 beta=1");
}

TEST(Config, NegativeThresholdFollowsPosUnlessSet) {
  Config c;
  c.pos_threshold = 0.7f;
  EXPECT_EQ(c.negative_threshold(), 0.7f);
  c.neg_threshold = 0.3f;
  EXPECT_EQ(c.negative_threshold(), 0.3f);
  EXPECT_TRUE(c.validate().ok());
  c.forced_match = ForcedMatch::argmax;
  EXPECT_EQ(c.describe(), "argmax pos=0.7 neg=0.3 var=(0.1,0.2) ratio=3 min_neg=0 alpha=1 beta=1");
}

TEST(Config, EdgeValuesThatAreValid) {
  Config c;
  c.pos_threshold = 1.0f;  // (0, 1]: 1 is allowed
  c.neg_threshold = 1.0f;
  c.neg_pos_ratio = 0;     // no mining at all
  c.alpha = 0.0f;          // classification only
  c.smooth_l1_beta = 0.0f; // plain L1
  EXPECT_TRUE(c.validate().ok()) << c.validate().to_string();
}

TEST(Config, ForcedMatchNamesRoundTrip) {
  for (ForcedMatch m : {ForcedMatch::bipartite, ForcedMatch::argmax}) EXPECT_EQ(parse_forced_match(to_string(m)), m);
  EXPECT_EQ(parse_forced_match("Bipartite"), std::nullopt);
  EXPECT_EQ(parse_forced_match(""), std::nullopt);
}

TEST(ProblemShape, Describe) {
  EXPECT_EQ((ProblemShape{32, 8732, 81, 256}).describe(), "B=32 P=8732 C=81 G<=256");
  EXPECT_TRUE((ProblemShape{1, 1, 2, 0}).validate().ok());  // the smallest valid problem
}

TEST(Status, OkAndErrorText) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.code(), ErrorCode::ok);
  EXPECT_EQ(ok.to_string(), "ok");
  const Status e(ErrorCode::invalid_input, "image 3, ground truth 2: xmax (0.1) <= xmin (0.4)");
  EXPECT_FALSE(e.ok());
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_EQ(e.to_string(), "invalid input: image 3, ground truth 2: xmax (0.1) <= xmin (0.4)");
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> value = 7;
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 7);
  EXPECT_TRUE(value.status().ok());
  Result<int> error = Status(ErrorCode::unavailable, "no device");
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), ErrorCode::unavailable);
  EXPECT_EQ(error.status().message(), "no device");
}

TEST(Stage, NamesAndOrder) {
  EXPECT_STREQ(to_string(Stage::match), "match");
  EXPECT_STREQ(to_string(Stage::encode), "encode");
  EXPECT_STREQ(to_string(Stage::forward), "forward");
  EXPECT_STREQ(to_string(Stage::backward), "backward");
  // Backends compare stages with >= to decide what to produce: the order is part of the contract.
  EXPECT_LT(Stage::match, Stage::encode);
  EXPECT_LT(Stage::encode, Stage::forward);
  EXPECT_LT(Stage::forward, Stage::backward);
}

TEST(BatchOutputs, SizedForTheShape) {
  // B = 2, P = 3, C = 4, 5 ground truths.
  BatchOutputs out(ProblemShape{2, 3, 4, 8}, 5);
  EXPECT_EQ(out.matches.size(), 6u);
  EXPECT_EQ(out.forced_prior.size(), 5u);
  EXPECT_EQ(out.positives.size(), 2u);
  EXPECT_EQ(out.targets.size(), 24u);
  EXPECT_EQ(out.mined.size(), 6u);
  EXPECT_EQ(out.grad_conf.size(), 24u);
  EXPECT_EQ(out.grad_loc.size(), 24u);
  const OutputView v = out.view();
  EXPECT_EQ(v.loss, &out.loss);
  EXPECT_EQ(v.grad_conf.data(), out.grad_conf.data());
  EXPECT_TRUE(validate_outputs(ProblemShape{2, 3, 4, 8}, GroundTruthView{{}, std::vector<int32_t>(5), {}},
                               Stage::backward, v)
                  .ok());
}

TEST(BatchOutputs, SizedUpToAStageIsWhatThatStageNeeds) {
  const ProblemShape shape{2, 3, 4, 8};
  const std::vector<int32_t> labels(5);
  for (Stage stage : {Stage::match, Stage::encode, Stage::forward, Stage::backward}) {
    SCOPED_TRACE(to_string(stage));
    BatchOutputs out(shape, 5, stage);
    EXPECT_TRUE(validate_outputs(shape, GroundTruthView{{}, labels, {}}, stage, out.view()).ok());
    EXPECT_EQ(out.matches, std::vector<int32_t>(6, kNegative));
    EXPECT_EQ(out.forced_prior, std::vector<int32_t>(5, -1));
    // Later stages' outputs stay unallocated.
    EXPECT_EQ(out.targets.empty(), stage < Stage::encode);
    EXPECT_EQ(out.mined.empty(), stage < Stage::forward);
    EXPECT_EQ(out.mined_negatives.empty(), stage < Stage::forward);
    EXPECT_EQ(out.grad_conf.empty(), stage < Stage::backward);
    EXPECT_EQ(out.grad_loc.empty(), stage < Stage::backward);
  }
}

}  // namespace
}  // namespace multibox
