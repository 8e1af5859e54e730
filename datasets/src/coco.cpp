// COCO instances JSON -> normalised ground truths. Every rejection names the annotation (id and index in the
// array), the field and the value, because users debug their own exports with these messages.
#include "multibox/coco.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace multibox {

using nlohmann::json;

namespace {

Status bad(const std::string& source, const std::string& message) {
  return {ErrorCode::invalid_input, fmt::format("{}: {}", source, message)};
}

std::string type_of(const json& v) { return v.type_name(); }

// An integer field of an object, or why not.
Result<int64_t> integer_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) return Status(ErrorCode::invalid_input, fmt::format("missing '{}'", key));
  if (!it->is_number_integer())
    return Status(ErrorCode::invalid_input,
                  fmt::format("'{}' must be an integer, got {} {}", key, type_of(*it), it->dump()));
  return it->get<int64_t>();
}

constexpr double kMaxImageSide = 0x1p31;

Result<double> positive_number_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) return Status(ErrorCode::invalid_input, fmt::format("missing '{}'", key));
  if (!it->is_number())
    return Status(ErrorCode::invalid_input,
                  fmt::format("'{}' must be a number, got {} {}", key, type_of(*it), it->dump()));
  const double v = it->get<double>();
  if (!(v > 0) || !std::isfinite(v))
    return Status(ErrorCode::invalid_input, fmt::format("'{}' must be > 0, got {}", key, it->dump()));
  // Image sides are pixel counts kept as int64 (CocoImage); a larger value would not convert (fuzz_coco.cpp).
  if (v > kMaxImageSide)
    return Status(ErrorCode::invalid_input,
                  fmt::format("'{}' must be at most {} pixels, got {}", key, kMaxImageSide, it->dump()));
  return v;
}

Result<const json*> array_field(const json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end()) return Status(ErrorCode::invalid_input, fmt::format("missing top-level '{}' array", key));
  if (!it->is_array())
    return Status(ErrorCode::invalid_input, fmt::format("top-level '{}' must be an array, got {}", key, type_of(*it)));
  return &*it;
}

struct ImageInfo {
  size_t index;
  double width, height;
};

struct Kept {
  float box[4];
  int32_t label;
  int64_t annotation_id;
};

}  // namespace

int CocoDataset::categories_present() const noexcept {
  return static_cast<int>(std::count_if(categories.begin(), categories.end(),
                                        [](const CocoCategory& c) { return c.boxes > 0; }));
}

Result<BatchData> CocoDataset::ground_truths(int count) const {
  const int n = count <= 0 ? static_cast<int>(images.size()) : count;
  if (n > static_cast<int>(images.size()))
    return Status(ErrorCode::invalid_config,
                  fmt::format("{}: asked for {} images, the file has {}", source, n, images.size()));
  BatchData data;
  for (int i = 0; i < n; ++i) {
    const CocoImage& im = images[static_cast<size_t>(i)];
    const size_t first = static_cast<size_t>(im.first_box), last = first + static_cast<size_t>(im.num_boxes);
    data.gt_boxes.insert(data.gt_boxes.end(), boxes.begin() + first * 4, boxes.begin() + last * 4);
    data.gt_labels.insert(data.gt_labels.end(), labels.begin() + first, labels.begin() + last);
    data.gt_offsets.push_back(static_cast<int32_t>(data.gt_labels.size()));
  }
  return data;
}

std::string CocoDataset::describe(bool per_class) const {
  std::vector<int> counts;
  for (const CocoImage& im : images) counts.push_back(im.num_boxes);
  std::sort(counts.begin(), counts.end());
  std::string out = fmt::format("{}: {} images, {} boxes, {} categories ({} present), {} classes with background\n",
                                source, images.size(), num_boxes(), categories.size(), categories_present(),
                                num_classes());
  if (!counts.empty()) {
    const size_t n = counts.size();
    const double median = n % 2 ? counts[n / 2] : 0.5 * (counts[n / 2 - 1] + counts[n / 2]);
    out += fmt::format("  boxes per image: min {} median {} max {}; {} images without boxes\n", counts.front(),
                       median, counts.back(), std::count(counts.begin(), counts.end(), 0));
  }
  out += fmt::format("  dropped: {} iscrowd, {} invalid\n", crowd_dropped, invalid_dropped);
  for (const std::string& r : drop_reasons) out += fmt::format("    {}\n", r);
  if (per_class) {
    out += fmt::format("  {:>5} {:>5}  {:<20} {:>6} {:>6}\n", "label", "id", "name", "boxes", "images");
    for (const CocoCategory& c : categories)
      out += fmt::format("  {:>5} {:>5}  {:<20} {:>6} {:>6}\n", c.label, c.id, c.name, c.boxes, c.images);
  }
  return out;
}

Result<CocoDataset> parse_coco(std::string_view json_text, const CocoOptions& options, std::string source) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number such as 1e400 (fuzz_coco.cpp)
    return bad(source, fmt::format("malformed JSON: {}", e.what()));
  }
  if (!doc.is_object()) return bad(source, fmt::format("top level must be an object, got {}", type_of(doc)));
  auto images_json = array_field(doc, "images");
  if (!images_json) return bad(source, images_json.status().message());
  auto annotations_json = array_field(doc, "annotations");
  if (!annotations_json) return bad(source, annotations_json.status().message());
  auto categories_json = array_field(doc, "categories");
  if (!categories_json) return bad(source, categories_json.status().message());

  CocoDataset out;
  out.source = source;

  // Categories: contiguous labels in increasing id order, whatever order the file lists them in.
  std::map<int64_t, std::string> category_names;
  for (size_t i = 0; i < (*categories_json)->size(); ++i) {
    const json& c = (**categories_json)[i];
    if (!c.is_object()) return bad(source, fmt::format("category at index {}: must be an object, got {}", i, type_of(c)));
    auto id = integer_field(c, "id");
    if (!id) return bad(source, fmt::format("category at index {}: {}", i, id.status().message()));
    std::string name;
    if (const auto it = c.find("name"); it != c.end()) {
      if (!it->is_string())
        return bad(source, fmt::format("category id {}: 'name' must be a string, got {}", *id, type_of(*it)));
      name = it->get<std::string>();
    }
    if (!category_names.emplace(*id, name).second)
      return bad(source, fmt::format("category id {} appears twice (index {})", *id, i));
  }
  std::unordered_map<int64_t, int32_t> label_of;
  for (const auto& [id, name] : category_names) {
    const int32_t label = static_cast<int32_t>(out.categories.size()) + 1;
    out.categories.push_back({id, name, label, 0, 0});
    label_of[id] = label;
  }

  std::unordered_map<int64_t, ImageInfo> image_of;
  for (size_t i = 0; i < (*images_json)->size(); ++i) {
    const json& im = (**images_json)[i];
    if (!im.is_object()) return bad(source, fmt::format("image at index {}: must be an object, got {}", i, type_of(im)));
    auto id = integer_field(im, "id");
    if (!id) return bad(source, fmt::format("image at index {}: {}", i, id.status().message()));
    auto width = positive_number_field(im, "width");
    if (!width) return bad(source, fmt::format("image id {} (index {}): {}", *id, i, width.status().message()));
    auto height = positive_number_field(im, "height");
    if (!height) return bad(source, fmt::format("image id {} (index {}): {}", *id, i, height.status().message()));
    CocoImage info;
    info.id = *id;
    info.width = static_cast<int64_t>(*width);
    info.height = static_cast<int64_t>(*height);
    if (const auto it = im.find("file_name"); it != im.end() && it->is_string()) info.file_name = it->get<std::string>();
    if (!image_of.emplace(*id, ImageInfo{i, *width, *height}).second)
      return bad(source, fmt::format("image id {} appears twice (index {})", *id, i));
    out.images.push_back(std::move(info));
  }

  std::vector<std::vector<Kept>> per_image(out.images.size());
  std::unordered_set<int64_t> annotation_ids_seen;
  const double tol = options.edge_tolerance_px;
  for (size_t i = 0; i < (*annotations_json)->size(); ++i) {
    const json& a = (**annotations_json)[i];
    int64_t annotation_id = -1;
    bool crowd = false;
    size_t image_index = 0;
    Kept kept{};
    // The checks of one annotation; an error is either returned or, under drop_invalid, counted.
    const Status status = [&]() -> Status {
      if (!a.is_object())
        return {ErrorCode::invalid_input, fmt::format("annotation at index {}: must be an object, got {}", i, type_of(a))};
      auto id = integer_field(a, "id");
      if (!id) return {ErrorCode::invalid_input, fmt::format("annotation at index {}: {}", i, id.status().message())};
      annotation_id = *id;
      const std::string where = fmt::format("annotation id {} (index {})", annotation_id, i);
      // Boxes are traced back to the file by id, so an id must name one annotation.
      if (!annotation_ids_seen.insert(annotation_id).second)
        return {ErrorCode::invalid_input, fmt::format("{}: the id appears twice", where)};
      auto image_id = integer_field(a, "image_id");
      if (!image_id) return {ErrorCode::invalid_input, fmt::format("{}: {}", where, image_id.status().message())};
      const auto image = image_of.find(*image_id);
      if (image == image_of.end())
        return {ErrorCode::invalid_input, fmt::format("{}: image_id {} is not in 'images'", where, *image_id)};
      image_index = image->second.index;
      auto category_id = integer_field(a, "category_id");
      if (!category_id) return {ErrorCode::invalid_input, fmt::format("{}: {}", where, category_id.status().message())};
      const auto label = label_of.find(*category_id);
      if (label == label_of.end())
        return {ErrorCode::invalid_input, fmt::format("{}: category_id {} is not in 'categories'", where, *category_id)};
      if (const auto it = a.find("iscrowd"); it != a.end()) {
        if (!(it->is_number_integer() || it->is_boolean()))
          return {ErrorCode::invalid_input,
                  fmt::format("{}: 'iscrowd' must be 0 or 1, got {} {}", where, type_of(*it), it->dump())};
        crowd = it->is_boolean() ? it->get<bool>() : it->get<int64_t>() != 0;
      }
      const auto bbox = a.find("bbox");
      if (bbox == a.end()) return {ErrorCode::invalid_input, fmt::format("{}: missing 'bbox'", where)};
      if (!bbox->is_array() || bbox->size() != 4 ||
          !std::all_of(bbox->begin(), bbox->end(), [](const json& v) { return v.is_number(); }))
        return {ErrorCode::invalid_input,
                fmt::format("{}: 'bbox' must be [x, y, width, height] numbers, got {}", where, bbox->dump())};
      const double x = (*bbox)[0].get<double>(), y = (*bbox)[1].get<double>();
      const double w = (*bbox)[2].get<double>(), h = (*bbox)[3].get<double>();
      if (!std::isfinite(x) || !std::isfinite(y) || !std::isfinite(w) || !std::isfinite(h))
        return {ErrorCode::invalid_input, fmt::format("{}: bbox {} is not finite", where, bbox->dump())};
      if (!(w > 0) || !(h > 0))
        return {ErrorCode::invalid_input,
                fmt::format("{}: bbox {} has zero or negative size (width {}, height {})", where, bbox->dump(), w, h)};
      const double W = image->second.width, H = image->second.height;
      if (x < -tol || y < -tol || x + w > W + tol || y + h > H + tol)
        return {ErrorCode::invalid_input,
                fmt::format("{}: bbox {} (x2 {}, y2 {}) lies outside image id {} ({}x{})", where, bbox->dump(), x + w,
                            y + h, *image_id, W, H)};
      kept.box[0] = static_cast<float>(std::clamp(x, 0.0, W) / W);
      kept.box[1] = static_cast<float>(std::clamp(y, 0.0, H) / H);
      kept.box[2] = static_cast<float>(std::clamp(x + w, 0.0, W) / W);
      kept.box[3] = static_cast<float>(std::clamp(y + h, 0.0, H) / H);
      if (!(kept.box[2] > kept.box[0]) || !(kept.box[3] > kept.box[1]))
        return {ErrorCode::invalid_input,
                fmt::format("{}: bbox {} collapses to zero size once clipped to image id {} and normalised", where,
                            bbox->dump(), *image_id)};
      kept.label = label->second;
      kept.annotation_id = annotation_id;
      return {};
    }();
    if (!status.ok()) {
      if (!options.drop_invalid) return bad(source, status.message());
      ++out.invalid_dropped;
      out.drop_reasons.push_back(status.message());
      continue;
    }
    if (crowd && !options.keep_crowd) {
      ++out.crowd_dropped;
      ++out.images[image_index].crowd_dropped;
      continue;
    }
    per_image[image_index].push_back(kept);
  }

  for (size_t i = 0; i < out.images.size(); ++i) {
    CocoImage& im = out.images[i];
    im.first_box = out.num_boxes();
    im.num_boxes = static_cast<int32_t>(per_image[i].size());
    std::vector<bool> seen(out.categories.size(), false);
    for (const Kept& k : per_image[i]) {
      out.boxes.insert(out.boxes.end(), k.box, k.box + 4);
      out.labels.push_back(k.label);
      out.annotation_ids.push_back(k.annotation_id);
      CocoCategory& c = out.categories[static_cast<size_t>(k.label - 1)];
      ++c.boxes;
      if (!seen[static_cast<size_t>(k.label - 1)]) seen[static_cast<size_t>(k.label - 1)] = true, ++c.images;
    }
  }
  return out;
}

Result<CocoDataset> load_coco(const std::string& path, const CocoOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::io_error, fmt::format("cannot open COCO annotations '{}'", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status(ErrorCode::io_error, fmt::format("error reading COCO annotations '{}'", path));
  return parse_coco(text.str(), options, path);
}

}  // namespace multibox
