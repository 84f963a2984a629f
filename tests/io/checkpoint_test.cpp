// Checkpoints: round trip, atomicity under injected failures, malformed files.
#include "convkit/io/checkpoint.hpp"

#include <gtest/gtest.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "convkit/io/safetensors.hpp"
#include "io/save_hook.hpp"
#include "test_util.hpp"

namespace convkit::io {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("convkit_ckpt_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
  std::vector<fs::path> temporaries() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path());
    return out;
  }
};

Checkpoint sample(std::int64_t epoch) {
  Checkpoint c;
  c.model = {{"features.0.weight", Tensor::uniform({4, 1, 3, 3}, -1, 1, 7)},
             {"features.1.running_mean", Tensor::uniform({4}, -1, 1, 8, DType::F64)},
             {"features.1.num_batches_tracked", Tensor::full({}, 12, DType::I64)}};
  c.optimizer = {{"lr", Tensor::full({}, 0.05, DType::F64)},
                 {"features.0.weight.momentum_buffer", Tensor::uniform({4, 1, 3, 3}, -1, 1, 9)}};
  c.optimizer_kind = "SGD";
  c.epoch = epoch;
  c.rng_state = std::numeric_limits<std::uint64_t>::max() - 5;
  c.extra = {{"note", "run 1"}};
  return c;
}

void expect_same(const Checkpoint& got, const Checkpoint& want) {
  auto same = [](const auto& a, const auto& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_EQ(a[i].second.dtype(), b[i].second.dtype());
      EXPECT_TRUE(allclose(a[i].second.to(DType::F64), b[i].second.to(DType::F64), 0, 0))
          << a[i].first;
    }
  };
  same(got.model, want.model);
  same(got.optimizer, want.optimizer);
  EXPECT_EQ(got.optimizer_kind, want.optimizer_kind);
  EXPECT_EQ(got.epoch, want.epoch);
  EXPECT_EQ(got.rng_state, want.rng_state);
  EXPECT_EQ(got.extra, want.extra);
}

TEST(Checkpoint, RoundTripIsExactAndOneFile) {
  TempDir dir;
  const fs::path path = dir.path / "last.safetensors";
  save_checkpoint(path, sample(3));
  expect_same(load_checkpoint(path), sample(3));
  // An ordinary safetensors file, readable by any tool.
  const SafetensorsFile raw = load_safetensors(path);
  EXPECT_EQ(raw.metadata.at("format"), "convkit.checkpoint");
  EXPECT_EQ(raw.metadata.at("epoch"), "3");
  EXPECT_TRUE(raw.contains("model.features.0.weight"));
  EXPECT_TRUE(raw.contains("optimizer.features.0.weight.momentum_buffer"));
  EXPECT_TRUE(dir.temporaries().empty());
  save_checkpoint(path, sample(4));  // overwrite
  EXPECT_EQ(load_checkpoint(path).epoch, 4);
  EXPECT_TRUE(dir.temporaries().empty());
}

TEST(Checkpoint, RefusesBadArguments) {
  Checkpoint c = sample(1);
  c.epoch = -1;
  expect_error<InvalidArgument>([&] { save_checkpoint("x.safetensors", c); }, {"epoch", "-1"});
  c = sample(1);
  c.optimizer_kind.clear();
  expect_error<InvalidArgument>([&] { save_checkpoint("x.safetensors", c); }, {"optimizer_kind"});
  c = sample(1);
  c.model.push_back(c.model.front());
  expect_error<InvalidArgument>([&] { save_checkpoint("x.safetensors", c); }, {"used twice"});
}

/// A crash simulated at `stage` of the save of epoch 2 over the checkpoint of epoch 1.
void crash_at(detail::SaveStage stage, bool truncate) {
  TempDir dir;
  const fs::path path = dir.path / "last.safetensors";
  save_checkpoint(path, sample(1));
  struct Crash {};
  {
    detail::ScopedSaveHook hook([&](detail::SaveStage at, const fs::path& tmp) {
      if (at != stage) return;
      if (truncate) fs::resize_file(tmp, fs::file_size(tmp) / 2);
      throw Crash{};
    });
    EXPECT_THROW(save_checkpoint(path, sample(2)), Crash);
  }
  // The previous checkpoint is whole; the dead save's temporary is left, as after a crash.
  expect_same(load_checkpoint(path), sample(1));
  const std::vector<fs::path> left = dir.temporaries();
  ASSERT_EQ(left.size(), 1u);
  if (truncate)
    expect_error<FormatError>([&] { load_checkpoint(left[0]); }, {left[0].string()});
  else
    EXPECT_EQ(load_checkpoint(left[0]).epoch, 2);  // complete, just never renamed
  // The leftover does not get in the way of the next save.
  save_checkpoint(path, sample(3));
  EXPECT_EQ(load_checkpoint(path).epoch, 3);
}

TEST(CheckpointAtomicity, CrashAfterWriteBeforeFsyncKeepsThePrevious) {
  crash_at(detail::SaveStage::Written, false);
}
TEST(CheckpointAtomicity, CrashAfterFsyncBeforeRenameKeepsThePrevious) {
  crash_at(detail::SaveStage::Synced, false);
}
TEST(CheckpointAtomicity, TruncatedTemporaryLeftBehindKeepsThePrevious) {
  crash_at(detail::SaveStage::Written, true);
}

TEST(CheckpointAtomicity, FullDiskKeepsThePrevious) {
  // Root ignores permissions, so a file-size limit makes write() fail (EFBIG) like ENOSPC.
  TempDir dir;
  const fs::path path = dir.path / "last.safetensors";
  save_checkpoint(path, sample(1));
  Checkpoint big = sample(2);
  big.model.emplace_back("big", Tensor::zeros({4096}, DType::F64));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit tight = old;
  tight.rlim_cur = 2048;
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  EXPECT_THROW(save_checkpoint(path, big), IoError);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  expect_same(load_checkpoint(path), sample(1));
  EXPECT_TRUE(dir.temporaries().empty()) << "a failed (not crashed) save cleans up";
}

/// Runs `fn` with the calling thread's filesystem uid set to nobody's when running as root:
/// on Linux that also drops CAP_DAC_OVERRIDE for this thread, so permissions apply to root
/// too. Returns false when the switch is not allowed (then `fn` did not run).
template <typename Fn>
bool as_unprivileged(Fn&& fn) {
  if (::geteuid() != 0) {
    fn();
    return true;
  }
  constexpr uid_t kNobody = 65534;
  ::setfsuid(kNobody);
  const bool switched = ::setfsuid(kNobody) == static_cast<int>(kNobody);  // returns the current
  if (switched) {
    try {
      fn();
    } catch (...) {
      ::setfsuid(0);
      throw;
    }
  }
  ::setfsuid(0);
  return switched;
}

TEST(CheckpointAtomicity, UnwritableFolderKeepsThePrevious) {
  TempDir dir;
  const fs::path path = dir.path / "last.safetensors";
  save_checkpoint(path, sample(1));
  fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  if (::geteuid() != 0)
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  const bool ran = as_unprivileged([&] {
    expect_error<IoError>([&] { save_checkpoint(path, sample(2)); },
                          {path.string(), "Permission denied"});
  });
  if (!ran) GTEST_SKIP() << "running as root and cannot switch the filesystem uid";
  expect_same(load_checkpoint(path), sample(1));
  EXPECT_TRUE(dir.temporaries().empty());
}

/// Writes a safetensors file with these metadata and tensor names, as a checkpoint impostor.
fs::path write_raw(const TempDir& dir, std::map<std::string, std::string> meta,
                   const std::vector<std::string>& names = {"model.w"}) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& n : names) tensors.emplace_back(n, Tensor::zeros({2}));
  const fs::path path = dir.path / "bad.safetensors";
  save_safetensors(path, tensors, meta);
  return path;
}

TEST(CheckpointMalformed, ClearFormatErrors) {
  TempDir dir;
  const std::map<std::string, std::string> good{{"format", "convkit.checkpoint"},
                                                {"format_version", "1"},
                                                {"epoch", "5"},
                                                {"rng_state", "7"},
                                                {"optimizer", "SGD"}};
  auto with = [&](const std::string& key, const std::string& value) {
    auto m = good;
    if (value.empty())
      m.erase(key);
    else
      m[key] = value;
    return m;
  };
  EXPECT_EQ(load_checkpoint(write_raw(dir, good)).epoch, 5);
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, {})); },
                            {"bad.safetensors", "no 'format'"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, with("format", "keras"))); },
                            {"'keras'", "convkit.checkpoint"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, with("format_version", "9"))); },
                            {"version", "'9'"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, with("epoch", ""))); },
                            {"no 'epoch'"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, with("epoch", "-2"))); },
                            {"epoch '-2'"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, with("epoch", "3x"))); },
                            {"epoch '3x'"});
  expect_error<FormatError>(
      [&] { load_checkpoint(write_raw(dir, with("rng_state", "18446744073709551616"))); },
      {"rng_state"});
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, good, {"weights"})); },
                            {"'weights'", "model.<name>"});
  expect_error<FormatError>(
      [&] { load_checkpoint(write_raw(dir, with("optimizer", ""), {"optimizer.lr"})); },
      {"no 'optimizer'"});
  auto no_kind = good;
  no_kind["optimizer"] = "";
  expect_error<FormatError>([&] { load_checkpoint(write_raw(dir, no_kind, {"optimizer.lr"})); },
                            {"no optimizer kind"});

  // Truncated and garbage files: the safetensors reader's FormatError, naming the file.
  const fs::path path = dir.path / "cut.safetensors";
  save_checkpoint(path, sample(1));
  fs::resize_file(path, fs::file_size(path) - 3);
  expect_error<FormatError>([&] { load_checkpoint(path); }, {"cut.safetensors"});
  std::ofstream(path, std::ios::trunc) << "not a checkpoint at all";
  expect_error<FormatError>([&] { load_checkpoint(path); }, {"cut.safetensors"});
  expect_error<IoError>([&] { load_checkpoint(dir.path / "missing.safetensors"); },
                        {"missing.safetensors"});
}

}  // namespace
}  // namespace convkit::io
