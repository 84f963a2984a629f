// BatchNorm folded into the convolution before it, for one pair and for a whole model.
#include <cmath>

#include <fmt/format.h>

#include "convkit/nn/convert.hpp"
#include "core/check.hpp"
#include "nn/convert_util.hpp"

namespace convkit::nn {

using convkit::detail::require;
using namespace convert_detail;

ConvParams fold_batch_norm(const ConvParams& conv, const BatchNormParams& bn) {
  const char* who = "fold_batch_norm";
  spatial_dims(conv.weight, who, "the convolution weight");
  const std::int64_t out = conv.weight.size(0);
  auto check = [&](const Tensor& t, const char* what, bool optional) {
    if (optional && !t.defined()) return;
    require(t.defined(), "{}: the BatchNorm's {} is undefined (track_running_stats=false?)", who,
            what);
    require(t.dim() == 1 && t.numel() == out,
            "{}: the convolution has {} output channels but the BatchNorm's {} has shape {}", who,
            out, what, t.shape());
  };
  check(bn.running_mean, "running_mean", false);
  check(bn.running_var, "running_var", false);
  check(bn.weight, "weight", true);
  check(bn.bias, "bias", true);
  check(conv.bias, "convolution bias", true);
  const std::vector<double> mean = bn.running_mean.to_vector(), var = bn.running_var.to_vector();
  const std::vector<double> gamma =
      bn.weight.defined() ? bn.weight.to_vector() : std::vector<double>(out, 1.0);
  const std::vector<double> beta =
      bn.bias.defined() ? bn.bias.to_vector() : std::vector<double>(out, 0.0);
  std::vector<double> b =
      conv.bias.defined() ? conv.bias.to_vector() : std::vector<double>(out, 0.0);
  std::vector<double> w = conv.weight.to_vector();
  const std::int64_t per_out = conv.weight.numel() / out;
  for (std::int64_t o = 0; o < out; ++o) {
    const auto u = static_cast<std::size_t>(o);
    require(var[u] + bn.eps > 0, "{}: running_var[{}] + eps = {} + {} is not positive", who, o,
            var[u], bn.eps);
    const double scale = gamma[u] / std::sqrt(var[u] + bn.eps);
    for (std::int64_t t = 0; t < per_out; ++t)
      w[static_cast<std::size_t>(o * per_out + t)] *= scale;
    b[u] = (b[u] - mean[u]) * scale + beta[u];
  }
  return ConvParams{.weight = Tensor::from_values(conv.weight.shape(), w, conv.weight.dtype()),
                    .bias = Tensor::from_values(Shape{out}, b, conv.weight.dtype()),
                    .options = conv.options};
}

namespace {

/// Why `conv` then `bn` cannot fold, or "" when they can.
std::string fold_refusal(const ConvNd& conv, const BatchNorm& bn) {
  if (conv.transposed())
    return fmt::format(
        "the convolution is a {}; only direct convolutions fold (a transposed "
        "one's output channels are its weight's second dimension)",
        conv.type_name());
  const std::string want = fmt::format("BatchNorm{}d", conv.ndims());
  if (bn.type_name() != want)
    return fmt::format("a {} is followed by a {}; it folds only into a {}", conv.type_name(),
                       bn.type_name(), want);
  if (conv.options().out != bn.options().features)
    return fmt::format("the convolution has {} output channels but the {} has {} features",
                       conv.options().out, bn.type_name(), bn.options().features);
  if (!bn.options().track_running_stats)
    return fmt::format(
        "the {} has no running statistics (track_running_stats=false): it "
        "normalizes every batch with its own statistics, which no convolution "
        "reproduces",
        bn.type_name());
  return "";
}

}  // namespace

std::shared_ptr<ConvNd> fold_batch_norm(const ConvNd& conv, const BatchNorm& bn) {
  const std::string refusal = fold_refusal(conv, bn);
  require(refusal.empty(), "fold_batch_norm: {}", refusal);
  require(!conv.is_training() && !bn.is_training(),
          "fold_batch_norm: folding is for inference, but the {} is in training mode (it would "
          "use batch statistics); call eval() on both first",
          conv.is_training() ? conv.type_name() : bn.type_name());
  const BatchNormParams p{.weight = bn.weight.defined() ? bn.weight.value() : Tensor{},
                          .bias = bn.bias.defined() ? bn.bias.value() : Tensor{},
                          .running_mean = bn.running_mean,
                          .running_var = bn.running_var,
                          .eps = bn.options().eps};
  const ConvParams folded = fold_batch_norm(conv_params(conv), p);
  ConvOpts o = conv.options();
  o.bias = true;
  auto out = make_conv(conv.ndims(), false, o);
  out->weight.set_value(folded.weight.to(out->weight.dtype()));
  out->bias.set_value(folded.bias.to(out->bias.dtype()));
  out->train(false);
  return out;
}

FuseReport fuse(Module& model) {
  std::vector<std::pair<std::string, Sequential*>> sequentials;
  for (const auto& [path, m] : model.named_modules()) {
    require(!m->is_training(),
            "fuse: folding BatchNorm is for inference, but {} ({}) is in training mode; call "
            "eval() on the model first",
            path.empty() ? std::string("the model") : "'" + path + "'", m->type_name());
    if (auto* s = dynamic_cast<Sequential*>(m)) sequentials.emplace_back(path, s);
  }
  // Sequentials are never replaced, only their children, so these pointers stay valid.
  FuseReport report;
  for (const auto& [path, seq] : sequentials) {
    const std::string prefix = path.empty() ? "" : path + ".";
    for (std::size_t i = 0; i + 1 < seq->size(); ++i) {
      auto conv = std::dynamic_pointer_cast<ConvNd>(seq->at(i));
      auto bn = std::dynamic_pointer_cast<BatchNorm>(seq->at(i + 1));
      if (!conv || !bn) continue;
      const std::string pair = fmt::format("{}{} + {}{}", prefix, i, prefix, i + 1);
      const std::string refusal = fold_refusal(*conv, *bn);
      if (!refusal.empty()) {
        report.skipped.push_back(pair + ": " + refusal);
        continue;
      }
      seq->replace(i, fold_batch_norm(*conv, *bn));
      seq->replace(i + 1, std::make_shared<Identity>());
      report.fused.push_back(pair);
      ++i;
    }
  }
  return report;
}

}  // namespace convkit::nn
