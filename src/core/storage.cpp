// Storage: tensor memory. Small blocks from malloc/calloc; large ones mapped with huge pages
// and kept in a bounded cache for reuse.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "convkit/core/tensor.hpp"
#include "core/check.hpp"

namespace convkit {
namespace {

// Blocks of at least this size are mapped, 2 MiB aligned and marked for transparent huge
// pages: a 50 MB activation then faults in 25 huge pages instead of 12,800 small ones, which
// measured 10x the cost of the depthwise kernel that fills it. Freed ones are cached, since
// a training step frees and allocates the same sizes again at every step.
constexpr std::int64_t kLargeBlock = std::int64_t{4} << 20;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

struct Mapping {
  void* base = nullptr;
  std::size_t bytes = 0;
};

class MappingCache {
 public:
  static MappingCache& instance() {
    // Never destroyed: tensors freed during static destruction still find it.
    static MappingCache* cache = new MappingCache;
    return *cache;
  }

  /// A cached mapping of at least `bytes` and at most about 1/8 more, or an empty one.
  Mapping take(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    auto best = blocks_.end();
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
      if (it->bytes >= bytes && it->bytes <= bytes + bytes / 8 + kHugePage &&
          (best == blocks_.end() || it->bytes < best->bytes))
        best = it;
    if (best == blocks_.end()) return {};
    const Mapping m = *best;
    held_ -= m.bytes;
    blocks_.erase(best);
    return m;
  }

  /// Keeps m for reuse, unmapping the oldest blocks when the cache would exceed its limit.
  void give(Mapping m) {
    std::vector<Mapping> evicted;
    {
      std::lock_guard lock(mutex_);
      if (m.bytes > limit_) {
        evicted.push_back(m);
      } else {
        while (held_ + m.bytes > limit_) {
          evicted.push_back(blocks_.front());
          held_ -= blocks_.front().bytes;
          blocks_.erase(blocks_.begin());
        }
        blocks_.push_back(m);
        held_ += m.bytes;
      }
    }
    for (const Mapping& e : evicted) munmap(e.base, e.bytes);
  }

 private:
  MappingCache() {
    limit_ = std::size_t{1} << 30;
    if (const char* env = std::getenv("CONVKIT_STORAGE_CACHE_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(env, &end, 10);
      if (end != env && *end == '\0' && mb < (std::uint64_t{1} << 40))
        limit_ = static_cast<std::size_t>(mb) << 20;
    }
  }

  std::mutex mutex_;
  std::vector<Mapping> blocks_;  // oldest first
  std::size_t held_ = 0, limit_ = 0;
};

}  // namespace

Storage::Storage(std::int64_t bytes, bool zero) : bytes_(bytes) {
  detail::require(bytes >= 0, "Storage: negative byte count {}", bytes);
  if (bytes == 0) return;
  // The sums below cannot overflow: Tensor::empty caps byte counts at INT64_MAX / 2.
  if (bytes >= kLargeBlock) {
    const std::size_t need =
        (static_cast<std::size_t>(bytes) + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
    Mapping m = MappingCache::instance().take(need);
    const bool fresh = m.base == nullptr;
    if (fresh) {
      void* base = mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED)
        throw Error(fmt::format("cannot allocate {} bytes for a tensor", bytes));
      m = {base, need};
    }
    block_ = m.base;
    mapped_ = m.bytes;
    const auto addr = reinterpret_cast<std::uintptr_t>(m.base);
    data_ = reinterpret_cast<void*>((addr + kHugePage - 1) / kHugePage * kHugePage);
    if (fresh)
      madvise(data_, mapped_ - kHugePage, MADV_HUGEPAGE);  // advice only: may fail
    else if (zero)
      std::memset(data_, 0, static_cast<std::size_t>(bytes));  // fresh mappings are zero already
    return;
  }
  // 64 spare bytes make room for the alignment. calloc hands out fresh zero pages without
  // touching them; malloc reuses freed memory without clearing it.
  const std::size_t size = static_cast<std::size_t>(bytes) + 64;
  block_ = zero ? std::calloc(size, 1) : std::malloc(size);
  if (block_ == nullptr) throw Error(fmt::format("cannot allocate {} bytes for a tensor", bytes));
  const auto addr = reinterpret_cast<std::uintptr_t>(block_);
  data_ = reinterpret_cast<void*>((addr + 63) / 64 * 64);
}

Storage::~Storage() {
  if (mapped_ != 0)
    MappingCache::instance().give({block_, mapped_});
  else
    std::free(block_);
}

}  // namespace convkit
