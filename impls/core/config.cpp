#include "multibox/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace multibox {

const char* to_string(ForcedMatch mode) noexcept {
  return mode == ForcedMatch::bipartite ? "bipartite" : "argmax";
}

std::optional<ForcedMatch> parse_forced_match(std::string_view text) noexcept {
  if (text == "bipartite") return ForcedMatch::bipartite;
  if (text == "argmax") return ForcedMatch::argmax;
  return std::nullopt;
}

Status Config::validate() const {
  auto bad = [](std::string msg) { return Status(ErrorCode::invalid_config, std::move(msg)); };
  if (!std::isfinite(pos_threshold) || pos_threshold <= 0.0f || pos_threshold > 1.0f)
    return bad(fmt::format("pos_threshold must be in (0, 1], got {}", pos_threshold));
  const float neg = negative_threshold();
  if (!std::isfinite(neg) || neg <= 0.0f || neg > pos_threshold)
    return bad(fmt::format("neg_threshold must be in (0, pos_threshold = {}], got {}", pos_threshold, neg));
  if (!std::isfinite(variance_xy) || variance_xy <= 0.0f)
    return bad(fmt::format("variance_xy must be finite and > 0, got {}", variance_xy));
  if (!std::isfinite(variance_wh) || variance_wh <= 0.0f)
    return bad(fmt::format("variance_wh must be finite and > 0, got {}", variance_wh));
  if (neg_pos_ratio < 0) return bad(fmt::format("neg_pos_ratio must be >= 0, got {}", neg_pos_ratio));
  if (min_negatives_per_image < 0)
    return bad(fmt::format("min_negatives_per_image must be >= 0, got {}", min_negatives_per_image));
  if (!std::isfinite(alpha) || alpha < 0.0f) return bad(fmt::format("alpha must be finite and >= 0, got {}", alpha));
  if (!std::isfinite(smooth_l1_beta) || smooth_l1_beta < 0.0f)
    return bad(fmt::format("smooth_l1_beta must be finite and >= 0, got {}", smooth_l1_beta));
  return {};
}

std::string Config::describe() const {
  return fmt::format("{} pos={:g} neg={:g} var=({:g},{:g}) ratio={} min_neg={} alpha={:g} beta={:g}",
                     to_string(forced_match), pos_threshold, negative_threshold(), variance_xy, variance_wh,
                     neg_pos_ratio, min_negatives_per_image, alpha, smooth_l1_beta);
}

Status ProblemShape::validate() const {
  auto bad = [](std::string msg) { return Status(ErrorCode::shape_mismatch, std::move(msg)); };
  if (batch < 1) return bad(fmt::format("batch must be >= 1, got {}", batch));
  if (num_priors < 1) return bad(fmt::format("num_priors must be >= 1, got {}", num_priors));
  if (num_classes < 2)
    return bad(fmt::format("num_classes must be >= 2 (background plus at least one class), got {}", num_classes));
  if (max_ground_truths < 0) return bad(fmt::format("max_ground_truths must be >= 0, got {}", max_ground_truths));
  // Every index is 64-bit (size_t), so the only product limit is that the largest buffer, conf or grad_conf, can be
  // addressed at all: B*P*C floats within PTRDIFF_MAX bytes. Past that, sizes would wrap instead of failing.
  uint64_t conf_bytes = 0;
  const bool wraps = __builtin_mul_overflow(static_cast<uint64_t>(batch) * static_cast<uint64_t>(num_priors),
                                            static_cast<uint64_t>(std::max(num_classes, 4)) * sizeof(float),
                                            &conf_bytes);
  if (wraps || conf_bytes > static_cast<uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()))
    return bad(fmt::format("B x P x C = {} x {} x {} floats exceed the {} bytes one buffer can address", batch,
                           num_priors, num_classes, std::numeric_limits<std::ptrdiff_t>::max()));
  return {};
}

std::string ProblemShape::describe() const {
  return fmt::format("B={} P={} C={} G<={}", batch, num_priors, num_classes, max_ground_truths);
}

}  // namespace multibox
