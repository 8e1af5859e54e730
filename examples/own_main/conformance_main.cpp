// A team's own GoogleTest binary running the whole conformance suite on its backend: link the objects of
// multibox_conformance, enrol the backend with multibox::add_backend() before InitGoogleTest (which instantiates the
// suite over all_backends()), and run. Cases, repro lines and verdicts are those of multibox_property_test.
#include <gtest/gtest.h>

#include <iostream>

#include "multibox/registry.hpp"

namespace example {
const multibox::Backend& backend() noexcept;  // examples/plugin/example_backend.cpp, compiled into this binary
}

int main(int argc, char** argv) {
  if (multibox::Status s = multibox::add_backend(example::backend()); !s) {
    std::cerr << s.message() << '\n';
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
