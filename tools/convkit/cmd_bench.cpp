// convkit bench: times the convolution passes of the user's own problems through the public
// API (the kernels dispatch picks), with the kernel that ran, GB/s and GFLOP/s.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>

#include "commands.hpp"
#include "convkit/core/error.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "options.hpp"

namespace convkit::cli {

namespace {

/// The benchdnn letters a problem can be given by, one flag each (--mb 8 --ic 32 ...).
struct Letter {
  const char* name;
  const char* meaning;
};
constexpr Letter kLetters[] = {
    {"g", "groups"},
    {"mb", "batch"},
    {"ic", "input channels"},
    {"ih", "input height"},
    {"iw", "input width"},
    {"oc", "output channels"},
    {"kh", "kernel height"},
    {"kw", "kernel width"},
    {"sh", "stride (height)"},
    {"sw", "stride (width)"},
    {"ph", "padding (height)"},
    {"pw", "padding (width)"},
    {"dh", "dilation (height) as benchdnn writes it: taps skipped, 0 = none"},
    {"dw", "dilation (width), as --dh"}};

struct BenchArgs {
  std::vector<std::string> problems;
  std::map<std::string, std::int64_t> sizes;  // from the per-letter flags
  std::filesystem::path shapes;
  std::string layout = "nchw";
  std::vector<std::string> passes{"fwd", "bwd_d", "bwd_w"};
  double seconds = 0.3;
  int threads = 0;
};

/// Best time of `run` in seconds: one warm-up call, then calls until `budget` seconds have
/// passed (at least 3). The best, not the mean, is what the machine can do without noise.
double best_time(const std::function<void()>& run, double budget) {
  using Clock = std::chrono::steady_clock;
  run();
  double best = 1e300;
  const auto start = Clock::now();
  for (int i = 0; i < 3 || std::chrono::duration<double>(Clock::now() - start).count() < budget;
       ++i) {
    const auto t0 = Clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

std::vector<std::string> read_shapes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("--shapes '{}' is not a readable file", path.string()));
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("--shapes: cannot read '{}'", path.string()));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

int run_bench(const BenchArgs& a) {
  const int threads = apply_threads(a.threads);
  std::vector<std::string> lines = a.problems;
  if (!a.sizes.empty()) {  // the flags spell one more problem, in benchdnn's letter order
    std::string line;
    for (const Letter& letter : kLetters)
      if (const auto it = a.sizes.find(letter.name); it != a.sizes.end())
        line += letter.name + std::to_string(it->second);
    lines.push_back(line);
  }
  if (!a.shapes.empty())
    for (std::string& line : read_shapes(a.shapes)) lines.push_back(std::move(line));
  if (lines.empty())
    throw InvalidArgument(
        "give at least one --problem (e.g. "
        "g32mb8ic32ih112iw112oc32kh3kw3sh1sw1ph1pw1), --shapes FILE or the "
        "sizes as flags (--ic 32 --ih 112 --oc 32 --kh 3 ...)");
  const MemoryFormat format =
      a.layout == "nhwc" ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  std::vector<ConvProblem> problems;
  for (const std::string& line : lines) {
    try {
      problems.push_back(ConvProblem::parse(line, DType::F32, format));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("--problem '{}': {}", line, e.what()));
    }
  }
  std::printf("threads %d, layout %s, float32; time = best of repeated calls after a warm-up\n",
              threads, a.layout.c_str());
  std::printf("bytes = src + dst + weights read or written once; flops = 2 x multiply-adds\n\n");
  int width = 7;
  for (const ConvProblem& p : problems) width = std::max(width, static_cast<int>(p.str().size()));
  std::printf("%-*s %-6s %-34s %10s %9s %10s\n", width, "problem", "pass", "kernel", "ms", "GB/s",
              "GFLOP/s");
  for (const ConvProblem& p : problems) {
    const Tensor src = Tensor::uniform(p.src_shape(), -1, 1, 1, DType::F32, format);
    const Tensor wei = Tensor::uniform(p.wei_shape(), -1, 1, 2);
    const Tensor diff_dst = Tensor::uniform(p.dst_shape(), -1, 1, 3, DType::F32, format);
    const double bytes = 4.0 * static_cast<double>(p.src_shape().numel() + p.dst_shape().numel() +
                                                   p.wei_shape().numel());
    const double flops = 2.0 * static_cast<double>(p.macs());
    for (const std::string& pass : a.passes) {
      std::function<void()> run;
      if (pass == "fwd") run = [&] { conv_forward(p, src, wei); };
      if (pass == "bwd_d") run = [&] { conv_backward_data(p, diff_dst, wei); };
      if (pass == "bwd_w") run = [&] { conv_backward_weights(p, src, diff_dst); };
      const double t = best_time(run, a.seconds);
      std::printf("%-*s %-6s %-34s %10.3f %9.1f %10.1f\n", width, p.str().c_str(), pass.c_str(),
                  last_conv_kernel().c_str(), 1e3 * t, bytes / t * 1e-9, flops / t * 1e-9);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "time forward and backward convolution passes for your own problem sizes");
  cmd->add_option("--problem", args->problems,
                  "benchdnn-style problem, e.g. g32mb8ic32ih112iw112oc32kh3kw3sh1sw1ph1pw1 "
                  "(repeatable; omitted sizes default as in benchdnn: iw = ih, kw = kh, ...)");
  for (const Letter& letter : kLetters) {
    // Each flag fills its entry only when given, so parse() applies benchdnn's defaults.
    const std::string name = letter.name;
    cmd->add_option_function<std::int64_t>(
           "--" + name, [args, name](const std::int64_t& v) { args->sizes[name] = v; },
           letter.meaning)
        ->group("Problem by flags (one more problem; omitted sizes as in benchdnn)");
  }
  cmd->add_option("--shapes", args->shapes, "a file with one problem per line ('#' comments)");
  cmd->add_option("--layout", args->layout, "nchw or nhwc (channels-last)")
      ->check(CLI::IsMember({"nchw", "nhwc"}));
  cmd->add_option("--passes", args->passes, "any of fwd, bwd_d (data), bwd_w (weights)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fwd", "bwd_d", "bwd_w"}));
  cmd->add_option("--time", args->seconds, "seconds of repeated calls per pass")
      ->check(CLI::Range(0.0, 60.0));
  add_threads_option(*cmd, args->threads);
  return [args] { return run_bench(*args); };
}

}  // namespace convkit::cli
