#include "broken_backends.hpp"

#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/math.hpp"
#include "multibox/registry.hpp"

namespace multibox::proptest {
namespace {

// What a post-processing step may look at: the problem and the inputs of the run it corrupts.
struct RunContext {
  const ProblemShape& shape;
  const Config& config;  // the configuration the caller asked for
  const std::vector<float>& priors;
  const GroundTruthView& gt;
  const PredictionView& pred;
  Stage stage;
};

using ConfigEdit = std::function<Config(const Config&)>;
using PostProcess = std::function<void(const RunContext&, const OutputView&)>;

class BrokenPlan final : public Plan {
 public:
  BrokenPlan(std::unique_ptr<Plan> inner, const ProblemShape& shape, const Config& config, std::span<const float> priors,
             PostProcess post)
      : inner_(std::move(inner)), shape_(shape), config_(config), priors_(priors.begin(), priors.end()),
        post_(std::move(post)) {}
  Status run(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out) override {
    if (Status s = inner_->run(gt, pred, stage, out); !s) return s;
    if (post_) post_(RunContext{shape_, config_, priors_, gt, pred, stage}, out);
    return {};
  }
  const ProblemShape& shape() const noexcept override { return shape_; }
  const Config& config() const noexcept override { return config_; }

 private:
  std::unique_ptr<Plan> inner_;
  ProblemShape shape_;
  Config config_;
  std::vector<float> priors_;
  PostProcess post_;
};

class BrokenBackend final : public Backend {
 public:
  BrokenBackend(std::string name, std::string description, ConfigEdit edit, PostProcess post)
      : name_(std::move(name)), description_(std::move(description)), edit_(std::move(edit)), post_(std::move(post)) {}
  std::string_view name() const noexcept override { return name_; }
  std::string_view description() const noexcept override { return description_; }
  Status available() const override { return {}; }
  Result<std::unique_ptr<Plan>> prepare(const ProblemShape& shape, std::span<const float> priors, const Config& config,
                                        const PlanOptions& options) const override {
    auto inner = reference_backend().prepare(shape, priors, edit_ ? edit_(config) : config, options);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<Plan>(
        std::make_unique<BrokenPlan>(std::move(inner.value()), shape, config, priors, post_));
  }

 private:
  std::string name_, description_;
  ConfigEdit edit_;
  PostProcess post_;
};

double float_logsumexp_without_max(const float* row, int n) {
  float sum = 0.0f;
  for (int c = 0; c < n; ++c) sum += std::exp(row[c]);  // overflows to inf for logits beyond ~88
  return std::log(sum);
}

void refresh_totals(LossTerms& loss, float alpha) {
  if (loss.num_positives == 0) return;
  const double n = static_cast<double>(loss.num_positives);
  loss.conf = loss.conf_sum / n;
  loss.loc = loss.loc_sum / n;
  loss.total = (loss.conf_sum + static_cast<double>(alpha) * loss.loc_sum) / n;
}

int label_of(const RunContext& ctx, const OutputView& out, int b, int p) {
  const int32_t m = out.matches[static_cast<size_t>(b) * ctx.shape.num_priors + p];
  return m >= 0 ? ctx.gt.labels[ctx.gt.offsets[b] + m] : 0;
}

}  // namespace

const Backend& broken_bipartite_last_gt_wins() {
  static const BrokenBackend backend(
      "broken-bipartite-last-gt-wins", "bipartite mode runs argmax: on a shared best prior the last ground truth wins",
      [](const Config& c) {
        Config edited = c;
        edited.forced_match = ForcedMatch::argmax;
        return edited;
      },
      nullptr);
  return backend;
}

const Backend& broken_mining_ignores_cap() {
  static const BrokenBackend backend(
      "broken-mining-ignores-cap", "K_b = max(min_neg, ratio * P_b) uncapped; the shortfall re-counts positives",
      nullptr, [](const RunContext& ctx, const OutputView& out) {
        if (ctx.stage < Stage::forward) return;
        const int P = ctx.shape.num_priors, C = ctx.shape.num_classes;
        for (int b = 0; b < ctx.shape.batch; ++b) {
          const int64_t wanted = std::max<int64_t>(ctx.config.min_negatives_per_image,
                                                   static_cast<int64_t>(ctx.config.neg_pos_ratio) * out.positives[b]);
          int64_t missing = wanted - out.mined_negatives[b];
          out.mined_negatives[b] = static_cast<int32_t>(wanted);
          for (int p = 0; p < P && missing > 0; ++p) {
            const size_t i = static_cast<size_t>(b) * P + p;
            if (out.matches[i] < 0) continue;
            out.mined[i] = 1;
            const float* row = &ctx.pred.conf[i * C];
            out.loss->conf_sum += core::logsumexp<double>(row, C) - row[label_of(ctx, out, b, p)];
            --missing;
          }
        }
        refresh_totals(*out.loss, ctx.config.alpha);
      });
  return backend;
}

const Backend& broken_threshold_strict() {
  static const BrokenBackend backend(
      "broken-threshold-strict", "a prior is positive only when its IoU is strictly above pos_threshold",
      [](const Config& c) {
        // IoU > t is IoU >= nextafter(t): the same code with the threshold one ulp higher. The negative threshold
        // stays where it was so only the positive rule changes.
        Config edited = c;
        edited.neg_threshold = c.negative_threshold();
        if (c.pos_threshold < 1.0f) edited.pos_threshold = std::nextafter(c.pos_threshold, 2.0f);
        return edited;
      },
      nullptr);
  return backend;
}

const Backend& broken_logsumexp_without_max() {
  static const BrokenBackend backend(
      "broken-logsumexp-without-max", "cross-entropy and softmax in float without subtracting the row maximum",
      nullptr, [](const RunContext& ctx, const OutputView& out) {
        if (ctx.stage < Stage::forward) return;
        const int P = ctx.shape.num_priors, C = ctx.shape.num_classes;
        double conf_sum = 0;
        const float n = static_cast<float>(out.loss->num_positives);
        for (int b = 0; b < ctx.shape.batch; ++b)
          for (int p = 0; p < P; ++p) {
            const size_t i = static_cast<size_t>(b) * P + p;
            if (out.matches[i] < 0 && !out.mined[i]) continue;
            const float* row = &ctx.pred.conf[i * C];
            const int y = label_of(ctx, out, b, p);
            const double lse = float_logsumexp_without_max(row, C);
            conf_sum += lse - row[y];
            if (ctx.stage < Stage::backward || out.loss->num_positives == 0) continue;
            float sum = 0.0f;
            for (int c = 0; c < C; ++c) sum += std::exp(row[c]);
            for (int c = 0; c < C; ++c) out.grad_conf[i * C + c] = (std::exp(row[c]) / sum - (c == y ? 1.0f : 0.0f)) / n;
          }
        out.loss->conf_sum = conf_sum;
        refresh_totals(*out.loss, ctx.config.alpha);
      });
  return backend;
}

const Backend& broken_gradient_sign() {
  static const BrokenBackend backend(
      "broken-gradient-sign", "dL/dconf of class 1 has the wrong sign", nullptr,
      [](const RunContext& ctx, const OutputView& out) {
        if (ctx.stage < Stage::backward) return;
        const size_t C = static_cast<size_t>(ctx.shape.num_classes);
        for (size_t i = 1; i < out.grad_conf.size(); i += C) out.grad_conf[i] = -out.grad_conf[i];
      });
  return backend;
}

std::span<const Backend* const> broken_backends() {
  static const std::array<const Backend*, 5> list = {&broken_bipartite_last_gt_wins(), &broken_mining_ignores_cap(),
                                                     &broken_threshold_strict(), &broken_logsumexp_without_max(),
                                                     &broken_gradient_sign()};
  return list;
}

}  // namespace multibox::proptest
