// The subcommands of the convkit program: each adds itself to the CLI11 app and returns the
// function that runs it once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

namespace convkit::cli {

/// Runs a parsed subcommand; returns the process exit status.
using Runner = std::function<int()>;

Runner add_compare(CLI::App& app);
Runner add_train(CLI::App& app);
Runner add_summary(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_check(CLI::App& app);

/// Exit status after Ctrl-C, as shells report a SIGINT death (128 + 2).
inline constexpr int kInterruptedStatus = 130;

}  // namespace convkit::cli
