// Per-image MultiBox loss (DESIGN.md sections 4-5). Pass 1 reads every row once: its max and cheap bounds on each
// negative's cross-entropy (zeros are streamed over the gradient meanwhile). Negatives whose upper bound is below
// the K-th largest lower bound cannot be mined, so pass 2 computes exact cross-entropies only for the positives and
// the remaining candidates, writes the positives' gradient rows, selects the K hardest with nth_element and writes
// theirs. Results equal computing every row exactly; the bounds only decide which rows need it.
#pragma once

#include <cstdint>
#include <vector>

#include "multibox/config.hpp"

namespace multibox::simd {

// A negative's cross-entropy and prior, the unit hard negative mining ranks.
struct NegativeCe {
  float ce;
  int32_t prior;
};

// One thread's working memory for the loss, sized at plan time so run() never allocates.
struct LossScratch {
  std::vector<float> row_max;      // [P + 16] max logit of the row (padded for whole-vector stores)
  std::vector<float> row_log_sum;  // [P] log(sum(exp(row - max))), for the rows whose CE is computed exactly
  std::vector<float> lower, upper;    // [P + 16] bounds on each negative's CE, from its lane maxima
  std::vector<NegativeCe> negatives;  // capacity P
  std::vector<int32_t> rows;          // capacity P: the rows whose CE is computed exactly
  std::vector<uint32_t> histogram;    // buckets of CE bit patterns for the pre-selection of hard negatives

  explicit LossScratch(int num_priors);
};

// What one image contributes; the plan adds images up in image order, so totals do not depend on threads.
struct ImageLoss {
  double conf_sum = 0;
  double loc_sum = 0;
  int32_t mined = 0;
  int32_t exact_rows = 0;  // rows whose CE was computed exactly: positives and the negatives the bounds kept
  bool non_finite_prediction = false;  // the plan then reports the first bad value by name
};

struct ImageLossInputs {
  int num_priors = 0;
  int num_classes = 0;
  const float* conf = nullptr;       // [P][C] this image's logits
  const float* loc = nullptr;        // [P][4]
  const int32_t* matches = nullptr;  // [P]
  const int32_t* labels = nullptr;   // this image's GT labels
  const float* targets = nullptr;    // [P][4]
  int32_t positives = 0;             // P_b
  int64_t batch_positives = 0;       // N, for the gradients
  bool check_values = false;         // scan every logit and loc value for NaN/Inf in the same pass
  bool prune_negatives = true;       // false: exact CE for every negative (what the bounds are tested against)
};

struct ImageLossOutputs {
  uint8_t* mined = nullptr;      // [P]
  float* grad_conf = nullptr;    // [P][C], null when the backward stage is not requested
  float* grad_loc = nullptr;     // [P][4], likewise
};

ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch);

}  // namespace multibox::simd
