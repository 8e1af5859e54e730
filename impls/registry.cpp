// The one list of backends. A new backend is a folder under impls/ plus one line here.
#include "multibox/registry.hpp"

#include <array>
#include <cstdlib>
#include <string>

#include "cuda/cuda_backend.hpp"
#include "naive/naive_backend.hpp"
#include "simd/simd_backend.hpp"

namespace multibox {
namespace {

const auto& registry() {
  static const std::array<const Backend*, 3> list = {
      &naive::backend(),  // the reference: keep it first
      &simd::backend(),
      &cuda::backend(),
  };
  return list;
}

std::string backend_names() {
  std::string names;
  for (const Backend* b : registry()) {
    if (!names.empty()) names += ", ";
    names += b->name();
  }
  return names;
}

}  // namespace

std::span<const Backend* const> all_backends() noexcept { return registry(); }

const Backend* find_backend(std::string_view name) noexcept {
  for (const Backend* b : registry())
    if (b->name() == name) return b;
  return nullptr;
}

const Backend& reference_backend() noexcept { return naive::backend(); }

Result<const Backend*> select_backend(std::string_view requested) {
  std::string_view source = "requested";
  if (const char* forced = std::getenv(kBackendEnvVar); forced != nullptr && *forced != '\0') {
    requested = forced;
    source = kBackendEnvVar;
  }
  if (requested.empty()) {
    for (const Backend* b : registry())
      if (b != &reference_backend() && b->available().ok()) return b;
    return &reference_backend();
  }
  const Backend* b = find_backend(requested);
  if (b == nullptr)
    return Status(ErrorCode::unavailable, "unknown backend '" + std::string(requested) + "' (" + std::string(source) +
                                              "); registered: " + backend_names());
  if (Status s = b->available(); !s)
    return Status(ErrorCode::unavailable,
                  "backend '" + std::string(requested) + "' (" + std::string(source) + ") is unavailable: " + s.message());
  return b;
}

}  // namespace multibox
