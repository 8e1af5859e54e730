// The one list of backends. A new backend is a folder under impls/ plus one line here, or a plugin library
// (multibox/plugin.hpp) loaded at run time.
#include "multibox/registry.hpp"

#include <dlfcn.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "multibox/plugin.hpp"

#include "cuda/cuda_backend.hpp"
#include "naive/naive_backend.hpp"
#include "simd/simd_backend.hpp"

namespace multibox {
namespace {

const auto& built_in_backends() {
  static const std::array<const Backend*, 3> list = {
      &naive::backend(),  // the reference: keep it first
      &simd::backend(),
      &cuda::backend(),
  };
  return list;
}

// all_backends() hands out spans over `backends`, and GoogleTest copies them at static-initialisation time; the
// capacity is reserved once so a later load_plugin() never moves the elements under such a span.
constexpr std::size_t kMaxBackends = 256;

struct Registry {
  std::mutex mutex;  // load_plugin() may race with another load; iteration is not guarded (see registry.hpp)
  std::vector<const Backend*> backends;
  std::vector<std::string> origins;  // parallel to backends: "" or the plugin's path
  std::vector<void*> handles;        // loaded libraries, to make a second load of one a no-op
  std::vector<std::string> errors;

  Registry() {
    backends.reserve(kMaxBackends);
    origins.reserve(kMaxBackends);
    for (const Backend* b : built_in_backends()) {
      backends.push_back(b);
      origins.emplace_back();
    }
  }

  const Backend* find(std::string_view name) const noexcept {
    for (const Backend* b : backends)
      if (b->name() == name) return b;
    return nullptr;
  }

  Status load(const std::string& path) {
    Status s = try_load(path);
    if (!s) errors.push_back(s.message());
    return s;
  }

  Status try_load(const std::string& path) {
    auto fail = [&path](ErrorCode code, const std::string& why) {
      return Status(code, "plugin '" + path + "': " + why);
    };
    std::error_code ec;
    if (path.empty()) return fail(ErrorCode::io_error, "empty path (check the separators in " +
                                                          std::string(kPluginsEnvVar) + ")");
    if (!std::filesystem::exists(path, ec)) return fail(ErrorCode::io_error, "no such file");
    if (!std::filesystem::is_regular_file(path, ec)) return fail(ErrorCode::io_error, "not a regular file");
    // A bare file name would make dlopen search the library path instead of loading the file the caller named.
    const std::string open_path = path.find('/') == std::string::npos ? "./" + path : path;
    // RTLD_NOW: an unresolved symbol (say, the plugin calls the registry it must not link) fails here, not mid-run.
    // RTLD_LOCAL: the plugin's own copy of multibox_core stays private to it.
    void* handle = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      return fail(ErrorCode::io_error, std::string("dlopen failed: ") + (why ? why : "unknown error"));
    }
    for (void* h : handles)
      if (h == handle) {
        dlclose(handle);  // drops only the reference this call added
        return {};
      }
    auto entry = reinterpret_cast<multibox_plugin_v1_fn>(dlsym(handle, MULTIBOX_PLUGIN_ENTRY_POINT));
    if (entry == nullptr) {
      dlclose(handle);
      return fail(ErrorCode::unavailable,
                  "no symbol '" MULTIBOX_PLUGIN_ENTRY_POINT
                  "' (declare the backends with MULTIBOX_PLUGIN(...) from multibox/plugin.hpp)");
    }
    const PluginInfo* info = entry();
    Status bad;
    if (info == nullptr) {
      bad = fail(ErrorCode::unavailable, MULTIBOX_PLUGIN_ENTRY_POINT " returned null");
    } else if (info->interface_version != MULTIBOX_PLUGIN_INTERFACE_VERSION) {
      bad = fail(ErrorCode::unavailable,
                 "built for plugin interface version " + std::to_string(info->interface_version) +
                     ", this multibox loads version " + std::to_string(MULTIBOX_PLUGIN_INTERFACE_VERSION) +
                     " (rebuild it against this multibox's headers)");
    } else if (info->abi_tag == nullptr || std::string_view(info->abi_tag) != MULTIBOX_PLUGIN_ABI_TAG) {
      bad = fail(ErrorCode::unavailable, std::string("built with '") + (info->abi_tag ? info->abi_tag : "(null)") +
                                             "', this multibox with '" MULTIBOX_PLUGIN_ABI_TAG
                                             "' (rebuild it with the same compiler and standard library)");
    } else if (info->num_backends == 0 || info->backends == nullptr) {
      bad = fail(ErrorCode::unavailable, "declares no backends");
    } else if (backends.size() + info->num_backends > kMaxBackends) {
      bad = fail(ErrorCode::unavailable, "too many backends (at most " + std::to_string(kMaxBackends) + " in all)");
    } else {
      for (std::size_t i = 0; i < info->num_backends && bad.ok(); ++i) {
        const Backend* b = info->backends[i];
        if (b == nullptr) {
          bad = fail(ErrorCode::unavailable, "backend " + std::to_string(i) + " is null");
          break;
        }
        const Backend* clash = find(b->name());
        for (std::size_t j = 0; j < i && clash == nullptr; ++j)
          if (info->backends[j]->name() == b->name()) clash = info->backends[j];
        if (b->name().empty()) bad = fail(ErrorCode::invalid_config, "backend " + std::to_string(i) + " has no name");
        else if (clash != nullptr)
          bad = fail(ErrorCode::invalid_config, "backend name '" + std::string(b->name()) + "' is already registered" +
                                                    origin_words(clash));
      }
    }
    if (!bad) {
      // Its objects were never handed out, so unloading is safe and frees the name for a fixed rebuild.
      dlclose(handle);
      return bad;
    }
    handles.push_back(handle);
    for (std::size_t i = 0; i < info->num_backends; ++i) {
      backends.push_back(info->backends[i]);
      origins.push_back(path);
    }
    return {};
  }

  std::string origin_words(const Backend* clash) const {
    for (std::size_t i = 0; i < backends.size(); ++i)
      if (backends[i] == clash)
        return origins[i].empty() ? " (built in)"
               : origins[i] == kAddedByProgram ? " (by add_backend)"
                                               : " (by plugin '" + origins[i] + "')";
    return " (twice in this plugin)";
  }

  // The origin of backends a program adds itself (the conformance suite in a user's own test binary).
  static constexpr const char* kAddedByProgram = "(added by the program)";

  Status add(const Backend& backend) {
    Status s;
    if (backend.name().empty()) s = Status(ErrorCode::invalid_config, "add_backend: the backend has no name");
    else if (const Backend* clash = find(backend.name()); clash == &backend) return {};
    else if (clash != nullptr)
      s = Status(ErrorCode::invalid_config, "add_backend: backend name '" + std::string(backend.name()) +
                                                "' is already registered" + origin_words(clash));
    else if (backends.size() == kMaxBackends)
      s = Status(ErrorCode::unavailable, "add_backend: too many backends (at most " + std::to_string(kMaxBackends) +
                                             " in all)");
    if (!s) {
      errors.push_back(s.message());
      return s;
    }
    backends.push_back(&backend);
    origins.emplace_back(kAddedByProgram);
    return {};
  }
};

Registry& registry_state() {
  static Registry* state = [] {
    auto* r = new Registry();  // never destroyed: plugin code may still run from other static destructors
    if (const char* list = std::getenv(kPluginsEnvVar); list != nullptr && *list != '\0') {
      std::string_view rest(list);
      while (true) {
        const std::size_t colon = rest.find(':');
        const std::string path(rest.substr(0, colon));
        if (!path.empty()) (void)r->load(path);  // failures land in errors, which plugin_status() reports
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
      }
    }
    return r;
  }();
  return *state;
}

std::span<const Backend* const> registry() noexcept { return registry_state().backends; }

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

Status load_plugin(std::string_view path) {
  Registry& r = registry_state();
  std::lock_guard lock(r.mutex);
  return r.load(std::string(path));
}

Status add_backend(const Backend& backend) {
  Registry& r = registry_state();
  std::lock_guard lock(r.mutex);
  return r.add(backend);
}

Status plugin_status() {
  Registry& r = registry_state();
  std::lock_guard lock(r.mutex);
  if (r.errors.empty()) return {};
  std::string message;
  for (const std::string& e : r.errors) message += (message.empty() ? "" : "\n") + e;
  return Status(ErrorCode::unavailable, message);
}

std::string_view backend_origin(const Backend& backend) noexcept {
  const Registry& r = registry_state();
  for (std::size_t i = 0; i < r.backends.size(); ++i)
    if (r.backends[i] == &backend) return r.origins[i];
  return {};
}

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
