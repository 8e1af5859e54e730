// Flags shared by every subcommand that builds a workload or a configuration, defined once here as two CLI11 option
// groups ("Workload", "Configuration") so `eval`, `export` and `datasets` spell, document and default them alike; and
// what those subcommands share at run time: the memory a run needs (--dry-run) and the reference's bipartite cost,
// announced before a run that would look hung.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "multibox/backend.hpp"
#include "multibox/workloads.hpp"

namespace multibox::cli {

// The workload name built from --priors, --classes and --objects instead of a named recipe.
inline constexpr const char* kSyntheticWorkload = "synthetic";

struct WorkloadFlags {
  std::vector<std::string> workloads;
  uint64_t seed = 0;
  int batch = 0;
  std::string coco_path;
  bool keep_crowd = false;
  std::string priors = "ssd300";  // -w synthetic only, like the three below
  int classes = 81;
  std::vector<int> objects{1, 13};
  CLI::Option *batch_opt = nullptr, *shape_opts[3] = {nullptr, nullptr, nullptr};

  WorkloadOptions options(bool predictions = true) const;
};

// `several`: -w takes a comma-separated list (and 'all'); otherwise exactly one name. `required`: no default.
void add_workload_flags(CLI::App& cmd, WorkloadFlags& flags, bool several, bool required);

// A named workload, or the synthetic one the shape flags describe (which always draws predictions).
Result<Workload> build_workload(const std::string& name, const WorkloadFlags& flags, bool predictions = true);

// A workload's shape and ground truths per image, without drawing predictions: what --dry-run and the up-front
// estimates need. For batches beyond what is worth drawing, the counts are a sample scaled by `count_scale`.
struct WorkloadPlan {
  std::string name;
  ProblemShape shape;
  Config config;
  std::vector<int> counts;  // ground truths per image (of the sample)
  double count_scale = 1;   // images the sample stands for, per sampled image
  bool counts_are_bounds = false;  // synthetic: every image at its maximum
};
Result<WorkloadPlan> plan_workload(const std::string& name, const WorkloadFlags& flags);

struct ConfigFlags {
  std::string forced_match;
  float pos_threshold = 0, neg_threshold = 0, alpha = 0, beta = 0;
  std::vector<float> variances;
  int neg_pos_ratio = 0, min_negatives = 0;
  // Which flags the user gave: the others keep the workload's (or case's) own values.
  CLI::Option *forced_opt = nullptr, *pos_opt = nullptr, *neg_opt = nullptr, *var_opt = nullptr,
              *ratio_opt = nullptr, *min_neg_opt = nullptr, *alpha_opt = nullptr, *beta_opt = nullptr;

  Config apply(Config config) const;
};

// The eight fields of Config (SPEC section 7), shown with their defaults.
void add_config_flags(CLI::App& cmd, ConfigFlags& flags);

// --dry-run: per backend, the bytes a run of `plan` needs (inputs, outputs, workspace, device) or why prepare()
// would refuse it, then the reference's matching estimate. False when any backend refuses the shape.
bool print_dry_run(const WorkloadPlan& plan, const Config& config, std::span<const Backend* const> backends,
                   const PlanOptions& options);

// One line on stderr, before the run, when the reference backend would spend over kSlowRunSeconds matching:
// `runs` runs of `counts` images (scaled by `count_scale`) against `num_priors` priors.
void warn_reference_cost(std::string_view command, std::string_view subject, std::span<const int> counts,
                         double count_scale, int num_priors, const Config& config, int runs, std::string_view hint);

}  // namespace multibox::cli
