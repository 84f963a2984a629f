// End-to-end tests of the convkit command: every subcommand on tiny budgets, resume, Ctrl-C,
// export, and the one-line refusals of bad arguments.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "convkit/io/checkpoint.hpp"
#include "convkit/io/safetensors.hpp"
#include "tools/xml_check.hpp"

extern char** environ;

namespace convkit {
namespace {

namespace fs = std::filesystem;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Exit {
  int status = -1;  // exit status; -1 when the process died of a signal
  int signal = 0;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// This process's scratch folder: the command's outputs go there.
fs::path scratch_root() {
  return fs::temp_directory_path() / ("convkit_cli_test_" + std::to_string(::getpid()));
}

/// Removes the scratch folder when every test of the process passed (kept for a look when
/// one failed).
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (::testing::UnitTest::GetInstance()->Passed()) {
      std::error_code ec;
      fs::remove_all(scratch_root(), ec);
    }
  }
};
[[maybe_unused]] const auto* const cleanup =
    ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

/// A fresh folder per test.
fs::path work_dir(const std::string& name) {
  const fs::path dir = scratch_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// Starts the convkit program with `args`, stdout and stderr going to files in `dir`.
pid_t start(const std::vector<std::string>& args, const fs::path& dir) {
  std::vector<std::string> all{CONVKIT_CLI_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, (dir / "stdout.txt").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, (dir / "stderr.txt").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
  return pid;
}

Exit wait_for(pid_t pid, const fs::path& dir) {
  int status = 0;
  waitpid(pid, &status, 0);
  Exit r;
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(dir / "stdout.txt");
  r.err = slurp(dir / "stderr.txt");
  return r;
}

Exit run(const std::vector<std::string>& args, const fs::path& dir) {
  return wait_for(start(args, dir), dir);
}

/// Built without the command (CONVKIT_BUILD_TOOLS=OFF): nothing to run.
#define SKIP_WITHOUT_CLI() \
  if (std::string(CONVKIT_CLI_PATH).empty()) GTEST_SKIP() << "built without the convkit command"

/// Tiny embedded data and a short budget: a run takes a second or two.
std::vector<std::string> tiny(std::vector<std::string> args) {
  for (const char* a :
       {"--train-size", "120", "--test-size", "40", "--batch", "40", "--threads", "2"})
    args.emplace_back(a);
  return args;
}

TEST(Cli, HelpListsEverySubcommand) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("help");
  const Exit r = run({"--help"}, dir);
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* sub : {"compare", "train", "summary", "bench"}) {
    EXPECT_TRUE(has(r.out, sub));
    const Exit s = run({sub, "--help"}, dir);
    EXPECT_EQ(s.status, 0) << sub << ": " << s.err;
    EXPECT_TRUE(has(s.out, "--")) << sub;
  }
}

TEST(Cli, CompareTrainsThreeModelsAndWritesAWellFormedReport) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("compare");
  const fs::path report = dir / "report.html";
  const Exit r = run(tiny({"compare", "--epochs", "2", "--report", report.string()}), dir);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* name : {"standard_cnn", "separable_cnn", "MobileNetV2 0.35"})
    EXPECT_TRUE(has(r.out, name));
  EXPECT_TRUE(has(r.out, "report: " + fs::absolute(report).lexically_normal().string()));
  ASSERT_TRUE(fs::exists(report));
  const std::string html = slurp(report);
  EXPECT_EQ(test::markup_problem(html), "") << "report.html is not well-formed";
  EXPECT_TRUE(has(html, "<svg"));
  EXPECT_FALSE(has(html, "http://cdn"));
  EXPECT_FALSE(has(html, "<script"));
  // Progress goes to stderr as plain lines when it is not a terminal.
  EXPECT_TRUE(has(r.err, "epoch 2/2"));
  EXPECT_FALSE(has(r.err, "\x1b[K"));
}

std::vector<std::pair<std::string, std::vector<double>>> weights(const fs::path& path) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  for (const auto& [name, t] : io::load_safetensors(path).tensors)
    out.emplace_back(name, t.to_vector());
  return out;
}

TEST(Cli, ResumedTrainingEndsWithTheWeightsOfAnUninterruptedRun) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("resume");
  const auto args = [&](const std::string& tag) {
    return tiny({"train", "--model", "mobilenet_v2", "--width", "0.25", "--epochs", "3",
                 "--checkpoint", (dir / (tag + ".ckpt")).string(), "--export",
                 (dir / (tag + ".safetensors")).string()});
  };
  const Exit whole = run(args("whole"), dir);
  ASSERT_EQ(whole.status, 0) << whole.out << whole.err;

  auto first = args("split");
  first.insert(first.end(), {"--stop-after", "1"});
  const Exit part = run(first, dir);
  EXPECT_EQ(part.status, 130) << part.out << part.err;
  EXPECT_TRUE(has(part.out, "holds epoch 1"));
  EXPECT_FALSE(fs::exists(dir / "split.safetensors"));
  auto second = args("split");
  second.push_back("--resume");
  const Exit rest = run(second, dir);
  ASSERT_EQ(rest.status, 0) << rest.out << rest.err;
  EXPECT_TRUE(has(rest.out, "resumed from"));
  EXPECT_EQ(weights(dir / "whole.safetensors"), weights(dir / "split.safetensors"));

  // The same final accuracies, since the history travels in the checkpoint.
  const auto final_line = [](const std::string& out) { return out.substr(out.find("final:")); };
  EXPECT_EQ(final_line(whole.out).substr(0, 60), final_line(rest.out).substr(0, 60));
}

TEST(Cli, ResumingAfterCtrlCInTheMiddleOfAnEpochEndsWithTheSameWeights) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("resume_mid_epoch");
  // Dropout, augmentation and batch-norm statistics all have to continue exactly.
  const auto args = [&](const std::string& tag) {
    return tiny({"train", "--model", "mobilenet_v1", "--width", "0.25", "--epochs", "3",
                 "--crop-padding", "2", "--flip", "--optimizer", "sgd", "--checkpoint",
                 (dir / (tag + ".ckpt")).string(), "--export",
                 (dir / (tag + ".safetensors")).string()});
  };
  const Exit whole = run(args("whole"), dir);
  ASSERT_EQ(whole.status, 0) << whole.out << whole.err;
  auto first = args("split");
  first.insert(first.end(), {"--interrupt-at-step", "5"});  // epoch 2 of 3 steps, step 2
  const Exit part = run(first, dir);
  ASSERT_EQ(part.status, 130) << part.out << part.err;
  EXPECT_TRUE(has(part.out, "interrupted during epoch 2")) << part.out;
  EXPECT_EQ(io::load_checkpoint(dir / "split.ckpt").epoch, 1);
  auto second = args("split");
  second.push_back("--resume");
  const Exit rest = run(second, dir);
  ASSERT_EQ(rest.status, 0) << rest.out << rest.err;
  EXPECT_EQ(weights(dir / "whole.safetensors"), weights(dir / "split.safetensors"));
}

TEST(Cli, ResumeRefusesACheckpointOfOtherDataOrOptions) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("resume_refused");
  const std::string ckpt = (dir / "run.ckpt").string();
  const Exit first = run(tiny({"train", "--model", "separable_cnn", "--width", "0.25", "--epochs",
                               "2", "--stop-after", "1", "--checkpoint", ckpt}),
                         dir);
  ASSERT_EQ(first.status, 130) << first.out << first.err;
  struct Case {
    std::vector<std::string> change;
    std::string names;
  };
  for (const Case& c : std::vector<Case>{{{"--data-seed", "7"}, "data.seed"},
                                         {{"--nchw"}, "train.layout"},
                                         {{"--lr", "0.01"}, "train.lr"},
                                         {{"--weight-decay", "0.1"}, "train.weight_decay"}}) {
    auto args = tiny({"train", "--model", "separable_cnn", "--width", "0.25", "--epochs", "2",
                      "--checkpoint", ckpt, "--resume"});
    args.insert(args.end(), c.change.begin(), c.change.end());
    const Exit r = run(args, dir);
    EXPECT_EQ(r.status, 1) << c.names << ": " << r.out << r.err;
    EXPECT_TRUE(has(r.err, c.names)) << r.err;
  }
  // The train size changes the steps per epoch: refused too (the default is not 120).
  const Exit sized = run({"train", "--model", "separable_cnn", "--width", "0.25", "--epochs", "2",
                          "--batch", "40", "--test-size", "40", "--checkpoint", ckpt, "--resume"},
                         dir);
  EXPECT_EQ(sized.status, 1) << sized.err;
  EXPECT_TRUE(has(sized.err, "data.train_size")) << sized.err;
  // Another thread count continues, with a note that the bits will differ.
  auto threads = tiny({"train", "--model", "separable_cnn", "--width", "0.25", "--epochs", "2",
                       "--checkpoint", ckpt, "--resume"});
  threads.back() = "--resume";
  threads[std::find(threads.begin(), threads.end(), "--threads") - threads.begin() + 1] = "1";
  const Exit other = run(threads, dir);
  EXPECT_EQ(other.status, 0) << other.err;
  EXPECT_TRUE(has(other.out, "written with 2 threads, this run uses 1")) << other.out;
}

TEST(Cli, ExportHasPyTorchNamesAndSummaryReadsItBack) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("export");
  const fs::path exported = dir / "w.safetensors";
  const Exit r = run(tiny({"train", "--model", "mobilenet_v2", "--width", "0.35", "--epochs", "1",
                           "--no-checkpoint", "--export", exported.string()}),
                     dir);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const io::SafetensorsFile file = io::load_safetensors(exported);
  for (const char* key : {"features.0.0.weight", "features.1.conv.0.0.weight",
                          "features.18.1.running_var", "classifier.1.weight", "classifier.1.bias"})
    EXPECT_TRUE(file.contains(key)) << key;
  EXPECT_EQ(file.at("classifier.1.weight").shape(), Shape({10, 1280}));
  EXPECT_EQ(file.metadata.at("convkit.model"), "mobilenet_v2");

  const Exit s = run({"summary", exported.string()}, dir);
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_TRUE(has(s.out, "features.18.0"));
  EXPECT_TRUE(has(s.out, "input: [1, 3, 32, 32]"));
  const Exit grey = run({"summary", exported.string(), "--input", "1,1,32,32"}, dir);
  EXPECT_EQ(grey.status, 1);
  EXPECT_TRUE(has(grey.err, "--input [1, 1, 32, 32]")) << grey.err;
}

TEST(Cli, SummaryOfAPresetMatchesTorchvisionCounts) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("summary");
  const Exit r =
      run({"summary", "mobilenet_v2", "--input", "1,3,224,224", "--classes", "1000"}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "Trainable params: 3,504,872")) << r.out;  // torchvision's count
  EXPECT_TRUE(has(r.out, "features.17.conv.2"));
}

TEST(Cli, BenchTimesEveryPass) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("bench");
  const Exit r = run({"bench", "--problem", "g8mb2ic8ih12oc8kh3ph1", "--layout", "nhwc", "--time",
                      "0.01", "--threads", "1"},
                     dir);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* pass : {" fwd ", " bwd_d ", " bwd_w "}) EXPECT_TRUE(has(r.out, pass));
  EXPECT_TRUE(has(r.out, "GFLOP/s"));
  EXPECT_TRUE(has(r.out, "dwconv2d_f32_nhwc"));
  // The same problem spelled as flags.
  const Exit f = run({"bench", "--g", "8", "--mb", "2", "--ic", "8", "--ih", "12", "--oc", "8",
                      "--kh", "3", "--ph", "1", "--passes", "fwd", "--time", "0.01"},
                     dir);
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_TRUE(has(f.out, "g8mb2ic8ih12iw12oc8oh12ow12kh3kw3")) << f.out;
  EXPECT_FALSE(has(f.out, " bwd_w ")) << f.out;
}

TEST(Cli, CtrlCStopsCleanlyAndLeavesTheLastCheckpointLoadable) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("sigint");
  const fs::path ckpt = dir / "run.ckpt";
  const pid_t pid = start(
      {"train", "--model", "standard_cnn", "--width", "0.5", "--train-size", "400", "--test-size",
       "40", "--batch", "20", "--epochs", "50", "--threads", "1", "--checkpoint", ckpt.string()},
      dir);
  // Wait for the first checkpoint, then interrupt in the middle of a later epoch.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(ckpt));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  kill(pid, SIGINT);
  const Exit r = wait_for(pid, dir);
  EXPECT_EQ(r.status, 130) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "interrupted during epoch"));
  const io::Checkpoint ck = io::load_checkpoint(ckpt);
  EXPECT_GE(ck.epoch, 1);
  EXPECT_EQ(ck.extra.at("convkit.model"), "standard_cnn");
  const Exit s = run({"summary", ckpt.string()}, dir);  // a checkpoint names its model too
  EXPECT_EQ(s.status, 0) << s.err;
  EXPECT_TRUE(has(s.out, "standard_cnn")) << s.out;
}

void write_bytes(const fs::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// `n` records of a CIFAR-10 binary file: a label byte, then 3072 pixel bytes.
std::vector<unsigned char> cifar_records(int n, int seed) {
  std::vector<unsigned char> bytes;
  for (int i = 0; i < n; ++i) {
    bytes.push_back(static_cast<unsigned char>(i % 10));
    for (int k = 0; k < 3072; ++k)
      bytes.push_back(static_cast<unsigned char>((k * 7 + i * 13 + seed) % 256));
  }
  return bytes;
}

/// An MNIST IDX file of `n` images (28x28) or labels: big-endian magic and sizes, then bytes.
std::vector<unsigned char> idx_file(bool images, int n) {
  auto be32 = [](std::vector<unsigned char>& b, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      b.push_back(static_cast<unsigned char>(v >> shift));
  };
  std::vector<unsigned char> b;
  be32(b, images ? 2051 : 2049);
  be32(b, static_cast<std::uint32_t>(n));
  if (images) {
    be32(b, 28);
    be32(b, 28);
  }
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < (images ? 784 : 1); ++k)
      b.push_back(static_cast<unsigned char>(images ? (k + i * 31) % 256 : i % 10));
  return b;
}

TEST(Cli, TrainsOnCifar10AndMnistFiles) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("files");
  const fs::path cifar = dir / "cifar-10-batches-bin", mnist = dir / "mnist";
  fs::create_directories(cifar);
  fs::create_directories(mnist);
  for (int b = 1; b <= 5; ++b)
    write_bytes(cifar / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(8, b));
  write_bytes(cifar / "test_batch.bin", cifar_records(10, 9));
  write_bytes(mnist / "train-images-idx3-ubyte", idx_file(true, 40));
  write_bytes(mnist / "train-labels-idx1-ubyte", idx_file(false, 40));
  write_bytes(mnist / "t10k-images-idx3-ubyte", idx_file(true, 10));
  write_bytes(mnist / "t10k-labels-idx1-ubyte", idx_file(false, 10));

  const Exit c =
      run({"train", "--data", "cifar10", "--data-dir", dir.string(), "--model", "separable_cnn",
           "--epochs", "1", "--batch", "10", "--no-checkpoint", "--threads", "1"},
          dir);
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_TRUE(has(c.out, "40 train / 10 test images, 3x32x32, 10 classes")) << c.out;

  const fs::path exported = dir / "mnist.safetensors";
  const Exit m = run({"train", "--data", "mnist", "--data-dir", mnist.string(), "--model",
                      "mobilenet_v1", "--width", "0.25", "--epochs", "1", "--batch", "10",
                      "--no-checkpoint", "--threads", "1", "--export", exported.string()},
                     dir);
  ASSERT_EQ(m.status, 0) << m.out << m.err;
  EXPECT_TRUE(has(m.out, "40 train / 10 test images, 1x28x28, 10 classes")) << m.out;
  // A grey stem, and the summary rebuilds the model at the size it was trained on.
  EXPECT_EQ(io::load_safetensors(exported).at("features.0.0.weight").shape(), Shape({8, 1, 3, 3}));
  const Exit s = run({"summary", exported.string()}, dir);
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_TRUE(has(s.out, "input: [1, 1, 28, 28]")) << s.out;
}

/// Each bad argument: a non-zero exit (not a crash), a message naming the problem, the
/// usage hint.
TEST(Cli, BadArgumentsGiveOneLineAndTheUsageHint) {
  SKIP_WITHOUT_CLI();
  const fs::path dir = work_dir("bad");
  // Data files that are wrong: a truncated CIFAR-10 batch.
  const fs::path cifar = dir / "cifar";
  fs::create_directories(cifar);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    std::ofstream f(cifar / name, std::ios::binary);
    f << std::string(3073 + (std::string(name) == "data_batch_3.bin" ? 100 : 0), '\0');
  }
  struct Case {
    std::vector<std::string> args;
    std::string names;  // what the message must mention
  };
  const std::vector<Case> cases{
      {{}, "subcommand"},
      {{"fly"}, "fly"},
      {{"train", "--model", "resnet50"}, "resnet50"},
      {{"train", "--epochs", "-3"}, "--epochs"},
      {{"train", "--batch", "0"}, "--batch"},
      {{"train", "--width", "-1"}, "--width"},
      {{"train", "--data", "imagenet"}, "imagenet"},
      {{"train", "--data", "cifar10"}, "--data-dir"},
      {{"train", "--data", "mnist", "--data-dir", (dir / "missing").string()}, "missing"},
      {{"train", "--data", "mnist", "--data-dir", cifar.string()}, "train-images-idx3-ubyte"},
      {{"train", "--data", "cifar10", "--data-dir", cifar.string()}, "data_batch_3.bin"},
      {{"train", "--resume", "--checkpoint", (dir / "none.ckpt").string()}, "none.ckpt"},
      {{"train", "--export", (dir / "no/such/dir/w.safetensors").string()}, "does not exist"},
      {{"compare", "--report", (dir / "nowhere/report.html").string()}, "nowhere"},
      {{"compare", "--train-size", "-5"}, "--train-size"},
      {{"summary"}, "MODEL"},
      {{"summary", "resnet50"}, "resnet50"},
      {{"summary", "standard_cnn", "--input", "1,3,-2,32"}, "1,3,-2,32"},
      {{"summary", (cifar / "test_batch.bin").string()}, "test_batch.bin"},
      {{"bench"}, "--problem"},
      {{"bench", "--problem", "g3mb1ic4ih8oc4kh3"}, "g3mb1ic4ih8oc4kh3"},
      {{"bench", "--shapes", dir.string()}, "not a readable file"},
      {{"train", "--threads", "100000"}, "--threads"},
      {{"train", "--width", "1e20"}, "(0, 16]"},
      {{"train", "--width", "inf"}, "finite"},
      {{"train", "--seed", "-1"}, "--seed"},
      {{"train", "--checkpoint", ""}, "--checkpoint"},
      {{"train", "--crop-padding", "100", "--train-size", "50", "--no-checkpoint"},
       "--crop-padding 100"},
      {{"summary", (cifar / "test_batch.bin").string(), "--width", "2"}, "--width"},
      {{"summary", "standard_cnn", "--input", "1,3,32,32", "--classes", "0"}, "--classes"},
      {{"summary", "mobilenet_v2", "--input", "1,3,4,4"}, "--input"},
  };
  for (const Case& c : cases) {
    const Exit r = run(c.args, dir);
    std::string shown = "convkit";
    for (const auto& a : c.args) shown += " " + a;
    EXPECT_EQ(r.signal, 0) << shown << " died of a signal";
    EXPECT_GT(r.status, 0) << shown;
    EXPECT_NE(r.status, 130) << shown;
    EXPECT_TRUE(has(r.err, c.names)) << shown;
    EXPECT_TRUE(has(r.err, "--help")) << shown;
    EXPECT_FALSE(has(r.err, "terminate called")) << shown;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << shown << ":\n" << r.err;
  }
}

}  // namespace
}  // namespace convkit
