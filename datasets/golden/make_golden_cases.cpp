// Writes the input side of the golden cases (case.json + inputs) that make_golden.py then runs through torchvision.
// Clean cases avoid every documented difference of DESIGN.md section 7; each difference case hits exactly one.
// The generator checks that with the reference in argmax mode and refuses to write a case that misses its mark.
//
// Usage: make_golden_cases OUT_DIR [--coco INSTANCES_JSON]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/math.hpp"
#include "multibox/case_file.hpp"
#include "multibox/coco.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"
#include "multibox/workloads.hpp"

namespace multibox {
namespace {

namespace fs = std::filesystem;

Config golden_config() {
  Config c;  // torchvision's SSD: argmax matching, 0.5, weights (10,10,5,5), ratio 3, beta 1
  c.forced_match = ForcedMatch::argmax;
  return c;
}

// Which documented differences an image hits, judged by the reference in argmax mode.
struct ImageHits {
  int conflicts = 0;   // GTs that overlap some prior but lost their argmax prior to a higher-index GT
  int no_overlap = 0;  // GTs whose best IoU is 0
  bool overflow = false;  // neg_pos_ratio * P_b > N_neg_b
  bool clean() const { return conflicts == 0 && no_overlap == 0 && !overflow; }
};

Result<std::vector<ImageHits>> analyse(const Case& c) {
  auto plan = reference_backend().prepare(c.shape, c.priors, c.config);
  if (!plan) return plan.status();
  BatchOutputs out(c.shape, static_cast<int>(c.data.gt_labels.size()));
  if (Status s = (*plan)->run(c.data.ground_truths(), c.data.predictions(), Stage::match, out.view()); !s) return s;
  std::vector<ImageHits> hits(static_cast<size_t>(c.shape.batch));
  const int P = c.shape.num_priors;
  for (int b = 0; b < c.shape.batch; ++b) {
    for (int g = c.data.gt_offsets[b]; g < c.data.gt_offsets[b + 1]; ++g) {
      if (out.forced_prior[g] >= 0) continue;
      const float* gb = &c.data.gt_boxes[static_cast<size_t>(g) * 4];
      float best = 0;
      for (int p = 0; p < P; ++p) {
        const float* pr = &c.priors[static_cast<size_t>(p) * 4];
        best = std::max(best, core::iou({gb[0], gb[1], gb[2], gb[3]}, core::prior_corners(pr[0], pr[1], pr[2], pr[3])));
      }
      (best > 0 ? hits[b].conflicts : hits[b].no_overlap) += 1;
    }
    int negatives = 0;
    for (int p = 0; p < P; ++p) negatives += out.matches[static_cast<size_t>(b) * P + p] == kNegative;
    hits[b].overflow = static_cast<int64_t>(c.config.neg_pos_ratio) * out.positives[b] > negatives;
  }
  return hits;
}

// The images `keep` of `src`, in that order; `drop_boxes` lists kept images whose ground truths are removed (an
// image without objects, with the predictions it had).
Case subset(const Case& src, const std::vector<int>& keep, const std::vector<int>& drop_boxes = {}) {
  Case c = src;
  c.data = BatchData{};
  const size_t P = static_cast<size_t>(src.shape.num_priors), C = static_cast<size_t>(src.shape.num_classes);
  for (int b : keep) {
    const bool empty = std::find(drop_boxes.begin(), drop_boxes.end(), b) != drop_boxes.end();
    if (!empty) {
      const size_t first = static_cast<size_t>(src.data.gt_offsets[b]), last = src.data.gt_offsets[b + 1];
      c.data.gt_boxes.insert(c.data.gt_boxes.end(), src.data.gt_boxes.begin() + first * 4,
                             src.data.gt_boxes.begin() + last * 4);
      c.data.gt_labels.insert(c.data.gt_labels.end(), src.data.gt_labels.begin() + first,
                              src.data.gt_labels.begin() + last);
    }
    c.data.gt_offsets.push_back(static_cast<int32_t>(c.data.gt_labels.size()));
    c.data.conf.insert(c.data.conf.end(), src.data.conf.begin() + b * P * C, src.data.conf.begin() + (b + 1) * P * C);
    c.data.loc.insert(c.data.loc.end(), src.data.loc.begin() + b * P * 4, src.data.loc.begin() + (b + 1) * P * 4);
  }
  c.shape.batch = static_cast<int>(keep.size());
  c.shape.max_ground_truths = static_cast<int>(c.data.gt_labels.size());
  return c;
}

Case from_workload(Workload w, std::string name, uint64_t seed) {
  Case c;
  c.name = std::move(name);
  c.workload = w.name + ": " + w.description;
  c.seed = seed;
  c.config = golden_config();
  c.shape = w.shape;
  c.priors = std::move(w.priors);
  c.data = std::move(w.data);
  return c;
}

// The first `count` clean images of `pool` that hold at least one ground truth.
Result<std::vector<int>> first_clean_images(const Case& pool, int count) {
  auto hits = analyse(pool);
  if (!hits) return hits.status();
  std::vector<int> keep;
  for (int b = 0; b < pool.shape.batch && static_cast<int>(keep.size()) < count; ++b)
    if ((*hits)[b].clean() && pool.data.gt_offsets[b + 1] > pool.data.gt_offsets[b]) keep.push_back(b);
  if (static_cast<int>(keep.size()) < count)
    return Status(ErrorCode::internal, fmt::format("{}: only {} of {} images are free of documented differences, "
                                                   "{} needed; draw a larger pool",
                                                   pool.name, keep.size(), pool.shape.batch, count));
  return keep;
}

std::string image_list(const std::vector<int>& images) { return fmt::format("{}", fmt::join(images, ",")); }

Result<Case> synthetic_clean(std::string name, SyntheticSpec spec, int batch, int empty_images) {
  auto w = make_synthetic(spec, name);
  if (!w) return w.status();
  Case pool = from_workload(std::move(*w), name, spec.seed);
  auto keep = first_clean_images(pool, batch);
  if (!keep) return keep.status();
  // Empty images reuse the predictions of the pool images that follow the chosen ones.
  std::vector<int> images = *keep, empty;
  for (int b = keep->back() + 1; static_cast<int>(empty.size()) < empty_images; ++b) {
    if (b >= pool.shape.batch) return Status(ErrorCode::internal, name + ": pool too small for the empty images");
    images.push_back(b);
    empty.push_back(b);
  }
  Case c = subset(pool, images, empty);
  c.workload += fmt::format(" | pool images {} (ground truths dropped from {})", image_list(images),
                            empty.empty() ? std::string("none") : image_list(empty));
  return c;
}

Result<Case> coco_clean(const std::string& path, int batch) {
  auto coco = load_coco(path);
  if (!coco) return coco.status();
  auto gts = coco->ground_truths();
  if (!gts) return gts.status();
  Case pool;
  pool.name = "coco128-tutorial";
  pool.seed = 128;
  pool.config = golden_config();
  pool.priors = tutorial_priors();
  pool.data = std::move(*gts);
  pool.shape = {pool.data.batch(), static_cast<int>(pool.priors.size() / 4), coco->num_classes(),
                static_cast<int>(pool.data.gt_labels.size())};
  if (Status s = fill_predictions(pool.data, pool.priors, pool.shape.num_classes, LogitModel::trained, pool.seed,
                                  pool.config);
      !s)
    return s;
  auto keep = first_clean_images(pool, batch);
  if (!keep) return keep.status();
  Case c = subset(pool, *keep);
  c.workload = fmt::format("COCO128 instances_train2017.json, images {} in file order (the first {} with boxes and "
                           "without documented differences on the tutorial priors), trained logits",
                           image_list(*keep), batch);
  return c;
}

// A hand-placed batch: image 0 carries the difference under test, image 1 is a clean control.
Result<Case> hand_made(std::string name, std::string what, const std::string& prior_set, int num_classes,
                       std::vector<std::vector<float>> boxes_per_image, uint64_t seed) {
  Case c;
  c.name = std::move(name);
  c.workload = std::move(what);
  c.seed = seed;
  c.config = golden_config();
  auto priors = priors_by_name(prior_set);
  if (!priors) return priors.status();
  c.priors = std::move(*priors);
  for (const auto& boxes : boxes_per_image) {
    for (size_t i = 0; i < boxes.size(); i += 4) {
      c.data.gt_boxes.insert(c.data.gt_boxes.end(), boxes.begin() + i, boxes.begin() + i + 4);
      c.data.gt_labels.push_back(1 + static_cast<int32_t>((c.data.gt_labels.size() * 7) % (num_classes - 1)));
    }
    c.data.gt_offsets.push_back(static_cast<int32_t>(c.data.gt_labels.size()));
  }
  c.shape = {c.data.batch(), static_cast<int>(c.priors.size() / 4), num_classes,
             static_cast<int>(c.data.gt_labels.size())};
  if (Status s = fill_predictions(c.data, c.priors, num_classes, LogitModel::random, seed, c.config); !s) return s;
  return c;
}

// Box of side `side` centred on (cx, cy).
std::vector<float> centred(float cx, float cy, float side) {
  return {cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2};
}
std::vector<float> join(std::initializer_list<std::vector<float>> parts) {
  std::vector<float> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

enum class Expect { clean, conflict, overflow, no_overlap };

Status check_and_write(const fs::path& out_dir, const Result<Case>& made, Expect expect) {
  if (!made) return made.status();
  const Case& c = made.value();
  auto hits = analyse(c);
  if (!hits) return hits.status();
  int conflicts = 0, no_overlap = 0, overflow = 0;
  for (const ImageHits& h : *hits) conflicts += h.conflicts, no_overlap += h.no_overlap, overflow += h.overflow;
  const bool ok = expect == Expect::clean      ? conflicts + no_overlap + overflow == 0
                  : expect == Expect::conflict ? conflicts > 0 && no_overlap + overflow == 0
                  : expect == Expect::overflow ? overflow > 0 && conflicts + no_overlap == 0
                                               : no_overlap > 0 && conflicts + overflow == 0;
  if (!ok)
    return Status(ErrorCode::internal,
                  fmt::format("{}: hits conflicts={} no_overlap={} overflow_images={}, not what the case is for",
                              c.name, conflicts, no_overlap, overflow));
  if (Status s = write_case(out_dir / c.name, c); !s) return s;
  std::printf("%-20s B=%d P=%d C=%d G=%zu conflicts=%d no_overlap=%d overflow_images=%d\n", c.name.c_str(),
              c.shape.batch, c.shape.num_priors, c.shape.num_classes, c.data.gt_labels.size(), conflicts, no_overlap,
              overflow);
  return {};
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [--coco INSTANCES_JSON]\n", argv[0]);
    return 2;
  }
  const fs::path out_dir = argv[1];
  std::string coco_path;
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--coco") == 0) coco_path = argv[i + 1];
  if (coco_path.empty()) {
    auto found = find_coco_json();
    if (found) coco_path = *found;
  }

  std::vector<std::pair<Result<Case>, Expect>> cases;

  SyntheticSpec tutorial{.prior_set = "tutorial", .batch = 16, .num_classes = 21, .min_objects = 1,
                         .max_objects = 4, .min_box_size = 0.1f, .max_box_size = 0.8f,
                         .logits = LogitModel::random, .seed = 101};
  cases.emplace_back(synthetic_clean("tutorial-random", tutorial, 3, 1), Expect::clean);

  SyntheticSpec extreme = tutorial;
  extreme.num_classes = 5;
  extreme.logits = LogitModel::extreme;
  extreme.seed = 202;
  cases.emplace_back(synthetic_clean("tutorial-extreme", extreme, 2, 0), Expect::clean);

  SyntheticSpec voc{.prior_set = "ssd300", .batch = 8, .num_classes = 21, .min_objects = 1, .max_objects = 4,
                    .min_box_size = 0.05f, .max_box_size = 0.95f, .logits = LogitModel::trained, .seed = 303};
  cases.emplace_back(synthetic_clean("ssd300-voc-trained", voc, 2, 0), Expect::clean);

  if (!coco_path.empty()) {
    cases.emplace_back(coco_clean(coco_path, 4), Expect::clean);
  } else {
    std::fprintf(stderr, "note: no COCO annotations found (--coco or %s); coco128-tutorial not written\n",
                 kCocoEnvVar);
  }

  // The tutorial's 0.4 x 0.4 prior centred on cell (3,3) spans [0.3, 0.7]^2. Two near copies of it both take that
  // prior as their argmax; the higher index keeps it.
  cases.emplace_back(hand_made("conflict", "two ground truths share their argmax prior (image 0, GTs 0 and 1)",
                               "tutorial", 5,
                               {join({{0.30f, 0.30f, 0.69f, 0.70f}, {0.31f, 0.30f, 0.70f, 0.70f},
                                      centred(0.15f, 0.8f, 0.25f)}),
                                join({centred(0.3f, 0.3f, 0.35f), centred(0.75f, 0.6f, 0.3f)})},
                               404),
                     Expect::conflict);

  // 16 priors of side 0.3 on a 4x4 grid; five objects each on their own cell give P_0 = 5 and 3 * 5 > 11 negatives.
  const float q[4] = {0.125f, 0.375f, 0.625f, 0.875f};
  cases.emplace_back(hand_made("overflow", "image 0: 5 positives of 16 priors, so 3P = 15 exceeds the 11 negatives",
                               "grid:4x4:0.3:1", 4,
                               {join({centred(q[0], q[0], 0.28f), centred(q[2], q[0], 0.28f), centred(q[1], q[1], 0.28f),
                                      centred(q[3], q[2], 0.28f), centred(q[0], q[3], 0.28f)}),
                                join({centred(q[2], q[2], 0.27f)})},
                               505),
                     Expect::overflow);

  // 16 priors of side 0.1: the square [0.2, 0.3]^2 falls in the gap between them and overlaps none.
  cases.emplace_back(hand_made("no-overlap", "image 0, GT 0 overlaps no prior (it sits between the priors)",
                               "grid:4x4:0.1:1", 4,
                               {join({{0.2f, 0.2f, 0.3f, 0.3f}, centred(q[2], q[2], 0.09f)}),
                                join({centred(q[1], q[3], 0.11f)})},
                               606),
                     Expect::no_overlap);

  int failures = 0;
  for (const auto& [made, expect] : cases) {
    if (Status s = check_and_write(out_dir, made, expect); !s) {
      std::fprintf(stderr, "error: %s\n", s.to_string().c_str());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace multibox

int main(int argc, char** argv) { return multibox::run(argc, argv); }
