// Named, seeded, reproducible workloads: prior set x ground-truth source x batch x classes x logit model.
// Benchmarks, the command line and tests draw their inputs from here so every figure names its workload.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"
#include "multibox/status.hpp"

namespace multibox {

// How logits are drawn.
enum class LogitModel {
  random,   // i.i.d. normal(0, 1)
  trained,  // peaked on background for negatives and on the label for positives, like a half-trained head
  extreme,  // magnitudes up to +-1e4
};

// A synthetic batch description; every named workload is one of these (or a COCO-file one).
struct SyntheticSpec {
  std::string prior_set = "ssd300";  // any name priors_by_name() accepts
  int batch = 32;
  int num_classes = 81;
  int min_objects = 1;               // objects per image drawn uniformly in [min_objects, max_objects]
  int max_objects = 13;
  float min_box_size = 0.02f;        // box side as a fraction of the image, drawn log-uniformly
  float max_box_size = 0.9f;
  LogitModel logits = LogitModel::trained;
  uint64_t seed = 1;
};

struct Workload {
  std::string name;
  std::string description;
  std::string prior_set;
  std::vector<float> priors;  // [P][4] centre-size
  ProblemShape shape;         // max_ground_truths == total ground truths of `data`
  BatchData data;
  Config config;              // the configuration the workload is meant to be run with (defaults unless stated)
  uint64_t seed = 0;          // the seed it was drawn with (the workload's own when the caller gave none)
};

struct WorkloadInfo {
  std::string name;
  std::string description;
};

// Every named workload ("tutorial", "ssd300-voc", "ssd300-coco", "ssd512-voc", "ssd512-coco", "crowded",
// "dense-100k", "adversarial", "coco128", ...). Those needing a file that is absent are still listed.
std::vector<WorkloadInfo> list_workloads();

struct WorkloadOptions {
  uint64_t seed = 0;       // 0: the workload's own seed
  int batch = 0;           // 0: the workload's own batch size
  std::string coco_path;   // empty: MULTIBOX_COCO_JSON, else the shared COCO128 file
  bool predictions = true; // false: leave conf and loc empty (statistics and matching need only the boxes)
  bool keep_crowd = false; // COCO workloads: keep iscrowd boxes
};

// Where the "coco128" workload looks for its annotations, in order: options.coco_path, $MULTIBOX_COCO_JSON,
// MULTIBOX_SHARED_DATASETS/coco128/instances_train2017.json (set at configure time). Empty entries are skipped.
inline constexpr const char* kCocoEnvVar = "MULTIBOX_COCO_JSON";
std::vector<std::string> coco_search_paths(const WorkloadOptions& options = {});
// The first of coco_search_paths() that exists, or an io_error naming every path tried.
Result<std::string> find_coco_json(const WorkloadOptions& options = {});

// Statistics of a workload's ground truths, for `multibox datasets` and reports.
struct WorkloadStats {
  int images = 0;
  int priors = 0;
  int classes = 0;
  int64_t boxes = 0;
  int boxes_min = 0;     // per image
  double boxes_median = 0;
  int boxes_max = 0;
  int empty_images = 0;
};
WorkloadStats workload_stats(const Workload& workload);

// Draws conf and loc for ground truths already in `data` (see LogitModel). Used by the synthetic and the COCO
// workloads; exposed so tests and tools can re-draw predictions for boxes from elsewhere.
Status fill_predictions(BatchData& data, std::span<const float> priors, int num_classes, LogitModel model,
                        uint64_t seed, const Config& config = {});

Result<Workload> make_workload(std::string_view name, const WorkloadOptions& options = {});
Result<Workload> make_synthetic(const SyntheticSpec& spec, std::string name = "synthetic");

}  // namespace multibox
