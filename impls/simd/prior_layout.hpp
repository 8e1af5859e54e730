// Priors in the form the matching kernels want, built once at plan time: corners and areas as
// structure-of-arrays padded to whole blocks, plus the bounding box of every block and super-block so a
// ground truth skips, exactly, every block it cannot intersect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <hwy/aligned_allocator.h>

namespace multibox::simd {

// Priors per block: one AVX-512 vector of floats, two AVX2 vectors. The kernels loop over vectors inside a block,
// so narrower targets stay correct.
inline constexpr int kBlock = 16;
// Blocks per super-block: a two-level test keeps the skip test cheap for 100+ ground truths on 24564 priors.
inline constexpr int kSuperBlock = 16;

// Past the real groups, entries are empty boxes (x1 = y1 = +inf, x2 = y2 = -inf) that intersect nothing, so the
// tests can run on whole vectors of groups.
struct BoundingBoxes {
  std::vector<float> x1, y1, x2, y2;
  void resize(size_t n) { x1.resize(n), y1.resize(n), x2.resize(n), y2.resize(n); }
};

// Super-blocks are padded to a multiple of this, and blocks to that many whole super-blocks: the most lanes a
// block test reads at once (one AVX-512 vector of floats).
inline constexpr int kMaxTestLanes = 16;

struct PriorLayout {
  int count = 0;   // P
  int padded = 0;  // P rounded up to a whole number of blocks
  // [padded]: corners and area exactly as core::prior_corners / core::area compute them. Padding lanes are a
  // zero-size box at the last prior's corner: their IoU with anything is 0, so they never match and never widen
  // a block's bounding box.
  hwy::AlignedFreeUniquePtr<float[]> x1, y1, x2, y2, area;
  std::vector<float> centre_size;  // [P][4] (cx, cy, w, h), for encoding
  BoundingBoxes blocks;            // [padded_super_blocks * kSuperBlock], real ones: [padded / kBlock]
  BoundingBoxes super_blocks;      // [padded_super_blocks], real ones: [ceil(blocks / kSuperBlock)]
  int super_block_count = 0;       // real super-blocks
  int padded_super_blocks = 0;     // super_block_count rounded up to a multiple of kMaxTestLanes

  int num_blocks() const noexcept { return padded / kBlock; }
  int num_super_blocks() const noexcept { return super_block_count; }

  static PriorLayout build(std::span<const float> priors, int count);
  // P rounded up to whole blocks.
  static int padded_count(int count) noexcept { return (count + kBlock - 1) / kBlock * kBlock; }
  // The bytes build() allocates for `count` priors, from the same lengths (plan_memory() adds these up).
  static uint64_t bytes(int count);
};

// True unless the ground truth (gx1, gy1, gx2, gy2) provably has zero intersection with every box inside `box i`
// of `bb`. Exact: if gx2 <= min x1 of the group, min(gx2, px2) - max(gx1, px1) <= 0 for each member, so iw = 0.
inline bool may_intersect(const BoundingBoxes& bb, size_t i, float gx1, float gy1, float gx2, float gy2) {
  return gx2 > bb.x1[i] && bb.x2[i] > gx1 && gy2 > bb.y1[i] && bb.y2[i] > gy1;
}

}  // namespace multibox::simd
