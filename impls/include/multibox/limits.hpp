// Limits stated rather than discovered: the memory a run needs, known before anything is allocated, and the cost of
// the reference's O(G^2 P) bipartite loop, estimated before a run that would otherwise look hung (SPEC section 14).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "multibox/config.hpp"

namespace multibox {

// Bytes one run of a shape needs, by owner. Sums saturate at UINT64_MAX instead of wrapping.
struct PlanMemory {
  uint64_t inputs = 0;     // the caller's: priors, ground truths at capacity, conf, loc
  uint64_t outputs = 0;    // the caller's OutputView for Stage::backward (what BatchOutputs allocates)
  uint64_t workspace = 0;  // host memory the plan allocates (prepare, and run where scratch grows to an image)
  uint64_t device = 0;     // accelerator memory prepare() allocates; 0 for CPU backends
  uint64_t host_total() const noexcept {  // inline: plugins link nothing of multibox
    uint64_t sum = 0;
    if (__builtin_add_overflow(inputs, outputs, &sum) || __builtin_add_overflow(sum, workspace, &sum)) return ~0ull;
    return sum;
  }
};

// Byte counts of int-sized factors reach 2^93; a wrapped figure would be a lie, so these stop at UINT64_MAX.
uint64_t saturating_mul(uint64_t a, uint64_t b) noexcept;
uint64_t saturating_add(uint64_t a, uint64_t b) noexcept;

// The caller's side of PlanMemory (inputs, outputs) for `shape`; workspace and device are 0.
PlanMemory caller_memory(const ProblemShape& shape) noexcept;

// "2.39 GiB", "110.3 MiB", "512 B".
std::string format_bytes(uint64_t bytes);

// Seconds the reference spends per (ground truth, prior) pair its bipartite loop visits. Each of an image's G rounds
// scans every free pair, so an image visits up to G(G+1)/2 * P pairs; the scan streams the G x P float IoU matrix
// (35 MB at G = 1000 on SSD300's 8732 priors, far beyond cache) with a byte load and a data-dependent branch per
// pair, so it runs at memory speed, not at one compare a cycle. Measured, match stage of
// `multibox eval -w synthetic --objects G,G --batch 1 -b naive --repeats 1`, bipartite minus argmax: 2.15 ns a pair
// at G = 500, 2.11 ns at G = 1000 (2-core Xeon shared with other jobs, load 6).
inline constexpr double kReferencePairSeconds = 2.1e-9;
// Seconds per (ground truth, prior) for what both modes do once per image: the IoU matrix, each ground truth's
// argmax, each prior's best ground truth. Measured as above in argmax mode: 6.5 ns (G = 500) and 6.4 ns (G = 1000).
inline constexpr double kReferenceIouSeconds = 6.5e-9;
// A run estimated to take longer than this is announced on stderr before it starts.
inline constexpr double kSlowRunSeconds = 60.0;

// What the reference's matching of one batch costs, an upper bound (bipartite rounds stop early once no free pair
// overlaps).
struct ReferenceCost {
  double seconds = 0;   // per run of any stage (every stage matches first)
  double pairs = 0;     // bipartite pairs visited, at most
  int largest_image = -1;  // the image with the most ground truths, and their number
  int largest_count = 0;
};
// `counts`: ground truths per image.
ReferenceCost reference_match_cost(std::span<const int> counts, int num_priors, ForcedMatch mode) noexcept;

}  // namespace multibox
