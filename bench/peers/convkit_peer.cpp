// convkit's side of the peer run: describes the shape files' problems for the other drivers
// and times convkit's public API (best of N, NCHW and channels-last) as JSON lines.
//
//   convkit_peer describe FILE...                       -> one JSON array of problems
//   convkit_peer time --threads N [--min-time S] [--max-reps R] [--ref-macs M] FILE...
// "time" reports impl "convkit" (the public API, which allocates each output) and, for
// direct zero-padded problems, "convkit_kernel" (the same dispatch and thread split on
// tensors allocated once), so that allocation costs show as the gap between the two.
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../bench_util.hpp"
#include "best_of.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "ops/conv_dispatch.hpp"

namespace convkit::bench {
namespace {

using kernels::ConvPass;

std::vector<std::int64_t> first(const std::array<std::int64_t, 3>& a, int nd) {
  return {a.begin(), a.begin() + nd};
}

void describe(const std::vector<std::string>& files) {
  fmt::print("[\n");
  bool comma = false;
  for (const std::string& file : files)
    for (const ShapeLine& s : read_shape_file(file)) {
      const ConvProblem& p = s.problem;
      const int nd = p.ndims;
      fmt::print(
          "{}  {{\"family\": \"{}\", \"name\": \"{}\", \"count\": {}, \"str\": \"{}\", "
          "\"nd\": {}, \"mb\": {}, \"ic\": {}, \"oc\": {}, \"g\": {}, \"in\": [{}], "
          "\"out\": [{}], \"k\": [{}], \"stride\": [{}], \"pad_l\": [{}], \"pad_r\": [{}], "
          "\"dil\": [{}], \"macs\": {}, \"src\": {}, \"wei\": {}, \"dst\": {}, "
          "\"direct_zero_padded\": {}}}",
          comma ? ",\n" : "", family_of(file), s.name, s.count, p.str(), nd, p.mb, p.ic, p.oc,
          p.g, fmt::join(first(p.in, nd), ", "), fmt::join(first(p.out, nd), ", "),
          fmt::join(first(p.k, nd), ", "), fmt::join(first(p.stride, nd), ", "),
          fmt::join(first(p.pad_before, nd), ", "), fmt::join(first(p.pad_after, nd), ", "),
          fmt::join(first(p.dilation, nd), ", "), p.macs(), p.src_shape().numel(),
          p.wei_shape().numel(), p.dst_shape().numel(), is_direct_zero_padded(p));
      comma = true;
    }
  fmt::print("\n]\n");
}

using peers::best_of;
using peers::Timing;

// The pass through the library's dispatch and thread split into outputs allocated once.
Timing time_kernel_only(const ConvProblem& p, ConvPass pass, const Tensor& src, const Tensor& wei,
                        const Tensor& diff_dst, double min_time, int max_reps) {
  const kernels::ConvParams k = kernel_params(p);
  const Tensor dst = Tensor::zeros(p.dst_shape(), DType::F32, p.format);
  const Tensor diff_src = Tensor::zeros(p.src_shape(), DType::F32, p.format);
  const Tensor diff_wei = Tensor::zeros(p.wei_shape());
  return best_of(
      [&] {
        if (pass == ConvPass::Fwd)
          detail::run_conv_fwd<float>(p, k, src.data<float>(), wei.data<float>(), nullptr,
                                      dst.data<float>());
        else if (pass == ConvPass::BwdData)
          detail::run_conv_bwd_data<float>(p, k, diff_dst.data<float>(), wei.data<float>(),
                                           diff_src.data<float>());
        else
          detail::run_conv_bwd_weights<float>(p, k, src.data<float>(), diff_dst.data<float>(),
                                              diff_wei.data<float>());
      },
      min_time, max_reps);
}

void time_all(const std::vector<std::string>& files, int threads, double min_time, int max_reps,
              double ref_macs) {
  omp_set_num_threads(threads);
  for (const std::string& file : files)
    for (const ShapeLine& s : read_shape_file(file))
      for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        const ConvProblem p = with_format(s.problem, f);
        const Tensor src = Tensor::uniform(p.src_shape(), -1, 1, 1, DType::F32, f);
        const Tensor wei = Tensor::uniform(p.wei_shape(), -1, 1, 2);
        const Tensor diff_dst = Tensor::uniform(p.dst_shape(), -1, 1, 3, DType::F32, f);
        for (const ConvPass pass : {ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdWeights}) {
          const std::string head =
              fmt::format("{{\"impl\": \"convkit\", \"str\": \"{}\", \"format\": \"{}\", "
                          "\"pass\": \"{}\", \"threads\": {}",
                          p.str(), format_name(f), kernels::pass_name(pass), threads);
          const bool direct = is_direct_zero_padded(p);
          const std::string kernel = direct ? default_kernel(p, pass).name : "";
          if (direct && is_reference(kernel) && static_cast<double>(p.macs()) > ref_macs) {
            fmt::print("{}, \"skipped\": \"only the reference kernel takes it ({} MACs > "
                       "--ref-macs {})\"}}\n",
                       head, p.macs(), ref_macs);
            continue;
          }
          const Timing t = best_of(
              [&] {
                Tensor out = pass == ConvPass::Fwd       ? conv_forward(p, src, wei)
                             : pass == ConvPass::BwdData ? conv_backward_data(p, diff_dst, wei)
                                                         : conv_backward_weights(p, src, diff_dst);
                (void)out;
              },
              min_time, max_reps);
          fmt::print("{}, \"seconds\": {:.6e}, \"reps\": {}, \"kernel\": \"{}\"}}\n", head, t.best,
                     t.reps, last_conv_kernel());
          if (direct) {
            const Timing k = time_kernel_only(p, pass, src, wei, diff_dst, min_time, max_reps);
            fmt::print("{{\"impl\": \"convkit_kernel\"{}, \"seconds\": {:.6e}, \"reps\": {}, "
                       "\"kernel\": \"{}\"}}\n",
                       head.substr(head.find(',')), k.best, k.reps, last_conv_kernel());
          }
          std::fflush(stdout);
        }
      }
}

int usage(const std::string& why) {
  std::cerr << "convkit_peer: " << why
            << "\nusage: convkit_peer describe FILE...\n"
               "       convkit_peer time --threads N [--min-time S] [--max-reps R] "
               "[--ref-macs M] FILE...\n";
  return 2;
}

}  // namespace
}  // namespace convkit::bench

int main(int argc, char** argv) {
  using namespace convkit::bench;
  if (argc < 2) return usage("no command");
  const std::string command = argv[1];
  int threads = 1, max_reps = 10;
  double min_time = 0.5, ref_macs = 1e7;  // the reference does about 50M MACs/s
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--min-time" && has_value) min_time = std::atof(argv[++i]);
    else if (arg == "--max-reps" && has_value) max_reps = std::atoi(argv[++i]);
    else if (arg == "--ref-macs" && has_value) ref_macs = std::atof(argv[++i]);
    else if (arg.starts_with("--")) return usage("unknown option '" + arg + "'");
    else files.push_back(arg);
  }
  if (files.empty()) return usage("no shape files");
  if (threads < 1 || max_reps < 1) return usage("--threads and --max-reps must be positive");
  try {
    if (command == "describe") describe(files);
    else if (command == "time") time_all(files, threads, min_time, max_reps, ref_macs);
    else return usage("unknown command '" + command + "'");
  } catch (const convkit::Error& e) {
    std::cerr << "convkit_peer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
