// Per-image MultiBox loss (DESIGN.md sections 4-5): one pass over the image's logits computes every needed row's
// max, logsumexp and cross-entropy (and the gradient rows of positives while they are in L1, streaming zeros over
// every other row), then hard negatives are selected with nth_element and a second, sparse pass writes their
// gradient rows over those zeros.
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
  std::vector<float> row_max;      // [P] max logit of the row
  std::vector<float> row_log_sum;  // [P] log(sum(exp(row - max)))
  std::vector<NegativeCe> negatives;  // capacity P
  std::vector<uint32_t> histogram;    // buckets of CE bit patterns for the pre-selection of hard negatives

  explicit LossScratch(int num_priors);
};

// What one image contributes; the plan adds images up in image order, so totals do not depend on threads.
struct ImageLoss {
  double conf_sum = 0;
  double loc_sum = 0;
  int32_t mined = 0;
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
};

struct ImageLossOutputs {
  uint8_t* mined = nullptr;      // [P]
  float* grad_conf = nullptr;    // [P][C], null when the backward stage is not requested
  float* grad_loc = nullptr;     // [P][4], likewise
};

ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch);

}  // namespace multibox::simd
