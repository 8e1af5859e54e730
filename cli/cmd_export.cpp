// `multibox export`: writes a workload as a case folder (inputs as .npy + case.json) with the reference backend's
// outputs in expected/, for implementations outside C++ to be validated against (see `multibox validate`).
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/case_file.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"
#include "multibox/workloads.hpp"

namespace multibox::cli {

void add_export_command(CLI::App& app) {
  struct Flags {
    std::string workload, out, name, coco_path, stage = "backward", forced_match;
    uint64_t seed = 0;
    int batch = 0;
    float pos_threshold = 0, neg_threshold = 0;
    int neg_pos_ratio = 0, min_negatives = 0;
    bool keep_crowd = false;
    CLI::Option *forced_opt = nullptr, *pos_opt = nullptr, *neg_opt = nullptr, *ratio_opt = nullptr,
                *min_neg_opt = nullptr;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("export", "Write a workload as a case folder with the reference's expected outputs");
  cmd->add_option("--workload,-w", f->workload, "Workload name (see `multibox datasets`)")->required();
  cmd->add_option("--out,-o", f->out, "Case folder to write (created if needed)")->required();
  cmd->add_option("--name", f->name, "Case name recorded in case.json (default: the workload's)");
  cmd->add_option("--seed", f->seed, "Seed (0: the workload's own)");
  cmd->add_option("--batch", f->batch, "Images (0: the workload's own)");
  cmd->add_option("--stage", f->stage, "Last stage whose expected outputs are written")
      ->check(CLI::IsMember({"match", "encode", "forward", "backward"}));
  cmd->add_option("--coco", f->coco_path, "COCO instances JSON for coco128");
  cmd->add_flag("--keep-crowd", f->keep_crowd, "COCO: keep iscrowd boxes");
  f->forced_opt = cmd->add_option("--forced-match", f->forced_match, "Stage 1 of matching")
                      ->check(CLI::IsMember({"bipartite", "argmax"}));
  f->pos_opt = cmd->add_option("--pos-threshold", f->pos_threshold, "IoU for a positive");
  f->neg_opt = cmd->add_option("--neg-threshold", f->neg_threshold, "IoU below which a prior is negative");
  f->ratio_opt = cmd->add_option("--neg-pos-ratio", f->neg_pos_ratio, "Hard negatives per positive");
  f->min_neg_opt = cmd->add_option("--min-negatives", f->min_negatives, "Minimum hard negatives per image");
  cmd->callback([f] {
    auto fail = [](const std::string& message) {
      std::cerr << "multibox export: " << message << '\n';
      throw CLI::RuntimeError(2);
    };
    WorkloadOptions options;
    options.seed = f->seed;
    options.batch = f->batch;
    options.coco_path = f->coco_path;
    options.keep_crowd = f->keep_crowd;
    auto w = make_workload(f->workload, options);
    if (!w) fail(w.status().to_string());
    Case c = case_from_workload(*w, f->name);
    if (f->forced_opt->count() > 0) c.config.forced_match = *parse_forced_match(f->forced_match);
    if (f->pos_opt->count() > 0) c.config.pos_threshold = f->pos_threshold;
    if (f->neg_opt->count() > 0) c.config.neg_threshold = f->neg_threshold;
    if (f->ratio_opt->count() > 0) c.config.neg_pos_ratio = f->neg_pos_ratio;
    if (f->min_neg_opt->count() > 0) c.config.min_negatives_per_image = f->min_negatives;
    if (Status s = c.config.validate(); !s.ok()) fail(s.to_string());

    Stage stage = Stage::backward;
    for (Stage s : {Stage::match, Stage::encode, Stage::forward, Stage::backward})
      if (f->stage == to_string(s)) stage = s;
    const Backend& reference = reference_backend();
    auto expected = run_on_case(reference, c, stage);
    if (!expected) fail(expected.status().to_string());
    if (Status s = write_case(f->out, c); !s.ok()) fail(s.to_string());
    const std::filesystem::path expected_dir = std::filesystem::path(f->out) / "expected";
    if (Status s = write_outputs(expected_dir, c, *expected, stage); !s.ok()) fail(s.to_string());

    fmt::print("wrote case '{}' ({} seed {}, {}, {}) to {}\n", c.name, c.workload, c.seed, c.shape.describe(),
               c.config.describe(), f->out);
    fmt::print("expected outputs up to stage '{}' from the reference backend '{}' in {}\n", to_string(stage),
               reference.name(), expected_dir.string());
    if (stage >= Stage::forward)
      fmt::print("loss {:.9g} (conf {:.9g}, loc {:.9g}), N = {}\n", expected->loss.total, expected->loss.conf,
                 expected->loss.loc, expected->loss.num_positives);
  });
}

}  // namespace multibox::cli
