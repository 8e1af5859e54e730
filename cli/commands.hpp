// Subcommands of the `multibox` executable. Each lives in its own cmd_<name>.cpp and is added to the app by
// one line in main.cpp's command list.
#pragma once

#include <CLI/CLI.hpp>

namespace multibox::cli {

// Each adds its subcommand (with --help) to `app`; the subcommand's callback returns through CLI::RuntimeError
// with a non-zero exit code on failure.
void add_backends_command(CLI::App& app);
void add_datasets_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_eval_command(CLI::App& app);

}  // namespace multibox::cli
