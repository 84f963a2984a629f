// Internal: contiguous working views of a parameter and its gradient for the update loops.
#pragma once

#include "convkit/autograd/variable.hpp"
#include "convkit/core/tensor.hpp"

namespace convkit::optim::detail {

/// A parameter's value and gradient as contiguous tensors of the parameter's dtype, so that
/// an update can walk both (and the contiguous state buffers) with one flat index. When the
/// parameter itself is contiguous `value` is its own storage and the update happens in place;
/// otherwise (e.g. a channels-last weight) `value` is a copy that commit() writes back.
struct DenseParam {
  explicit DenseParam(const ag::Variable& p) : param(p) {
    const Tensor& v = p.value();
    in_place = v.is_contiguous();
    value = in_place ? v : v.contiguous();
    grad = p.grad().contiguous();
    if (grad.dtype() != v.dtype()) grad = grad.to(v.dtype());
  }
  void commit() const {
    if (!in_place) param.set_value(value);
  }
  std::int64_t numel() const { return value.numel(); }

  ag::Variable param;
  Tensor value, grad;
  bool in_place = true;
};

}  // namespace convkit::optim::detail
