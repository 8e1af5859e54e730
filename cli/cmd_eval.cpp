// `multibox eval`: runs named workloads through one backend (or every available one) and prints the loss terms,
// per-image positives / mined negatives / unmatched ground truths, and the median time of each cumulative stage.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "multibox/limits.hpp"
#include "multibox/registry.hpp"
#include "options.hpp"
#include "multibox/workloads.hpp"

namespace multibox::cli {
namespace {

constexpr Stage kStages[] = {Stage::match, Stage::encode, Stage::forward, Stage::backward};
// Batches up to this many images get one table row per image; larger ones a min/median/max summary.
constexpr int kPerImageTableMaxImages = 8;

struct EvalFlags {
  WorkloadFlags workload;
  ConfigFlags config;
  std::string backend;  // empty: select_backend("") (MULTIBOX_BACKEND, else the first non-reference available)
  int threads = 0;
  int repeats = 5;
  bool json = false;
  bool per_image = false;
  bool dry_run = false;
};

// Thrown (and caught in the callback) to stop with one line on stderr.
struct EvalError {
  std::string message;
};

struct ImageCounts {
  int ground_truths = 0, forced = 0, positives = 0, negatives = 0, ignored = 0, mined = 0, unmatched = 0;
};

struct RunResult {
  std::string workload, workload_description, prior_set, backend;
  ProblemShape shape;
  int total_ground_truths = 0;
  Config config;
  LossTerms loss;
  std::vector<ImageCounts> images;
  double stage_ms[4] = {0, 0, 0, 0};  // median over `repeats`, indexed like kStages
  int repeats = 0;
  int threads = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<ImageCounts> count_per_image(const Workload& w, const BatchOutputs& out) {
  const int B = w.shape.batch, P = w.shape.num_priors;
  const GroundTruthView gt = w.data.ground_truths();
  std::vector<ImageCounts> images(B);
  for (int b = 0; b < B; ++b) {
    ImageCounts& c = images[b];
    c.ground_truths = gt.count(b);
    for (int32_t i = gt.offsets[b]; i < gt.offsets[b + 1]; ++i) c.forced += out.forced_prior[i] >= 0 ? 1 : 0;
    for (int p = 0; p < P; ++p) {
      const int32_t m = out.matches[static_cast<size_t>(b) * P + p];
      c.negatives += m == kNegative ? 1 : 0;
      c.ignored += m == kIgnored ? 1 : 0;
    }
    c.positives = out.positives[b];
    c.mined = out.mined_negatives[b];
    c.unmatched = out.unmatched_ground_truths[b];
  }
  return images;
}

// Computes the outputs once on fully checked inputs, then times each cumulative stage on a second plan that skips
// the NaN/Inf scan of the predictions (already done), so the times are those of the algorithm.
RunResult run_one(const Backend& backend, const Workload& w, const Config& config, const EvalFlags& f) {
  RunResult r;
  r.workload = w.name;
  r.workload_description = w.description;
  r.prior_set = w.prior_set;
  r.backend = std::string(backend.name());
  r.shape = w.shape;
  r.total_ground_truths = w.data.ground_truths().total();
  r.config = config;
  r.repeats = f.repeats;
  r.threads = f.threads;

  auto fail = [&](const Status& s) {
    return EvalError{fmt::format("workload '{}', backend '{}': {}", w.name, backend.name(), s.to_string())};
  };
  PlanOptions checked;
  checked.num_threads = f.threads;
  auto plan = backend.prepare(w.shape, w.priors, config, checked);
  if (!plan) throw fail(plan.status());
  BatchOutputs out(w.shape, r.total_ground_truths);
  if (Status s = (*plan)->run(w.data.ground_truths(), w.data.predictions(), Stage::backward, out.view()); !s)
    throw fail(s);
  r.loss = out.loss;
  r.images = count_per_image(w, out);

  PlanOptions timed = checked;
  timed.check_prediction_values = false;
  auto timing_plan = backend.prepare(w.shape, w.priors, config, timed);
  if (!timing_plan) throw fail(timing_plan.status());
  for (size_t i = 0; i < std::size(kStages); ++i) {
    std::vector<double> ms;
    for (int rep = -1; rep < f.repeats; ++rep) {  // rep -1 warms caches and lazy allocations, untimed
      const auto t0 = std::chrono::steady_clock::now();
      const Status s = (*timing_plan)->run(w.data.ground_truths(), w.data.predictions(), kStages[i], out.view());
      const auto t1 = std::chrono::steady_clock::now();
      if (!s) throw fail(s);
      if (rep >= 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    r.stage_ms[i] = median(std::move(ms));
  }
  return r;
}

// ---- human-readable output ----

struct Spread {
  int min = 0, max = 0, total = 0;
  double median = 0;
};

template <class Field>
Spread spread(const std::vector<ImageCounts>& images, Field field) {
  std::vector<double> v;
  Spread s;
  for (const ImageCounts& c : images) v.push_back(field(c)), s.total += field(c);
  if (v.empty()) return s;
  s.min = static_cast<int>(*std::min_element(v.begin(), v.end()));
  s.max = static_cast<int>(*std::max_element(v.begin(), v.end()));
  s.median = median(v);
  return s;
}

void print_images(const std::vector<ImageCounts>& images, bool full_table) {
  if (full_table) {
    fmt::print("  {:>5} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "image", "GTs", "forced", "positive",
               "negative", "ignored", "mined", "unmatched");
    for (size_t b = 0; b < images.size(); ++b) {
      const ImageCounts& c = images[b];
      fmt::print("  {:>5} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}\n", b, c.ground_truths, c.forced, c.positives,
                 c.negatives, c.ignored, c.mined, c.unmatched);
    }
    return;
  }
  struct Row {
    const char* name;
    int ImageCounts::*field;
  };
  const Row rows[] = {{"GTs", &ImageCounts::ground_truths},   {"forced", &ImageCounts::forced},
                      {"positive P_b", &ImageCounts::positives}, {"negative", &ImageCounts::negatives},
                      {"ignored", &ImageCounts::ignored},        {"mined K_b", &ImageCounts::mined},
                      {"unmatched GTs", &ImageCounts::unmatched}};
  fmt::print("  {:<14} {:>8} {:>8} {:>8} {:>10}\n", "per image", "min", "median", "max", "total");
  for (const Row& row : rows) {
    const Spread s = spread(images, [&](const ImageCounts& c) { return c.*row.field; });
    fmt::print("  {:<14} {:>8} {:>8g} {:>8} {:>10}\n", row.name, s.min, s.median, s.max, s.total);
  }
}

void print_run(const RunResult& r, bool per_image) {
  fmt::print("== {} on {} ({})\n", r.workload, r.backend, r.workload_description);
  fmt::print("  shape    {} ({} ground truths, prior set {})\n", r.shape.describe(), r.total_ground_truths,
             r.prior_set);
  fmt::print("  config   {}\n", r.config.describe());
  fmt::print("  loss     L = {:.6f}   L_conf/N = {:.6f}   L_loc/N = {:.6f}   N = {}\n", r.loss.total, r.loss.conf,
             r.loss.loc, r.loss.num_positives);
  if (r.loss.num_positives == 0) fmt::print("           N = 0: no positives, so the loss and every gradient are 0\n");
  print_images(r.images, per_image || static_cast<int>(r.images.size()) <= kPerImageTableMaxImages);
  int unmatched = 0;
  for (const ImageCounts& c : r.images) unmatched += c.unmatched;
  if (unmatched > 0)
    fmt::print("  note     {} ground truth(s) got no prior at all ({})\n", unmatched,
               r.config.forced_match == ForcedMatch::argmax
                   ? "they overlap no prior, or lost an argmax conflict and reach the threshold with no prior"
                   : "every prior they overlap was taken by another ground truth, or they overlap none");
  fmt::print("  time     median of {} run(s), each stage includes the ones above it{}\n", r.repeats,
             r.threads > 0 ? fmt::format(", {} thread(s)", r.threads) : std::string());
  for (size_t i = 0; i < std::size(kStages); ++i) {
    // The difference to the stage above estimates what this stage adds; noise can make it slightly negative.
    const std::string added =
        i == 0 ? std::string() : fmt::format("   ({:+.3f} ms)", r.stage_ms[i] - r.stage_ms[i - 1]);
    fmt::print("    {:<9} {:>10.3f} ms{}\n", to_string(kStages[i]), r.stage_ms[i], added);
  }
  fmt::print("\n");
}

void print_summary(const std::vector<RunResult>& runs) {
  fmt::print("== summary (times: median ms of each cumulative stage)\n");
  std::size_t width = 8;  // plugin backends may have longer names than the built-ins
  for (const RunResult& r : runs) width = std::max(width, r.backend.size());
  fmt::print("  {:<14} {:<{}} {:>4} {:>6} {:>3} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}\n", "workload",
             "backend", width, "B", "P", "C", "N", "L", "L_conf/N", "L_loc/N", "match", "encode", "forward",
             "backward");
  for (const RunResult& r : runs)
    fmt::print("  {:<14} {:<{}} {:>4} {:>6} {:>3} {:>6} {:>10.5f} {:>10.5f} {:>10.5f} {:>9.2f} {:>9.2f} {:>9.2f} "
               "{:>9.2f}\n",
               r.workload, r.backend, width, r.shape.batch, r.shape.num_priors, r.shape.num_classes,
               r.loss.num_positives, r.loss.total, r.loss.conf, r.loss.loc, r.stage_ms[0], r.stage_ms[1],
               r.stage_ms[2], r.stage_ms[3]);
}

// ---- machine-readable output ----

// A float config value as the decimal it was written as (0.1, not 0.10000000149011612 from widening to double).
double decimal(float v) { return std::stod(fmt::format("{}", v)); }

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json images = nlohmann::json::array();
  for (const ImageCounts& c : r.images)
    images.push_back({{"ground_truths", c.ground_truths},
                      {"forced", c.forced},
                      {"positives", c.positives},
                      {"negatives", c.negatives},
                      {"ignored", c.ignored},
                      {"mined_negatives", c.mined},
                      {"unmatched_ground_truths", c.unmatched}});
  nlohmann::json stages = nlohmann::json::object();
  for (size_t i = 0; i < std::size(kStages); ++i) stages[to_string(kStages[i])] = r.stage_ms[i];
  const Config& c = r.config;
  return {
      {"workload", r.workload},
      {"description", r.workload_description},
      {"prior_set", r.prior_set},
      {"backend", r.backend},
      {"shape",
       {{"batch", r.shape.batch},
        {"num_priors", r.shape.num_priors},
        {"num_classes", r.shape.num_classes},
        {"ground_truths", r.total_ground_truths}}},
      {"config",
       {{"forced_match", to_string(c.forced_match)},
        {"pos_threshold", decimal(c.pos_threshold)},
        {"neg_threshold", decimal(c.negative_threshold())},
        {"variances", {decimal(c.variance_xy), decimal(c.variance_wh)}},
        {"neg_pos_ratio", c.neg_pos_ratio},
        {"min_negatives_per_image", c.min_negatives_per_image},
        {"alpha", decimal(c.alpha)},
        {"smooth_l1_beta", decimal(c.smooth_l1_beta)}}},
      {"loss",
       {{"total", r.loss.total},
        {"conf_per_positive", r.loss.conf},
        {"loc_per_positive", r.loss.loc},
        {"conf_sum", r.loss.conf_sum},
        {"loc_sum", r.loss.loc_sum},
        {"num_positives", r.loss.num_positives}}},
      {"images", std::move(images)},
      {"time_ms", {{"statistic", "median"}, {"repeats", r.repeats}, {"threads", r.threads}, {"stages", stages}}},
  };
}

// ---- the command ----

std::vector<const Backend*> chosen_backends(const std::string& requested, std::vector<std::string>& skipped) {
  // MULTIBOX_BACKEND forces one backend for every tool, `--backend all` included (select_backend applies it).
  const char* forced = std::getenv(kBackendEnvVar);
  if (requested == "all" && (forced == nullptr || *forced == '\0')) {
    std::vector<const Backend*> list;
    for (const Backend* b : all_backends()) {
      if (Status s = b->available(); s) list.push_back(b);
      else skipped.push_back(fmt::format("backend '{}' skipped: {}", b->name(), s.message()));
    }
    return list;
  }
  auto selected = select_backend(requested);
  if (!selected) throw EvalError{selected.status().message()};
  return {*selected};
}

std::vector<std::string> chosen_workloads(const std::vector<std::string>& requested) {
  std::vector<std::string> names;
  for (const std::string& name : requested) {
    if (name == "all") {
      for (const WorkloadInfo& info : list_workloads()) names.push_back(info.name);
    } else {
      names.push_back(name);
    }
  }
  return names;
}

// A run holds the workload (inputs), one BatchOutputs (outputs) and two plans (checked and timed) at once. Known
// before anything is allocated, so a batch larger than the machine is refused here rather than killed by the kernel
// while filling memory that overcommit pretended to give. A backend whose limits refuse the shape fails here too,
// with prepare()'s message, before gigabytes are drawn.
void check_memory(const WorkloadPlan& plan, const Config& config, std::span<const Backend* const> backends,
                  const PlanOptions& options) {
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  for (const Backend* b : backends) {
    auto m = b->plan_memory(plan.shape, config, options);
    if (!m && m.status().code() != ErrorCode::unavailable)
      throw EvalError{fmt::format("workload '{}', backend '{}': {}", plan.name, b->name(), m.status().to_string())};
    const PlanMemory need = m ? *m : caller_memory(plan.shape);
    const uint64_t total = saturating_add(need.host_total(), need.workspace);
    if (physical > 0 && static_cast<double>(total) > 0.8 * physical)
      throw EvalError{fmt::format(
          "workload '{}' ({}) on backend '{}' needs about {} (inputs {}, outputs {}, workspace 2 x {}), more than "
          "80 % of this machine's {}; use a smaller --batch (`multibox eval --dry-run` shows the figures)",
          plan.name, plan.shape.describe(), b->name(), format_bytes(total), format_bytes(need.inputs),
          format_bytes(need.outputs), format_bytes(need.workspace), format_bytes(static_cast<uint64_t>(physical)))};
  }
}

int run_eval(const EvalFlags& f) {
  std::vector<std::string> notes;  // skipped backends/workloads, shown but not failures
  const std::vector<const Backend*> backends = chosen_backends(f.backend, notes);
  if (backends.empty()) throw EvalError{"no backend is available on this machine"};
  const std::vector<std::string>& requested = f.workload.workloads;
  const bool everything = std::find(requested.begin(), requested.end(), "all") != requested.end();
  PlanOptions plan_options;
  plan_options.num_threads = f.threads;

  std::vector<RunResult> runs;
  bool dry_run_ok = true;
  for (const std::string& name : chosen_workloads(requested)) {
    auto plan = plan_workload(name, f.workload);
    if (!plan) {
      // `all` includes file-backed workloads whose file may be absent here: skip those, fail on anything else.
      if (everything && plan.status().code() == ErrorCode::io_error) {
        notes.push_back(fmt::format("workload '{}' skipped: {}", name, plan.status().message()));
        continue;
      }
      throw EvalError{fmt::format("workload '{}': {}", name, plan.status().to_string())};
    }
    const Config config = f.config.apply(plan->config);
    if (Status s = config.validate(); !s) throw EvalError{s.to_string()};
    if (f.dry_run) {
      dry_run_ok = print_dry_run(*plan, config, backends, plan_options) && dry_run_ok;
      continue;
    }
    check_memory(*plan, config, backends, plan_options);
    if (std::find(backends.begin(), backends.end(), &reference_backend()) != backends.end())
      warn_reference_cost("eval", fmt::format("workload '{}'", name), plan->counts, plan->count_scale,
                          plan->shape.num_priors, config, 1 + 4 * (f.repeats + 1),
                          "Faster: --repeats 1 (runs: 1 checked + 4 stages x (repeats + 1 warm-up)), "
                          "--forced-match argmax, or --backend simd.");
    auto workload = build_workload(name, f.workload);
    if (!workload) throw EvalError{fmt::format("workload '{}': {}", name, workload.status().to_string())};
    for (const Backend* b : backends) {
      runs.push_back(run_one(*b, *workload, config, f));
      if (!f.json) print_run(runs.back(), f.per_image);
      std::cout.flush();
    }
  }
  if (f.dry_run) {
    for (const std::string& note : notes) fmt::print("  {}\n", note);
    return dry_run_ok ? 0 : 1;
  }

  if (f.json) {
    nlohmann::json doc = {{"runs", nlohmann::json::array()}, {"skipped", notes}};
    for (const RunResult& r : runs) doc["runs"].push_back(to_json(r));
    std::cout << doc.dump(2) << '\n';
  } else {
    if (runs.size() > 1) print_summary(runs);
    for (const std::string& note : notes) fmt::print("  {}\n", note);
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate named workloads with a backend: loss terms, per-image positives and mined negatives, time "
              "per stage");
  f->workload.workloads = {"ssd300-voc"};
  add_workload_flags(*cmd, f->workload, /*several=*/true, /*required=*/false);
  cmd->add_option("-b,--backend", f->backend,
                  "Backend name, or 'all' for every available one (default: $MULTIBOX_BACKEND, else the first "
                  "available non-reference backend, else naive)");
  add_config_flags(*cmd, f->config);
  cmd->add_option("--threads", f->threads, "Threads for threaded backends (0: the backend's default)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max(), "NON-NEGATIVE"))
      ->capture_default_str();
  cmd->add_option("--repeats", f->repeats, "Timed runs per stage; the median is reported")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_flag("--per-image", f->per_image,
                fmt::format("One table row per image even for batches over {} images", kPerImageTableMaxImages));
  cmd->add_flag("--json", f->json, "Print one JSON document instead of the tables");
  cmd->add_flag("--dry-run", f->dry_run,
                "Allocate nothing: print each backend's memory for the run (inputs, outputs, workspace) or why it "
                "would refuse the shape, and the reference's matching estimate");

  cmd->callback([f] {
    int code = 0;
    try {
      code = run_eval(*f);
    } catch (const EvalError& e) {
      std::cerr << "multibox eval: " << e.message << '\n';
      code = 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "multibox eval: out of memory (try a smaller --batch)\n";
      code = 1;
    } catch (const std::exception& e) {
      std::cerr << "multibox eval: internal error: " << e.what() << '\n';
      code = 1;
    }
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace multibox::cli
