// End-to-end tests of `convkit check`: clean runs, planted errors in every pass and mode,
// reproducing a failure from its printed line, exit statuses, and bad problem lines.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tools/run_cli.hpp"

namespace convkit {
namespace {

namespace fs = std::filesystem;
using test_cli::Result;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Removes this process's scratch folders when every test passed (kept for a look otherwise).
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    std::error_code ec;
    fs::remove_all(test_cli::scratch("x").parent_path(), ec);
  }
};
[[maybe_unused]] const auto* const cleanup =
    ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

#define SKIP_WITHOUT_CLI() \
  if (std::string(CONVKIT_CLI_PATH).empty()) GTEST_SKIP() << "built without the convkit command"

Result check(std::vector<std::string> args, const std::string& name) {
  args.insert(args.begin(), "check");
  return test_cli::run(CONVKIT_CLI_PATH, args, test_cli::scratch(name));
}

constexpr const char* kDw = "g8mb2ic8ih12oc8kh3ph1";
constexpr const char* kDwLine = "g8mb2ic8ih12iw12oc8oh12ow12kh3kw3sh1sw1ph1pw1dh0dw0";

TEST(CheckCli, CleanProblemsPassAndTheSummaryCountsThem) {
  SKIP_WITHOUT_CLI();
  const Result r =
      check({"--problem", kDw, "--problem", "mb2ic5ih6oc7kh3ph1", "--threads", "2"}, "clean");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // Two lines in two layouts: 4 problems, 4 passes each, all compared exactly.
  EXPECT_TRUE(has(r.out,
                  "check corr: 4 problems, 16 passes checked (16 exact, 0 within a bound), "
                  "0 failures"))
      << r.out;
  // The kernels that ran are named: the 3x3 strategy forward and backward-data.
  EXPECT_TRUE(has(r.out, "dwconv2d_f32_nhwc_k3__hwy")) << r.out;
  EXPECT_FALSE(has(r.out, "FAILED")) << r.out;
}

TEST(CheckCli, APlantedErrorInEveryPassIsFoundAndLocated) {
  SKIP_WITHOUT_CLI();
  // The middle element of each output: dst (2, 8, 12, 12), diff_src likewise, diff_wei
  // (8, 1, 3, 3), diff_bias (8).
  const std::pair<const char*, const char*> cases[] = {{"fwd", "worst [1, 0, 0, 0]"},
                                                       {"bwd_d", "worst [1, 0, 0, 0]"},
                                                       {"bwd_w", "worst [4, 0, 0, 0]"},
                                                       {"bwd_b", "worst [4]"}};
  for (const auto& [pass, where] : cases) {
    const Result r = check({"--problem", kDw, "--layout", "nchw", "--inject-error", pass},
                           std::string("inject_") + pass);
    EXPECT_EQ(r.status, 3) << pass << r.out << r.err;
    EXPECT_TRUE(has(r.out, std::string("FAILED corr ") + pass + " of " + kDwLine + " (nchw)"))
        << r.out;
    EXPECT_TRUE(has(r.out, "1 of ")) << r.out;
    EXPECT_TRUE(has(r.out, where)) << r.out;
    EXPECT_TRUE(has(r.out, "bound 0 (exact: integers in [-4, 4])")) << r.out;
    EXPECT_TRUE(has(r.out, std::string("from --problem 1; alone: convkit check --problem '") +
                               kDwLine + "' --layout nchw"))
        << r.out;
    EXPECT_TRUE(has(r.out, "1 failures")) << r.out;
  }
}

TEST(CheckCli, RealFillsUseABoundAndStillCatchThePlantedError) {
  SKIP_WITHOUT_CLI();
  const Result ok = check({"--problem", "mb2ic9ih7oc17kh3ph1", "--fill", "real"}, "real_ok");
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_TRUE(has(ok.out, "(0 exact, 8 within a bound), 0 failures")) << ok.out;
  const Result bad =
      check({"--problem", "mb2ic9ih7oc17kh3ph1", "--fill", "real", "--inject-error", "bwd_w"},
            "real_bad");
  EXPECT_EQ(bad.status, 3) << bad.out;
  EXPECT_TRUE(has(bad.out, "FAILED corr bwd_w")) << bad.out;
  EXPECT_TRUE(has(bad.out, "within (terms + 2) * eps * sum|a*b|")) << bad.out;
}

TEST(CheckCli, ReproModeComparesRunsBitForBit) {
  SKIP_WITHOUT_CLI();
  const Result ok = check({"--problem", kDw, "--mode", "repro", "--threads", "2"}, "repro_ok");
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_TRUE(has(ok.out, "check repro: 2 problems, 8 passes checked (bitwise;")) << ok.out;
  const Result bad =
      check({"--problem", kDw, "--mode", "repro", "--threads", "2", "--inject-error", "bwd_d"},
            "repro_bad");
  EXPECT_EQ(bad.status, 3) << bad.out;
  EXPECT_TRUE(has(bad.out, "FAILED repro bwd_d")) << bad.out;
  EXPECT_TRUE(has(bad.out, "two runs with 2 threads differ: 1 of 2304 elements off")) << bad.out;
  EXPECT_TRUE(has(bad.out, "--mode repro")) << bad.out;  // the line that reproduces it
}

TEST(CheckCli, AFailureOfARandomProblemIsReproducedByItsPrintedLine) {
  SKIP_WITHOUT_CLI();
  const Result r = check({"--random", "3", "--seed", "11", "--inject-error", "fwd"}, "random_bad");
  EXPECT_EQ(r.status, 3) << r.out;
  std::smatch m;
  const std::regex failed(
      "(FAILED corr fwd of .*)\n  from random 0, seed 11; alone: convkit check "
      "--problem '([^']+)' --layout (nchw|nhwc)");
  ASSERT_TRUE(std::regex_search(r.out, m, failed)) << r.out;
  const Result again =
      check({"--problem", m[2].str(), "--layout", m[3].str(), "--inject-error", "fwd"}, "again");
  EXPECT_EQ(again.status, 3);
  EXPECT_TRUE(has(again.out, m[1].str() + "\n  from --problem 1")) << m[1] << "\n" << again.out;
}

TEST(CheckCli, ACrashNamesTheProblemAndPassItWasOn) {
  SKIP_WITHOUT_CLI();
  const Result r = check({"--problem", kDw, "--layout", "nhwc", "--inject-error", "segv"}, "segv");
  EXPECT_EQ(r.signal, SIGSEGV) << r.status << r.err;
  EXPECT_TRUE(has(r.err, std::string("convkit check: died of signal ") + std::to_string(SIGSEGV) +
                             " while checking fwd of " + kDwLine + " (nhwc) from --problem 1; " +
                             "alone: convkit check --problem '" + kDwLine + "' --layout nhwc"))
      << r.err;
}

TEST(CheckCli, RandomProblemsDependOnlyOnTheSeed) {
  SKIP_WITHOUT_CLI();
  const auto problems = [](const std::string& seed, const std::string& name) {
    const Result r =
        check({"--random", "40", "--seed", seed, "--verbose", "--passes", "fwd"}, name);
    EXPECT_EQ(r.status, 0) << r.out;
    return r.out.substr(r.out.find('\n'), r.out.find("kernels run:") - r.out.find('\n'));
  };
  const std::string a = problems("5", "seed5a"), b = problems("5", "seed5b");
  EXPECT_EQ(a, b);
  EXPECT_TRUE(has(a, "from random 39, seed 5")) << a;
  EXPECT_NE(a, problems("6", "seed6"));
}

TEST(CheckCli, PerfModePrintsAMedianPerPass) {
  SKIP_WITHOUT_CLI();
  const Result r =
      check({"--problem", kDw, "--layout", "nhwc", "--mode", "perf", "--repeats", "3"}, "perf");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "median ms")) << r.out;
  for (const char* pass : {" fwd ", " bwd_d ", " bwd_w ", " bwd_b "})
    EXPECT_TRUE(has(r.out, std::string(kDwLine) + " nhwc" + pass)) << r.out;
}

TEST(CheckCli, BadProblemLinesNameTheFileAndTheLine) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = test_cli::scratch("bad_lines");
  const fs::path malformed = dir / "malformed.txt", invalid = dir / "invalid.txt";
  std::ofstream(malformed) << "# a comment\n\ng8mb2ic8ih12oc8kh3ph1  # fine\nmb2ic8ih12oc8kh3xx4\n";
  std::ofstream(invalid) << "mb1ic4ih8oc4kh3\ng3mb1ic4ih8oc6kh3\n";
  const Result a = check({"--shapes", malformed.string()}, "malformed");
  EXPECT_EQ(a.status, 1);
  EXPECT_TRUE(has(a.err, "convkit check: error: " + malformed.string() + ":4: ")) << a.err;
  EXPECT_TRUE(has(a.err, "unknown token 'xx4'")) << a.err;
  const Result b = check({"--shapes", invalid.string()}, "invalid");
  EXPECT_EQ(b.status, 1);
  EXPECT_TRUE(has(b.err, invalid.string() + ":2: ")) << b.err;
  EXPECT_TRUE(has(b.err, "'ic4' are not divisible by groups 'g3'")) << b.err;
  const Result c = check({"--problem", "mb2ic8"}, "bad_problem");
  EXPECT_EQ(c.status, 1);
  EXPECT_TRUE(has(c.err, "--problem 1: ")) << c.err;
  EXPECT_TRUE(has(c.err, "no input size given")) << c.err;
}

TEST(CheckCli, ExitStatusesOfUsageErrors) {
  SKIP_WITHOUT_CLI();
  const Result none = check({}, "none");
  EXPECT_EQ(none.status, 1);
  EXPECT_TRUE(has(none.err, "give problems with --problem LINE, --shapes FILE or --random N"))
      << none.err;
  EXPECT_EQ(check({"--random", "1", "--mode", "fast"}, "mode").status, 2);
  EXPECT_EQ(check({"--random", "1", "--passes", "fwd,sideways"}, "passes").status, 2);
  EXPECT_EQ(check({"--random", "-1"}, "negative").status, 2);
  EXPECT_EQ(check({"--shapes", "/nonexistent/shapes.txt"}, "missing").status, 2);
  const Result help = check({"--help"}, "help");
  EXPECT_EQ(help.status, 0);
  EXPECT_TRUE(has(help.out, "--mode")) << help.out;
  EXPECT_FALSE(has(help.out, "inject")) << help.out;  // the test hook stays hidden
}

}  // namespace
}  // namespace convkit
