// `multibox datasets`: every named workload with its statistics (images, priors, classes, boxes per image), and
// for COCO-file workloads the per-class counts with --verbose. Predictions are not drawn: only boxes are counted.
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/coco.hpp"
#include "multibox/workloads.hpp"
#include "options.hpp"

namespace multibox::cli {

void add_datasets_command(CLI::App& app) {
  struct Flags {
    WorkloadFlags workload;
    bool verbose = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("datasets", "List the named workloads with their statistics");
  add_workload_flags(*cmd, flags->workload, /*several=*/true, /*required=*/false);
  cmd->add_flag("--verbose,-v", flags->verbose, "Also per-image and per-class statistics of COCO workloads");
  cmd->callback([flags] {
    std::vector<std::string> names = flags->workload.workloads;
    if (names.empty() || names == std::vector<std::string>{"all"}) {
      names.clear();
      for (const WorkloadInfo& info : list_workloads()) names.push_back(info.name);
    }
    const std::vector<std::string>& requested = flags->workload.workloads;
    const bool asked = !requested.empty() && requested != std::vector<std::string>{"all"};
    const WorkloadOptions options = flags->workload.options(/*predictions=*/false);
    fmt::print("{:<12} {:>6} {:>7} {:>7} {:>6}  {:>21}  {}\n", "workload", "images", "priors", "classes", "boxes",
               "boxes/img min/med/max", "description");
    int failures = 0;
    for (const std::string& name : names) {
      auto w = build_workload(name, flags->workload, /*predictions=*/false);
      if (!w) {
        // A workload whose file is absent is listed with the reason, not hidden; it is an error only when asked for.
        fmt::print("{:<12} unavailable: {}\n", name, w.status().message());
        if (w.status().code() != ErrorCode::io_error || asked || !options.coco_path.empty())
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
        coco_options.keep_crowd = options.keep_crowd;
        auto coco = path ? load_coco(*path, coco_options) : Result<CocoDataset>(path.status());
        if (coco) std::cout << coco->describe(true);
      }
    }
    if (failures > 0) throw CLI::RuntimeError(2);
  });
}

}  // namespace multibox::cli
