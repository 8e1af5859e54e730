// The registry (simdjson checkimplementation style): one list, lookup by name, and the MULTIBOX_BACKEND override
// that forces a backend whatever the caller asked for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "multibox/multibox.hpp"

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

}  // namespace
}  // namespace multibox
