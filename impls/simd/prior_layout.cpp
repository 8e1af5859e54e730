#include "simd/prior_layout.hpp"

#include <algorithm>
#include <limits>

#include "core/math.hpp"

namespace multibox::simd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

void bound(BoundingBoxes& out, size_t i, const float* x1, const float* y1, const float* x2, const float* y2,
           size_t n) {
  out.x1[i] = *std::min_element(x1, x1 + n);
  out.y1[i] = *std::min_element(y1, y1 + n);
  out.x2[i] = *std::max_element(x2, x2 + n);
  out.y2[i] = *std::max_element(y2, y2 + n);
}

// The array lengths of a layout, shared by build() and bytes().
size_t super_blocks_of(size_t padded) { return (padded / kBlock + kSuperBlock - 1) / kSuperBlock; }
size_t padded_super_blocks_of(size_t padded) {
  return (super_blocks_of(padded) + kMaxTestLanes - 1) / kMaxTestLanes * kMaxTestLanes;
}

}  // namespace

uint64_t PriorLayout::bytes(int count) {
  const uint64_t padded = static_cast<uint64_t>(PriorLayout::padded_count(count)), padded_supers = padded_super_blocks_of(padded);
  return padded * 5 * sizeof(float) + static_cast<uint64_t>(count) * 4 * sizeof(float) +
         (padded_supers * kSuperBlock + padded_supers) * 4 * sizeof(float);
}

PriorLayout PriorLayout::build(std::span<const float> priors, int count) {
  PriorLayout layout;
  layout.count = count;
  layout.padded = padded_count(count);
  const size_t padded = static_cast<size_t>(layout.padded);
  layout.x1 = hwy::AllocateAligned<float>(padded);
  layout.y1 = hwy::AllocateAligned<float>(padded);
  layout.x2 = hwy::AllocateAligned<float>(padded);
  layout.y2 = hwy::AllocateAligned<float>(padded);
  layout.area = hwy::AllocateAligned<float>(padded);
  layout.centre_size.assign(priors.begin(), priors.end());
  for (size_t p = 0; p < padded; ++p) {
    core::Box box;
    if (p < static_cast<size_t>(count)) {
      const float* v = &priors[p * 4];
      box = core::prior_corners(v[0], v[1], v[2], v[3]);
    } else {
      box = {layout.x1[count - 1], layout.y1[count - 1], layout.x1[count - 1], layout.y1[count - 1]};
    }
    layout.x1[p] = box.x1, layout.y1[p] = box.y1, layout.x2[p] = box.x2, layout.y2[p] = box.y2;
    layout.area[p] = core::area(box);
  }

  const size_t blocks = padded / kBlock;
  const size_t supers = super_blocks_of(padded);
  const size_t padded_supers = padded_super_blocks_of(padded);
  layout.super_block_count = static_cast<int>(supers);
  layout.padded_super_blocks = static_cast<int>(padded_supers);
  layout.blocks.resize(padded_supers * kSuperBlock);
  layout.super_blocks.resize(padded_supers);
  for (BoundingBoxes* bb : {&layout.blocks, &layout.super_blocks}) {
    std::fill(bb->x1.begin(), bb->x1.end(), kInf);
    std::fill(bb->y1.begin(), bb->y1.end(), kInf);
    std::fill(bb->x2.begin(), bb->x2.end(), -kInf);
    std::fill(bb->y2.begin(), bb->y2.end(), -kInf);
  }
  for (size_t k = 0; k < blocks; ++k) {
    const size_t first = k * kBlock;
    bound(layout.blocks, k, &layout.x1[first], &layout.y1[first], &layout.x2[first], &layout.y2[first], kBlock);
  }
  for (size_t s = 0; s < supers; ++s) {
    const size_t first = s * kSuperBlock;
    const size_t n = std::min<size_t>(kSuperBlock, blocks - first);
    const BoundingBoxes& b = layout.blocks;
    bound(layout.super_blocks, s, &b.x1[first], &b.y1[first], &b.x2[first], &b.y2[first], n);
  }
  return layout;
}

}  // namespace multibox::simd
