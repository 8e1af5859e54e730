// The named workloads of issue 4: synthetic scenes on the standard prior sets, adversarial scenes aimed at the
// tie-breaking rules of DESIGN.md, and the COCO128 annotations. Everything is drawn from datasets::Rng streams
// derived from (seed, purpose, image), with distributions written here rather than the standard library's, so a
// seed gives the same bytes with any C++ standard library (only libm's log/exp/pow/sqrt enter the values).
#include "multibox/workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "core/math.hpp"
#include "multibox/coco.hpp"
#include "multibox/priors.hpp"
#include "random.hpp"

#ifndef MULTIBOX_SHARED_DATASETS
#define MULTIBOX_SHARED_DATASETS ""
#endif

namespace multibox {

using datasets::derive_seed;
using datasets::Rng;

namespace {

// Purposes of the random streams (see derive_seed).
enum Stream : uint64_t { kBoxStream = 1, kPredictionStream = 2, kAdversarialStream = 3 };

constexpr const char* kDense100kPriors = "grid:105x105:0.05,0.15,0.4:1,2,0.5";  // 99225 anchors

struct Object {
  core::Box box;
  int32_t label;
};

Status invalid_config(std::string message) { return {ErrorCode::invalid_config, std::move(message)}; }

Status check_spec(const SyntheticSpec& s) {
  if (s.batch < 1) return invalid_config(fmt::format("synthetic batch must be >= 1, got {}", s.batch));
  if (s.num_classes < 2)
    return invalid_config(fmt::format("synthetic num_classes must be >= 2 (background + 1), got {}", s.num_classes));
  if (s.min_objects < 0 || s.max_objects < s.min_objects)
    return invalid_config(
        fmt::format("synthetic objects per image: need 0 <= min ({}) <= max ({})", s.min_objects, s.max_objects));
  if (!(s.min_box_size > 0) || !(s.max_box_size >= s.min_box_size) || !(s.max_box_size <= 1))
    return invalid_config(fmt::format("synthetic box sizes: need 0 < min ({}) <= max ({}) <= 1", s.min_box_size,
                                      s.max_box_size));
  return {};
}

// Corners clipped to the image, computed in double and rounded once; the caller rejects degenerate results.
core::Box clipped_box(double cx, double cy, double w, double h) {
  auto clamp01 = [](double v) { return std::clamp(v, 0.0, 1.0); };
  return {static_cast<float>(clamp01(cx - w / 2)), static_cast<float>(clamp01(cy - h / 2)),
          static_cast<float>(clamp01(cx + w / 2)), static_cast<float>(clamp01(cy + h / 2))};
}

bool is_valid(const core::Box& b) {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2) && b.x2 > b.x1 &&
         b.y2 > b.y1;
}

// A scene object: log-uniform size and aspect ratio in [1/3, 3], centre anywhere; class frequencies skewed
// towards low labels, as real data sets are dominated by a few classes (COCO's "person").
Object random_object(Rng& rng, const SyntheticSpec& spec) {
  for (;;) {
    const double side = rng.log_uniform(spec.min_box_size, spec.max_box_size);
    const double ratio = rng.log_uniform(1.0 / 3.0, 3.0);
    const double w = std::min(1.0, side * std::sqrt(ratio));
    const double h = std::min(1.0, side / std::sqrt(ratio));
    const core::Box box = clipped_box(rng.uniform(), rng.uniform(), w, h);
    const int classes = spec.num_classes - 1;
    const int32_t label = 1 + std::min(classes - 1, static_cast<int>(classes * std::pow(rng.uniform(), 1.5)));
    if (is_valid(box)) return {box, label};
  }
}

void append_image(BatchData& data, const std::vector<Object>& objects) {
  for (const Object& o : objects) {
    data.gt_boxes.insert(data.gt_boxes.end(), {o.box.x1, o.box.y1, o.box.x2, o.box.y2});
    data.gt_labels.push_back(o.label);
  }
  data.gt_offsets.push_back(static_cast<int32_t>(data.gt_labels.size()));
}

// Boxes come from their own per-image streams, so they do not depend on the logit model or on predictions at all.
BatchData synthetic_ground_truths(const SyntheticSpec& spec) {
  BatchData data;
  for (int b = 0; b < spec.batch; ++b) {
    Rng rng(derive_seed(spec.seed, kBoxStream, static_cast<uint64_t>(b)));
    const int n = static_cast<int>(rng.uniform_int(spec.min_objects, spec.max_objects));
    std::vector<Object> objects;
    objects.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) objects.push_back(random_object(rng, spec));
    append_image(data, objects);
  }
  return data;
}

Workload assemble(std::string name, std::string description, std::string prior_set, std::vector<float> priors,
                  int num_classes, BatchData data, uint64_t seed) {
  Workload w;
  w.seed = seed;
  w.name = std::move(name);
  w.description = std::move(description);
  w.prior_set = std::move(prior_set);
  w.shape.batch = data.batch();
  w.shape.num_priors = static_cast<int>(priors.size() / 4);
  w.shape.num_classes = num_classes;
  w.shape.max_ground_truths = static_cast<int>(data.gt_labels.size());
  w.priors = std::move(priors);
  w.data = std::move(data);
  return w;
}

// ---- adversarial scenes -------------------------------------------------------------------------------------

// Priors whose corners lie inside the image, so a ground truth can equal one exactly (bit for bit).
std::vector<int> inside_priors(std::span<const float> priors) {
  std::vector<int> inside;
  for (size_t p = 0; p < priors.size() / 4; ++p) {
    const core::Box c = core::prior_corners(priors[p * 4], priors[p * 4 + 1], priors[p * 4 + 2], priors[p * 4 + 3]);
    if (c.x1 >= 0 && c.y1 >= 0 && c.x2 <= 1 && c.y2 <= 1) inside.push_back(static_cast<int>(p));
  }
  return inside;
}

core::Box corners_of(std::span<const float> priors, int p) {
  return core::prior_corners(priors[p * 4], priors[p * 4 + 1], priors[p * 4 + 2], priors[p * 4 + 3]);
}

constexpr int kAdversarialKinds = 8;

std::vector<Object> adversarial_scene(int kind, Rng& rng, std::span<const float> priors,
                                      const std::vector<int>& inside, int num_classes) {
  auto label = [&] { return static_cast<int32_t>(rng.uniform_int(1, num_classes - 1)); };
  auto inside_prior = [&] { return inside[static_cast<size_t>(rng.uniform_int(0, inside.size() - 1))]; };
  std::vector<Object> objects;
  switch (kind) {
    case 0:  // IoU exactly 1, and a duplicate of it with another label: both want the same prior
      for (int i = 0; i < 2; ++i) {
        const core::Box b = corners_of(priors, inside_prior());
        objects.push_back({b, label()});
        objects.push_back({b, label()});
      }
      break;
    case 1:  // slightly shifted copies of one prior: the same argmax prior, a forced-match conflict
      for (int i = 0; i < 3; ++i) {
        const core::Box b = corners_of(priors, inside_prior());
        const float d = static_cast<float>(rng.uniform(0.002, 0.01));
        objects.push_back({{b.x1 + d, b.y1, b.x2 + d, b.y2}, label()});
        objects.push_back({{b.x1 - d, b.y1, b.x2 - d, b.y2}, label()});
      }
      break;
    case 2: {  // exact duplicates, same and different labels
      SyntheticSpec spec;
      spec.num_classes = num_classes;
      spec.min_box_size = 0.1f;
      const Object a = random_object(rng, spec);
      const Object b = random_object(rng, spec);
      objects = {a, a, a, b, {b.box, label()}};
      break;
    }
    case 3:  // an image without ground truths: every prior negative, and no positives to set K_b
      break;
    case 4: {  // more ground truths than the coarse prior set can separate
      SyntheticSpec spec;
      spec.num_classes = num_classes;
      spec.min_box_size = 0.05f;
      spec.max_box_size = 0.12f;
      for (int i = 0; i < 40; ++i) objects.push_back(random_object(rng, spec));
      break;
    }
    case 5:
      objects.push_back({{0.0f, 0.0f, 1.0f, 1.0f}, label()});
      objects.push_back({corners_of(priors, inside_prior()), label()});
      break;
    case 6: {  // tiny boxes: best IoUs far below any threshold, forced matches only
      const float x = static_cast<float>(rng.uniform(0.0, 0.99)), y = static_cast<float>(rng.uniform(0.0, 0.99));
      objects.push_back({{x, y, x + 0.002f, y + 0.002f}, label()});
      objects.push_back({{0.0f, 0.0f, 0.01f, 0.01f}, label()});
      break;
    }
    case 7: {  // centred on a cell boundary: mirror-image priors on either side tie (up to rounding)
      const int cells = 7;
      const int j = static_cast<int>(rng.uniform_int(1, cells - 1));
      const float cx = static_cast<float>(j) / cells, cy = 0.5f, half = 0.5f / cells;
      objects.push_back({{cx - half, cy - half, cx + half, cy + half}, label()});
      break;
    }
  }
  return objects;
}

// Exact logit ties on top of the trained model: rows of equal logits (CE = log C exactly, identical for every such
// prior, and hard enough to reach the mining cut) and copies of a neighbour's row.
void add_logit_ties(BatchData& data, int num_priors, int num_classes) {
  const int batch = data.batch();
  for (int b = 0; b < batch; ++b) {
    for (int p = 0; p < num_priors; ++p) {
      float* row = &data.conf[(static_cast<size_t>(b) * num_priors + p) * num_classes];
      if (b % 2 == 0 && p % 4 == 0) {
        std::fill(row, row + num_classes, 0.0f);
      } else if (b % 2 == 1 && p % 3 == 1) {
        std::copy(row - num_classes, row, row);
      }
    }
  }
}

// ---- named workloads ----------------------------------------------------------------------------------------

struct SyntheticEntry {
  const char* name;
  const char* description;
  SyntheticSpec spec;
};

SyntheticSpec spec_of(const char* prior_set, int batch, int classes, int min_obj, int max_obj, float min_size,
                      float max_size) {
  SyntheticSpec s;
  s.prior_set = prior_set;
  s.batch = batch;
  s.num_classes = classes;
  s.min_objects = min_obj;
  s.max_objects = max_obj;
  s.min_box_size = min_size;
  s.max_box_size = max_size;
  return s;
}

const std::vector<SyntheticEntry>& synthetic_entries() {
  static const std::vector<SyntheticEntry> entries = {
      {"tutorial", "tutorial 7x7x9 grid (441 priors), 21 classes, 1-4 objects, batch 8",
       spec_of("tutorial", 8, 21, 1, 4, 0.1f, 0.8f)},
      {"ssd300-voc", "SSD300 priors, VOC-like: 21 classes, 1-4 objects per image, batch 32",
       spec_of("ssd300", 32, 21, 1, 4, 0.05f, 0.95f)},
      {"ssd300-coco", "SSD300 priors, COCO-like: 81 classes, 1-13 objects (mean 7), sizes 0.01-0.95, batch 32",
       spec_of("ssd300", 32, 81, 1, 13, 0.01f, 0.95f)},
      {"ssd512-voc", "SSD512 priors, VOC-like: 21 classes, 1-4 objects per image, batch 16",
       spec_of("ssd512", 16, 21, 1, 4, 0.05f, 0.95f)},
      {"ssd512-coco", "SSD512 priors, COCO-like: 81 classes, 1-13 objects (mean 7), sizes 0.01-0.95, batch 16",
       spec_of("ssd512", 16, 81, 1, 13, 0.01f, 0.95f)},
      {"crowded", "SSD300 priors, crowded scenes: 100-160 small objects per image, 21 classes, batch 8",
       spec_of("ssd300", 8, 21, 100, 160, 0.02f, 0.15f)},
      {"dense-100k", "dense anchors: 105x105 grid x 9 = 99225 priors, 21 classes, 1-13 objects, batch 8",
       spec_of(kDense100kPriors, 8, 21, 1, 13, 0.02f, 0.9f)},
  };
  return entries;
}

constexpr const char* kAdversarialDescription =
    "tutorial priors, 21 classes, batch 8: GTs equal to priors, shared best priors, duplicates, an empty image, "
    "tiny and whole-image boxes, exact logit ties";
constexpr const char* kCocoDescription =
    "COCO128 annotations (128 images, iscrowd dropped), SSD300 priors, 81 classes, trained-model logits";

Result<Workload> make_adversarial(const WorkloadOptions& options) {
  const uint64_t seed = options.seed ? options.seed : 1;
  const int batch = options.batch ? options.batch : kAdversarialKinds;
  const int classes = 21;
  std::vector<float> priors = tutorial_priors();
  const std::vector<int> inside = inside_priors(priors);
  BatchData data;
  for (int b = 0; b < batch; ++b) {
    Rng rng(derive_seed(seed, kAdversarialStream, static_cast<uint64_t>(b)));
    append_image(data, adversarial_scene(b % kAdversarialKinds, rng, priors, inside, classes));
  }
  if (options.predictions) {
    if (Status s = fill_predictions(data, priors, classes, LogitModel::trained, seed); !s.ok()) return s;
    add_logit_ties(data, static_cast<int>(priors.size() / 4), classes);
  }
  return assemble("adversarial", kAdversarialDescription, "tutorial", std::move(priors), classes, std::move(data),
                  seed);
}

Result<Workload> make_coco128(const WorkloadOptions& options) {
  auto path = find_coco_json(options);
  if (!path) return path.status();
  CocoOptions coco_options;
  coco_options.keep_crowd = options.keep_crowd;
  auto coco = load_coco(*path, coco_options);
  if (!coco) return coco.status();
  const int images = static_cast<int>(coco->images.size());
  if (options.batch > images)
    return invalid_config(fmt::format("coco128: batch {} exceeds the {} images of {}", options.batch, images, *path));
  auto data = coco->ground_truths(options.batch);
  if (!data) return data.status();
  std::vector<float> priors = ssd300_priors();
  const int classes = coco->num_classes();
  const uint64_t seed = options.seed ? options.seed : 1;
  if (options.predictions) {
    if (Status s = fill_predictions(*data, priors, classes, LogitModel::trained, seed); !s.ok()) return s;
  }
  return assemble("coco128", fmt::format("{} ({})", kCocoDescription, *path), "ssd300", std::move(priors), classes,
                  std::move(*data), seed);
}

}  // namespace

// ---- public -------------------------------------------------------------------------------------------------

std::vector<std::string> coco_search_paths(const WorkloadOptions& options) {
  std::vector<std::string> paths;
  if (!options.coco_path.empty()) paths.push_back(options.coco_path);
  if (const char* env = std::getenv(kCocoEnvVar); env && *env) paths.emplace_back(env);
  const std::string shared = MULTIBOX_SHARED_DATASETS;
  if (!shared.empty())
    paths.push_back((std::filesystem::path(shared) / "coco128" / "instances_train2017.json").lexically_normal().string());
  return paths;
}

Result<std::string> find_coco_json(const WorkloadOptions& options) {
  const std::vector<std::string> paths = coco_search_paths(options);
  // An explicit path the user gave must exist: falling back silently would validate the wrong data.
  if (!options.coco_path.empty()) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(options.coco_path, ec)) return options.coco_path;
    return Status(ErrorCode::io_error, fmt::format("COCO annotations '{}' not found", options.coco_path));
  }
  for (const std::string& p : paths) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  return Status(ErrorCode::io_error,
                fmt::format("COCO annotations not found; tried {} (pass a path, or set {})",
                            paths.empty() ? std::string("nothing") : fmt::format("'{}'", fmt::join(paths, "', '")),
                            kCocoEnvVar));
}

Status fill_predictions(BatchData& data, std::span<const float> priors, int num_classes, LogitModel model,
                        uint64_t seed, const Config& config) {
  const int batch = data.batch();
  const int num_priors = static_cast<int>(priors.size() / 4);
  if (num_classes < 2) return invalid_config(fmt::format("num_classes must be >= 2, got {}", num_classes));
  const size_t C = static_cast<size_t>(num_classes);
  data.conf.assign(static_cast<size_t>(batch) * num_priors * C, 0.0f);
  data.loc.assign(static_cast<size_t>(batch) * num_priors * 4, 0.0f);
  std::vector<core::Box> corners(static_cast<size_t>(num_priors));
  for (int p = 0; p < num_priors; ++p) corners[p] = corners_of(priors, p);

  // Each image draws from its own stream, so the images can be filled in parallel with identical bytes.
#pragma omp parallel for schedule(dynamic)
  for (int b = 0; b < batch; ++b) {
    Rng rng(derive_seed(seed, kPredictionStream, static_cast<uint64_t>(b)));
    const int first = data.gt_offsets[b], count = data.gt_offsets[b + 1] - first;
    for (int p = 0; p < num_priors; ++p) {
      float* z = &data.conf[(static_cast<size_t>(b) * num_priors + p) * C];
      float* l = &data.loc[(static_cast<size_t>(b) * num_priors + p) * 4];
      switch (model) {
        case LogitModel::random:
          for (size_t c = 0; c < C; ++c) z[c] = static_cast<float>(rng.normal());
          for (int k = 0; k < 4; ++k) l[k] = static_cast<float>(rng.normal());
          break;
        case LogitModel::extreme:
          for (size_t c = 0; c < C; ++c) z[c] = static_cast<float>(rng.uniform(-1e4, 1e4));
          for (int k = 0; k < 4; ++k) l[k] = static_cast<float>(rng.uniform(-1e2, 1e2));
          break;
        case LogitModel::trained: {
          // What a half-trained head looks like: the prior's best overlap decides which logit is raised.
          float best = 0;
          int best_g = -1;
          for (int g = 0; g < count; ++g) {
            const float* gb = &data.gt_boxes[static_cast<size_t>(first + g) * 4];
            const float v = core::iou({gb[0], gb[1], gb[2], gb[3]}, corners[p]);
            if (v > best) best = v, best_g = g;
          }
          for (size_t c = 0; c < C; ++c) z[c] = static_cast<float>(rng.normal());
          const int32_t label = best_g >= 0 ? data.gt_labels[first + best_g] : 0;
          if (best >= 0.5f) {  // object: mostly right, sometimes still background-heavy
            z[label] += static_cast<float>(rng.normal(3.0, 1.5));
            z[0] += static_cast<float>(rng.normal(0.5, 1.0));
          } else if (best >= 0.3f) {  // partial overlap: confusable, background usually wins
            z[label] += static_cast<float>(rng.normal(1.5, 1.0));
            z[0] += static_cast<float>(rng.normal(2.0, 1.0));
          } else if (rng.bernoulli(0.02)) {  // hard negative: a false class close behind background
            z[rng.uniform_int(1, num_classes - 1)] += static_cast<float>(rng.normal(1.5, 1.0));
            z[0] += static_cast<float>(rng.normal(2.5, 1.0));
          } else {  // easy negative: confident background
            z[0] += static_cast<float>(rng.normal(6.5, 0.8));
          }
          if (best >= 0.5f) {  // regression near its target, with an error a loss can still see
            const float* gb = &data.gt_boxes[static_cast<size_t>(first + best_g) * 4];
            const float* pr = &priors[static_cast<size_t>(p) * 4];
            const core::Encoded t = core::encode({gb[0], gb[1], gb[2], gb[3]}, pr[0], pr[1], pr[2], pr[3],
                                                 config.variance_xy, config.variance_wh);
            for (int k = 0; k < 4; ++k) l[k] = t.v[k] + static_cast<float>(rng.normal(0.0, 0.3));
          } else {
            for (int k = 0; k < 4; ++k) l[k] = static_cast<float>(rng.normal(0.0, 0.5));
          }
          break;
        }
      }
    }
  }
  return {};
}

Result<Workload> make_synthetic(const SyntheticSpec& spec, std::string name) {
  if (Status s = check_spec(spec); !s.ok()) return s;
  auto priors = priors_by_name(spec.prior_set);
  if (!priors) return priors.status();
  BatchData data = synthetic_ground_truths(spec);
  if (Status s = fill_predictions(data, *priors, spec.num_classes, spec.logits, spec.seed); !s.ok()) return s;
  std::string description = fmt::format("synthetic: {} priors, {} classes, {}-{} objects, batch {}", spec.prior_set,
                                        spec.num_classes, spec.min_objects, spec.max_objects, spec.batch);
  return assemble(std::move(name), std::move(description), spec.prior_set, std::move(*priors), spec.num_classes,
                  std::move(data), spec.seed);
}

std::vector<WorkloadInfo> list_workloads() {
  std::vector<WorkloadInfo> out;
  for (const SyntheticEntry& e : synthetic_entries()) out.push_back({e.name, e.description});
  out.push_back({"adversarial", kAdversarialDescription});
  out.push_back({"coco128", kCocoDescription});
  return out;
}

Result<Workload> make_workload(std::string_view name, const WorkloadOptions& options) {
  if (options.batch < 0) return invalid_config(fmt::format("batch must be >= 0, got {}", options.batch));
  for (const SyntheticEntry& e : synthetic_entries()) {
    if (name != e.name) continue;
    SyntheticSpec spec = e.spec;
    if (options.seed) spec.seed = options.seed;
    if (options.batch) spec.batch = options.batch;
    if (!options.predictions) {
      auto priors = priors_by_name(spec.prior_set);
      if (!priors) return priors.status();
      if (Status s = check_spec(spec); !s.ok()) return s;
      return assemble(e.name, e.description, spec.prior_set, std::move(*priors), spec.num_classes,
                      synthetic_ground_truths(spec), spec.seed);
    }
    auto w = make_synthetic(spec, e.name);
    if (w) w->description = e.description;
    return w;
  }
  if (name == "adversarial") return make_adversarial(options);
  if (name == "coco128") return make_coco128(options);
  std::vector<std::string> names;
  for (const WorkloadInfo& info : list_workloads()) names.push_back(info.name);
  return invalid_config(fmt::format("unknown workload '{}' (known: {})", name, fmt::join(names, ", ")));
}

WorkloadStats workload_stats(const Workload& workload) {
  WorkloadStats s;
  s.images = workload.shape.batch;
  s.priors = workload.shape.num_priors;
  s.classes = workload.shape.num_classes;
  s.boxes = static_cast<int64_t>(workload.data.gt_labels.size());
  std::vector<int> counts;
  for (int b = 0; b < workload.data.batch(); ++b) counts.push_back(workload.data.ground_truths().count(b));
  if (counts.empty()) return s;
  std::sort(counts.begin(), counts.end());
  s.boxes_min = counts.front();
  s.boxes_max = counts.back();
  const size_t n = counts.size();
  s.boxes_median = n % 2 ? counts[n / 2] : 0.5 * (counts[n / 2 - 1] + counts[n / 2]);
  s.empty_images = static_cast<int>(std::count(counts.begin(), counts.end(), 0));
  return s;
}

}  // namespace multibox
