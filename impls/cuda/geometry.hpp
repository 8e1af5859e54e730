// Launch constants and the geometry of one plan, shared by the host planning (launch.hpp) and the kernels. Kept free
// of the public headers (C++20 spans) because nvcc compiles kernels.cu as C++17.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace multibox::cuda::detail {

inline constexpr int kPriorBlock = 256;  // threads over priors (IoU, stage 2, mining marks)
inline constexpr int kGtTile = 256;      // ground truths staged in shared memory per pass: 4 KiB of boxes
inline constexpr int kImageBlock = 256;  // one block per image (stage 1, per-image sums and counts)
inline constexpr int kRowBlock = 256;    // threads per block of the logits-row kernels
inline constexpr int kMaxRowWidth = 32;  // a row's threads stay inside one warp, so shuffles reduce them

// What the device allows; the defaults are those of every GPU since sm_30, so tests can use them.
struct DeviceLimits {
  int64_t max_grid_x = std::numeric_limits<int32_t>::max();
  int64_t max_grid_y = 65535;
  size_t shared_per_block = 48 * 1024;
};

struct Launch {
  int64_t prior_blocks = 0;  // grid.x of the per-prior kernels; grid.y is the batch
  int batch = 0;
  int row_width = 0;         // threads sharing one logits row: a power of two in [1, 32]
  int rows_per_block = 0;    // kRowBlock / row_width
  int64_t row_blocks = 0;    // grid.x of the per-row kernels over all B * P rows
  size_t gt_tile_bytes = 0;  // static shared memory of the IoU kernel
};

}  // namespace multibox::cuda::detail
