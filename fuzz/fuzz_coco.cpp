// libFuzzer target: the COCO instances loader (parse_coco), strict and with drop_invalid + keep_crowd. What it accepts
// must be ground truths the core's own validation accepts: the loader may not hand a backend a box it would refuse.
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "multibox/batch.hpp"
#include "multibox/coco.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace multibox;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CocoOptions lenient;
  lenient.drop_invalid = true;
  lenient.keep_crowd = true;
  for (const CocoOptions& options : {CocoOptions{}, lenient}) {
    auto dataset = parse_coco(text, options, "input.json");
    if (!dataset) {
      if (dataset.status().message().empty()) fuzz::finding("a rejection without a message");
      continue;
    }
    (void)dataset->describe(/*per_class=*/true);
    if (dataset->images.empty()) continue;
    auto gt = dataset->ground_truths();
    if (!gt) fuzz::finding("no ground truths from an accepted file: " + gt.status().to_string());
    ProblemShape shape;
    shape.batch = static_cast<int>(dataset->images.size());
    shape.num_priors = 1;
    shape.num_classes = dataset->num_classes();
    shape.max_ground_truths = dataset->num_boxes();
    if (Status s = validate_ground_truths(shape, gt->ground_truths()); !s)
      fuzz::finding("the loader accepted ground truths the core refuses: " + s.to_string());
  }
  return 0;
}
