// Shared by the benchmarks: shape files, the kernel view of a problem, traffic and work counts.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "convkit/core/error.hpp"
#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"
#include "kernels/conv/conv_list.hpp"
#include "ops/kernel_params.hpp"

namespace convkit::bench {

/// One problem of a shape file: the first line that names it, and how many lines repeat it.
struct ShapeLine {
  ConvProblem problem;  // contiguous (NCHW) f32; re-layout with with_format()
  std::string name;     // the n"..." name of its first line, or ""
  int count = 1;        // lines holding the same problem (MobileNetV2 repeats shapes)
};

/// The family of a shape file: its file name without folder and ".txt".
inline std::string family_of(const std::string& path) {
  std::string stem = path.substr(path.find_last_of('/') + 1);
  if (stem.size() > 4 && stem.ends_with(".txt")) stem.resize(stem.size() - 4);
  return stem;
}

/// Reads a shape file: one benchdnn-style problem per line, '#' starts a comment, blank
/// lines are skipped; identical problems are merged (first name kept, count incremented).
/// Throws IoError when the file cannot be read, InvalidArgument naming file:line for a bad line.
inline std::vector<ShapeLine> read_shape_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read shape file '" + path + "'");
  std::vector<ShapeLine> lines;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    std::string_view line(text);
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ShapeLine s;
    try {
      s.problem = ConvProblem::parse(line, DType::F32, MemoryFormat::Contiguous, &s.name);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(path + ":" + std::to_string(number) + ": " + e.what());
    }
    bool merged = false;
    for (ShapeLine& seen : lines)
      if (seen.problem == s.problem) {
        ++seen.count;
        merged = true;
      }
    if (!merged) lines.push_back(std::move(s));
  }
  return lines;
}

inline ConvProblem with_format(ConvProblem p, MemoryFormat format) {
  p.format = format;
  return p;
}

inline const char* format_name(MemoryFormat f) {
  return f == MemoryFormat::Contiguous ? "nchw" : "nhwc";
}

/// What the kernel-level benchmarks can run: direct, zero-padded problems (the others go
/// through padded copies or the transposed path, which the public API benchmarks cover).
inline bool is_direct_zero_padded(const ConvProblem& p) {
  return !p.transposed && p.padding_mode == PaddingMode::Zeros;
}

/// The kernels' view of a direct, zero-padded problem on dense tensors of p.format.
inline kernels::ConvParams kernel_params(const ConvProblem& p) { return detail::dense_kernel_params(p); }

/// The kernel dispatch would pick for `pass` of p when nothing is forced.
inline const kernels::ConvKernel<float>& default_kernel(const ConvProblem& p,
                                                        kernels::ConvPass pass) {
  const kernels::ConvParams k = kernel_params(p);
  const auto list = kernels::conv_kernels<float>();
  for (const auto& kernel : list)
    if (kernel.implements(pass) && kernel.supports(k)) return kernel;
  return list.back();
}

inline bool is_reference(std::string_view kernel_name) { return kernel_name.ends_with("__ref"); }

/// Bytes a pass must move at least: its two activation tensors and the weights, once each
/// (for a 3x3 depthwise layer essentially src + dst, the traffic of a copy).
inline double pass_bytes(const ConvProblem& p, kernels::ConvPass) {
  return 4.0 * static_cast<double>(p.src_shape().numel() + p.dst_shape().numel() +
                                   p.wei_shape().numel());
}

/// Floating-point operations of one pass: 2 per multiply-add; every pass has the same count.
inline double pass_flops(const ConvProblem& p) { return 2.0 * static_cast<double>(p.macs()); }

}  // namespace convkit::bench
