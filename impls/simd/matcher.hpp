// Per-image matching (DESIGN.md section 2) on the structure-of-arrays priors: one vectorised pass computes every
// ground truth's best prior and every prior's best ground truth; the bipartite stage then re-scans only a ground
// truth whose best prior was just taken.
#pragma once

#include <cstdint>
#include <vector>

#include <hwy/aligned_allocator.h>

#include "multibox/config.hpp"
#include "simd/prior_layout.hpp"

namespace multibox::simd {

// A ground truth's corners and area, as core::area computes it.
struct GroundTruthBox {
  float x1, y1, x2, y2, area;
};

// One thread's working memory for matching, sized at plan time so run() never allocates.
struct MatchScratch {
  hwy::AlignedFreeUniquePtr<float[]> best_iou;    // [padded] best IoU of each prior over the image's GTs (stale
                                                  // in the super-blocks no GT touches)
  hwy::AlignedFreeUniquePtr<int32_t[]> best_gt;   // [padded] that GT (lowest index on ties), -1 if all IoUs are 0
  hwy::AlignedFreeUniquePtr<float[]> available;   // [padded] 1, or 0 once bipartite stage 1 has taken the prior
  hwy::AlignedFreeUniquePtr<float[]> gt_arg_value;  // [G][lanes] each GT's running lane argmax: IoU
  hwy::AlignedFreeUniquePtr<int32_t[]> gt_arg_index;  // [G][lanes] and prior
  std::vector<int32_t> owner;                     // [P] argmax mode: the GT claiming the prior, -1 otherwise
  std::vector<GroundTruthBox> gt_box;             // [G]
  BoundingBoxes gt_bounds;                        // [G rounded up to kMaxTestLanes], past G: empty boxes
  std::vector<float> gt_best_iou;                 // [G rounded up to whole vectors], 0 past G
  std::vector<int32_t> gt_best_prior;             // [G]
  std::vector<uint8_t> gt_done;                   // [G]
  std::vector<int32_t> positive_priors;           // [P] priors matched in this image, in no particular order

  MatchScratch(const PriorLayout& priors, int max_ground_truths);
  // The bytes the constructor allocates, from the same lengths (plan_memory() adds these up).
  static uint64_t bytes(int num_priors, int max_ground_truths);

 private:
  struct Lengths {
    size_t padded;       // priors, padded to whole blocks
    size_t priors;       // P
    size_t gts;          // G
    size_t gt_lanes;     // max(G, 1) * lanes: Highway refuses a zero-size allocation
    size_t gt_tests;     // G rounded up to kMaxTestLanes
    size_t gt_vectors;   // G rounded up to whole vectors
  };
  static Lengths lengths(int padded, int num_priors, int max_ground_truths);
  MatchScratch(const PriorLayout& priors, const Lengths& n);
};

struct ImageMatch {
  int32_t positives = 0;
  int32_t negatives = 0;  // priors matched kNegative, which the loss's mining quota needs
  int32_t unmatched_ground_truths = 0;
};

// Matches one image. `boxes` are its G ground truths ([G][4] corners); writes matches[P] and forced_prior[G], and
// targets[P][4] when `targets` is not null. scratch.positive_priors holds the matched priors afterwards.
ImageMatch match_image(const PriorLayout& priors, const Config& config, const float* boxes, int num_ground_truths,
                       int32_t* matches, int32_t* forced_prior, float* targets, MatchScratch& scratch);

}  // namespace multibox::simd
