#include "cases.hpp"

#include <string_view>

namespace multibox::bench {
namespace {

// ~7 objects per image (uniform in 1..13) with COCO's spread of box sizes: the scene of the issue-5 headline.
SyntheticSpec coco_like(std::string prior_set, int batch, int num_classes) {
  SyntheticSpec s;
  s.prior_set = std::move(prior_set);
  s.batch = batch;
  s.num_classes = num_classes;
  s.min_objects = 1;
  s.max_objects = 13;
  s.logits = LogitModel::trained;
  s.seed = 5;
  return s;
}

SyntheticSpec with_objects(SyntheticSpec s, int objects) {
  s.min_objects = s.max_objects = objects;
  return s;
}

// A dense anchor set of 100,000 priors (100x100 cells x 5 scales x 2 ratios), the size of an anchor-based
// detector on a large input; far beyond any standard SSD set, to show where the time goes as P grows.
constexpr const char* kDense100k = "grid:100x100:0.04,0.08,0.16,0.32,0.64:1,2";

std::vector<BenchCase> build_cases() {
  const std::vector<Stage> all_stages = {Stage::match, Stage::forward, Stage::backward};
  const std::vector<Stage> backward_only = {Stage::backward};
  const std::vector<Stage> match_only = {Stage::match};
  const std::vector<int> thread_axis = {1, 2};
  const std::vector<int> default_threads = {2};

  std::vector<BenchCase> cases;
  // Headline: SSD300, batch 32, COCO-like scenes, 81 and 21 classes, against torchvision.
  cases.push_back({"headline", "ssd300-coco-c81", coco_like("ssd300", 32, 81), std::nullopt, all_stages, thread_axis, true});
  cases.push_back({"headline", "ssd300-coco-c21", coco_like("ssd300", 32, 21), std::nullopt, all_stages, thread_axis, true});
  // The GPU goal's second batch size (issue 9): forward + backward at batch 256.
  cases.push_back({"headline", "ssd300-coco-c81-b256", coco_like("ssd300", 256, 81), std::nullopt,
                   {Stage::forward, Stage::backward}, {1}, false, "", true});
  // Real annotations: the first 32 COCO128 images (0 to 42 boxes each) on SSD300 priors, 81 classes.
  cases.push_back({"real", "coco128-b32", coco_like("ssd300", 32, 81), std::nullopt, all_stages, default_threads, true,
                   "coco128"});
  // Matching alone at SSD512 with 100 objects per image, bipartite against argmax.
  for (ForcedMatch mode : {ForcedMatch::bipartite, ForcedMatch::argmax})
    cases.push_back({"matching", std::string("ssd512-g100-") + to_string(mode), with_objects(coco_like("ssd512", 32, 81), 100),
                     mode, match_only, thread_axis, false});
  // Scaling axes, one varied at a time around SSD300, batch 8, 21 classes, ~7 objects, forward + backward.
  const struct { const char* name; const char* priors; } prior_axis[] = {
      {"priors-tutorial", "tutorial"}, {"priors-ssd300", "ssd300"}, {"priors-ssd512", "ssd512"}, {"priors-dense100k", kDense100k}};
  for (const auto& p : prior_axis)
    cases.push_back({"scale-priors", p.name, coco_like(p.priors, 8, 21), std::nullopt, backward_only, default_threads,
                     std::string_view(p.priors) == "tutorial"});
  // Matching too on this axis: its O(G x P) IoU term is compute, judged by its own pairs/ns against the vector
  // ceiling (issue 10) rather than by the memory floor.
  for (int g : {1, 10, 30, 100})
    cases.push_back({"scale-objects", "objects-" + std::to_string(g), with_objects(coco_like("ssd300", 8, 21), g),
                     std::nullopt, {Stage::match, Stage::backward}, default_threads, g == 1});
  for (int c : {2, 21, 81, 201})
    cases.push_back({"scale-classes", "classes-" + std::to_string(c), coco_like("ssd300", 8, c), std::nullopt,
                     backward_only, default_threads, c == 2});
  for (int b : {1, 8, 32, 64})
    cases.push_back({"scale-batch", "batch-" + std::to_string(b), coco_like("ssd300", b, 21), std::nullopt,
                     backward_only, default_threads, b == 1});
  return cases;
}

}  // namespace

const std::vector<BenchCase>& bench_cases() {
  static const std::vector<BenchCase> cases = build_cases();
  return cases;
}

const BenchCase* find_case(const std::string& name) {
  for (const BenchCase& c : bench_cases())
    if (c.name == name) return &c;
  return nullptr;
}

double stage_bytes(const ProblemShape& shape, int total_ground_truths, Stage stage) {
  const double rows = static_cast<double>(shape.batch) * shape.num_priors;
  const double predictions = rows * (shape.num_classes + 4) * sizeof(float);
  switch (stage) {
    case Stage::match:
      return total_ground_truths * (4 * sizeof(float) + sizeof(int32_t)) + rows * sizeof(int32_t);
    case Stage::encode:
      return total_ground_truths * (4 * sizeof(float) + sizeof(int32_t)) + rows * (sizeof(int32_t) + 4 * sizeof(float));
    case Stage::forward:
      return predictions;
    case Stage::backward:
      return 2 * predictions;
  }
  return 0;
}

Result<Workload> make_case_workload(const BenchCase& c) {
  Result<Workload> w = [&]() -> Result<Workload> {
    if (c.workload.empty()) return make_synthetic(c.spec, c.name);
    WorkloadOptions options;
    options.batch = c.spec.batch;
    return make_workload(c.workload, options);
  }();
  if (!w) return w;
  if (c.forced_match) w->config.forced_match = *c.forced_match;
  if (Status s = validate_ground_truths(w->shape, w->data.ground_truths()); !s) return s;
  if (Status s = validate_predictions(w->shape, w->data.predictions(), /*check_values=*/true); !s) return s;
  return w;
}

}  // namespace multibox::bench
