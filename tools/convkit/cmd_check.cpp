// convkit check: benchdnn-style correctness, reproducibility and timing of the convolution
// kernels that dispatch picks, against the reference, on shape files and random problems.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>

#include "check_passes.hpp"
#include "check_problems.hpp"
#include "commands.hpp"
#include "convkit/core/error.hpp"
#include "crash_note.hpp"
#include "options.hpp"

namespace convkit::cli {

namespace {

using I = std::int64_t;
using Clock = std::chrono::steady_clock;

/// Exit status when a check failed (1 and 2 keep their meaning: errors, bad command line).
constexpr int kCheckFailedStatus = 3;

struct CheckArgs {
  std::vector<std::string> problems;
  std::vector<std::filesystem::path> shapes;
  std::uint64_t random = 0;
  std::uint64_t seed = 1;
  std::string layout = "both";
  std::string mode = "corr";
  std::vector<std::string> passes{"fwd", "bwd_d", "bwd_w", "bwd_b"};
  std::string fill = "int";
  int threads = 0;
  int repeats = 5;
  int max_failures = 10;
  bool verbose = false;
  std::string inject;  // hidden, for the tests: the pass whose output gets one wrong element
};

struct Stats {
  I problems = 0, passes = 0, exact = 0, bounded = 0, failures = 0, allowed = 0;
  std::map<std::string, I> kernels;
};

/// The run's problems: the fixed ones first, then the random ones made on demand.
class Cases {
 public:
  Cases(std::vector<CheckCase> fixed, std::uint64_t random, std::uint64_t seed)
      : fixed_(std::move(fixed)), random_(random), seed_(seed) {}
  std::uint64_t size() const { return fixed_.size() + random_; }
  CheckCase at(std::uint64_t i) const {
    return i < fixed_.size() ? fixed_[i] : random_check_case(seed_, i - fixed_.size(), {});
  }

 private:
  std::vector<CheckCase> fixed_;
  std::uint64_t random_, seed_;
};

// The fills depend on the problem line and layout only, so --problem alone reproduces them.
std::uint64_t fill_seed(const ConvProblem& p) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const char ch : p.str() + layout_name(p.format))
    h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return h;
}

std::string alone(const CheckCase& c, const CheckArgs& a) {
  return fmt::format("convkit check --problem '{}' --layout {}{}", c.problem.str(),
                     layout_name(c.problem.format), a.mode == "corr" ? "" : " --mode " + a.mode);
}

class Checker {
 public:
  Checker(const CheckArgs& a, int threads) : a_(a), threads_(threads) {
    for (const CheckPass pass : kCheckPasses)
      if (std::find(a.passes.begin(), a.passes.end(), check_pass_name(pass)) != a.passes.end())
        passes_.push_back(pass);
  }

  void run(const CheckCase& c) {
    ++stats_.problems;
    if (a_.verbose)
      std::printf("%s (%s) from %s\n", c.problem.str().c_str(),
                  layout_name(c.problem.format).c_str(), c.origin.c_str());
    std::fflush(stdout);
    const CheckInputs in =
        make_check_inputs(c.problem, a_.mode == "corr" && a_.fill == "int", fill_seed(c.problem));
    for (const CheckPass pass : passes_) {
      set_crash_note(fmt::format("while checking {} of {} ({}) from {}; alone: {}",
                                 check_pass_name(pass), c.problem.str(),
                                 layout_name(c.problem.format), c.origin, alone(c, a_)));
      if (a_.inject == "segv") std::raise(SIGSEGV);  // tests: the note names the problem
      try {
        if (a_.mode == "corr") correctness(c, pass, in);
        if (a_.mode == "repro") reproducibility(c, pass, in);
        if (a_.mode == "perf") timing(c, pass, in);
      } catch (const std::exception& e) {
        fail(c, pass, "?", fmt::format("threw: {}", e.what()));
      }
    }
  }

  const Stats& stats() const { return stats_; }

 private:
  void fail(const CheckCase& c, CheckPass pass, const std::string& kernel,
            const std::string& what) {
    if (stats_.failures++ >= a_.max_failures) return;
    std::printf("FAILED %s %s of %s (%s), kernel %s: %s\n  from %s; alone: %s\n", a_.mode.c_str(),
                check_pass_name(pass), c.problem.str().c_str(),
                layout_name(c.problem.format).c_str(), kernel.c_str(), what.c_str(),
                c.origin.c_str(), alone(c, a_).c_str());
    if (stats_.failures == a_.max_failures)
      std::printf("(further failures are counted, not shown: --max-failures)\n");
    std::fflush(stdout);
  }

  static std::string worst(const Comparison& cmp, const char* got, const char* want) {
    return fmt::format("{} of {} elements off; worst {}: {} {:.9g}, {} {:.9g}, bound {:.3g}",
                       cmp.bad, cmp.elements, index_str(cmp.shape, cmp.worst), got, cmp.got, want,
                       cmp.want, cmp.bound);
  }

  bool inject(CheckPass pass) const { return a_.inject == check_pass_name(pass); }

  void correctness(const CheckCase& c, CheckPass pass, const CheckInputs& in) {
    std::string kernel;
    const Tensor got = run_check_pass(c.problem, pass, in, &kernel);
    const Tensor want = run_reference_pass(c.problem, pass, in);
    const Comparison cmp = compare_with_reference(c.problem, pass, in, got, want, inject(pass));
    count(kernel);
    ++(cmp.exact ? stats_.exact : stats_.bounded);
    if (cmp.bad > 0)
      fail(c, pass, kernel,
           fmt::format("{} ({})", worst(cmp, "got", "want"),
                       cmp.exact ? fmt::format("exact: integers in [-{0}, {0}]", in.range)
                                 : "within (terms + 2) * eps * sum|a*b|"));
  }

  // Two runs with the same thread count must agree bit for bit (every pass: the kernels'
  // contract, src/kernels/conv/conv_list.hpp). 1 against 2 threads too, except where
  // src/ops/conv_dispatch.hpp allows a difference: a GEMM kernel given the whole pass as a
  // single task (g = 1 and one image, or g = 1 for backward-weights), which OpenBLAS may
  // split over the threads itself. (Pointwise backward-weights of two weight chunks or more
  // runs them on the threads and keeps its bits: the allowance is an upper bound there.)
  void reproducibility(const CheckCase& c, CheckPass pass, const CheckInputs& in) {
    std::string kernel;
    const Tensor a = run_check_pass(c.problem, pass, in, &kernel);
    const Tensor b = run_check_pass(c.problem, pass, in, nullptr);
    count(kernel);
    ++stats_.exact;
    const Comparison same = compare_bitwise(a, b, inject(pass));
    if (same.bad > 0)
      fail(c, pass, kernel,
           fmt::format("two runs with {} threads differ: {}", threads_,
                       worst(same, "second", "first")));
    omp_set_num_threads(1);
    const Tensor one = run_check_pass(c.problem, pass, in, nullptr);
    omp_set_num_threads(2);
    const Tensor two = run_check_pass(c.problem, pass, in, nullptr);
    omp_set_num_threads(threads_);
    const Comparison across = compare_bitwise(one, two, false);
    if (across.bad == 0) return;
    const ConvProblem& p = c.problem;
    const bool single_gemm_task =
        kernel.ends_with("__gemm") && p.g == 1 && (pass == CheckPass::BwdWeights || p.mb == 1);
    if (single_gemm_task) {
      ++stats_.allowed;
      if (a_.verbose)
        std::printf(
            "note: %s of %s (%s), kernel %s: 1 and 2 threads differ (allowed: one "
            "GEMM task, which OpenBLAS splits itself)\n",
            check_pass_name(pass), p.str().c_str(), layout_name(p.format).c_str(), kernel.c_str());
      return;
    }
    fail(c, pass, kernel, "1 and 2 threads differ: " + worst(across, "2 threads", "1 thread"));
  }

  void timing(const CheckCase& c, CheckPass pass, const CheckInputs& in) {
    std::string kernel;
    run_check_pass(c.problem, pass, in, &kernel);  // warm-up
    count(kernel);
    std::vector<double> ms;
    for (int r = 0; r < a_.repeats; ++r) {
      const auto t0 = Clock::now();
      run_check_pass(c.problem, pass, in, nullptr);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double flops = pass == CheckPass::BwdBias
                             ? static_cast<double>(c.problem.dst_shape().numel())
                             : 2.0 * static_cast<double>(c.problem.macs());
    std::printf("%-48s %-4s %-5s %-34s %10.4f %10.4f %9.2f\n", c.problem.str().c_str(),
                layout_name(c.problem.format).c_str(), check_pass_name(pass), kernel.c_str(),
                median, ms.front(), flops / median * 1e-6);
  }

  void count(const std::string& kernel) {
    ++stats_.passes;
    ++stats_.kernels[kernel];
  }

  const CheckArgs& a_;
  int threads_;
  std::vector<CheckPass> passes_;
  Stats stats_;
};

int run_check(const CheckArgs& a) {
  const auto start = Clock::now();
  const int threads = apply_threads(a.threads);
  install_crash_note();
  std::vector<MemoryFormat> formats;
  if (a.layout != "nhwc") formats.push_back(MemoryFormat::Contiguous);
  if (a.layout != "nchw") formats.push_back(MemoryFormat::ChannelsLast);
  std::vector<CheckCase> fixed;
  for (std::size_t i = 0; i < a.problems.size(); ++i)
    for (const MemoryFormat f : formats)
      fixed.push_back(parse_check_line(a.problems[i], f, fmt::format("--problem {}", i + 1)));
  for (const auto& path : a.shapes)
    for (CheckCase& c : read_check_file(path, formats)) fixed.push_back(std::move(c));
  const Cases cases(std::move(fixed), a.random, a.seed);
  if (cases.size() == 0)
    throw InvalidArgument("give problems with --problem LINE, --shapes FILE or --random N");
  std::printf("convkit check --mode %s: %llu problems, %d threads, %s\n", a.mode.c_str(),
              static_cast<unsigned long long>(cases.size()), threads,
              a.mode != "corr"  ? "real-valued fills"
              : a.fill == "int" ? "integer fills (exact comparison where |sums| < 2^24)"
                                : "real-valued fills (per-element error bounds)");
  if (a.mode == "perf")
    std::printf("%-48s %-4s %-5s %-34s %10s %10s %9s\n", "problem", "lay", "pass", "kernel",
                "median ms", "min ms", "GFLOP/s");
  Checker checker(a, threads);
  const std::uint64_t tenth = std::max<std::uint64_t>(cases.size() / 10, 1);
  for (std::uint64_t i = 0; i < cases.size(); ++i) {
    checker.run(cases.at(i));
    if (cases.size() >= 1000 && (i + 1) % tenth == 0)
      std::fprintf(stderr, "convkit check: %llu of %llu problems, %lld failures, %.1f s\n",
                   static_cast<unsigned long long>(i + 1),
                   static_cast<unsigned long long>(cases.size()),
                   static_cast<long long>(checker.stats().failures),
                   std::chrono::duration<double>(Clock::now() - start).count());
  }
  const Stats& s = checker.stats();
  std::printf("kernels run:");
  for (const auto& [name, n] : s.kernels)
    std::printf(" %s x%lld", name.c_str(), static_cast<long long>(n));
  std::printf("\n");
  std::string how = a.mode == "corr"
                        ? fmt::format(" ({} exact, {} within a bound)", s.exact, s.bounded)
                    : a.mode == "repro"
                        ? fmt::format(" (bitwise; {} allowed 1-vs-2-thread differences)", s.allowed)
                        : "";
  std::printf("check %s: %lld problems, %lld passes checked%s, %lld failures, %.1f s\n",
              a.mode.c_str(), static_cast<long long>(s.problems), static_cast<long long>(s.passes),
              how.c_str(), static_cast<long long>(s.failures),
              std::chrono::duration<double>(Clock::now() - start).count());
  return s.failures > 0 ? kCheckFailedStatus : 0;
}

}  // namespace

Runner add_check(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check", "check the convolution kernels against the reference (benchdnn-style)");
  cmd->add_option("--problem", args->problems,
                  "benchdnn-style problem, e.g. g32mb8ic32ih112iw112oc32kh3kw3sh1sw1ph1pw1 "
                  "(repeatable)");
  cmd->add_option("--shapes", args->shapes, "files with one problem per line ('#' comments)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--random", args->random, "this many random problems")->check(unsigned_integer());
  cmd->add_option("--seed", args->seed, "seed of the random problems")->check(unsigned_integer());
  cmd->add_option("--layout", args->layout,
                  "layout of --problem and --shapes problems: nchw, "
                  "nhwc (channels-last) or both (random problems pick their own)")
      ->check(CLI::IsMember({"nchw", "nhwc", "both"}));
  cmd->add_option("--mode", args->mode,
                  "corr (against the reference), repro (bitwise "
                  "reproducibility) or perf (median time per pass)")
      ->check(CLI::IsMember({"corr", "repro", "perf"}));
  cmd->add_option("--passes", args->passes,
                  "any of fwd, bwd_d (data), bwd_w (weights), bwd_b (bias)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fwd", "bwd_d", "bwd_w", "bwd_b"}));
  cmd->add_option("--fill", args->fill,
                  "corr: int (small integers, exact comparison) or real "
                  "(uniform in [-1, 1), per-element error bounds)")
      ->check(CLI::IsMember({"int", "real"}));
  cmd->add_option("--repeats", args->repeats, "perf: timed runs per pass (the median is shown)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--max-failures", args->max_failures, "failures shown in full (all are counted)")
      ->check(CLI::Range(0, 1'000'000));
  cmd->add_flag("-v,--verbose", args->verbose, "print each problem before checking it");
  cmd->add_option("--inject-error", args->inject)->group("");  // tests only
  add_threads_option(*cmd, args->threads);
  return [args] { return run_check(*args); };
}

}  // namespace convkit::cli
