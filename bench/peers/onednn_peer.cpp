// oneDNN's side of the peer run: forward, backward-data and backward-weights primitives in
// oneDNN's preferred layouts (format_tag::any), timing execution only (no reorders), as
// JSON lines. A peer for benchmarks only; convkit itself never needs oneDNN.
//
//   onednn_peer --threads N [--min-time S] [--max-reps R] PROBLEMS.txt
//   PROBLEMS.txt: one problem per line, "str nd mb ic oc g" then nd values each of
//   in, out, k, stride, pad_l, pad_r, dilation (convkit's dilation, 1 = dense),
//   as run.py writes it from `convkit_peer describe`.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#include "best_of.hpp"

namespace {

using dnnl::memory;
using dims = memory::dims;

struct Problem {
  std::string str;
  int nd = 2;
  long mb = 0, ic = 0, oc = 0, g = 1;
  dims in, out, k, stride, pad_l, pad_r, dilation;
};

bool read_problem(const std::string& line, Problem& p) {
  std::istringstream s(line);
  if (!(s >> p.str >> p.nd >> p.mb >> p.ic >> p.oc >> p.g)) return false;
  for (dims* d : {&p.in, &p.out, &p.k, &p.stride, &p.pad_l, &p.pad_r, &p.dilation}) {
    d->resize(static_cast<std::size_t>(p.nd));
    for (auto& v : *d)
      if (!(s >> v)) return false;
  }
  return true;
}

using peers::best_of;
using peers::Timing;

memory filled(const memory::desc& md, const dnnl::engine& eng, float value) {
  memory m(md, eng);
  auto* f = static_cast<float*>(m.get_data_handle());
  const std::size_t n = md.get_size() / sizeof(float);
  for (std::size_t i = 0; i < n; ++i) f[i] = value * static_cast<float>(1 + i % 13);
  return m;
}

void run(const Problem& p, int threads, double min_time, int max_reps) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const auto cat = [](dims a, const dims& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const dims src_d = cat({p.mb, p.ic}, p.in), dst_d = cat({p.mb, p.oc}, p.out);
  const dims wei_d = p.g > 1 ? cat({p.g, p.oc / p.g, p.ic / p.g}, p.k) : cat({p.oc, p.ic}, p.k);
  dims dil = p.dilation;
  for (auto& d : dil) d -= 1;  // oneDNN counts skipped taps
  const auto any = memory::format_tag::any;
  const auto f32 = memory::data_type::f32;
  const memory::desc src_md(src_d, f32, any), wei_md(wei_d, f32, any), dst_md(dst_d, f32, any);
  const auto alg = dnnl::algorithm::convolution_direct;

  const dnnl::convolution_forward::primitive_desc fwd_pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md, wei_md,
                                      dst_md, p.stride, dil, p.pad_l, p.pad_r),
      eng);
  const dnnl::convolution_backward_data::primitive_desc bwd_d_pd(
      dnnl::convolution_backward_data::desc(alg, src_md, wei_md, dst_md, p.stride, dil, p.pad_l,
                                            p.pad_r),
      eng, fwd_pd);
  const dnnl::convolution_backward_weights::primitive_desc bwd_w_pd(
      dnnl::convolution_backward_weights::desc(alg, src_md, wei_md, dst_md, p.stride, dil,
                                               p.pad_l, p.pad_r),
      eng, fwd_pd);

  // Each pass gets memories in the layouts its own primitive chose: no reorder is timed.
  const memory src = filled(fwd_pd.src_desc(), eng, 0.01f);
  const memory wei = filled(fwd_pd.weights_desc(), eng, 0.02f);
  const memory dst = filled(fwd_pd.dst_desc(), eng, 0.f);
  const memory b_diff_dst = filled(bwd_d_pd.diff_dst_desc(), eng, 0.03f);
  const memory b_wei = filled(bwd_d_pd.weights_desc(), eng, 0.02f);
  const memory b_diff_src = filled(bwd_d_pd.diff_src_desc(), eng, 0.f);
  const memory w_src = filled(bwd_w_pd.src_desc(), eng, 0.01f);
  const memory w_diff_dst = filled(bwd_w_pd.diff_dst_desc(), eng, 0.03f);
  const memory w_diff_wei = filled(bwd_w_pd.diff_weights_desc(), eng, 0.f);

  const dnnl::convolution_forward fwd(fwd_pd);
  const dnnl::convolution_backward_data bwd_d(bwd_d_pd);
  const dnnl::convolution_backward_weights bwd_w(bwd_w_pd);

  struct Pass {
    const char* name;
    const dnnl::primitive* prim;
    std::unordered_map<int, memory> args;
    std::string impl;
  };
  const Pass passes[] = {
      {"fwd", &fwd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}},
       fwd_pd.impl_info_str()},
      {"bwd_data", &bwd_d,
       {{DNNL_ARG_DIFF_DST, b_diff_dst}, {DNNL_ARG_WEIGHTS, b_wei}, {DNNL_ARG_DIFF_SRC, b_diff_src}},
       bwd_d_pd.impl_info_str()},
      {"bwd_weights", &bwd_w,
       {{DNNL_ARG_SRC, w_src}, {DNNL_ARG_DIFF_DST, w_diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, w_diff_wei}},
       bwd_w_pd.impl_info_str()},
  };
  for (const Pass& pass : passes) {
    const Timing t = best_of(
        [&] {
          pass.prim->execute(strm, pass.args);
          strm.wait();
        },
        min_time, max_reps);
    std::printf(
        "{\"impl\": \"onednn\", \"str\": \"%s\", \"format\": \"any\", \"pass\": \"%s\", "
        "\"threads\": %d, \"seconds\": %.6e, \"reps\": %d, \"kernel\": \"%s\"}\n",
        p.str.c_str(), pass.name, threads, t.best, t.reps, pass.impl.c_str());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, max_reps = 10;
  double min_time = 0.5;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--min-time" && i + 1 < argc) min_time = std::atof(argv[++i]);
    else if (arg == "--max-reps" && i + 1 < argc) max_reps = std::atoi(argv[++i]);
    else file = arg;
  }
  std::ifstream in(file);
  if (!in || threads < 1 || max_reps < 1) {
    std::fprintf(stderr, "usage: onednn_peer --threads N [--min-time S] [--max-reps R] FILE\n");
    return 2;
  }
  omp_set_num_threads(threads);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    Problem p;
    if (!read_problem(line, p)) {
      std::fprintf(stderr, "onednn_peer: bad problem line '%s'\n", line.c_str());
      return 2;
    }
    try {
      run(p, threads, min_time, max_reps);
    } catch (const dnnl::error& e) {
      std::string why = e.what();
      std::replace(why.begin(), why.end(), '"', '\'');  // keep the line valid JSON
      std::printf("{\"impl\": \"onednn\", \"str\": \"%s\", \"threads\": %d, "
                  "\"skipped\": \"oneDNN error: %s\"}\n",
                  p.str.c_str(), threads, why.c_str());
    }
  }
  return 0;
}
