// Export/validate plumbing: a workload written as a case and read back judges the reference PASSED against itself,
// a perturbed gradient FAILED naming the element, absent files "not provided", and every registered backend is
// judged on the adversarial case exactly as `multibox validate --backend` would.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "multibox/case_file.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"

namespace multibox {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("multibox_run_case_test_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Case tutorial_case() {
  auto w = make_workload("tutorial");
  EXPECT_TRUE(w) << w.status().to_string();
  return case_from_workload(*w);
}

TEST(RunCase, CaseFromWorkloadKeepsProvenance) {
  WorkloadOptions o;
  o.seed = 42;
  auto w = make_workload("tutorial", o);
  ASSERT_TRUE(w);
  const Case c = case_from_workload(*w, "mine");
  EXPECT_EQ(c.name, "mine");
  EXPECT_EQ(c.workload, "tutorial");
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.shape.num_priors, 441);
  EXPECT_EQ(case_from_workload(*w).name, "tutorial");
}

TEST(RunCase, QuantityNamesMapToFilesAndStages) {
  EXPECT_EQ(file_stem_of_quantity("loss.total"), "loss");
  EXPECT_EQ(file_stem_of_quantity("unmatched_gts"), "unmatched_ground_truths");
  EXPECT_EQ(stage_of_quantity("matches"), Stage::match);
  EXPECT_EQ(stage_of_quantity("targets"), Stage::encode);
  EXPECT_EQ(stage_of_quantity("loss.conf"), Stage::forward);
  EXPECT_EQ(stage_of_quantity("grad_loc"), Stage::backward);
  EXPECT_FALSE(stage_of_quantity("nonsense"));
  EXPECT_EQ(latest_stage({}), Stage::match);
  EXPECT_EQ(latest_stage({"targets", "matches"}), Stage::encode);
  EXPECT_EQ(latest_stage({"mined", "nonsense", "positives"}), Stage::forward);
  EXPECT_EQ(output_file_name("loss"), "loss.json");
  EXPECT_EQ(output_file_name("grad_conf"), "grad_conf.npy");
}

TEST(RunCase, WrittenReferenceOutputsPassAfterARoundTrip) {
  TempDir dir;
  const Case c = tutorial_case();
  auto reference = run_on_case(reference_backend(), c, Stage::backward);
  ASSERT_TRUE(reference) << reference.status().to_string();
  ASSERT_TRUE(write_case(dir.path(), c).ok());
  ASSERT_TRUE(write_outputs(dir.path() / "expected", c, *reference, Stage::backward).ok());
  auto back = read_case(dir.path());
  ASSERT_TRUE(back) << back.status().to_string();
  auto loaded = read_outputs(dir.path() / "expected", *back);
  ASSERT_TRUE(loaded) << loaded.status().to_string();
  auto v = validate_case_outputs(*back, *reference, loaded->outputs, loaded->present);
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(v->stage, Stage::backward);
  EXPECT_EQ(v->overall(), Verdict::passed) << v->to_string();
  EXPECT_EQ(v->provided(), static_cast<int>(v->quantities.size()));
}

TEST(RunCase, PerturbedGradientFailsAndAbsentFilesAreNotProvided) {
  const Case c = tutorial_case();
  auto reference = run_on_case(reference_backend(), c, Stage::backward);
  ASSERT_TRUE(reference);
  BatchOutputs candidate = *reference;
  const size_t element = (static_cast<size_t>(1) * c.shape.num_priors + 7) * c.shape.num_classes + 2;
  candidate.grad_conf[element] += 0.01f;
  const std::vector<std::string> present = {"matches", "positives", "grad_conf"};
  auto v = validate_case_outputs(c, *reference, candidate, present);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->stage, Stage::backward);
  EXPECT_EQ(v->overall(), Verdict::failed);
  EXPECT_EQ(v->provided(), 3);
  bool saw_failure = false;
  for (const CaseVerdict& q : v->quantities) {
    if (q.verdict.quantity == "grad_conf") {
      saw_failure = true;
      EXPECT_EQ(q.verdict.verdict, Verdict::failed);
      EXPECT_NE(q.verdict.detail.find("image 1, prior 7, class 2"), std::string::npos) << q.verdict.detail;
    } else if (q.verdict.quantity == "targets") {
      EXPECT_FALSE(q.provided);
    }
  }
  EXPECT_TRUE(saw_failure);
  EXPECT_NE(v->to_string().find("not provided"), std::string::npos);

  // Only match-stage files: judged at the match stage, the loss is not even listed.
  auto match_only = validate_case_outputs(c, *reference, candidate, {"matches"});
  ASSERT_TRUE(match_only);
  EXPECT_EQ(match_only->stage, Stage::match);
  EXPECT_EQ(match_only->overall(), Verdict::passed);
  EXPECT_FALSE(validate_case_outputs(c, *reference, candidate, {}));
  EXPECT_FALSE(validate_case_outputs(c, *reference, candidate, {"bogus"}));
}

// A program that writes its gradients but not its mined mask (the README's outline does exactly that) is judged
// against the reference's selection; an absent mask must not read as "nothing mined" and fail every mined row.
TEST(RunCase, GradientsWithoutAMinedMaskAreJudgedAgainstTheReferenceSelection) {
  TempDir dir;
  const Case c = tutorial_case();
  auto reference = run_on_case(reference_backend(), c, Stage::backward);
  ASSERT_TRUE(reference);
  ASSERT_TRUE(write_case(dir.path(), c).ok());
  ASSERT_TRUE(write_outputs(dir.path() / "out", c, *reference, Stage::backward).ok());
  for (const char* absent : {"mined.npy", "mined_negatives.npy", "targets.npy", "forced_prior.npy"})
    ASSERT_TRUE(fs::remove(dir.path() / "out" / absent)) << absent;
  auto loaded = read_outputs(dir.path() / "out", c);
  ASSERT_TRUE(loaded) << loaded.status().to_string();
  auto v = validate_case_outputs(c, *reference, loaded->outputs, loaded->present);
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(v->overall(), Verdict::passed) << v->to_string();
  // ... and a real gradient error is still caught on a mined row.
  BatchOutputs candidate = loaded->outputs;
  size_t mined_row = 0;
  while (mined_row < reference->mined.size() && reference->mined[mined_row] == 0) ++mined_row;
  ASSERT_LT(mined_row, reference->mined.size());
  candidate.grad_conf[mined_row * c.shape.num_classes] *= 1.01f;
  auto bad = validate_case_outputs(c, *reference, candidate, loaded->present);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->overall(), Verdict::failed) << bad->to_string();
}

TEST(RunCase, EveryAvailableBackendAgreesOnTheAdversarialCase) {
  auto w = make_workload("adversarial");
  ASSERT_TRUE(w);
  const Case c = case_from_workload(*w);
  auto reference = run_on_case(reference_backend(), c, Stage::backward);
  ASSERT_TRUE(reference) << reference.status().to_string();
  for (const Backend* b : all_backends()) {
    if (!b->available().ok()) continue;
    auto out = run_on_case(*b, c, Stage::backward);
    ASSERT_TRUE(out) << out.status().to_string();
    auto v = validate_case_outputs(c, *reference, *out, quantities_of(Stage::backward));
    ASSERT_TRUE(v);
    EXPECT_NE(v->overall(), Verdict::failed) << "backend " << b->name() << " on adversarial seed " << c.seed << ":\n"
                                             << v->to_string();
  }
}

}  // namespace
}  // namespace multibox
