#include "multibox/run_case.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace multibox {

Case case_from_workload(const Workload& workload, std::string name) {
  Case c;
  c.name = name.empty() ? workload.name : std::move(name);
  c.workload = workload.name;
  c.seed = workload.seed;
  c.config = workload.config;
  c.shape = workload.shape;
  c.priors = workload.priors;
  c.data = workload.data;
  return c;
}

Result<BatchOutputs> run_on_case(const Backend& backend, const Case& c, Stage stage, const PlanOptions& options) {
  auto where = [&](const Status& s) {
    return Status(s.code(), fmt::format("backend '{}' on case '{}': {}", backend.name(), c.name, s.message()));
  };
  if (Status s = backend.available(); !s.ok()) return where(s);
  auto plan = backend.prepare(c.shape, c.priors, c.config, options);
  if (!plan) return where(plan.status());
  BatchOutputs out(c.shape, c.data.ground_truths().total());
  if (Status s = (*plan)->run(c.data.ground_truths(), c.data.predictions(), stage, out.view()); !s.ok())
    return where(s);
  return out;
}

std::string file_stem_of_quantity(std::string_view quantity) {
  if (quantity.starts_with("loss")) return "loss";
  if (quantity == "unmatched_gts") return "unmatched_ground_truths";
  return std::string(quantity);
}

std::optional<Stage> stage_of_quantity(std::string_view quantity) {
  if (const OutputQuantity* q = find_output(file_stem_of_quantity(quantity))) return q->stage;
  return std::nullopt;
}

Stage latest_stage(const std::vector<std::string>& quantities) {
  Stage latest = Stage::match;
  for (const std::string& q : quantities) latest = std::max(latest, stage_of_quantity(q).value_or(Stage::match));
  return latest;
}

Verdict CaseValidation::overall() const noexcept {
  Verdict v = Verdict::passed;
  for (const CaseVerdict& q : quantities) {
    if (!q.provided) continue;
    if (q.verdict.verdict == Verdict::failed) return Verdict::failed;
    if (q.verdict.verdict == Verdict::mistrusted) v = Verdict::mistrusted;
  }
  return v;
}

int CaseValidation::provided() const noexcept {
  return static_cast<int>(std::count_if(quantities.begin(), quantities.end(), [](const CaseVerdict& q) { return q.provided; }));
}

std::string CaseValidation::to_string() const {
  std::string out;
  for (const CaseVerdict& q : quantities) {
    if (!q.provided) {
      out += fmt::format("  {:<13}{:<24}({} absent)\n", "not provided", q.verdict.quantity,
                         output_file_name(file_stem_of_quantity(q.verdict.quantity)));
      continue;
    }
    out += fmt::format("  {:<13}{:<24}{:>10} elements", multibox::to_string(q.verdict.verdict), q.verdict.quantity,
                       q.verdict.elements);
    if (q.verdict.mismatches > 0) out += fmt::format(", {} outside tolerance", q.verdict.mismatches);
    if (!q.verdict.detail.empty()) out += fmt::format("  [{}]", q.verdict.detail);
    out += '\n';
  }
  return out;
}

Result<CaseValidation> validate_case_outputs(const Case& c, const BatchOutputs& reference,
                                             const BatchOutputs& candidate, const std::vector<std::string>& present) {
  if (present.empty()) return Status(ErrorCode::invalid_input, fmt::format("case '{}': no outputs to judge", c.name));
  CaseValidation result;
  for (const std::string& q : present)
    if (!stage_of_quantity(q))
      return Status(ErrorCode::invalid_input, fmt::format("case '{}': unknown output quantity '{}'", c.name, q));
  result.stage = latest_stage(present);
  // The comparator reads the candidate's mined set to judge gradient rows of near-tie swaps; a program that wrote
  // gradients but no mined.npy is judged against the reference's selection, not against an empty one.
  const bool mined_provided = std::find(present.begin(), present.end(), "mined") != present.end();
  BatchOutputs with_reference_selection;
  if (!mined_provided && result.stage >= Stage::backward) {
    with_reference_selection = candidate;
    with_reference_selection.mined = reference.mined;
  }
  const BatchOutputs& judged = with_reference_selection.mined.empty() ? candidate : with_reference_selection;
  // Outputs judged here may come from any program, so priors rebuilt from corners get their allowance.
  const AgreementReport report = compare_outputs(c.shape, c.config, c.data.ground_truths(), c.data.predictions(),
                                                 result.stage, reference, judged, CompareOptions{c.priors});
  for (const QuantityVerdict& q : report.quantities) {
    const std::string stem = file_stem_of_quantity(q.quantity);
    const bool provided = std::find(present.begin(), present.end(), stem) != present.end();
    result.quantities.push_back({q, provided});
  }
  return result;
}

}  // namespace multibox
