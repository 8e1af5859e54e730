// The boundary between the plan (host C++20, cuda_backend.cpp) and the kernels (kernels.cu, C++17 under nvcc): one
// struct of device pointers and settings passed by value, and the functions that enqueue a run's kernels on a stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/geometry.hpp"

namespace multibox::cuda::detail {

// multibox::LossTerms as the kernels write it (cuda_backend.cpp checks that the two layouts agree).
struct DeviceLossTerms {
  double total, conf, loc, conf_sum, loc_sum;
  int64_t num_positives;
};

// multibox::Stage, whose header nvcc does not compile.
enum class RunStage : int { match, encode, forward, backward };

struct DeviceArgs {
  int batch = 0, num_priors = 0, num_classes = 0, total_ground_truths = 0;
  // inputs (caller's device memory or the plan's mirrors)
  const float* gt_boxes = nullptr;
  const int32_t* gt_labels = nullptr;
  const int32_t* gt_offsets = nullptr;
  const float* conf = nullptr;
  const float* loc = nullptr;
  // outputs
  int32_t* matches = nullptr;
  int32_t* forced_prior = nullptr;
  int32_t* positives = nullptr;
  int32_t* unmatched = nullptr;
  float* targets = nullptr;
  uint8_t* mined = nullptr;
  int32_t* mined_negatives = nullptr;
  float* grad_conf = nullptr;
  float* grad_loc = nullptr;
  DeviceLossTerms* loss = nullptr;
  // plan state and scratch
  const float* prior_boxes = nullptr;    // [P][4] corners
  const float* prior_centres = nullptr;  // [P][4] (cx, cy, w, h)
  float* best_iou = nullptr;
  int32_t* best_gt = nullptr;
  int32_t* owner = nullptr;
  unsigned long long* gt_key = nullptr;
  uint8_t* has_prior = nullptr;
  int32_t* negatives = nullptr;
  float* row_max = nullptr;
  float* row_log_sum = nullptr;
  float* ce = nullptr;
  unsigned long long* keys_in = nullptr;
  unsigned long long* keys_out = nullptr;
  const int32_t* segment_offsets = nullptr;
  double* image_conf_sum = nullptr;
  double* image_loc_sum = nullptr;
  int32_t* input_error = nullptr;
  void* cub_temp = nullptr;
  size_t cub_temp_bytes = 0;
  int index_bits = 0;  // mining_index_bits(num_priors): the low bits of a mining key that hold the prior index
  // configuration
  bool bipartite = true;
  float pos_threshold = 0.5f, neg_threshold = 0.5f, variance_xy = 0.1f, variance_wh = 0.2f;
  int neg_pos_ratio = 3, min_negatives = 0;
  float alpha = 1.0f, beta = 1.0f;
};

// CUB temporary storage the mining sort needs for B segments of P keys.
cudaError_t mining_sort_temp_bytes(int batch, int num_priors, size_t* bytes);

// Enqueues every kernel of `stage` on `stream`; returns the first launch error (not errors of execution, which the
// stream reports later). `what` receives the name of the failing step.
cudaError_t enqueue_run(const DeviceArgs& args, const Launch& launch, RunStage stage, cudaStream_t stream,
                        const char** what);

}  // namespace multibox::cuda::detail
