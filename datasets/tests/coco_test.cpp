// The COCO loader on the real COCO128 annotations (when the shared copy is present) and on small hand-written
// files, malformed in one way each: every rejection must name the annotation id.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "multibox/coco.hpp"
#include "multibox/workloads.hpp"

namespace multibox {
namespace {

namespace fs = std::filesystem;

// Two images (200x100 and 640x480), three categories listed out of id order.
std::string coco_json(const std::string& annotations) {
  return R"({"images": [{"id": 1, "width": 200, "height": 100, "file_name": "a.jpg"},
                        {"id": 2, "width": 640, "height": 480, "file_name": "b.jpg"}],
             "categories": [{"id": 90, "name": "toothbrush"}, {"id": 3, "name": "car"}, {"id": 17, "name": "cat"}],
             "annotations": [)" +
         annotations + "]}";
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("multibox_coco_test_" + std::to_string(rd()) + ".json");
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

Result<CocoDataset> load_text(const std::string& text, const CocoOptions& options = {}) {
  TempFile file(text);
  return load_coco(file.path(), options);
}

void expect_error_naming(const std::string& text, const std::string& needle) {
  auto d = load_text(text);
  ASSERT_FALSE(d) << "accepted: " << text;
  EXPECT_EQ(d.status().code(), ErrorCode::invalid_input);
  EXPECT_NE(d.status().message().find(needle), std::string::npos)
      << "message '" << d.status().message() << "' does not name '" << needle << "'";
}

TEST(Coco, NormalisesMapsCategoriesAndCountsStatistics) {
  auto d = load_text(coco_json(R"(
      {"id": 10, "image_id": 1, "category_id": 90, "bbox": [20, 10, 100, 50], "iscrowd": 0},
      {"id": 11, "image_id": 2, "category_id": 3, "bbox": [0, 0, 640, 480], "iscrowd": 0},
      {"id": 12, "image_id": 2, "category_id": 90, "bbox": [64, 48, 64, 48]},
      {"id": 13, "image_id": 1, "category_id": 17, "bbox": [0, 0, 10, 10], "iscrowd": 1})"));
  ASSERT_TRUE(d) << d.status().to_string();
  // Labels in increasing id order: 3 -> 1, 17 -> 2, 90 -> 3.
  ASSERT_EQ(d->categories.size(), 3u);
  EXPECT_EQ(d->categories[0].id, 3);
  EXPECT_EQ(d->categories[0].name, "car");
  EXPECT_EQ(d->categories[2].id, 90);
  EXPECT_EQ(d->categories[2].label, 3);
  EXPECT_EQ(d->num_classes(), 4);
  EXPECT_EQ(d->num_boxes(), 3);  // the crowd box is dropped by default
  EXPECT_EQ(d->crowd_dropped, 1);
  EXPECT_EQ(d->images[0].crowd_dropped, 1);
  EXPECT_EQ((std::vector<int32_t>{3, 1, 3}), d->labels);
  EXPECT_EQ((std::vector<int64_t>{10, 11, 12}), d->annotation_ids);
  EXPECT_EQ((std::vector<float>{0.1f, 0.1f, 0.6f, 0.6f}), std::vector<float>(d->boxes.begin(), d->boxes.begin() + 4));
  EXPECT_EQ((std::vector<float>{0.0f, 0.0f, 1.0f, 1.0f}), std::vector<float>(d->boxes.begin() + 4, d->boxes.begin() + 8));
  EXPECT_EQ(d->categories[2].boxes, 2);
  EXPECT_EQ(d->categories[2].images, 2);
  EXPECT_EQ(d->categories[1].boxes, 0);
  EXPECT_EQ(d->categories_present(), 2);
  EXPECT_EQ(d->images[1].num_boxes, 2);
  auto batch = d->ground_truths();
  ASSERT_TRUE(batch);
  EXPECT_EQ((std::vector<int32_t>{0, 1, 3}), batch->gt_offsets);
  EXPECT_FALSE(d->ground_truths(3)) << "only two images";
  EXPECT_NE(d->describe(true).find("toothbrush"), std::string::npos);

  CocoOptions keep;
  keep.keep_crowd = true;
  auto kept = load_text(coco_json(R"({"id": 13, "image_id": 1, "category_id": 17, "bbox": [0, 0, 10, 10], "iscrowd": 1})"),
                        keep);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->num_boxes(), 1);
  EXPECT_EQ(kept->crowd_dropped, 0);
}

TEST(Coco, BoxesWithinTheEdgeToleranceAreClipped) {
  auto d = load_text(coco_json(R"({"id": 5, "image_id": 1, "category_id": 3, "bbox": [-0.5, 0, 200.9, 100.9]})"));
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ((std::vector<float>{0, 0, 1, 1}), d->boxes);
}

TEST(Coco, MalformedAnnotationsNameTheirId) {
  expect_error_naming(coco_json(R"({"id": 41, "image_id": 1, "category_id": 3})"), "annotation id 41");
  expect_error_naming(coco_json(R"({"id": 42, "image_id": 1, "category_id": 3, "bbox": "10 10 5 5"})"),
                      "annotation id 42");
  expect_error_naming(coco_json(R"({"id": 43, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3]})"),
                      "annotation id 43");
  expect_error_naming(coco_json(R"({"id": 44, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 5]})"),
                      "annotation id 44");
  expect_error_naming(coco_json(R"({"id": 45, "image_id": 1, "category_id": 3, "bbox": [10, 10, 5, -1]})"),
                      "annotation id 45");
  expect_error_naming(coco_json(R"({"id": 46, "image_id": 1, "category_id": 3, "bbox": [150, 10, 60, 5]})"),
                      "annotation id 46");
  expect_error_naming(coco_json(R"({"id": 47, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5]})"),
                      "annotation id 47");
  expect_error_naming(coco_json(R"({"id": 48, "image_id": 1, "category_id": 4, "bbox": [1, 1, 5, 5]})"),
                      "annotation id 48");
  expect_error_naming(coco_json(R"({"id": 49, "image_id": 1, "category_id": "3", "bbox": [1, 1, 5, 5]})"),
                      "annotation id 49");
  expect_error_naming(coco_json(R"({"id": 50, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": "no"})"),
                      "annotation id 50");
  expect_error_naming(coco_json(R"({"id": 51, "category_id": 3, "bbox": [1, 1, 5, 5]})"), "annotation id 51");
  expect_error_naming(coco_json(R"({"id": 53, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
                                   {"id": 53, "image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5]})"),
                      "annotation id 53 (index 1): the id appears twice");
  // Without an id the index is all there is to name.
  expect_error_naming(coco_json(R"({"id": 52, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
                                   {"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]})"),
                      "annotation at index 1");
}

TEST(Coco, MalformedFilesSayWhatIsWrong) {
  expect_error_naming("{\"images\": [", "malformed JSON");
  expect_error_naming("[1, 2]", "top level must be an object");
  expect_error_naming(R"({"images": [], "categories": []})", "'annotations'");
  expect_error_naming(R"({"images": {}, "categories": [], "annotations": []})", "'images' must be an array");
  expect_error_naming(R"({"images": [{"id": 1, "width": 0, "height": 5}], "categories": [], "annotations": []})",
                      "image id 1");
  expect_error_naming(R"({"images": [], "categories": [{"id": 2}, {"id": 2}], "annotations": []})",
                      "category id 2 appears twice");
  auto missing = load_coco("/nonexistent/instances.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ErrorCode::io_error);
  EXPECT_NE(missing.status().message().find("/nonexistent/instances.json"), std::string::npos);
}

TEST(Coco, DropInvalidCountsInsteadOfFailing) {
  CocoOptions options;
  options.drop_invalid = true;
  auto d = load_text(coco_json(R"(
      {"id": 60, "image_id": 1, "category_id": 3, "bbox": [10, 10, 5, 5]},
      {"id": 61, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 5]},
      {"id": 62, "image_id": 9, "category_id": 3, "bbox": [10, 10, 5, 5]},
      {"id": 63, "image_id": 2, "category_id": 17, "bbox": [10, 10, 5, 5]})"),
                     options);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(d->num_boxes(), 2);
  EXPECT_EQ(d->invalid_dropped, 2);
  ASSERT_EQ(d->drop_reasons.size(), 2u);
  EXPECT_NE(d->drop_reasons[0].find("annotation id 61"), std::string::npos);
  EXPECT_NE(d->drop_reasons[1].find("annotation id 62"), std::string::npos);
}

// The shared COCO128 file: its counts are known (checked independently with Python's json module).
class Coco128 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = find_coco_json();
    if (!path) GTEST_SKIP() << "COCO128 annotations absent: " << path.status().message();
    path_ = *path;
  }
  std::string path_;
};

TEST_F(Coco128, KnownCounts) {
  CocoOptions keep;
  keep.keep_crowd = true;
  auto all = load_coco(path_, keep);
  ASSERT_TRUE(all) << all.status().to_string();
  EXPECT_EQ(all->images.size(), 128u);
  EXPECT_EQ(all->num_boxes(), 939);
  EXPECT_EQ(all->categories.size(), 80u);
  EXPECT_EQ(all->categories_present(), 71);
  EXPECT_EQ(all->num_classes(), 81);
  auto no_crowd = load_coco(path_);
  ASSERT_TRUE(no_crowd);
  EXPECT_EQ(no_crowd->crowd_dropped, 10);
  EXPECT_EQ(no_crowd->num_boxes(), 929);
  EXPECT_EQ(no_crowd->invalid_dropped, 0);
  // COCO's category ids run 1..90 with gaps; labels are contiguous.
  EXPECT_EQ(all->categories.front().id, 1);
  EXPECT_EQ(all->categories.back().id, 90);
  EXPECT_EQ(all->categories.back().label, 80);
  for (size_t g = 0; g < all->boxes.size() / 4; ++g) {
    const float* b = &all->boxes[g * 4];
    EXPECT_TRUE(b[0] >= 0 && b[2] <= 1 && b[1] >= 0 && b[3] <= 1 && b[2] > b[0] && b[3] > b[1])
        << "annotation " << all->annotation_ids[g];
  }
}

// Cut anywhere, the real file must give a clean error, never a crash or a partial dataset.
TEST_F(Coco128, TruncatedFileIsMalformedJson) {
  std::ifstream in(path_);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(text.size(), 1000u);
  for (size_t cut : {size_t{1}, size_t{100}, text.size() / 3, text.size() / 2, text.size() - 2}) {
    auto d = parse_coco(std::string_view(text).substr(0, cut), {}, "cut");
    ASSERT_FALSE(d) << "cut at " << cut;
    EXPECT_NE(d.status().message().find("malformed JSON"), std::string::npos) << d.status().message();
  }
}

TEST_F(Coco128, WorkloadUsesEveryImage) {
  WorkloadOptions options;
  options.coco_path = path_;
  options.predictions = false;  // 128 x 8732 x 81 logits are 360 MB; the batch of 16 below checks them
  auto w = make_workload("coco128", options);
  ASSERT_TRUE(w) << w.status().to_string();
  EXPECT_EQ(w->shape.batch, 128);
  EXPECT_EQ(w->shape.num_priors, 8732);
  EXPECT_EQ(w->shape.num_classes, 81);
  EXPECT_EQ(w->shape.max_ground_truths, 929);
  EXPECT_TRUE(validate_ground_truths(w->shape, w->data.ground_truths()).ok());
  options.predictions = true;
  options.batch = 16;
  auto small = make_workload("coco128", options);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->shape.batch, 16);
  EXPECT_TRUE(validate_predictions(small->shape, small->data.predictions()).ok());
  options.batch = 129;
  EXPECT_FALSE(make_workload("coco128", options));
}

TEST(Coco128Paths, AbsentFileNamesEveryPathTried) {
  WorkloadOptions options;
  options.coco_path = "/nonexistent/coco.json";
  auto w = make_workload("coco128", options);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), ErrorCode::io_error);
  EXPECT_NE(w.status().message().find("/nonexistent/coco.json"), std::string::npos);
}

}  // namespace
}  // namespace multibox
