// `multibox validate`: judges an implementation's outputs on a case folder (written by any program: NumPy,
// PyTorch, ...) or a registered backend's, against the reference under DESIGN.md section 6. One verdict per
// quantity; exit status 1 when any provided quantity FAILED, 2 when the inputs could not be read.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/case_file.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"
#include "options.hpp"

namespace multibox::cli {

void add_validate_command(CLI::App& app) {
  struct Flags {
    std::string case_dir, outputs, backend, stage = "backward";
    int threads = 0;
    bool dry_run = false;
    CLI::Option* stage_opt = nullptr;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "validate", "Compare an implementation's outputs on a case folder with the reference, one verdict per quantity");
  cmd->add_option("--case,-c", f->case_dir, "Case folder (see `multibox export`)")->required();
  auto* outputs_opt =
      cmd->add_option("--outputs,-o", f->outputs, "Folder of the implementation's outputs (same names as expected/)");
  cmd->add_option("--backend,-b", f->backend,
                  fmt::format("Without --outputs: the registered backend to run (default: ${}, else the first "
                              "available non-reference one)",
                              kBackendEnvVar))
      ->excludes(outputs_opt);
  f->stage_opt = cmd->add_option("--stage", f->stage, "With a backend: the last stage to run and judge")
                     ->check(CLI::IsMember({"match", "encode", "forward", "backward"}));
  cmd->add_option("--threads", f->threads, "Threads for the backend (0: its default)")->capture_default_str();
  cmd->add_flag("--dry-run", f->dry_run,
                "Run nothing: print the memory the reference and the candidate backend need for the case, and the "
                "reference's matching estimate");
  cmd->footer(
      "Quantities a program did not write are reported as 'not provided' and do not fail.\n"
      "Exit status: 0 when every provided quantity PASSED or is MISTRUSTED (nothing to prove), 1 when any FAILED,\n"
      "2 when the case or the outputs could not be read.");
  cmd->callback([f] {
    auto fail = [](const std::string& message) {
      std::cerr << "multibox validate: " << message << '\n';
      throw CLI::RuntimeError(2);
    };
    auto c = read_case(f->case_dir);
    if (!c) fail(c.status().to_string());
    fmt::print("case '{}' ({}, seed {}): {}, {}\n", c->name, c->workload.empty() ? "hand-made" : c->workload, c->seed,
               c->shape.describe(), c->config.describe());

    std::vector<int> counts;
    for (int b = 0; b < c->shape.batch; ++b) counts.push_back(c->data.ground_truths().count(b));
    if (f->dry_run) {
      std::vector<const Backend*> backends{&reference_backend()};
      if (f->outputs.empty()) {
        auto backend = select_backend(f->backend);
        if (!backend) fail(backend.status().to_string());
        if (*backend != backends.front()) backends.push_back(*backend);
      }
      WorkloadPlan plan{c->name, c->shape, c->config, counts};
      PlanOptions options;
      options.num_threads = f->threads;
      if (!print_dry_run(plan, c->config, backends, options)) throw CLI::RuntimeError(1);
      return;
    }
    // The reference runs once, and a second time when it is also the candidate.
    const auto candidate_backend = select_backend(f->backend);
    const bool reference_is_candidate =
        f->outputs.empty() && candidate_backend && candidate_backend.value() == &reference_backend();
    warn_reference_cost("validate", fmt::format("case '{}'", c->name), counts, 1, c->shape.num_priors, c->config,
                        reference_is_candidate ? 2 : 1, "The verdicts follow when it is done.");

    BatchOutputs candidate;
    std::vector<std::string> present;
    Stage stage = Stage::backward;
    for (Stage s : {Stage::match, Stage::encode, Stage::forward, Stage::backward})
      if (f->stage == to_string(s)) stage = s;
    PlanOptions plan_options;
    plan_options.num_threads = f->threads;
    if (!f->outputs.empty()) {
      auto loaded = read_outputs(f->outputs, *c);
      if (!loaded) fail(loaded.status().to_string());
      if (loaded->present.empty()) {
        std::vector<std::string> files;
        for (const char* q : kOutputQuantities) files.push_back(output_file_name(q));
        fail(fmt::format("no output files in '{}' (expected any of {})", f->outputs, fmt::join(files, ", ")));
      }
      present = loaded->present;
      candidate = std::move(loaded->outputs);
      fmt::print("candidate: outputs in {} ({} of {} files)\n", f->outputs, present.size(),
                 std::size(kOutputQuantities));
      stage = latest_stage(present);
    } else {
      auto backend = select_backend(f->backend);
      if (!backend) fail(backend.status().to_string());
      auto out = run_on_case(**backend, *c, stage, plan_options);
      if (!out) fail(out.status().to_string());
      candidate = std::move(*out);
      present = quantities_of(stage);
      fmt::print("candidate: backend '{}' up to stage '{}'\n", (*backend)->name(), to_string(stage));
    }

    const Backend& reference_impl = reference_backend();
    auto reference = run_on_case(reference_impl, *c, stage, plan_options);
    if (!reference) fail(reference.status().to_string());

    // A case folder's expected/ is what non-C++ users compare against by hand: say so when it has gone stale.
    const std::filesystem::path expected_dir = std::filesystem::path(f->case_dir) / "expected";
    if (std::filesystem::is_directory(expected_dir)) {
      auto expected = read_outputs(expected_dir, *c);
      if (!expected) {
        fmt::print("warning: {}\n", expected.status().to_string());
      } else {
        // Only what the reference computed now (up to `stage`) can be checked for staleness.
        std::vector<std::string> comparable;
        for (const std::string& q : expected->present)
          if (stage_of_quantity(q).value_or(Stage::backward) <= stage) comparable.push_back(q);
        if (!comparable.empty()) {
          auto stale = validate_case_outputs(*c, *reference, expected->outputs, comparable);
          if (stale && stale->overall() == Verdict::failed)
            fmt::print("warning: {} disagrees with the reference '{}' computed now; the case folder is stale:\n{}",
                       expected_dir.string(), reference_impl.name(), stale->to_string());
        }
      }
    }

    auto result = validate_case_outputs(*c, *reference, candidate, present);
    if (!result) fail(result.status().to_string());
    fmt::print("against the reference backend '{}', up to stage '{}':\n{}", reference_impl.name(),
               to_string(result->stage), result->to_string());
    const Verdict overall = result->overall();
    fmt::print("overall: {} ({} quantities judged)\n", to_string(overall), result->provided());
    if (overall == Verdict::failed) throw CLI::RuntimeError(1);
  });
}

}  // namespace multibox::cli
