// A well-formedness check for the HTML the convkit command writes (polyglot markup): the
// report tests and the command's end-to-end tests both run it over whole pages.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace convkit::test {

/// "" when `page` after its "<!DOCTYPE html>" line is well-formed XML with one root element:
/// tags nested and closed, attributes quoted, only XML's entities and character references,
/// no '<' or '>' in text (the page escapes both), no '<' or '&' in <style>. Otherwise the
/// first problem and its byte offset.
inline std::string markup_problem(std::string_view page) {
  const std::string_view doctype = "<!DOCTYPE html>\n";
  if (!page.starts_with(doctype)) return "no <!DOCTYPE html> line";
  std::vector<std::string_view> open;
  int roots = 0;
  std::size_t i = doctype.size();
  auto where = [&](std::size_t at) { return " at byte " + std::to_string(at); };
  auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':';
  };
  auto entity_ok = [&](std::size_t at) {  // page[at] == '&'
    const std::size_t end = page.find(';', at);
    if (end == std::string_view::npos) return false;
    const std::string_view e = page.substr(at + 1, end - at - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return true;
    if (e.size() < 2 || e[0] != '#') return false;
    const bool hex = e[1] == 'x';
    if (e.size() < (hex ? 3u : 2u)) return false;
    for (char c : e.substr(hex ? 2 : 1))
      if (!(hex ? std::isxdigit(static_cast<unsigned char>(c))
                : std::isdigit(static_cast<unsigned char>(c))))
        return false;
    return true;
  };
  while (i < page.size()) {
    const char c = page[i];
    if (c == '&') {
      if (!entity_ok(i)) return "bad entity" + where(i);
      ++i;
    } else if (c == '>') {
      return "stray '>'" + where(i);
    } else if (c != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(c)))
        return "text outside the root" + where(i);
      ++i;
    } else if (page.substr(i, 2) == "</") {
      std::size_t j = i + 2;
      while (j < page.size() && is_name(page[j])) ++j;
      const std::string_view name = page.substr(i + 2, j - i - 2);
      if (j >= page.size() || page[j] != '>') return "bad end tag" + where(i);
      if (open.empty() || open.back() != name)
        return "</" + std::string(name) + "> does not close the open tag" + where(i);
      open.pop_back();
      i = j + 1;
    } else {
      std::size_t j = i + 1;
      while (j < page.size() && is_name(page[j])) ++j;
      const std::string_view name = page.substr(i + 1, j - i - 1);
      if (name.empty()) return "stray '<'" + where(i);
      bool empty_element = false;
      for (;;) {  // attributes: space, name, '=', quoted value
        const std::size_t before = j;
        while (j < page.size() && std::isspace(static_cast<unsigned char>(page[j]))) ++j;
        if (j >= page.size()) return "unterminated tag" + where(i);
        if (page[j] == '>') break;
        if (page.substr(j, 2) == "/>") {
          empty_element = true;
          ++j;
          break;
        }
        if (j == before) return "no space before an attribute" + where(j);
        const std::size_t attr = j;
        while (j < page.size() && is_name(page[j])) ++j;
        if (j == attr || j + 1 >= page.size() || page[j] != '=') return "bad attribute" + where(j);
        const char quote = page[j + 1];
        if (quote != '"' && quote != '\'') return "unquoted attribute" + where(j);
        const std::size_t end = page.find(quote, j + 2);
        if (end == std::string_view::npos) return "unterminated attribute" + where(j);
        for (std::size_t k = j + 2; k < end; ++k) {
          if (page[k] == '<') return "'<' in an attribute" + where(k);
          if (page[k] == '&' && !entity_ok(k)) return "bad entity" + where(k);
        }
        j = end + 1;
      }
      if (open.empty() && ++roots > 1) return "a second root element" + where(i);
      i = j + 1;
      if (empty_element) continue;
      open.push_back(name);
      if (name == "style") {  // CSS: '>' is a selector there
        const std::size_t end = page.find("</style>", i);
        if (end == std::string_view::npos) return "unclosed <style>";
        if (page.substr(i, end - i).find_first_of("<&") != std::string_view::npos)
          return "'<' or '&' in <style>" + where(i);
        i = end;
      }
    }
  }
  if (!open.empty()) return "<" + std::string(open.back()) + "> is never closed";
  return roots == 1 ? "" : "no root element";
}

}  // namespace convkit::test
