// The SIMD plan: images are independent, so threads take whole images (ImagePool, one image at a time) and every
// per-image result lands in its own slot; totals are summed in image order afterwards. A batch smaller than the
// thread count splits each image's loss into chunks of rows instead (loss.hpp), whose sums are added in chunk order
// whichever thread ran them. Either way the output is bit-identical at any thread count.
#include "simd/simd_backend.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <hwy/highway.h>
#include <hwy/targets.h>

#include "simd/image_pool.hpp"
#include "simd/loss.hpp"
#include "simd/matcher.hpp"
#include "simd/prior_layout.hpp"
#include "simd/streaming.hpp"

namespace multibox::simd {
namespace {

// Fewer images than threads: each image's loss is split into chunks of rows, which only then need a per-image
// counter of items left. The plan and plan_memory() share the rule so the estimate stays what is allocated.
bool splits_images(const ProblemShape& shape, int threads) { return shape.batch < threads; }
size_t split_units(const ProblemShape& shape) {
  return static_cast<size_t>(shape.batch) * static_cast<size_t>(loss_chunks(shape.num_priors));
}

// What an image's loss may read when it starts a phase: pass 1 beside the image's matching reads no match (the
// matching is still writing them); pass 1 after it and the mining cut read the matches but not N, which between()
// may still be adding up on another thread; the rest reads both.
enum class Known { nothing, matches, all };

// Runs one batch at a time: the per-thread scratch belongs to the plan, so concurrent run() calls need one plan each.
class SimdPlan final : public Plan {
 public:
  SimdPlan(const ProblemShape& shape, std::span<const float> priors, const Config& config, int threads,
           const PlanOptions& options)
      : shape_(shape),
        config_(config),
        options_(options),
        priors_(PriorLayout::build(priors, shape.num_priors)),
        image_match_(shape.batch),
        image_loss_(shape.batch),
        split_(splits_images(shape, threads)),
        items_left_(split_ ? std::make_unique<std::atomic<int>[]>(static_cast<size_t>(shape.batch)) : nullptr),
        unit_claimed_(split_ ? std::make_unique<std::atomic<bool>[]>(2 * split_units(shape)) : nullptr),
        image_pairs_(split_ ? nullptr : std::make_unique<ImagePool::PairSlot[]>(static_cast<size_t>(shape.batch))),
        pool_(threads) {
    const int scratch = std::min(threads, shape.batch);  // split_: one per image in flight, else one per thread
    match_scratch_.reserve(scratch);
    loss_scratch_.reserve(scratch);
    for (int t = 0; t < scratch; ++t) {
      match_scratch_.emplace_back(priors_, shape.max_ground_truths);
      loss_scratch_.emplace_back(shape.num_priors);
    }
  }

  const ProblemShape& shape() const noexcept override { return shape_; }
  const Config& config() const noexcept override { return config_; }

  Status run(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out) override {
    if (Status s = validate_ground_truths(shape_, gt); !s) return s;
    if (Status s = validate_outputs(shape_, gt, stage, out); !s) return s;
    const bool forward = stage >= Stage::forward;
    // Values are scanned inside the loss pass (one read of the logits instead of two); sizes are checked here.
    if (forward) {
      if (Status s = validate_predictions(shape_, pred, false); !s) return s;
    }

    const int B = shape_.batch;
    const size_t P = static_cast<size_t>(shape_.num_priors);
    const size_t C = static_cast<size_t>(shape_.num_classes);
    const bool encode = stage >= Stage::encode;
    const bool backward = stage >= Stage::backward;

    auto match = [&](int b, int worker) {
      const int32_t first = gt.offsets[b];
      image_match_[b] = match_image(priors_, config_, gt.boxes.data() + static_cast<size_t>(first) * 4, gt.count(b),
                                    out.matches.data() + b * P, out.forced_prior.data() + first,
                                    encode ? out.targets.data() + b * P * 4 : nullptr,
                                    match_scratch_[split_ ? b : worker]);
      flush_streaming_stores();  // the targets' zeros must be visible to whichever thread reads them next
    };
    int64_t batch_positives = 0;  // N, for the gradients
    auto inputs = [&](int b, Known known) {
      ImageLossInputs in;
      in.num_priors = shape_.num_priors;
      in.num_classes = shape_.num_classes;
      in.conf = pred.conf.data() + b * P * C;
      in.loc = pred.loc.data() + b * P * 4;
      in.matches = out.matches.data() + b * P;
      in.labels = gt.labels.data() + gt.offsets[b];
      in.targets = out.targets.data() + b * P * 4;
      in.positives = known >= Known::matches ? image_match_[b].positives : 0;
      in.negatives = known >= Known::matches ? image_match_[b].negatives : -1;
      in.batch_positives = known == Known::all ? batch_positives : 0;
      in.check_values = options_.check_prediction_values;
      return in;
    };
    auto outputs = [&](int b) {
      ImageLossOutputs o;
      o.mined = out.mined.data() + b * P;
      if (backward) {
        o.grad_conf = out.grad_conf.data() + b * P * C;
        o.grad_loc = out.grad_loc.data() + b * P * 4;
      }
      return o;
    };
    auto add_positives = [&] {  // N: the gradients need it, so every image is matched before any loss gradient
      for (int b = 0; b < B; ++b) batch_positives += image_match_[b].positives;
    };

    if (!forward) {
      pool_.run(B, match);  // no gradients, so no N
    } else if (!split_) {
      // Pass 1 and the mining cut need only the image's own matches, so an image's loss starts as soon as its
      // matching has ended, beside the other images' matching; only the rest (the gradients) waits for N. Waiting
      // for every image's matching first cost the thread that finished its share early the rest of the matching
      // (SSD300, C=2, batch 8, 2 threads: 18 us of a 319 us run, traced). An image's loss runs on the thread that
      // matched it where it can (run_pairs): traced on a 2-vCPU Zen 5 while its vCPUs sat far apart (a cache line's
      // round trip 400 ns), pass 1 of an image took 21-23 us after its matching on the same thread and 25-27 us
      // after it on the other; forward + backward, SSD300, batch 8, 2 threads, median run, alternated binaries, 3
      // rounds: C=2 0.199 -> 0.162 ms. With the vCPUs close (170 ns) the two read the same.
      auto loss = [&](int b, int worker, const auto& wait_for_matching) {
        image_loss_bounds(config_, inputs(b, Known::matches), outputs(b), loss_scratch_[worker]);
        wait_for_matching();
        image_loss_[b] = image_loss_rest(config_, inputs(b, Known::all), outputs(b), loss_scratch_[worker]);
        flush_streaming_stores();
      };
      pool_.run_pairs({image_pairs_.get(), static_cast<size_t>(B)}, match, add_positives, loss);
    } else {
      // Items are the images' matching, then one (image, chunk) unit each for pass 1 and again for pass 2: pass 1
      // reads no match, so it runs beside the matching (on batch-1, matching alone is about a seventh of the time).
      // The thread that ends the last unit of an image in a phase runs the image's step between the passes, so each
      // pass costs one join, not two. Units go by claim_unit, each worker first taking its own fixed share: taken in
      // item order, a chunk went to whichever thread came first, so its rows moved between the cores' caches from
      // run to run and from pass 1 to pass 2 (traced on batch-1, SSD300, C=21: a chunk of pass 1 took 3.5 us on
      // either thread, 2 us within a whole image on one thread, and a run on 2 threads took longer than on 1).
      // Forward + backward, batch 1, 2 threads, alternated binaries on the AVX-512 Zen 5, median of the rounds'
      // best: C=21 0.0695 -> 0.0598 ms (one thread: 0.066), C=81 0.114 -> 0.099, SSD512 C=21 0.175 -> 0.154.
      const int chunks = loss_chunks(shape_.num_priors);
      const int units = static_cast<int>(split_units(shape_));
      for (int b = 0; b < B; ++b) items_left_[b].store(chunks + 1, std::memory_order_relaxed);
      for (int u = 0; u < 2 * units; ++u) unit_claimed_[u].store(false, std::memory_order_relaxed);
      pool_.run_phases(
          B + units,
          [&](int item, int worker) {
            int b = item;
            if (item < B) {
              match(b, worker);
            } else {
              const int u = claim_unit(unit_claimed_.get(), units, worker);
              b = u / chunks;
              loss_bounds(inputs(b, Known::nothing), outputs(b), loss_scratch_[b], u % chunks);
              flush_streaming_stores();  // the zeros before another thread's stores over some of these rows
            }
            if (items_left_[b].fetch_sub(1, std::memory_order_acq_rel) == 1)
              loss_select(config_, inputs(b, Known::matches), loss_scratch_[b]);
          },
          [&] {
            add_positives();
            for (int b = 0; b < B; ++b) items_left_[b].store(chunks, std::memory_order_relaxed);
          },
          units,
          [&](int, int worker, const auto& wait_for_first) {
            wait_for_first();
            const int u = claim_unit(unit_claimed_.get() + units, units, worker);
            const int b = u / chunks;
            loss_exact(config_, inputs(b, Known::all), outputs(b), loss_scratch_[b], u % chunks);
            if (items_left_[b].fetch_sub(1, std::memory_order_acq_rel) == 1)
              image_loss_[b] = loss_finish(config_, inputs(b, Known::all), outputs(b), loss_scratch_[b]);
          });
    }

    LossTerms loss;
    for (int b = 0; b < B; ++b) {
      out.positives[b] = image_match_[b].positives;
      out.unmatched_ground_truths[b] = image_match_[b].unmatched_ground_truths;
      loss.num_positives += image_match_[b].positives;
    }
    if (!forward) return {};

    for (int b = 0; b < B; ++b) {
      if (!image_loss_[b].non_finite_prediction) continue;
      // The fused scan only knows that an image holds a bad value; the shared validator names the first one
      // exactly as every other backend does.
      if (Status s = validate_predictions(shape_, pred, true); !s) return s;
      return Status(ErrorCode::internal, fmt::format("simd: image {} flagged a non-finite prediction that the "
                                                     "validator does not find", b));
    }
    for (int b = 0; b < B; ++b) {
      out.mined_negatives[b] = image_loss_[b].mined;
      loss.conf_sum += image_loss_[b].conf_sum;
      loss.loc_sum += image_loss_[b].loc_sum;
    }
    if (loss.num_positives > 0) {
      const double n = static_cast<double>(loss.num_positives);
      loss.conf = loss.conf_sum / n;
      loss.loc = loss.loc_sum / n;
      loss.total = (loss.conf_sum + static_cast<double>(config_.alpha) * loss.loc_sum) / n;
    }
    *out.loss = loss;
    return {};
  }

 private:
  ProblemShape shape_;
  Config config_;
  PlanOptions options_;
  PriorLayout priors_;
  std::vector<ImageMatch> image_match_;
  std::vector<ImageLoss> image_loss_;
  // One of `units` (image, chunk) units of a pass, claimed by `worker` from its own share first (claim_in_share), so a
  // chunk's rows stay in the cache of the core whose worker read them in the last run and in pass 1 of this one. The
  // pool hands out as many items as there are units, each claims one, so every call finds one.
  int claim_unit(std::atomic<bool>* claimed, int units, int worker) const {
    return ImagePool::claim_in_share(units, worker, pool_.threads(), [&](int u) -> auto& { return claimed[u]; });
  }

  const bool split_;                                // fewer images than threads: the loss is split by chunks
  std::unique_ptr<std::atomic<int>[]> items_left_;  // [B] split_ only: the image's items not yet done in this pool run
  std::unique_ptr<std::atomic<bool>[]> unit_claimed_;  // [2][B * chunks] split_ only: claim_unit's flags, per pass
  std::unique_ptr<ImagePool::PairSlot[]> image_pairs_;  // [B] !split_ only: the image's matching and loss this run
  std::vector<MatchScratch> match_scratch_;  // split_: one per image, else one per thread
  std::vector<LossScratch> loss_scratch_;    // likewise
  ImagePool pool_;                           // last: its workers stop before the scratch goes away
};

class SimdBackend final : public Backend {
 public:
  std::string_view name() const noexcept override { return "simd"; }
  std::string_view description() const noexcept override {
    static const std::string text = fmt::format(
        "CPU, Highway {} vectors, a thread per image (or per chunk of rows when the batch is smaller): "
        "block-skipping IoU, incremental bipartite, fused loss pass",
        hwy::TargetName(HWY_STATIC_TARGET));
    return text;
  }
  Status available() const override {
    if ((hwy::SupportedTargets() & HWY_STATIC_TARGET) == 0)
      return Status(ErrorCode::unavailable, fmt::format("built for {} (-march=native), which this CPU lacks",
                                                        hwy::TargetName(HWY_STATIC_TARGET)));
    return {};
  }
  Result<std::unique_ptr<Plan>> prepare(const ProblemShape& shape, std::span<const float> priors,
                                        const Config& config, const PlanOptions& options) const override {
    if (Status s = check_plan(shape, config, options); !s) return s;
    if (Status s = validate_priors(priors, shape.num_priors); !s) return s;
    const int threads = threads_for(shape, options);
    return std::unique_ptr<Plan>(std::make_unique<SimdPlan>(shape, priors, config, threads, options));
  }
  // Each structure states the bytes it allocates from the lengths its constructor uses; here they are added up: the
  // prior layout, one MatchScratch and LossScratch per thread (or per image when the batch is smaller), the per-image
  // results (and their matching flags or split counters). unit_limits pins the sum against what prepare() allocates.
  Result<PlanMemory> plan_memory(const ProblemShape& shape, const Config& config,
                                 const PlanOptions& options) const override {
    if (Status s = check_plan(shape, config, options); !s) return s;
    PlanMemory m = caller_memory(shape);
    const uint64_t layout = PriorLayout::bytes(shape.num_priors);
    const uint64_t match = MatchScratch::bytes(shape.num_priors, shape.max_ground_truths);
    const uint64_t loss = LossScratch::bytes(shape.num_priors);
    const int threads = threads_for(shape, options);
    const bool split = splits_images(shape, threads);
    const uint64_t counters = split ? sizeof(std::atomic<int>) : sizeof(ImagePool::PairSlot);
    const uint64_t claims = split ? 2 * split_units(shape) * sizeof(std::atomic<bool>) : 0;
    const uint64_t images = static_cast<uint64_t>(shape.batch) * (sizeof(ImageMatch) + sizeof(ImageLoss) + counters);
    const uint64_t scratch = static_cast<uint64_t>(std::min(threads, shape.batch));
    m.workspace = layout + images + claims + scratch * (match + loss);
    return m;
  }

 private:
  // loss.cpp forms logit offsets within a group of kLossRowGroup rows in int32 vector lanes, and PriorLayout pads P to
  // whole blocks in an int: shapes past either are refused here rather than indexed wrongly.
  static Status check_plan(const ProblemShape& shape, const Config& config, const PlanOptions& options) {
    if (Status s = shape.validate(); !s) return s;
    if (Status s = config.validate(); !s) return s;
    if (options.num_threads < 0)
      return Status(ErrorCode::invalid_config, fmt::format("num_threads must be >= 0, got {}", options.num_threads));
    constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
    if (int64_t{kLossRowGroup} * shape.num_classes > kInt32Max)
      return Status(ErrorCode::shape_mismatch,
                    fmt::format("simd: C = {} classes, at most {} (the loss indexes {} rows of logits in int32 lanes)",
                                shape.num_classes, kInt32Max / kLossRowGroup, kLossRowGroup));
    if (static_cast<int64_t>(shape.num_priors) + kBlock > kInt32Max)
      return Status(ErrorCode::shape_mismatch,
                    fmt::format("simd: P = {} priors, at most {} (padded to blocks of {} in int)", shape.num_priors,
                                kInt32Max - kBlock, kBlock));
    return {};
  }
  // The unit of work is an image, or a chunk of an image's rows when the batch is smaller than the thread count:
  // threads beyond the chunks would only wait.
  static int threads_for(const ProblemShape& shape, const PlanOptions& options) {
    const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const int64_t items = static_cast<int64_t>(shape.batch) * loss_chunks(shape.num_priors);
    return static_cast<int>(std::min<int64_t>(options.num_threads > 0 ? options.num_threads : cores, items));
  }
};

}  // namespace

const Backend& backend() noexcept {
  static const SimdBackend instance;
  return instance;
}

}  // namespace multibox::simd
