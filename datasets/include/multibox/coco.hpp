// Ground truths from COCO-format instances JSON (the format users' annotations come in): boxes normalised by
// each image's size, category ids mapped to contiguous labels, per-image and per-class statistics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "multibox/batch.hpp"
#include "multibox/status.hpp"

namespace multibox {

struct CocoOptions {
  bool keep_crowd = false;    // iscrowd boxes cover a group of objects; SSD training drops them
  bool drop_invalid = false;  // drop and count malformed annotations instead of failing on the first one
  // Boxes may poke out of the image by this many pixels (COCO rounds polygon extents) and are then clipped;
  // anything further out is an error.
  double edge_tolerance_px = 1.0;
};

struct CocoCategory {
  int64_t id = 0;       // as in the file
  std::string name;
  int32_t label = 0;    // contiguous: 1..K in increasing id order, 0 is background
  int64_t boxes = 0;    // boxes kept with this label
  int64_t images = 0;   // images holding at least one of them
};

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int64_t width = 0;
  int64_t height = 0;
  int32_t first_box = 0;  // its boxes are first_box .. first_box + num_boxes - 1 of CocoDataset::boxes
  int32_t num_boxes = 0;
  int32_t crowd_dropped = 0;
};

struct CocoDataset {
  std::string source;                    // the path (or name) it was read from
  std::vector<CocoImage> images;         // in file order
  std::vector<CocoCategory> categories;  // in increasing id order; categories[k].label == k + 1
  std::vector<float> boxes;              // [N][4] corners (xmin, ymin, xmax, ymax), normalised, grouped by image
  std::vector<int32_t> labels;           // [N]
  std::vector<int64_t> annotation_ids;   // [N], to trace a box back to the file
  int64_t crowd_dropped = 0;
  int64_t invalid_dropped = 0;
  std::vector<std::string> drop_reasons;  // one line per dropped invalid annotation (drop_invalid only)

  int num_classes() const noexcept { return static_cast<int>(categories.size()) + 1; }
  int num_boxes() const noexcept { return static_cast<int>(labels.size()); }
  // Categories with at least one kept box.
  int categories_present() const noexcept;
  // The first `count` images (all when count <= 0) as a batch of ground truths; predictions left empty.
  Result<BatchData> ground_truths(int count = 0) const;
  // Several lines: images, boxes per image min/median/max, crowd and invalid drops; with per_class, one line per
  // category (label, id, name, boxes, images).
  std::string describe(bool per_class = false) const;
};

// Errors name the annotation id (and its index in the array) and the offending field and value.
Result<CocoDataset> parse_coco(std::string_view json_text, const CocoOptions& options = {},
                               std::string source = "<memory>");
Result<CocoDataset> load_coco(const std::string& path, const CocoOptions& options = {});

}  // namespace multibox
