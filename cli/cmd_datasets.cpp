// `multibox datasets`: every named workload with its statistics (images, priors, classes, boxes per image), and
// for COCO-file workloads the per-class counts with --verbose. Predictions are not drawn: only boxes are counted.
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/coco.hpp"
#include "multibox/workloads.hpp"

namespace multibox::cli {

void add_datasets_command(CLI::App& app) {
  struct Flags {
    std::vector<std::string> workloads;
    std::string coco_path;
    uint64_t seed = 0;
    int batch = 0;
    bool verbose = false;
    bool keep_crowd = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("datasets", "List the named workloads with their statistics");
  cmd->add_option("--workload,-w", flags->workloads, "Only these workloads (default: all)");
  cmd->add_option("--coco", flags->coco_path,
                  fmt::format("COCO instances JSON for coco128 (default: ${}, else the shared COCO128 file)",
                              kCocoEnvVar));
  cmd->add_option("--seed", flags->seed, "Seed (0: each workload's own)");
  cmd->add_option("--batch", flags->batch, "Images per workload (0: each workload's own)");
  cmd->add_flag("--keep-crowd", flags->keep_crowd, "COCO: keep iscrowd boxes");
  cmd->add_flag("--verbose,-v", flags->verbose, "Also per-image and per-class statistics of COCO workloads");
  cmd->callback([flags] {
    std::vector<std::string> names = flags->workloads;
    if (names.empty())
      for (const WorkloadInfo& info : list_workloads()) names.push_back(info.name);
    WorkloadOptions options;
    options.seed = flags->seed;
    options.batch = flags->batch;
    options.coco_path = flags->coco_path;
    options.keep_crowd = flags->keep_crowd;
    options.predictions = false;
    fmt::print("{:<12} {:>6} {:>7} {:>7} {:>6}  {:>21}  {}\n", "workload", "images", "priors", "classes", "boxes",
               "boxes/img min/med/max", "description");
    int failures = 0;
    for (const std::string& name : names) {
      auto w = make_workload(name, options);
      if (!w) {
        // A workload whose file is absent is listed with the reason, not hidden; it is an error only when asked for.
        fmt::print("{:<12} unavailable: {}\n", name, w.status().message());
        if (w.status().code() != ErrorCode::io_error || !flags->workloads.empty() || !flags->coco_path.empty())
          ++failures;
        continue;
      }
      const WorkloadStats s = workload_stats(*w);
      const std::string per_image = fmt::format("{}/{}/{}", s.boxes_min, s.boxes_median, s.boxes_max);
      fmt::print("{:<12} {:>6} {:>7} {:>7} {:>6}  {:>21}  {}\n", w->name, s.images, s.priors, s.classes, s.boxes,
                 per_image, w->description);
      if (flags->verbose && name == "coco128") {
        auto path = find_coco_json(options);
        CocoOptions coco_options;
        coco_options.keep_crowd = flags->keep_crowd;
        auto coco = path ? load_coco(*path, coco_options) : Result<CocoDataset>(path.status());
        if (coco) std::cout << coco->describe(true);
      }
    }
    if (failures > 0) throw CLI::RuntimeError(2);
  });
}

}  // namespace multibox::cli
