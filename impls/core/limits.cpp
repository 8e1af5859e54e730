#include "multibox/limits.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>


namespace multibox {
namespace {

constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

uint64_t mul(uint64_t a, uint64_t b) noexcept { return saturating_mul(a, b); }
uint64_t add(uint64_t a, uint64_t b) noexcept { return saturating_add(a, b); }

}  // namespace

uint64_t saturating_mul(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kSaturated : r;
}
uint64_t saturating_add(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kSaturated : r;
}

PlanMemory caller_memory(const ProblemShape& shape) noexcept {
  const uint64_t B = static_cast<uint64_t>(std::max(shape.batch, 0));
  const uint64_t P = static_cast<uint64_t>(std::max(shape.num_priors, 0));
  const uint64_t C = static_cast<uint64_t>(std::max(shape.num_classes, 0));
  const uint64_t G = static_cast<uint64_t>(std::max(shape.max_ground_truths, 0));
  const uint64_t rows = mul(B, P);
  PlanMemory m;
  // priors [P][4] float; boxes [G][4] float, labels [G] int32, offsets [B+1] int32; conf [B][P][C], loc [B][P][4].
  m.inputs = add(add(add(mul(P, 16), mul(G, 20)), mul(B + 1, 4)), mul(mul(rows, C), 4));
  m.inputs = add(m.inputs, mul(rows, 16));
  // matches int32 + mined uint8 + targets and grad_loc [4] float per row; grad_conf [C] float per row;
  // forced_prior per ground truth; positives, unmatched, mined_negatives per image.
  m.outputs = add(add(mul(rows, 4 + 1 + 16 + 16), mul(mul(rows, C), 4)), add(mul(G, 4), mul(B, 12)));
  return m;
}

std::string format_bytes(uint64_t bytes) {
  if (bytes == kSaturated) return "more than 16 EiB";
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

ReferenceCost reference_match_cost(std::span<const int> counts, int num_priors, ForcedMatch mode) noexcept {
  ReferenceCost cost;
  const double P = static_cast<double>(std::max(num_priors, 0));
  for (size_t b = 0; b < counts.size(); ++b) {
    const double G = static_cast<double>(std::max(counts[b], 0));
    if (counts[b] > cost.largest_count) cost.largest_count = counts[b], cost.largest_image = static_cast<int>(b);
    cost.seconds += kReferenceIouSeconds * G * P;
    if (mode == ForcedMatch::bipartite) cost.pairs += G * (G + 1) / 2 * P;
  }
  cost.seconds += kReferencePairSeconds * cost.pairs;
  return cost;
}

}  // namespace multibox
