// Tests of safetensors: round trips, each malformed-file rule, fuzzing, atomic saves, interop.
#include "convkit/io/safetensors.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <fmt/format.h>

namespace convkit::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using Named = std::vector<std::pair<std::string, Tensor>>;

// --- helpers for crafting files by hand --------------------------------------

/// [u64 little-endian n][rest], where n need not match rest (to craft bad lengths).
Bytes raw(std::uint64_t n, const std::string& rest = "") {
  Bytes b;
  b.reserve(8 + rest.size());
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  for (char c : rest) b.push_back(static_cast<std::uint8_t>(c));
  return b;
}

/// A file with this exact header text followed by `data_bytes` bytes 0, 1, 2, ...
Bytes craft(const std::string& header, std::size_t data_bytes = 0) {
  Bytes b = raw(header.size(), header);
  for (std::size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<std::uint8_t>(i));
  return b;
}

/// One header entry: "name":{"dtype":..,"shape":..,"data_offsets":..}
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return fmt::format(R"("{}":{{"dtype":"{}","shape":{},"data_offsets":{}}})", name, dtype, shape,
                     offsets);
}

Bytes bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const std::uint8_t*>(c.raw_data());
  return {p, p + c.nbytes()};
}

/// Same dtype, shape and bits (so -0.0, denormals and large int64 values count).
void expect_same(const Tensor& got, const Tensor& want, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape()) << got.shape().str() << " vs " << want.shape().str();
  EXPECT_TRUE(got.is_contiguous());
  EXPECT_EQ(bytes_of(got), bytes_of(want));
}

template <typename T>
Tensor make(const Shape& shape, const std::vector<T>& values) {
  Tensor t = Tensor::empty(shape, dtype_of_v<T>);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

template <typename T, typename F>
Tensor generate(const Shape& shape, F f) {
  std::vector<T> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(f(static_cast<double>(i)));
  return make<T>(shape, v);
}

/// Mirrors expected() in tools/fixtures/check_safetensors_interop.py, in the file's data order.
Named interop_expected() {
  const std::int64_t big = std::int64_t{1} << 62;
  return {
      {"i64.empty", make<std::int64_t>({0}, {})},
      {"i64.rank2", make<std::int64_t>({2, 3}, {-big, 0, big + 1, 7, -1, 123456789012})},
      {"f64.rank1", make<double>({5}, {1.0 / 3.0, -2.5, 1e300, -0.0,
                                       std::numeric_limits<double>::denorm_min()})},
      {"f64.rank5", generate<double>({1, 2, 1, 2, 3}, [](double i) { return i * 0.125 - 1; })},
      {"conv.weight", generate<float>({4, 3, 2, 2}, [](double i) { return (i - 20) * 0.25; })},
      {"empty", make<float>({0, 3}, {})},
      {"scalar", make<float>({}, {1.5f})},
      {"u8.rank3",
       generate<std::uint8_t>({2, 3, 4}, [](double i) { return static_cast<int>(i) * 37 % 256; })},
  };
}
const std::map<std::string, std::string> kInteropMetadata = {
    {"format", "pt"}, {"producer", "check_safetensors_interop.py"}, {"unicode", "ünï ✓"}};

void expect_same_file(const SafetensorsFile& got, const Named& want) {
  ASSERT_EQ(got.tensors.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got.tensors[i].first, want[i].first) << "file order differs at " << i;
    expect_same(got.tensors[i].second, want[i].second, want[i].first);
  }
}

/// A fresh directory under the system temp dir, removed (with its contents) at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / fmt::format("convkit_safetensors_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
  std::size_t count() const {
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

// --- round trips ---------------------------------------------------------------

TEST(SafetensorsRoundTrip, AllDtypesAndRanks) {
  const std::vector<Shape> shapes = {{}, {5}, {2, 3}, {2, 3, 4}, {1, 2, 3, 4}, {2, 1, 3, 2, 2}};
  Named tensors;
  std::uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64, DType::I64, DType::U8})
    for (const Shape& s : shapes) {
      Tensor t = Tensor::empty(s, dt);
      for (std::int64_t i = 0; i < t.numel(); ++i)
        t.set_flat(i, static_cast<double>((i * 7 + seed) % 200) - (dt == DType::U8 ? 0 : 100));
      tensors.emplace_back(fmt::format("{}.rank{}", dtype_name(dt), s.rank()), t);
      ++seed;
    }
  const SafetensorsFile f = parse_safetensors(serialize_safetensors(tensors));
  expect_same_file(f, tensors);
  EXPECT_TRUE(f.metadata.empty());
}

TEST(SafetensorsRoundTrip, EmptyTensorsAndEmptyFile) {
  const Named tensors = {{"a", Tensor::empty({0}, DType::F32)},
                         {"b", Tensor::empty({3, 0, 2}, DType::I64)},
                         {"c", make<double>({2}, {1.0, 2.0})},
                         {"d", Tensor::empty({2, 0}, DType::U8)}};
  expect_same_file(parse_safetensors(serialize_safetensors(tensors)), tensors);

  const Bytes none = serialize_safetensors({});
  EXPECT_EQ(none, craft("{}      "));
  EXPECT_TRUE(parse_safetensors(none).tensors.empty());
}

TEST(SafetensorsRoundTrip, Metadata) {
  const std::map<std::string, std::string> meta = {
      {"format", "pt"},
      {"", "empty key"},
      {"quotes \" and \\ and \n", "ünïcödé ✓ 🙂"},
      {"empty", ""}};
  const Named tensors = {{"w", make<float>({2}, {1, 2})}};
  const SafetensorsFile f = parse_safetensors(serialize_safetensors(tensors, meta));
  EXPECT_EQ(f.metadata, meta);
  expect_same_file(f, tensors);
  EXPECT_EQ(parse_safetensors(serialize_safetensors({}, meta)).metadata, meta);
}

TEST(SafetensorsRoundTrip, ChannelsLastAndStridedAreWrittenInLogicalOrder) {
  const Tensor logical = generate<float>({2, 3, 4, 5}, [](double i) { return i; });
  const Tensor nhwc = logical.to(MemoryFormat::ChannelsLast);
  ASSERT_FALSE(nhwc.is_contiguous());
  const Tensor narrowed = logical.narrow(3, 1, 2);  // strided view: rows of 2 out of 5
  const SafetensorsFile f =
      parse_safetensors(serialize_safetensors({{"nhwc", nhwc}, {"narrow", narrowed}}));
  expect_same(f.at("nhwc"), logical, "nhwc");
  expect_same(f.at("narrow"), narrowed.contiguous(), "narrow");
  EXPECT_EQ(f.at("narrow").get({1, 2, 3, 0}), logical.get({1, 2, 3, 1}));
}

TEST(SafetensorsRoundTrip, ExactLayoutLikeTheReference) {
  // Given order, consecutive offsets, compact JSON, spaces up to a multiple of 8.
  const Bytes b = serialize_safetensors(
      {{"z", make<float>({2}, {1, 2})}, {"a", make<std::uint8_t>({3}, {1, 2, 3})}}, {{"k", "v"}});
  const std::string header = R"({"__metadata__":{"k":"v"},)" + entry("z", "F32", "[2]", "[0,8]") +
                             "," + entry("a", "U8", "[3]", "[8,11]") + "}";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  Bytes want = raw(padded.size(), padded);
  for (std::uint8_t v : bytes_of(make<float>({2}, {1, 2}))) want.push_back(v);
  want.insert(want.end(), {1, 2, 3});
  EXPECT_EQ(b, want);
  EXPECT_EQ(padded.size() % 8, 0u);
  const SafetensorsFile f = parse_safetensors(b);
  EXPECT_EQ(f.tensors[0].first, "z");  // file order, not name order
  EXPECT_TRUE(f.contains("a"));
  EXPECT_FALSE(f.contains("b"));
  EXPECT_THROW(f.at("b"), InvalidArgument);
}

TEST(SafetensorsRoundTrip, AcceptsWhatTheReferenceAccepts) {
  // Unpadded header, padding after the object, JSON whitespace, null metadata, any key order.
  const std::string e = entry("a", "U8", "[2]", "[0,2]");
  for (const std::string& h : std::vector<std::string>{
           "{" + e + "}", "{" + e + "}   \n\t ", "{ " + e + " , \"__metadata__\" : null }",
           R"({"a":{"data_offsets":[0,2],"shape":[2],"dtype":"U8"}})"}) {
    SCOPED_TRACE(h);
    const SafetensorsFile f = parse_safetensors(craft(h, 2));
    ASSERT_EQ(f.tensors.size(), 1u);
    EXPECT_EQ(f.at("a").get({1}), 1.0);
  }
}

TEST(SafetensorsRoundTrip, WriterRefusesBadNames) {
  const Tensor t = make<float>({1}, {1});
  EXPECT_THROW(serialize_safetensors({{"", t}}), InvalidArgument);
  EXPECT_THROW(serialize_safetensors({{"__metadata__", t}}), InvalidArgument);
  EXPECT_THROW(serialize_safetensors({{"a", t}, {"a", t}}), InvalidArgument);
  EXPECT_THROW(serialize_safetensors({{"a", Tensor()}}), InvalidArgument);
  EXPECT_THROW(serialize_safetensors({{"bad\xff", t}}), InvalidArgument);
  EXPECT_THROW(serialize_safetensors({}, {{"k", "bad\xc3"}}), InvalidArgument);
}

// --- malformed files: one case per rule ------------------------------------------

struct BadCase {
  std::string name;
  Bytes bytes;
  std::string message;  // a substring the FormatError must contain
};

std::vector<BadCase> bad_cases() {
  const std::string a = entry("a", "F32", "[2]", "[0,8]");
  auto one = [](const std::string& body, std::size_t data = 0) {
    return craft("{" + body + "}", data);
  };
  auto with_a = [&](const std::string& body, std::size_t data) {
    return craft("{" + a + "," + body + "}", data);
  };
  // A file holding one tensor 'a' with this dtype, shape and offsets, and `data` bytes.
  auto A = [&](const char* dtype, const char* shape, const char* offsets, std::size_t data) {
    return one(entry("a", dtype, shape, offsets), data);
  };
  const std::string big = "4611686018427387904";  // 2^62
  return {
      {"empty_buffer", {}, "0 bytes is too short"},
      {"buffer_shorter_than_8", Bytes{2, 0, 0, 0, 0}, "too short to hold the 8-byte header length"},
      {"header_over_100MB", raw(100'000'001, "{}"), "header length 100000001 exceeds the limit"},
      {"header_length_u64_max", raw(~std::uint64_t{0}, "{}"), "exceeds the limit"},
      {"header_past_end", raw(64, "{\"a\":"), "runs past the end of the 13-byte buffer"},
      {"empty_header", raw(0), "starting with '{'"},
      {"header_not_json", craft("{not json}"), "header is not valid JSON"},
      {"header_json_array", craft("[]"), "must be a JSON object"},
      {"header_leading_space", craft(" {}"), "starting with '{'"},
      {"header_trailing_garbage", craft("{} x"), "header is not valid JSON"},
      {"header_trailing_nul", craft(std::string("{}\0", 3)),
       "not valid UTF-8 JSON text (byte 0x00 at header offset 2)"},
      {"nul_after_entry", craft("{" + a + std::string("}\0\0\0\0\0\0\0", 8), 8), "byte 0x00"},
      {"invalid_utf8_in_key", craft("{\"a\xff\":{}}"),
       "not valid UTF-8 JSON text (byte 0xff at header offset 3)"},
      {"utf8_encoded_surrogate", craft("{\"\xed\xa0\x80\":1}"), "not valid UTF-8"},
      {"utf8_overlong", craft("{\"\xc0\xaf\":1}"), "not valid UTF-8"},
      {"lone_surrogate_escape", craft(R"({"\ud800":1})"), "header is not valid JSON"},
      {"duplicate_tensor_key", with_a(a, 8), "duplicate key 'a' in the header"},
      {"duplicate_field_in_entry", one(R"("a":{"dtype":"F32",)" + a.substr(5), 8),
       "tensor 'a': duplicate key 'dtype'"},
      {"duplicate_metadata_key", with_a(R"("__metadata__":{"k":"1","k":"2"})", 8),
       "__metadata__: duplicate key 'k'"},
      {"array_inside_shape", one(R"("a":{"shape":[[2]]})"),
       "shape must hold non-negative integers, got an array"},
      {"unknown_dtype", A("F17", "[2]", "[0,8]", 8), "tensor 'a': unknown dtype 'F17'"},
      {"unsupported_dtype_f16", A("F16", "[2]", "[0,4]", 4), "unsupported dtype 'F16'"},
      {"unsupported_dtype_bf16", A("BF16", "[2]", "[0,4]", 4), "unsupported dtype 'BF16'"},
      {"dtype_not_string", one(R"("a":{"dtype":4,"shape":[2],"data_offsets":[0,8]})", 8),
       "dtype must be a string"},
      {"missing_field", one(R"("a":{"dtype":"F32","data_offsets":[0,8]})", 8),
       "tensor 'a': missing field 'shape'"},
      {"extra_field", one(a.substr(0, a.size() - 1) + R"(,"x":1})", 8), "unexpected field 'x'"},
      {"entry_not_object", one(R"("a":[1])"), "tensor 'a': entry must be an object"},
      {"entry_null", one(R"("a":null)"),
       "entry must be an object with dtype, shape and data_offsets, got null"},
      {"empty_tensor_name", one(entry("", "F32", "[2]", "[0,8]"), 8), "empty name"},
      {"shape_negative", A("F32", "[2,-1]", "[0,8]", 8),
       "shape must hold non-negative integers, got -1"},
      {"shape_not_integer", A("F32", "[1.5]", "[0,8]", 8),
       "shape must hold non-negative integers, got 1.5"},
      {"shape_not_array", A("F32", "2", "[0,8]", 8), "shape must be an array"},
      {"shape_rank_6", A("U8", "[1,1,1,1,1,1]", "[0,1]", 1), "shape has more than 5 sizes"},
      {"shape_above_int64", A("U8", "[9223372036854775808]", "[0,8]", 8), "above 2^63"},
      {"offsets_not_pair", A("F32", "[2]", "[0]", 8), "data_offsets must be [begin, end]"},
      {"offsets_negative", A("F32", "[2]", "[-8,0]", 8),
       "data_offsets must hold non-negative integers, got -8"},
      {"offsets_begin_after_end", A("F32", "[0]", "[8,0]", 8), "[8, 0] begin after they end"},
      {"offsets_overlap", with_a(entry("b", "F32", "[2]", "[4,12]"), 12),
       "tensor 'b': data_offsets [4, 12] overlap tensor 'a', which ends at 8"},
      {"offsets_gap", with_a(entry("b", "F32", "[1]", "[12,16]"), 16),
       "leave a gap of 4 bytes after tensor 'a'"},
      {"first_not_at_zero", A("F32", "[1]", "[4,8]", 8), "the first tensor must begin at 0"},
      {"offsets_past_end", with_a(entry("b", "F32", "[2]", "[8,16]"), 12),
       "tensor 'b': data_offsets [8, 16] go past the end of the data buffer, which holds 12"},
      {"offsets_far_past_end", A("U8", "[9223372036854775807]", "[0,9223372036854775807]", 8),
       "go past the end"},
      {"trailing_bytes", one(a, 10), "2 trailing bytes after the last tensor"},
      {"byte_length_mismatch", one(entry("conv.weight", "F32", "[3,4]", "[0,40]"), 40),
       "tensor 'conv.weight': data_offsets [0, 40] hold 40 bytes but shape [3, 4] of F32 needs 48"},
      {"numel_overflows", A("F32", ("[" + big + ",4]").c_str(), "[0,8]", 8),
       "shape [" + big + ", 4] of F32 has a byte size that overflows int64"},
      {"bytes_overflow", A("F64", "[1152921504606846976,2]", "[0,8]", 8), "overflows int64"},
      {"overflow_before_zero", A("U8", ("[" + big + ",4,0]").c_str(), "[0,0]", 0), "overflows"},
      {"metadata_value_not_string", with_a(R"("__metadata__":{"k":1})", 8),
       "__metadata__: value for key 'k' must be a string, got 1"},
      {"metadata_value_object", with_a(R"("__metadata__":{"k":{}})", 8),
       "__metadata__: value for key 'k' must be a string, got an object"},
      {"metadata_not_object", with_a(R"("__metadata__":"x")", 8),
       "__metadata__: must be an object"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class SafetensorsMalformed : public testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsMalformed, ThrowsFormatErrorNamingTheRule) {
  const BadCase& c = GetParam();
  try {
    parse_safetensors(c.bytes, "bad.st");
    ADD_FAILURE() << "parsed without error";
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("safetensors file 'bad.st': ", 0), 0u) << what;
    EXPECT_NE(what.find(c.message), std::string::npos)
        << "message: " << what << "\nexpected: " << c.message;
  }
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsMalformed, testing::ValuesIn(bad_cases()),
                         [](const testing::TestParamInfo<BadCase>& param) {
                           return param.param.name;
                         });

// --- fuzz-ish: no input may crash or throw anything but FormatError ---------------

/// Parses and reports anything other than success or FormatError.
void expect_parses_or_format_error(const Bytes& b, const std::string& what) {
  try {
    parse_safetensors(b);
  } catch (const FormatError&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-FormatError: " << e.what();
  }
}

Bytes small_valid_file() {
  return serialize_safetensors({{"w", make<float>({2, 2}, {1, 2, 3, 4})},
                                {"e", Tensor::empty({0}, DType::I64)},
                                {"b", make<std::uint8_t>({3}, {7, 8, 9})}},
                               {{"k", "v"}});
}

TEST(SafetensorsFuzz, EveryTruncationIsAFormatError) {
  const Bytes full = small_valid_file();
  ASSERT_NO_THROW(parse_safetensors(full));
  for (std::size_t len = 0; len < full.size(); ++len)
    EXPECT_THROW(
        parse_safetensors(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len))),
        FormatError)
        << "truncated to " << len;
}

TEST(SafetensorsFuzz, EveryByteFlipParsesOrIsAFormatError) {
  const Bytes full = small_valid_file();
  for (std::size_t i = 0; i < full.size(); ++i)
    for (int mask : {0x01, 0x20, 0x80, 0xff}) {
      Bytes b = full;
      b[i] = static_cast<std::uint8_t>(b[i] ^ mask);
      expect_parses_or_format_error(b, fmt::format("byte {} ^ {:#x}", i, mask));
    }
}

TEST(SafetensorsFuzz, RandomGarbageIsAFormatError) {
  std::mt19937_64 rng(42);
  const Bytes full = small_valid_file();
  for (int iter = 0; iter < 2000; ++iter) {
    Bytes b = full;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    b.resize(rng() % (b.size() + 16));
    expect_parses_or_format_error(b, fmt::format("iteration {}", iter));
  }
}

// --- files: load, atomic save ---------------------------------------------------

const Named kSmall = {{"w", make<float>({2, 2}, {1, 2, 3, 4})}};

TEST(SafetensorsSave, SavesLoadsAndOverwritesWithoutLeavingTemporaries) {
  TempDir dir;
  const fs::path path = dir.path / "model.safetensors";
  save_safetensors(path, kSmall, {{"k", "v"}});
  const Named other = {{"x", make<double>({1}, {9})}};
  save_safetensors(path, other);
  const SafetensorsFile f = load_safetensors(path);
  expect_same_file(f, other);
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(dir.count(), 1u);
}

TEST(SafetensorsSave, MissingDirectoryIsAnIoError) {
  TempDir dir;
  const fs::path path = dir.path / "no" / "such" / "dir.safetensors";
  try {
    save_safetensors(path, kSmall);
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path / "no"));
}

TEST(SafetensorsSave, FailedWriteLeavesTheOldFileIntact) {
  // Root ignores permissions, so the write is made to fail with a file-size limit instead.
  TempDir dir;
  const fs::path path = dir.path / "model.safetensors";
  save_safetensors(path, kSmall);
  const Named large = {{"big", Tensor::zeros({4096}, DType::F64)}};
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit tight = old;
  tight.rlim_cur = 1024;
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  EXPECT_THROW(save_safetensors(path, large), IoError);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  expect_same_file(load_safetensors(path), kSmall);
  EXPECT_EQ(dir.count(), 1u) << "the temporary file was left behind";
}

TEST(SafetensorsSave, UnwritableDirectoryLeavesTheOldFileIntact) {
  TempDir dir;
  const fs::path path = dir.path / "model.safetensors";
  save_safetensors(path, kSmall);
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(dir.path.c_str(), W_OK) == 0)
    GTEST_SKIP() << "running as root: permissions are not enforced";
  EXPECT_THROW(save_safetensors(path, {{"x", make<double>({1}, {9})}}), IoError);
  expect_same_file(load_safetensors(path), kSmall);
}

TEST(SafetensorsSave, RenameOntoADirectoryIsAnIoError) {
  TempDir dir;
  fs::create_directories(dir.path / "taken" / "child");
  EXPECT_THROW(save_safetensors(dir.path / "taken", kSmall), IoError);
  EXPECT_TRUE(fs::is_directory(dir.path / "taken" / "child"));
  EXPECT_EQ(dir.count(), 1u) << "the temporary file was left behind";
}

TEST(SafetensorsSave, LoadErrorsNameThePath) {
  TempDir dir;
  EXPECT_THROW(load_safetensors(dir.path / "missing.safetensors"), IoError);
  EXPECT_THROW(load_safetensors(dir.path), IoError);  // a directory cannot be read
  const fs::path path = dir.path / "garbage.safetensors";
  std::ofstream(path, std::ios::binary) << "garbage!";
  try {
    load_safetensors(path);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("safetensors file '" + path.string() + "'"),
              std::string::npos)
        << e.what();
  }
}

// --- interop with Python's safetensors package -----------------------------------

TEST(SafetensorsInterop, ReadsFileWrittenByPython) {
  const SafetensorsFile f =
      load_safetensors(CONVKIT_FIXTURE_DIR "/safetensors/python_written.safetensors");
  expect_same_file(f, interop_expected());
  EXPECT_EQ(f.metadata, kInteropMetadata);
}

TEST(SafetensorsInterop, RewritesPythonsFileWithTheSameData) {
  // Python orders metadata keys by hash, so only the data section is compared byte for byte.
  std::ifstream in(CONVKIT_FIXTURE_DIR "/safetensors/python_written.safetensors", std::ios::binary);
  const Bytes python((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const SafetensorsFile f = parse_safetensors(python);
  const Bytes ours = serialize_safetensors(f.tensors, f.metadata);
  ASSERT_EQ(ours.size(), python.size());
  std::uint64_t n = 0;
  std::memcpy(&n, python.data(), 8);
  EXPECT_TRUE(std::equal(ours.begin() + static_cast<std::ptrdiff_t>(8 + n), ours.end(),
                         python.begin() + static_cast<std::ptrdiff_t>(8 + n)));
  expect_same_file(parse_safetensors(ours), f.tensors);
}

TEST(SafetensorsInterop, WritesFileForPython) {
  // check_safetensors_interop.py sets CONVKIT_INTEROP_DIR and reads this file with Python.
  const char* env = std::getenv("CONVKIT_INTEROP_DIR");
  TempDir tmp;
  const fs::path path =
      fs::path(env != nullptr ? env : tmp.path.string()) / "convkit_written.safetensors";
  Named tensors = interop_expected();
  const Tensor logical = generate<float>({2, 3, 4, 5}, [](double i) { return i; });
  tensors.emplace_back("channels_last", logical.to(MemoryFormat::ChannelsLast));
  save_safetensors(path, tensors, kInteropMetadata);
  tensors.back().second = logical;
  const SafetensorsFile f = load_safetensors(path);
  expect_same_file(f, tensors);
  EXPECT_EQ(f.metadata, kInteropMetadata);
}

}  // namespace
}  // namespace convkit::io
