// Exception types thrown by convkit: every refusal names the argument and the values it got.
#pragma once

#include <stdexcept>
#include <string>

namespace convkit {

/// Base of every exception convkit throws on bad input.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// An argument, a shape or a combination of options that is not valid.
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what) : Error(what) {}
};

/// A file or byte buffer that is malformed (safetensors, checkpoints, data sets).
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& what) : Error(what) {}
};

/// A file that cannot be opened, read, written or renamed.
class IoError : public Error {
 public:
  explicit IoError(const std::string& what) : Error(what) {}
};

}  // namespace convkit
