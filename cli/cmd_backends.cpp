#include <fmt/format.h>

#include "commands.hpp"
#include "multibox/registry.hpp"

namespace multibox::cli {

void add_backends_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("backends", "List every registered backend and whether it can run here");
  cmd->callback([] {
    for (const Backend* b : all_backends()) {
      const Status s = b->available();
      fmt::print("{:<10} {:<12} {}\n", b->name(), s.ok() ? "available" : "unavailable",
                 s.ok() ? std::string(b->description()) : s.message());
    }
  });
}

}  // namespace multibox::cli
