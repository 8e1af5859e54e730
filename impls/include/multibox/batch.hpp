// Views over caller memory for one batch (inputs and outputs), and an owning buffer set for callers
// that do not manage their own memory. Layouts are those of DESIGN.md section 1 (PyTorch SSD head order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "multibox/config.hpp"
#include "multibox/status.hpp"

namespace multibox {

// Values of OutputView::matches besides a ground-truth index (>= 0, relative to the image).
inline constexpr int32_t kNegative = -1;
inline constexpr int32_t kIgnored = -2;

// Ragged ground truths: image b owns rows offsets[b] .. offsets[b+1]-1.
struct GroundTruthView {
  std::span<const float> boxes;      // [G_total][4] corners (xmin, ymin, xmax, ymax), normalised
  std::span<const int32_t> labels;   // [G_total], in [1, C-1]
  std::span<const int32_t> offsets;  // [B+1], offsets[0] == 0, non-decreasing, offsets[B] == G_total

  int batch() const noexcept { return offsets.empty() ? 0 : static_cast<int>(offsets.size()) - 1; }
  int total() const noexcept { return static_cast<int>(labels.size()); }
  int count(int image) const noexcept { return offsets[image + 1] - offsets[image]; }
};

struct PredictionView {
  std::span<const float> conf;  // [B][P][C] logits
  std::span<const float> loc;   // [B][P][4] encoded offsets
};

// The four loss terms of DESIGN.md section 4. Sums are un-normalised so batches can be split and rejoined.
struct LossTerms {
  double total = 0;     // L = (L_conf + alpha * L_loc) / N, 0 when N == 0
  double conf = 0;      // L_conf / N
  double loc = 0;       // L_loc / N
  double conf_sum = 0;  // L_conf
  double loc_sum = 0;   // L_loc
  int64_t num_positives = 0;  // N
};

// Cumulative stages: each one also produces everything the earlier ones do.
enum class Stage {
  match,     // matches, forced_prior, positives, unmatched_ground_truths
  encode,    // + targets
  forward,   // + mined, mined_negatives, loss (needs predictions)
  backward,  // + grad_conf, grad_loc
};
const char* to_string(Stage stage) noexcept;

// Where a plan writes its results. Spans a stage does not produce may be empty.
struct OutputView {
  std::span<int32_t> matches;                  // [B][P]: GT index within the image, kNegative or kIgnored
  std::span<int32_t> forced_prior;             // [G_total]: prior forced in stage 1, -1 if none
  std::span<int32_t> positives;                // [B]: P_b
  std::span<int32_t> unmatched_ground_truths;  // [B]: GTs with no prior at all (forced or threshold)
  std::span<float> targets;                    // [B][P][4]: encoded GT for positives, 0 elsewhere
  std::span<uint8_t> mined;                    // [B][P]: 1 for a selected (hard) negative
  std::span<int32_t> mined_negatives;          // [B]: K_b
  std::span<float> grad_conf;                  // [B][P][C]
  std::span<float> grad_loc;                   // [B][P][4]
  LossTerms* loss = nullptr;
};

// Owning storage sized for one shape; view() hands it to a plan.
struct BatchOutputs {
  std::vector<int32_t> matches, forced_prior, positives, unmatched_ground_truths, mined_negatives;
  std::vector<float> targets, grad_conf, grad_loc;
  std::vector<uint8_t> mined;
  LossTerms loss;

  BatchOutputs() = default;
  // Sizes what the stages up to `upto` produce (matches kNegative, forced_prior -1, the rest 0) and leaves the
  // later stages' vectors empty, so a caller running only the early stages does not allocate the gradients.
  BatchOutputs(const ProblemShape& shape, int total_ground_truths, Stage upto = Stage::backward);
  OutputView view();
};

// Owning storage for one batch's inputs (priors live with the plan, not here).
struct BatchData {
  std::vector<float> gt_boxes;
  std::vector<int32_t> gt_labels;
  std::vector<int32_t> gt_offsets{0};
  std::vector<float> conf;
  std::vector<float> loc;

  GroundTruthView ground_truths() const { return {gt_boxes, gt_labels, gt_offsets}; }
  PredictionView predictions() const { return {conf, loc}; }
  int batch() const noexcept { return static_cast<int>(gt_offsets.size()) - 1; }
};

// Checks of DESIGN.md section 1, shared by every backend so all reject the same inputs with the same words.
Status validate_priors(std::span<const float> priors, int num_priors);
// The checks of validate_ground_truths that read no value (span sizes, capacity): what a caller holding device memory
// can check on the host.
Status validate_ground_truth_sizes(const ProblemShape& shape, const GroundTruthView& gt);
Status validate_ground_truths(const ProblemShape& shape, const GroundTruthView& gt);
Status validate_predictions(const ProblemShape& shape, const PredictionView& pred, bool check_values = true);
Status validate_outputs(const ProblemShape& shape, const GroundTruthView& gt, Stage stage, const OutputView& out);

}  // namespace multibox
