// Problem shape and configuration of the matcher and the MultiBox loss, with the defaults of DESIGN.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "multibox/status.hpp"

namespace multibox {

// Stage 1 of matching (DESIGN.md section 2).
enum class ForcedMatch {
  bipartite,  // original SSD (Caffe): greedy global best pair, distinct priors for distinct ground truths
  argmax,     // torchvision SSDMatcher / ssd.pytorch: each ground truth takes its argmax; highest index wins conflicts
};

const char* to_string(ForcedMatch mode) noexcept;
std::optional<ForcedMatch> parse_forced_match(std::string_view text) noexcept;

struct Config {
  ForcedMatch forced_match = ForcedMatch::bipartite;
  float pos_threshold = 0.5f;
  // Priors whose best IoU lies in [neg_threshold, pos_threshold) are ignored. Unset means equal to
  // pos_threshold, i.e. no ignore band: read it through negative_threshold().
  std::optional<float> neg_threshold;
  float variance_xy = 0.1f;  // torchvision BoxCoder weights (10, 10, 5, 5) are the reciprocals
  float variance_wh = 0.2f;
  int neg_pos_ratio = 3;
  int min_negatives_per_image = 0;  // 0: an image without positives contributes nothing
  float alpha = 1.0f;               // weight of the localisation term
  float smooth_l1_beta = 1.0f;      // 0 gives plain L1

  float negative_threshold() const noexcept { return neg_threshold.value_or(pos_threshold); }
  // Checks every field; the message names the field and its value.
  Status validate() const;
  // One line, e.g. "bipartite pos=0.5 neg=0.5 var=(0.1,0.2) ratio=3 min_neg=0 alpha=1 beta=1".
  std::string describe() const;
};

// What a plan is prepared for. Ground truths are ragged, so the plan holds a capacity for them.
struct ProblemShape {
  int batch = 0;                 // B images
  int num_priors = 0;            // P, shared by the batch
  int num_classes = 0;           // C, including background class 0
  int max_ground_truths = 0;     // capacity for the total number of ground truths in one batch

  Status validate() const;
  std::string describe() const;  // "B=32 P=8732 C=81 G<=256"
};

}  // namespace multibox
