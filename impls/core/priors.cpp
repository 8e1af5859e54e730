// Prior sets of the SSD paper (Liu et al. 2016) as configured in ssd.pytorch / the Caffe release, and the
// tutorial's 7x7x9 grid. Generated from their parameters so the counts are checked, not typed in.
#include "multibox/priors.hpp"

#include <cmath>
#include <charconv>

#include <fmt/format.h>

namespace multibox {

PyramidSpec ssd300_spec() {
  PyramidSpec s;
  s.image_size = 300;
  s.feature_maps = {38, 19, 10, 5, 3, 1};
  s.steps = {8, 16, 32, 64, 100, 300};
  s.min_sizes = {30, 60, 111, 162, 213, 264};
  s.max_sizes = {60, 111, 162, 213, 264, 315};
  s.aspect_ratios = {{2}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}};
  return s;
}

PyramidSpec ssd512_spec() {
  PyramidSpec s;
  s.image_size = 512;
  s.feature_maps = {64, 32, 16, 8, 4, 2, 1};
  s.steps = {8, 16, 32, 64, 128, 256, 512};
  s.min_sizes = {35.84f, 76.8f, 153.6f, 230.4f, 307.2f, 384.0f, 460.8f};
  s.max_sizes = {76.8f, 153.6f, 230.4f, 307.2f, 384.0f, 460.8f, 537.6f};
  s.aspect_ratios = {{2}, {2, 3}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}};
  return s;
}

Result<std::vector<float>> pyramid_priors(const PyramidSpec& spec) {
  const size_t levels = spec.feature_maps.size();
  if (levels == 0) return Status(ErrorCode::invalid_config, "prior pyramid has no feature maps");
  if (spec.min_sizes.size() != levels || spec.max_sizes.size() != levels || spec.aspect_ratios.size() != levels ||
      (!spec.steps.empty() && spec.steps.size() != levels))
    return Status(ErrorCode::invalid_config,
                  fmt::format("prior pyramid lists disagree: {} feature maps, {} steps, {} min sizes, {} max sizes, "
                              "{} aspect-ratio lists",
                              levels, spec.steps.size(), spec.min_sizes.size(), spec.max_sizes.size(),
                              spec.aspect_ratios.size()));
  if (spec.image_size <= 0)
    return Status(ErrorCode::invalid_config, fmt::format("image_size must be > 0, got {}", spec.image_size));
  std::vector<float> out;
  const double image = spec.image_size;
  auto push = [&](double cx, double cy, double w, double h) {
    if (spec.clip) {
      auto clamp01 = [](double v) { return v < 0 ? 0.0 : (v > 1 ? 1.0 : v); };
      cx = clamp01(cx), cy = clamp01(cy), w = clamp01(w), h = clamp01(h);
    }
    out.insert(out.end(), {static_cast<float>(cx), static_cast<float>(cy), static_cast<float>(w),
                           static_cast<float>(h)});
  };
  for (size_t k = 0; k < levels; ++k) {
    const int f = spec.feature_maps[k];
    if (f <= 0 || spec.min_sizes[k] <= 0 || spec.max_sizes[k] <= 0)
      return Status(ErrorCode::invalid_config, fmt::format("prior pyramid level {}: sizes must be > 0", k));
    const double step = spec.steps.empty() ? image / f : spec.steps[k];
    const double cells = image / step;  // ssd.pytorch divides by the step, not the feature-map size
    const double s = spec.min_sizes[k] / image;
    const double s_prime = std::sqrt(s * (spec.max_sizes[k] / image));
    for (int i = 0; i < f; ++i) {
      for (int j = 0; j < f; ++j) {
        const double cx = (j + 0.5) / cells;
        const double cy = (i + 0.5) / cells;
        push(cx, cy, s, s);
        push(cx, cy, s_prime, s_prime);
        for (int r : spec.aspect_ratios[k]) {
          const double sr = std::sqrt(static_cast<double>(r));
          push(cx, cy, s * sr, s / sr);
          push(cx, cy, s / sr, s * sr);
        }
      }
    }
  }
  return out;
}

Result<std::vector<float>> grid_priors(int rows, int cols, const std::vector<float>& scales,
                                       const std::vector<float>& ratios) {
  if (rows <= 0 || cols <= 0)
    return Status(ErrorCode::invalid_config, fmt::format("grid must be at least 1x1, got {}x{}", rows, cols));
  if (scales.empty() || ratios.empty())
    return Status(ErrorCode::invalid_config, "grid priors need at least one scale and one ratio");
  for (float s : scales)
    if (!(s > 0) || !std::isfinite(s))
      return Status(ErrorCode::invalid_config, fmt::format("grid scale must be finite and > 0, got {}", s));
  for (float r : ratios)
    if (!(r > 0) || !std::isfinite(r))
      return Status(ErrorCode::invalid_config, fmt::format("grid ratio must be finite and > 0, got {}", r));
  std::vector<float> out;
  out.reserve(static_cast<size_t>(rows) * cols * scales.size() * ratios.size() * 4);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      for (float s : scales)
        for (float r : ratios) {
          const double sr = std::sqrt(static_cast<double>(r));
          out.insert(out.end(), {static_cast<float>((j + 0.5) / cols), static_cast<float>((i + 0.5) / rows),
                                 static_cast<float>(s * sr), static_cast<float>(s / sr)});
        }
  return out;
}

std::vector<float> ssd300_priors() { return pyramid_priors(ssd300_spec()).value(); }
std::vector<float> ssd512_priors() { return pyramid_priors(ssd512_spec()).value(); }
std::vector<float> tutorial_priors() { return grid_priors(7, 7, {0.2f, 0.4f, 0.6f}, {1.0f, 2.0f, 0.5f}).value(); }

namespace {

Result<std::vector<float>> parse_floats(std::string_view text, std::string_view what) {
  std::vector<float> values;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    float v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || ptr != item.data() + item.size())
      return Status(ErrorCode::invalid_config, fmt::format("grid {}: '{}' is not a number", what, item));
    values.push_back(v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return values;
}

}  // namespace

Result<std::vector<float>> priors_by_name(std::string_view name) {
  if (name == "ssd300") return ssd300_priors();
  if (name == "ssd512") return ssd512_priors();
  if (name == "tutorial") return tutorial_priors();
  if (name.starts_with("grid:")) {
    // grid:ROWSxCOLS:scales:ratios
    std::string_view rest = name.substr(5);
    const size_t c1 = rest.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
    if (c2 == std::string_view::npos)
      return Status(ErrorCode::invalid_config,
                    fmt::format("prior set '{}': expected grid:ROWSxCOLS:s1,s2,..:r1,r2,..", name));
    const std::string_view dims = rest.substr(0, c1);
    const size_t x = dims.find('x');
    int rows = 0, cols = 0;
    if (x == std::string_view::npos ||
        std::from_chars(dims.data(), dims.data() + x, rows).ptr != dims.data() + x ||
        std::from_chars(dims.data() + x + 1, dims.data() + dims.size(), cols).ptr != dims.data() + dims.size())
      return Status(ErrorCode::invalid_config, fmt::format("prior set '{}': grid size '{}' is not ROWSxCOLS", name, dims));
    auto scales = parse_floats(rest.substr(c1 + 1, c2 - c1 - 1), "scales");
    if (!scales) return scales.status();
    auto ratios = parse_floats(rest.substr(c2 + 1), "ratios");
    if (!ratios) return ratios.status();
    return grid_priors(rows, cols, *scales, *ratios);
  }
  return Status(ErrorCode::invalid_config,
                fmt::format("unknown prior set '{}' (known: ssd300, ssd512, tutorial, grid:ROWSxCOLS:scales:ratios)",
                            name));
}

}  // namespace multibox
