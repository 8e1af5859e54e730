// The `multibox` command line: one subcommand per file, listed below.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"multibox: correctness and benchmark harness for SSD MultiBox matching and loss backends"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "multibox 0.1.0");

  // The command list: one line per subcommand.
  multibox::cli::add_backends_command(app);
  multibox::cli::add_datasets_command(app);
  multibox::cli::add_export_command(app);
  multibox::cli::add_validate_command(app);
  multibox::cli::add_eval_command(app);

  CLI11_PARSE(app, argc, argv);
  return 0;
}
