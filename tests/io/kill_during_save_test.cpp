// A process killed (SIGKILL) at random moments while saving checkpoints over one path leaves
// that path holding the complete old or the complete new checkpoint, every time.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "convkit/io/checkpoint.hpp"

namespace convkit::io {
namespace {

namespace fs = std::filesystem;

// Version v: 4 tensors of 256K floats (4 MiB in all), every element v, and extra "version".
Checkpoint version(int v) {
  Checkpoint c;
  for (int i = 0; i < 4; ++i)
    c.model.emplace_back(fmt::format("layer{}.weight", i), Tensor::full({256 * 1024}, v));
  c.epoch = v;
  c.extra["version"] = std::to_string(v);
  return c;
}

// The version `c` is, or -1 when it is not exactly one of them.
int which(const Checkpoint& c) {
  if (c.model.size() != 4 || !c.extra.count("version")) return -1;
  const int v = std::atoi(c.extra.at("version").c_str());
  if (c.epoch != v) return -1;
  for (const auto& [name, t] : c.model) {
    if (t.numel() != 256 * 1024) return -1;
    const float* p = t.contiguous().data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      if (p[i] != static_cast<float>(v)) return -1;
  }
  return v;
}

TEST(CrashSafety, KillDuringSaveLeavesTheOldOrTheNewCheckpoint) {
  const int trials = std::getenv("CONVKIT_FULL_SWEEP") ? 1000 : 200;
  const fs::path dir = fs::temp_directory_path() / fmt::format("convkit_kill_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path path = dir / "last.safetensors";
  const Checkpoint one = version(1), two = version(2);
  save_checkpoint(path, one);

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_us(0, 30000);
  int seen[3] = {0, 0, 0};
  for (int t = 0; t < trials; ++t) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      // The child overwrites the file with version 2, 1, 2, ... until it is killed.
      for (int i = 0;; ++i) save_checkpoint(path, i % 2 == 0 ? two : one);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "trial " << t << ": the saver ended on its own";
    Checkpoint loaded;
    ASSERT_NO_THROW(loaded = load_checkpoint(path)) << "trial " << t;
    const int v = which(loaded);
    ASSERT_TRUE(v == 1 || v == 2) << "trial " << t << ": the file is neither version";
    ++seen[v];
  }
  std::size_t leftovers = 0;  // temporary files of killed saves; the target never is one
  for (const auto& entry : fs::directory_iterator(dir)) leftovers += entry.path() != path;
  std::printf("%d kills: %d left version 1, %d version 2; %zu temporary files left behind\n",
              trials, seen[1], seen[2], leftovers);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[2], 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace convkit::io
