// `multibox backends`: every registered backend with its availability (or the reason it cannot run here), and
// which one a tool picks by default.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/registry.hpp"

namespace multibox::cli {

void add_backends_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("backends", "List every registered backend and whether it can run here");
  cmd->callback([] {
    std::size_t width = 10;  // plugin backends may have longer names than the built-ins
    for (const Backend* b : all_backends()) width = std::max(width, b->name().size());
    fmt::print("{:<{}} {:<12} {}\n", "backend", width, "status", "description, or why it cannot run here");
    for (const Backend* b : all_backends()) {
      const Status s = b->available();
      const std::string_view origin = backend_origin(*b);
      fmt::print("{:<{}} {:<12} {}{}\n", b->name(), width, s.ok() ? "available" : "unavailable",
                 s.ok() ? std::string(b->description()) : s.message(),
                 origin.empty() ? std::string() : fmt::format(" [plugin {}]", origin));
    }

    const char* forced = std::getenv(kBackendEnvVar);
    auto chosen = select_backend("");
    if (!chosen) {
      std::cerr << "multibox backends: " << chosen.status().message() << '\n';
      throw CLI::RuntimeError(1);
    }
    fmt::print("\ndefault: {}{}\n", (*chosen)->name(),
               forced != nullptr && *forced != '\0' ? fmt::format(" (forced by {}={})", kBackendEnvVar, forced)
                                                    : fmt::format(" (override with {}=NAME or --backend NAME)",
                                                                  kBackendEnvVar));
  });
}

}  // namespace multibox::cli
