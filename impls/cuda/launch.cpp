// Launch geometry and the device memory layout, with the limits a shape must respect stated as errors in prepare()
// rather than discovered as a failed launch or a wrapped index.
#include "cuda/launch.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace multibox::cuda::detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

int row_width_for(int num_classes) noexcept {
  int width = 1;
  while (width < kMaxRowWidth && width * 4 < num_classes) width *= 2;
  return width;
}

Result<Launch> plan_launch(const ProblemShape& shape, const DeviceLimits& limits) {
  if (Status s = shape.validate(); !s) return s;
  Launch l;
  l.batch = shape.batch;
  l.prior_blocks = ceil_div(shape.num_priors, kPriorBlock);
  l.row_width = row_width_for(shape.num_classes);
  l.rows_per_block = kRowBlock / l.row_width;
  const int64_t rows = static_cast<int64_t>(shape.batch) * shape.num_priors;
  l.row_blocks = ceil_div(rows, l.rows_per_block);
  l.gt_tile_bytes = sizeof(float) * 4 * kGtTile;
  if (shape.batch > limits.max_grid_y)
    return Status(ErrorCode::invalid_input,
                  fmt::format("cuda: batch {} exceeds the device's grid.y limit of {} images per launch", shape.batch,
                              limits.max_grid_y));
  if (l.prior_blocks > limits.max_grid_x || l.row_blocks > limits.max_grid_x)
    return Status(ErrorCode::invalid_input, fmt::format("cuda: {} rows need {} blocks, over the grid.x limit of {}",
                                                        rows, l.row_blocks, limits.max_grid_x));
  // CUB's segmented sort counts items in int; the mining keys are one per prior of the batch.
  if (rows > std::numeric_limits<int32_t>::max())
    return Status(ErrorCode::invalid_input,
                  fmt::format("cuda: B*P = {}*{} = {} priors in the batch; the mining sort takes at most 2^31-1",
                              shape.batch, shape.num_priors, rows));
  if (l.gt_tile_bytes > limits.shared_per_block)
    return Status(ErrorCode::internal, fmt::format("cuda: the IoU kernel needs {} B of shared memory, the device has {}",
                                                   l.gt_tile_bytes, limits.shared_per_block));
  return l;
}

const char* to_string(Buf b) noexcept {
  static constexpr const char* kNames[kBufferCount] = {
      "gt_boxes",    "gt_labels", "gt_offsets", "conf",           "loc",
      "matches",     "forced_prior", "positives", "unmatched",    "targets",
      "mined",       "mined_negatives", "grad_conf", "grad_loc",  "loss",
      "prior_boxes", "prior_centres", "best_iou", "best_gt",      "owner",
      "gt_key",      "has_prior", "negatives",  "row_max",        "row_log_sum",
      "ce",          "keys_in",   "keys_out",   "segment_offsets", "image_conf_sum",
      "image_loc_sum", "input_error", "cub_temp"};
  const int i = static_cast<int>(b);
  return i >= 0 && i < kBufferCount ? kNames[i] : "?";
}

Layout plan_layout(const ProblemShape& shape, size_t cub_temp_bytes) {
  const size_t B = static_cast<size_t>(shape.batch);
  const size_t P = static_cast<size_t>(shape.num_priors);
  const size_t C = static_cast<size_t>(shape.num_classes);
  const size_t G = static_cast<size_t>(std::max(shape.max_ground_truths, 0));
  const size_t rows = B * P;
  Layout l;
  auto set = [&](Buf b, size_t bytes) { l.bytes[static_cast<int>(b)] = bytes; };
  set(Buf::gt_boxes, G * 4 * sizeof(float));
  set(Buf::gt_labels, G * sizeof(int32_t));
  set(Buf::gt_offsets, (B + 1) * sizeof(int32_t));
  set(Buf::conf, rows * C * sizeof(float));
  set(Buf::loc, rows * 4 * sizeof(float));
  set(Buf::matches, rows * sizeof(int32_t));
  set(Buf::forced_prior, G * sizeof(int32_t));
  set(Buf::positives, B * sizeof(int32_t));
  set(Buf::unmatched, B * sizeof(int32_t));
  set(Buf::targets, rows * 4 * sizeof(float));
  set(Buf::mined, rows * sizeof(uint8_t));
  set(Buf::mined_negatives, B * sizeof(int32_t));
  set(Buf::grad_conf, rows * C * sizeof(float));
  set(Buf::grad_loc, rows * 4 * sizeof(float));
  set(Buf::loss, sizeof(LossTerms));
  set(Buf::prior_boxes, P * 4 * sizeof(float));
  set(Buf::prior_centres, P * 4 * sizeof(float));
  set(Buf::best_iou, rows * sizeof(float));
  set(Buf::best_gt, rows * sizeof(int32_t));
  set(Buf::owner, rows * sizeof(int32_t));
  set(Buf::gt_key, G * sizeof(uint64_t));
  set(Buf::has_prior, G * sizeof(uint8_t));
  set(Buf::negatives, B * sizeof(int32_t));
  set(Buf::row_max, rows * sizeof(float));
  set(Buf::row_log_sum, rows * sizeof(float));
  set(Buf::ce, rows * sizeof(float));
  set(Buf::keys_in, rows * sizeof(uint64_t));
  set(Buf::keys_out, rows * sizeof(uint64_t));
  set(Buf::segment_offsets, (B + 1) * sizeof(int32_t));
  set(Buf::image_conf_sum, B * sizeof(double));
  set(Buf::image_loc_sum, B * sizeof(double));
  set(Buf::input_error, sizeof(int32_t));
  set(Buf::cub_temp, cub_temp_bytes);
  for (int i = 0; i < kBufferCount; ++i) {
    l.offset[i] = l.total;
    l.total += align_up(l.bytes[i]);
    (i < kFirstScratch ? l.memory.io_bytes : l.memory.scratch_bytes) += align_up(l.bytes[i]);
    l.memory.items.push_back({to_string(static_cast<Buf>(i)), l.bytes[i]});
  }
  return l;
}

std::string format_bytes(size_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace multibox::cuda::detail

namespace multibox::cuda {

std::string MemoryPlan::describe() const {
  return fmt::format("{} of device memory: io {}, scratch {}", detail::format_bytes(total_bytes()),
                     detail::format_bytes(io_bytes), detail::format_bytes(scratch_bytes));
}

}  // namespace multibox::cuda
