// Google Benchmark over every kernel in the conv kernel list x every problem of the shape
// files x NCHW / channels-last x fwd, bwd_data, bwd_weights, plus fwd+bwd through dispatch.
//
//   convkit_bench [benchmark flags] [--shapes=a.txt,b.txt] [--ref-macs=N]
//   names: <family>/<pass>/<nchw|nhwc>/<kernel>/<problem>
//
// Kernels run through the same threaded split as the public API (src/ops/conv_dispatch), on
// tensors allocated once, so the time is the kernels' and the split's, without the output
// allocation of conv_forward(). Threads: OMP_NUM_THREADS. Counters GB and GFLOP are per
// second (printed "GB=12.3/s"); the reference runs only on problems of <= --ref-macs MACs.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "ops/conv_dispatch.hpp"

namespace convkit::bench {
namespace {

using kernels::ConvPass;

// Which work one benchmark does: one pass, or all three in a training step's order.
enum class Work { Fwd, BwdData, BwdWeights, FwdBwd };

const char* work_name(Work w) {
  return w == Work::Fwd ? "fwd" : w == Work::BwdData ? "bwd_data"
                                : w == Work::BwdWeights ? "bwd_weights" : "fwd_bwd";
}

struct Case {
  ConvProblem p;
  Work work;
  std::string kernel;  // forced kernel name; "" for dispatch's choice (fwd_bwd)
};

void run_case(benchmark::State& state, const Case& c) {
  const ConvProblem& p = c.p;
  const kernels::ConvParams k = kernel_params(p);
  const Tensor src = Tensor::uniform(p.src_shape(), -1, 1, 1, DType::F32, p.format);
  const Tensor wei = Tensor::uniform(p.wei_shape(), -1, 1, 2);
  const Tensor dst = Tensor::uniform(p.dst_shape(), -1, 1, 3, DType::F32, p.format);
  const Tensor diff_src = Tensor::uniform(p.src_shape(), -1, 1, 4, DType::F32, p.format);
  const Tensor diff_wei = Tensor::uniform(p.wei_shape(), -1, 1, 5);
  force_conv_kernel(c.kernel);
  const auto once = [&](Work w) {
    if (w == Work::Fwd)
      detail::run_conv_fwd<float>(p, k, src.data<float>(), wei.data<float>(), nullptr,
                                  dst.data<float>());
    else if (w == Work::BwdData)
      detail::run_conv_bwd_data<float>(p, k, dst.data<float>(), wei.data<float>(),
                                       diff_src.data<float>());
    else
      detail::run_conv_bwd_weights<float>(p, k, src.data<float>(), dst.data<float>(),
                                          diff_wei.data<float>());
  };
  const auto step = [&] {
    if (c.work == Work::FwdBwd) {
      once(Work::Fwd);
      once(Work::BwdData);
      once(Work::BwdWeights);
    } else {
      once(c.work);
    }
  };
  step();  // warm-up; also checks that the forced kernel really ran
  if (!c.kernel.empty() && last_conv_kernel() != c.kernel) {
    force_conv_kernel("");
    state.SkipWithError(("kernel " + c.kernel + " did not run; " + last_conv_kernel() + " did").c_str());
    return;
  }
  for (auto _ : state) {
    step();
    benchmark::ClobberMemory();
  }
  force_conv_kernel("");
  const double passes = c.work == Work::FwdBwd ? 3.0 : 1.0;
  const double n = static_cast<double>(state.iterations());
  state.counters["GB"] = benchmark::Counter(
      passes * pass_bytes(p, ConvPass::Fwd) * n / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP"] =
      benchmark::Counter(passes * pass_flops(p) * n / 1e9, benchmark::Counter::kIsRate);
  state.counters["threads"] = omp_get_max_threads();
  state.SetLabel(c.kernel.empty() ? "dispatch" : c.kernel);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Every (kernel, problem, layout, pass) that the kernel takes; the reference only on
// problems of at most ref_macs multiply-adds (it is slow, and only a baseline).
void register_all(const std::vector<std::string>& files, double ref_macs) {
  const auto list = kernels::conv_kernels<float>();
  for (const std::string& file : files) {
    const std::string family = family_of(file);
    for (const ShapeLine& line : read_shape_file(file)) {
      if (!is_direct_zero_padded(line.problem)) continue;
      for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        const ConvProblem p = with_format(line.problem, f);
        const kernels::ConvParams k = kernel_params(p);
        const bool small = static_cast<double>(p.macs()) <= ref_macs;
        const auto add = [&](Work w, const std::string& kernel) {
          const std::string name = family + "/" + work_name(w) + "/" + format_name(f) + "/" +
                                   (kernel.empty() ? "dispatch" : kernel) + "/" + p.str();
          benchmark::RegisterBenchmark(name.c_str(), [c = Case{p, w, kernel}](benchmark::State& s) {
            run_case(s, c);
          })->UseRealTime()->Unit(benchmark::kMillisecond);
        };
        for (const auto& kernel : list)
          for (const Work w : {Work::Fwd, Work::BwdData, Work::BwdWeights}) {
            const ConvPass pass = w == Work::Fwd       ? ConvPass::Fwd
                                  : w == Work::BwdData ? ConvPass::BwdData
                                                       : ConvPass::BwdWeights;
            if (!kernel.implements(pass) || !kernel.supports(k)) continue;
            if (is_reference(kernel.name) && !small) continue;
            add(w, kernel.name);
          }
        bool any_ref = false;
        for (const ConvPass pass : {ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdWeights})
          any_ref = any_ref || is_reference(default_kernel(p, pass).name);
        if (!any_ref || small) add(Work::FwdBwd, "");
      }
    }
  }
}

}  // namespace
}  // namespace convkit::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string shapes = CONVKIT_BENCH_SHAPES;  // default: every file of bench/shapes
  double ref_macs = 1e7;  // the reference does about 50M MACs/s
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--shapes=")) {
      shapes = arg.substr(9);
    } else if (arg.starts_with("--ref-macs=")) {
      ref_macs = std::atof(arg.c_str() + 11);
    } else {
      std::cerr << "convkit_bench: unknown argument '" << arg
                << "' (expected --shapes=a.txt,b.txt, --ref-macs=N or benchmark flags)\n";
      return 2;
    }
  }
  try {
    convkit::bench::register_all(convkit::bench::split(shapes, ','), ref_macs);
  } catch (const convkit::Error& e) {
    std::cerr << "convkit_bench: " << e.what() << "\n";
    return 2;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
