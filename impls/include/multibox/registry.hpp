// The one list of backends: the built-ins of impls/registry.cpp, then plugins (multibox/plugin.hpp). Being listed here
// enrols a backend in the conformance properties, the golden checks, the command line and the benchmarks.
#pragma once

#include <span>
#include <string_view>

#include "multibox/backend.hpp"

namespace multibox {

// Environment variable that overrides the backend a tool would pick (like SIMDJSON_FORCE_IMPLEMENTATION).
inline constexpr const char* kBackendEnvVar = "MULTIBOX_BACKEND";
// Colon-separated plugin libraries, loaded on the first use of any function below (so tests that instantiate over
// all_backends() at static-initialisation time see them too).
inline constexpr const char* kPluginsEnvVar = "MULTIBOX_PLUGINS";

// Every registered backend, the naive reference first, then plugins in load order; available or not. A span taken
// before a load_plugin() call stays valid but does not show that plugin's backends.
std::span<const Backend* const> all_backends() noexcept;
// nullptr when no backend has that name.
const Backend* find_backend(std::string_view name) noexcept;
// The reference every other backend is checked against.
const Backend& reference_backend() noexcept;
// `requested` by name, unless MULTIBOX_BACKEND is set, which wins. An empty request picks the first
// available backend other than the reference. Errors name the unknown or unavailable backend and list the others.
Result<const Backend*> select_backend(std::string_view requested);

// Loads a plugin library (dlopen RTLD_NOW | RTLD_LOCAL, never unloaded) and appends its backends. Loading the same
// library again does nothing. Errors name the path: file missing, dlopen's text, no entry point, interface version
// or compiler/ABI mismatch, a backend name already registered (nothing of that plugin is added then).
Status load_plugin(std::string_view path);
// Appends a backend compiled into this program (same name checks as a plugin's; adding it again does nothing).
// Called before ::testing::InitGoogleTest, it enrols the backend in the conformance suite linked into a user's own
// test binary (multibox_conformance), which instantiates over all_backends() there.
Status add_backend(const Backend& backend);
// Ok when every plugin load and add_backend() so far succeeded (MULTIBOX_PLUGINS and load_plugin), else every failure, one per line.
// Tools check it before trusting all_backends(): a plugin that failed to load must fail the run, not vanish from it.
Status plugin_status();
// The library a backend came from, "(added by the program)", or an empty view for a built-in one.
std::string_view backend_origin(const Backend& backend) noexcept;

}  // namespace multibox
