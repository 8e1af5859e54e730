// A small reader/writer for NumPy's .npy format (versions 1.0, 2.0 and 3.0), so case files open with np.load.
// Debian packages no maintained C++ .npy library, hence this one. Only what cases need: C-order arrays of
// float32, int32 and uint8 (bool read as uint8). Big-endian files are byte-swapped on read; other dtypes
// (float64, int64, ...) are refused with a message saying which astype() to apply, never converted silently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "multibox/status.hpp"

namespace multibox::npy {

enum class DType { float32, int32, uint8 };

const char* to_string(DType dtype) noexcept;  // "float32", ...
const char* descr(DType dtype) noexcept;      // the little-endian descr written: "<f4", "<i4", "|u1"

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::float32;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::int32;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::uint8;
};

// A dimension of an expected shape that may take any size.
inline constexpr int64_t kAnyDim = -1;

// "(3, 4)", "(5,)", "()"
std::string format_shape(std::span<const int64_t> shape);

// A decoded array: element bytes in host order, C order.
struct Array {
  DType dtype = DType::float32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;

  int64_t elements() const noexcept;
};

// Reads and checks the whole file. Errors (io_error for an unreadable file, invalid_input for bad content)
// name the file and what is wrong: bad magic, unsupported version, malformed header, unsupported dtype,
// Fortran order, truncated data, trailing bytes.
Result<Array> read(const std::filesystem::path& path);
// The same checks on a whole file already in memory; `source` names it in errors. read() is this on the file's bytes.
Result<Array> parse(std::span<const unsigned char> bytes, const std::string& source);

// Writes version 1.0 (2.0 when the header needs more than 65535 bytes), header padded to 64 bytes like numpy.
// `data` must hold exactly product(shape) elements of `dtype`.
Status write(const std::filesystem::path& path, DType dtype, std::span<const int64_t> shape, const void* data,
             size_t elements);

template <class T>
Status write(const std::filesystem::path& path, std::span<const T> values, std::span<const int64_t> shape) {
  return write(path, DTypeOf<T>::value, shape, values.data(), values.size());
}
template <class T>
Status write(const std::filesystem::path& path, const std::vector<T>& values, std::vector<int64_t> shape) {
  return write(path, DTypeOf<T>::value, shape, values.data(), values.size());
}

// Reads `path`, requires dtype T and a shape matching `expected` (kAnyDim matches any size; the rank must match),
// and returns the elements. `actual_shape`, when given, receives the file's shape.
template <class T>
Result<std::vector<T>> read_as(const std::filesystem::path& path, std::span<const int64_t> expected,
                               std::vector<int64_t>* actual_shape = nullptr);
template <class T>
Result<std::vector<T>> read_as(const std::filesystem::path& path, std::initializer_list<int64_t> expected,
                               std::vector<int64_t>* actual_shape = nullptr) {
  return read_as<T>(path, std::span<const int64_t>(expected.begin(), expected.size()), actual_shape);
}

extern template Result<std::vector<float>> read_as<float>(const std::filesystem::path&, std::span<const int64_t>,
                                                          std::vector<int64_t>*);
extern template Result<std::vector<int32_t>> read_as<int32_t>(const std::filesystem::path&,
                                                              std::span<const int64_t>, std::vector<int64_t>*);
extern template Result<std::vector<uint8_t>> read_as<uint8_t>(const std::filesystem::path&,
                                                              std::span<const int64_t>, std::vector<int64_t>*);

}  // namespace multibox::npy
