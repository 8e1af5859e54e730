// Running a backend on a case folder's inputs and judging outputs from any program against the reference: the
// shared core of `multibox export` and `multibox validate`, kept in the library so tests exercise it directly.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "multibox/backend.hpp"
#include "multibox/case_file.hpp"
#include "multibox/compare.hpp"
#include "multibox/workloads.hpp"

namespace multibox {

// A case holding a workload's inputs, with the workload's name, seed and configuration.
Case case_from_workload(const Workload& workload, std::string name = "");

// Prepares `backend` for the case's shape and runs it up to `stage`. Errors name the backend and the case.
Result<BatchOutputs> run_on_case(const Backend& backend, const Case& c, Stage stage, const PlanOptions& options = {});

// The stage that produces a quantity (a file stem of kOutputQuantities, or a compare_outputs() quantity name such
// as "loss.total" or "unmatched_gts").
std::optional<Stage> stage_of_quantity(std::string_view quantity);
// The latest stage any of `quantities` belongs to (see stage_of_quantity); Stage::match when none does.
Stage latest_stage(const std::vector<std::string>& quantities);
// The output file stem a compare_outputs() quantity is read from ("loss.total" -> "loss").
std::string file_stem_of_quantity(std::string_view quantity);

struct CaseVerdict {
  QuantityVerdict verdict;
  bool provided = true;  // false: the candidate wrote no file for it (reported, never failed)
};

struct CaseValidation {
  Stage stage = Stage::match;           // the latest stage any provided quantity belongs to
  std::vector<CaseVerdict> quantities;  // every quantity of that stage, provided or not
  // failed if any provided quantity failed; else mistrusted if any provided one is; else passed.
  Verdict overall() const noexcept;
  int provided() const noexcept;
  std::string to_string() const;  // one line per quantity
};

// Judges `candidate` (only the quantities named in `present`) against `reference` under DESIGN.md section 6.
// `present` empty is an error: there is nothing to judge.
Result<CaseValidation> validate_case_outputs(const Case& c, const BatchOutputs& reference,
                                             const BatchOutputs& candidate, const std::vector<std::string>& present);

}  // namespace multibox
