#include "support/generators.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "core/math.hpp"
#include "multibox/priors.hpp"

namespace multibox::proptest {
namespace {

namespace gen = rc::gen;

// Fractions are drawn as integers so they shrink towards 0 and print exactly; 2^16 steps is fine enough for
// box geometry and keeps the values dyadic (scaling them by powers of two stays exact).
constexpr int kSteps = 1 << 16;
rc::Gen<float> gen_fraction() {
  return gen::map(gen::inRange(0, kSteps), [](int i) { return static_cast<float>(i) / kSteps; });
}
float lerp(float lo, float hi, float t) { return lo + (hi - lo) * t; }
// Log-uniform in [lo, hi]: box sizes span two orders of magnitude.
float log_lerp(float lo, float hi, float t) { return lo * std::pow(hi / lo, t); }

const float* prior_at(const PriorSet& priors, int p) { return &priors.boxes[static_cast<size_t>(p) * 4]; }

BoxCorners corners_of_prior(const PriorSet& priors, int p) {
  const float* v = prior_at(priors, p);
  const core::Box b = core::prior_corners(v[0], v[1], v[2], v[3]);
  return {b.x1, b.y1, b.x2, b.y2};
}

// A box of at least a few float ulps on each side so validation (xmax > xmin, area > 0) always holds.
BoxCorners make_box(float cx, float cy, float w, float h) {
  w = std::max(w, 1e-4f);
  h = std::max(h, 1e-4f);
  return {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
}

const std::vector<float>& cached_ssd300() {
  static const std::vector<float> priors = ssd300_priors();
  return priors;
}
const std::vector<float>& cached_tutorial() {
  static const std::vector<float> priors = tutorial_priors();
  return priors;
}

rc::Gen<PriorSet> gen_random_priors() {
  auto one = gen::tuple(gen_fraction(), gen_fraction(), gen_fraction(), gen_fraction());
  return gen::mapcat(gen::inRange(1, 41), [one](int count) {
    return gen::map(gen::container<std::vector<std::tuple<float, float, float, float>>>(count, one),
                    [](const std::vector<std::tuple<float, float, float, float>>& raw) {
                      PriorSet set{"random", {}};
                      for (const auto& [a, b, c, d] : raw) {
                        set.boxes.insert(set.boxes.end(), {lerp(-0.05f, 1.05f, a), lerp(-0.05f, 1.05f, b),
                                                           log_lerp(0.02f, 0.7f, c), log_lerp(0.02f, 0.7f, d)});
                      }
                      return set;
                    });
  });
}

rc::Gen<PriorSet> gen_grid_priors() {
  static const float kScales[] = {0.1f, 0.2f, 0.35f, 0.5f, 0.8f};
  static const float kRatios[] = {1.0f, 2.0f, 0.5f, 3.0f};
  return gen::apply(
      [](int rows, int cols, int scale_mask, int ratio_mask) {
        std::vector<float> scales, ratios;
        std::string scale_text, ratio_text;
        for (int i = 0; i < 5; ++i)
          if (scale_mask & (1 << i)) {
            scales.push_back(kScales[i]);
            scale_text += (scale_text.empty() ? "" : ",") + fmt::format("{:g}", kScales[i]);
          }
        for (int i = 0; i < 4; ++i)
          if (ratio_mask & (1 << i)) {
            ratios.push_back(kRatios[i]);
            ratio_text += (ratio_text.empty() ? "" : ",") + fmt::format("{:g}", kRatios[i]);
          }
        PriorSet set{fmt::format("grid:{}x{}:{}:{}", rows, cols, scale_text, ratio_text), {}};
        set.boxes = grid_priors(rows, cols, scales, ratios).value();
        return set;
      },
      gen::inRange(1, 7), gen::inRange(1, 7), gen::inRange(1, 1 << 5), gen::inRange(1, 1 << 4));
}

// Per-box recipe: interpreted by the scene kind (what `kind` and `prior` mean differs between kinds).
struct BoxMove {
  int kind;     // adversarial sub-kind, crowded cluster, ...
  int prior;    // a prior index (taken modulo P)
  int other;    // an earlier ground truth (modulo the count so far)
  float a, b, c, d;
  int label;
};

rc::Gen<BoxMove> gen_move(int num_classes) {
  return gen::apply(
      [](int kind, int prior, int other, std::tuple<float, float, float, float> f, int label) {
        return BoxMove{kind, prior, other, std::get<0>(f), std::get<1>(f), std::get<2>(f), std::get<3>(f), label};
      },
      gen::inRange(0, 9), gen::inRange(0, 1 << 20), gen::inRange(0, 64),
      gen::tuple(gen_fraction(), gen_fraction(), gen_fraction(), gen_fraction()), gen::inRange(1, num_classes));
}

float prior_extent_max(const PriorSet& priors) {
  float m = 1.0f;
  for (int p = 0; p < priors.count(); ++p) {
    const BoxCorners b = corners_of_prior(priors, p);
    m = std::max({m, b[2], b[3]});
  }
  return m;
}

Scene build_scene(const PriorSet& priors, SceneKind kind, const std::vector<BoxMove>& moves) {
  Scene scene;
  scene.kind = kind;
  const int P = priors.count();
  const float far = prior_extent_max(priors);
  int anchor = -1;  // prior that consecutive "shares best prior" boxes crowd onto
  for (size_t i = 0; i < moves.size(); ++i) {
    const BoxMove& m = moves[i];
    const int p = m.prior % P;
    const float* pv = prior_at(priors, p);
    BoxCorners box{};
    std::string note;
    auto jitter = [&] {
      box = make_box(pv[0] + lerp(-0.35f, 0.35f, m.a) * pv[2], pv[1] + lerp(-0.35f, 0.35f, m.b) * pv[3],
                     pv[2] * lerp(0.55f, 1.6f, m.c), pv[3] * lerp(0.55f, 1.6f, m.d));
      note = fmt::format("jittered prior {}", p);
    };
    switch (kind) {
      case SceneKind::empty:
        return scene;
      case SceneKind::random:
        box = make_box(lerp(-0.1f, 1.1f, m.a), lerp(-0.1f, 1.1f, m.b), log_lerp(0.005f, 0.9f, m.c),
                       log_lerp(0.005f, 0.9f, m.d));
        break;
      case SceneKind::jittered:
        jitter();
        break;
      case SceneKind::crowded: {
        // Up to three cluster centres taken from the first moves' priors; boxes pile up around them.
        const BoxMove& centre_move = moves[static_cast<size_t>(m.kind % 3) % moves.size()];
        const float* cv = prior_at(priors, centre_move.prior % P);
        box = make_box(cv[0] + lerp(-0.08f, 0.08f, m.a), cv[1] + lerp(-0.08f, 0.08f, m.b),
                       log_lerp(0.08f, 0.4f, m.c), log_lerp(0.08f, 0.4f, m.d));
        note = fmt::format("cluster {}", m.kind % 3);
        break;
      }
      case SceneKind::far_away:
        box = make_box(far + 0.5f + 2 * m.a, far + 0.5f + 2 * m.b, lerp(0.01f, 0.5f, m.c), lerp(0.01f, 0.5f, m.d));
        note = "overlaps no prior";
        break;
      case SceneKind::adversarial:
        switch (m.kind) {
          case 0:
            if (i > 0) {
              const size_t src = static_cast<size_t>(m.other) % i;
              box = scene.boxes[src];
              note = fmt::format("duplicate of gt {}", src);
              break;
            }
            [[fallthrough]];
          case 1:
            box = corners_of_prior(priors, p);
            anchor = p;
            note = fmt::format("equal to prior {}", p);
            break;
          case 2: {
            // Prior corners pulled in on one side: several of these share the same best prior.
            const int q = anchor >= 0 ? anchor : p;
            box = corners_of_prior(priors, q);
            const float* qv = prior_at(priors, q);
            const float pull = lerp(0.02f, 0.3f, m.a);
            const int side = static_cast<int>(m.b * 4) % 4;
            if (side == 0) box[0] += pull * qv[2];
            if (side == 1) box[1] += pull * qv[3];
            if (side == 2) box[2] -= pull * qv[2];
            if (side == 3) box[3] -= pull * qv[3];
            anchor = q;
            note = fmt::format("shares best prior {}", q);
            break;
          }
          case 3:
            box = make_box(pv[0], pv[1], log_lerp(1e-4f, 5e-3f, m.a), log_lerp(1e-4f, 5e-3f, m.b));
            note = fmt::format("tiny, inside prior {}", p);
            break;
          case 4: {
            const float w = log_lerp(0.02f, 0.6f, m.a), h = log_lerp(0.02f, 0.6f, m.b);
            const float x = lerp(0.0f, 1.0f - w, m.c), y = lerp(0.0f, 1.0f - h, m.d);
            box = {x, y, x + w, y + h};
            switch (m.other % 4) {
              case 0: box[0] = 0.0f; break;
              case 1: box[1] = 0.0f; break;
              case 2: box[2] = 1.0f; break;
              default: box[3] = 1.0f; break;
            }
            note = "touches the image border";
            break;
          }
          case 5:
            // Left half of a prior: IoU exactly 0.5 when the halving is exact, the threshold's edge case.
            box = corners_of_prior(priors, p);
            box[2] = pv[0];
            if (!(box[2] > box[0])) box = corners_of_prior(priors, p);
            note = fmt::format("left half of prior {}", p);
            break;
          case 6:
            box = make_box(far + 0.5f + m.a, far + 0.5f + m.b, 0.1f, 0.1f);
            note = "overlaps no prior";
            break;
          default:
            jitter();
            break;
        }
        break;
    }
    scene.boxes.push_back(box);
    scene.labels.push_back(m.label);
    scene.notes.push_back(std::move(note));
  }
  return scene;
}

int max_boxes(SceneKind kind) {
  switch (kind) {
    case SceneKind::empty: return 0;
    case SceneKind::crowded: return 20;
    case SceneKind::adversarial: return 10;
    default: return 8;
  }
}

}  // namespace

BoxCorners far_box(const PriorSet& priors, float offset, float size) {
  const float far = prior_extent_max(priors) + 0.5f + offset;
  return {far, far, far + size, far + size};
}

rc::Gen<PriorSet> gen_prior_set(const CaseOptions& options) {
  const size_t standard = static_cast<size_t>(options.standard_set_weight);
  return gen::weightedOneOf<PriorSet>({
      {12, gen_random_priors()},
      {8, gen_grid_priors()},
      {2, gen::just(PriorSet{"tutorial", cached_tutorial()})},
      {standard, gen::lazy([] { return gen::just(PriorSet{"ssd300", cached_ssd300()}); })},
  });
}

rc::Gen<Scene> gen_scene(const PriorSet& priors, int num_classes, SceneKind kind) {
  const int most = max_boxes(kind);
  const int least = kind == SceneKind::empty ? 0 : 1;
  return gen::mapcat(gen::inRange(least, most + 1), [priors, num_classes, kind](int count) {
    return gen::map(gen::container<std::vector<BoxMove>>(static_cast<size_t>(count), gen_move(num_classes)),
                    [priors, kind](const std::vector<BoxMove>& moves) { return build_scene(priors, kind, moves); });
  });
}

rc::Gen<PredictionRecipe> gen_prediction_recipe(const std::vector<LogitKind>& kinds) {
  return gen::apply(
      [](LogitKind kind, float loc_scale, uint32_t seed) {
        return PredictionRecipe{kind, loc_scale, static_cast<uint64_t>(seed) + 1};
      },
      gen::elementOf(kinds), gen::element(0.05f, 0.5f, 1.0f, 3.0f), gen::arbitrary<uint32_t>());
}

rc::Gen<Config> gen_config(std::optional<ForcedMatch> forced_match, bool stress_mining_cap) {
  auto mode = forced_match ? gen::just(*forced_match)
                           : gen::weightedElement<ForcedMatch>({{3, ForcedMatch::bipartite}, {1, ForcedMatch::argmax}});
  const size_t cap = stress_mining_cap ? 6 : 0;
  return gen::apply(
      [](ForcedMatch m, float pos, float band, std::pair<float, float> var, int ratio, int min_neg, float alpha,
         float beta) {
        Config c;
        c.forced_match = m;
        c.pos_threshold = pos;
        if (band < 1.0f) c.neg_threshold = pos * band;  // band 1: no ignore band (neg unset)
        c.variance_xy = var.first;
        c.variance_wh = var.second;
        c.neg_pos_ratio = ratio;
        c.min_negatives_per_image = min_neg;
        c.alpha = alpha;
        c.smooth_l1_beta = beta;
        return c;
      },
      mode, gen::weightedElement<float>({{4, 0.5f}, {1, 0.3f}, {1, 0.45f}, {1, 0.7f}, {1, 1.0f}, {1, 0.1f}}),
      gen::weightedElement<float>({{3, 1.0f}, {1, 0.8f}, {1, 0.4f}}),
      gen::weightedElement<std::pair<float, float>>({{4, {0.1f, 0.2f}}, {1, {1.0f, 1.0f}}, {1, {0.05f, 0.3f}}}),
      gen::weightedElement<int>({{4, 3}, {1, 0}, {1, 1}, {1, 2}, {1, 5}, {cap, 40}}),
      gen::weightedElement<int>({{5, 0}, {1, 1}, {1, 4}, {cap, 30}}),
      gen::weightedElement<float>({{4, 1.0f}, {1, 0.0f}, {1, 0.5f}, {1, 2.0f}}),
      gen::weightedElement<float>({{4, 1.0f}, {1, 0.0f}, {1, 0.11f}, {1, 0.5f}}));
}

namespace {

// Every distinct positive IoU between a ground truth and a prior, with where it occurs.
struct IouSite {
  float iou;
  int image, gt, prior;
};
std::vector<IouSite> positive_ious(const Case& c) {
  std::vector<IouSite> sites;
  std::set<float> seen;
  for (int b = 0; b < c.batch(); ++b) {
    const Scene& s = c.images[b];
    for (size_t g = 0; g < s.boxes.size(); ++g) {
      const core::Box gb{s.boxes[g][0], s.boxes[g][1], s.boxes[g][2], s.boxes[g][3]};
      for (int p = 0; p < c.priors.count(); ++p) {
        const float* v = prior_at(c.priors, p);
        const float iou = core::iou(gb, core::prior_corners(v[0], v[1], v[2], v[3]));
        if (iou > 0.0f && iou <= 1.0f && seen.insert(iou).second)
          sites.push_back({iou, b, static_cast<int>(g), p});
      }
    }
  }
  return sites;
}

Case snap_thresholds(Case c, int mode, int pick_pos, int pick_neg) {
  if (mode == 0) return c;
  const std::vector<IouSite> sites = positive_ious(c);
  if (sites.empty()) return c;
  const IouSite& a = sites[static_cast<size_t>(pick_pos) % sites.size()];
  const IouSite& b = sites[static_cast<size_t>(pick_neg) % sites.size()];
  auto where = [](const IouSite& s) {
    return fmt::format("IoU(image {}, gt {}, prior {}) = {:.9g}", s.image, s.gt, s.prior, s.iou);
  };
  if (mode == 1 || mode == 3) {
    c.config.pos_threshold = a.iou;
    if (c.config.neg_threshold && *c.config.neg_threshold > a.iou) c.config.neg_threshold = a.iou;
    c.config_note = "pos = " + where(a);
  }
  if (mode == 2 || mode == 3) {
    const float neg = std::min(b.iou, c.config.pos_threshold);
    c.config.neg_threshold = neg;
    c.config_note += (c.config_note.empty() ? "neg = " : "; neg = ") + where(b);
  }
  return c;
}

}  // namespace

rc::Gen<Case> gen_case(const CaseOptions& options) {
  return gen::mapcat(gen_prior_set(options), [options](PriorSet priors) {
    const bool large = priors.count() > 500;
    const int max_batch = large ? 1 : options.max_batch;
    // Wide rows only on small prior sets (cost): 17 and 81 leave a one-lane tail on 16-lane vectors, 32 none, and
    // 81 is COCO's width, where simd's mining bounds prune most rows.
    const unsigned wide = priors.count() <= 200 ? 1u : 0u;
    auto classes = large ? gen::element(2, 3, 4)
                         : gen::weightedElement<int>(
                               {{3, 2}, {3, 3}, {2, 4}, {2, 6}, {wide, 17}, {wide, 21}, {wide, 32}, {wide, 81}});
    auto shape = gen::tuple(gen::inRange(1, max_batch + 1), classes);
    return gen::mapcat(shape, [options, priors](std::tuple<int, int> bc) {
      const auto [batch, num_classes] = bc;
      auto scene = gen::mapcat(gen::elementOf(options.scenes), [priors, num_classes](SceneKind kind) {
        return gen_scene(priors, num_classes, kind);
      });
      auto base = gen::apply(
          [priors, num_classes](std::vector<Scene> images, PredictionRecipe recipe, Config config) {
            Case c;
            c.priors = priors;
            c.num_classes = num_classes;
            c.images = std::move(images);
            c.predictions = recipe;
            c.config = config;
            return c;
          },
          gen::container<std::vector<Scene>>(static_cast<size_t>(batch), scene),
          gen_prediction_recipe(options.logits), gen_config(options.forced_match, options.stress_mining_cap));
      if (!options.snap_thresholds) return base;
      return gen::mapcat(base, [](Case c) {
        return gen::apply([c](int mode, int a, int b) { return snap_thresholds(c, mode, a, b); },
                          gen::weightedElement<int>({{5, 0}, {2, 1}, {1, 2}, {1, 3}}), gen::inRange(0, 1 << 20),
                          gen::inRange(0, 1 << 20));
      });
    });
  });
}

}  // namespace multibox::proptest
