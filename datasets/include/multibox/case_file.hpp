// Case folders: one batch's inputs as .npy files plus case.json, and any implementation's outputs beside them,
// so implementations outside C++ (NumPy, PyTorch, ...) can be validated against the reference.
//
//   DIR/case.json      {"format": "multibox-case", "version": 1, "name", "workload", "seed",
//                       "shape": {"batch", "num_priors", "num_classes"}, "config": {...every Config field...}}
//   DIR/priors.npy     <f4 [P,4] (cx, cy, w, h)      DIR/gt_boxes.npy   <f4 [G,4] (xmin, ymin, xmax, ymax)
//   DIR/gt_labels.npy  <i4 [G]                        DIR/gt_offsets.npy <i4 [B+1]
//   DIR/conf.npy       <f4 [B,P,C]                    DIR/loc.npy        <f4 [B,P,4]
//   DIR/expected/      the reference's outputs; any outputs folder uses these names (any subset):
//     matches.npy <i4 [B,P]   forced_prior.npy <i4 [G]   positives.npy, unmatched_ground_truths.npy,
//     mined_negatives.npy <i4 [B]   targets.npy <f4 [B,P,4]   mined.npy |u1 [B,P] (bool accepted)
//     grad_conf.npy <f4 [B,P,C]   grad_loc.npy <f4 [B,P,4]
//     loss.json {"total", "conf", "loc", "conf_sum", "loc_sum", "num_positives"}
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"
#include "multibox/status.hpp"

namespace multibox {

inline constexpr const char* kCaseFormat = "multibox-case";
inline constexpr int kCaseVersion = 1;

struct Case {
  std::string name;
  std::string workload;  // the workload it was drawn from ("" when hand-made)
  uint64_t seed = 0;
  Config config;
  ProblemShape shape;          // max_ground_truths == total ground truths of `data`
  std::vector<float> priors;   // [P][4] centre-size
  BatchData data;
};

// Writes case.json and the six input arrays into `dir` (created if needed). Checks the arrays against `shape` first.
Status write_case(const std::filesystem::path& dir, const Case& c);

// Reads and validates a case folder: every array's dtype and shape against case.json, then the input contract of
// DESIGN.md section 1. Errors name the file and the field or element.
Result<Case> read_case(const std::filesystem::path& dir);

// How an output quantity's array extents follow from the case's B images, P priors, C classes and G ground truths
// (in all); none for "loss", which is not an array.
enum class OutputExtents { none, per_image, per_ground_truth, per_prior, per_prior_box, per_prior_class };

// Every output quantity in stage order: its file stem ("loss" is loss.json), the stage that produces it, its array
// shape and the BatchOutputs member that holds it. Writing, reading and the Python module all go through this one
// table, so a quantity cannot land in one field (or shape) when written and another when read.
struct OutputQuantity {
  const char* name;
  Stage stage;
  OutputExtents extents;
  std::variant<std::vector<int32_t> BatchOutputs::*, std::vector<float> BatchOutputs::*,
               std::vector<uint8_t> BatchOutputs::*, LossTerms BatchOutputs::*>
      field;
};
inline constexpr OutputQuantity kOutputs[] = {
    {"matches", Stage::match, OutputExtents::per_prior, &BatchOutputs::matches},
    {"forced_prior", Stage::match, OutputExtents::per_ground_truth, &BatchOutputs::forced_prior},
    {"positives", Stage::match, OutputExtents::per_image, &BatchOutputs::positives},
    {"unmatched_ground_truths", Stage::match, OutputExtents::per_image, &BatchOutputs::unmatched_ground_truths},
    {"targets", Stage::encode, OutputExtents::per_prior_box, &BatchOutputs::targets},
    {"mined", Stage::forward, OutputExtents::per_prior, &BatchOutputs::mined},
    {"mined_negatives", Stage::forward, OutputExtents::per_image, &BatchOutputs::mined_negatives},
    {"loss", Stage::forward, OutputExtents::none, &BatchOutputs::loss},
    {"grad_conf", Stage::backward, OutputExtents::per_prior_class, &BatchOutputs::grad_conf},
    {"grad_loc", Stage::backward, OutputExtents::per_prior_box, &BatchOutputs::grad_loc}};

// The table entry of an output quantity by its file stem; nullptr for any other name.
constexpr const OutputQuantity* find_output(std::string_view quantity) {
  for (const OutputQuantity& q : kOutputs)
    if (quantity == q.name) return &q;
  return nullptr;
}

// Every output quantity by its file stem, in stage order.
inline constexpr auto kOutputQuantities = [] {
  std::array<const char*, std::size(kOutputs)> names{};
  for (size_t i = 0; i < names.size(); ++i) names[i] = kOutputs[i].name;
  return names;
}();

// Calls `f` with the member of `outputs` (a BatchOutputs, const or not) that holds `quantity`, a file stem: a
// std::vector for an array, the LossTerms for "loss". Returns false, calling nothing, for any other name.
template <class Outputs, class F>
bool visit_output(Outputs& outputs, std::string_view quantity, F&& f) {
  const OutputQuantity* q = find_output(quantity);
  if (!q) return false;
  std::visit([&](auto member) { f(outputs.*member); }, q->field);
  return true;
}

// The shape of an output quantity's array, by file stem, for `ground_truths` ground truths in all; empty for "loss"
// and for an unknown name.
std::vector<int64_t> output_shape(std::string_view quantity, const ProblemShape& shape, int64_t ground_truths);

// The file an output quantity is stored in, by its file stem: "loss" is loss.json, every other one <stem>.npy.
std::string output_file_name(std::string_view quantity);

// The quantities `stage` produces (cumulative), by file stem.
std::vector<std::string> quantities_of(Stage stage);

// Writes what `stage` produces (cumulative) from `outputs` into `dir` (created if needed).
Status write_outputs(const std::filesystem::path& dir, const Case& c, const BatchOutputs& outputs, Stage stage);

struct LoadedOutputs {
  // Sized for the case like BatchOutputs(shape, G); absent quantities stay at those initial values.
  BatchOutputs outputs;
  std::vector<std::string> present;  // file stems found, in kOutputQuantities order

  bool has(std::string_view quantity) const;
  // The latest stage all of whose quantities are present; nullopt if not even the match stage is complete.
  std::optional<Stage> complete_stage() const;
};

// Reads whichever output files exist in `dir`, checking each one's dtype and shape against the case. An empty
// folder is not an error (present is empty); a present but malformed file is. In loss.json, "conf_sum" and
// "loc_sum" may be omitted: they are then conf * max(1, num_positives) and loc * max(1, num_positives).
Result<LoadedOutputs> read_outputs(const std::filesystem::path& dir, const Case& c);

}  // namespace multibox
