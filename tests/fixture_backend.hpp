// A backend that computes nothing and says so: what the registry's tests load as plugins and add by hand.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "multibox/backend.hpp"

namespace multibox::test {

class FixtureBackend final : public multibox::Backend {
 public:
  explicit FixtureBackend(std::string_view name) : name_(name) {}
  std::string_view name() const noexcept override { return name_; }
  std::string_view description() const noexcept override { return "loader test fixture"; }
  multibox::Status available() const override {
    return multibox::Status(multibox::ErrorCode::unavailable, "a loader test fixture computes nothing");
  }
  multibox::Result<std::unique_ptr<multibox::Plan>> prepare(const multibox::ProblemShape&, std::span<const float>,
                                                            const multibox::Config&,
                                                            const multibox::PlanOptions&) const override {
    return available();
  }

 private:
  std::string_view name_;
};

}  // namespace multibox::test
