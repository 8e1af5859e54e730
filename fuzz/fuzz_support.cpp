#include "fuzz_support.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <system_error>

namespace multibox::fuzz {
namespace fs = std::filesystem;

void finding(std::string_view what) {
  std::fprintf(stderr, "FUZZ FINDING: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  std::abort();
}

std::vector<Bytes> split_files(Bytes input) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  std::vector<Bytes> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(kFileSeparator, start);
    if (end == std::string_view::npos) {
      parts.push_back(input.subspan(start));
      return parts;
    }
    parts.push_back(input.subspan(start, end - start));
    start = end + kFileSeparator.size();
  }
}

std::string join_files(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += kFileSeparator;
    out += parts[i];
  }
  return out;
}

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = base / ("multibox-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

const fs::path& scratch_folder() {
  static const Scratch scratch;
  return scratch.dir;
}

void write_files(const fs::path& dir, std::span<const char* const> names, const std::vector<Bytes>& parts) {
  for (size_t i = 0; i < names.size(); ++i) {
    const fs::path path = dir / names[i];
    std::error_code ec;
    if (i >= parts.size() || parts[i].empty()) {
      fs::remove(path, ec);
      continue;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(parts[i].data()), static_cast<std::streamsize>(parts[i].size()));
    if (!out) finding("cannot write the scratch file " + path.string() + " (the harness, not the code under test)");
  }
}

}  // namespace multibox::fuzz
