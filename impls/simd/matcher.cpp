// Highway rather than Eigen here: the per-lane argmax needs compare + blend on vectors of floats and of indices,
// and Eigen 3.4's select() compiles to one scalar compare-and-branch per lane (checked in the generated assembly
// with -O3 -march=native), so the argmax would run at scalar speed.
#include "simd/matcher.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>

#include <hwy/highway.h>

#include "core/math.hpp"
#include "multibox/batch.hpp"
#include "simd/streaming.hpp"

namespace multibox::simd {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Block tests run on kMaxTestLanes boxes at a time, at most a vector of them per compare.
using DB = hn::CappedTag<float, kMaxTestLanes>;
static_assert(kSuperBlock == kMaxTestLanes, "one test covers the blocks of one super-block");

struct BoxVectors {
  hn::Vec<DB> x1, y1, x2, y2;
  BoxVectors(float bx1, float by1, float bx2, float by2)
      : x1(hn::Set(DB(), bx1)), y1(hn::Set(DB(), by1)), x2(hn::Set(DB(), bx2)), y2(hn::Set(DB(), by2)) {}
  explicit BoxVectors(const GroundTruthBox& g) : BoxVectors(g.x1, g.y1, g.x2, g.y2) {}
  BoxVectors(const BoundingBoxes& bb, size_t i) : BoxVectors(bb.x1[i], bb.y1[i], bb.x2[i], bb.y2[i]) {}
};

// Bit i is set unless box first + i of `bb` and `b` provably do not intersect: may_intersect's four ordered
// compares (symmetric in the two boxes), branch-free over kMaxTestLanes boxes. Padding boxes are empty and never
// set a bit.
HWY_INLINE uint32_t intersect_bits(const BoundingBoxes& bb, size_t first, const BoxVectors& b) {
  const DB d;
  const size_t N = hn::Lanes(d);
  uint32_t bits = 0;
  for (size_t i = 0; i < kMaxTestLanes; i += N) {
    const size_t at = first + i;
    const auto x = hn::And(hn::Gt(b.x2, hn::LoadU(d, &bb.x1[at])), hn::Gt(hn::LoadU(d, &bb.x2[at]), b.x1));
    const auto y = hn::And(hn::Gt(b.y2, hn::LoadU(d, &bb.y1[at])), hn::Gt(hn::LoadU(d, &bb.y2[at]), b.y1));
    uint8_t bytes[4] = {};
    hn::StoreMaskBits(d, hn::And(x, y), bytes);
    uint32_t chunk;
    std::memcpy(&chunk, bytes, sizeof(chunk));
    bits |= chunk << i;
  }
  return bits;
}

// f(i) for every set bit i of `bits`, lowest first.
template <class F>
HWY_INLINE void for_each_bit(uint32_t bits, F&& f) {
  for (; bits != 0; bits &= bits - 1) f(static_cast<size_t>(hwy::Num0BitsBelowLS1Bit_Nonzero32(bits)));
}

// One ground truth's IoU against the priors: the prior arrays read through restrict pointers, so the compiler keeps
// them in registers across the stores of the argmax (it reloaded them from the layout once per vector).
struct IouKernel {
  const float* HWY_RESTRICT x1;
  const float* HWY_RESTRICT y1;
  const float* HWY_RESTRICT x2;
  const float* HWY_RESTRICT y2;
  const float* HWY_RESTRICT area;
  VF gx1, gy1, gx2, gy2, garea;

  IouKernel(const PriorLayout& priors, const GroundTruthBox& g)
      : x1(priors.x1.get()), y1(priors.y1.get()), x2(priors.x2.get()), y2(priors.y2.get()), area(priors.area.get()),
        gx1(hn::Set(DF(), g.x1)), gy1(hn::Set(DF(), g.y1)), gx2(hn::Set(DF(), g.x2)), gy2(hn::Set(DF(), g.y2)),
        garea(hn::Set(DF(), g.area)) {}

  // visit(first_prior, iou_vector) for the vectors of one block, in increasing prior order. The IoU is
  // core::iou_with_areas lane by lane: same operations, same order, no FMA.
  template <class Visit>
  HWY_INLINE void block(size_t k, Visit&& visit) const {
    const DF d;
    const VF zero = hn::Zero(d);
    for (size_t j = k * kBlock; j < (k + 1) * kBlock; j += hn::Lanes(d)) {
      const VF iw = hn::Max(zero, hn::Sub(hn::Min(gx2, hn::Load(d, x2 + j)), hn::Max(gx1, hn::Load(d, x1 + j))));
      const VF ih = hn::Max(zero, hn::Sub(hn::Min(gy2, hn::Load(d, y2 + j)), hn::Max(gy1, hn::Load(d, y1 + j))));
      const VF inter = hn::Mul(iw, ih);
      visit(j, hn::Div(inter, hn::Sub(hn::Add(garea, hn::Load(d, area + j)), inter)));
    }
  }
};

// Calls visit(first_prior, iou_vector) for every vector of priors that may overlap `g`, in increasing prior order;
// every prior skipped has IoU exactly 0 with `g`. The skip tests are branch-free bit masks: tested one block at a
// time, each took a mispredicted branch that also emptied the pipeline between IoU vectors, so every vector waited
// out the whole latency of its division (perf, objects-100 match stage: 20% of samples on the scalar tests, 16%
// right after vdivps).
template <class Visit>
HWY_INLINE void for_each_overlapping_vector(const PriorLayout& priors, const GroundTruthBox& g, Visit&& visit) {
  const BoxVectors box(g);
  const IouKernel kernel(priors, g);
  for (size_t s0 = 0; s0 < static_cast<size_t>(priors.padded_super_blocks); s0 += kMaxTestLanes)
    for_each_bit(intersect_bits(priors.super_blocks, s0, box), [&](size_t i) {
      const size_t first = (s0 + i) * kSuperBlock;
      for_each_bit(intersect_bits(priors.blocks, first, box), [&](size_t k) { kernel.block(first + k, visit); });
    });
}

// Lane-wise running argmax of one ground truth's IoUs. Priors arrive in increasing index order, so a strict '>'
// keeps the lowest index per lane; the final reduction keeps the lowest index among lanes holding the maximum.
struct LaneArgmax {
  VF value;
  VI index;  // the first prior of the vector that gave `value`; result() adds the lane (one masked broadcast here)
  // Iota built once: Highway 1.0.3's Iota writes 16 lanes to the stack and reloads them as one vector, a failed
  // store-to-load forward; per prior vector that stall took 41% of matching's samples at 100 objects per image
  // (perf, objects-100 match stage), the instruction right after that reload.
  VI lane;

  LaneArgmax() : value(hn::Zero(DF())), index(hn::Set(DI(), -1)), lane(hn::Iota(DI(), 0)) {}
  LaneArgmax(VF value_, VI index_, VI lane_) : value(value_), index(index_), lane(lane_) {}

  HWY_INLINE void update(size_t first, VF iou) {
    const DI di;
    const auto better = hn::Gt(iou, value);
    value = hn::IfThenElse(better, iou, value);
    index = hn::IfThenElse(hn::RebindMask(di, better), hn::Set(di, static_cast<int32_t>(first)), index);
  }

  // (best IoU, lowest prior holding it); (0, -1) when every IoU is 0, since only IoU > 0 is eligible.
  std::pair<float, int32_t> result() const {
    const DF d;
    const DI di;
    const VF max = hn::MaxOfLanes(d, value);
    const float best = hn::GetLane(max);
    if (!(best > 0.0f)) return {0.0f, -1};
    // Lanes holding the maximum (> 0) were all updated, so their index is a real vector's first prior.
    const VI candidates =
        hn::IfThenElse(hn::RebindMask(di, hn::Eq(value, max)), hn::Add(index, lane), hn::Set(di, INT32_MAX));
    return {best, hn::GetLane(hn::MinOfLanes(di, candidates))};
  }
};

// Best free prior of ground truth g: taken priors have available == 0, which zeroes their IoU and so removes them
// (IoU 0 is never eligible).
std::pair<float, int32_t> best_free_prior(const PriorLayout& priors, const GroundTruthBox& g, const float* available) {
  const DF d;
  LaneArgmax arg;
  for_each_overlapping_vector(priors, g, [&](size_t j, VF iou) { arg.update(j, hn::Mul(iou, hn::Load(d, available + j))); });
  return arg.result();
}

// Stage 1, bipartite: the greedy global-best-pair loop, done incrementally. Each GT keeps its best free prior;
// the round picks the largest (lowest GT index on ties). If that prior has been taken since the GT's last scan,
// the GT is re-scanned and the round repeats. Stale values only over-estimate, so a fresh winner is the true
// global best pair, with the same tie rules as the literal loop.
void bipartite(const PriorLayout& priors, int G, int32_t* forced_prior, MatchScratch& s) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const GroundTruthBox* gts = s.gt_box.data();
  // A GT drops out of the rounds by getting best IoU 0 (only IoU > 0 is eligible), so a round is a vector max
  // over gt_best_iou (zero past G) and a search for its first lane: the scalar scan of every GT per round was 12%
  // of match_image's samples at 100 objects.
  float* iou = s.gt_best_iou.data();
  const size_t G_vectors = (static_cast<size_t>(G) + N - 1) / N * N;
  for (int assigned = 0; assigned < G;) {
    VF max = hn::Zero(d);
    for (size_t g0 = 0; g0 < G_vectors; g0 += N) max = hn::Max(max, hn::LoadU(d, iou + g0));
    const VF best = hn::MaxOfLanes(d, max);
    if (!(hn::GetLane(best) > 0.0f)) break;
    int g_best = -1;  // the lowest GT holding the maximum, as a strict '>' scan would pick
    for (size_t g0 = 0; g_best < 0; g0 += N) {
      const intptr_t lane = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, iou + g0), best));
      if (lane >= 0) g_best = static_cast<int>(g0) + static_cast<int>(lane);
    }
    const int32_t p = s.gt_best_prior[g_best];
    if (s.available[p] == 0.0f) {
      std::tie(iou[g_best], s.gt_best_prior[g_best]) = best_free_prior(priors, gts[g_best], s.available.get());
      continue;
    }
    forced_prior[g_best] = p;
    s.available[p] = 0.0f;
    iou[g_best] = 0.0f;
    ++assigned;
  }
  for (int g = 0; g < G; ++g)  // leave the mask all-ones for the next image
    if (forced_prior[g] >= 0) s.available[forced_prior[g]] = 1.0f;
}

// Stage 1, argmax: each GT claims its best prior; on a shared prior the highest GT index wins (it claims last).
void argmax(int G, int32_t* forced_prior, MatchScratch& s) {
  for (int g = 0; g < G; ++g)
    if (s.gt_best_prior[g] >= 0) s.owner[s.gt_best_prior[g]] = g;
  for (int g = 0; g < G; ++g)
    if (s.gt_best_prior[g] >= 0 && s.owner[s.gt_best_prior[g]] == g) forced_prior[g] = s.gt_best_prior[g];
  for (int g = 0; g < G; ++g)
    if (s.gt_best_prior[g] >= 0) s.owner[s.gt_best_prior[g]] = -1;
}

// Stage 2 for priors [begin, end) (begin a multiple of the lanes), from their best GT; records the positives in
// increasing order and returns how many priors it matched kNegative. Forced priors are overwritten afterwards.
int32_t threshold_matches(const Config& config, size_t begin, size_t end, int32_t* matches, MatchScratch& s) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const float pos = config.pos_threshold, neg = config.negative_threshold();
  const VF vpos = hn::Set(d, pos), vneg = hn::Set(d, neg);
  const VI negative = hn::Set(di, kNegative), ignored = hn::Set(di, kIgnored);
  size_t j = begin;
  size_t negatives = 0;
  for (; j + N <= end; j += N) {
    const VF best = hn::Load(d, &s.best_iou[j]);
    const auto positive = hn::RebindMask(di, hn::Ge(best, vpos));
    const auto below = hn::RebindMask(di, hn::Lt(best, vneg));
    const VI fallback = hn::IfThenElse(below, negative, ignored);
    hn::StoreU(hn::IfThenElse(positive, hn::Load(di, &s.best_gt[j]), fallback), di, matches + j);
    negatives += hn::CountTrue(di, hn::AndNot(positive, below));
    if (hn::AllFalse(di, positive)) continue;
    // From the mask rather than from matches[], which would read back the vector just stored lane by lane.
    uint8_t bytes[(HWY_MAX_BYTES / sizeof(float) + 31) / 32 * 4] = {};
    hn::StoreMaskBits(di, positive, bytes);
    for (size_t w = 0; w * 32 < N; ++w) {
      uint32_t word;
      std::memcpy(&word, bytes + w * 4, sizeof(word));
      for_each_bit(word, [&](size_t l) { s.positive_priors.push_back(static_cast<int32_t>(j + w * 32 + l)); });
    }
  }
  for (; j < end; ++j) {
    const float best = s.best_iou[j];
    matches[j] = best >= pos ? s.best_gt[j] : (best < neg ? kNegative : kIgnored);
    if (matches[j] >= 0) s.positive_priors.push_back(static_cast<int32_t>(j));
    negatives += matches[j] == kNegative;
  }
  return static_cast<int32_t>(negatives);
}

}  // namespace

MatchScratch::Lengths MatchScratch::lengths(int padded, int num_priors, int max_ground_truths) {
  const size_t G = static_cast<size_t>(max_ground_truths), lanes = hn::Lanes(DF());
  return {static_cast<size_t>(padded),
          static_cast<size_t>(num_priors),
          G,
          std::max<size_t>(G, 1) * lanes,
          (G + kMaxTestLanes - 1) / kMaxTestLanes * kMaxTestLanes,
          (G + lanes - 1) / lanes * lanes};
}

uint64_t MatchScratch::bytes(int num_priors, int max_ground_truths) {
  const Lengths n = lengths(PriorLayout::padded_count(num_priors), num_priors, max_ground_truths);
  return n.padded * (sizeof(float) + sizeof(int32_t) + sizeof(float)) + n.gt_lanes * (sizeof(float) + sizeof(int32_t)) +
         n.priors * 2 * sizeof(int32_t) + n.gts * (sizeof(GroundTruthBox) + sizeof(int32_t) + sizeof(uint8_t)) +
         n.gt_tests * 4 * sizeof(float) + n.gt_vectors * sizeof(float);
}

MatchScratch::MatchScratch(const PriorLayout& priors, int max_ground_truths)
    : MatchScratch(priors, lengths(priors.padded, priors.count, max_ground_truths)) {}

MatchScratch::MatchScratch(const PriorLayout& priors, const Lengths& n)
    : best_iou(hwy::AllocateAligned<float>(n.padded)),
      best_gt(hwy::AllocateAligned<int32_t>(n.padded)),
      available(hwy::AllocateAligned<float>(n.padded)),
      gt_arg_value(hwy::AllocateAligned<float>(n.gt_lanes)),
      gt_arg_index(hwy::AllocateAligned<int32_t>(n.gt_lanes)),
      owner(n.priors, -1),
      gt_box(n.gts),
      gt_best_iou(n.gt_vectors),
      gt_best_prior(n.gts),
      gt_done(n.gts) {
  gt_bounds.resize(n.gt_tests);
  std::fill_n(available.get(), priors.padded, 1.0f);
  positive_priors.reserve(n.priors);
}

ImageMatch match_image(const PriorLayout& priors, const Config& config, const float* boxes, int G,
                       int32_t* matches, int32_t* forced_prior, float* targets, MatchScratch& s) {
  const DF d;
  const DI di;
  GroundTruthBox* gts = s.gt_box.data();

  // Every GT's argmax and every prior's best GT and stage-2 match, a super-block at a time: the GTs that may
  // overlap it, in increasing order, each over its blocks there, then the thresholds. The super-block's priors and
  // best-GT entries (7 KiB) stay in L1 from their reset to their thresholds; a whole pass per GT read them from L2
  // (245 KiB at 8732 priors), and the reset and the thresholds were two more passes; a super-block no GT touches
  // gets its constant stage-2 match without either. A prior still sees its GTs in
  // increasing order under a strict '>', so it keeps the lowest GT index on ties, and each GT's lane argmax sees
  // its priors in increasing order, carried from one super-block to the next in gt_arg_value / gt_arg_index.
  const size_t N = hn::Lanes(d);
  const size_t G_padded = (static_cast<size_t>(G) + kMaxTestLanes - 1) / kMaxTestLanes * kMaxTestLanes;
  BoundingBoxes& gt_bounds = s.gt_bounds;
  float* HWY_RESTRICT arg_value = s.gt_arg_value.get();
  int32_t* HWY_RESTRICT arg_index = s.gt_arg_index.get();
  for (size_t g = 0; g < G_padded; ++g) {
    if (g < static_cast<size_t>(G)) {
      const float* v = boxes + g * 4;
      const core::Box box{v[0], v[1], v[2], v[3]};
      gts[g] = {box.x1, box.y1, box.x2, box.y2, core::area(box)};
      gt_bounds.x1[g] = box.x1, gt_bounds.y1[g] = box.y1, gt_bounds.x2[g] = box.x2, gt_bounds.y2[g] = box.y2;
      hn::Store(hn::Zero(d), d, arg_value + g * N);
      hn::Store(hn::Set(di, -1), di, arg_index + g * N);
      forced_prior[g] = -1;
    } else {  // empty, so it intersects nothing
      gt_bounds.x1[g] = gt_bounds.y1[g] = std::numeric_limits<float>::infinity();
      gt_bounds.x2[g] = gt_bounds.y2[g] = -std::numeric_limits<float>::infinity();
    }
  }
  float* HWY_RESTRICT best_iou = s.best_iou.get();
  int32_t* HWY_RESTRICT best_gt = s.best_gt.get();
  const VI lane = hn::Iota(di, 0);
  s.positive_priors.clear();
  // Stage 2 of a prior whose best IoU is 0 (best GT -1), as threshold_matches decides it.
  const int32_t no_overlap =
      0.0f >= config.pos_threshold ? -1 : (0.0f < config.negative_threshold() ? kNegative : kIgnored);
  // The targets' zeros a super-block at a time, ahead of its IoU work, which hides their drain: streamed in one
  // burst after the matching, they were 23% of match_image's samples on classes-2 (SSD300, B=8, 2 threads, perf),
  // stores with nothing to overlap them.
  ZeroStream target_zeros(targets);
  ImageMatch result;
  for (size_t sb = 0; sb < static_cast<size_t>(priors.num_super_blocks()); ++sb) {
    const BoxVectors super_box(priors.super_blocks, sb);
    const size_t first_block = sb * kSuperBlock;
    const size_t first_prior = first_block * kBlock;
    const size_t padded_end = std::min(static_cast<size_t>(priors.padded), first_prior + kSuperBlock * kBlock);
    const size_t end = std::min(static_cast<size_t>(priors.count), padded_end);
    if (targets != nullptr) target_zeros.until(end * 4);
    bool touched = false;  // by some GT; the priors of an untouched super-block all have IoU 0
    for (size_t g0 = 0; g0 < G_padded; g0 += kMaxTestLanes) {
      const uint32_t hits = intersect_bits(gt_bounds, g0, super_box);
      if (hits != 0 && !touched) {
        touched = true;
        for (size_t j = first_prior; j < padded_end; j += N) {
          hn::Store(hn::Zero(d), d, best_iou + j);
          hn::Store(hn::Set(di, -1), di, best_gt + j);
        }
      }
      for_each_bit(hits, [&](size_t i) {
        const size_t g = g0 + i;
        const VI gv = hn::Set(di, static_cast<int32_t>(g));
        const IouKernel kernel(priors, gts[g]);
        LaneArgmax arg(hn::Load(d, arg_value + g * N), hn::Load(di, arg_index + g * N), lane);
        for_each_bit(intersect_bits(priors.blocks, first_block, BoxVectors(gts[g])), [&](size_t k) {
          kernel.block(first_block + k, [&](size_t j, VF iou) {
            arg.update(j, iou);
            const VF best = hn::Load(d, best_iou + j);
            const auto better = hn::Gt(iou, best);
#if HWY_TARGET <= HWY_AVX3
            // Masked stores: no blend on the vector ports, which the division shares.
            hn::BlendedStore(iou, better, d, best_iou + j);
            hn::BlendedStore(gv, hn::RebindMask(di, better), di, best_gt + j);
#else
            // Blends and whole stores: AVX2 has masked stores only as vmaskmovps, which on the AVX2 EPYC held half
            // of the matcher's samples (perf on the SSD300 match stage).
            hn::Store(hn::IfThenElse(better, iou, best), d, best_iou + j);
            hn::Store(hn::IfThenElse(hn::RebindMask(di, better), gv, hn::Load(di, best_gt + j)), di, best_gt + j);
#endif
          });
        });
        hn::Store(arg.value, d, arg_value + g * N);
        hn::Store(arg.index, di, arg_index + g * N);
      });
    }
    if (touched) {
      result.negatives += threshold_matches(config, first_prior, end, matches, s);
    } else {
      std::fill(matches + first_prior, matches + end, no_overlap);
      if (no_overlap == kNegative) result.negatives += static_cast<int32_t>(end - first_prior);
    }
  }
  for (int g = 0; g < G; ++g) {
    const LaneArgmax arg(hn::Load(d, arg_value + static_cast<size_t>(g) * N),
                         hn::Load(di, arg_index + static_cast<size_t>(g) * N), lane);
    std::tie(s.gt_best_iou[g], s.gt_best_prior[g]) = arg.result();
  }
  std::fill(s.gt_best_iou.begin() + G, s.gt_best_iou.end(), 0.0f);  // whole vectors for bipartite's rounds

  if (config.forced_match == ForcedMatch::bipartite) bipartite(priors, G, forced_prior, s);
  else argmax(G, forced_prior, s);

  for (int g = 0; g < G; ++g) {
    const int32_t p = forced_prior[g];
    if (p < 0) continue;
    if (matches[p] < 0) s.positive_priors.push_back(p);
    result.negatives -= matches[p] == kNegative;
    matches[p] = g;
  }

  result.positives = static_cast<int32_t>(s.positive_priors.size());
  std::fill_n(s.gt_done.begin(), G, 0);  // whether the GT has a prior
  for (int32_t p : s.positive_priors) s.gt_done[matches[p]] = 1;
  result.unmatched_ground_truths = static_cast<int32_t>(G - std::count(s.gt_done.begin(), s.gt_done.begin() + G, 1));

  if (targets != nullptr) {
    target_zeros.finish(static_cast<size_t>(priors.count) * 4);
    for (int32_t p : s.positive_priors) {
      const float* v = boxes + static_cast<size_t>(matches[p]) * 4;
      const float* prior = &priors.centre_size[static_cast<size_t>(p) * 4];
      const core::Encoded e = core::encode(core::Box{v[0], v[1], v[2], v[3]}, prior[0], prior[1], prior[2],
                                           prior[3], config.variance_xy, config.variance_wh);
      std::copy(e.v, e.v + 4, targets + static_cast<size_t>(p) * 4);
    }
  }
  return result;
}

}  // namespace multibox::simd
