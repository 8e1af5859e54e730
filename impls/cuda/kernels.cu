// The CUDA backend's kernels, in the order a run enqueues them:
//   check_ground_truths  validates ground truths (the host path did it already; the device path relies on it) and
//                        resets the per-image counters and per-ground-truth candidates
//   iou                  per image, threads over priors, ground truths staged through shared memory in tiles (no
//                        cap on objects per image): each prior's best ground truth (stage 2) and each ground truth's
//                        best prior (an atomicMax of a key that carries the tie rule, so the result is deterministic)
//   forced               one block per image: stage 1, the argmax rule or the bipartite greedy loop, which rescans a
//                        ground truth only when its candidate prior was just taken
//   assign               stage 2 thresholds, matches, encoding, per-image positive and negative counts
//   count_unmatched      per image, ground truths left without a prior
//   row_stats<W>         W threads per logits row: max, log-sum-exp and CE in one read of the row, plus the mining
//                        key of each negative
//   CUB segmented sort   the mining order per image, on the device (no copy to the host)
//   mark_mined           a negative is mined when its key is at most the K_b-th smallest of its image
//   image_sums           per image, conf and loc sums in double through a block reduction (fixed order)
//   finalize             the batch totals, summed image by image in one thread (the same bits on every run)
//   backward_rows<W>     dense gradients, zeros included
// IoUs go through core::iou_with_areas; this file is compiled with -fmad=false so they carry the reference's bits.
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "core/math.hpp"
#include "cuda/device_math.hpp"
#include "cuda/kernels.hpp"

namespace multibox::cuda::detail {
namespace {

using core::Box;

// An image's ground truths, with offsets clamped into range so that ground truths the device check rejects can
// still never make a kernel read or write out of bounds.
struct ImageRange {
  int first;
  int count;
};
__device__ __forceinline__ ImageRange image_range(const DeviceArgs& a, int b) {
  const int total = a.total_ground_truths;
  int first = a.gt_offsets[b], last = a.gt_offsets[b + 1];
  first = first < 0 ? 0 : (first > total ? total : first);
  last = last < first ? first : (last > total ? total : last);
  return {first, last - first};
}

__device__ __forceinline__ Box load_box(const float* boxes, int g) {
  const float4 v = reinterpret_cast<const float4*>(boxes)[g];
  return {v.x, v.y, v.z, v.w};
}

// The label used as a class index: a label the device check rejected is never used to index a row.
__device__ __forceinline__ int safe_label(const DeviceArgs& a, int g) {
  const int label = a.gt_labels[g];
  return label >= 1 && label < a.num_classes ? label : 0;
}

__device__ __forceinline__ unsigned long long warp_max(unsigned long long v) {
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned long long other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  return v;
}

// ---- validation and reset ----

__global__ void check_ground_truths_kernel(DeviceArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  bool bad = false;
  if (i < a.total_ground_truths) {
    const Box g = load_box(a.gt_boxes, i);
    const bool finite = isfinite(g.x1) && isfinite(g.y1) && isfinite(g.x2) && isfinite(g.y2);
    bad = !finite || !(g.x2 > g.x1) || !(g.y2 > g.y1) || !(core::area(g) > 0.0f) || a.gt_labels[i] < 1 ||
          a.gt_labels[i] >= a.num_classes;
    a.gt_key[i] = 0;
    a.has_prior[i] = 0;
  }
  if (i <= a.batch) {
    const int v = a.gt_offsets[i];
    if (i == 0) bad |= v != 0;
    else bad |= v < a.gt_offsets[i - 1];
    if (i == a.batch) bad |= v != a.total_ground_truths;
  }
  if (i < a.batch) {
    a.positives[i] = 0;
    a.negatives[i] = 0;
  }
  if (bad) atomicExch(a.input_error, 1);
}

// ---- matching ----

__global__ void __launch_bounds__(kPriorBlock) iou_kernel(DeviceArgs a) {
  __shared__ float4 tile[kGtTile];
  __shared__ float tile_area[kGtTile];
  __shared__ unsigned long long tile_key[kGtTile];
  const int b = blockIdx.y;
  const int p = blockIdx.x * kPriorBlock + threadIdx.x;
  const bool valid = p < a.num_priors;
  const ImageRange range = image_range(a, b);
  Box prior{0, 0, 0, 0};
  if (valid) {
    const float4 v = reinterpret_cast<const float4*>(a.prior_boxes)[p];
    prior = {v.x, v.y, v.z, v.w};
  }
  const float prior_area = core::area(prior);
  float best = 0.0f;
  int best_g = -1;
  for (int t0 = 0; t0 < range.count; t0 += kGtTile) {
    const int n = min(kGtTile, range.count - t0);
    for (int i = threadIdx.x; i < n; i += kPriorBlock) {
      const Box g = load_box(a.gt_boxes, range.first + t0 + i);
      tile[i] = make_float4(g.x1, g.y1, g.x2, g.y2);
      tile_area[i] = core::area(g);
      tile_key[i] = 0;
    }
    __syncthreads();
    for (int i = 0; i < n; ++i) {
      const float4 v = tile[i];
      const float iou = valid ? core::iou_with_areas(Box{v.x, v.y, v.z, v.w}, tile_area[i], prior, prior_area) : 0.0f;
      if (iou > best) best = iou, best_g = t0 + i;  // strict '>': the lowest ground-truth index on ties
      const unsigned long long key = warp_max(prior_key(iou, p));
      if ((threadIdx.x & 31) == 0 && key != 0) atomicMax(&tile_key[i], key);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kPriorBlock)
      if (tile_key[i] != 0) atomicMax(&a.gt_key[range.first + t0 + i], tile_key[i]);
    __syncthreads();
  }
  if (valid) {
    const size_t row = static_cast<size_t>(b) * a.num_priors + p;
    a.best_iou[row] = best;
    a.best_gt[row] = best_g;
    a.owner[row] = -1;
  }
}

struct BetterCandidate {
  __device__ __forceinline__ Candidate operator()(const Candidate& x, const Candidate& y) const {
    return better_candidate(x, y);
  }
};
struct MaxKey {
  __device__ __forceinline__ unsigned long long operator()(unsigned long long x, unsigned long long y) const {
    return x > y ? x : y;
  }
};

__global__ void __launch_bounds__(kImageBlock) forced_kernel(DeviceArgs a) {
  const int b = blockIdx.x;
  const ImageRange range = image_range(a, b);
  int32_t* owner = a.owner + static_cast<size_t>(b) * a.num_priors;
  unsigned long long* key = a.gt_key + range.first;
  int32_t* forced = a.forced_prior + range.first;

  if (!a.bipartite) {
    // Each ground truth takes its argmax prior; on a shared prior the highest ground-truth index wins.
    for (int g = threadIdx.x; g < range.count; g += kImageBlock)
      if (key[g] != 0) atomicMax(&owner[prior_of_key(key[g])], g);
    __syncthreads();
    for (int g = threadIdx.x; g < range.count; g += kImageBlock) {
      const int p = key[g] != 0 ? prior_of_key(key[g]) : -1;
      forced[g] = p >= 0 && owner[p] == g ? p : -1;
    }
    return;
  }

  using CandidateReduce = cub::BlockReduce<Candidate, kImageBlock>;
  using KeyReduce = cub::BlockReduce<unsigned long long, kImageBlock>;
  __shared__ union {
    typename CandidateReduce::TempStorage candidate;
    typename KeyReduce::TempStorage key;
  } temp;
  __shared__ Candidate chosen;
  __shared__ unsigned long long rescanned;
  for (int g = threadIdx.x; g < range.count; g += kImageBlock) forced[g] = -1;

  // A served ground truth's key is set to 0, the same as one with no prior left to take: neither is chosen again.
  for (int round = 0; round < range.count; ++round) {
    Candidate mine = no_candidate();
    for (int g = threadIdx.x; g < range.count; g += kImageBlock) mine = better_candidate(mine, Candidate{key[g], g});
    const Candidate best = CandidateReduce(temp.candidate).Reduce(mine, BetterCandidate{});
    if (threadIdx.x == 0) chosen = best;
    __syncthreads();
    const Candidate c = chosen;
    if (c.key == 0) break;
    const int p_taken = prior_of_key(c.key);
    if (threadIdx.x == 0) {
      owner[p_taken] = c.g;
      forced[c.g] = p_taken;
      key[c.g] = 0;
    }
    __syncthreads();
    // Ground truths whose best free prior was just taken look for their next best free one.
    for (int g = 0; g < range.count; ++g) {
      const unsigned long long k = key[g];
      if (k == 0 || prior_of_key(k) != p_taken) continue;
      const Box box = load_box(a.gt_boxes, range.first + g);
      const float box_area = core::area(box);
      unsigned long long best_key = 0;
      for (int p = threadIdx.x; p < a.num_priors; p += kImageBlock) {
        if (owner[p] >= 0) continue;
        const float4 v = reinterpret_cast<const float4*>(a.prior_boxes)[p];
        const Box prior{v.x, v.y, v.z, v.w};
        const unsigned long long pk = prior_key(core::iou_with_areas(box, box_area, prior, core::area(prior)), p);
        best_key = pk > best_key ? pk : best_key;
      }
      best_key = KeyReduce(temp.key).Reduce(best_key, MaxKey{});
      if (threadIdx.x == 0) rescanned = best_key;
      __syncthreads();
      if (threadIdx.x == 0) key[g] = rescanned;
      __syncthreads();
    }
  }
}

__global__ void __launch_bounds__(kPriorBlock) assign_kernel(DeviceArgs a, bool encode) {
  const int b = blockIdx.y;
  const int p = blockIdx.x * kPriorBlock + threadIdx.x;
  const bool valid = p < a.num_priors;
  const ImageRange range = image_range(a, b);
  int match = -1;
  if (valid) {
    const size_t row = static_cast<size_t>(b) * a.num_priors + p;
    match = match_of(a.owner[row], a.best_iou[row], a.best_gt[row], a.pos_threshold, a.neg_threshold);
    a.matches[row] = match;
    if (match >= 0) a.has_prior[range.first + match] = 1;  // every writer stores 1: a benign race
    if (encode) {
      float4 t = make_float4(0, 0, 0, 0);
      if (match >= 0) {
        const float4 c = reinterpret_cast<const float4*>(a.prior_centres)[p];
        const core::Encoded e =
            core::encode(load_box(a.gt_boxes, range.first + match), c.x, c.y, c.z, c.w, a.variance_xy, a.variance_wh);
        t = make_float4(e.v[0], e.v[1], e.v[2], e.v[3]);
      }
      reinterpret_cast<float4*>(a.targets)[row] = t;
    }
  }
  const int positives = __syncthreads_count(valid && match >= 0);
  const int negatives = __syncthreads_count(valid && match == -1);
  if (threadIdx.x == 0) {
    if (positives) atomicAdd(&a.positives[b], positives);
    if (negatives) atomicAdd(&a.negatives[b], negatives);
  }
}

__global__ void __launch_bounds__(kImageBlock) count_unmatched_kernel(DeviceArgs a) {
  using Reduce = cub::BlockReduce<int, kImageBlock>;
  __shared__ typename Reduce::TempStorage temp;
  const ImageRange range = image_range(a, blockIdx.x);
  int mine = 0;
  for (int g = threadIdx.x; g < range.count; g += kImageBlock) mine += a.has_prior[range.first + g] == 0;
  const int total = Reduce(temp).Sum(mine);
  if (threadIdx.x == 0) a.unmatched[blockIdx.x] = total;
}

// ---- loss ----

template <int W>
__device__ __forceinline__ float group_max(float v) {
  for (int o = W / 2; o > 0; o >>= 1) v = core::max_f(v, __shfl_xor_sync(0xffffffffu, v, o, W));
  return v;
}
template <int W>
__device__ __forceinline__ RestPart group_sum(RestPart r) {
  for (int o = W / 2; o > 0; o >>= 1) {
    r.rest += __shfl_xor_sync(0xffffffffu, r.rest, o, W);
    r.ties += __shfl_xor_sync(0xffffffffu, r.ties, o, W);
  }
  return r;
}

template <int W>
__global__ void __launch_bounds__(kRowBlock) row_stats_kernel(DeviceArgs a) {
  const int64_t rows = static_cast<int64_t>(a.batch) * a.num_priors;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (kRowBlock / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  // Rows past the end still take part in the shuffles (on a valid row's data), so every lane of the group is present.
  const int64_t rr = r < rows ? r : rows - 1;
  const float* x = a.conf + rr * a.num_classes;
  const float m = group_max<W>(partial_max(x, a.num_classes, lane, W));
  const RestPart whole = group_sum<W>(partial_rest(x, a.num_classes, lane, W, m));
  if (lane != 0 || r >= rows) return;
  const int b = static_cast<int>(r / a.num_priors);
  const int p = static_cast<int>(r - static_cast<int64_t>(b) * a.num_priors);
  const int match = a.matches[r];
  const float log_sum = log_sum_of(whole);
  const int y = match >= 0 ? safe_label(a, image_range(a, b).first + match) : 0;
  const float ce = cross_entropy(m, log_sum, x[y]);
  a.row_max[r] = m;
  a.row_log_sum[r] = log_sum;
  a.ce[r] = ce;
  a.keys_in[r] = match == -1 ? negative_key(ce, p, a.index_bits) : kNotANegative;
}

__device__ __forceinline__ int quota_of(const DeviceArgs& a, int b) {
  return static_cast<int>(core::mining_quota(a.positives[b], a.negatives[b], a.neg_pos_ratio, a.min_negatives));
}

__global__ void __launch_bounds__(kPriorBlock) mark_mined_kernel(DeviceArgs a) {
  const int b = blockIdx.y;
  const int p = blockIdx.x * kPriorBlock + threadIdx.x;
  const int quota = quota_of(a, b);
  if (blockIdx.x == 0 && threadIdx.x == 0) a.mined_negatives[b] = quota;
  if (p >= a.num_priors) return;
  const size_t base = static_cast<size_t>(b) * a.num_priors;
  // Keys are distinct (they hold the prior index), so exactly `quota` of them are <= the quota-th smallest.
  a.mined[base + p] = quota > 0 && a.keys_in[base + p] <= a.keys_out[base + quota - 1];
}

__global__ void __launch_bounds__(kImageBlock) image_sums_kernel(DeviceArgs a) {
  using Reduce = cub::BlockReduce<double, kImageBlock>;
  __shared__ typename Reduce::TempStorage temp;
  const int b = blockIdx.x;
  const size_t base = static_cast<size_t>(b) * a.num_priors;
  double conf = 0, loc = 0;
  for (int p = threadIdx.x; p < a.num_priors; p += kImageBlock) {
    const size_t row = base + p;
    const int match = a.matches[row];
    if (match >= 0 || a.mined[row]) conf += static_cast<double>(a.ce[row]);
    if (match >= 0) {
      const float4 l = reinterpret_cast<const float4*>(a.loc)[row];
      const float4 t = reinterpret_cast<const float4*>(a.targets)[row];
      loc += loc_loss(l.x, t.x, a.beta) + loc_loss(l.y, t.y, a.beta) + loc_loss(l.z, t.z, a.beta) +
             loc_loss(l.w, t.w, a.beta);
    }
  }
  const double conf_total = Reduce(temp).Sum(conf);
  __syncthreads();  // the temporary storage is reused
  const double loc_total = Reduce(temp).Sum(loc);
  if (threadIdx.x == 0) {
    a.image_conf_sum[b] = conf_total;
    a.image_loc_sum[b] = loc_total;
  }
}

__global__ void finalize_kernel(DeviceArgs a) {
  if (threadIdx.x != 0) return;
  DeviceLossTerms t{};
  for (int b = 0; b < a.batch; ++b) {
    t.num_positives += a.positives[b];
    t.conf_sum += a.image_conf_sum[b];
    t.loc_sum += a.image_loc_sum[b];
  }
  if (t.num_positives > 0) {
    const double n = static_cast<double>(t.num_positives);
    t.conf = t.conf_sum / n;
    t.loc = t.loc_sum / n;
    t.total = (t.conf_sum + static_cast<double>(a.alpha) * t.loc_sum) / n;
  }
  *a.loss = t;
}

template <int W>
__global__ void __launch_bounds__(kRowBlock) backward_rows_kernel(DeviceArgs a) {
  const int64_t rows = static_cast<int64_t>(a.batch) * a.num_priors;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (kRowBlock / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  if (r >= rows) return;
  const int C = a.num_classes;
  const int64_t n = a.loss->num_positives;
  const int match = a.matches[r];
  const bool selected = n > 0 && (match >= 0 || a.mined[r]);
  float* grad = a.grad_conf + r * C;
  if (!selected) {
    for (int c = lane; c < C; c += W) grad[c] = 0.0f;
  } else {
    const float* x = a.conf + r * C;
    const int b = static_cast<int>(r / a.num_priors);
    const int y = match >= 0 ? safe_label(a, image_range(a, b).first + match) : 0;
    const float m = a.row_max[r], log_sum = a.row_log_sum[r];
    const float inv_n = static_cast<float>(1.0 / static_cast<double>(n));
    for (int c = lane; c < C; c += W) grad[c] = logit_gradient(x[c], m, log_sum, c == y, inv_n);
  }
  for (int k = lane; k < 4; k += W) {
    const size_t i = static_cast<size_t>(r) * 4 + k;
    a.grad_loc[i] = n > 0 && match >= 0 ? loc_gradient(a.loc[i], a.targets[i], a.alpha, a.beta, static_cast<double>(n))
                                        : 0.0f;
  }
}

// One instantiation per row width; `launch.row_width` picks it.
#define MULTIBOX_ROW_DISPATCH(kernel, launch, stream, args)                                                   \
  switch ((launch).row_width) {                                                                              \
    case 1: kernel<1><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                           \
    case 2: kernel<2><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                           \
    case 4: kernel<4><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                           \
    case 8: kernel<8><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                           \
    case 16: kernel<16><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                         \
    default: kernel<32><<<(launch).row_blocks, kRowBlock, 0, stream>>>(args); break;                         \
  }

}  // namespace

cudaError_t mining_sort_temp_bytes(int batch, int num_priors, size_t* bytes) {
  *bytes = 0;
  return cub::DeviceSegmentedRadixSort::SortKeys(nullptr, *bytes, static_cast<const unsigned long long*>(nullptr),
                                                 static_cast<unsigned long long*>(nullptr), batch * num_priors, batch,
                                                 static_cast<const int32_t*>(nullptr),
                                                 static_cast<const int32_t*>(nullptr) + 1);
}

cudaError_t enqueue_run(const DeviceArgs& a, const Launch& l, RunStage stage, cudaStream_t stream, const char** what) {
  cudaError_t e = cudaSuccess;
  auto step = [&](const char* name) {
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess && *what == nullptr) *what = name;
    return e == cudaSuccess;
  };
  *what = nullptr;
  const dim3 prior_grid(static_cast<unsigned>(l.prior_blocks), static_cast<unsigned>(l.batch));
  const int check_threads = (a.total_ground_truths > a.batch ? a.total_ground_truths : a.batch) + 1;
  check_ground_truths_kernel<<<(check_threads + 255) / 256, 256, 0, stream>>>(a);
  if (!step("check_ground_truths kernel")) return e;
  iou_kernel<<<prior_grid, kPriorBlock, 0, stream>>>(a);
  if (!step("iou kernel")) return e;
  forced_kernel<<<l.batch, kImageBlock, 0, stream>>>(a);
  if (!step("forced kernel")) return e;
  assign_kernel<<<prior_grid, kPriorBlock, 0, stream>>>(a, stage >= RunStage::encode);
  if (!step("assign kernel")) return e;
  count_unmatched_kernel<<<l.batch, kImageBlock, 0, stream>>>(a);
  if (!step("count_unmatched kernel")) return e;
  if (stage < RunStage::forward) return e;

  MULTIBOX_ROW_DISPATCH(row_stats_kernel, l, stream, a)
  if (!step("row_stats kernel")) return e;
  size_t temp_bytes = a.cub_temp_bytes;
  e = cub::DeviceSegmentedRadixSort::SortKeys(a.cub_temp, temp_bytes, a.keys_in, a.keys_out,
                                              a.batch * a.num_priors, a.batch, a.segment_offsets,
                                              a.segment_offsets + 1, 0, 31 + a.index_bits, stream);
  if (!step("cub::DeviceSegmentedRadixSort::SortKeys (mining order)")) return e;
  mark_mined_kernel<<<prior_grid, kPriorBlock, 0, stream>>>(a);
  if (!step("mark_mined kernel")) return e;
  image_sums_kernel<<<l.batch, kImageBlock, 0, stream>>>(a);
  if (!step("image_sums kernel")) return e;
  finalize_kernel<<<1, 32, 0, stream>>>(a);
  if (!step("finalize kernel")) return e;
  if (stage < RunStage::backward) return e;

  MULTIBOX_ROW_DISPATCH(backward_rows_kernel, l, stream, a)
  step("backward_rows kernel");
  return e;
}

}  // namespace multibox::cuda::detail
