// The problems of `convkit check`: shape files with line numbers, and the seeded generator.
#include "check_problems.hpp"

#include <fmt/format.h>

#include <array>
#include <fstream>
#include <initializer_list>
#include <stdexcept>

#include "convkit/core/error.hpp"

namespace convkit::cli {

using I = std::int64_t;

namespace {

// splitmix64: tiny, and the same numbers on every platform (std's distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  I range(I lo, I hi) {
    return lo + static_cast<I>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool chance(int percent) { return range(0, 99) < percent; }
  template <std::size_t N>
  I pick(const std::array<I, N>& values) {
    return values[static_cast<std::size_t>(range(0, N - 1))];
  }

 private:
  std::uint64_t state_;
};

constexpr std::array<I, 15> kTails = {7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65};
constexpr std::array<I, 54> kPrimes = {
    3,   5,   7,   11,  13,  17,  19,  23,  29,  31,  37,  41,  43,  47,  53,  59,  61,  67,
    71,  73,  79,  83,  89,  97,  101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157,
    163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233, 239, 241, 251, 257};

// A channel count in 1..257: mostly small, often a tail of an 8- or 16-float vector.
I channels(Rng& r) {
  const I c = r.range(0, 99);
  if (c < 35) return r.range(1, 8);
  if (c < 65) return r.pick(kTails);
  if (c < 80) return r.range(9, 64);
  if (c < 90) return r.pick(kPrimes);
  return r.range(65, 257);
}

// Channels per group of a grouped convolution: small, sometimes a vector tail.
I group_channels(Rng& r) { return r.chance(70) ? r.range(1, 5) : r.pick(kTails) / 2 + 1; }

struct Dim {
  I in = 1, k = 1, s = 1, d = 1, pb = 0, pa = 0, op = 0;
};

Dim spatial(Rng& r, bool pointwise, int nd, bool transposed) {
  Dim x;
  if (pointwise) {
    x.s = r.chance(85) ? 1 : r.range(2, 3);  // stride > kernel
    if (r.chance(10)) x.pb = x.pa = 1;
  } else {
    const I c = r.range(0, 99);
    x.k = c < 30   ? 3
          : c < 45 ? 5
          : c < 55 ? 7
          : c < 65 ? 1
          : c < 75 ? 2
          : c < 85 ? r.range(4, 6)
                   : r.range(8, 15);
    if (x.k > 1) x.d = r.chance(75) ? 1 : r.range(2, 3);
    const I s = r.range(0, 99);
    x.s = s < 60 ? 1 : s < 85 ? 2 : s < 95 ? 3 : r.range(4, 6);
    const I span = x.d * (x.k - 1) + 1;
    const I p = r.range(0, 99);
    if (p < 40) {
      x.pb = x.pa = (span - 1) / 2;  // 'same'-like
    } else if (p < 60) {
      x.pb = x.pa = 0;
    } else if (p < 85 || transposed) {
      x.pb = r.range(0, span - 1);  // asymmetric
      x.pa = r.range(0, span - 1);
    } else {
      x.pb = r.range(0, span + 2);  // larger than the kernel
      x.pa = r.range(0, span + 2);
    }
  }
  const I n = r.range(0, 99);
  constexpr std::array<I, 3> kMaxIn = {48, 20, 7};
  x.in = n < 15 ? 1 : n < 35 ? r.range(2, 4) : r.range(5, kMaxIn[static_cast<std::size_t>(nd - 1)]);
  const I span = x.d * (x.k - 1) + 1;
  if (!transposed && x.in + x.pb + x.pa < span) {  // a kernel larger than the input: pad up
    const I deficit = span - x.in - x.pb - x.pa;
    const I before = r.range(0, deficit);
    x.pb += before;
    x.pa += deficit - before;
  }
  if (transposed && r.chance(30)) x.op = r.range(0, std::max(x.s, x.d) - 1);
  return x;
}

std::string join(const std::vector<Dim>& dims, I Dim::*field) {
  std::string s;
  for (const Dim& d : dims) s += fmt::format("{}{}", s.empty() ? "" : ", ", d.*field);
  return s;
}

// One candidate line; parse() decides whether it is a valid problem.
std::string random_line(Rng& r) {
  const I ndc = r.range(0, 99);
  const int nd = ndc < 25 ? 1 : ndc < 95 ? 2 : 3;
  const I kind = r.range(0, 99);
  const bool pointwise = kind >= 80;
  const bool transposed = !pointwise && r.chance(8);
  I g = 1, ic = 0, oc = 0;
  if (kind < 30 || (pointwise && r.chance(80))) {  // dense
    ic = channels(r);
    oc = channels(r);
  } else if (kind < 45 || pointwise) {  // grouped
    g = r.range(2, 8);
    ic = g * group_channels(r);
    oc = g * group_channels(r);
  } else {  // depthwise, multiplier 1-4
    ic = g = channels(r);
    const I m = r.range(0, 99);
    oc = ic * (m < 45 ? 1 : m < 65 ? 2 : m < 75 ? 3 : 4);
  }
  const I mbc = r.range(0, 99);
  const I mb = mbc < 40 ? 1 : mbc < 80 ? 2 : r.range(3, 4);
  std::vector<Dim> dims;
  for (int i = 0; i < nd; ++i) dims.push_back(spatial(r, pointwise, nd, transposed));
  const std::string_view letters = nd == 1 ? "w" : nd == 2 ? "hw" : "dhw";
  std::string line = fmt::format("g{}mb{}ic{}", g, mb, ic);
  for (int i = 0; i < nd; ++i) line += fmt::format("i{}{}", letters[i], dims[i].in);
  line += fmt::format("oc{}", oc);
  for (int i = 0; i < nd; ++i) line += fmt::format("k{}{}", letters[i], dims[i].k);
  for (int i = 0; i < nd; ++i) line += fmt::format("s{}{}", letters[i], dims[i].s);
  for (int i = 0; i < nd; ++i) line += fmt::format("p{}{}", letters[i], dims[i].pb);
  for (int i = 0; i < nd; ++i) line += fmt::format("d{}{}", letters[i], dims[i].d - 1);
  bool asymmetric = false;
  for (const Dim& d : dims) asymmetric = asymmetric || d.pa != d.pb;
  if (asymmetric) line += fmt::format("_pad_after[{}]", join(dims, &Dim::pa));
  if (!transposed && r.chance(6)) {
    constexpr const char* kModes[] = {"_reflect", "_replicate", "_circular"};
    line += kModes[r.range(0, 2)];
  }
  if (transposed) line += fmt::format("_transposed_op[{}]", join(dims, &Dim::op));
  return line;
}

}  // namespace

std::string layout_name(MemoryFormat format) {
  return format == MemoryFormat::ChannelsLast ? "nhwc" : "nchw";
}

CheckCase parse_check_line(std::string_view line, MemoryFormat format, const std::string& origin) {
  CheckCase c;
  try {
    c.problem = ConvProblem::parse(line, DType::F32, format);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("{}: {}", origin, e.what()));
  }
  c.problem.has_bias = true;
  c.origin = origin;
  return c;
}

std::vector<CheckCase> read_check_file(const std::filesystem::path& path,
                                       const std::vector<MemoryFormat>& formats) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("--shapes '{}' is not a readable file", path.string()));
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("--shapes: cannot read '{}'", path.string()));
  std::vector<CheckCase> cases;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string origin = fmt::format("{}:{}", path.string(), number);
    for (const MemoryFormat format : formats)
      cases.push_back(parse_check_line(line, format, origin));
  }
  return cases;
}

CheckCase random_check_case(std::uint64_t seed, std::uint64_t index, const RandomLimits& limits) {
  // One stream per (seed, index), so problem i does not depend on the ones before it.
  Rng r(seed * 0xD1B54A32D192ED03ull ^ (index + 1) * 0x9E3779B97F4A7C15ull);
  const std::string origin = fmt::format("random {}, seed {}", index, seed);
  for (int attempt = 0; attempt < 100'000; ++attempt) {
    const std::string line = random_line(r);
    const MemoryFormat format =
        r.chance(50) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    CheckCase c;
    try {
      c = parse_check_line(line, format, origin);
    } catch (const InvalidArgument&) {
      continue;  // e.g. a transposed output size below 1, reflect padding wider than the input
    }
    const ConvProblem& p = c.problem;
    if (p.macs() > limits.max_macs) continue;
    if (p.src_shape().numel() > limits.max_elements ||
        p.dst_shape().numel() > limits.max_elements || p.wei_shape().numel() > limits.max_elements)
      continue;
    return c;
  }
  throw std::logic_error("random_check_case: no problem within the limits");  // unreachable
}

}  // namespace convkit::cli
