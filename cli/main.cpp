// The `multibox` command line: one subcommand per file, listed below.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "multibox/registry.hpp"

int main(int argc, char** argv) {
  CLI::App app{"multibox: correctness and benchmark harness for SSD MultiBox matching and loss backends"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "multibox 0.1.0");
  app.fallthrough();  // subcommands inherit it: `multibox eval --plugin X` works as well as `multibox --plugin X eval`

  std::vector<std::string> plugins;
  app.add_option("--plugin", plugins,
                 "Load backends from this plugin library (repeatable; also MULTIBOX_PLUGINS, colon-separated)")
      ->type_name("PATH");
  // Runs after parsing and before any subcommand: every subcommand sees the plugins' backends, and a plugin that
  // failed to load (here or from MULTIBOX_PLUGINS) stops the run instead of quietly shrinking the backend list.
  app.parse_complete_callback([&plugins] {
    for (const std::string& path : plugins) (void)multibox::load_plugin(path);  // failures: plugin_status()
    if (multibox::Status s = multibox::plugin_status(); !s) {
      std::cerr << "multibox: " << s.message() << '\n';
      throw CLI::RuntimeError(1);
    }
  });

  // The command list: one line per subcommand.
  multibox::cli::add_backends_command(app);
  multibox::cli::add_datasets_command(app);
  multibox::cli::add_export_command(app);
  multibox::cli::add_validate_command(app);
  multibox::cli::add_eval_command(app);

  CLI11_PARSE(app, argc, argv);
  return 0;
}
