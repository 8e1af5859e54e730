// The same-traffic twin of a benchmark (issue 10): it reads the bytes a stage of the simd backend reads and writes
// the bytes it writes, with the same kind of stores (zeros streamed past the cache, then ordinary stores over the
// rows that get values), on the backend's own thread pool with the stage's pairing of an image's matching and loss
// (one pool run, the loss on the matching's thread where it can), and does no math. Time over twin is a roofline
// that needs no model of the machine: 1.0 means the stage costs what its memory traffic costs on this machine at
// that moment.
// Also the compute ceilings the issue asks for where a stage is not memory bound, measured the same way.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "multibox/batch.hpp"

namespace multibox::bench {

class TrafficTwin {
 public:
  // Outputs of its own, the sizes of the benchmark's, so the benchmark's results stay as its run left them.
  // `threads` is the benchmark's thread count; batches smaller than it are split inside images, so the twin is the
  // floor of the machine at that many threads, not of the backend's image-per-thread split.
  TrafficTwin(const ProblemShape& shape, int total_ground_truths, int threads);
  ~TrafficTwin();
  TrafficTwin(const TrafficTwin&) = delete;
  TrafficTwin& operator=(const TrafficTwin&) = delete;

  // Which rows a run overwrites after zeroing them: positives (matches >= 0) and mined negatives, read from the
  // outputs of a completed run of a forward-or-later stage (for the match stage only the positives count). Untimed.
  void learn_rows(const OutputView& run);

  // Median seconds of `runs` replays of the stage's traffic.
  double seconds(const GroundTruthView& gt, const PredictionView& pred, std::span<const float> priors, Stage stage,
                 int runs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The median of v (0 when empty): of replays here, of paired ratios in the benchmark.
double median(std::vector<double> v);

// What the vector width allows on one core of this machine, measured once: the bare kernels with operands in L1.
struct VectorLimits {
  double logits_per_ns = 0;     // load + max over the logits: the least pass 1 does per logit
  double iou_pairs_per_ns = 0;  // the IoU formula of the matcher (4 loads-min/max, 2 sub, 2 max 0, mul, add, sub, div)
  int lanes = 0;                // floats per vector
};
VectorLimits measure_vector_limits();

// How evenly the first two CPUs this process may run on execute vector code right now: the rate of 12 independent
// chains of vector multiply-adds on a thread pinned to each (median of 7 trials of about 0.3 ms), the slower over
// the faster; 0 where the process may run on only one CPU or a thread cannot be pinned. A vCPU whose physical core
// is shared with another guest's busy thread runs vector code slower while latency-bound scalar code keeps its
// speed, so the 2-thread times of compute-bound points run long. Seen on the 2-vCPU Zen 5 guest (2026-12-03): these
// chains took 108 ms on vCPU 0 against 137-152 ms on vCPU 1, a scalar chain 830 against 849 ms, and minutes later
// 108 against 107 ms.
double core_vector_balance();

// Rows per ns of the softmax cross-entropy of rows of `classes` logits on one core, rows in L1: each row's max, the
// exp of every logit (the simd backend's exp), their sum and a log. What a loss that computes every row's CE
// exactly can reach on this core; the simd backend's pass 1 bounds most rows from 16 lane maxima instead of an exp
// per logit, so a stage may go past it, as block skipping takes matching past the IoU ceiling. Best of 15 trials of
// about 2 million logits each.
double softmax_rows_per_ns(int classes);

}  // namespace multibox::bench
