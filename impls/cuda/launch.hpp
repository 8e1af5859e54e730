// Host-only planning for the CUDA backend: launch geometry, shared-memory sizing and the device memory layout of a
// plan, as plain C++ so it is built and tested on machines without a GPU (and without the CUDA toolkit).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "multibox/config.hpp"
#include "multibox/cuda.hpp"
#include "multibox/status.hpp"
#include "cuda/geometry.hpp"

namespace multibox::cuda::detail {

// Threads per logits row: enough that each handles about 4 logits (memory-level parallelism without idle lanes on
// small C), never more than a warp.
int row_width_for(int num_classes) noexcept;

// Geometry for `shape`, or why it cannot launch on a device with `limits` (naming the dimension and the numbers).
Result<Launch> plan_launch(const ProblemShape& shape, const DeviceLimits& limits = {});

// Every device buffer of a plan. The first group mirrors the host views (the upload/download path); the rest is the
// plan's own state and scratch.
enum class Buf : int {
  gt_boxes, gt_labels, gt_offsets, conf, loc,                              // inputs
  matches, forced_prior, positives, unmatched, targets, mined,             // outputs
  mined_negatives, grad_conf, grad_loc, loss,
  prior_boxes, prior_centres, best_iou, best_gt, owner, gt_key, has_prior, // plan state and scratch
  negatives, row_max, row_log_sum, ce, keys_in, keys_out, segment_offsets,
  image_conf_sum, image_loc_sum, input_error, cub_temp,
  count
};
inline constexpr int kBufferCount = static_cast<int>(Buf::count);
inline constexpr int kFirstScratch = static_cast<int>(Buf::prior_boxes);
const char* to_string(Buf b) noexcept;

// Offsets of every buffer inside the plan's one device allocation (256-byte aligned, as cudaMalloc's are).
struct Layout {
  std::array<size_t, kBufferCount> offset{};
  std::array<size_t, kBufferCount> bytes{};
  size_t total = 0;
  MemoryPlan memory;
};

// Layout for `shape` with `cub_temp_bytes` of CUB temporary storage for the mining sort.
Layout plan_layout(const ProblemShape& shape, size_t cub_temp_bytes);

// "1.62 GiB", "110.3 MiB", "512 B".
std::string format_bytes(size_t bytes);

}  // namespace multibox::cuda::detail
