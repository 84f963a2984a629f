// Exact conversions between convolution forms: grouped <-> dense, two convolutions -> one
// (separable, spatially separable), BatchNorm folded into the convolution before it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convkit/nn/conv.hpp"
#include "convkit/nn/layers.hpp"

namespace convkit::nn {

/// A direct convolution as plain tensors: the form every conversion works on. Tensor-level
/// conversions keep the weight's dtype (F64 in, F64 out) and compute in double.
///   weight (out, in/groups, k...), bias (out) or undefined; options as for conv2d().
struct ConvParams {
  Tensor weight{};
  Tensor bias{};
  ConvOptions options{};
};

/// The weight and bias `conv` uses (Module::param: masked when pruned, constrained when
/// parametrized; otherwise the parameters themselves, sharing storage) and its options.
ConvParams conv_params(const ConvNd& conv);

// --- groups -------------------------------------------------------------------------------

/// The dense (groups = 1) weight of a grouped convolution: (out, in/groups, k...) ->
/// (out, in, k...), block diagonal. Output channel o belongs to group o / (out/groups) and reads
/// input channels [grp*in/groups, (grp+1)*in/groups); every other entry is zero. Depthwise with
/// multiplier M (groups = in, out = in*M) is the case in/groups = 1. Works for transposed
/// weights (in, out/groups, k...) as well, rows being input channels. Always exact.
///   Tensor w = grouped_to_dense_weight(dw.weight.value(), 32);  // (32, 1, 3, 3) -> (32, 32, 3, 3)
Tensor grouped_to_dense_weight(const Tensor& weight, std::int64_t groups);

/// The inverse: (out, in, k...) -> (out, in/groups, k...). Exact when every entry outside the
/// diagonal blocks is exactly zero; otherwise throws InvalidArgument naming groups, the first
/// offending (out, in) position, its kernel position and its value. groups must divide both
/// out and in.
Tensor dense_to_grouped_weight(const Tensor& weight, std::int64_t groups);

/// `conv` (any groups, direct or transposed, 1-3-D) as the same convolution with groups = 1
/// and the block-diagonal weight; bias, stride, padding, dilation and padding mode unchanged.
std::shared_ptr<ConvNd> to_dense(const ConvNd& conv);

/// `conv` as the same convolution with `groups` groups (see dense_to_grouped_weight); `conv`
/// may itself be grouped (it is made dense first).
std::shared_ptr<ConvNd> to_grouped(const ConvNd& conv, std::int64_t groups);

// --- two convolutions -> one --------------------------------------------------------------

/// The single convolution equal to `second` applied to the output of `first` (both direct).
/// Along each spatial dimension, with kernels k1, k2, strides s1, s2, dilations d1, d2:
///   stride S = s1*s2, dilation D = gcd(d1, d2*s1) (of the taps that exist, k > 1),
///   kernel K = (d1*(k1-1) + d2*s1*(k2-1)) / D + 1,
///   W[o, c, i*d1/D + j*d2*s1/D] += sum_m B[o, m, j] * A[m, c, i]  (dense A, B; groups = 1)
///   bias[o] = b2[o] + sum_m (sum_j B[o, m, j]) * b1[m]
///   padding: the first's (before, after); the second may pad only along dimensions where the
///   first is the identity (kernel 1, stride 1, no padding), where it becomes the result's.
/// Exact when representable. Refused with an InvalidArgument saying why:
///   - the second pads where the first is not the identity (its padding would sit between
///     the two kernels);
///   - the second zero-pads while the first has a non-zero bias (positions the second pads
///     with zeros would get the first's bias in one convolution);
///   - both pad with different padding modes (one convolution has one mode);
///   - 'same' padding at stride > 1 (input-size dependent) that the result cannot reproduce;
///   - channel counts that do not chain.
/// The result has groups = 1; its dtype is F64 if either weight is F64, else F32.
///   ConvParams dense = compose(conv_params(*sep.depthwise), conv_params(*sep.pointwise));
ConvParams compose(const ConvParams& first, const ConvParams& second);

/// compose() on modules: a new Conv1d/2d/3d (groups 1) in `first`'s training mode.
std::shared_ptr<ConvNd> compose(const ConvNd& first, const ConvNd& second);

/// Depthwise then pointwise as one k x k convolution with the same stride, padding,
/// dilation and padding mode (the 1x1 pointwise never pads, so it is exact everywhere):
///   W[o, i] = sum_m PW[o, i*mult + m] * DW[i*mult + m, 0],  b = b_pw + PW @ b_dw.
std::shared_ptr<Conv2d> to_dense(const SeparableConv2d& conv);

/// (k, 1) then (1, k) as one k x k convolution: W[o, i, y, x] = sum_m H[o, m, 0, x] V[m, i, y, 0],
/// stride, dilation and padding taken from the part that acts along each dimension. The
/// horizontal part zero-pads the width of the vertical part's output, so it is exact only when
/// the vertical bias is absent or all zero, or the width padding is 0; otherwise refused.
std::shared_ptr<Conv2d> to_dense(const SpatiallySeparableConv2d& conv);

// --- BatchNorm folding --------------------------------------------------------------------

/// A BatchNorm's inference parameters: gamma, beta (undefined: 1 and 0, affine=false), the
/// running statistics and eps.
struct BatchNormParams {
  Tensor weight{}, bias{}, running_mean{}, running_var{};
  double eps = 1e-5;
};

/// conv followed by an inference-mode BatchNorm as one convolution, per output channel o:
///   scale[o] = gamma[o] / sqrt(running_var[o] + eps)
///   w'[o] = w[o] * scale[o],   b'[o] = (b[o] - running_mean[o]) * scale[o] + beta[o]
/// (b = 0 when the convolution has no bias). Throws when the channels differ or
/// running_var + eps <= 0.
ConvParams fold_batch_norm(const ConvParams& conv, const BatchNormParams& bn);

/// fold_batch_norm on modules (torch.nn.utils.fusion.fuse_conv_bn_eval): a new convolution
/// with a bias, same geometry and groups, in eval mode. Both must be in eval mode; the
/// convolution direct (Conv1d + BatchNorm1d or Conv2d + BatchNorm2d); the BatchNorm must track
/// running statistics and have as many features as the convolution has output channels.
///   auto folded = nn::fold_batch_norm(conv, bn);   // folded(x) == bn(conv(x)) in eval
std::shared_ptr<ConvNd> fold_batch_norm(const ConvNd& conv, const BatchNorm& bn);

/// What fuse() did: the "conv path + bn path" of every fused pair and, for each pair it left
/// alone, why.
struct FuseReport {
  std::vector<std::string> fused;
  std::vector<std::string> skipped;
  std::int64_t count() const { return static_cast<std::int64_t>(fused.size()); }
};

/// Folds every BatchNorm that immediately follows a direct convolution inside a Sequential
/// (nested ones too: ConvBNAct, InvertedResidual's conv, ...) into that convolution: the
/// convolution is replaced by the folded one and the BatchNorm by Identity, so the state_dict
/// loses the BatchNorm keys and the convolutions gain a bias. For inference: the model and
/// every descendant must be in eval mode (InvalidArgument naming the first module that is
/// not). Pairs with a transposed convolution, a channel mismatch or a BatchNorm without
/// running statistics are skipped and listed. Like every conversion that returns a module, it
/// advances the init generator (manual_seed): the new convolution is constructed, then its
/// parameters are overwritten.
///   model.eval();
///   nn::FuseReport r = nn::fuse(model);   // MobileNetV2: 52 pairs
FuseReport fuse(Module& model);

}  // namespace convkit::nn
