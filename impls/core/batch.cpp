#include "multibox/batch.hpp"

#include <cmath>

#include <fmt/format.h>

#include "math.hpp"

namespace multibox {

const char* to_string(Stage stage) noexcept {
  switch (stage) {
    case Stage::match: return "match";
    case Stage::encode: return "encode";
    case Stage::forward: return "forward";
    case Stage::backward: return "backward";
  }
  return "unknown";
}

BatchOutputs::BatchOutputs(const ProblemShape& shape, int total_ground_truths, Stage upto) {
  const size_t bp = static_cast<size_t>(shape.batch) * shape.num_priors;
  matches.assign(bp, kNegative);
  forced_prior.assign(static_cast<size_t>(total_ground_truths), -1);
  positives.assign(shape.batch, 0);
  unmatched_ground_truths.assign(shape.batch, 0);
  if (upto >= Stage::encode) targets.assign(bp * 4, 0.0f);
  if (upto >= Stage::forward) {
    mined.assign(bp, 0);
    mined_negatives.assign(shape.batch, 0);
  }
  if (upto >= Stage::backward) {
    grad_conf.assign(bp * shape.num_classes, 0.0f);
    grad_loc.assign(bp * 4, 0.0f);
  }
}

OutputView BatchOutputs::view() {
  return {matches, forced_prior, positives, unmatched_ground_truths, targets, mined, mined_negatives,
          grad_conf, grad_loc, &loss};
}

namespace {

Status invalid(std::string message) { return {ErrorCode::invalid_input, std::move(message)}; }
Status mismatch(std::string message) { return {ErrorCode::shape_mismatch, std::move(message)}; }

const char* const kCoordName[4] = {"xmin", "ymin", "xmax", "ymax"};

}  // namespace

Status validate_priors(std::span<const float> priors, int num_priors) {
  if (priors.size() != static_cast<size_t>(num_priors) * 4)
    return mismatch(fmt::format("priors hold {} floats, expected {} priors x 4 = {}", priors.size(), num_priors,
                                static_cast<size_t>(num_priors) * 4));
  static const char* const kName[4] = {"cx", "cy", "w", "h"};
  for (int p = 0; p < num_priors; ++p) {
    const float* v = &priors[static_cast<size_t>(p) * 4];
    for (int k = 0; k < 4; ++k)
      if (!std::isfinite(v[k])) return invalid(fmt::format("prior {}: {} is {}", p, kName[k], v[k]));
    if (!(v[2] > 0.0f) || !(v[3] > 0.0f))
      return invalid(fmt::format("prior {}: width and height must be > 0, got w={} h={}", p, v[2], v[3]));
    if (!(core::area(core::prior_corners(v[0], v[1], v[2], v[3])) > 0.0f))
      return invalid(fmt::format("prior {}: area underflows to 0 (w={} h={})", p, v[2], v[3]));
  }
  return {};
}

Status validate_ground_truth_sizes(const ProblemShape& shape, const GroundTruthView& gt) {
  if (gt.offsets.size() != static_cast<size_t>(shape.batch) + 1)
    return mismatch(fmt::format("ground-truth offsets hold {} entries, expected batch + 1 = {}", gt.offsets.size(),
                                shape.batch + 1));
  const size_t total = gt.labels.size();
  if (gt.boxes.size() != total * 4)
    return mismatch(fmt::format("ground-truth boxes hold {} floats, expected {} labels x 4 = {}", gt.boxes.size(),
                                total, total * 4));
  if (total > static_cast<size_t>(shape.max_ground_truths))
    return mismatch(fmt::format("batch has {} ground truths but the plan was prepared for at most {}", total,
                                shape.max_ground_truths));
  return {};
}

Status validate_ground_truths(const ProblemShape& shape, const GroundTruthView& gt) {
  if (Status s = validate_ground_truth_sizes(shape, gt); !s) return s;
  if (gt.offsets[0] != 0) return invalid(fmt::format("ground-truth offsets[0] must be 0, got {}", gt.offsets[0]));
  for (int b = 0; b < shape.batch; ++b)
    if (gt.offsets[b + 1] < gt.offsets[b])
      return invalid(fmt::format("ground-truth offsets decrease at image {}: offsets[{}] = {} > offsets[{}] = {}", b,
                                 b, gt.offsets[b], b + 1, gt.offsets[b + 1]));
  const size_t total = gt.labels.size();
  if (static_cast<size_t>(gt.offsets[shape.batch]) != total)
    return mismatch(fmt::format("ground-truth offsets end at {} but there are {} labels", gt.offsets[shape.batch],
                                total));
  for (int b = 0; b < shape.batch; ++b) {
    for (int32_t i = gt.offsets[b]; i < gt.offsets[b + 1]; ++i) {
      const int g = i - gt.offsets[b];
      const float* v = &gt.boxes[static_cast<size_t>(i) * 4];
      for (int k = 0; k < 4; ++k)
        if (!std::isfinite(v[k]))
          return invalid(fmt::format("image {}, ground truth {}: {} is {}", b, g, kCoordName[k], v[k]));
      if (!(v[2] > v[0]))
        return invalid(fmt::format("image {}, ground truth {}: xmax ({}) <= xmin ({})", b, g, v[2], v[0]));
      if (!(v[3] > v[1]))
        return invalid(fmt::format("image {}, ground truth {}: ymax ({}) <= ymin ({})", b, g, v[3], v[1]));
      if (!(core::area(core::Box{v[0], v[1], v[2], v[3]}) > 0.0f))
        return invalid(fmt::format("image {}, ground truth {}: area underflows to 0 ({} x {})", b, g, v[2] - v[0],
                                   v[3] - v[1]));
      const int32_t label = gt.labels[i];
      if (label < 1 || label >= shape.num_classes)
        return invalid(fmt::format("image {}, ground truth {}: label {} is outside [1, {}] (class 0 is background)",
                                   b, g, label, shape.num_classes - 1));
    }
  }
  return {};
}

Status validate_predictions(const ProblemShape& shape, const PredictionView& pred, bool check_values) {
  const size_t rows = static_cast<size_t>(shape.batch) * shape.num_priors;
  const size_t C = static_cast<size_t>(shape.num_classes);
  if (pred.conf.size() != rows * C)
    return mismatch(fmt::format("conf holds {} floats, expected B x P x C = {} x {} x {} = {}", pred.conf.size(),
                                shape.batch, shape.num_priors, C, rows * C));
  if (pred.loc.size() != rows * 4)
    return mismatch(fmt::format("loc holds {} floats, expected B x P x 4 = {} x {} x 4 = {}", pred.loc.size(),
                                shape.batch, shape.num_priors, rows * 4));
  if (!check_values) return {};
  for (size_t i = 0; i < pred.conf.size(); ++i)
    if (!std::isfinite(pred.conf[i])) {
      const size_t row = i / C;
      return invalid(fmt::format("conf[image {}][prior {}][class {}] is {}", row / shape.num_priors,
                                 row % shape.num_priors, i % C, pred.conf[i]));
    }
  for (size_t i = 0; i < pred.loc.size(); ++i)
    if (!std::isfinite(pred.loc[i])) {
      const size_t row = i / 4;
      return invalid(fmt::format("loc[image {}][prior {}][{}] is {}", row / shape.num_priors,
                                 row % shape.num_priors, i % 4, pred.loc[i]));
    }
  return {};
}

Status validate_outputs(const ProblemShape& shape, const GroundTruthView& gt, Stage stage, const OutputView& out) {
  const size_t bp = static_cast<size_t>(shape.batch) * shape.num_priors;
  auto check = [](const char* name, size_t got, size_t want) -> Status {
    if (got == want) return {};
    return mismatch(fmt::format("output '{}' holds {} elements, expected {}", name, got, want));
  };
  Status s;
  if (!(s = check("matches", out.matches.size(), bp))) return s;
  if (!(s = check("forced_prior", out.forced_prior.size(), gt.labels.size()))) return s;
  if (!(s = check("positives", out.positives.size(), shape.batch))) return s;
  if (!(s = check("unmatched_ground_truths", out.unmatched_ground_truths.size(), shape.batch))) return s;
  if (stage >= Stage::encode && !(s = check("targets", out.targets.size(), bp * 4))) return s;
  if (stage >= Stage::forward) {
    if (!(s = check("mined", out.mined.size(), bp))) return s;
    if (!(s = check("mined_negatives", out.mined_negatives.size(), shape.batch))) return s;
    if (out.loss == nullptr) return mismatch("output 'loss' is null but the forward stage was requested");
  }
  if (stage >= Stage::backward) {
    if (!(s = check("grad_conf", out.grad_conf.size(), bp * shape.num_classes))) return s;
    if (!(s = check("grad_loc", out.grad_loc.size(), bp * 4))) return s;
  }
  return {};
}

}  // namespace multibox
