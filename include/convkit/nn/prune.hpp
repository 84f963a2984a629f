// Pruning with persistent masks, as torch.nn.utils.prune does it: unstructured (magnitude or
// threshold, per layer or global) and structured (output channels, input channels, whole
// kernels by L1/L2 norm), remove() to make it permanent, and a sparsity report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convkit/nn/module.hpp"

namespace convkit::nn::prune {

/// How much to prune, counted among the entries (or channels, or kernels) not pruned yet —
/// PyTorch's PruningContainer rule, so pruning 50% twice leaves 25%. A fraction in [0, 1]
/// prunes round(fraction * remaining) (round half to even, like Python's round); a count
/// prunes exactly that many and may not exceed what remains.
struct Amount {
  Amount(double f) : fraction(f), is_count(false) {}  // NOLINT: 0.3 reads well
  Amount(int n) : count(n), is_count(true) {}        // NOLINT
  Amount(std::int64_t n) : count(n), is_count(true) {}  // NOLINT
  double fraction = 0;
  std::int64_t count = 0;
  bool is_count = false;
};

/// The pruning of module.<name> is a buffer "<name>_mask" (same shape and dtype, 0 or 1) and
/// the layer's forward uses <name> * mask (Module::param), so a pruned entry is exactly zero
/// in every forward, its gradient is zero, and no optimizer step can bring it back. Pruning
/// again multiplies the masks. module must read <name> through Module::param (convolutions,
/// Linear, ChannelScale: weight and bias), else InvalidArgument.

/// Prunes the `amount` smallest |w| among the unpruned entries (torch's l1_unstructured;
/// ties go to the lower index).
///   nn::prune::magnitude(conv, "weight", 0.5);
void magnitude(Module& module, const std::string& name, Amount amount);
/// Prunes every unpruned entry with |w| < threshold (threshold >= 0).
void threshold(Module& module, const std::string& name, double threshold);

/// What structured pruning removes whole: output channels (dimension 0 of the weight, torch's
/// ln_structured dim=0), input channels (dimension 1) or kernels (each (out, in) slice of a
/// convolution weight, all its kh*kw taps at once).
enum class Structure { OutputChannels, InputChannels, Kernels };
enum class Norm { L1 = 1, L2 = 2 };
/// Prunes the `amount` units of `structure` with the smallest L1 or L2 norm of the weight
/// (pruned entries included, as torch computes it) among the units not yet fully pruned.
///   nn::prune::structured(conv, "weight", 0.25, Structure::OutputChannels, Norm::L2);
void structured(Module& module, const std::string& name, Amount amount, Structure structure,
                Norm norm = Norm::L1);

/// One parameter to prune globally.
struct Target {
  Module* module = nullptr;
  std::string name = "weight";
};
/// Prunes the `amount` smallest |w| over all targets' unpruned entries together (torch's
/// global_unstructured with L1Unstructured): layers with small weights lose more.
void global_magnitude(const std::vector<Target>& targets, Amount amount);
/// Every Conv*d (not transposed) and Linear weight of `model`, for global_magnitude.
std::vector<Target> weights_of(Module& model);

/// Applies a given mask (0/1, the parameter's shape; combined with an existing one).
void custom_mask(Module& module, const std::string& name, const Tensor& mask);

/// Whether module.<name> is pruned; with an empty name, whether any parameter is.
bool is_pruned(const Module& module, const std::string& name = "");
/// Makes the pruning permanent: <name> becomes <name> * mask as a plain parameter and the
/// mask buffer goes (torch's prune.remove).
void remove(Module& module, const std::string& name);
/// remove() for every pruned parameter of `model` and its descendants.
void remove_all(Module& model);

/// Inference through the sparse kernel (ops/conv_sparse.hpp). A pruned direct float32
/// convolution with zero padding whose forward records no gradient (under ag::NoGradGuard, or
/// with nothing requiring one) and whose weight in use has more zeros than the threshold
/// skips the zero weights: the same result up to float rounding (the sums run in another
/// order), in time proportional to the nonzeros. The default threshold,
/// kSparseForwardPaysAbove (0.65), is the largest crossover measured in
/// bench/results/sparse_conv.md. On by default; off, or another threshold, for all threads
/// (e.g. to time the dense path).
void set_sparse_inference(bool on, double threshold = -1);  // threshold -1: the default
bool sparse_inference();
double sparse_inference_threshold();

/// One line of the sparsity report: the zeros of the weight the layer uses.
struct SparsityRow {
  std::string parameter;  // dotted key, "features.1.conv.0.0.weight"
  std::int64_t numel = 0, zeros = 0;
  bool pruned = false;  // has a mask (zeros may also come from training or init)
  double sparsity() const { return numel ? static_cast<double>(zeros) / static_cast<double>(numel) : 0; }
};
/// Every weight a layer reads through Module::param (pruned or not), then a last row
/// "total" over all of them.
std::vector<SparsityRow> sparsity_report(Module& model);
/// The report as an aligned text table.
std::string format_sparsity(const std::vector<SparsityRow>& rows);

}  // namespace convkit::nn::prune
