// The one list of convolution kernels: dispatch, tests and benchmarks all walk it.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <type_traits>

#include "kernels/conv/conv_params.hpp"
#include "kernels/conv/conv_ref.hpp"
#include "kernels/conv_gemm/conv_gemm.hpp"
#include "kernels/dwconv/dwconv_nchw.hpp"
#include "kernels/dwconv/dwconv_nchw_bwdw.hpp"
#include "kernels/dwconv/dwconv_nhwc.hpp"

namespace convkit::kernels {

/// The three data passes of a convolution; a kernel may implement any subset.
enum class ConvPass { Fwd, BwdData, BwdWeights };

inline const char* pass_name(ConvPass pass) {
  return pass == ConvPass::Fwd ? "fwd" : pass == ConvPass::BwdData ? "bwd_data" : "bwd_weights";
}

/// One implementation of some of a convolution's data passes for element type T.
/// Names follow XNNPACK's convention, implementation after a double underscore
/// ("dwconv2d_f32_nchw_k3s1__hwy"); C++ function names use one underscore because
/// identifiers containing "__" are reserved.
///
/// Contract, which the list-driven test checks for every entry:
/// - `supports(p)` is cheap and decides alone whether the kernel takes p; a null pass
///   pointer means the kernel does not implement that pass.
/// - every pass writes every element of its output (no zero-fill by the caller), reads
///   only through the strides in p, allocates nothing inside its loops (per-thread scratch
///   grown once at the start of a call is fine) and starts no threads of its own. A library
///   it calls may use the OpenMP threads when src/ops/ calls it outside a parallel region
///   (OpenBLAS's OpenMP build does; inside a parallel region it runs single-threaded).
/// - results for one group do not depend on the other groups in the call, nor (for fwd and
///   bwd_data) on the images outside its image group: src/ops/ splits calls over images and
///   group blocks, and a given thread count must give bit-identical results.
/// - `image_group` (null: 1): fwd and bwd_data may compute images together, in fixed groups
///   of image_group(p) images counted from the call's first image (the last one shorter);
///   the value depends on p's pixels and strides only, never on p.mb or p.g, and src/ops/
///   starts every call at a multiple of it, so a group is the same at any thread count.
/// - bwd_weights reduces over the whole batch of its call in a fixed order.
/// - `images_in_double`: bwd_weights sums each image in T and adds the images' sums in
///   double, in image order, rounding once at the end. src/ops/ may then run images on
///   different threads, one call each, and add their results the same way: the bits do not
///   change with the thread count.
/// - `weight_chunk` (null: none): bwd_weights may be called on chunks of weight_chunk(p)
///   images counted from the batch's first image (the last one shorter), each into sums of
///   its own, which src/ops/ adds in double in chunk order, rounding once at the end; the
///   value depends on p's pixels, strides and channels only, never on p.mb or p.g, so a batch
///   of two chunks or more gives the same bits at any thread count.
/// - `channel_vectors`: the kernel runs SIMD vectors along the channels of an NCHW problem
///   (on channels-last copies); src/ops/ then hands it whole 16-channel blocks, as it does
///   for every channels-last depthwise problem, so that a channel's vector, and its bits,
///   do not change with the thread count.
template <typename T>
struct ConvKernel {
  const char* name;
  bool (*supports)(const ConvParams&);
  void (*fwd)(const ConvParams&, const T* src, const T* wei, const T* bias, T* dst);
  void (*bwd_data)(const ConvParams&, const T* diff_dst, const T* wei, T* diff_src);
  void (*bwd_weights)(const ConvParams&, const T* src, const T* diff_dst, T* diff_wei);
  bool images_in_double = false;
  bool channel_vectors = false;
  std::int64_t (*image_group)(const ConvParams&) = nullptr;
  std::int64_t (*weight_chunk)(const ConvParams&) = nullptr;

  bool implements(ConvPass pass) const {
    return pass == ConvPass::Fwd ? fwd != nullptr
         : pass == ConvPass::BwdData ? bwd_data != nullptr
                                     : bwd_weights != nullptr;
  }
};

inline bool supports_everything(const ConvParams&) { return true; }

// One list per family, fastest first; conv_kernels() joins them.

/// Depthwise (icg == 1), float32 only: Highway kernels in src/kernels/dwconv/.
inline constexpr ConvKernel<float> kDwconvKernels[] = {
    // Backward-weights of NCHW planes up to 64x64 through the channels-last kernels on
    // transposed copies (dwconv_nchw_via_nhwc.cpp): 2-9x faster than the row kernels there.
    {"dwconv2d_f32_nchw_bwdw_via_nhwc__hwy", dwconv_nchw_bwdw_via_nhwc_supports, nullptr,
     nullptr, dwconv_nchw_bwdw_via_nhwc_hwy, true, true},
    // Forward and backward-data of NCHW planes up to 64x64 under kernels wider than 7, the
    // same way: 2-3x faster than the NCHW large-kernel path (RepLKNet's 13x13 and 31x31).
    {"dwconv2d_f32_nchw_wide_via_nhwc__hwy", dwconv_nchw_wide_via_nhwc_supports,
     dwconv_nchw_wide_via_nhwc_fwd_hwy, dwconv_nchw_wide_via_nhwc_bwd_data_hwy, nullptr, false,
     true},
    // Backward-weights, NCHW rows (dwconv_nchw_bwdw*.cpp); kw = 7 and up take the large
    // path, which measured faster than row blocking from 7 x 7 on.
    {"dwconv2d_f32_nchw_bwdw_k3s1__hwy", dwconv_nchw_bwdw_kxk_supports<3, 1>, nullptr, nullptr,
     dwconv_nchw_bwdw_kxk_hwy<3, 1>},
    {"dwconv2d_f32_nchw_bwdw_k3s2__hwy", dwconv_nchw_bwdw_kxk_supports<3, 2>, nullptr, nullptr,
     dwconv_nchw_bwdw_kxk_hwy<3, 2>},
    {"dwconv2d_f32_nchw_bwdw_k5s1__hwy", dwconv_nchw_bwdw_kxk_supports<5, 1>, nullptr, nullptr,
     dwconv_nchw_bwdw_kxk_hwy<5, 1>},
    {"dwconv2d_f32_nchw_bwdw_k5s2__hwy", dwconv_nchw_bwdw_kxk_supports<5, 2>, nullptr, nullptr,
     dwconv_nchw_bwdw_kxk_hwy<5, 2>},
    {"dwconv2d_f32_nchw_bwdw_large__hwy", dwconv_nchw_bwdw_large_supports, nullptr, nullptr,
     dwconv_nchw_bwdw_large_hwy},
    {"dwconv2d_f32_nchw_bwdw__hwy", dwconv_nchw_bwdw_generic_supports, nullptr, nullptr,
     dwconv_nchw_bwdw_generic_hwy},
    // Forward and backward-data, NCHW rows (dwconv_nchw_*.cpp).
    {"dwconv2d_f32_nchw_k3s1__hwy", dwconv_nchw_kxk_supports<3, 1>, dwconv_nchw_kxk_fwd_hwy<3, 1>,
     dwconv_nchw_kxk_bwd_data_hwy<3, 1>, nullptr},
    {"dwconv2d_f32_nchw_k3s2__hwy", dwconv_nchw_kxk_supports<3, 2>, dwconv_nchw_kxk_fwd_hwy<3, 2>,
     dwconv_nchw_kxk_bwd_data_hwy<3, 2>, nullptr},
    {"dwconv2d_f32_nchw_k5s1__hwy", dwconv_nchw_kxk_supports<5, 1>, dwconv_nchw_kxk_fwd_hwy<5, 1>,
     dwconv_nchw_kxk_bwd_data_hwy<5, 1>, nullptr},
    {"dwconv2d_f32_nchw_k5s2__hwy", dwconv_nchw_kxk_supports<5, 2>, dwconv_nchw_kxk_fwd_hwy<5, 2>,
     dwconv_nchw_kxk_bwd_data_hwy<5, 2>, nullptr},
    {"dwconv2d_f32_nchw_k7s1__hwy", dwconv_nchw_kxk_supports<7, 1>, dwconv_nchw_kxk_fwd_hwy<7, 1>,
     dwconv_nchw_kxk_bwd_data_hwy<7, 1>, nullptr},
    {"dwconv2d_f32_nchw_k7s2__hwy", dwconv_nchw_kxk_supports<7, 2>, dwconv_nchw_kxk_fwd_hwy<7, 2>,
     dwconv_nchw_kxk_bwd_data_hwy<7, 2>, nullptr},
    {"dwconv2d_f32_nchw_large__hwy", dwconv_nchw_large_supports, dwconv_nchw_large_fwd_hwy,
     dwconv_nchw_large_bwd_data_hwy, nullptr},
    {"dwconv2d_f32_nchw__hwy", dwconv_nchw_generic_supports, dwconv_nchw_generic_fwd_hwy,
     dwconv_nchw_generic_bwd_data_hwy, nullptr},
    // Channels-last (dwconv_nhwc*.cpp): MobileNet's 3x3 layers and wide kernels at unit
    // stride first, then the tap-list engine for every kernel, stride and dilation.
    {"dwconv2d_f32_nhwc_bwdw_k3__hwy", dwconv_nhwc_bwdw_k3_supports, nullptr, nullptr,
     dwconv_nhwc_bwdw_k3_hwy, true},
    {"dwconv2d_f32_nhwc_bwdw_wide__hwy", dwconv_nhwc_wide_supports, nullptr, nullptr,
     dwconv_nhwc_bwdw_wide_hwy, true},
    {"dwconv2d_f32_nhwc_k3__hwy", dwconv_nhwc_k3_supports, dwconv_nhwc_k3_fwd_hwy,
     dwconv_nhwc_k3_bwd_data_hwy, nullptr},
    {"dwconv2d_f32_nhwc_wide__hwy", dwconv_nhwc_wide_supports, dwconv_nhwc_wide_fwd_hwy,
     dwconv_nhwc_wide_bwd_data_hwy, nullptr},
    {"dwconv2d_f32_nhwc__hwy", dwconv_nhwc_supports, dwconv_nhwc_fwd_hwy, dwconv_nhwc_bwd_data_hwy,
     dwconv_nhwc_bwd_weights_hwy, true},
};

/// Dense and grouped (not depthwise) through OpenBLAS: pointwise straight on the tensors,
/// everything else through im2col (src/kernels/conv_gemm/).
template <typename T>
inline constexpr ConvKernel<T> kGemmKernels[] = {
    {sizeof(T) == 4 ? "conv_f32_nchw_1x1__gemm" : "conv_f64_nchw_1x1__gemm",
     conv_1x1_gemm_supports<GemmLayout::Nchw>, conv_1x1_gemm_fwd<T>, conv_1x1_gemm_bwd_data<T>,
     conv_1x1_gemm_bwd_weights<T>, false, false, nullptr, conv_1x1_gemm_weight_chunk},
    {sizeof(T) == 4 ? "conv_f32_nhwc_1x1__gemm" : "conv_f64_nhwc_1x1__gemm",
     conv_1x1_gemm_supports<GemmLayout::Nhwc>, conv_1x1_gemm_fwd<T>, conv_1x1_gemm_bwd_data<T>,
     conv_1x1_gemm_bwd_weights<T>, false, false, conv_1x1_gemm_image_group,
     conv_1x1_gemm_weight_chunk},
    {sizeof(T) == 4 ? "conv_f32_im2col__gemm" : "conv_f64_im2col__gemm",
     conv_im2col_gemm_supports, conv_im2col_gemm_fwd<T>, conv_im2col_gemm_bwd_data<T>,
     conv_im2col_gemm_bwd_weights<T>},
};

/// The reference: takes every problem and pass; always last.
template <typename T>
inline constexpr ConvKernel<T> kRefKernel = {sizeof(T) == 4 ? "conv_f32__ref" : "conv_f64__ref",
                                             supports_everything, conv_fwd_ref<T>,
                                             conv_bwd_data_ref<T>, conv_bwd_weights_ref<T>};

namespace detail {
template <typename T, std::size_t... N>
constexpr auto join_kernels(const ConvKernel<T> (&... lists)[N]) {
  std::array<ConvKernel<T>, (N + ... + 0) + 1> all{};
  std::size_t i = 0;
  ((std::copy(std::begin(lists), std::end(lists), all.begin() + static_cast<std::ptrdiff_t>(i)),
    i += N),
   ...);
  all[i] = kRefKernel<T>;
  return all;
}
}  // namespace detail

/// Every kernel for element type T, fastest first; the last entry is the reference.
/// Dispatch takes the first entry that implements the pass and supports the problem.
template <typename T>
std::span<const ConvKernel<T>> conv_kernels() {
  if constexpr (std::is_same_v<T, float>) {
    static constexpr auto list = detail::join_kernels<float>(kDwconvKernels, kGemmKernels<float>);
    return list;
  } else {
    static constexpr auto list = detail::join_kernels<T>(kGemmKernels<T>);
    return list;
  }
}

}  // namespace convkit::kernels
