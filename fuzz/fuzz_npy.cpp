// libFuzzer target: the .npy reader (npy::parse, what npy::read does to a file's bytes). Whatever it accepts must be
// self-consistent and must survive a write and a read back unchanged.
#include <cstring>
#include <string>

#include "fuzz_support.hpp"
#include "multibox/npy.hpp"

namespace {

size_t width_of(multibox::npy::DType dtype) { return dtype == multibox::npy::DType::uint8 ? 1 : 4; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace multibox;
  auto array = npy::parse({data, size}, "input.npy");
  if (!array) {
    if (array.status().message().empty()) fuzz::finding("a rejection without a message");
    return 0;
  }
  const int64_t elements = array->elements();
  if (elements < 0 || static_cast<size_t>(elements) * width_of(array->dtype) != array->bytes.size())
    fuzz::finding("accepted an array whose shape " + npy::format_shape(array->shape) + " does not match its " +
                  std::to_string(array->bytes.size()) + " data bytes");

  const auto path = fuzz::scratch_folder() / "round_trip.npy";
  if (Status s = npy::write(path, array->dtype, array->shape, array->bytes.data(), static_cast<size_t>(elements)); !s)
    fuzz::finding("cannot write back an array it read: " + s.to_string());
  auto again = npy::read(path);
  if (!again) fuzz::finding("cannot read back an array it wrote: " + again.status().to_string());
  if (again->dtype != array->dtype || again->shape != array->shape || again->bytes != array->bytes)
    fuzz::finding("an array changed on a write and read back");
  return 0;
}
