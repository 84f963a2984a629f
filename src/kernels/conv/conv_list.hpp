// The one list of convolution kernels: dispatch, tests and benchmarks all walk it.
#pragma once

#include <span>

#include "kernels/conv/conv_params.hpp"
#include "kernels/conv/conv_ref.hpp"

namespace convkit::kernels {

/// Kernel names follow XNNPACK's convention, implementation after a double underscore
/// ("conv_f32__ref"); the C++ functions use one underscore because identifiers containing
/// "__" are reserved.
/// One implementation of a convolution's three data passes for element type T. `supports`
/// says which problems it takes; the list is ordered fastest first and ends with the
/// reference, which takes every problem.
template <typename T>
struct ConvKernel {
  const char* name;
  bool (*supports)(const ConvParams&);
  void (*fwd)(const ConvParams&, const T* src, const T* wei, const T* bias, T* dst);
  void (*bwd_data)(const ConvParams&, const T* diff_dst, const T* wei, T* diff_src);
  void (*bwd_weights)(const ConvParams&, const T* src, const T* diff_dst, T* diff_wei);
};

inline bool supports_everything(const ConvParams&) { return true; }

template <typename T>
std::span<const ConvKernel<T>> conv_kernels() {
  static constexpr ConvKernel<T> list[] = {
      // Optimized kernels go above this line, fastest first.
      {sizeof(T) == 4 ? "conv_f32__ref" : "conv_f64__ref", supports_everything,
       conv_fwd_ref<T>, conv_bwd_data_ref<T>, conv_bwd_weights_ref<T>},
  };
  return list;
}

}  // namespace convkit::kernels
