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
#include "options.hpp"

namespace multibox::cli {

void add_export_command(CLI::App& app) {
  struct Flags {
    WorkloadFlags workload;
    ConfigFlags config;
    std::string out, name, stage = "backward";
    bool dry_run = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("export", "Write a workload as a case folder with the reference's expected outputs");
  add_workload_flags(*cmd, f->workload, /*several=*/false, /*required=*/true);
  add_config_flags(*cmd, f->config);
  cmd->add_option("--out,-o", f->out, "Case folder to write (created if needed; required unless --dry-run)");
  cmd->add_option("--name", f->name, "Case name recorded in case.json (default: the workload's)");
  cmd->add_option("--stage", f->stage, "Last stage whose expected outputs are written")
      ->check(CLI::IsMember({"match", "encode", "forward", "backward"}))
      ->capture_default_str();
  cmd->add_flag("--dry-run", f->dry_run,
                "Write nothing: print the memory the reference needs for the case and its matching estimate");
  cmd->callback([f] {
    auto fail = [](const std::string& message) {
      std::cerr << "multibox export: " << message << '\n';
      throw CLI::RuntimeError(2);
    };
    if (f->out.empty() && !f->dry_run) fail("--out is required: the case folder to write");
    const std::string& workload = f->workload.workloads.front();
    auto plan = plan_workload(workload, f->workload);
    if (!plan) fail(fmt::format("workload '{}': {}", workload, plan.status().to_string()));
    const Config config = f->config.apply(plan->config);
    if (Status s = config.validate(); !s.ok()) fail(s.to_string());
    const Backend* const reference_only[] = {&reference_backend()};
    if (f->dry_run) {
      if (!print_dry_run(*plan, config, reference_only, {})) throw CLI::RuntimeError(1);
      return;
    }
    warn_reference_cost("export", fmt::format("workload '{}'", workload), plan->counts, plan->count_scale,
                        plan->shape.num_priors, config, 1, "Faster: --forced-match argmax.");
    auto w = build_workload(workload, f->workload);
    if (!w) fail(fmt::format("workload '{}': {}", workload, w.status().to_string()));
    Case c = case_from_workload(*w, f->name);
    c.config = config;

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
