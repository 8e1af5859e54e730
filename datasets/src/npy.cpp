#include "multibox/npy.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

#include <fmt/format.h>

namespace multibox::npy {
namespace {

constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t item_size(DType dtype) {
  switch (dtype) {
    case DType::float32: return 4;
    case DType::int32: return 4;
    case DType::uint8: return 1;
  }
  return 1;
}

Status bad(std::string_view source, std::string what) {
  return {ErrorCode::invalid_input, fmt::format("{}: {}", source, what)};
}

// The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
// numpy writes exactly this form; this parser accepts any spacing, either quote style and Python 2 "3L" ints.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  struct Fields {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  // On failure returns nullopt and error() says what was expected where.
  std::optional<Fields> parse() {
    Fields fields;
    if (!expect('{')) return std::nullopt;
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      auto key = parse_string();
      if (!key) return std::nullopt;
      if (!expect(':')) return std::nullopt;
      skip_space();
      if (*key == "descr") {
        auto value = parse_string();
        if (!value) return std::nullopt;
        fields.descr = *value;
      } else if (*key == "fortran_order") {
        auto value = parse_bool();
        if (!value) return std::nullopt;
        fields.fortran_order = *value;
      } else if (*key == "shape") {
        auto value = parse_tuple();
        if (!value) return std::nullopt;
        fields.shape = *value;
      } else {
        return fail(fmt::format("unexpected key '{}'", *key));
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        return fail("expected ',' or '}'");
      }
    }
    skip_space();
    if (pos_ != text_.size()) return fail("unexpected text after '}'");
    return fields;
  }

  const std::string& error() const { return error_; }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  std::nullopt_t fail(std::string what) {
    if (error_.empty()) error_ = fmt::format("{} at offset {} of header \"{}\"", what, pos_, text_);
    return std::nullopt;
  }
  bool expect(char c) {
    skip_space();
    if (peek() != c) {
      fail(fmt::format("expected '{}'", c));
      return false;
    }
    ++pos_;
    return true;
  }
  std::optional<std::string> parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') return fail("expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) return fail("unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  std::optional<bool> parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return fail("expected True or False");
  }
  std::optional<std::vector<int64_t>> parse_tuple() {
    if (peek() != '(') return fail("expected '(' opening the shape");
    ++pos_;
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return dims;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return fail("expected a dimension");
      int64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        value = value * 10 + (peek() - '0');
        if (value > (int64_t{1} << 48)) return fail("dimension too large");
        ++pos_;
      }
      if (peek() == 'L') ++pos_;
      dims.push_back(value);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        return fail("expected ',' or ')' in the shape");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

struct ParsedDescr {
  DType dtype;
  bool swap;  // file byte order differs from the host's
};

std::optional<ParsedDescr> parse_descr(const std::string& descr, std::string& why) {
  if (descr.size() < 3) {
    why = fmt::format("dtype '{}' is not a simple numeric dtype", descr);
    return std::nullopt;
  }
  const char order = descr[0];
  const std::string code = descr.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    why = fmt::format("dtype '{}' has an unknown byte-order mark '{}'", descr, order);
    return std::nullopt;
  }
  const bool file_little = order == '<' || (order == '=' && std::endian::native == std::endian::little);
  const bool swap_if_wide = file_little != (std::endian::native == std::endian::little);
  if (code == "f4") return ParsedDescr{DType::float32, order != '|' && swap_if_wide};
  if (code == "i4") return ParsedDescr{DType::int32, order != '|' && swap_if_wide};
  if (code == "u1" || code == "b1") return ParsedDescr{DType::uint8, false};
  static const struct {
    const char* code;
    const char* name;
    const char* fix;
  } kKnown[] = {
      {"f8", "float64", "astype(np.float32)"}, {"f2", "float16", "astype(np.float32)"},
      {"i8", "int64", "astype(np.int32)"},     {"i2", "int16", "astype(np.int32)"},
      {"u4", "uint32", "astype(np.int32)"},    {"u8", "uint64", "astype(np.int32)"},
      {"i1", "int8", "astype(np.uint8)"},
  };
  for (const auto& known : kKnown)
    if (code == known.code) {
      why = fmt::format("dtype '{}' ({}) is not supported; only float32 (<f4), int32 (<i4) and uint8 (|u1) are "
                        "(convert with .{})",
                        descr, known.name, known.fix);
      return std::nullopt;
    }
  why = fmt::format("dtype '{}' is not supported; only float32 (<f4), int32 (<i4) and uint8 (|u1) are", descr);
  return std::nullopt;
}

void byte_swap(std::vector<unsigned char>& bytes, size_t width) {
  for (size_t i = 0; i + width <= bytes.size(); i += width) std::reverse(bytes.begin() + i, bytes.begin() + i + width);
}

// A zero dimension empties the array whatever the others say, and parse() accepts (0, 2**48, 2**48): multiplying
// those in any order would overflow (found by fuzz/fuzz_npy.cpp). Otherwise the product saturates at INT64_MAX.
int64_t element_count(std::span<const int64_t> shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
  return n;
}

bool same_rank_and_dims(std::span<const int64_t> expected, std::span<const int64_t> actual) {
  if (expected.size() != actual.size()) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] != kAnyDim && expected[i] != actual[i]) return false;
  return true;
}

}  // namespace

const char* to_string(DType dtype) noexcept {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::int32: return "int32";
    case DType::uint8: return "uint8";
  }
  return "unknown";
}

const char* descr(DType dtype) noexcept {
  switch (dtype) {
    case DType::float32: return "<f4";
    case DType::int32: return "<i4";
    case DType::uint8: return "|u1";
  }
  return "?";
}

std::string format_shape(std::span<const int64_t> shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i] == kAnyDim ? std::string("*") : std::to_string(shape[i]);
  }
  return out + ")";
}

int64_t Array::elements() const noexcept { return element_count(shape); }

Result<Array> read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status{ErrorCode::io_error, fmt::format("{}: cannot open for reading", path.string())};
  std::vector<unsigned char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status{ErrorCode::io_error, fmt::format("{}: read error", path.string())};
  return parse(file, path.string());
}

Result<Array> parse(std::span<const unsigned char> bytes, const std::string& source) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return bad(source, "not a .npy file (missing the \\x93NUMPY magic)");
  const int major = bytes[6];
  const int minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return bad(source, fmt::format(".npy format version {}.{} is not supported (1.0, 2.0, 3.0 are)", major, minor));
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = bytes[8] | (size_t{bytes[9]} << 8);
    header_start = 10;
  } else {
    if (bytes.size() < 12) return bad(source, "truncated: the file ends inside the header length");
    header_len = bytes[8] | (size_t{bytes[9]} << 8) | (size_t{bytes[10]} << 16) | (size_t{bytes[11]} << 24);
    header_start = 12;
  }
  if (bytes.size() < header_start + header_len)
    return bad(source, fmt::format("truncated: header declares {} bytes but only {} follow", header_len,
                                   bytes.size() - header_start));
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + header_start, header_len);

  HeaderParser parser(header);
  auto fields = parser.parse();
  if (!fields) return bad(source, "malformed header: " + parser.error());
  if (!fields->descr) return bad(source, "malformed header: no 'descr' key");
  if (!fields->fortran_order) return bad(source, "malformed header: no 'fortran_order' key");
  if (!fields->shape) return bad(source, "malformed header: no 'shape' key");
  std::string why;
  auto parsed = parse_descr(*fields->descr, why);
  if (!parsed) return bad(source, why);

  Array array;
  array.dtype = parsed->dtype;
  array.shape = std::move(*fields->shape);
  if (*fields->fortran_order && array.shape.size() > 1)
    return bad(source, "array is in Fortran order; save a C-order array (np.ascontiguousarray)");

  const size_t width = item_size(array.dtype);
  const size_t data_start = header_start + header_len;
  const size_t available = bytes.size() - data_start;
  // Bounded product: a hostile shape such as (2**40, 2**40) must not wrap around to a small byte count
  // (element_count saturates at INT64_MAX).
  const int64_t elements = element_count(array.shape);
  if (elements == std::numeric_limits<int64_t>::max() ||
      static_cast<uint64_t>(elements) > std::numeric_limits<size_t>::max() / width)
    return bad(source, fmt::format("truncated: shape {} of {} needs more data bytes than the {} present",
                                   format_shape(array.shape), to_string(array.dtype), available));
  const size_t expected_bytes = static_cast<size_t>(elements) * width;
  if (available < expected_bytes)
    return bad(source, fmt::format("truncated: shape {} of {} needs {} data bytes but only {} are present",
                                   format_shape(array.shape), to_string(array.dtype), expected_bytes, available));
  if (available > expected_bytes)
    return bad(source, fmt::format("{} unexpected trailing bytes after the {} data bytes of shape {}",
                                   available - expected_bytes, expected_bytes, format_shape(array.shape)));
  array.bytes.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start), bytes.end());
  if (parsed->swap) byte_swap(array.bytes, width);
  return array;
}

Status write(const std::filesystem::path& path, DType dtype, std::span<const int64_t> shape, const void* data,
             size_t elements) {
  for (int64_t d : shape)
    if (d < 0)
      return {ErrorCode::invalid_input, fmt::format("{}: negative dimension in shape {}", path.string(),
                                                    format_shape(shape))};
  const int64_t expected = element_count(shape);
  if (static_cast<size_t>(expected) != elements)
    return {ErrorCode::shape_mismatch, fmt::format("{}: {} elements do not fill shape {} ({} elements)",
                                                   path.string(), elements, format_shape(shape), expected)};

  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr(dtype),
                                 format_shape(shape));
  // numpy pads with spaces and ends with '\n' so the data starts on a 64-byte boundary.
  bool version2 = false;
  size_t prefix = 10;
  size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  if (total - prefix > 0xFFFF) {
    version2 = true;
    prefix = 12;
    total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  }
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');

  std::string head(reinterpret_cast<const char*>(kMagic), sizeof kMagic);
  head.push_back(static_cast<char>(version2 ? 2 : 1));
  head.push_back(0);
  const size_t len = dict.size();
  head.push_back(static_cast<char>(len & 0xFF));
  head.push_back(static_cast<char>((len >> 8) & 0xFF));
  if (version2) {
    head.push_back(static_cast<char>((len >> 16) & 0xFF));
    head.push_back(static_cast<char>((len >> 24) & 0xFF));
  }
  head += dict;

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return {ErrorCode::io_error, fmt::format("{}: cannot open for writing", path.string())};
  out.write(head.data(), static_cast<std::streamsize>(head.size()));
  const size_t width = item_size(dtype);
  if constexpr (std::endian::native == std::endian::little) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(elements * width));
  } else {
    std::vector<unsigned char> swapped(static_cast<const unsigned char*>(data),
                                       static_cast<const unsigned char*>(data) + elements * width);
    byte_swap(swapped, width);
    out.write(reinterpret_cast<const char*>(swapped.data()), static_cast<std::streamsize>(swapped.size()));
  }
  out.close();
  if (!out) return {ErrorCode::io_error, fmt::format("{}: write failed", path.string())};
  return {};
}

template <class T>
Result<std::vector<T>> read_as(const std::filesystem::path& path, std::span<const int64_t> expected,
                               std::vector<int64_t>* actual_shape) {
  auto array = read(path);
  if (!array) return array.status();
  if (array->dtype != DTypeOf<T>::value)
    return bad(path.string(), fmt::format("dtype is {} but {} ({}) is required", to_string(array->dtype),
                                          to_string(DTypeOf<T>::value), descr(DTypeOf<T>::value)));
  if (!same_rank_and_dims(expected, array->shape))
    return Status{ErrorCode::shape_mismatch,
                  fmt::format("{}: shape is {} but {} is required", path.string(), format_shape(array->shape),
                              format_shape(expected))};
  std::vector<T> values(static_cast<size_t>(array->elements()));
  if (!values.empty()) std::memcpy(values.data(), array->bytes.data(), values.size() * sizeof(T));
  if (actual_shape) *actual_shape = array->shape;
  return values;
}

template Result<std::vector<float>> read_as<float>(const std::filesystem::path&, std::span<const int64_t>,
                                                   std::vector<int64_t>*);
template Result<std::vector<int32_t>> read_as<int32_t>(const std::filesystem::path&, std::span<const int64_t>,
                                                       std::vector<int64_t>*);
template Result<std::vector<uint8_t>> read_as<uint8_t>(const std::filesystem::path&, std::span<const int64_t>,
                                                       std::vector<int64_t>*);

}  // namespace multibox::npy
