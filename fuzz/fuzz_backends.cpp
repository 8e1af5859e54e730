// libFuzzer target: every available backend against the reference on a small batch decoded from the bytes (shape,
// any configuration, priors, ragged ground truths, logits with ties and extremes). The decoder only builds inputs the
// contract allows, so the reference refusing one, another backend refusing what the reference ran, or a FAILED
// verdict from compare_outputs is a finding.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/math.hpp"
#include "fuzz_support.hpp"
#include "multibox/compare.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"

namespace {

using namespace multibox;

// Reads the input front to back; past its end every byte is 0, so short inputs still decode to a valid batch.
class ByteReader {
 public:
  explicit ByteReader(fuzz::Bytes bytes) : bytes_(bytes) {}
  uint8_t byte() { return pos_ < bytes_.size() ? bytes_[pos_++] : 0; }
  template <class T, size_t N>
  T pick(const T (&table)[N]) {
    return table[byte() % N];
  }
  // Any float of magnitude <= limit from four raw bytes; non-finite or larger values are clamped.
  float raw_float(float limit) {
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= uint32_t{byte()} << (8 * i);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    if (std::isnan(v)) return 0.0f;
    return std::fmax(-limit, std::fmin(limit, v));
  }

 private:
  fuzz::Bytes bytes_;
  size_t pos_ = 0;
};

constexpr int kMaxBatch = 4;
constexpr int kMaxPriors = 48;
constexpr int kMaxClasses = 8;
constexpr int kMaxGroundTruthsPerImage = 6;
// DESIGN.md section 4: the loss is stable for logits of magnitude 1e4; the contract promises nothing beyond.
constexpr float kLogitLimit = 1e4f;

// Few distinct values, so rows tie (equal logits, equal cross-entropies) often; then the extremes.
float logit(ByteReader& in) {
  static constexpr float kExtremes[] = {kLogitLimit, -kLogitLimit, 9999.5f, -9999.5f, 88.75f, -88.75f,
                                        1e-7f,       -1e-7f,       30.0f,   -30.0f,   0.0f};
  const uint8_t v = in.byte();
  if (v < 200) return static_cast<float>(v % 13) * 0.5f - 3.0f;
  if (v < 240) return kExtremes[v % std::size(kExtremes)];
  return in.raw_float(kLogitLimit);
}

float loc_value(ByteReader& in) {
  const uint8_t v = in.byte();
  if (v < 220) return static_cast<float>(v % 17) * 0.25f - 2.0f;
  return in.raw_float(1e3f);
}

// A case named by its shape and configuration, which run_on_case's errors then quote.
Case decode(ByteReader& in) {
  Case b;
  b.shape.batch = 1 + in.byte() % kMaxBatch;
  b.shape.num_priors = 1 + in.byte() % kMaxPriors;
  b.shape.num_classes = 2 + in.byte() % (kMaxClasses - 1);

  Config& c = b.config;
  c.forced_match = in.byte() % 2 ? ForcedMatch::argmax : ForcedMatch::bipartite;
  static constexpr float kPos[] = {0.5f, 0.1f, 0.3f, 0.7f, 0.9f, 1.0f, 1e-6f, 0.50000006f};
  c.pos_threshold = in.pick(kPos);
  static constexpr float kNegFraction[] = {0.0f, 1.0f, 0.5f, 0.9f, 0.1f, 1e-3f};
  const float neg_fraction = in.pick(kNegFraction);
  if (neg_fraction > 0) c.neg_threshold = c.pos_threshold * neg_fraction;
  static constexpr float kVariances[] = {0.1f, 0.2f, 1.0f, 0.01f, 5.0f};
  c.variance_xy = in.pick(kVariances);
  c.variance_wh = in.pick(kVariances);
  c.neg_pos_ratio = in.byte() % 8;
  const uint8_t min_negatives = in.byte();
  c.min_negatives_per_image = min_negatives % 4 == 0 ? min_negatives / 4 % (b.shape.num_priors + 2) : 0;
  static constexpr float kAlpha[] = {1.0f, 0.0f, 0.5f, 2.0f, 100.0f};
  c.alpha = in.pick(kAlpha);
  static constexpr float kBeta[] = {1.0f, 0.0f, 0.5f, 1e-3f, 1.0f / 9.0f, 10.0f};
  c.smooth_l1_beta = in.pick(kBeta);

  // Coarse positions and sizes: coincident and nested priors make IoU ties.
  for (int p = 0; p < b.shape.num_priors; ++p) {
    b.priors.push_back(static_cast<float>(in.byte() % 17) / 16.0f);
    b.priors.push_back(static_cast<float>(in.byte() % 17) / 16.0f);
    b.priors.push_back(static_cast<float>(1 + in.byte() % 32) / 32.0f);
    b.priors.push_back(static_cast<float>(1 + in.byte() % 32) / 32.0f);
  }

  BatchData& d = b.data;
  for (int image = 0; image < b.shape.batch; ++image) {
    const int count = in.byte() % (kMaxGroundTruthsPerImage + 1);
    for (int g = 0; g < count; ++g) {
      const uint8_t kind = in.byte();
      if (kind % 4 == 0) {  // exactly a prior's box: IoU 1, and ties between ground truths on the same prior
        const float* p = &b.priors[static_cast<size_t>(in.byte() % b.shape.num_priors) * 4];
        const core::Box box = core::prior_corners(p[0], p[1], p[2], p[3]);
        d.gt_boxes.insert(d.gt_boxes.end(), {box.x1, box.y1, box.x2, box.y2});
      } else {  // anywhere, partly outside [0, 1] too
        const float x = static_cast<float>(in.byte()) / 200.0f - 0.1f;
        const float y = static_cast<float>(in.byte()) / 200.0f - 0.1f;
        const float w = static_cast<float>(1 + in.byte()) / 256.0f;
        const float h = static_cast<float>(1 + in.byte()) / 256.0f;
        d.gt_boxes.insert(d.gt_boxes.end(), {x, y, x + w, y + h});
      }
      d.gt_labels.push_back(1 + in.byte() % (b.shape.num_classes - 1));
    }
    d.gt_offsets.push_back(static_cast<int32_t>(d.gt_labels.size()));
  }
  b.shape.max_ground_truths = static_cast<int>(d.gt_labels.size());

  const size_t rows = static_cast<size_t>(b.shape.batch) * b.shape.num_priors;
  d.conf.resize(rows * b.shape.num_classes);
  for (float& v : d.conf) v = logit(in);
  d.loc.resize(rows * 4);
  for (float& v : d.loc) v = loc_value(in);
  b.name = fmt::format("{}, {}", b.shape.describe(), c.describe());
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in({data, size});
  PlanOptions options;
  options.num_threads = 1 + in.byte() % 3;
  const Case b = decode(in);

  // run_on_case's errors name the backend and the case (its shape and configuration).
  const Backend& reference = reference_backend();
  auto expected = run_on_case(reference, b, Stage::backward);
  if (!expected) fuzz::finding("the reference refuses a valid batch: " + expected.status().to_string());

  for (const Backend* backend : all_backends()) {
    if (backend == &reference || !backend->available()) continue;
    auto actual = run_on_case(*backend, b, Stage::backward, options);
    if (!actual)
      fuzz::finding(fmt::format("a backend refuses what the reference ran ({} threads): {}", options.num_threads,
                                actual.status().to_string()));
    const AgreementReport report = compare_outputs(b.shape, b.config, b.data.ground_truths(), b.data.predictions(),
                                                   Stage::backward, *expected, *actual);
    if (report.overall() == Verdict::failed)
      fuzz::finding(fmt::format("backend '{}' ({} threads) on {} disagrees with the reference '{}':\n{}",
                                backend->name(), options.num_threads, b.name, reference.name(), report.to_string()));
  }
  return 0;
}
