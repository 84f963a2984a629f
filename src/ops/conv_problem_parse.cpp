// ConvProblem::parse: reads the benchdnn-style lines that ConvProblem::str() writes and that
// the benchmark shape files hold.
#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "convkit/ops/conv_problem.hpp"
#include "core/check.hpp"

namespace convkit {

using I = std::int64_t;

namespace {

// Two-letter keys before "g" so that the longest key wins.
constexpr std::string_view kKeys[] = {"mb", "ic", "oc", "id", "ih", "iw", "od", "oh", "ow",
                                      "kd", "kh", "kw", "sd", "sh", "sw", "pd", "ph", "pw",
                                      "dd", "dh", "dw", "g"};

constexpr std::string_view kModes[] = {"zeros", "reflect", "replicate", "circular"};

class LineParser {
 public:
  explicit LineParser(std::string_view line) : line_(line) {}

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> text, Args&&... args) const {
    throw InvalidArgument(fmt::format("ConvProblem::parse: line '{}': {}", line_,
                                      fmt::format(text, std::forward<Args>(args)...)));
  }

  // The text from `pos` for an error message: up to the next separator, at most 16 chars.
  std::string token_at(std::size_t pos) const {
    std::size_t end = pos;
    while (end < line_.size() && end - pos < 16 && line_[end] != '_' && line_[end] != ' ') ++end;
    return std::string(line_.substr(pos, std::max<std::size_t>(end - pos, 1)));
  }

  void run() {
    std::size_t pos = 0;
    while (pos < line_.size()) {
      const char c = line_[pos];
      if (c == '_' || c == ' ' || c == '\t') {
        ++pos;
      } else if (line_.compare(pos, 2, "n\"") == 0) {
        const std::size_t close = line_.find('"', pos + 2);
        if (close == std::string_view::npos) fail("name at position {} has no closing quote", pos);
        name = std::string(line_.substr(pos + 2, close - pos - 2));
        pos = close + 1;
      } else if (starts(pos, "pad_after[")) {
        pos = read_list(pos, "pad_after[", pad_after);
      } else if (starts(pos, "transposed_op[")) {
        pos = read_list(pos, "transposed_op[", output_padding);
        transposed = true;
      } else if (const auto mode = mode_at(pos)) {
        if (padding_mode) fail("padding mode given twice (second '{}')", kModes[*mode]);
        padding_mode = static_cast<PaddingMode>(*mode);
        pos += kModes[*mode].size();
      } else {
        pos = read_value(pos);
      }
    }
  }

  std::map<std::string, I, std::less<>> values;
  std::string name;
  std::optional<std::vector<I>> pad_after, output_padding;
  std::optional<PaddingMode> padding_mode;
  bool transposed = false;

 private:
  bool starts(std::size_t pos, std::string_view word) const {
    return line_.compare(pos, word.size(), word) == 0;
  }

  std::optional<std::size_t> mode_at(std::size_t pos) const {
    for (std::size_t m = 0; m < std::size(kModes); ++m) {
      const std::size_t end = pos + kModes[m].size();
      // A whole word only: followed by the end, '_' or a blank.
      if (starts(pos, kModes[m]) && (end == line_.size() || line_[end] == '_' || line_[end] == ' '))
        return m;
    }
    return std::nullopt;
  }

  // Digits at pos into `out`; returns the position after them.
  std::size_t read_int(std::size_t pos, std::string_view what, I& out) const {
    if (pos >= line_.size() || line_[pos] < '0' || line_[pos] > '9')
      fail("'{}' must be followed by a non-negative integer, got '{}'", what,
           pos < line_.size() ? token_at(pos) : std::string("end of line"));
    const auto [ptr, ec] = std::from_chars(line_.data() + pos, line_.data() + line_.size(), out);
    if (ec != std::errc()) fail("value of '{}' at position {} does not fit in int64", what, pos);
    return static_cast<std::size_t>(ptr - line_.data());
  }

  std::size_t read_value(std::size_t pos) {
    for (const std::string_view key : kKeys) {
      if (!starts(pos, key)) continue;
      const std::size_t at = pos + key.size();
      if (values.contains(key)) fail("'{}' is given twice (second '{}')", key, token_at(pos));
      I v = 0;
      const std::size_t end = read_int(at, key, v);
      values.emplace(std::string(key), v);
      return end;
    }
    fail("unknown token '{}' at position {}", token_at(pos), pos);
  }

  // "[a, b, ...]" after `word`; returns the position after ']'.
  std::size_t read_list(std::size_t pos, std::string_view word,
                        std::optional<std::vector<I>>& out) const {
    const std::string_view what = word.substr(0, word.size() - 1);
    if (out) fail("'{}' is given twice", what);
    out.emplace();
    pos += word.size();
    for (;;) {
      while (pos < line_.size() && line_[pos] == ' ') ++pos;
      if (pos >= line_.size()) fail("'{}' has no closing ']'", what);
      if (line_[pos] == ']' && out->empty()) fail("'{}' is an empty list", what);
      I v = 0;
      pos = read_int(pos, what, v);
      out->push_back(v);
      while (pos < line_.size() && line_[pos] == ' ') ++pos;
      if (pos < line_.size() && line_[pos] == ',') {
        ++pos;
      } else if (pos < line_.size() && line_[pos] == ']') {
        return pos + 1;
      } else {
        fail("'{}' list: expected ',' or ']' at position {}, got '{}'", what, pos,
             pos < line_.size() ? token_at(pos) : std::string("end of line"));
      }
    }
  }

  std::string_view line_;
};

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

ConvProblem ConvProblem::parse(std::string_view text, DType dtype, MemoryFormat format,
                               std::string* name) {
  const std::string_view line = trim(text);
  LineParser lp(line);
  if (line.empty()) lp.fail("the line is empty");
  lp.run();
  const auto& v = lp.values;
  const auto has = [&](std::string_view key) { return v.contains(key); };

  // Dimensionality from the spatial letters present.
  int nd = 1;
  for (const char* kind : {"i", "o", "k", "s", "p", "d"}) {
    if (has(std::string(kind) + "d")) nd = 3;
    if (nd < 2 && has(std::string(kind) + "h")) nd = 2;
  }
  const std::string_view letters = nd == 3 ? "dhw" : nd == 2 ? "hw" : "w";

  // One value per spatial dimension of a kind; missing ones copy the first given one.
  const auto spatial = [&](char kind, std::optional<I> fallback,
                           const char* meaning) -> std::vector<I> {
    std::optional<I> first;
    for (const char l : letters)
      if (const auto it = v.find(std::string{kind, l}); it != v.end() && !first) first = it->second;
    if (!first && !fallback)
      lp.fail("no {} given (expected {}{})", meaning, kind, letters.front());
    std::vector<I> sizes;
    for (const char l : letters) {
      const auto it = v.find(std::string{kind, l});
      sizes.push_back(it != v.end() ? it->second : first ? *first : *fallback);
    }
    return sizes;
  };

  if (!has("ic")) lp.fail("no input channels given (expected 'ic')");
  const I mb = has("mb") ? v.at("mb") : 2;
  const I ic = v.at("ic");
  const I oc = has("oc") ? v.at("oc") : ic;
  const I g = has("g") ? v.at("g") : 1;
  const std::vector<I> in = spatial('i', std::nullopt, "input size");
  const std::vector<I> k = spatial('k', std::nullopt, "kernel size");
  const std::vector<I> stride = spatial('s', 1, "stride");
  const std::vector<I> pad = spatial('p', 0, "padding");
  std::vector<I> dilation = spatial('d', 0, "dilation");
  for (I& d : dilation) d += 1;  // benchdnn writes the skipped taps

  if (g <= 0) lp.fail("groups 'g{}' must be positive", g);
  if (ic % g != 0) lp.fail("input channels 'ic{}' are not divisible by groups 'g{}'", ic, g);
  if (oc % g != 0) lp.fail("output channels 'oc{}' are not divisible by groups 'g{}'", oc, g);
  const auto check_len = [&](const std::optional<std::vector<I>>& list, const char* what) {
    if (list && list->size() != static_cast<std::size_t>(nd))
      lp.fail("'{}' has {} values but the problem is {}-D", what, list->size(), nd);
  };
  check_len(lp.pad_after, "pad_after");
  check_len(lp.output_padding, "transposed_op");

  std::vector<I> src{mb, ic}, wei{lp.transposed ? ic : oc, lp.transposed ? oc / g : ic / g};
  src.insert(src.end(), in.begin(), in.end());
  wei.insert(wei.end(), k.begin(), k.end());
  const ConvOptions options{
      .stride = stride,
      .padding = Padding::asymmetric(pad, lp.pad_after.value_or(pad)),
      .dilation = dilation,
      .groups = g,
      .padding_mode = lp.padding_mode.value_or(PaddingMode::Zeros),
      .output_padding = lp.output_padding.value_or(std::vector<I>{0})};
  ConvProblem p;
  try {
    p = make(Shape(std::span<const I>(src)), Shape(std::span<const I>(wei)), std::nullopt,
             options, lp.transposed, dtype, format);
  } catch (const InvalidArgument& e) {
    lp.fail("{}", e.what());
  }
  for (std::size_t i = 0; i < letters.size(); ++i) {
    const std::string key{'o', letters[i]};
    if (const auto it = v.find(key); it != v.end() && it->second != p.out[i])
      lp.fail("'{}{}' does not match the computed output size {}", key, it->second, p.out[i]);
  }
  if (name) *name = lp.name;
  return p;
}

}  // namespace convkit
