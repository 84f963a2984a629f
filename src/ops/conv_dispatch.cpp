// Picks the convolution kernel for each pass (forced, traced or fastest) and splits the
// work into tasks for OpenMP threads.
#include "ops/conv_dispatch.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "convkit/ops/conv_dispatch.hpp"
#include "core/check.hpp"

namespace convkit {

using I = std::int64_t;
using kernels::ConvKernel;
using kernels::ConvParams;
using kernels::ConvPass;

namespace {

struct DispatchState {
  std::mutex mutex;
  std::string forced;
  bool trace = false;
  DispatchState() {
    if (const char* env = std::getenv("CONVKIT_CONV_KERNEL")) forced = env;
    if (const char* env = std::getenv("CONVKIT_VERBOSE")) trace = std::strcmp(env, "0") != 0;
  }
};

DispatchState& state() {
  static DispatchState s;
  return s;
}

thread_local const char* last_kernel = "";

template <typename T>
bool in_list(const std::string& name) {
  for (const auto& kernel : kernels::conv_kernels<T>())
    if (name == kernel.name) return true;
  return false;
}

}  // namespace

void force_conv_kernel(const std::string& name) {
  detail::require(name.empty() || name == "ref" || in_list<float>(name) || in_list<double>(name),
                  "force_conv_kernel: name '{}' is not \"\", \"ref\" or a kernel in the list ({})",
                  name, fmt::format("{}", fmt::join(conv_kernel_names("f32"), ", ")));
  std::lock_guard lock(state().mutex);
  state().forced = name;
}

std::string forced_conv_kernel() {
  std::lock_guard lock(state().mutex);
  return state().forced;
}

void set_conv_trace(bool on) {
  std::lock_guard lock(state().mutex);
  state().trace = on;
}

std::vector<std::string> conv_kernel_names(const std::string& dtype) {
  detail::require(dtype == "f32" || dtype == "f64",
                  "conv_kernel_names: dtype must be \"f32\" or \"f64\", got \"{}\"", dtype);
  std::vector<std::string> names;
  auto add = [&](auto list) {
    for (const auto& kernel : list) names.emplace_back(kernel.name);
  };
  if (dtype == "f32")
    add(kernels::conv_kernels<float>());
  else
    add(kernels::conv_kernels<double>());
  return names;
}

std::string last_conv_kernel() { return last_kernel; }

namespace detail {

void note_conv_kernel(const char* name, const char* pass, const ConvProblem& p) {
  bool trace = false;
  {
    std::lock_guard lock(state().mutex);
    trace = state().trace;
  }
  last_kernel = name;
  if (trace) fmt::print(stderr, "convkit: {} {} -> {}\n", pass, p.str(), name);
}

template <typename T>
const ConvKernel<T>& pick_conv_kernel(const ConvParams& k, ConvPass pass, const ConvProblem& p) {
  const auto list = kernels::conv_kernels<T>();
  std::string forced;
  bool trace = false;
  {
    std::lock_guard lock(state().mutex);
    forced = state().forced;
    trace = state().trace;
  }
  const ConvKernel<T>* chosen = &list.back();  // the reference takes everything
  for (const auto& kernel : list) {
    if (!kernel.implements(pass) || !kernel.supports(k)) continue;
    if (forced.empty() || forced == kernel.name) {
      chosen = &kernel;
      break;
    }
  }
  last_kernel = chosen->name;
  if (trace)
    fmt::print(stderr, "convkit: {} {} -> {}\n", kernels::pass_name(pass), p.str(), chosen->name);
  return *chosen;
}

namespace {

// How many group blocks to cut g into so that `images` x blocks gives each thread several
// tasks; returns the block size. Channels-last depthwise problems, and those of a kernel
// that runs channel vectors on channels-last copies (ConvKernel::channel_vectors), keep
// whole 16-channel stretches (64 bytes) per block: their kernels run vectors along the
// channels, and a few channels per task would leave the vectors part empty, split cache
// lines between threads, and put a channel in a tail vector at one thread count and a full
// one at another, which changes its bits. (The NCHW row kernels keep blocks of any size:
// rounded to 16 channels, their backward-weights of MobileNetV2's 112x112 layers ran 1.5x
// slower at 2 threads.)
// Backward-weights (images = 1: each task walks the whole batch) of such a problem takes one
// block per thread instead: every block re-reads every pixel for its own channels, so
// fewer, wider blocks read the tensors fewer times.
I group_block_size(const ConvParams& k, I images, bool channel_vectors) {
  const I g = k.g;
  if (g <= 1 || images <= 0) return std::max<I>(g, 1);  // nothing to split (empty problems too)
  const bool vectors = k.icg == 1 && ((k.src_s[1] == 1 && k.dst_s[1] == 1) || channel_vectors);
  const I threads = static_cast<I>(omp_get_max_threads());
  const I want = vectors && images == 1 ? threads : 4 * threads;
  const I blocks = std::clamp<I>((want + images - 1) / images, 1, g);
  const I size = (g + blocks - 1) / blocks;
  return vectors ? std::min(g, (size + 15) / 16 * 16) : size;
}

// How forward and backward-data cut the batch into tasks: `run` images per task, every run
// starting at a multiple of the kernel's image group (ConvKernel::image_group), the last run
// shorter where the groups are. When one group block covers the channels and the threads
// divide the groups, each thread takes one run, so that a kernel's set-up per call (repacked
// weights, tap lists) is paid once per thread, not once per image: for a 7x7 depthwise layer
// it cost as much as the convolution. Otherwise one image group per task.
struct BatchRuns {
  I run = 1, tasks = 0;
};
template <typename T>
BatchRuns batch_runs(const ConvKernel<T>& kernel, const ConvParams& k, I blocks) {
  const I group = kernel.image_group ? std::max<I>(kernel.image_group(k), 1) : 1;
  const I groups = (k.mb + group - 1) / group;
  const I threads = static_cast<I>(omp_get_max_threads());
  const bool even = blocks == 1 && threads > 0 && groups >= threads && groups % threads == 0;
  const I run = (even ? groups / threads : 1) * group;
  return {run, (k.mb + run - 1) / run * blocks};
}

// Runs body(t) for t in [0, tasks) on the OpenMP threads. A single task runs on the calling
// thread outside any parallel region, so that a kernel which threads itself (OpenBLAS's
// OpenMP build) gets the team: inside even an inactive region its own parallel region would
// be nested, and libgomp would create (and destroy) new threads for it on every call.
template <typename Body>
void for_tasks(I tasks, Body&& body) {
  if (tasks == 1) return body(I{0});
#pragma omp parallel for schedule(static)
  for (I t = 0; t < tasks; ++t) body(t);
}

}  // namespace

template <typename T>
void run_conv_fwd(const ConvProblem& p, const ConvParams& k, const T* src, const T* wei,
                  const T* bias, T* dst) {
  const auto& kernel = pick_conv_kernel<T>(k, ConvPass::Fwd, p);
  const I gb = group_block_size(k, k.mb, kernel.channel_vectors);
  const I blocks = (k.g + gb - 1) / gb;
  const BatchRuns split = batch_runs(kernel, k, blocks);
  const I run = split.run, tasks = split.tasks;  // plain names: lambdas capture them
  const I out_bytes = k.mb * k.g * k.ocg * k.out[0] * k.out[1] * k.out[2] * static_cast<I>(sizeof(T));
  for_tasks(tasks, [&](I t) {
    const I n = t / blocks * run, g0 = (t % blocks) * gb;
    ConvParams one = k;
    one.mb = std::min(run, k.mb - n);
    one.g = std::min(gb, k.g - g0);
    one.pass_out_bytes = out_bytes;
    kernel.fwd(one, src + n * k.src_s[0] + g0 * k.icg * k.src_s[1], wei + g0 * k.ocg * k.wei_s[0],
               bias ? bias + g0 * k.ocg : nullptr, dst + n * k.dst_s[0] + g0 * k.ocg * k.dst_s[1]);
  });
}

template <typename T>
void run_conv_bwd_data(const ConvProblem& p, const ConvParams& k, const T* diff_dst, const T* wei,
                       T* diff_src) {
  const auto& kernel = pick_conv_kernel<T>(k, ConvPass::BwdData, p);
  const I gb = group_block_size(k, k.mb, kernel.channel_vectors);
  const I blocks = (k.g + gb - 1) / gb;
  const BatchRuns split = batch_runs(kernel, k, blocks);
  const I run = split.run, tasks = split.tasks;  // plain names: lambdas capture them
  const I out_bytes = k.mb * k.g * k.icg * k.in[0] * k.in[1] * k.in[2] * static_cast<I>(sizeof(T));
  for_tasks(tasks, [&](I t) {
    const I n = t / blocks * run, g0 = (t % blocks) * gb;
    ConvParams one = k;
    one.mb = std::min(run, k.mb - n);
    one.g = std::min(gb, k.g - g0);
    one.pass_out_bytes = out_bytes;
    kernel.bwd_data(one, diff_dst + n * k.dst_s[0] + g0 * k.ocg * k.dst_s[1],
                    wei + g0 * k.ocg * k.wei_s[0],
                    diff_src + n * k.src_s[0] + g0 * k.icg * k.src_s[1]);
  });
}

// Backward-weights over chunks of `chunk` images counted from the batch's first image, the
// chunks on the threads, each into sums of its own, added in double in chunk order and
// rounded once: the bits depend on the chunks, never on the thread count.
template <typename T>
void bwd_weights_in_chunks(const ConvKernel<T>& kernel, const ConvParams& k, I chunk,
                           const T* src, const T* diff_dst, T* diff_wei) {
  const I size = k.g * k.ocg * k.wei_s[0];  // diff_wei is dense
  const I chunks = (k.mb + chunk - 1) / chunk;
  std::vector<T> sums(static_cast<std::size_t>(chunks * size));
  for_tasks(chunks, [&](I c) {
    const I n = c * chunk;
    ConvParams one = k;
    one.mb = std::min(chunk, k.mb - n);
    kernel.bwd_weights(one, src + n * k.src_s[0], diff_dst + n * k.dst_s[0],
                       sums.data() + c * size);
  });
#pragma omp parallel for schedule(static)
  for (I i = 0; i < size; ++i) {
    double total = 0;
    for (I c = 0; c < chunks; ++c) total += static_cast<double>(sums[static_cast<std::size_t>(c * size + i)]);
    diff_wei[i] = static_cast<T>(total);
  }
}

template <typename T>
void run_conv_bwd_weights(const ConvProblem& p, const ConvParams& k, const T* src,
                          const T* diff_dst, T* diff_wei) {
  const auto& kernel = pick_conv_kernel<T>(k, ConvPass::BwdWeights, p);
  const I sums_bytes = k.mb * k.g * k.ocg * k.wei_s[0] * static_cast<I>(sizeof(T));
  // Kernels that add their images' sums in double (channels-last depthwise) run one image
  // per call, spread over the threads, and the images' sums are added here the same way,
  // when an image's src is 1 MiB or more. Splitting the channels instead had every thread
  // walk every pixel for part of its lines: on MobileNetV2's 112x112 and 56x56 layers two
  // threads ran 1.4x faster than one, on images 2x. Smaller images stay split by channels,
  // where a call per image (its set-up and scratch) cost more than the split saved.
  const I threads = omp_get_max_threads();
  const I image_bytes = k.g * k.icg * k.in[0] * k.in[1] * k.in[2] * static_cast<I>(sizeof(T));
  if (kernel.images_in_double && threads > 1 && k.mb > 1 && image_bytes >= (I{1} << 20) &&
      sums_bytes <= (I{64} << 20))
    return bwd_weights_in_chunks(kernel, k, I{1}, src, diff_dst, diff_wei);
  // Kernels that take the batch in chunks (ConvKernel::weight_chunk, the pointwise GEMMs) do
  // so at every thread count, whenever there are two chunks or more.
  if (kernel.weight_chunk && sums_bytes <= (I{64} << 20)) {
    const I chunk = std::max<I>(kernel.weight_chunk(k), 1);
    if (k.mb > chunk) return bwd_weights_in_chunks(kernel, k, chunk, src, diff_dst, diff_wei);
  }
  const I gb = group_block_size(k, 1, kernel.channel_vectors);
  const I blocks = (k.g + gb - 1) / gb;
  for_tasks(blocks, [&](I b) {
    const I g0 = b * gb;
    ConvParams one = k;
    one.g = std::min(gb, k.g - g0);
    kernel.bwd_weights(one, src + g0 * k.icg * k.src_s[1], diff_dst + g0 * k.ocg * k.dst_s[1],
                       diff_wei + g0 * k.ocg * k.wei_s[0]);
  });
}

#define CONVKIT_INSTANTIATE(T)                                                                     \
  template const ConvKernel<T>& pick_conv_kernel<T>(const ConvParams&, ConvPass,                   \
                                                    const ConvProblem&);                           \
  template void run_conv_fwd<T>(const ConvProblem&, const ConvParams&, const T*, const T*,         \
                                const T*, T*);                                                     \
  template void run_conv_bwd_data<T>(const ConvProblem&, const ConvParams&, const T*, const T*,    \
                                     T*);                                                          \
  template void run_conv_bwd_weights<T>(const ConvProblem&, const ConvParams&, const T*, const T*, \
                                        T*);
CONVKIT_INSTANTIATE(float)
CONVKIT_INSTANTIATE(double)
#undef CONVKIT_INSTANTIATE

}  // namespace detail
}  // namespace convkit
