// safetensors read and write, refusing the malformed files the reference implementation refuses.
#include "convkit/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "io/save_hook.hpp"

namespace convkit::io {
namespace {

// Tensor bytes are copied verbatim between the file (little-endian) and memory.
static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

using json = nlohmann::json;
constexpr std::size_t kLenBytes = 8;
constexpr auto kMaxInt64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Where a refusal happened: the buffer's name and, once known, the tensor (or metadata).
struct Where {
  const std::string& source;
  std::string part;  // "tensor 'x'", "__metadata__", or empty for the file as a whole

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> text, Args&&... args) const {
    throw FormatError(fmt::format("safetensors file '{}': {}{}{}", source, part,
                                  part.empty() ? "" : ": ",
                                  fmt::format(text, std::forward<Args>(args)...)));
  }
};

/// A string from the file for an error message, cut short so it cannot flood the message.
std::string clip(const std::string& s) { return s.size() > 80 ? s.substr(0, 77) + "..." : s; }

Where tensor_at(const std::string& source, const std::string& name) {
  return {source, name == "__metadata__" ? name : fmt::format("tensor '{}'", clip(name))};
}

/// Offset of the first byte that breaks UTF-8 or is a NUL, or npos. The table is Unicode's
/// (ch. 3.9): no overlong forms, no surrogates, nothing above U+10FFFF. NUL is refused because
/// JSON allows none and nlohmann would take it for the end of the input ("{}\0junk" would pass).
std::size_t first_bad_byte(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;  // 0: not a valid lead byte
    if (c > 0 && c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c < 0xF5)
      len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    const unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;  // allowed second byte
    const unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (len == 0 || len > s.size() - i) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80u) || b > (k == 1 ? hi : 0xBFu)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

struct Entry {
  std::string name;
  std::size_t header_index = 0;  // breaks ties between empty tensors so file order is stable
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

DType parse_dtype(const Where& at, const std::string& s) {
  for (DType t : {DType::F32, DType::F64, DType::I64, DType::U8})
    if (s == dtype_name(t)) return t;
  // The other dtypes the reference knows: valid files, but convkit cannot hold them.
  static const std::set<std::string, std::less<>> kOthers = {
      "BOOL", "F4",  "F6_E2M3", "F6_E3M2", "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0",
      "I16",  "U16", "F16",     "BF16",    "I32", "U32",     "U64",     "C64"};
  if (kOthers.contains(s))
    at.fail(
        "unsupported dtype '{}' (valid in safetensors, but convkit reads only F32, F64, I64, U8)",
        s);
  at.fail("unknown dtype '{}' (expected F32, F64, I64 or U8)", s);
}

/// Reads the header as a stream of SAX events and checks each token as it arrives, so a
/// hostile header is refused at its first wrong token and never becomes a document in memory
/// (a DOM of 100 MB of `"a":{},` would take gigabytes). It also refuses duplicate keys at
/// every level, which nlohmann's DOM parser would silently resolve to the last one.
///   depth 1: {name: ..., "__metadata__": ...}
///   depth 2:   {"dtype": "F32", "shape": ..., "data_offsets": ...}  or  {key: "value"}
///   depth 3:     [non-negative integers]
class HeaderReader {
 public:
  explicit HeaderReader(const std::string& source) : source_(source) {}

  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;

  bool start_object(std::size_t) {
    if (depth_ >= 2) return wrong("an object");
    if (depth_ == 1 && !in_metadata_) {
      entry_ = Entry();
      entry_.name = name_;
      entry_.header_index = entries.size();
    }
    seen_ = 0;
    ++depth_;
    return true;
  }
  bool end_object() {
    if (depth_-- == 2 && !in_metadata_) {
      for (Field f : {Field::Dtype, Field::Shape, Field::Offsets})
        if ((seen_ & bit(f)) == 0) at().fail("missing field '{}'", field_name(f));
      if (entry_.begin > entry_.end)
        at().fail("data_offsets [{}, {}] begin after they end", entry_.begin, entry_.end);
      entries.push_back(std::move(entry_));
    }
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ != 2 || in_metadata_ || field_ == Field::Dtype) return wrong("an array");
    count_ = 0;
    ++depth_;
    return true;
  }
  bool end_array() {
    if (field_ == Field::Offsets && count_ != 2)
      at().fail("data_offsets must be [begin, end], got {} numbers", count_);
    --depth_;
    return true;
  }
  bool key(std::string& k) {
    if (depth_ == 1) {
      if (!names_.insert(k).second) Where{source_, ""}.fail("duplicate key '{}' in the header", k);
      name_ = k;
      in_metadata_ = k == "__metadata__";
      if (k.empty()) at().fail("a tensor has an empty name");
    } else if (in_metadata_) {
      if (metadata.contains(k)) at().fail("duplicate key '{}'", k);
      meta_key_ = k;
    } else {
      field_ = k == "dtype"          ? Field::Dtype
               : k == "shape"        ? Field::Shape
               : k == "data_offsets" ? Field::Offsets
                                     : Field::None;
      if (field_ == Field::None)
        at().fail("unexpected field '{}' (an entry holds only dtype, shape and data_offsets)", k);
      if ((seen_ & bit(field_)) != 0) at().fail("duplicate key '{}'", k);
      seen_ |= bit(field_);
    }
    return true;
  }
  bool string(std::string& s) {
    if (depth_ != 2 || (!in_metadata_ && field_ != Field::Dtype))
      return wrong(fmt::format("the string \"{}\"", clip(s)));
    if (in_metadata_)
      metadata.emplace(meta_key_, std::move(s));
    else
      entry_.dtype = parse_dtype(at(), s);
    return true;
  }
  bool number_unsigned(std::uint64_t v) {
    if (depth_ != 3) return wrong(fmt::to_string(v));
    if (field_ == Field::Offsets) {
      if (count_ == 2) at().fail("data_offsets must be [begin, end], got more numbers");
      (count_++ == 0 ? entry_.begin : entry_.end) = v;
      return true;
    }
    if (count_++ == kMaxRank)
      at().fail("shape has more than {} sizes; convkit tensors have rank 0 to {}", kMaxRank,
                kMaxRank);
    if (v > kMaxInt64) at().fail("shape has a size {} above 2^63 - 1", v);
    entry_.shape.push_back(static_cast<std::int64_t>(v));
    return true;
  }
  bool number_integer(std::int64_t v) {
    return v >= 0 ? number_unsigned(static_cast<std::uint64_t>(v)) : wrong(fmt::to_string(v));
  }
  bool number_float(double, const std::string& text) { return wrong(text); }
  bool boolean(bool b) { return wrong(b ? "true" : "false"); }
  bool null() {
    if (depth_ == 1 && in_metadata_) return true;  // the reference reads `null` as "no metadata"
    return wrong("null");
  }
  bool binary(json::binary_t&) { return wrong("binary data"); }  // JSON text has none
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    Where{source_, ""}.fail("header is not valid JSON: {}", e.what());
  }

 private:
  enum class Field { None, Dtype, Shape, Offsets };
  static unsigned bit(Field f) { return 1u << static_cast<unsigned>(f); }
  static const char* field_name(Field f) {
    return f == Field::Dtype ? "dtype" : f == Field::Shape ? "shape" : "data_offsets";
  }
  Where at() const { return tensor_at(source_, name_); }

  /// Refuses a token that does not belong where it stands, saying what was expected there.
  [[noreturn]] bool wrong(const std::string& got) const {
    if (depth_ <= 1 && in_metadata_) at().fail("must be an object of strings, got {}", got);
    if (depth_ <= 1)
      at().fail("entry must be an object with dtype, shape and data_offsets, got {}", got);
    if (in_metadata_) at().fail("value for key '{}' must be a string, got {}", meta_key_, got);
    if (depth_ == 2 && field_ == Field::Dtype) at().fail("dtype must be a string, got {}", got);
    if (depth_ == 2) at().fail("{} must be an array of integers, got {}", field_name(field_), got);
    at().fail("{} must hold non-negative integers, got {}", field_name(field_), got);
  }

  const std::string& source_;
  int depth_ = 0;
  std::unordered_set<std::string> names_;  // top-level keys seen so far
  std::string name_;                       // the top-level key being read
  bool in_metadata_ = false;
  std::string meta_key_;
  Entry entry_;
  Field field_ = Field::None;
  unsigned seen_ = 0;  // bit(field) for each field of entry_ seen so far
  int count_ = 0;      // numbers read in the current array
};

/// Element count x dtype size, or a FormatError when it does not fit in int64. The count is
/// folded in order and any overflow refuses the entry, as the reference and Shape::numel do
/// (so [2^62, 4, 0] is refused although its true count is 0).
std::uint64_t entry_bytes(const Where& at, const Entry& e) {
  std::int64_t n = 1;
  bool overflow = false;
  for (std::int64_t d : e.shape) overflow = overflow || __builtin_mul_overflow(n, d, &n);
  if (overflow || __builtin_mul_overflow(n, dtype_size(e.dtype), &n))
    at.fail("shape [{}] of {} has a byte size that overflows int64", fmt::join(e.shape, ", "),
            dtype_name(e.dtype));
  // A tensor's strides multiply its sizes with a 0 counted as 1, so [0, 2^62, 4] holds no
  // bytes but cannot be laid out: refuse it here, by name, rather than in Tensor::empty.
  std::int64_t span = 1;
  for (std::int64_t d : e.shape)
    if (__builtin_mul_overflow(span, std::max<std::int64_t>(d, 1), &span))
      at.fail(
          "shape [{}] has sizes whose product (with 0 counted as 1) overflows int64, so a "
          "tensor of that shape has no strides",
          fmt::join(e.shape, ", "));
  return static_cast<std::uint64_t>(n);
}

/// Checks that the sorted entries tile the data buffer exactly: first at 0, each where the
/// previous ended, sizes matching the shapes, the last ending at the buffer's end.
void check_layout(const std::string& source, const std::vector<Entry>& entries,
                  std::uint64_t data_len) {
  std::uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    const Where at = tensor_at(source, e.name);
    if (e.begin > expected && prev == nullptr)
      at.fail("data_offsets [{}, {}] leave a gap: the first tensor must begin at 0", e.begin,
              e.end);
    if (e.begin > expected)
      at.fail("data_offsets [{}, {}] leave a gap of {} bytes after tensor '{}', which ends at {}",
              e.begin, e.end, e.begin - expected, clip(prev->name), expected);
    if (e.begin < expected)
      at.fail("data_offsets [{}, {}] overlap tensor '{}', which ends at {}", e.begin, e.end,
              clip(prev->name), expected);
    const std::uint64_t need = entry_bytes(at, e);
    if (e.end - e.begin != need)
      at.fail("data_offsets [{}, {}] hold {} bytes but shape [{}] of {} needs {}", e.begin, e.end,
              e.end - e.begin, fmt::join(e.shape, ", "), dtype_name(e.dtype), need);
    if (e.end > data_len)
      at.fail("data_offsets [{}, {}] go past the end of the data buffer, which holds {} bytes",
              e.begin, e.end, data_len);
    expected = e.end;
    prev = &e;
  }
  if (expected != data_len)
    Where{source, ""}.fail("{} trailing bytes after the last tensor (tensors end at {} of {})",
                           data_len - expected, expected, data_len);
}

std::string io_reason(int err) { return std::generic_category().message(err); }

thread_local detail::SaveHook save_hook;

}  // namespace

void detail::set_save_hook(SaveHook hook) { save_hook = std::move(hook); }

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back(fmt::format("'{}'", entry.first));
  throw InvalidArgument(
      fmt::format("no tensor named '{}'; the file holds [{}]", name, fmt::join(names, ", ")));
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& entry) { return entry.first == name; });
}

SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& source) {
  const Where file{source, ""};
  if (bytes.size() < kLenBytes)
    file.fail("{} bytes is too short to hold the 8-byte header length", bytes.size());
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < kLenBytes; ++i) n |= std::uint64_t{bytes[i]} << (8 * i);
  if (n > kSafetensorsMaxHeader)
    file.fail("header length {} exceeds the limit of {} bytes", n, kSafetensorsMaxHeader);
  if (n > bytes.size() - kLenBytes)
    file.fail("header length {} runs past the end of the {}-byte buffer (truncated file?)", n,
              bytes.size());

  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + kLenBytes, n);
  if (const std::size_t bad = first_bad_byte(text); bad != std::string_view::npos)
    file.fail("header is not valid UTF-8 JSON text (byte 0x{:02x} at header offset {})",
              static_cast<unsigned char>(text[bad]), bad);
  if (text.empty() || text.front() != '{')
    file.fail("header must be a JSON object starting with '{{' at its first byte");
  HeaderReader reader(source);
  if (!json::sax_parse(text.begin(), text.end(), &reader)) file.fail("header is not valid JSON");

  SafetensorsFile out;
  out.metadata = std::move(reader.metadata);
  std::vector<Entry>& entries = reader.entries;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.header_index) < std::tie(b.begin, b.end, b.header_index);
  });
  check_layout(source, entries, bytes.size() - kLenBytes - n);

  // Every entry now lies inside the buffer, so allocating and copying it is safe.
  const std::uint8_t* data = bytes.data() + kLenBytes + n;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(Shape(std::span<const std::int64_t>(e.shape)), e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

std::vector<std::uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  // nlohmann escapes strings, and throws on invalid UTF-8, which every reader would refuse.
  auto quote = [](const std::string& s, std::string_view what) {
    try {
      return json(s).dump();
    } catch (const json::exception&) {
      throw InvalidArgument(fmt::format("safetensors: {} is not valid UTF-8", what));
    }
  };
  // The header is assembled by hand, in the caller's order, so that writing n tensors is O(n).
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      if (header.back() != '{') header += ',';
      header += quote(key, "a metadata key") + ':' + quote(value, "metadata value of " + key);
    }
    header += '}';
  }
  std::unordered_set<std::string> seen;
  std::int64_t data_len = 0;
  for (const auto& [name, t] : tensors) {
    const char* problem = name.empty()                ? "is empty"
                          : name == "__metadata__"    ? "is reserved for the metadata map"
                          : !seen.insert(name).second ? "is used twice"
                          : !t.defined()              ? "names an undefined tensor"
                                                      : nullptr;
    if (problem != nullptr)
      throw InvalidArgument(fmt::format("safetensors: tensor name '{}' {}", name, problem));
    const std::int64_t begin = data_len;
    data_len = checked_add(data_len, t.nbytes(), "safetensors data size");
    if (header.size() > 1) header += ',';
    header += quote(name, "tensor name " + name);
    header += fmt::format(R"(:{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})",
                          dtype_name(t.dtype()), fmt::join(t.shape().span(), ","), begin, data_len);
  }
  header += '}';
  // Like the reference: pad with spaces (legal JSON whitespace) so the data starts 8-aligned.
  header.append((kLenBytes - header.size() % kLenBytes) % kLenBytes, ' ');

  std::vector<std::uint8_t> out(kLenBytes + header.size() + static_cast<std::size_t>(data_len));
  for (std::size_t i = 0; i < kLenBytes; ++i)
    out[i] = static_cast<std::uint8_t>(std::uint64_t{header.size()} >> (8 * i));
  std::memcpy(out.data() + kLenBytes, header.data(), header.size());
  std::uint8_t* data = out.data() + kLenBytes + header.size();
  for (const auto& [name, t] : tensors) {
    // One row-major copy at a time keeps the peak memory at one tensor beyond the output.
    const Tensor dense = t.contiguous();
    const auto nbytes = static_cast<std::size_t>(dense.nbytes());
    if (nbytes > 0) std::memcpy(data, dense.raw_data(), nbytes);
    data += nbytes;
  }
  return out;
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto give_up = [&](const char* step, int err) {
    if (fd >= 0) ::close(fd);
    throw IoError(
        fmt::format("cannot {} safetensors file '{}': {}", step, path.string(), io_reason(err)));
  };
  if (fd < 0) give_up("open", errno);
  std::vector<std::uint8_t> bytes;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
    bytes.reserve(static_cast<std::size_t>(st.st_size));
  // Read to the end rather than trusting the size: the file may change while we read it.
  std::uint8_t chunk[1 << 16];
  for (ssize_t got = 0; (got = ::read(fd, chunk, sizeof chunk)) != 0;) {
    if (got < 0 && errno != EINTR) give_up("read", errno);
    if (got > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  }
  ::close(fd);
  return parse_safetensors(bytes, path.string());
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::vector<std::uint8_t> bytes = serialize_safetensors(tensors, metadata);
  static std::atomic<unsigned> counter{0};
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp.{}.{}", ::getpid(), counter.fetch_add(1));

  // O_EXCL: the temporary is ours alone, so removing it on failure cannot hurt anyone else's.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  const bool created = fd >= 0;
  auto give_up = [&](const char* step, const std::string& reason) {
    if (fd >= 0) ::close(fd);
    if (created) ::unlink(tmp.c_str());  // the file at `path` has not been touched
    throw IoError(
        fmt::format("cannot save safetensors file '{}': {} temporary file '{}' failed: {}",
                    path.string(), step, tmp.string(), reason));
  };
  if (!created) give_up("creating", io_reason(errno));
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno != EINTR) give_up("writing", io_reason(errno));
    if (wrote == 0) give_up("writing", "no progress (write returned 0)");  // never spin
    if (wrote > 0) done += static_cast<std::size_t>(wrote);
  }
  if (save_hook) {
    try {
      save_hook(detail::SaveStage::Written, tmp);
    } catch (...) {
      ::close(fd);  // a simulated crash: the temporary stays, as a killed process leaves it
      throw;
    }
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at empty blocks.
  if (::fsync(fd) != 0) give_up("flushing", io_reason(errno));
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) give_up("closing", io_reason(errno));
  if (save_hook) save_hook(detail::SaveStage::Synced, tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) give_up("renaming", ec.message());
  // Best effort: make the rename itself durable. Failing here loses nothing already written.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace convkit::io
