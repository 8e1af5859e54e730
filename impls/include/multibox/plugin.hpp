// Out-of-tree backends: a shared library that declares its Backend objects with MULTIBOX_PLUGIN(...) is loaded by
// every tool (--plugin PATH, MULTIBOX_PLUGINS) and treated exactly like a built-in backend.
//
//   #include "multibox/plugin.hpp"
//   const multibox::Backend& my_backend();           // a final class derived from multibox::Backend
//   MULTIBOX_PLUGIN(&my_backend())                   // one or more `const Backend*`, in one .cpp of the library
//
// Backends cross the library boundary as C++ objects (vtables, std::string inside Status, std::vector in
// BatchOutputs), so host and plugin must agree on the interface and on the C++ ABI: the entry point returns both,
// and the loader refuses a mismatch before it touches a Backend.
#pragma once

#include <cstddef>
#include <cstdint>

#include "multibox/backend.hpp"

// Bump whenever a type that crosses the boundary changes layout or virtual functions (backend.hpp, batch.hpp,
// config.hpp, status.hpp): a plugin built against other headers would call through a wrong vtable.
// 2: Backend::plan_memory.
#define MULTIBOX_PLUGIN_INTERFACE_VERSION 2

#define MULTIBOX_PLUGIN_STR_(x) #x
#define MULTIBOX_PLUGIN_STR(x) MULTIBOX_PLUGIN_STR_(x)

// Compiler family and major version (minor releases keep the ABI), then the standard library and its string ABI:
// those decide the layout of std::string and std::vector and the mangling a plugin's objects are built with.
#if defined(__clang__)
#define MULTIBOX_PLUGIN_COMPILER_TAG_ "clang-" MULTIBOX_PLUGIN_STR(__clang_major__)
#elif defined(__GNUC__)
#define MULTIBOX_PLUGIN_COMPILER_TAG_ "gcc-" MULTIBOX_PLUGIN_STR(__GNUC__)
#else
#define MULTIBOX_PLUGIN_COMPILER_TAG_ "unknown-compiler"
#endif
#if defined(_LIBCPP_VERSION)
#define MULTIBOX_PLUGIN_STDLIB_TAG_ " libc++-abi" MULTIBOX_PLUGIN_STR(_LIBCPP_ABI_VERSION)
#elif defined(__GLIBCXX__)
#define MULTIBOX_PLUGIN_STDLIB_TAG_ " libstdc++-cxx11abi" MULTIBOX_PLUGIN_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define MULTIBOX_PLUGIN_STDLIB_TAG_ " unknown-stdlib"
#endif
#if defined(_GLIBCXX_DEBUG)
#define MULTIBOX_PLUGIN_DEBUG_TAG_ " debug-containers"  // _GLIBCXX_DEBUG changes every container's layout
#else
#define MULTIBOX_PLUGIN_DEBUG_TAG_ ""
#endif
// What the loader compares, as text so the error can show both sides: "gcc-12 libstdc++-cxx11abi1".
#define MULTIBOX_PLUGIN_ABI_TAG MULTIBOX_PLUGIN_COMPILER_TAG_ MULTIBOX_PLUGIN_STDLIB_TAG_ MULTIBOX_PLUGIN_DEBUG_TAG_

namespace multibox {

// What multibox_plugin_v1() returns. Plain C layout with the version first, so a loader of any version can read it
// before trusting the rest.
struct PluginInfo {
  std::uint32_t interface_version;  // MULTIBOX_PLUGIN_INTERFACE_VERSION the plugin was compiled with
  const char* abi_tag;              // MULTIBOX_PLUGIN_ABI_TAG the plugin was compiled with
  const Backend* const* backends;   // static storage in the plugin: the library is never unloaded
  std::size_t num_backends;
};

}  // namespace multibox

// The one symbol the loader looks up.
#define MULTIBOX_PLUGIN_ENTRY_POINT "multibox_plugin_v1"
using multibox_plugin_v1_fn = const multibox::PluginInfo* (*)();

// Defines the entry point returning the given `const multibox::Backend*` values. Use once per plugin library.
#define MULTIBOX_PLUGIN(...)                                                                                      \
  extern "C" __attribute__((visibility("default"))) const ::multibox::PluginInfo* multibox_plugin_v1() {          \
    static const ::multibox::Backend* const multibox_plugin_backends[] = {__VA_ARGS__};                           \
    static const ::multibox::PluginInfo multibox_plugin_info{                                                     \
        MULTIBOX_PLUGIN_INTERFACE_VERSION, MULTIBOX_PLUGIN_ABI_TAG, multibox_plugin_backends,                     \
        sizeof(multibox_plugin_backends) / sizeof(multibox_plugin_backends[0])};                                  \
    return &multibox_plugin_info;                                                                                 \
  }
