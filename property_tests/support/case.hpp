// One generated test case of the conformance suite (priors, per-image scenes, prediction recipe, configuration)
// and the helpers that turn it into the buffers a backend consumes. Printers make counterexamples readable.
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"

namespace multibox::proptest {

struct PriorSet {
  std::string name;           // "random", "grid:3x4:0.2,0.5:1,2", "tutorial", "ssd300"
  std::vector<float> boxes;   // [P][4] centre-size
  int count() const noexcept { return static_cast<int>(boxes.size() / 4); }
};

// How an image's ground truths were made; printed so a counterexample says what kind of scene broke.
enum class SceneKind {
  empty,        // no ground truth
  random,       // boxes anywhere, any size
  jittered,     // priors moved and rescaled a little, so positives exist
  crowded,      // many heavily overlapping objects around a few centres
  adversarial,  // duplicates, copies of priors, shared best priors, tiny boxes, border boxes, half priors
  far_away,     // boxes that overlap no prior (images with ground truths but no positives)
};
const char* to_string(SceneKind kind) noexcept;

using BoxCorners = std::array<float, 4>;  // (xmin, ymin, xmax, ymax)

struct Scene {
  SceneKind kind = SceneKind::empty;
  std::vector<BoxCorners> boxes;
  std::vector<int32_t> labels;
  std::vector<std::string> notes;  // per box: how it was made ("dup of 0", "= prior 12", "tiny", ...)
};

enum class LogitKind {
  random,   // normal(0, 2)
  extreme,  // many values at +-1e4 (and whole rows of them), the rest normal(0, 3)
  ties,     // rows drawn from a pool of three, values from {-1, 0, 1}: exact ties within and across rows
  trained,  // peaked on background (most rows) or on one class, like a half-trained head
};
const char* to_string(LogitKind kind) noexcept;

// Predictions are drawn from a seeded recipe rather than element by element: a batch holds up to ~10^5 logits,
// far too many for per-element shrink trees, and the recipe prints in one line.
struct PredictionRecipe {
  LogitKind logits = LogitKind::random;
  float loc_scale = 1.0f;  // loc ~ normal(0, loc_scale): both branches of smooth L1 appear for beta ~ 1
  uint64_t seed = 1;
};

struct Case {
  PriorSet priors;
  int num_classes = 2;
  std::vector<Scene> images;
  PredictionRecipe predictions;
  Config config;
  std::string config_note;  // e.g. "pos_threshold = IoU(image 0, gt 1, prior 7)"

  int batch() const noexcept { return static_cast<int>(images.size()); }
  int total_ground_truths() const noexcept;
  ProblemShape shape() const noexcept;
  // Ground truths, logits and loc in the layouts of DESIGN.md section 1 (deterministic in the recipe's seed).
  BatchData materialise() const;
  // One line: sizes, scene kinds, recipe and configuration.
  std::string summary() const;
};

// Deterministic generator of the prediction values (splitmix64): the same seed gives the same batch on every
// platform, so a printed seed reproduces a case without rapidcheck.
void fill_predictions(const PredictionRecipe& recipe, int batch, int num_priors, int num_classes,
                      std::vector<float>& conf, std::vector<float>& loc);

// A single-image case holding image `b` of `c` (same priors, configuration and, row for row, predictions).
BatchData image_slice(const Case& c, const BatchData& data, int b);

// Printers picked up by rapidcheck through argument-dependent lookup.
void showValue(const PriorSet& priors, std::ostream& os);
void showValue(const Scene& scene, std::ostream& os);
void showValue(const Case& c, std::ostream& os);

}  // namespace multibox::proptest

namespace multibox {
// Printer for stages drawn by properties (found by argument-dependent lookup in the enum's namespace).
void showValue(Stage stage, std::ostream& os);
}  // namespace multibox
