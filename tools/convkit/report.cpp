// The compare report: the console table and the HTML page with its three inline SVG charts.
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

namespace convkit::cli {

namespace {

// ---- numbers and text --------------------------------------------------------------------

/// "-1234567" -> "-1,234,567".
std::string group_thousands(const std::string& digits) {
  const std::size_t first = digits.starts_with('-') ? 1 : 0;
  std::string out = digits.substr(0, first);
  for (std::size_t i = first; i < digits.size(); ++i) {
    if (i > first && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// v with `decimals` decimals and thousands separators; "-" when v is not finite.
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.starts_with('-') && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  const std::size_t dot = std::min(s.find('.'), s.size());
  return group_thousands(s.substr(0, dot)) + s.substr(dot);
}

std::string count(std::int64_t n) { return group_thousands(std::to_string(n)); }
std::string percent(double accuracy) { return fixed(accuracy * 100, 1); }
/// Three significant decimals for sub-millisecond latencies, fewer as they grow.
std::string milliseconds(double ms) {
  const double a = std::fabs(ms);
  return fixed(ms, a < 1 ? 3 : a < 100 ? 2 : 1);
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// Code points in UTF-8 text: the columns a terminal gives it in most scripts.
std::size_t text_width(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation(c); }));
}

/// The text on one line: control characters become spaces.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return out;
}

/// At most `max` code points of one_line(s), the last one an ellipsis when cut.
std::string shorten(std::string_view s, std::size_t max) {
  const std::string line = one_line(s);
  if (text_width(line) <= max) return line;
  std::size_t points = 0, i = 0;
  for (; i < line.size(); ++i)
    if (!is_continuation(line[i]) && ++points == max) break;  // i: the max-th point's start
  return line.substr(0, i) + "\xE2\x80\xA6";
}

/// The length of the valid UTF-8 sequence for an XML character at s[i]; 0 when invalid.
std::size_t xml_char_length(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((lead & 0xE0) == 0xC0)
    len = 2, cp = lead & 0x1Fu;
  else if ((lead & 0xF0) == 0xE0)
    len = 3, cp = lead & 0x0Fu;
  else if ((lead & 0xF8) == 0xF0)
    len = 4, cp = lead & 0x07u;
  else
    return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if (!is_continuation(s[i + k])) return 0;
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  }
  constexpr std::array<std::uint32_t, 5> kSmallest{0, 0, 0x80, 0x800, 0x10000};  // overlong
  if (cp < kSmallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
      cp == 0xFFFF)
    return 0;
  return len;
}

// ---- the table, shared by the console and the page ---------------------------------------

const std::array<const char*, 9> kColumns{"Model",           "Params",           "MACs/image",
                                          "Latency b1 (ms)", "Latency b32 (ms)", "Train img/s",
                                          "Train acc (%)",   "Test acc (%)",     "Train time (s)"};

/// The cells after the name, in kColumns order.
std::vector<std::string> number_cells(const ModelResult& m) {
  return {count(m.params),
          count(m.macs_per_image),
          milliseconds(m.latency_b1_ms),
          milliseconds(m.latency_b32_ms),
          fixed(m.train_images_per_s, 0),
          percent(m.train_accuracy),
          percent(m.test_accuracy),
          fixed(m.train_seconds, 1)};
}

// ---- SVG pieces --------------------------------------------------------------------------

/// A coordinate: one decimal, 0 for anything not finite, bounded so no number is huge.
std::string px(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.1f}", std::clamp(v, -1e6, 1e6));
  return s == "-0.0" ? "0.0" : s;
}

constexpr std::array<const char*, 8> kPalette{"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                              "#76b7b2", "#b07aa1", "#edc948", "#9c755f"};
const char* color(std::size_t model) { return kPalette[model % kPalette.size()]; }

constexpr double kWidth = 720;

/// The data area of a chart, in SVG pixels.
struct Plot {
  double left, top, width, height;
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

/// Maps [lo, hi] (hi > lo) onto [p0, p1].
struct Scale {
  double lo, hi, p0, p1;
  double operator()(double v) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

/// A step of 1, 2 or 5 times a power of ten that cuts `span` (> 0) into about `target` parts.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / magnitude;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * magnitude;
}

/// The multiples of `step` in [lo, hi].
std::vector<double> ticks_between(double lo, double hi, double step) {
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; ++k)
    ticks.push_back(k * step);
  return ticks;
}

/// A tick value with as many decimals as the step needs.
std::string tick_label(double v, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fixed(v, decimals);
}

struct Tick {
  double at;  // pixels
  std::string label;
};

std::string svg_open(double height, const std::string& label) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" "
      "height=\"{1}\" role=\"img\" aria-label=\"{2}\">\n<title>{2}</title>\n",
      px(kWidth), px(height), escape_xml(label));
}

std::string text(double x, double y, std::string_view content, const char* anchor = "start",
                 const char* extra = "") {
  return fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\"{}>{}</text>\n", px(x), px(y),
                     anchor, extra, escape_xml(content));
}

/// Horizontal grid lines with labels at the y ticks, tick labels under the x axis, the frame,
/// and the axis titles.
std::string axes(const Plot& p, const std::vector<Tick>& xs, const std::vector<Tick>& ys,
                 std::string_view x_title, std::string_view y_title) {
  std::string out = "<g class=\"axes\">\n";
  for (const Tick& t : ys) {
    out += fmt::format("<line class=\"grid\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\"/>\n",
                       px(p.left), px(p.right()), px(t.at));
    out += text(p.left - 6, t.at + 4, t.label, "end");
  }
  for (const Tick& t : xs) {
    out += fmt::format("<line class=\"tick\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n",
                       px(t.at), px(p.bottom()), px(p.bottom() + 5));
    out += text(t.at, p.bottom() + 18, t.label, "middle");
  }
  out += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
                     px(p.left), px(p.top), px(p.width), px(p.height));
  out += text(p.left + p.width / 2, p.bottom() + 36, x_title, "middle", " class=\"title\"");
  const double yx = p.left - 44, yy = p.top + p.height / 2;
  out +=
      text(yx, yy, y_title, "middle",
           fmt::format(" class=\"title\" transform=\"rotate(-90 {} {})\"", px(yx), px(yy)).c_str());
  return out + "</g>\n";
}

/// One legend row per model (colour swatch and name) from height `y` down; returns them.
std::string model_legend(const CompareReport& r, double x, double y) {
  std::string out = "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < r.models.size(); ++i, y += 20) {
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", px(x),
                       px(y - 10), color(i));
    out += text(x + 18, y, shorten(r.models[i].name, 70));
  }
  return out + "</g>\n";
}

std::string placeholder(const std::string& label, std::string_view message) {
  return svg_open(80, label) + text(kWidth / 2, 45, message, "middle", " class=\"note\"") +
         "</svg>\n";
}

/// The accuracy axis in percent: multiples of 10 within [0, 100] around `values`, at least
/// 10 apart.
std::pair<double, double> accuracy_range(const std::vector<double>& values) {
  if (values.empty()) return {0, 100};
  const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  double lo = std::clamp(std::floor(*mn / 10) * 10, 0.0, 100.0);
  double hi = std::clamp(std::ceil(*mx / 10) * 10, 0.0, 100.0);
  if (hi - lo < 10) {  // all equal, on a multiple of 10
    if (hi >= 10)
      lo = hi - 10;
    else
      hi = lo + 10;
  }
  return {lo, hi};
}

std::vector<Tick> value_ticks(const Scale& s, int target) {
  const double step = nice_step(s.hi - s.lo, target);
  std::vector<Tick> ticks;
  for (double v : ticks_between(s.lo, s.hi, step)) ticks.push_back({s(v), tick_label(v, step)});
  return ticks;
}

/// An accuracy in percent, clamped to [0, 100] (callers leave out the ones not finite).
double to_percent(double accuracy) { return std::clamp(accuracy, 0.0, 1.0) * 100; }

// ---- the three charts ----------------------------------------------------------------------

std::string curves_chart(const CompareReport& r) {
  const std::string label = "Accuracy after each epoch: test solid, train dashed";
  int first = 0, last = 0;
  bool any = false;
  std::vector<double> values;
  for (const ModelResult& m : r.models)
    for (const EpochPoint& e : m.curve) {
      first = any ? std::min(first, e.epoch) : e.epoch;
      last = any ? std::max(last, e.epoch) : e.epoch;
      any = true;
      for (double a : {e.test_accuracy, e.train_accuracy})
        if (std::isfinite(a)) values.push_back(to_percent(a));
    }
  if (!any) return placeholder(label, "No epochs were trained: there are no curves to draw.");

  const Plot p{64, 16, kWidth - 64 - 24, 260};
  double lo = first, hi = last;
  if (hi <= lo) lo -= 1, hi += 1;  // one epoch: the point sits in the middle
  const Scale x{lo, hi, p.left, p.right()};
  const auto [ylo, yhi] = accuracy_range(values);
  const Scale y{ylo, yhi, p.bottom(), p.top};
  std::vector<Tick> xs;
  const double step = std::max(1.0, std::round(nice_step(hi - lo, 8)));
  for (double v : ticks_between(lo, hi, step)) xs.push_back({x(v), fixed(v, 0)});

  const double legend_top = p.bottom() + 64;
  std::string out = svg_open(legend_top + 20.0 * static_cast<double>(r.models.size() + 1), label);
  out += axes(p, xs, value_ticks(y, 5), "epoch", "accuracy (%)");
  for (std::size_t i = 0; i < r.models.size(); ++i) {
    const ModelResult& m = r.models[i];
    if (m.curve.empty()) continue;
    for (const bool test : {false, true}) {
      std::string points, dots;
      for (const EpochPoint& e : m.curve) {
        const double a = test ? e.test_accuracy : e.train_accuracy;
        if (!std::isfinite(a)) continue;
        const std::string cx = px(x(e.epoch)), cy = px(y(to_percent(a)));
        points += (points.empty() ? "" : " ") + cx + "," + cy;
        dots += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" stroke=\"{}\"/>\n",
                            cx, cy, test ? "3" : "2.5", test ? color(i) : "#ffffff", color(i));
      }
      out += fmt::format("<polyline class=\"{}\" points=\"{}\" stroke=\"{}\"{}/>\n",
                         test ? "test" : "train", points, color(i),
                         test ? "" : " stroke-dasharray=\"6 4\"");
      out += dots;
    }
  }
  const double kx = p.left;
  out += fmt::format(
      "<g class=\"legend\">\n<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" class=\"key\"/>\n",
      px(kx), px(kx + 24), px(legend_top - 24));
  out += text(kx + 30, legend_top - 20, "test accuracy");
  out += fmt::format(
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" class=\"key\" "
      "stroke-dasharray=\"6 4\"/>\n",
      px(kx + 150), px(kx + 174), px(legend_top - 24));
  out += text(kx + 180, legend_top - 20, "train accuracy") + "</g>\n";
  out += model_legend(r, kx, legend_top);
  return out + "</svg>\n";
}

/// "1", "10k", "2M": a parameter count on the log axis.
std::string si(double v) {
  if (v >= 1e9) return fmt::format("{:g}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

std::string scatter_chart(const CompareReport& r) {
  const std::string label = "Test accuracy against parameters (log scale)";
  std::vector<std::size_t> shown;
  std::vector<double> values;
  for (std::size_t i = 0; i < r.models.size(); ++i)
    if (std::isfinite(r.models[i].test_accuracy)) {
      shown.push_back(i);
      values.push_back(to_percent(r.models[i].test_accuracy));
    }
  if (shown.empty()) return placeholder(label, "No models to show.");

  auto decades = [&](std::size_t i) {  // counts below 1 sit at 1
    return std::log10(static_cast<double>(std::max<std::int64_t>(1, r.models[i].params)));
  };
  double lo = decades(shown[0]), hi = lo;
  for (std::size_t i : shown) lo = std::min(lo, decades(i)), hi = std::max(hi, decades(i));
  lo = std::floor(lo);
  hi = std::max(std::ceil(hi), lo + 1);

  const Plot p{64, 16, kWidth - 64 - 24, 260};
  const Scale x{lo, hi, p.left, p.right()};
  const auto [ylo, yhi] = accuracy_range(values);
  const Scale y{ylo, yhi, p.bottom(), p.top};
  std::vector<Tick> xs;
  for (double d = lo; d <= hi; ++d) {
    xs.push_back({x(d), si(std::pow(10.0, d))});
    if (hi - lo <= 2 && d < hi)  // few decades: 2x and 5x ticks too
      for (double f : {2.0, 5.0}) xs.push_back({x(d + std::log10(f)), si(f * std::pow(10.0, d))});
  }
  std::string out = svg_open(p.bottom() + 48, label);
  out += axes(p, xs, value_ticks(y, 5), "parameters (log scale)", "test accuracy (%)");
  for (std::size_t i : shown) {
    const ModelResult& m = r.models[i];
    const double cx = x(decades(i)), cy = y(to_percent(m.test_accuracy));
    out +=
        fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\"><title>{}</title></circle>\n",
                    px(cx), px(cy), color(i),
                    escape_xml(fmt::format("{}: {} parameters, {}% test accuracy", one_line(m.name),
                                           count(m.params), percent(m.test_accuracy))));
    const bool left = cx > p.left + 0.65 * p.width;  // keep labels inside the frame
    const double ly = cy < p.top + 14 ? cy + 16 : cy - 8;
    out += text(left ? cx - 8 : cx + 8, ly, shorten(m.name, 32), left ? "end" : "start");
  }
  return out + "</svg>\n";
}

std::string latency_chart(const CompareReport& r) {
  const std::string label = "Inference latency per batch (ms): batch 1 and batch 32";
  if (r.models.empty()) return placeholder(label, "No models to show.");
  const double panel = (kWidth - 2 * 64 - 24) / 2;
  const double legend_top = 16 + 220 + 64;
  std::string out = svg_open(legend_top + 20.0 * static_cast<double>(r.models.size()), label);
  for (int b = 0; b < 2; ++b) {
    const Plot p{64 + b * (panel + 64), 16, panel, 220};
    double most = 0;
    for (const ModelResult& m : r.models) {
      const double v = b == 0 ? m.latency_b1_ms : m.latency_b32_ms;
      if (std::isfinite(v)) most = std::max(most, v);
    }
    most *= 1.08;  // room for the value above the tallest bar
    const double step = most > 0 ? nice_step(most, 4) : 0.25;
    const Scale y{0, most > 0 ? std::ceil(most / step - 1e-9) * step : 1, p.bottom(), p.top};
    out += axes(p, {}, value_ticks(y, 4), b == 0 ? "batch 1" : "batch 32", "ms per batch");
    const double slot = p.width / static_cast<double>(r.models.size());
    const double bar = std::min(48.0, slot * 0.7);
    for (std::size_t i = 0; i < r.models.size(); ++i) {
      const double v = b == 0 ? r.models[i].latency_b1_ms : r.models[i].latency_b32_ms;
      const double top = std::isfinite(v) ? y(std::max(0.0, v)) : p.bottom();
      const double bx = p.left + slot * (static_cast<double>(i) + 0.5) - bar / 2;
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
          "fill=\"{}\"><title>{}</title></rect>\n",
          px(bx), px(top), px(bar), px(p.bottom() - top), color(i),
          escape_xml(fmt::format("{}: {} ms", one_line(r.models[i].name), milliseconds(v))));
      out += text(bx + bar / 2, top - 4, milliseconds(v), "middle", " class=\"value\"");
    }
  }
  out += model_legend(r, 64, legend_top);
  return out + "</svg>\n";
}

constexpr const char* kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.4em; }
.date { color: #57606a; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; }
dt { font-weight: 600; }
dd { margin: 0; }
.guide { background: #f6f8fa; border-left: 4px solid #4e79a7; padding: 0.6em 1em; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 0.35em 0.6em; border-bottom: 1px solid #d0d7de; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f8fa; font-weight: 600; }
td.best { font-weight: 700; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; }
.desc { display: block; color: #57606a; font-size: 0.85em; }
figure { margin: 1.2em 0; }
figcaption { color: #57606a; font-size: 0.9em; }
svg { max-width: 100%; height: auto; font-size: 12px; font-family: inherit; }
svg .grid { stroke: #e5e8eb; }
svg .tick, svg .key { stroke: #57606a; }
svg .frame { fill: none; stroke: #8c959f; }
svg .title { font-size: 13px; fill: #1f2328; }
svg text { fill: #57606a; }
svg .legend text { fill: #1f2328; }
svg .value { fill: #1f2328; font-size: 11px; }
svg .note { font-size: 14px; }
svg polyline { fill: none; stroke-width: 2; }
)";

std::string html_table(const CompareReport& r) {
  std::string out = "<table>\n<thead><tr>";
  for (const char* c : kColumns) out += fmt::format("<th>{}</th>", escape_xml(c));
  out += "</tr></thead>\n<tbody>\n";
  std::size_t best = r.models.size();  // the highest test accuracy, marked when there is a choice
  for (std::size_t i = 0; i < r.models.size(); ++i)
    if (std::isfinite(r.models[i].test_accuracy) &&
        (best == r.models.size() || r.models[i].test_accuracy > r.models[best].test_accuracy))
      best = i;
  for (std::size_t i = 0; i < r.models.size(); ++i) {
    const ModelResult& m = r.models[i];
    out += fmt::format(
        "<tr><td><span class=\"swatch\" style=\"background: {}\"></span>{}<span "
        "class=\"desc\">{}</span></td>",
        color(i), escape_xml(m.name), escape_xml(m.description));
    const std::vector<std::string> cells = number_cells(m);
    for (std::size_t c = 0; c < cells.size(); ++c)
      out += fmt::format("<td{}>{}</td>",
                         c == 6 && i == best && r.models.size() > 1 ? " class=\"best\"" : "",
                         escape_xml(cells[c]));
    out += "</tr>\n";
  }
  if (r.models.empty())
    out +=
        fmt::format("<tr><td colspan=\"{}\">No models were compared.</td></tr>\n", kColumns.size());
  return out + "</tbody>\n</table>\n";
}

}  // namespace

std::string escape_xml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    switch (c) {
      case '&':
        out += "&amp;";
        ++i;
        continue;
      case '<':
        out += "&lt;";
        ++i;
        continue;
      case '>':
        out += "&gt;";
        ++i;
        continue;
      case '"':
        out += "&quot;";
        ++i;
        continue;
      case '\'':
        out += "&#39;";
        ++i;
        continue;
      default:
        break;
    }
    const std::size_t len = xml_char_length(s, i);
    const bool control =
        len == 1 && (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) && c != '\t' && c != '\n';
    if (len == 0 || control) {
      out += "\xEF\xBF\xBD";  // U+FFFD: XML has no way to carry these bytes
      ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  return out;
}

std::string render_table(const CompareReport& report) {
  std::vector<std::vector<std::string>> rows{{kColumns.begin(), kColumns.end()}};
  for (const ModelResult& m : report.models) {
    std::vector<std::string> row{one_line(m.name)};
    for (std::string& cell : number_cells(m)) row.push_back(std::move(cell));
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> widths(kColumns.size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], text_width(row[c]));
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const std::string fill(widths[c] - text_width(rows[r][c]), ' ');
      line += c == 0 ? rows[r][c] + fill : "  " + fill + rows[r][c];  // names left, numbers right
    }
    while (line.ends_with(' ')) line.pop_back();
    out += line + "\n";
    if (r == 0) {
      std::size_t total = 0;
      for (std::size_t w : widths) total += w;
      out += std::string(total + 2 * (widths.size() - 1), '-') + "\n";
    }
  }
  if (report.models.empty()) out += "(no models)\n";
  return out;
}

std::string render_html(const CompareReport& r) {
  std::string out =
      "<!DOCTYPE html>\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\" xml:lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\"/>\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
  out += fmt::format("<title>convkit compare: {}</title>\n", escape_xml(r.dataset));
  out += fmt::format("<style>{}</style>\n</head>\n<body>\n", kStyle);
  out += "<h1>convkit compare</h1>\n";
  out += fmt::format("<p class=\"date\">{}</p>\n", escape_xml(r.date));
  out += "<dl>\n";
  const std::array<std::pair<const char*, const std::string*>, 3> facts{
      {{"Data", &r.dataset}, {"Budget", &r.budget}, {"Machine", &r.machine}}};
  for (const auto& [term, value] : facts)
    out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", term, escape_xml(*value));
  out += "</dl>\n";
  out +=
      "<p class=\"guide\">Every model was trained on the same data with the same budget, so "
      "the better trade-off sits higher on the accuracy charts with fewer parameters and "
      "multiply-adds, and a dashed train curve far above its solid test curve means the "
      "model is overfitting. Latency is the time of one inference call per batch on the "
      "machine above: batch 1 is what a single request waits, batch 32 divided by 32 is the "
      "cost of an image in bulk.</p>\n";
  out += "<h2>Results</h2>\n" + html_table(r);
  const std::array<std::pair<const char*, std::string>, 3> figures{
      {{"Accuracy after each epoch (test solid, train dashed).", curves_chart(r)},
       {"Final test accuracy against the number of parameters (log scale).", scatter_chart(r)},
       {"Inference latency per batch, each panel on its own scale.", latency_chart(r)}}};
  const std::array<const char*, 3> titles{"Training curves", "Accuracy and size", "Latency"};
  for (std::size_t i = 0; i < figures.size(); ++i)
    out += fmt::format("<h2>{}</h2>\n<figure>\n{}<figcaption>{}</figcaption>\n</figure>\n",
                       titles[i], figures[i].second, figures[i].first);
  return out + "</body>\n</html>\n";
}

}  // namespace convkit::cli
