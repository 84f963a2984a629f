// The compare report: the console table's rows, and the HTML page well-formed, escaped,
// self-contained and free of NaN/inf for ordinary and degenerate reports.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"
#include "tools/xml_check.hpp"

namespace convkit::cli {
namespace {

using namespace std::string_literals;


/// Words that only a NaN or an infinity printed as a number would put in the page.
bool has_non_finite_word(std::string_view text) {
  std::string word;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
      continue;
    }
    if (word == "nan" || word == "inf" || word == "infinity") return true;
    word.clear();
  }
  return false;
}

std::size_t occurrences(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string_view::npos;
       at = text.find(what, at + what.size()))
    ++n;
  return n;
}

/// The i-th <svg>...</svg> of the page.
std::string_view svg(std::string_view page, int index) {
  std::size_t at = 0;
  for (int k = 0; k <= index; ++k) {
    at = page.find("<svg", k == 0 ? 0 : at + 1);
    if (at == std::string_view::npos) return {};
  }
  return page.substr(at, page.find("</svg>", at) + 6 - at);
}

std::vector<EpochPoint> curve(int epochs, double start) {
  std::vector<EpochPoint> points;
  for (int e = 1; e <= epochs; ++e) {
    const double t = start + (0.95 - start) * e / epochs;
    points.push_back({e, 1.5 / e, std::min(1.0, t + 0.03), t});
  }
  return points;
}

CompareReport sample() {
  CompareReport r{.dataset = "embedded shapes, 6000 train / 1000 test, 32x32 RGB, seed 0",
                  .budget = "4 epochs, batch 64, AdamW lr 0.003, cosine",
                  .machine = "2 threads, convkit 0.1.0, AVX-512 kernels",
                  .date = "2024-05-01T12:00:00Z",
                  .models = {}};
  r.models.push_back({.name = "standard CNN",
                      .description = "3x3 convs 32-64-128, BN, ReLU",
                      .params = 1'234'567,
                      .macs_per_image = 98'765'432,
                      .latency_b1_ms = 1.25,
                      .latency_b32_ms = 31.5,
                      .train_images_per_s = 1520.4,
                      .train_accuracy = 0.9821,
                      .test_accuracy = 0.9634,
                      .train_seconds = 15.8,
                      .curve = curve(4, 0.5)});
  r.models.push_back({.name = "separable CNN",
                      .description = "depthwise 3x3 + pointwise 32-64-128, BN, ReLU",
                      .params = 160'321,
                      .macs_per_image = 14'000'111,
                      .latency_b1_ms = 0.412,
                      .latency_b32_ms = 9.75,
                      .train_images_per_s = 4210.0,
                      .train_accuracy = 0.951,
                      .test_accuracy = 0.9402,
                      .train_seconds = 5.7,
                      .curve = curve(4, 0.4)});
  r.models.push_back({.name = "MobileNetV2 0.35",
                      .description = "torchvision structure, width 0.35, total stride 8",
                      .params = 411'050,
                      .macs_per_image = 7'654'321,
                      .latency_b1_ms = 2.5,
                      .latency_b32_ms = 40.25,
                      .train_images_per_s = 980.7,
                      .train_accuracy = 0.9,
                      .test_accuracy = 0.88,
                      .train_seconds = 24.5,
                      .curve = curve(4, 0.3)});
  return r;
}

/// Checks every page property that holds whatever the report.
void expect_sound_page(const CompareReport& report, const std::string& what) {
  const std::string page = render_html(report);
  EXPECT_EQ(test::markup_problem(page), "") << what << "\n" << page;
  EXPECT_FALSE(has_non_finite_word(page)) << what << "\n" << page;
  EXPECT_FALSE(has_non_finite_word(render_table(report))) << what;
  EXPECT_EQ(occurrences(page, "<svg"), 3u) << what;
  EXPECT_EQ(page.find("<script"), std::string::npos) << what;
  EXPECT_EQ(page.find("href="), std::string::npos) << what;
  EXPECT_EQ(page.find("src="), std::string::npos) << what;
  EXPECT_EQ(page.find("url("), std::string::npos) << what;
  // "http" only in the namespace names, which nothing fetches.
  EXPECT_EQ(occurrences(page, "http"), occurrences(page, "xmlns=\"http://www.w3.org/")) << what;
}

TEST(Report, CheckerRejectsBrokenMarkup) {
  const std::string head = "<!DOCTYPE html>\n";
  EXPECT_EQ(test::markup_problem(head + "<html><p a=\"1\">x &amp; y &#39; &#x41;</p><br/></html>"), "");
  for (const char* bad : {"<html><p></html>", "<html><p a=1></p></html>", "<html>a & b</html>",
                          "<html>a < b</html>", "<html>a > b</html>", "<html></html><p></p>",
                          "<html><p a=\"<\"></p></html>", "<html>&nbsp;</html>", "<html>"})
    EXPECT_NE(test::markup_problem(head + bad), "") << bad;
  EXPECT_TRUE(has_non_finite_word("x=\"nan\""));
  EXPECT_TRUE(has_non_finite_word("-inf"));
  EXPECT_FALSE(has_non_finite_word("inference information"));
}

TEST(Report, TableListsEveryModelWithItsNumbers) {
  const std::string table = render_table(sample());
  for (const char* s :
       {"Model", "Params", "MACs/image", "Latency b1 (ms)", "Latency b32 (ms)", "Train img/s",
        "Train acc (%)", "Test acc (%)", "standard CNN", "1,234,567", "98,765,432", "1.25",
        "31.50", "1,520", "98.2", "96.3", "separable CNN", "160,321", "14,000,111", "0.412",
        "9.75", "4,210", "95.1", "94.0", "MobileNetV2 0.35", "411,050", "7,654,321", "2.50",
        "40.25", "981", "90.0", "88.0"})
    EXPECT_NE(table.find(s), std::string::npos) << s << "\n" << table;
  // One header, one rule, one line per model, all as wide as the header (numbers aligned
  // on the right edge of their columns).
  std::vector<std::string> lines;
  for (std::size_t at = 0, end; (end = table.find('\n', at)) != std::string::npos; at = end + 1)
    lines.push_back(table.substr(at, end - at));
  ASSERT_EQ(lines.size(), 5u) << table;
  EXPECT_EQ(lines[1].find_first_not_of('-'), std::string::npos);
  for (const std::string& line : lines) EXPECT_EQ(line.size(), lines[0].size()) << table;
  EXPECT_EQ(lines[2].rfind("standard CNN", 0), 0u);
}

TEST(Report, PageShowsTheReportAndOneCurvePerModel) {
  const CompareReport report = sample();
  expect_sound_page(report, "sample");
  const std::string page = render_html(report);
  for (const char* s : {"embedded shapes, 6000 train / 1000 test, 32x32 RGB, seed 0",
                        "4 epochs, batch 64, AdamW lr 0.003, cosine",
                        "2 threads, convkit 0.1.0, AVX-512 kernels", "2024-05-01T12:00:00Z",
                        "3x3 convs 32-64-128, BN, ReLU", "1,234,567", "40.25", "88.0"})
    EXPECT_NE(page.find(s), std::string::npos) << s;
  // <table>: a header and one row per model.
  EXPECT_EQ(occurrences(page, "<tr>"), 4u);
  // The curves: a solid test and a dashed train polyline per model, nothing else.
  const std::string_view curves = svg(page, 0);
  EXPECT_EQ(occurrences(curves, "<polyline class=\"test\""), 3u);
  EXPECT_EQ(occurrences(curves, "<polyline class=\"train\""), 3u);
  EXPECT_EQ(occurrences(curves, "<polyline"), 6u);
  EXPECT_EQ(occurrences(curves, "stroke-dasharray"), 3u + 1u);  // + the legend's key
  EXPECT_EQ(occurrences(curves, "<circle"), 3u * 4u * 2u);      // every epoch, both curves
  // The scatter: one labelled point per model on a log axis of decades.
  const std::string_view scatter = svg(page, 1);
  EXPECT_EQ(occurrences(scatter, "<circle"), 3u);
  for (const char* s : {"100k", "1M", "10M", "separable CNN", "(log scale)"})
    EXPECT_NE(scatter.find(s), std::string_view::npos) << s;
  // The latency bars: one per model in each of the two panels, with their values.
  const std::string_view bars = svg(page, 2);
  EXPECT_EQ(occurrences(bars, "<rect x") - occurrences(bars, "width=\"12\" height=\"12\""), 6u);
  for (const char* s : {"batch 1", "batch 32", "0.412", "31.50"})
    EXPECT_NE(bars.find(s), std::string_view::npos) << s;
}

TEST(Report, EscapesEveryTextFromTheReport) {
  CompareReport r = sample();
  r.models[0].name = "A<b>&\"c'";
  r.models[1].description = "</td><script>alert(1)</script>";
  r.dataset = "x & y < z";
  r.budget = "bad bytes \xff\xfe, a NUL \0 and a bell \a"s;
  r.machine = "\xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\x9A\x80";  // valid UTF-8 passes through
  r.date = "'\"";
  expect_sound_page(r, "hostile text");
  const std::string page = render_html(r);
  EXPECT_NE(page.find("A&lt;b&gt;&amp;&quot;c&#39;"), std::string::npos);
  EXPECT_EQ(page.find("A<b>"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_NE(page.find("&lt;/td&gt;&lt;script&gt;"), std::string::npos);
  EXPECT_NE(page.find("x &amp; y &lt; z"), std::string::npos);
  EXPECT_NE(page.find("\xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\x9A\x80"), std::string::npos);
  EXPECT_EQ(page.find('\0'), std::string::npos);
  EXPECT_EQ(page.find('\a'), std::string::npos);
  // The console shows the name as it is.
  EXPECT_NE(render_table(r).find("A<b>&\"c'"), std::string::npos);
}

TEST(Report, EscapeXml) {
  EXPECT_EQ(escape_xml("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(escape_xml("tab\tline\n"), "tab\tline\n");
  EXPECT_EQ(escape_xml("\x01"), "\xEF\xBF\xBD");
  EXPECT_EQ(escape_xml("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(escape_xml("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(escape_xml("\xC3"), "\xEF\xBF\xBD");  // cut short
  EXPECT_EQ(escape_xml("\xC3\xA9"), "\xC3\xA9");
}

TEST(Report, DegenerateReportsGiveFinitePages) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  expect_sound_page(CompareReport{}, "no models");
  EXPECT_NE(render_table(CompareReport{}).find("(no models)"), std::string::npos);
  EXPECT_NE(render_html(CompareReport{}).find("No models were compared."), std::string::npos);

  CompareReport no_epochs = sample();
  for (ModelResult& m : no_epochs.models) m.curve.clear();
  expect_sound_page(no_epochs, "0 epochs");
  EXPECT_EQ(occurrences(render_html(no_epochs), "<polyline"), 0u);

  CompareReport one_epoch = sample();
  for (ModelResult& m : one_epoch.models) m.curve = curve(1, 0.5);
  expect_sound_page(one_epoch, "1 epoch");
  EXPECT_EQ(occurrences(svg(render_html(one_epoch), 0), "<polyline class=\"test\""), 3u);

  CompareReport some_empty = sample();
  some_empty.models[1].curve.clear();
  expect_sound_page(some_empty, "one model without epochs");
  EXPECT_EQ(occurrences(svg(render_html(some_empty), 0), "<polyline class=\"test\""), 2u);

  CompareReport equal = sample();  // every value the same: zero-range axes
  for (ModelResult& m : equal.models) {
    m.params = 1000;
    m.latency_b1_ms = m.latency_b32_ms = 0;
    m.train_accuracy = m.test_accuracy = 1;
    m.curve = {{1, 0, 1, 1}, {2, 0, 1, 1}};
  }
  expect_sound_page(equal, "equal values, accuracy 1, latency 0");
  for (ModelResult& m : equal.models) {
    m.train_accuracy = m.test_accuracy = 0;
    m.params = 0;
    m.curve = {{3, 0, 0, 0}};
  }
  expect_sound_page(equal, "accuracy 0, no parameters");

  CompareReport broken = sample();  // what a caller dividing by zero would hand over
  broken.models[0].latency_b1_ms = nan;
  broken.models[0].latency_b32_ms = inf;
  broken.models[1].train_images_per_s = inf;
  broken.models[1].test_accuracy = nan;
  broken.models[2].curve[1].test_accuracy = nan;
  broken.models[2].curve[2].train_accuracy = -inf;
  broken.models[2].train_seconds = -0.0;
  expect_sound_page(broken, "NaN and inf inputs");
  EXPECT_NE(render_table(broken).find(" -"), std::string::npos);

  CompareReport many = sample();  // more models than colours, huge and tiny numbers
  for (int i = 0; i < 10; ++i) {
    ModelResult m = sample().models[static_cast<std::size_t>(i % 3)];
    m.name += " #" + std::to_string(i) + std::string(100, 'x');
    m.params = std::numeric_limits<std::int64_t>::max() / (i + 1);
    m.latency_b32_ms = 1e12;
    many.models.push_back(m);
  }
  expect_sound_page(many, "many models");
}

}  // namespace
}  // namespace convkit::cli
