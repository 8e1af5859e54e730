// Case folders: inputs and outputs survive a write/read round trip bit for bit, and every malformed folder
// (bad case.json field, wrong dtype or shape, invalid content) is refused with the file and field named.
#include "multibox/case_file.hpp"

#include <fstream>
#include <functional>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "multibox/npy.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"

namespace multibox {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Two images on a 3x3 grid of priors: the first with two objects, the second with none (an allowed edge case).
Case small_case() {
  Case c;
  c.name = "small";
  c.workload = "hand-made";
  c.seed = 12345678901234ull;
  c.config.forced_match = ForcedMatch::argmax;
  c.config.neg_threshold = 0.4f;
  c.config.alpha = 0.5f;
  c.priors = priors_by_name("grid:3x3:0.3,0.6:1,2").value();
  c.shape.batch = 2;
  c.shape.num_priors = static_cast<int>(c.priors.size() / 4);
  c.shape.num_classes = 4;
  c.data.gt_boxes = {0.1f, 0.1f, 0.4f, 0.5f, 0.5f, 0.45f, 0.95f, 0.9f};
  c.data.gt_labels = {1, 3};
  c.data.gt_offsets = {0, 2, 2};
  c.shape.max_ground_truths = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  c.data.conf.resize(static_cast<size_t>(c.shape.batch) * c.shape.num_priors * c.shape.num_classes);
  c.data.loc.resize(static_cast<size_t>(c.shape.batch) * c.shape.num_priors * 4);
  for (float& v : c.data.conf) v = normal(rng);
  for (float& v : c.data.loc) v = normal(rng);
  return c;
}

class CaseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("multibox_case_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    ASSERT_TRUE(write_case(dir_, case_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  nlohmann::json case_json() {
    std::ifstream in(dir_ / "case.json");
    return nlohmann::json::parse(in);
  }
  void put_case_json(const nlohmann::json& j) {
    std::ofstream out(dir_ / "case.json", std::ios::trunc);
    out << j.dump();
  }
  BatchOutputs reference_outputs() {
    auto plan = reference_backend().prepare(case_.shape, case_.priors, case_.config);
    EXPECT_TRUE(plan.ok()) << plan.status().to_string();
    BatchOutputs out(case_.shape, static_cast<int>(case_.data.gt_labels.size()));
    Status s = (*plan)->run(case_.data.ground_truths(), case_.data.predictions(), Stage::backward, out.view());
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }

  Case case_ = small_case();
  fs::path dir_;
};

TEST_F(CaseFileTest, InputsRoundTripExactly) {
  auto read = read_case(dir_);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(read->name, "small");
  EXPECT_EQ(read->workload, "hand-made");
  EXPECT_EQ(read->seed, 12345678901234ull);
  EXPECT_EQ(read->shape.batch, 2);
  EXPECT_EQ(read->shape.num_priors, case_.shape.num_priors);
  EXPECT_EQ(read->shape.num_classes, 4);
  EXPECT_EQ(read->shape.max_ground_truths, 2);
  EXPECT_EQ(read->config.forced_match, ForcedMatch::argmax);
  EXPECT_EQ(read->config.neg_threshold, std::optional<float>(0.4f));
  EXPECT_EQ(read->config.alpha, 0.5f);
  EXPECT_EQ(read->config.describe(), case_.config.describe());
  EXPECT_EQ(read->priors, case_.priors);
  EXPECT_EQ(read->data.gt_boxes, case_.data.gt_boxes);
  EXPECT_EQ(read->data.gt_labels, case_.data.gt_labels);
  EXPECT_EQ(read->data.gt_offsets, case_.data.gt_offsets);
  EXPECT_EQ(read->data.conf, case_.data.conf);
  EXPECT_EQ(read->data.loc, case_.data.loc);
}

TEST_F(CaseFileTest, UnsetNegativeThresholdStaysUnset) {
  case_.config.neg_threshold.reset();
  ASSERT_TRUE(write_case(dir_, case_).ok());
  EXPECT_TRUE(case_json()["config"]["neg_threshold"].is_null());
  auto read = read_case(dir_);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_FALSE(read->config.neg_threshold.has_value());
}

TEST_F(CaseFileTest, CaseJsonErrorsNameTheFileAndField) {
  const nlohmann::json good = case_json();
  struct Damage {
    std::function<void(nlohmann::json&)> apply;
    std::string expected;
  };
  const std::vector<Damage> damages = {
      {[](auto& j) { j["config"].erase("alpha"); }, "field \"config.alpha\" is missing"},
      {[](auto& j) { j["config"]["neg_pos_ratio"] = "three"; }, "field \"config.neg_pos_ratio\" must be an integer"},
      {[](auto& j) { j["config"]["forced_match"] = "greedy"; }, "\"greedy\" is not bipartite or argmax"},
      {[](auto& j) { j["config"]["pos_threshold"] = 1.5; }, "config: "},
      {[](auto& j) { j["format"] = "something-else"; }, "field \"format\" is \"something-else\""},
      {[](auto& j) { j["version"] = 2; }, "field \"version\" is 2"},
      {[](auto& j) { j["shape"].erase("num_classes"); }, "field \"shape.num_classes\" is missing"},
      {[](auto& j) { j["shape"]["batch"] = 0; }, "batch must be >= 1"},
      {[](auto& j) { j.erase("config"); }, "field \"config\" must be an object"},
  };
  for (const auto& damage : damages) {
    nlohmann::json j = good;
    damage.apply(j);
    put_case_json(j);
    auto read = read_case(dir_);
    ASSERT_FALSE(read.ok()) << damage.expected;
    EXPECT_THAT(read.status().message(), HasSubstr("case.json")) << damage.expected;
    EXPECT_THAT(read.status().message(), HasSubstr(damage.expected));
  }
  std::ofstream(dir_ / "case.json", std::ios::trunc) << "{ not json";
  auto read = read_case(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr("case.json: is not valid JSON"));
}

TEST_F(CaseFileTest, ArraysMustMatchTheDeclaredShapeAndDtype) {
  // One class too many in conf.npy.
  std::vector<float> wide(static_cast<size_t>(2) * case_.shape.num_priors * 5, 0.0f);
  ASSERT_TRUE(npy::write(dir_ / "conf.npy", wide, {2, case_.shape.num_priors, 5}).ok());
  auto read = read_case(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr("conf.npy: shape is"));

  ASSERT_TRUE(write_case(dir_, case_).ok());
  ASSERT_TRUE(npy::write(dir_ / "gt_labels.npy", std::vector<float>{1, 3}, {2}).ok());
  read = read_case(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr("gt_labels.npy: dtype is float32 but int32"));

  ASSERT_TRUE(write_case(dir_, case_).ok());
  fs::remove(dir_ / "loc.npy");
  read = read_case(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), ErrorCode::io_error);
  EXPECT_THAT(read.status().message(), HasSubstr("loc.npy"));
}

TEST_F(CaseFileTest, InvalidContentIsRefusedOnReadAndOnWrite) {
  // xmax < xmin for ground truth 1 of image 0: written by some other program, it must not slip in.
  std::vector<float> boxes = case_.data.gt_boxes;
  boxes[6] = 0.2f;
  ASSERT_TRUE(npy::write(dir_ / "gt_boxes.npy", boxes, {2, 4}).ok());
  auto read = read_case(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), ErrorCode::invalid_input);
  EXPECT_THAT(read.status().message(), HasSubstr(dir_.string()));
  EXPECT_THAT(read.status().message(), HasSubstr("image 0"));

  Case bad = case_;
  bad.data.gt_labels[0] = 4;  // == num_classes
  Status s = write_case(dir_ / "bad", bad);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("label"));
}

TEST_F(CaseFileTest, OutputsRoundTripAndReportTheCompleteStage) {
  const BatchOutputs ref = reference_outputs();
  ASSERT_GT(ref.loss.num_positives, 0);
  ASSERT_TRUE(write_outputs(dir_ / "expected", case_, ref, Stage::backward).ok());
  auto loaded = read_outputs(dir_ / "expected", case_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->present.size(), std::size(kOutputQuantities));
  EXPECT_EQ(loaded->complete_stage(), std::optional<Stage>(Stage::backward));
  const BatchOutputs& o = loaded->outputs;
  EXPECT_EQ(o.matches, ref.matches);
  EXPECT_EQ(o.forced_prior, ref.forced_prior);
  EXPECT_EQ(o.positives, ref.positives);
  EXPECT_EQ(o.unmatched_ground_truths, ref.unmatched_ground_truths);
  EXPECT_EQ(o.targets, ref.targets);
  EXPECT_EQ(o.mined, ref.mined);
  EXPECT_EQ(o.mined_negatives, ref.mined_negatives);
  EXPECT_EQ(o.grad_conf, ref.grad_conf);
  EXPECT_EQ(o.grad_loc, ref.grad_loc);
  // JSON keeps doubles to the last bit.
  EXPECT_EQ(o.loss.total, ref.loss.total);
  EXPECT_EQ(o.loss.conf, ref.loss.conf);
  EXPECT_EQ(o.loss.loc, ref.loss.loc);
  EXPECT_EQ(o.loss.conf_sum, ref.loss.conf_sum);
  EXPECT_EQ(o.loss.loc_sum, ref.loss.loc_sum);
  EXPECT_EQ(o.loss.num_positives, ref.loss.num_positives);

  fs::remove(dir_ / "expected" / "grad_loc.npy");
  loaded = read_outputs(dir_ / "expected", case_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has("grad_loc"));
  EXPECT_TRUE(loaded->has("grad_conf"));
  EXPECT_EQ(loaded->complete_stage(), std::optional<Stage>(Stage::forward));

  fs::remove(dir_ / "expected" / "positives.npy");
  loaded = read_outputs(dir_ / "expected", case_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->complete_stage(), std::nullopt);
}

TEST_F(CaseFileTest, WriteOutputsWritesOnlyWhatTheStageProduces) {
  const BatchOutputs ref = reference_outputs();
  ASSERT_TRUE(write_outputs(dir_ / "out", case_, ref, Stage::encode).ok());
  auto loaded = read_outputs(dir_ / "out", case_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_THAT(loaded->present, ElementsAre("matches", "forced_prior", "positives", "unmatched_ground_truths",
                                           "targets"));
  EXPECT_EQ(loaded->complete_stage(), std::optional<Stage>(Stage::encode));
  EXPECT_THAT(quantities_of(Stage::match),
              ElementsAre("matches", "forced_prior", "positives", "unmatched_ground_truths"));
}

TEST_F(CaseFileTest, ForeignOutputsMayOmitLossSumsAndUseBool) {
  fs::create_directories(dir_ / "foreign");
  std::ofstream(dir_ / "foreign" / "loss.json") << R"({"total": 3.0, "conf": 2.0, "loc": 1.0, "num_positives": 4})";
  // numpy users naturally save a boolean mask.
  std::vector<uint8_t> mask(static_cast<size_t>(2) * case_.shape.num_priors, 0);
  mask[3] = 1;
  ASSERT_TRUE(npy::write(dir_ / "foreign" / "mined.npy", mask, {2, case_.shape.num_priors}).ok());
  auto loaded = read_outputs(dir_ / "foreign", case_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_THAT(loaded->present, ElementsAre("mined", "loss"));
  EXPECT_EQ(loaded->outputs.loss.conf_sum, 8.0);
  EXPECT_EQ(loaded->outputs.loss.loc_sum, 4.0);
  EXPECT_EQ(loaded->outputs.mined[3], 1);
}

TEST_F(CaseFileTest, MalformedOutputFilesAreErrors) {
  fs::create_directories(dir_ / "bad");
  std::vector<int32_t> wrong_shape(case_.shape.num_priors, 0);
  ASSERT_TRUE(npy::write(dir_ / "bad" / "matches.npy", wrong_shape, {case_.shape.num_priors}).ok());
  auto loaded = read_outputs(dir_ / "bad", case_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("matches.npy: shape is"));
  fs::remove(dir_ / "bad" / "matches.npy");
  std::ofstream(dir_ / "bad" / "loss.json") << R"({"total": 1.0, "conf": 1.0, "loc": 0.0})";
  loaded = read_outputs(dir_ / "bad", case_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("loss.json: field \"num_positives\" is missing"));
  auto missing = read_outputs(dir_ / "absent", case_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("is not a folder"));
}

}  // namespace
}  // namespace multibox
