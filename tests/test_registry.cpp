// The registry (simdjson checkimplementation style): one list, lookup by name, and the MULTIBOX_BACKEND override
// that forces a backend whatever the caller asked for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "multibox/multibox.hpp"
#include "fixture_backend.hpp"
#include "multibox/plugin.hpp"

namespace multibox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Sets (or clears) MULTIBOX_BACKEND for one test and restores what the environment held before.
class ScopedBackendEnv {
 public:
  explicit ScopedBackendEnv(const char* value) {
    if (const char* old = std::getenv(kBackendEnvVar)) saved_ = old;
    if (value) setenv(kBackendEnvVar, value, 1);
    else unsetenv(kBackendEnvVar);
  }
  ~ScopedBackendEnv() {
    if (saved_) setenv(kBackendEnvVar, saved_->c_str(), 1);
    else unsetenv(kBackendEnvVar);
  }
  ScopedBackendEnv(const ScopedBackendEnv&) = delete;
  ScopedBackendEnv& operator=(const ScopedBackendEnv&) = delete;

 private:
  std::optional<std::string> saved_;
};

TEST(Registry, ReferenceIsNaiveAndListedFirst) {
  ASSERT_FALSE(all_backends().empty());
  EXPECT_EQ(all_backends()[0], &reference_backend());
  EXPECT_EQ(reference_backend().name(), "naive");
  EXPECT_TRUE(reference_backend().available().ok()) << "the oracle must run everywhere";
}

TEST(Registry, NamesAreUniqueAndEveryBackendDescribesItself) {
  std::set<std::string> names;
  for (const Backend* b : all_backends()) {
    ASSERT_NE(b, nullptr);
    EXPECT_FALSE(b->name().empty());
    EXPECT_FALSE(b->description().empty()) << b->name();
    EXPECT_TRUE(names.insert(std::string(b->name())).second) << "duplicate backend name " << b->name();
    if (Status s = b->available(); !s) {
      EXPECT_EQ(s.code(), ErrorCode::unavailable) << b->name();
      EXPECT_FALSE(s.message().empty()) << b->name() << " is unavailable without saying why";
    }
  }
}

TEST(Registry, FindBackendByName) {
  for (const Backend* b : all_backends()) EXPECT_EQ(find_backend(b->name()), b);
  EXPECT_EQ(find_backend("naive"), &reference_backend());
  EXPECT_EQ(find_backend("no-such-backend"), nullptr);
  EXPECT_EQ(find_backend(""), nullptr);
  EXPECT_EQ(find_backend("Naive"), nullptr);  // names are exact
}

TEST(Registry, SelectByName) {
  ScopedBackendEnv env(nullptr);
  for (const Backend* b : all_backends()) {
    auto selected = select_backend(b->name());
    if (b->available().ok()) {
      ASSERT_TRUE(selected.ok()) << selected.status().to_string();
      EXPECT_EQ(*selected, b);
    } else {
      ASSERT_FALSE(selected.ok());
      EXPECT_THAT(selected.status().message(), AllOf(HasSubstr(std::string(b->name())), HasSubstr("unavailable")));
    }
  }
}

TEST(Registry, EmptyRequestPicksAnAvailableBackend) {
  ScopedBackendEnv env(nullptr);
  auto selected = select_backend("");
  ASSERT_TRUE(selected.ok()) << selected.status().to_string();
  EXPECT_TRUE((*selected)->available().ok());
  // The reference is only the fallback: any other available backend is preferred.
  for (const Backend* b : all_backends())
    if (b != &reference_backend() && b->available().ok()) {
      EXPECT_NE(*selected, &reference_backend()) << b->name() << " is available but the reference was picked";
      break;
    }
}

TEST(Registry, UnknownNameListsTheRegisteredBackends) {
  ScopedBackendEnv env(nullptr);
  auto selected = select_backend("quantum");
  ASSERT_FALSE(selected.ok());
  EXPECT_EQ(selected.status().code(), ErrorCode::unavailable);
  EXPECT_THAT(selected.status().message(), HasSubstr("'quantum'"));
  for (const Backend* b : all_backends()) EXPECT_THAT(selected.status().message(), HasSubstr(std::string(b->name())));
}

TEST(Registry, EnvironmentOverrideWins) {
  // Whatever the caller requests, MULTIBOX_BACKEND decides; check for every backend that can run here, the way
  // simdjson's checkimplementation verifies the forced implementation is the one in use.
  for (const Backend* b : all_backends()) {
    if (!b->available().ok()) continue;
    SCOPED_TRACE(std::string(b->name()));
    ScopedBackendEnv env(std::string(b->name()).c_str());
    for (std::string_view requested : {std::string_view(""), std::string_view("naive"), std::string_view("quantum")}) {
      auto selected = select_backend(requested);
      ASSERT_TRUE(selected.ok()) << selected.status().to_string();
      EXPECT_EQ(*selected, b) << "requested '" << requested << "'";
    }
  }
}

TEST(Registry, EnvironmentOverrideWithUnknownNameIsAnErrorNamingTheVariable) {
  ScopedBackendEnv env("quantum");
  auto selected = select_backend("naive");  // a valid request does not hide a bad override
  ASSERT_FALSE(selected.ok());
  EXPECT_THAT(selected.status().message(),
              AllOf(HasSubstr("'quantum'"), HasSubstr(kBackendEnvVar), HasSubstr("naive")));
}

TEST(Registry, EmptyEnvironmentVariableIsNoOverride) {
  ScopedBackendEnv env("");
  auto selected = select_backend("naive");
  ASSERT_TRUE(selected.ok()) << selected.status().to_string();
  EXPECT_EQ(*selected, &reference_backend());
}

// The loader (multibox/plugin.hpp). These tests load libraries into this process's registry for good; ctest runs
// each in a process of its own.
TEST(Plugins, LoadsEveryBackendOfAPluginAfterTheBuiltIns) {
  const std::size_t before = all_backends().size();
  const Status s = load_plugin(PLUGIN_FIXTURE_GOOD);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(all_backends().size(), before + 2);
  const Backend* one = find_backend("fixture-one");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(all_backends()[before], one);
  EXPECT_NE(find_backend("fixture-two"), nullptr);
  EXPECT_EQ(backend_origin(*one), PLUGIN_FIXTURE_GOOD);
  EXPECT_EQ(backend_origin(reference_backend()), "");
  EXPECT_TRUE(plugin_status().ok());
  // The same library again is a no-op, not a clash with its own names.
  EXPECT_TRUE(load_plugin(PLUGIN_FIXTURE_GOOD).ok());
  EXPECT_EQ(all_backends().size(), before + 2);
  // Selected like a built-in; its unavailability reason comes through.
  auto selected = select_backend("fixture-one");
  ASSERT_FALSE(selected.ok());
  EXPECT_THAT(selected.status().message(), HasSubstr("loader test fixture computes nothing"));
}

// Each refusal names the path and says what is wrong, leaves the backend list as it was and shows in plugin_status().
void expect_refused(const std::string& path, const std::vector<std::string>& words) {
  const std::size_t before = all_backends().size();
  const Status s = load_plugin(path);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("plugin '" + path + "'"));
  for (const std::string& w : words) EXPECT_THAT(s.message(), HasSubstr(w));
  EXPECT_EQ(all_backends().size(), before);
  const Status overall = plugin_status();
  ASSERT_FALSE(overall.ok());
  EXPECT_THAT(overall.message(), HasSubstr(s.message()));
}

TEST(Plugins, AddBackendAppendsOnceAndRefusesATakenName) {
  static const test::FixtureBackend added("fixture-added"), clash("naive");
  const std::size_t before = all_backends().size();
  ASSERT_TRUE(add_backend(added).ok());
  ASSERT_TRUE(add_backend(added).ok());  // the same object again: nothing changes
  ASSERT_EQ(all_backends().size(), before + 1);
  EXPECT_EQ(find_backend("fixture-added"), &added);
  EXPECT_EQ(backend_origin(added), "(added by the program)");
  const Status s = add_backend(clash);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("add_backend: backend name 'naive' is already registered (built in)"));
  EXPECT_EQ(all_backends().size(), before + 1);
  EXPECT_THAT(plugin_status().message(), HasSubstr("'naive'"));
}

TEST(Plugins, RefusesAMissingFile) { expect_refused("/nonexistent/libnothing.so", {"no such file"}); }

TEST(Plugins, RefusesAFileThatIsNoLibraryWithDlopensWords) {
  expect_refused(__FILE__, {"dlopen failed", "test_registry.cpp"});
}

TEST(Plugins, RefusesALibraryWithoutTheEntryPoint) {
  expect_refused(PLUGIN_FIXTURE_NO_ENTRY_POINT, {"no symbol 'multibox_plugin_v1'", "MULTIBOX_PLUGIN"});
}

TEST(Plugins, RefusesAnotherInterfaceVersion) {
  expect_refused(PLUGIN_FIXTURE_WRONG_VERSION,
                 {"interface version " + std::to_string(MULTIBOX_PLUGIN_INTERFACE_VERSION + 1),
                  "loads version " + std::to_string(MULTIBOX_PLUGIN_INTERFACE_VERSION)});
  EXPECT_EQ(find_backend("fixture-mismatch"), nullptr);
}

TEST(Plugins, RefusesAnotherCompilerOrStandardLibrary) {
  expect_refused(PLUGIN_FIXTURE_WRONG_ABI, {"'othercc-1 otherlib'", "'" MULTIBOX_PLUGIN_ABI_TAG "'"});
  EXPECT_EQ(find_backend("fixture-mismatch"), nullptr);
}

TEST(Plugins, RefusesABackendNameAlreadyRegistered) {
  expect_refused(PLUGIN_FIXTURE_DUPLICATE, {"backend name 'naive' is already registered (built in)"});
  EXPECT_EQ(find_backend("naive"), &reference_backend());
}

}  // namespace
}  // namespace multibox
