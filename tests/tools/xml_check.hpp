// A small well-formedness check for the HTML the convkit command writes (polyglot markup):
// every tag closed and nested, attributes quoted, entities known, no stray '<' or '&'.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace convkit::test {

/// "" when `text` (after an optional <!DOCTYPE html> line) is well-formed XML with one root
/// element; otherwise what is wrong and the byte offset where.
inline std::string xml_problem(std::string_view text) {
  std::vector<std::string> open;
  std::size_t i = 0;
  int roots = 0;
  const auto at = [&](std::size_t pos) { return " at byte " + std::to_string(pos); };
  const auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
           c == '.';
  };
  const auto check_entity = [&](std::size_t pos) -> std::string {
    const std::size_t end = text.find(';', pos);
    if (end == std::string_view::npos || end - pos > 10) return "bare '&'" + at(pos);
    const std::string_view e = text.substr(pos + 1, end - pos - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return "";
    if (e.size() > 1 && e[0] == '#') return "";
    return "unknown entity &" + std::string(e) + ";" + at(pos);
  };
  if (text.starts_with("<!DOCTYPE html>")) i = text.find('>') + 1;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '&') {
      if (auto p = check_entity(i); !p.empty()) return p;
      ++i;
      continue;
    }
    if (c != '<') {
      if (c == '>') return "stray '>'" + at(i);
      if (open.empty() && !std::isspace(static_cast<unsigned char>(c)))
        return "text outside the root element" + at(i);
      ++i;
      continue;
    }
    if (text.substr(i, 4) == "<!--") {
      const std::size_t end = text.find("-->", i + 4);
      if (end == std::string_view::npos) return "unclosed comment" + at(i);
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < text.size() && text[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < text.size() && name_char(text[j])) ++j;
    if (j == name_start) return "'<' without a tag name" + at(i);
    const std::string name(text.substr(name_start, j - name_start));
    if (closing) {
      if (j >= text.size() || text[j] != '>') return "malformed closing tag </" + name + at(i);
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">") + at(i);
      open.pop_back();
      i = j + 1;
      continue;
    }
    // Attributes: name="value" or name='value', separated by spaces.
    bool self_closing = false;
    while (true) {
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
      if (j >= text.size()) return "unterminated tag <" + name + at(i);
      if (text[j] == '>') break;
      if (text[j] == '/' && j + 1 < text.size() && text[j + 1] == '>') {
        self_closing = true;
        ++j;
        break;
      }
      const std::size_t attr = j;
      while (j < text.size() && name_char(text[j])) ++j;
      if (j == attr || j >= text.size() || text[j] != '=')
        return "attribute without a quoted value in <" + name + ">" + at(attr);
      ++j;
      const char quote = j < text.size() ? text[j] : '\0';
      if (quote != '"' && quote != '\'') return "unquoted attribute in <" + name + ">" + at(j);
      const std::size_t end = text.find(quote, j + 1);
      if (end == std::string_view::npos) return "unterminated attribute" + at(j);
      for (std::size_t k = j + 1; k < end; ++k) {
        if (text[k] == '<') return "'<' inside an attribute" + at(k);
        if (text[k] == '&')
          if (auto p = check_entity(k); !p.empty()) return p;
      }
      j = end + 1;
    }
    if (open.empty() && ++roots > 1) return "second root element <" + name + ">" + at(i);
    if (!self_closing) open.push_back(name);
    i = j + 1;
    // The text of <style> is CSS: it may hold '>' (child selectors) but never '<'.
    if (!self_closing && name == "style") {
      const std::size_t end = text.find("</style>", i);
      if (end == std::string_view::npos) return "unclosed <style>" + at(i);
      if (text.substr(i, end - i).find('<') != std::string_view::npos) return "'<' in <style>" + at(i);
      i = end;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return "";
}

}  // namespace convkit::test
