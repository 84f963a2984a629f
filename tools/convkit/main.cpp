// convkit: the command-line program — compare, train, summary, bench and check (see --help).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>

#include "commands.hpp"
#include "convkit/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "convkit: train, compare and measure convolutional networks made of standard, "
      "depthwise and separable convolutions, on the CPU."};
  app.name("convkit");
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // --help shows every default
  app.fallthrough(false);
  const convkit::cli::Runner runners[] = {
      convkit::cli::add_compare(app), convkit::cli::add_train(app), convkit::cli::add_summary(app),
      convkit::cli::add_bench(app), convkit::cli::add_check(app)};
  const auto subcommands = app.get_subcommands([](CLI::App*) { return true; });
  std::string name = "convkit";
  try {
    // CLI11 would report a misspelt subcommand as a missing one: name it instead.
    if (argc > 1 && argv[1][0] != '-' &&
        std::none_of(subcommands.begin(), subcommands.end(),
                     [&](const CLI::App* s) { return s->get_name() == argv[1]; }))
      throw CLI::ParseError("unknown subcommand '" + std::string(argv[1]) +
                                "' (choose compare, train, summary, bench or check)",
                            CLI::ExitCodes::ExtrasError);
    app.parse(argc, argv);
    for (std::size_t i = 0; i < subcommands.size(); ++i)
      if (subcommands[i]->parsed()) {
        name = "convkit " + subcommands[i]->get_name();
        return runners[i]();
      }
    return 0;
  } catch (const CLI::CallForHelp&) {
    const auto parsed = app.get_subcommands();
    std::fputs((parsed.empty() ? app.help() : parsed.front()->help()).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    const auto parsed = app.get_subcommands();
    const std::string where = parsed.empty() ? "convkit" : "convkit " + parsed.front()->get_name();
    std::fprintf(stderr, "%s: error: %s\nRun '%s --help' for usage.\n", where.c_str(), e.what(),
                 where.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", name.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\nRun '%s --help' for usage.\n", name.c_str(), e.what(),
                 name.c_str());
    return 1;
  }
}
