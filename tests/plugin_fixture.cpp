// Plugin libraries for the loader's tests (test_registry.cpp): one source, built once per FIXTURE_* variant, each a
// shared library the registry must load or refuse with a message naming it.
#include "fixture_backend.hpp"
#include "multibox/plugin.hpp"

namespace {

using multibox::test::FixtureBackend;

#if defined(FIXTURE_GOOD)
const FixtureBackend kFirst("fixture-one"), kSecond("fixture-two");
}  // namespace
MULTIBOX_PLUGIN(&kFirst, &kSecond)
#elif defined(FIXTURE_DUPLICATE)
const FixtureBackend kClash("naive");
}  // namespace
MULTIBOX_PLUGIN(&kClash)
#elif defined(FIXTURE_WRONG_VERSION) || defined(FIXTURE_WRONG_ABI)
const FixtureBackend kBackend("fixture-mismatch");
const multibox::Backend* const kList[] = {&kBackend};
}  // namespace
extern "C" __attribute__((visibility("default"))) const multibox::PluginInfo* multibox_plugin_v1() {
#if defined(FIXTURE_WRONG_VERSION)
  static const multibox::PluginInfo info{MULTIBOX_PLUGIN_INTERFACE_VERSION + 1, MULTIBOX_PLUGIN_ABI_TAG, kList, 1};
#else
  static const multibox::PluginInfo info{MULTIBOX_PLUGIN_INTERFACE_VERSION, "othercc-1 otherlib", kList, 1};
#endif
  return &info;
}
#elif defined(FIXTURE_NO_ENTRY_POINT)
const FixtureBackend kOrphan("fixture-orphan");
}  // namespace
extern "C" __attribute__((visibility("default"))) const void* not_the_entry_point() { return &kOrphan; }
#else
#error "build with one FIXTURE_* definition"
#endif
