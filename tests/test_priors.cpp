// Prior sets of DESIGN.md section 7: sizes and known coordinates, checked against ssd.pytorch's formula
// cx = (j + 0.5) / (image / step), cy = (i + 0.5) / (image / step), per cell s, sqrt(s * s_next), then per ratio r
// (s sqrt r, s / sqrt r) and its transpose.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "multibox/multibox.hpp"

namespace multibox {
namespace {

using ::testing::HasSubstr;

constexpr float kCoordTol = 1e-6f;  // generated in double, stored as float: half an ulp of values below 2

void expect_prior(const std::vector<float>& priors, size_t index, float cx, float cy, float w, float h) {
  SCOPED_TRACE("prior " + std::to_string(index));
  ASSERT_LT(index * 4 + 3, priors.size());
  EXPECT_NEAR(priors[index * 4 + 0], cx, kCoordTol);
  EXPECT_NEAR(priors[index * 4 + 1], cy, kCoordTol);
  EXPECT_NEAR(priors[index * 4 + 2], w, kCoordTol);
  EXPECT_NEAR(priors[index * 4 + 3], h, kCoordTol);
}

TEST(Priors, StandardSetSizes) {
  // SSD300: 38^2*4 + 19^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 = 5776 + 2166 + 600 + 150 + 36 + 4 = 8732.
  EXPECT_EQ(ssd300_priors().size(), 8732u * 4);
  // SSD512: 64^2*4 + 32^2*6 + 16^2*6 + 8^2*6 + 4^2*6 + 2^2*4 + 1*4 = 16384 + 6144 + 1536 + 384 + 96 + 16 + 4 = 24564.
  EXPECT_EQ(ssd512_priors().size(), 24564u * 4);
  // Tutorial: 7 x 7 cells x 3 scales x 3 ratios = 441.
  EXPECT_EQ(tutorial_priors().size(), 441u * 4);
}

TEST(Priors, Ssd300KnownCoordinates) {
  const std::vector<float> p = ssd300_priors();
  const float sqrt2 = std::sqrt(2.0f);
  // Level 0: image 300, step 8 -> 300 / 8 = 37.5 cells per side (ssd.pytorch divides by the step, not by 38).
  // Cell (0, 0): cx = cy = 0.5 / 37.5 = 4/300. s = 30/300 = 0.1, s' = sqrt(0.1 * 60/300) = sqrt(0.02).
  expect_prior(p, 0, 4.0f / 300, 4.0f / 300, 0.1f, 0.1f);
  expect_prior(p, 1, 4.0f / 300, 4.0f / 300, std::sqrt(0.02f), std::sqrt(0.02f));
  expect_prior(p, 2, 4.0f / 300, 4.0f / 300, 0.1f * sqrt2, 0.1f / sqrt2);  // ratio 2
  expect_prior(p, 3, 4.0f / 300, 4.0f / 300, 0.1f / sqrt2, 0.1f * sqrt2);  // its transpose
  // Cell (0, 1) starts at prior 4: cx = 1.5 / 37.5 = 0.04.
  expect_prior(p, 4, 0.04f, 4.0f / 300, 0.1f, 0.1f);
  // Cell (0, 37), prior 37 * 4 = 148: cx = 37.5 / 37.5 = 1 exactly (dividing by 38 would give 0.98684).
  expect_prior(p, 148, 1.0f, 4.0f / 300, 0.1f, 0.1f);
  // Cell (1, 0), prior 38 * 4 = 152: cy = 1.5 / 37.5 = 0.04.
  expect_prior(p, 152, 4.0f / 300, 0.04f, 0.1f, 0.1f);
  // Level 1 starts after 38*38*4 = 5776 priors: step 16 -> 18.75 cells, cx = cy = 0.5 / 18.75 = 2/75; s = 60/300.
  // Its aspect ratios are {2, 3}: boxes 4 and 5 of the cell are (s sqrt3, s / sqrt3) and the transpose.
  expect_prior(p, 5776, 2.0f / 75, 2.0f / 75, 0.2f, 0.2f);
  expect_prior(p, 5776 + 1, 2.0f / 75, 2.0f / 75, std::sqrt(0.2f * 111 / 300), std::sqrt(0.2f * 111 / 300));
  expect_prior(p, 5776 + 4, 2.0f / 75, 2.0f / 75, 0.2f * std::sqrt(3.0f), 0.2f / std::sqrt(3.0f));
  // Last level: 1x1 cell, step 300 -> cx = cy = 0.5; s = 264/300 = 0.88, s' = sqrt(0.88 * 315/300) = sqrt(0.924).
  expect_prior(p, 8728, 0.5f, 0.5f, 0.88f, 0.88f);
  expect_prior(p, 8729, 0.5f, 0.5f, std::sqrt(0.924f), std::sqrt(0.924f));
  expect_prior(p, 8731, 0.5f, 0.5f, 0.88f / sqrt2, 0.88f * sqrt2);  // not clipped: h = 1.2445 > 1
}

TEST(Priors, Ssd300MatchesSsdPytorchPriorBox) {
  // ssd.pytorch's PriorBox.forward for its VOC config, transcribed with the config lists typed in from
  // data/config.py (so a wrong ssd300_spec() is caught, not just a wrong generator):
  //   for k, f: for i, j in product(range(f), repeat=2):
  //     f_k = image_size / steps[k]; cx = (j + .5) / f_k; cy = (i + .5) / f_k; s_k = min_sizes[k] / image_size
  //     [cx, cy, s_k, s_k], [cx, cy, s', s'] with s' = sqrt(s_k * max_sizes[k] / image_size),
  //     per ar: [cx, cy, s_k sqrt(ar), s_k / sqrt(ar)], [cx, cy, s_k / sqrt(ar), s_k sqrt(ar)]
  const int feature_maps[] = {38, 19, 10, 5, 3, 1};
  const int steps[] = {8, 16, 32, 64, 100, 300};
  const double min_sizes[] = {30, 60, 111, 162, 213, 264};
  const double max_sizes[] = {60, 111, 162, 213, 264, 315};
  const std::vector<std::vector<double>> aspect_ratios = {{2}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}};
  std::vector<double> mean;
  for (int k = 0; k < 6; ++k) {
    const int f = feature_maps[k];
    for (int i = 0; i < f; ++i)
      for (int j = 0; j < f; ++j) {
        const double f_k = 300.0 / steps[k];
        const double cx = (j + 0.5) / f_k, cy = (i + 0.5) / f_k, s_k = min_sizes[k] / 300.0;
        const double s_prime = std::sqrt(s_k * (max_sizes[k] / 300.0));
        mean.insert(mean.end(), {cx, cy, s_k, s_k, cx, cy, s_prime, s_prime});
        for (double ar : aspect_ratios[k])
          mean.insert(mean.end(), {cx, cy, s_k * std::sqrt(ar), s_k / std::sqrt(ar), cx, cy, s_k / std::sqrt(ar),
                                   s_k * std::sqrt(ar)});
      }
  }
  const std::vector<float> p = ssd300_priors();
  ASSERT_EQ(p.size(), mean.size());
  size_t worst = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (std::abs(p[i] - mean[i]) > std::abs(p[worst] - mean[worst])) worst = i;
  EXPECT_NEAR(p[worst], mean[worst], kCoordTol) << "prior " << worst / 4 << " coordinate " << worst % 4;
}

TEST(Priors, ClipOptionClampsToTheImageLikeSsdPytorch) {
  // ssd.pytorch clamps every value to [0, 1] when clip is set: the last SSD300 prior (.5, .5, .622, 1.2445) has its
  // height clamped to 1; unclipped it extends past the image.
  PyramidSpec spec = ssd300_spec();
  spec.clip = true;
  auto clipped = pyramid_priors(spec);
  ASSERT_TRUE(clipped.ok()) << clipped.status().to_string();
  ASSERT_EQ(clipped->size(), 8732u * 4);
  for (float v : *clipped) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v;
  expect_prior(*clipped, 8731, 0.5f, 0.5f, 0.88f / std::sqrt(2.0f), 1.0f);
}

TEST(Priors, Ssd512KnownCoordinates) {
  const std::vector<float> p = ssd512_priors();
  // Step 8 on 512 -> 64 cells: cx = cy = 0.5 / 64 = 0.0078125; s = 35.84 / 512 = 0.07, s' = sqrt(0.07 * 0.15).
  expect_prior(p, 0, 0.0078125f, 0.0078125f, 0.07f, 0.07f);
  expect_prior(p, 1, 0.0078125f, 0.0078125f, std::sqrt(0.07f * 0.15f), std::sqrt(0.07f * 0.15f));
  // Last: 1x1 cell, s = 460.8 / 512 = 0.9, ratio 2 transposed: (0.9 / sqrt2, 0.9 * sqrt2).
  expect_prior(p, 24563, 0.5f, 0.5f, 0.9f / std::sqrt(2.0f), 0.9f * std::sqrt(2.0f));
}

TEST(Priors, TutorialKnownCoordinates) {
  const std::vector<float> p = tutorial_priors();
  const float sqrt2 = std::sqrt(2.0f);
  // Per cell 9 boxes, scales outer {.2, .4, .6}, ratios inner {1, 2, .5}; w = s sqrt r, h = s / sqrt r.
  expect_prior(p, 0, 0.5f / 7, 0.5f / 7, 0.2f, 0.2f);
  expect_prior(p, 1, 0.5f / 7, 0.5f / 7, 0.2f * sqrt2, 0.2f / sqrt2);
  expect_prior(p, 2, 0.5f / 7, 0.5f / 7, 0.2f / sqrt2, 0.2f * sqrt2);
  expect_prior(p, 3, 0.5f / 7, 0.5f / 7, 0.4f, 0.4f);
  // Prior 9 is cell (row 0, col 1): cx = 1.5 / 7. Prior 63 is cell (row 1, col 0): cy = 1.5 / 7.
  expect_prior(p, 9, 1.5f / 7, 0.5f / 7, 0.2f, 0.2f);
  expect_prior(p, 63, 0.5f / 7, 1.5f / 7, 0.2f, 0.2f);
  // Last: cell (6, 6), s = .6, r = .5: (6.5/7, 6.5/7, .6 sqrt .5, .6 / sqrt .5) = (.92857, .92857, .42426, .84853).
  expect_prior(p, 440, 6.5f / 7, 6.5f / 7, 0.6f * std::sqrt(0.5f), 0.6f / std::sqrt(0.5f));
}

TEST(Priors, ByNameAndGrid) {
  auto tutorial = priors_by_name("tutorial");
  ASSERT_TRUE(tutorial.ok()) << tutorial.status().to_string();
  EXPECT_EQ(*tutorial, tutorial_priors());
  // 2 rows x 3 cols x 1 scale x 2 ratios = 12 priors; prior 2 is cell (0, 1): cx = 1.5 / 3 = .5, cy = .5 / 2 = .25.
  auto grid = priors_by_name("grid:2x3:0.5:1,4");
  ASSERT_TRUE(grid.ok()) << grid.status().to_string();
  EXPECT_EQ(grid->size(), 12u * 4);
  expect_prior(*grid, 2, 0.5f, 0.25f, 0.5f, 0.5f);
  expect_prior(*grid, 3, 0.5f, 0.25f, 1.0f, 0.25f);  // r = 4: w = .5 * 2, h = .5 / 2
}

TEST(Priors, BadSpecsAreRejectedWithTheReason) {
  auto unknown = priors_by_name("ssd999");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::invalid_config);
  EXPECT_THAT(unknown.status().message(), HasSubstr("ssd999"));

  auto bad_scale = priors_by_name("grid:2x2:0.5,abc:1");
  ASSERT_FALSE(bad_scale.ok());
  EXPECT_THAT(bad_scale.status().message(), HasSubstr("'abc'"));

  auto empty_grid = grid_priors(0, 3, {0.5f}, {1.0f});
  ASSERT_FALSE(empty_grid.ok());
  EXPECT_THAT(empty_grid.status().message(), HasSubstr("0x3"));

  PyramidSpec spec = ssd300_spec();
  spec.max_sizes.pop_back();
  auto pyramid = pyramid_priors(spec);
  ASSERT_FALSE(pyramid.ok());
  EXPECT_EQ(pyramid.status().code(), ErrorCode::invalid_config);
  EXPECT_THAT(pyramid.status().message(), HasSubstr("5 max sizes"));
}

TEST(Priors, StandardSetsPassValidation) {
  EXPECT_TRUE(validate_priors(ssd300_priors(), 8732).ok());
  EXPECT_TRUE(validate_priors(ssd512_priors(), 24564).ok());
  EXPECT_TRUE(validate_priors(tutorial_priors(), 441).ok());
}

}  // namespace
}  // namespace multibox
