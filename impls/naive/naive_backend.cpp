// Literal implementation of DESIGN.md sections 2-5. Loops are written the way the contract is worded
// (the bipartite stage is the O(G^2 * P) greedy loop), and every sum is accumulated in double.
#include "naive/naive_backend.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/math.hpp"

namespace multibox::naive {
namespace {

using core::Box;

class NaivePlan final : public Plan {
 public:
  NaivePlan(const ProblemShape& shape, std::span<const float> priors, const Config& config,
            const PlanOptions& options)
      : shape_(shape), config_(config), options_(options), priors_(priors.begin(), priors.end()) {
    const int P = shape.num_priors;
    prior_boxes_.resize(P);
    for (int p = 0; p < P; ++p) prior_boxes_[p] = core::prior_corners(prior(p)[0], prior(p)[1], prior(p)[2], prior(p)[3]);
    owner_.resize(P);
    taken_.resize(P);
    ce_.resize(P);
    negatives_.reserve(P);
  }

  const ProblemShape& shape() const noexcept override { return shape_; }
  const Config& config() const noexcept override { return config_; }

  Status run(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out) override {
    if (Status s = validate_ground_truths(shape_, gt); !s) return s;
    if (Status s = validate_outputs(shape_, gt, stage, out); !s) return s;
    if (stage >= Stage::forward) {
      if (Status s = validate_predictions(shape_, pred, options_.check_prediction_values); !s) return s;
    }

    for (int b = 0; b < shape_.batch; ++b) {
      match_image(b, gt, out);
      if (stage >= Stage::encode) encode_image(b, gt, out);
    }
    if (stage < Stage::forward) return {};

    LossTerms loss;
    for (int b = 0; b < shape_.batch; ++b) loss_image(b, gt, pred, out, loss);
    if (loss.num_positives > 0) {
      const double n = static_cast<double>(loss.num_positives);
      loss.conf = loss.conf_sum / n;
      loss.loc = loss.loc_sum / n;
      loss.total = (loss.conf_sum + static_cast<double>(config_.alpha) * loss.loc_sum) / n;
    }
    *out.loss = loss;
    if (stage >= Stage::backward) backward(gt, pred, out, loss.num_positives);
    return {};
  }

 private:
  const float* prior(int p) const { return &priors_[static_cast<size_t>(p) * 4]; }
  size_t row(int b, int p) const { return static_cast<size_t>(b) * shape_.num_priors + p; }

  void match_image(int b, const GroundTruthView& gt, const OutputView& out) {
    const int P = shape_.num_priors;
    const int G = gt.count(b);
    const int32_t first = gt.offsets[b];

    iou_.resize(static_cast<size_t>(G) * P);
    for (int g = 0; g < G; ++g) {
      const float* v = &gt.boxes[static_cast<size_t>(first + g) * 4];
      const Box box{v[0], v[1], v[2], v[3]};
      for (int p = 0; p < P; ++p) iou_[static_cast<size_t>(g) * P + p] = core::iou(box, prior_boxes_[p]);
    }
    auto iou = [&](int g, int p) { return iou_[static_cast<size_t>(g) * P + p]; };

    // Stage 1: forced matches. owner_[p] is the GT forced onto prior p, or -1.
    std::fill(owner_.begin(), owner_.end(), -1);
    for (int g = 0; g < G; ++g) out.forced_prior[first + g] = -1;
    if (config_.forced_match == ForcedMatch::bipartite) {
      // Repeatedly take the globally best (GT, prior) pair among those still free; scanning g then p with a strict
      // '>' keeps the lowest GT index, then the lowest prior index, on ties. Only IoU > 0 is eligible.
      std::fill(taken_.begin(), taken_.end(), 0);
      gt_done_.assign(G, 0);
      for (int round = 0; round < G; ++round) {
        float best = 0.0f;
        int best_g = -1, best_p = -1;
        for (int g = 0; g < G; ++g) {
          if (gt_done_[g]) continue;
          for (int p = 0; p < P; ++p) {
            if (taken_[p]) continue;
            if (iou(g, p) > best) best = iou(g, p), best_g = g, best_p = p;
          }
        }
        if (best_g < 0) break;
        gt_done_[best_g] = 1;
        taken_[best_p] = 1;
        owner_[best_p] = best_g;
        out.forced_prior[first + best_g] = best_p;
      }
    } else {
      // Each GT takes its argmax prior (lowest index on ties); on a shared prior the highest GT index wins, as in
      // torchvision's SSDMatcher where the later assignment overwrites the earlier one.
      candidate_.assign(G, -1);
      for (int g = 0; g < G; ++g) {
        float best = 0.0f;
        for (int p = 0; p < P; ++p)
          if (iou(g, p) > best) best = iou(g, p), candidate_[g] = p;
        if (candidate_[g] >= 0) owner_[candidate_[g]] = g;
      }
      for (int g = 0; g < G; ++g)
        if (candidate_[g] >= 0 && owner_[candidate_[g]] == g) out.forced_prior[first + g] = candidate_[g];
    }

    // Stage 2: threshold matches for every prior not forced.
    const float pos = config_.pos_threshold;
    const float neg = config_.negative_threshold();
    int positives = 0;
    has_prior_.assign(G, 0);
    for (int p = 0; p < P; ++p) {
      int32_t match;
      if (owner_[p] >= 0) {
        match = owner_[p];
      } else {
        float best = 0.0f;
        int best_g = -1;
        for (int g = 0; g < G; ++g)
          if (iou(g, p) > best) best = iou(g, p), best_g = g;  // strict '>': lowest GT index on ties
        if (best >= pos) match = best_g;
        else if (best < neg) match = kNegative;
        else match = kIgnored;
      }
      out.matches[row(b, p)] = match;
      if (match >= 0) {
        ++positives;
        has_prior_[match] = 1;
      }
    }
    out.positives[b] = positives;
    out.unmatched_ground_truths[b] = static_cast<int32_t>(std::count(has_prior_.begin(), has_prior_.end(), 0));
  }

  void encode_image(int b, const GroundTruthView& gt, const OutputView& out) const {
    for (int p = 0; p < shape_.num_priors; ++p) {
      float* t = &out.targets[row(b, p) * 4];
      const int32_t m = out.matches[row(b, p)];
      if (m < 0) {
        std::fill(t, t + 4, 0.0f);
        continue;
      }
      const float* v = &gt.boxes[static_cast<size_t>(gt.offsets[b] + m) * 4];
      const core::Encoded e = core::encode(Box{v[0], v[1], v[2], v[3]}, prior(p)[0], prior(p)[1], prior(p)[2],
                                           prior(p)[3], config_.variance_xy, config_.variance_wh);
      std::copy(e.v, e.v + 4, t);
    }
  }

  int32_t target_class(int b, int p, const GroundTruthView& gt, const OutputView& out) const {
    const int32_t m = out.matches[row(b, p)];
    return m >= 0 ? gt.labels[gt.offsets[b] + m] : 0;
  }

  void loss_image(int b, const GroundTruthView& gt, const PredictionView& pred, const OutputView& out,
                  LossTerms& loss) {
    const int P = shape_.num_priors;
    const int C = shape_.num_classes;
    negatives_.clear();
    double conf_sum = 0, loc_sum = 0;
    for (int p = 0; p < P; ++p) {
      out.mined[row(b, p)] = 0;
      const int32_t m = out.matches[row(b, p)];
      if (m == kIgnored) continue;
      const float* logits = &pred.conf[row(b, p) * C];
      ce_[p] = core::logsumexp<double>(logits, C) - static_cast<double>(logits[target_class(b, p, gt, out)]);
      if (m == kNegative) {
        negatives_.push_back(p);
        continue;
      }
      conf_sum += ce_[p];
      for (int k = 0; k < 4; ++k) {
        const double d = static_cast<double>(pred.loc[row(b, p) * 4 + k]) - out.targets[row(b, p) * 4 + k];
        loc_sum += core::smooth_l1<double>(d, config_.smooth_l1_beta);
      }
    }

    // Hard negative mining: the K_b negatives of largest CE, lowest prior index first on ties.
    std::sort(negatives_.begin(), negatives_.end(),
              [&](int32_t a, int32_t c) { return core::harder_negative(ce_[a], a, ce_[c], c); });
    const int64_t quota = core::mining_quota(out.positives[b], static_cast<int64_t>(negatives_.size()),
                                             config_.neg_pos_ratio, config_.min_negatives_per_image);
    for (int64_t k = 0; k < quota; ++k) {
      out.mined[row(b, negatives_[k])] = 1;
      conf_sum += ce_[negatives_[k]];
    }
    out.mined_negatives[b] = static_cast<int32_t>(quota);
    loss.conf_sum += conf_sum;
    loss.loc_sum += loc_sum;
    loss.num_positives += out.positives[b];
  }

  void backward(const GroundTruthView& gt, const PredictionView& pred, const OutputView& out,
                int64_t num_positives) const {
    std::fill(out.grad_conf.begin(), out.grad_conf.end(), 0.0f);
    std::fill(out.grad_loc.begin(), out.grad_loc.end(), 0.0f);
    if (num_positives == 0) return;  // L = 0 by definition, so every gradient is 0
    const double n = static_cast<double>(num_positives);
    const int C = shape_.num_classes;
    for (int b = 0; b < shape_.batch; ++b) {
      for (int p = 0; p < shape_.num_priors; ++p) {
        const int32_t m = out.matches[row(b, p)];
        if (m < 0 && !out.mined[row(b, p)]) continue;
        const float* logits = &pred.conf[row(b, p) * C];
        float* grad = &out.grad_conf[row(b, p) * C];
        const double lse = core::logsumexp<double>(logits, C);
        const int32_t y = target_class(b, p, gt, out);
        for (int c = 0; c < C; ++c) {
          const double softmax = std::exp(static_cast<double>(logits[c]) - lse);
          grad[c] = static_cast<float>((softmax - (c == y ? 1.0 : 0.0)) / n);
        }
        if (m < 0) continue;
        for (int k = 0; k < 4; ++k) {
          const size_t i = row(b, p) * 4 + k;
          const double d = static_cast<double>(pred.loc[i]) - out.targets[i];
          out.grad_loc[i] = static_cast<float>(static_cast<double>(config_.alpha) *
                                               core::smooth_l1_grad<double>(d, config_.smooth_l1_beta) / n);
        }
      }
    }
  }

  ProblemShape shape_;
  Config config_;
  PlanOptions options_;
  std::vector<float> priors_;
  std::vector<Box> prior_boxes_;
  // Scratch, sized once at plan time where the shape allows, grown to the largest image otherwise.
  std::vector<float> iou_;
  std::vector<int32_t> owner_, candidate_, negatives_;
  std::vector<uint8_t> taken_, gt_done_, has_prior_;
  std::vector<double> ce_;
};

class NaiveBackend final : public Backend {
 public:
  std::string_view name() const noexcept override { return "naive"; }
  std::string_view description() const noexcept override {
    return "scalar reference: literal greedy matching, double accumulation (the oracle)";
  }
  Status available() const override { return {}; }
  Result<std::unique_ptr<Plan>> prepare(const ProblemShape& shape, std::span<const float> priors,
                                        const Config& config, const PlanOptions& options) const override {
    if (Status s = shape.validate(); !s) return s;
    if (Status s = config.validate(); !s) return s;
    if (Status s = validate_priors(priors, shape.num_priors); !s) return s;
    return std::unique_ptr<Plan>(std::make_unique<NaivePlan>(shape, priors, config, options));
  }
  // NaivePlan's members: per prior its centre-size copy and corners (16 + 16 B), owner_, negatives_ (4 + 4), ce_
  // (8), taken_ (1); per ground truth gt_done_, has_prior_, candidate_ (1 + 1 + 4); and iou_, which grows to the
  // largest image's G x P floats: at most every ground truth of the batch in one image.
  Result<PlanMemory> plan_memory(const ProblemShape& shape, const Config& config,
                                 const PlanOptions&) const override {
    if (Status s = shape.validate(); !s) return s;
    if (Status s = config.validate(); !s) return s;
    PlanMemory m = caller_memory(shape);
    const uint64_t P = static_cast<uint64_t>(shape.num_priors), G = static_cast<uint64_t>(shape.max_ground_truths);
    m.workspace = saturating_add(P * (16 + 16 + 4 + 4 + 8 + 1) + G * (1 + 1 + 4),
                                 saturating_mul(G * P, sizeof(float)));
    return m;
  }
};

}  // namespace

const Backend& backend() noexcept {
  static const NaiveBackend instance;
  return instance;
}

}  // namespace multibox::naive
