// The one list of backends. Adding a line in impls/registry.cpp enrols a backend in the conformance
// properties, the golden checks, the command line and the benchmarks.
#pragma once

#include <span>
#include <string_view>

#include "multibox/backend.hpp"

namespace multibox {

// Environment variable that overrides the backend a tool would pick (like SIMDJSON_FORCE_IMPLEMENTATION).
inline constexpr const char* kBackendEnvVar = "MULTIBOX_BACKEND";

// Every registered backend, the naive reference first; available or not.
std::span<const Backend* const> all_backends() noexcept;
// nullptr when no backend has that name.
const Backend* find_backend(std::string_view name) noexcept;
// The reference every other backend is checked against.
const Backend& reference_backend() noexcept;
// `requested` by name, unless MULTIBOX_BACKEND is set, which wins. An empty request picks the first
// available backend other than the reference. Errors name the unknown or unavailable backend and list the others.
Result<const Backend*> select_backend(std::string_view requested);

}  // namespace multibox
