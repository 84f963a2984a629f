// Internal: a test hook into save_safetensors' atomic write, to inject failures between steps.
#pragma once

#include <filesystem>
#include <functional>

namespace convkit::io::detail {

/// The points of save_safetensors at which a hook runs, in order.
///   Written: every byte is in the temporary file, not yet fsynced; the target is untouched.
///   Synced:  the temporary file is fsynced and closed; the rename has not happened.
enum class SaveStage { Written, Synced };

/// Called with the stage and the temporary file's path. A hook that throws simulates a crash
/// at that point: the exception leaves save_safetensors and the temporary file stays behind
/// (what a killed process leaves), while the file at the target path is never touched.
using SaveHook = std::function<void(SaveStage stage, const std::filesystem::path& tmp)>;

/// Installs `hook` for saves on the calling thread (an empty function removes it).
void set_save_hook(SaveHook hook);

/// Installs a hook for the lifetime of the guard (tests).
class ScopedSaveHook {
 public:
  explicit ScopedSaveHook(SaveHook hook) { set_save_hook(std::move(hook)); }
  ~ScopedSaveHook() { set_save_hook({}); }
  ScopedSaveHook(const ScopedSaveHook&) = delete;
  ScopedSaveHook& operator=(const ScopedSaveHook&) = delete;
};

}  // namespace convkit::io::detail
