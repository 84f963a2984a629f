// The hook through which a running summary() sees every module call (internal).
#pragma once

#include "convkit/core/shape.hpp"

namespace convkit::nn {
class Module;
}

namespace convkit::nn::detail {

/// Receives (module, input shape, output shape) for each Module::operator() call on this
/// thread while installed.
class CallRecorder {
 public:
  virtual ~CallRecorder() = default;
  virtual void record(const Module* module, const Shape& in, const Shape& out) = 0;
};

/// The recorder installed on this thread, or nullptr.
CallRecorder*& active_recorder();

}  // namespace convkit::nn::detail
