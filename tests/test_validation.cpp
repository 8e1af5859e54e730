// Every class of invalid input of DESIGN.md section 1 is rejected with an error that names the offending element
// (image, index, value), on every registered backend: nothing is clamped or skipped silently.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "support.hpp"

namespace multibox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::BackendTest;
using testing::Scene;
using testing::strip_box;
using testing::strip_prior;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// B = 2, P = 3, C = 4; image 0 owns GT row 0, image 1 owns rows 1 and 2.
Scene valid_scene() {
  Scene s;
  s.num_classes = 4;
  s.add_prior(strip_prior(0.0f, 0.5f));
  s.add_prior(strip_prior(0.5f, 1.0f));
  s.add_prior(strip_prior(0.25f, 0.75f));
  s.add_image({{strip_box(0.0f, 0.5f), 1}});
  s.add_image({{strip_box(0.5f, 1.0f), 2}, {strip_box(0.25f, 0.75f), 3}});
  s.zero_predictions();
  s.fixed_shape = s.shape();
  return s;
}

float& gt_coord(Scene& s, int row, int k) { return s.data.gt_boxes[static_cast<size_t>(row) * 4 + k]; }

class Validation : public BackendTest {
 protected:
  // Runs the backward stage (which validates everything) and returns its error.
  Status error_of(const Scene& s) {
    auto out = run_stage(backend(), s, Stage::backward);
    EXPECT_FALSE(out.ok()) << "accepted an invalid input";
    return out.status();
  }
};

TEST_P(Validation, ValidSceneIsAccepted) {
  auto out = run_stage(backend(), valid_scene(), Stage::backward);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
}

TEST_P(Validation, NonFiniteBoxCoordinate) {
  Scene s = valid_scene();
  gt_coord(s, 2, 1) = kNaN;  // image 1, ground truth 1 (row 2), ymin
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 1, ground truth 1: ymin is nan"));

  s = valid_scene();
  gt_coord(s, 0, 2) = kInf;  // image 0, ground truth 0, xmax
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 0, ground truth 0: xmax is inf"));
}

TEST_P(Validation, InvertedBox) {
  Scene s = valid_scene();
  gt_coord(s, 1, 0) = 0.4f;  // image 1, ground truth 0: xmin .4, xmax .1
  gt_coord(s, 1, 2) = 0.1f;
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 1, ground truth 0: xmax (0.1) <= xmin (0.4)"));

  s = valid_scene();
  gt_coord(s, 2, 1) = 0.9f;  // image 1, ground truth 1: ymin .9, ymax .2
  gt_coord(s, 2, 3) = 0.2f;
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 1, ground truth 1: ymax (0.2) <= ymin (0.9)"));
}

TEST_P(Validation, ZeroAreaBox) {
  Scene s = valid_scene();
  gt_coord(s, 0, 0) = 0.3f;  // xmin == xmax: zero width
  gt_coord(s, 0, 2) = 0.3f;
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 0, ground truth 0: xmax (0.3) <= xmin (0.3)"));

  // Positive width and height whose product underflows float: 1e-30 * 1e-30 = 0, so IoU would be 0 / 0.
  s = valid_scene();
  const std::array<float, 4> tiny{0.0f, 0.0f, 1e-30f, 1e-30f};
  std::copy(tiny.begin(), tiny.end(), &gt_coord(s, 2, 0));
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), AllOf(HasSubstr("image 1, ground truth 1"), HasSubstr("area underflows")));
}

TEST_P(Validation, LabelOutOfRange) {
  for (int32_t label : {0, 4, -1}) {  // background, C, negative
    SCOPED_TRACE(label);
    Scene s = valid_scene();
    s.data.gt_labels[2] = label;
    Status e = error_of(s);
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_THAT(e.message(), AllOf(HasSubstr("image 1, ground truth 1: label " + std::to_string(label)),
                                   HasSubstr("[1, 3]")));
  }
}

TEST_P(Validation, OffsetsThatDoNotDescribeTheBatch) {
  Scene s = valid_scene();
  s.data.gt_offsets = {0, 3};  // one image's worth for a batch of two
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("offsets hold 2 entries, expected batch + 1 = 3"));

  s.data.gt_offsets = {1, 1, 3};
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("offsets[0] must be 0, got 1"));

  s.data.gt_offsets = {0, 2, 1};
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), AllOf(HasSubstr("image 1"), HasSubstr("offsets[1] = 2 > offsets[2] = 1")));

  s.data.gt_offsets = {0, 1, 2};  // ends before the 3 labels do
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("offsets end at 2 but there are 3 labels"));
}

TEST_P(Validation, BoxesAndLabelsDisagree) {
  Scene s = valid_scene();
  s.data.gt_boxes.resize(8);
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("boxes hold 8 floats, expected 3 labels x 4 = 12"));
}

TEST_P(Validation, MoreGroundTruthsThanThePlanHoldsRoomFor) {
  Scene s = valid_scene();
  ProblemShape shape = s.shape();
  shape.max_ground_truths = 2;
  auto plan = backend().prepare(shape, s.priors, s.config);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(shape, 3);
  Status e = (*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::backward, out.view());
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("batch has 3 ground truths but the plan was prepared for at most 2"));
}

TEST_P(Validation, PredictionShapes) {
  Scene s = valid_scene();
  s.data.conf.pop_back();
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("conf holds 23 floats, expected B x P x C = 2 x 3 x 4 = 24"));

  s = valid_scene();
  s.data.loc.resize(28);
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("loc holds 28 floats, expected B x P x 4 = 2 x 3 x 4 = 24"));
}

TEST_P(Validation, NonFinitePredictions) {
  Scene s = valid_scene();
  s.logits(1, 2)[3] = kNaN;
  Status e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("conf[image 1][prior 2][class 3] is nan"));

  s = valid_scene();
  s.loc(0, 1)[2] = -kInf;
  e = error_of(s);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("loc[image 0][prior 1][2] is -inf"));
}

TEST_P(Validation, BadPriors) {
  const Scene base = valid_scene();
  auto prepare_error = [&](std::vector<float> priors) {
    auto plan = backend().prepare(base.shape(), priors, base.config);
    EXPECT_FALSE(plan.ok()) << "accepted invalid priors";
    return plan.status();
  };
  std::vector<float> p = base.priors;
  p[2 * 4 + 2] = 0.0f;  // prior 2: w = 0
  Status e = prepare_error(p);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("prior 2: width and height must be > 0, got w=0 h=1"));

  p = base.priors;
  p[1 * 4 + 3] = -0.5f;  // prior 1: h < 0
  e = prepare_error(p);
  EXPECT_THAT(e.message(), HasSubstr("prior 1: width and height must be > 0, got w=0.5 h=-0.5"));

  p = base.priors;
  p[1 * 4 + 0] = kNaN;  // prior 1: cx
  e = prepare_error(p);
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("prior 1: cx is nan"));

  p = base.priors;
  p[0 * 4 + 2] = p[0 * 4 + 3] = 1e-30f;  // positive sides whose area underflows
  e = prepare_error(p);
  EXPECT_THAT(e.message(), AllOf(HasSubstr("prior 0"), HasSubstr("area underflows")));

  p = base.priors;
  p.pop_back();
  e = prepare_error(p);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("priors hold 11 floats, expected 3 priors x 4 = 12"));
}

TEST_P(Validation, BadConfigFields) {
  struct Case {
    const char* field;
    const char* value;
    void (*apply)(Config&);
  };
  const Case cases[] = {
      {"pos_threshold", "0", [](Config& c) { c.pos_threshold = 0.0f; }},
      {"pos_threshold", "1.5", [](Config& c) { c.pos_threshold = 1.5f; }},
      {"pos_threshold", "nan", [](Config& c) { c.pos_threshold = kNaN; }},
      {"neg_threshold", "0.7", [](Config& c) { c.neg_threshold = 0.7f; }},  // above pos_threshold 0.5
      {"neg_threshold", "0", [](Config& c) { c.neg_threshold = 0.0f; }},
      {"variance_xy", "0", [](Config& c) { c.variance_xy = 0.0f; }},
      {"variance_wh", "-1", [](Config& c) { c.variance_wh = -1.0f; }},
      {"neg_pos_ratio", "-1", [](Config& c) { c.neg_pos_ratio = -1; }},
      {"min_negatives_per_image", "-3", [](Config& c) { c.min_negatives_per_image = -3; }},
      {"alpha", "-1", [](Config& c) { c.alpha = -1.0f; }},
      {"alpha", "inf", [](Config& c) { c.alpha = kInf; }},
      {"smooth_l1_beta", "-0.5", [](Config& c) { c.smooth_l1_beta = -0.5f; }},
  };
  const Scene s = valid_scene();
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.field) + " = " + c.value);
    Config config;
    c.apply(config);
    auto plan = backend().prepare(s.shape(), s.priors, config);
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), ErrorCode::invalid_config);
    EXPECT_THAT(plan.status().message(), AllOf(HasSubstr(c.field), HasSubstr(std::string("got ") + c.value)));
  }
}

TEST_P(Validation, BadProblemShape) {
  const Scene s = valid_scene();
  struct Case {
    ProblemShape shape;
    const char* words;
  };
  const Case cases[] = {
      {{0, 3, 4, 3}, "batch must be >= 1, got 0"},
      {{2, 0, 4, 3}, "num_priors must be >= 1, got 0"},
      {{2, 3, 1, 3}, "num_classes must be >= 2"},
      {{2, 3, 4, -1}, "max_ground_truths must be >= 0, got -1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.words);
    auto plan = backend().prepare(c.shape, s.priors, s.config);
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), ErrorCode::shape_mismatch);
    EXPECT_THAT(plan.status().message(), HasSubstr(c.words));
  }
}

TEST_P(Validation, OutputBuffersOfTheWrongSize) {
  Scene s = valid_scene();
  auto plan = backend().prepare(s.shape(), s.priors, s.config);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(s.shape(), 3);
  out.matches.pop_back();
  Status e = (*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::match, out.view());
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("output 'matches' holds 5 elements, expected 6"));

  BatchOutputs no_loss(s.shape(), 3);
  OutputView view = no_loss.view();
  view.loss = nullptr;
  e = (*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::forward, view);
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(e.message(), HasSubstr("'loss' is null"));
}

TEST_P(Validation, SkippingTheValueScanStillChecksShapesAndGroundTruths) {
  Scene s = valid_scene();
  PlanOptions options;
  options.check_prediction_values = false;
  auto plan = backend().prepare(s.shape(), s.priors, s.config, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  BatchOutputs out(s.shape(), 3);
  s.data.conf.pop_back();
  Status e = (*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::forward, out.view());
  EXPECT_EQ(e.code(), ErrorCode::shape_mismatch);

  s = valid_scene();
  s.data.gt_labels[0] = 0;
  e = (*plan)->run(s.data.ground_truths(), s.data.predictions(), Stage::forward, out.view());
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_THAT(e.message(), HasSubstr("image 0, ground truth 0: label 0"));
}

MULTIBOX_INSTANTIATE_ALL_BACKENDS(Validation);

}  // namespace
}  // namespace multibox
