// Control over which convolution kernel runs: force one (or the reference) and trace choices.
#pragma once

#include <string>
#include <vector>

namespace convkit {

/// Forces every convolution entry point to use the kernel named `name` for the passes it
/// implements and supports, the reference for the others; "ref" forces the reference
/// everywhere and "" restores the default (the fastest kernel that supports the problem).
/// Overrides the environment variable CONVKIT_CONV_KERNEL, which takes the same values.
/// Throws InvalidArgument for a name that is not in the kernel list.
///   convkit::force_conv_kernel("ref");   // debugging: every pass on the naive loops
void force_conv_kernel(const std::string& name);

/// The current override ("" when none).
std::string forced_conv_kernel();

/// When on, every convolution pass prints one line to stderr naming the problem and the
/// kernel that ran, e.g. "convkit: fwd g32mb8ic32ih112oc32oh112kh3ph1 -> dwconv2d_f32_nchw__hwy".
/// Also switched on by the environment variable CONVKIT_VERBOSE=1.
void set_conv_trace(bool on);

/// The names of the kernels every pass could use, fastest first, for element type
/// "f32" or "f64".
std::vector<std::string> conv_kernel_names(const std::string& dtype = "f32");

/// The kernel that ran the most recent convolution pass on this thread ("" before any).
std::string last_conv_kernel();

}  // namespace convkit
