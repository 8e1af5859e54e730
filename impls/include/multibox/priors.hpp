// Prior (default box) sets of the standard SSD configurations, generated from their parameters.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "multibox/status.hpp"

namespace multibox {

// SSD-style pyramid: per feature map, a square of min_size, a square of sqrt(min_size * max_size), and for
// each aspect ratio r a pair (s*sqrt(r), s/sqrt(r)) and its transpose. Sizes in pixels of image_size.
struct PyramidSpec {
  int image_size = 300;
  std::vector<int> feature_maps;
  std::vector<int> steps;  // pixels per cell; empty means image_size / feature_map
  std::vector<float> min_sizes;
  std::vector<float> max_sizes;
  std::vector<std::vector<int>> aspect_ratios;
  bool clip = false;  // ssd.pytorch clips to [0,1]; the SSD paper's sets are not clipped
};

PyramidSpec ssd300_spec();
PyramidSpec ssd512_spec();

// Priors as [P][4] centre-size (cx, cy, w, h), normalised, in feature-map, row, column, box order.
Result<std::vector<float>> pyramid_priors(const PyramidSpec& spec);

// Dense grid: for each cell of a rows x cols grid, one box per (scale, ratio) with w = s*sqrt(r), h = s/sqrt(r),
// centred at ((j+0.5)/cols, (i+0.5)/rows). The tutorial set is a 7x7 grid with scales {0.2,0.4,0.6} x ratios
// {1,2,0.5}.
Result<std::vector<float>> grid_priors(int rows, int cols, const std::vector<float>& scales,
                                       const std::vector<float>& ratios);

std::vector<float> ssd300_priors();    // 8732
std::vector<float> ssd512_priors();    // 24564
std::vector<float> tutorial_priors();  // 441

// By name: "ssd300", "ssd512", "tutorial", or "grid:ROWSxCOLS:s1,s2,..:r1,r2,.." for a dense set.
Result<std::vector<float>> priors_by_name(std::string_view name);

}  // namespace multibox
