#include "multibox/case_file.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <system_error>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "multibox/npy.hpp"

namespace multibox {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Status io_error(const fs::path& path, std::string what) {
  return {ErrorCode::io_error, fmt::format("{}: {}", path.string(), what)};
}
Status bad(const fs::path& path, std::string what) {
  return {ErrorCode::invalid_input, fmt::format("{}: {}", path.string(), what)};
}
// Re-labels a validation error so it names the case folder it came from.
Status in_case(const fs::path& dir, const Status& status) {
  return {status.code(), fmt::format("{}: {}", dir.string(), status.message())};
}

Status ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error(dir, "cannot create folder: " + ec.message());
  return {};
}

Result<json> read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return io_error(path, "cannot open for reading");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad(path, "is not valid JSON");
  if (!j.is_object()) return bad(path, "must hold a JSON object");
  return j;
}

Status write_json(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return io_error(path, "cannot open for writing");
  out << j.dump(2) << '\n';
  out.close();
  if (!out) return io_error(path, "write failed");
  return {};
}

// Field readers: each error names the file and the dotted field path.
Status field_error(const fs::path& path, std::string_view field, std::string_view what) {
  return bad(path, fmt::format("field \"{}\" {}", field, what));
}

Status get_number(const fs::path& path, const json& obj, const char* key, std::string_view field, double& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return field_error(path, field, "is missing");
  if (!it->is_number()) return field_error(path, field, fmt::format("must be a number, got {}", it->dump()));
  out = it->get<double>();
  if (!std::isfinite(out)) return field_error(path, field, "must be finite");
  return {};
}

Status get_float(const fs::path& path, const json& obj, const char* key, std::string_view field, float& out) {
  double value = 0;
  if (Status s = get_number(path, obj, key, field, value); !s) return s;
  out = static_cast<float>(value);
  return {};
}

Status get_int(const fs::path& path, const json& obj, const char* key, std::string_view field, int64_t& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return field_error(path, field, "is missing");
  if (!it->is_number_integer()) return field_error(path, field, fmt::format("must be an integer, got {}", it->dump()));
  out = it->get<int64_t>();
  return {};
}

Status get_int32(const fs::path& path, const json& obj, const char* key, std::string_view field, int& out) {
  int64_t value = 0;
  if (Status s = get_int(path, obj, key, field, value); !s) return s;
  if (value < INT32_MIN || value > INT32_MAX) return field_error(path, field, fmt::format("{} is out of range", value));
  out = static_cast<int>(value);
  return {};
}

Status get_string(const fs::path& path, const json& obj, const char* key, std::string_view field, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return field_error(path, field, "is missing");
  if (!it->is_string()) return field_error(path, field, fmt::format("must be a string, got {}", it->dump()));
  out = it->get<std::string>();
  return {};
}

// The shortest decimal that reads back as the same float, so case.json says 0.1 rather than 0.10000000149011612.
json float_json(float value) { return std::stod(fmt::format("{}", value)); }

json config_to_json(const Config& c) {
  json j;
  j["forced_match"] = to_string(c.forced_match);
  j["pos_threshold"] = float_json(c.pos_threshold);
  j["neg_threshold"] = c.neg_threshold ? float_json(*c.neg_threshold) : json(nullptr);
  j["variance_xy"] = float_json(c.variance_xy);
  j["variance_wh"] = float_json(c.variance_wh);
  j["neg_pos_ratio"] = c.neg_pos_ratio;
  j["min_negatives_per_image"] = c.min_negatives_per_image;
  j["alpha"] = float_json(c.alpha);
  j["smooth_l1_beta"] = float_json(c.smooth_l1_beta);
  return j;
}

Status config_from_json(const fs::path& path, const json& j, Config& c) {
  std::string mode;
  if (Status s = get_string(path, j, "forced_match", "config.forced_match", mode); !s) return s;
  auto parsed = parse_forced_match(mode);
  if (!parsed) return field_error(path, "config.forced_match", fmt::format("\"{}\" is not bipartite or argmax", mode));
  c.forced_match = *parsed;
  if (Status s = get_float(path, j, "pos_threshold", "config.pos_threshold", c.pos_threshold); !s) return s;
  // null or absent: no ignore band (neg_threshold follows pos_threshold).
  if (auto it = j.find("neg_threshold"); it != j.end() && !it->is_null()) {
    float neg = 0;
    if (Status s = get_float(path, j, "neg_threshold", "config.neg_threshold", neg); !s) return s;
    c.neg_threshold = neg;
  } else {
    c.neg_threshold.reset();
  }
  if (Status s = get_float(path, j, "variance_xy", "config.variance_xy", c.variance_xy); !s) return s;
  if (Status s = get_float(path, j, "variance_wh", "config.variance_wh", c.variance_wh); !s) return s;
  if (Status s = get_int32(path, j, "neg_pos_ratio", "config.neg_pos_ratio", c.neg_pos_ratio); !s) return s;
  if (Status s = get_int32(path, j, "min_negatives_per_image", "config.min_negatives_per_image",
                           c.min_negatives_per_image);
      !s)
    return s;
  if (Status s = get_float(path, j, "alpha", "config.alpha", c.alpha); !s) return s;
  if (Status s = get_float(path, j, "smooth_l1_beta", "config.smooth_l1_beta", c.smooth_l1_beta); !s) return s;
  if (Status s = c.validate(); !s) return bad(path, "config: " + s.message());
  return {};
}

int64_t total_gt(const Case& c) { return static_cast<int64_t>(c.data.gt_labels.size()); }

json loss_json(const LossTerms& l) {
  return json{{"total", l.total},       {"conf", l.conf},       {"loc", l.loc},
              {"conf_sum", l.conf_sum}, {"loc_sum", l.loc_sum}, {"num_positives", l.num_positives}};
}

// loss.json as written by any program: "conf_sum" and "loc_sum" may be left out.
Status read_loss(const fs::path& path, LossTerms& loss) {
  auto parsed = read_json(path);
  if (!parsed) return parsed.status();
  const json& j = *parsed;
  if (Status e = get_number(path, j, "total", "total", loss.total); !e) return e;
  if (Status e = get_number(path, j, "conf", "conf", loss.conf); !e) return e;
  if (Status e = get_number(path, j, "loc", "loc", loss.loc); !e) return e;
  int64_t n = 0;
  if (Status e = get_int(path, j, "num_positives", "num_positives", n); !e) return e;
  if (n < 0) return field_error(path, "num_positives", fmt::format("must be >= 0, got {}", n));
  loss.num_positives = n;
  const double norm = static_cast<double>(std::max<int64_t>(1, n));
  if (j.contains("conf_sum")) {
    if (Status e = get_number(path, j, "conf_sum", "conf_sum", loss.conf_sum); !e) return e;
  } else {
    loss.conf_sum = loss.conf * norm;
  }
  if (j.contains("loc_sum")) {
    if (Status e = get_number(path, j, "loc_sum", "loc_sum", loss.loc_sum); !e) return e;
  } else {
    loss.loc_sum = loss.loc * norm;
  }
  return {};
}

template <class T>
Status write_array(const fs::path& path, const std::vector<T>& values, std::vector<int64_t> shape) {
  return npy::write(path, values, std::move(shape));
}

template <class T>
Status read_array(const fs::path& path, std::vector<T>& out, std::initializer_list<int64_t> shape) {
  auto values = npy::read_as<T>(path, shape);
  if (!values) return values.status();
  out = std::move(values).value();
  return {};
}

}  // namespace

std::vector<int64_t> output_shape(std::string_view quantity, const ProblemShape& shape, int64_t ground_truths) {
  const OutputQuantity* q = find_output(quantity);
  if (!q) return {};
  const int64_t B = shape.batch, P = shape.num_priors, C = shape.num_classes;
  switch (q->extents) {
    case OutputExtents::none: return {};
    case OutputExtents::per_image: return {B};
    case OutputExtents::per_ground_truth: return {ground_truths};
    case OutputExtents::per_prior: return {B, P};
    case OutputExtents::per_prior_box: return {B, P, 4};
    case OutputExtents::per_prior_class: return {B, P, C};
  }
  return {};
}

std::string output_file_name(std::string_view quantity) {
  return std::string(quantity) + (quantity == "loss" ? ".json" : ".npy");
}

std::vector<std::string> quantities_of(Stage stage) {
  std::vector<std::string> names;
  for (const OutputQuantity& q : kOutputs)
    if (q.stage <= stage) names.emplace_back(q.name);
  return names;
}

Status write_case(const fs::path& dir, const Case& c) {
  if (Status s = c.shape.validate(); !s) return in_case(dir, s);
  if (Status s = validate_priors(c.priors, c.shape.num_priors); !s) return in_case(dir, s);
  if (Status s = validate_ground_truths(c.shape, c.data.ground_truths()); !s) return in_case(dir, s);
  if (Status s = validate_predictions(c.shape, c.data.predictions(), /*check_values=*/false); !s)
    return in_case(dir, s);
  if (Status s = ensure_dir(dir); !s) return s;

  json j;
  j["format"] = kCaseFormat;
  j["version"] = kCaseVersion;
  j["name"] = c.name;
  j["workload"] = c.workload;
  j["seed"] = c.seed;
  j["shape"] = {{"batch", c.shape.batch}, {"num_priors", c.shape.num_priors}, {"num_classes", c.shape.num_classes}};
  j["config"] = config_to_json(c.config);
  if (Status s = write_json(dir / "case.json", j); !s) return s;

  const int64_t B = c.shape.batch, P = c.shape.num_priors, C = c.shape.num_classes, G = total_gt(c);
  if (Status s = write_array(dir / "priors.npy", c.priors, {P, 4}); !s) return s;
  if (Status s = write_array(dir / "gt_boxes.npy", c.data.gt_boxes, {G, 4}); !s) return s;
  if (Status s = write_array(dir / "gt_labels.npy", c.data.gt_labels, {G}); !s) return s;
  if (Status s = write_array(dir / "gt_offsets.npy", c.data.gt_offsets, {B + 1}); !s) return s;
  if (Status s = write_array(dir / "conf.npy", c.data.conf, {B, P, C}); !s) return s;
  if (Status s = write_array(dir / "loc.npy", c.data.loc, {B, P, 4}); !s) return s;
  return {};
}

Result<Case> read_case(const fs::path& dir) {
  const fs::path json_path = dir / "case.json";
  auto parsed = read_json(json_path);
  if (!parsed) return parsed.status();
  const json& j = *parsed;

  std::string format;
  if (Status s = get_string(json_path, j, "format", "format", format); !s) return s;
  if (format != kCaseFormat)
    return field_error(json_path, "format", fmt::format("is \"{}\", expected \"{}\"", format, kCaseFormat));
  int version = 0;
  if (Status s = get_int32(json_path, j, "version", "version", version); !s) return s;
  if (version != kCaseVersion)
    return field_error(json_path, "version", fmt::format("is {}, this build reads version {}", version, kCaseVersion));

  Case c;
  if (Status s = get_string(json_path, j, "name", "name", c.name); !s) return s;
  // workload and seed describe provenance only; a hand-made case may leave them out.
  if (j.contains("workload")) {
    if (Status s = get_string(json_path, j, "workload", "workload", c.workload); !s) return s;
  }
  if (j.contains("seed")) {
    int64_t seed = 0;
    if (Status s = get_int(json_path, j, "seed", "seed", seed); !s) return s;
    if (j["seed"].is_number_unsigned()) seed = static_cast<int64_t>(j["seed"].get<uint64_t>());
    c.seed = static_cast<uint64_t>(seed);
  }
  auto shape_it = j.find("shape");
  if (shape_it == j.end() || !shape_it->is_object()) return field_error(json_path, "shape", "must be an object");
  if (Status s = get_int32(json_path, *shape_it, "batch", "shape.batch", c.shape.batch); !s) return s;
  if (Status s = get_int32(json_path, *shape_it, "num_priors", "shape.num_priors", c.shape.num_priors); !s) return s;
  if (Status s = get_int32(json_path, *shape_it, "num_classes", "shape.num_classes", c.shape.num_classes); !s)
    return s;
  auto config_it = j.find("config");
  if (config_it == j.end() || !config_it->is_object()) return field_error(json_path, "config", "must be an object");
  if (Status s = config_from_json(json_path, *config_it, c.config); !s) return s;

  const int64_t B = c.shape.batch, P = c.shape.num_priors, C = c.shape.num_classes;
  if (Status s = c.shape.validate(); !s) return bad(json_path, "shape: " + s.message());
  if (Status s = read_array(dir / "priors.npy", c.priors, {P, 4}); !s) return s;
  std::vector<int64_t> gt_shape;
  {
    auto boxes = npy::read_as<float>(dir / "gt_boxes.npy", {npy::kAnyDim, 4}, &gt_shape);
    if (!boxes) return boxes.status();
    c.data.gt_boxes = std::move(boxes).value();
  }
  const int64_t G = gt_shape[0];
  if (Status s = read_array(dir / "gt_labels.npy", c.data.gt_labels, {G}); !s) return s;
  if (Status s = read_array(dir / "gt_offsets.npy", c.data.gt_offsets, {B + 1}); !s) return s;
  if (Status s = read_array(dir / "conf.npy", c.data.conf, {B, P, C}); !s) return s;
  if (Status s = read_array(dir / "loc.npy", c.data.loc, {B, P, 4}); !s) return s;
  c.shape.max_ground_truths = static_cast<int>(G);
  if (Status s = validate_priors(c.priors, c.shape.num_priors); !s) return in_case(dir / "priors.npy", s);
  if (Status s = validate_ground_truths(c.shape, c.data.ground_truths()); !s) return in_case(dir, s);
  if (Status s = validate_predictions(c.shape, c.data.predictions()); !s) return in_case(dir, s);
  return c;
}

Status write_outputs(const fs::path& dir, const Case& c, const BatchOutputs& o, Stage stage) {
  if (Status s = ensure_dir(dir); !s) return s;
  for (const std::string& q : quantities_of(stage)) {
    const fs::path path = dir / output_file_name(q);
    Status s;
    visit_output(o, q, [&](const auto& field) {
      if constexpr (std::is_same_v<std::decay_t<decltype(field)>, LossTerms>)
        s = write_json(path, loss_json(field));
      else
        s = write_array(path, field, output_shape(q, c.shape, total_gt(c)));
    });
    if (!s) return s;
  }
  return {};
}

bool LoadedOutputs::has(std::string_view quantity) const {
  return std::find(present.begin(), present.end(), quantity) != present.end();
}

std::optional<Stage> LoadedOutputs::complete_stage() const {
  std::optional<Stage> best;
  for (Stage stage : {Stage::match, Stage::encode, Stage::forward, Stage::backward}) {
    for (const std::string& q : quantities_of(stage))
      if (!has(q)) return best;
    best = stage;
  }
  return best;
}

Result<LoadedOutputs> read_outputs(const fs::path& dir, const Case& c) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return io_error(dir, "is not a folder");
  LoadedOutputs loaded;
  loaded.outputs = BatchOutputs(c.shape, static_cast<int>(total_gt(c)));
  BatchOutputs& o = loaded.outputs;
  for (const char* q : kOutputQuantities) {
    const std::string name = q;
    const fs::path path = dir / output_file_name(name);
    if (!fs::exists(path, ec)) continue;
    Status s;
    visit_output(o, name, [&](auto& field) {
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<T, LossTerms>) {
        s = read_loss(path, field);
      } else {
        auto values = npy::read_as<typename T::value_type>(path, output_shape(name, c.shape, total_gt(c)));
        if (!values) s = values.status();
        else field = std::move(values).value();
      }
    });
    if (!s) return s;
    loaded.present.push_back(name);
  }
  return loaded;
}

}  // namespace multibox
