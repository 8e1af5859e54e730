// Per-image MultiBox loss (DESIGN.md sections 4-5). Pass 1 reads every row once: its max and cheap bounds on each
// negative's cross-entropy (zeros are streamed over the gradient meanwhile). Negatives whose upper bound is below
// the K-th largest lower bound cannot be mined, so pass 2 computes exact cross-entropies only for the positives and
// the remaining candidates, writes the positives' gradient rows, selects the K hardest with nth_element and writes
// theirs. Results equal computing every row exactly; the bounds only decide which rows need it.
// Both passes work on fixed chunks of kLossChunkRows rows, whose partial sums are added in chunk order, so one image
// can be split across threads (a batch smaller than the thread count) with the same bits as on one thread.
#pragma once

#include <cstdint>
#include <vector>

#include "multibox/config.hpp"

namespace multibox::simd {

// A negative's cross-entropy and prior, the unit hard negative mining ranks.
struct NegativeCe {
  float ce;
  int32_t prior;
};

// Rows are processed in groups, one kernel at a time across the group, so the latency chains of one row's
// reductions overlap with the next row's loads, and log1p runs once per vector of rows instead of once per row. A
// group's logit offsets are int32 vector lanes, which bounds C (SimdBackend refuses larger shapes).
constexpr int kLossRowGroup = 16;

// Rows per chunk: a multiple of the 16-row groups, so no group straddles two chunks. Fixed, never derived from the
// thread count, since the chunks decide the order in which the loss terms are added. 512 rows of 21 logits are 42 KiB.
constexpr int kLossChunkRows = 512;
constexpr int loss_chunks(int num_priors) { return (num_priors + kLossChunkRows - 1) / kLossChunkRows; }

// What one chunk of rows contributes.
struct LossChunk {
  double conf_sum = 0;        // the positives' CEs (the mined negatives' are added per image)
  double loc_sum = 0;
  int32_t negatives = 0;      // pass 1: rows matched kNegative
  int32_t candidates = 0;     // pass 2: negatives whose bound kept them for the exact CE
  int32_t exact_rows = 0;     // pass 2: positives + candidates
  int32_t exact_negatives = 0;  // pass 2: entries written to LossScratch::negatives at the chunk's first row
  bool non_finite = false;    // pass 1 found a NaN or Inf (kCheck)
  bool bounds_finite = true;  // pass 1: every bound is finite
};

// The working memory of one image in flight, sized at plan time so run() never allocates. Chunks write only their
// own rows' entries, so the chunks of one image may run on different threads at once.
struct LossScratch {
  std::vector<float> row_max;      // [P + 16] max logit of the row (padded for whole-vector stores)
  std::vector<float> row_log_sum;  // [P] log(sum(exp(row - max))), for the rows whose CE is computed exactly
  std::vector<float> lower, upper;    // [P + 16] bounds on each negative's CE, from its lane maxima
  std::vector<NegativeCe> negatives;  // [P]: a chunk's candidates at its first row, compacted before selection
  std::vector<int32_t> rows;          // [P]: a chunk's rows whose CE is computed exactly, at its first row
  std::vector<uint32_t> histogram;    // buckets of CE bit patterns for the pre-selection of hard negatives
  std::vector<LossChunk> chunks;      // [loss_chunks(P)]
  // Set by loss_select for the second pass.
  int64_t quota = 0;
  float cut = 0;        // negatives with an upper bound below this are skipped
  bool failed = false;  // a chunk found a non-finite prediction: nothing more is computed
  bool sample_missed = false;  // fewer than the quota cleared the sampled histogram's boundary: all negatives competed

  explicit LossScratch(int num_priors);
  // The bytes the constructor allocates, from the same lengths (plan_memory() adds these up).
  static uint64_t bytes(int num_priors);

 private:
  struct Lengths {
    size_t rows;         // P
    size_t padded_rows;  // P + one row group, for whole-vector stores
    size_t buckets;      // histogram buckets
    size_t chunks;       // loss_chunks(P)
  };
  static Lengths lengths(int num_priors);
  explicit LossScratch(const Lengths& n);
};

// What one image contributes; the plan adds images up in image order, so totals do not depend on threads.
struct ImageLoss {
  double conf_sum = 0;
  double loc_sum = 0;
  int32_t mined = 0;
  int32_t exact_rows = 0;  // rows whose CE was computed exactly: positives and the negatives the bounds kept
  bool non_finite_prediction = false;  // the plan then reports the first bad value by name
};

struct ImageLossInputs {
  int num_priors = 0;
  int num_classes = 0;
  const float* conf = nullptr;       // [P][C] this image's logits
  const float* loc = nullptr;        // [P][4]
  const int32_t* matches = nullptr;  // [P]
  const int32_t* labels = nullptr;   // this image's GT labels
  const float* targets = nullptr;    // [P][4]
  int32_t positives = 0;             // P_b
  int32_t negatives = -1;            // rows matched kNegative as the matcher counted them; -1: loss_select counts
  int64_t batch_positives = 0;       // N, for the gradients
  bool check_values = false;         // scan every logit and loc value for NaN/Inf in the same pass
  bool prune_negatives = true;       // false: exact CE for every negative (what the bounds are tested against)
};

struct ImageLossOutputs {
  uint8_t* mined = nullptr;      // [P]
  float* grad_conf = nullptr;    // [P][C], null when the backward stage is not requested
  float* grad_loc = nullptr;     // [P][4], likewise
};

// Whether the histogram that sets the mining boundary counts row `prior`: it counts one row of each vector of rows
// (loss.cpp, sampled_lane). For tests that build rows the sample misjudges.
bool histogram_samples_row(int prior);

// The whole image on the calling thread: every chunk of pass 1 (the negatives masked and counted as it goes),
// loss_select, every chunk of pass 2, loss_finish.
ImageLoss image_loss(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                     LossScratch& scratch);

// image_loss in two steps, for a plan that starts an image's loss before the batch's N is known: image_loss_bounds is
// pass 1 and loss_select, which need the image's matches and P_b but not N; image_loss_rest is the rest, which reads
// N (in.batch_positives). Both on the calling thread, the first returning before the second starts.
void image_loss_bounds(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                       LossScratch& scratch);
ImageLoss image_loss_rest(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                          LossScratch& scratch);

// The same phases one at a time, for a plan that splits an image across threads. loss_bounds reads no matches (nor
// positives), so it may run while the image is being matched; loss_select applies them. Every chunk's loss_bounds
// must return (its streamed stores flushed) before loss_select, and every chunk's loss_exact before loss_finish;
// chunks of one phase may run in any order and concurrently. The results are image_loss's, bit for bit.
void loss_bounds(const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& scratch, int chunk);
void loss_select(const Config& config, const ImageLossInputs& in, LossScratch& scratch);
void loss_exact(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out, LossScratch& scratch,
                int chunk);
ImageLoss loss_finish(const Config& config, const ImageLossInputs& in, const ImageLossOutputs& out,
                      LossScratch& scratch);

}  // namespace multibox::simd
