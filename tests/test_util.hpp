// Shared test helpers: asserting an exception's type and message, random conv problems.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace convkit::test {

/// Runs fn, expects it to throw E, and expects every fragment in the message.
template <typename E, typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception mentioning '" << fragments.front() << "'";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& f : fragments)
      EXPECT_NE(what.find(f), std::string::npos) << "message lacks '" << f << "': " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

}  // namespace convkit::test
