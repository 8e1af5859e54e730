#include "support/case.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <ostream>

#include <fmt/format.h>

namespace multibox::proptest {

const char* to_string(SceneKind kind) noexcept {
  switch (kind) {
    case SceneKind::empty: return "empty";
    case SceneKind::random: return "random";
    case SceneKind::jittered: return "jittered";
    case SceneKind::crowded: return "crowded";
    case SceneKind::adversarial: return "adversarial";
    case SceneKind::far_away: return "far_away";
  }
  return "unknown";
}

const char* to_string(LogitKind kind) noexcept {
  switch (kind) {
    case LogitKind::random: return "random";
    case LogitKind::extreme: return "extreme";
    case LogitKind::ties: return "ties";
    case LogitKind::trained: return "trained";
  }
  return "unknown";
}

int Case::total_ground_truths() const noexcept {
  int total = 0;
  for (const Scene& s : images) total += static_cast<int>(s.labels.size());
  return total;
}

ProblemShape Case::shape() const noexcept {
  return {batch(), priors.count(), num_classes, total_ground_truths()};
}

namespace {

// splitmix64: tiny, fast, and fully specified, unlike std:: distributions whose output varies by library.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  double normal() {  // Box-Muller; one value per call keeps the stream simple
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace

void fill_predictions(const PredictionRecipe& recipe, int batch, int num_priors, int num_classes,
                      std::vector<float>& conf, std::vector<float>& loc) {
  const size_t rows = static_cast<size_t>(batch) * num_priors;
  const int C = num_classes;
  conf.assign(rows * C, 0.0f);
  loc.assign(rows * 4, 0.0f);
  SplitMix rng(recipe.seed);
  // Pool for the `ties` model: identical rows give identical cross-entropies, so mining must use the index rule.
  std::vector<float> pool(3 * static_cast<size_t>(C));
  for (float& v : pool) v = static_cast<float>(rng.below(3) - 1);
  for (size_t r = 0; r < rows; ++r) {
    float* row = &conf[r * C];
    switch (recipe.logits) {
      case LogitKind::random:
        for (int c = 0; c < C; ++c) row[c] = static_cast<float>(2.0 * rng.normal());
        break;
      case LogitKind::extreme: {
        const int mode = rng.below(4);
        for (int c = 0; c < C; ++c) {
          if (mode == 0) row[c] = rng.below(2) ? 1e4f : -1e4f;  // a whole row at the extremes
          else if (rng.below(3) == 0) row[c] = static_cast<float>((rng.below(2) ? 1.0 : -1.0) * 1e4 * (0.5 + 0.5 * rng.uniform()));
          else row[c] = static_cast<float>(3.0 * rng.normal());
        }
        break;
      }
      case LogitKind::ties:
        if (rng.below(4) == 0) {
          for (int c = 0; c < C; ++c) row[c] = static_cast<float>(rng.below(3) - 1);
        } else {
          std::copy_n(&pool[static_cast<size_t>(rng.below(3)) * C], C, row);
        }
        break;
      case LogitKind::trained: {
        const int peak = rng.below(5) == 0 ? rng.below(C) : 0;
        for (int c = 0; c < C; ++c) row[c] = static_cast<float>(rng.normal() - 2.0);
        row[peak] = static_cast<float>(4.0 + rng.normal());
        break;
      }
    }
  }
  for (float& v : loc) v = static_cast<float>(recipe.loc_scale * rng.normal());
}

BatchData Case::materialise() const {
  BatchData data;
  data.gt_offsets.assign(1, 0);
  for (const Scene& s : images) {
    for (size_t g = 0; g < s.boxes.size(); ++g) {
      data.gt_boxes.insert(data.gt_boxes.end(), s.boxes[g].begin(), s.boxes[g].end());
      data.gt_labels.push_back(s.labels[g]);
    }
    data.gt_offsets.push_back(static_cast<int32_t>(data.gt_labels.size()));
  }
  fill_predictions(predictions, batch(), priors.count(), num_classes, data.conf, data.loc);
  return data;
}

BatchData image_slice(const Case& c, const BatchData& data, int b) {
  BatchData out;
  const int32_t first = data.gt_offsets[b], last = data.gt_offsets[b + 1];
  out.gt_boxes.assign(data.gt_boxes.begin() + first * 4, data.gt_boxes.begin() + last * 4);
  out.gt_labels.assign(data.gt_labels.begin() + first, data.gt_labels.begin() + last);
  out.gt_offsets = {0, last - first};
  const size_t P = static_cast<size_t>(c.priors.count());
  const size_t C = static_cast<size_t>(c.num_classes);
  out.conf.assign(data.conf.begin() + b * P * C, data.conf.begin() + (b + 1) * P * C);
  out.loc.assign(data.loc.begin() + b * P * 4, data.loc.begin() + (b + 1) * P * 4);
  return out;
}

std::string Case::summary() const {
  std::string scenes, counts;
  for (const Scene& s : images) {
    if (!scenes.empty()) scenes += ',', counts += ',';
    scenes += to_string(s.kind);
    counts += std::to_string(s.labels.size());
  }
  std::string text = fmt::format("B={} P={} ({}) C={} G=[{}] scenes=[{}] logits={} loc_scale={:g} seed={} | {}",
                                 batch(), priors.count(), priors.name, num_classes, counts, scenes,
                                 to_string(predictions.logits), predictions.loc_scale, predictions.seed,
                                 config.describe());
  if (!config_note.empty()) text += " (" + config_note + ")";
  return text;
}

void showValue(const PriorSet& priors, std::ostream& os) {
  os << priors.name << ", " << priors.count() << " priors (cx, cy, w, h)";
  if (priors.count() > 48) {
    os << " (too many to list; regenerate by name)";
    return;
  }
  for (int p = 0; p < priors.count(); ++p) {
    const float* v = &priors.boxes[static_cast<size_t>(p) * 4];
    os << fmt::format("\n    prior {:3}: ({:.9g}, {:.9g}, {:.9g}, {:.9g})", p, v[0], v[1], v[2], v[3]);
  }
}

void showValue(const Scene& scene, std::ostream& os) {
  os << to_string(scene.kind) << ", " << scene.labels.size() << " ground truths (xmin, ymin, xmax, ymax)";
  for (size_t g = 0; g < scene.labels.size(); ++g) {
    const BoxCorners& b = scene.boxes[g];
    os << fmt::format("\n    gt {:2}: ({:.9g}, {:.9g}, {:.9g}, {:.9g}) label {}", g, b[0], b[1], b[2], b[3],
                      scene.labels[g]);
    if (g < scene.notes.size() && !scene.notes[g].empty()) os << "  [" << scene.notes[g] << "]";
  }
}

void showValue(const Case& c, std::ostream& os) {
  os << c.summary() << "\n  priors: ";
  showValue(c.priors, os);
  for (int b = 0; b < c.batch(); ++b) {
    os << "\n  image " << b << ": ";
    showValue(c.images[b], os);
  }
}

}  // namespace multibox::proptest

namespace multibox {
void showValue(Stage stage, std::ostream& os) { os << to_string(stage); }
}  // namespace multibox
