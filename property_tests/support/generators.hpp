// rapidcheck generators for the conformance suite. Every generator builds a valid value directly (no filtering):
// prior sets, ground-truth scenes, prediction recipes, configurations and whole cases, with sizes bounded so the
// whole suite runs in a few minutes on two cores.
#pragma once

#include <optional>
#include <vector>

#include <rapidcheck.h>

#include "support/case.hpp"

namespace multibox::proptest {

struct CaseOptions {
  int max_batch = 3;
  // Weight of the standard SSD300 set (8732 priors) among prior sets; 0 keeps a property to small sets.
  int standard_set_weight = 1;
  // Scene kind of each image, drawn uniformly from this list: repeat a kind to weight it. Images without positives
  // (empty, far_away) are kept rare because most properties prove little on them; one property targets them.
  std::vector<SceneKind> scenes = {SceneKind::empty,       SceneKind::far_away,    SceneKind::random,
                                   SceneKind::random,      SceneKind::random,      SceneKind::jittered,
                                   SceneKind::jittered,    SceneKind::jittered,    SceneKind::jittered,
                                   SceneKind::crowded,     SceneKind::crowded,     SceneKind::adversarial,
                                   SceneKind::adversarial, SceneKind::adversarial, SceneKind::adversarial};
  std::vector<LogitKind> logits = {LogitKind::random, LogitKind::extreme, LogitKind::ties, LogitKind::trained};
  std::optional<ForcedMatch> forced_match;  // unset: both modes
  // Sometimes set pos/neg thresholds to an IoU that occurs in the case, so '>=' versus '>' is exercised.
  bool snap_thresholds = true;
  // Weight of configurations whose ratio * P_b often exceeds the negatives (small sets, high ratios), so the
  // cap of K_b is reached.
  bool stress_mining_cap = false;
};

rc::Gen<PriorSet> gen_prior_set(const CaseOptions& options);
rc::Gen<Scene> gen_scene(const PriorSet& priors, int num_classes, SceneKind kind);
rc::Gen<PredictionRecipe> gen_prediction_recipe(const std::vector<LogitKind>& kinds);
rc::Gen<Config> gen_config(std::optional<ForcedMatch> forced_match, bool stress_mining_cap);
rc::Gen<Case> gen_case(const CaseOptions& options = {});

// A box that overlaps no prior of `priors` (placed beyond their extent), for "adding a ground truth changes nothing".
BoxCorners far_box(const PriorSet& priors, float offset, float size);

}  // namespace multibox::proptest
