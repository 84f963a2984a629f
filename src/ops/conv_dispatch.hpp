// Kernel choice and thread split for the convolution entry points (src/ops/conv.cpp).
#pragma once

#include "convkit/ops/conv_problem.hpp"
#include "kernels/conv/conv_list.hpp"

namespace convkit::detail {

/// The kernel that runs `pass` of problem k: the forced one when force_conv_kernel names a
/// kernel that supports it, else the first in the list that supports it (the reference last).
/// Records the choice for last_conv_kernel() and prints it when tracing is on; `p` is only
/// for that line.
/// Records a kernel that ran outside the list (the sparse forward) for last_conv_kernel()
/// and the trace, as pick_conv_kernel does.
void note_conv_kernel(const char* name, const char* pass, const ConvProblem& p);

template <typename T>
const kernels::ConvKernel<T>& pick_conv_kernel(const kernels::ConvParams& k,
                                               kernels::ConvPass pass, const ConvProblem& p);

/// Runs the passes on threads. fwd and bwd_data split into (image, group block) tasks, whose
/// outputs are disjoint, so any split gives the same bits; bwd_weights splits into group
/// blocks, each reduced over the whole batch by one call, or into chunks of images fixed by
/// the problem (ConvKernel::images_in_double, ConvKernel::weight_chunk) whose sums are added
/// in double in chunk order, so the result does not depend on the thread count either. One
/// exception: a single task (one image and group block, or bwd_weights of one block and one
/// chunk) runs outside a parallel region, where OpenBLAS's OpenMP build splits the GEMM over
/// the threads itself; its bits are then reproducible for a given thread count but may
/// differ in the last place between counts.
template <typename T>
void run_conv_fwd(const ConvProblem& p, const kernels::ConvParams& k, const T* src, const T* wei,
                  const T* bias, T* dst);
template <typename T>
void run_conv_bwd_data(const ConvProblem& p, const kernels::ConvParams& k, const T* diff_dst,
                       const T* wei, T* diff_src);
template <typename T>
void run_conv_bwd_weights(const ConvProblem& p, const kernels::ConvParams& k, const T* src,
                          const T* diff_dst, T* diff_wei);

}  // namespace convkit::detail
