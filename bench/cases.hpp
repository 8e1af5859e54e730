// The benchmark cases of issue 5 (headline, matching modes, scaling axes), shared by the benchmark
// executable and its input dump so the torchvision peer timing reads exactly the inputs the C++ side timed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"
#include "multibox/workloads.hpp"

namespace multibox::bench {

struct BenchCase {
  std::string group;  // "headline", "matching", "scale-priors", "scale-objects", "scale-classes", "scale-batch"
  std::string name;   // unique across groups, e.g. "ssd300-coco-c81"
  SyntheticSpec spec;
  std::optional<ForcedMatch> forced_match;  // overrides the workload's configuration
  std::vector<Stage> stages;
  std::vector<int> threads;                 // thread counts for threaded backends
  // The naive reference is run only where it finishes in about a second per iteration: it is the literal
  // O(G^2 * P) oracle, so a matching case with 100 objects per image would take minutes.
  bool with_reference = false;
  // A named workload (datasets/) to run instead of `spec`, at spec.batch images: the real COCO128 annotations.
  // Its file may be absent on a user's machine; the case is then skipped with the reason, not failed.
  std::string workload;
  // Sizes only a GPU runs at benchmark speed (batch 256 of SSD300 at 81 classes: 724 MB of logits): registered for
  // the cuda backend alone.
  bool gpu_only = false;
};

const std::vector<BenchCase>& bench_cases();
const BenchCase* find_case(const std::string& name);

// Bytes a stage must move at the least, the issue-5 definition of the memory floor: logits and loc offsets read
// (forward and backward), gradients written (backward). Matching reads ground truths and writes one match per prior;
// for it the figure is informational (it is compute bound). Outputs such as matches, targets and the mined mask
// (21 bytes per prior) are written by every stage but are not counted, so the floor is a true lower bound.
double stage_bytes(const ProblemShape& shape, int total_ground_truths, Stage stage);

// The workload of a case, its predictions checked once for NaN/Inf so timed runs can skip that scan.
Result<Workload> make_case_workload(const BenchCase& c);

}  // namespace multibox::bench
