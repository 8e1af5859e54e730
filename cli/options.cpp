#include "options.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "multibox/limits.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"

namespace multibox::cli {
namespace {

// Drawing boxes (no predictions) costs about 20 bytes a ground truth; beyond this many images a sample of this size
// stands for the batch, so a dry run of --batch 2000000000 answers instead of drawing gigabytes of boxes.
constexpr int kMaxDrawnImages = 65536;

}  // namespace

WorkloadOptions WorkloadFlags::options(bool predictions) const {
  WorkloadOptions o;
  o.seed = seed;
  o.batch = batch;
  o.coco_path = coco_path;
  o.keep_crowd = keep_crowd;
  o.predictions = predictions;
  return o;
}

void add_workload_flags(CLI::App& cmd, WorkloadFlags& f, bool several, bool required) {
  CLI::Option_group& g = *cmd.add_option_group("Workload", "What to run on; the same flags in every subcommand");
  const std::string names =
      fmt::format("(see `multibox datasets`), or '{}' for the shape flags below", kSyntheticWorkload);
  CLI::Option* w = several ? g.add_option("-w,--workload", f.workloads,
                                            "Workload name(s), comma-separated, or 'all' " + names)
                                 ->delimiter(',')
                           : g.add_option("-w,--workload", f.workloads, "Workload name " + names)->expected(1);
  if (required) w->required();
  else w->capture_default_str();
  const CLI::Range non_negative(0, std::numeric_limits<int>::max(), "NON-NEGATIVE");
  // CLI11 would read "-5" into an unsigned seed as a huge number; refuse it instead.
  const CLI::Validator no_sign(
      [](std::string& text) {
        if (text.find_first_of("+-") == std::string::npos) return std::string();
        return "seed must be a non-negative integer, got " + text;
      },
      "UINT64");
  g.add_option("--seed", f.seed, "Workload seed (0: the workload's own)")->check(no_sign)->capture_default_str();
  f.batch_opt = g.add_option("--batch", f.batch, "Images per batch (0: the workload's own; synthetic: 32)")
                    ->check(non_negative)
                    ->capture_default_str();
  g.add_option("--coco", f.coco_path,
                 fmt::format("COCO instances JSON for coco128 (default: ${}, else the shared COCO128 file)",
                             kCocoEnvVar))
      ->type_name("FILE");
  g.add_flag("--keep-crowd", f.keep_crowd, "COCO: keep iscrowd boxes");
  f.shape_opts[0] = g.add_option("--priors", f.priors,
                                   "-w synthetic: prior set (ssd300, ssd512, tutorial, grid:ROWSxCOLS:SCALES:RATIOS)")
                        ->capture_default_str();
  f.shape_opts[1] = g.add_option("--classes", f.classes, "-w synthetic: classes C, background included")
                        ->check(CLI::Range(2, std::numeric_limits<int>::max()))
                        ->capture_default_str();
  f.shape_opts[2] = g.add_option("--objects", f.objects, "-w synthetic: objects per image MIN,MAX (uniform)")
                        ->delimiter(',')
                        ->expected(2)
                        ->check(non_negative)
                        ->capture_default_str();
}

namespace {

Status check_shape_flags(const std::string& name, const WorkloadFlags& f) {
  if (name == kSyntheticWorkload) {
    if (f.objects[0] > f.objects[1])
      return Status(ErrorCode::invalid_config,
                    fmt::format("--objects {},{}: MIN is above MAX", f.objects[0], f.objects[1]));
    return {};
  }
  for (const CLI::Option* o : f.shape_opts)
    if (o->count() > 0)
      return Status(ErrorCode::invalid_config, fmt::format("workload '{}': {} applies to -w {} only", name,
                                                           o->get_name(), kSyntheticWorkload));
  return {};
}

SyntheticSpec synthetic_spec(const WorkloadFlags& f) {
  SyntheticSpec spec;
  spec.prior_set = f.priors;
  if (f.batch > 0) spec.batch = f.batch;
  spec.num_classes = f.classes;
  spec.min_objects = f.objects[0];
  spec.max_objects = f.objects[1];
  if (f.seed > 0) spec.seed = f.seed;
  return spec;
}

}  // namespace

Result<Workload> build_workload(const std::string& name, const WorkloadFlags& f, bool predictions) {
  if (Status s = check_shape_flags(name, f); !s) return s;
  if (name == kSyntheticWorkload) return make_synthetic(synthetic_spec(f), kSyntheticWorkload);
  return make_workload(name, f.options(predictions));
}

Result<WorkloadPlan> plan_workload(const std::string& name, const WorkloadFlags& f) {
  if (Status s = check_shape_flags(name, f); !s) return s;
  WorkloadPlan plan;
  plan.name = name;
  if (name == kSyntheticWorkload) {
    const SyntheticSpec spec = synthetic_spec(f);
    auto priors = priors_by_name(spec.prior_set);
    if (!priors) return priors.status();
    plan.counts.assign(static_cast<size_t>(std::min(spec.batch, kMaxDrawnImages)), spec.max_objects);
    plan.count_scale = static_cast<double>(spec.batch) / static_cast<double>(plan.counts.size());
    plan.counts_are_bounds = true;
    plan.shape = {spec.batch, static_cast<int>(priors->size() / 4), spec.num_classes, 0};
    const double total = static_cast<double>(spec.batch) * spec.max_objects;
    plan.shape.max_ground_truths = static_cast<int>(std::min<double>(total, std::numeric_limits<int>::max()));
    return plan;
  }
  WorkloadOptions o = f.options(false);
  if (o.batch > kMaxDrawnImages) o.batch = kMaxDrawnImages;
  auto w = make_workload(name, o);
  if (!w) return w.status();
  const GroundTruthView gt = w->data.ground_truths();
  for (int b = 0; b < gt.batch(); ++b) plan.counts.push_back(gt.count(b));
  plan.shape = w->shape;
  plan.config = w->config;
  if (f.batch > kMaxDrawnImages) {
    plan.count_scale = static_cast<double>(f.batch) / kMaxDrawnImages;
    plan.shape.batch = f.batch;
    const double total = plan.count_scale * gt.total();
    plan.shape.max_ground_truths = static_cast<int>(std::min<double>(total, std::numeric_limits<int>::max()));
  }
  return plan;
}

void add_config_flags(CLI::App& cmd, ConfigFlags& f) {
  CLI::Option_group& g = *cmd.add_option_group(
      "Configuration", "SPEC section 7; a flag not given keeps the workload's own value (the defaults shown)");
  const Config d;
  f.forced_opt = g.add_option("--forced-match", f.forced_match, "Stage-1 matching: bipartite or argmax")
                     ->check(CLI::IsMember({"bipartite", "argmax"}))
                     ->default_str(to_string(d.forced_match));
  f.pos_opt = g.add_option("--pos-threshold", f.pos_threshold, "IoU at or above which a prior is positive")
                  ->default_str(fmt::format("{}", d.pos_threshold));
  f.neg_opt = g.add_option("--neg-threshold", f.neg_threshold,
                             "IoU below which a prior is negative; between the two it is ignored")
                  ->default_str("pos-threshold, no ignore band");
  f.var_opt = g.add_option("--variances", f.variances, "Encoding variances XY,WH")
                  ->delimiter(',')
                  ->expected(2)
                  ->default_str(fmt::format("{},{}", d.variance_xy, d.variance_wh));
  f.ratio_opt = g.add_option("--neg-pos-ratio", f.neg_pos_ratio, "Hard negatives per positive")
                    ->default_str(fmt::format("{}", d.neg_pos_ratio));
  f.min_neg_opt = g.add_option("--min-negatives", f.min_negatives,
                                 "Mining target floor per image, so images without positives still mine")
                      ->default_str(fmt::format("{}", d.min_negatives_per_image));
  f.alpha_opt = g.add_option("--alpha", f.alpha, "Weight of the localisation loss")
                    ->default_str(fmt::format("{}", d.alpha));
  f.beta_opt = g.add_option("--beta", f.beta, "Smooth L1 beta; 0 gives plain L1")
                   ->default_str(fmt::format("{}", d.smooth_l1_beta));
}

Config ConfigFlags::apply(Config config) const {
  if (forced_opt->count() > 0) config.forced_match = *parse_forced_match(forced_match);  // IsMember-checked
  if (pos_opt->count() > 0) config.pos_threshold = pos_threshold;
  if (neg_opt->count() > 0) config.neg_threshold = neg_threshold;
  if (var_opt->count() > 0) config.variance_xy = variances[0], config.variance_wh = variances[1];
  if (ratio_opt->count() > 0) config.neg_pos_ratio = neg_pos_ratio;
  if (min_neg_opt->count() > 0) config.min_negatives_per_image = min_negatives;
  if (alpha_opt->count() > 0) config.alpha = alpha;
  if (beta_opt->count() > 0) config.smooth_l1_beta = beta;
  return config;
}

bool print_dry_run(const WorkloadPlan& plan, const Config& config, std::span<const Backend* const> backends,
                   const PlanOptions& options) {
  fmt::print("== {} (dry run: nothing allocated)\n", plan.name);
  fmt::print("  shape    {}{}\n", plan.shape.describe(),
             plan.counts_are_bounds  ? " (every image at --objects MAX)"
             : plan.count_scale > 1 ? " (ground truths scaled from a sample of the batch)"
                                    : "");
  fmt::print("  config   {}\n", config.describe());
  fmt::print("  {:<10} {:>12} {:>12} {:>12} {:>12} {:>12}\n", "backend", "inputs", "outputs", "workspace", "device",
             "host total");
  bool all_ok = true;
  for (const Backend* b : backends) {
    auto m = b->plan_memory(plan.shape, config, options);
    if (!m) {
      const bool unknown = m.status().code() == ErrorCode::unavailable;
      all_ok = all_ok && unknown;
      fmt::print("  {:<10} {}: {}\n", b->name(), unknown ? "unknown" : "refused", m.status().message());
      continue;
    }
    fmt::print("  {:<10} {:>12} {:>12} {:>12} {:>12} {:>12}\n", b->name(), format_bytes(m->inputs),
               format_bytes(m->outputs), format_bytes(m->workspace), format_bytes(m->device),
               format_bytes(m->host_total()));
  }
  if (config.forced_match == ForcedMatch::bipartite) {
    const ReferenceCost cost = reference_match_cost(plan.counts, plan.shape.num_priors, config.forced_match);
    fmt::print("  reference matching: up to {:.3g} bipartite pairs, about {} a run (largest image: {} ground truths)\n",
               cost.pairs * plan.count_scale, fmt::format("{:.3g} s", cost.seconds * plan.count_scale),
               cost.largest_count);
  }
  return all_ok;
}

namespace {

std::string duration(double seconds) {
  if (seconds >= 2 * 3600) return fmt::format("{:.1f} h", seconds / 3600);
  if (seconds >= 120) return fmt::format("{:.0f} min", seconds / 60);
  return fmt::format("{:.0f} s", seconds);
}

}  // namespace

void warn_reference_cost(std::string_view command, std::string_view subject, std::span<const int> counts,
                         double count_scale, int num_priors, const Config& config, int runs, std::string_view hint) {
  const ReferenceCost cost = reference_match_cost(counts, num_priors, config.forced_match);
  const double per_run = cost.seconds * count_scale;
  if (per_run * runs <= kSlowRunSeconds) return;
  std::cerr << fmt::format(
      "multibox {}: note: {}: the reference backend '{}' matches with {}; image {} has {} ground truths x {} "
      "priors: up to {:.3g} pairs, about {} a run (at {} ns a pair, SPEC section 14){}. {}\n",
      command, subject, reference_backend().name(),
      config.forced_match == ForcedMatch::bipartite ? "its O(G^2 P) bipartite loop" : "G x P IoUs per image",
      cost.largest_image,
      cost.largest_count, num_priors, cost.pairs * count_scale, duration(per_run), kReferencePairSeconds * 1e9,
      runs > 1 ? fmt::format(", {} runs: about {}", runs, duration(per_run * runs)) : std::string(), hint);
}

}  // namespace multibox::cli
