// Parametrizations: a parameter recomputed from a free tensor at every forward, so that a
// constraint (symmetry, non-negativity, fixed entries, your own) holds exactly after every
// optimizer step; torch.nn.utils.parametrize's model and key names.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "convkit/nn/module.hpp"

namespace convkit::nn::parametrize {

/// A constraint written as a function of a free tensor. forward(original) returns the tensor
/// the layer uses (same shape); right_inverse(weight) returns a free tensor whose forward
/// is `weight` when `weight` already satisfies the constraint, and is used once, when the
/// first parametrization of a parameter is registered, so the layer keeps its values
/// (PyTorch's right_inverse; the default is the identity). A parametrization is a Module:
/// its own parameters and buffers are saved under "parametrizations.<name>.<index>.".
///
///   struct Doubled : nn::parametrize::Parametrization {
///     ag::Variable forward(const ag::Variable& w) override { return ag::mul(w, 2.0); }
///     Tensor right_inverse(const Tensor& w) const override { return ...w / 2...; }
///     std::string type_name() const override { return "Doubled"; }
///   };
class Parametrization : public Module {
 public:
  ag::Variable forward(const ag::Variable& original) override = 0;
  virtual Tensor right_inverse(const Tensor& weight) const { return weight; }
};

/// The parametrizations of one parameter ("0", "1", ... applied in order) and the free
/// tensor they start from, the parameter "original" — the same ag::Variable as the layer's
/// member (Conv2d::weight), which an optimizer trains.
class ParametrizationList : public Module {
 public:
  explicit ParametrizationList(ag::Variable original);
  /// original through every parametrization: what the layer's forward uses.
  ag::Variable evaluate() const;
  ag::Variable forward(const ag::Variable& x) override;  // applies the list to x
  void append(std::shared_ptr<Parametrization> p);      // as child "<count>"
  std::string type_name() const override { return "ParametrizationList"; }
  ag::Variable original;
  std::size_t original_index = 0;  // where the parameter stood in its module (for remove)
};

/// The child "parametrizations" of a parametrized module: one ParametrizationList per
/// parametrized parameter, under the parameter's name.
class ParametrizationDict : public Module {
 public:
  ag::Variable forward(const ag::Variable& x) override { return x; }
  std::string type_name() const override { return "ParametrizationDict"; }
  const ParametrizationList* find(const std::string& name) const;
  ParametrizationList* find(const std::string& name);
  void add(const std::string& name, std::shared_ptr<ParametrizationList> list) {
    register_module(name, std::move(list));
  }
};

/// Constrains module.<name> (a name of module.transformable_params(): the weight or bias of
/// a convolution or Linear) to p's output. The first registration moves the parameter into
/// "parametrizations.<name>.original" (value right_inverse(current value)); later ones stack
/// on top of the earlier ones and leave original alone, as in PyTorch. p's output is checked
/// once, here: it must keep the parameter's shape and dtype (otherwise, or for a constraint
/// the parameter cannot take, InvalidArgument naming both).
///   auto conv = std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 3, .out = 8, .kernel = 5});
///   nn::parametrize::register_parametrization(*conv, "weight",
///       nn::parametrize::symmetric(nn::parametrize::Flip::LeftRight));
///   // state_dict: bias, parametrizations.weight.original
void register_parametrization(Module& module, const std::string& name,
                              std::shared_ptr<Parametrization> p);
/// Whether module.<name> is parametrized; with an empty name, whether any parameter is.
bool is_parametrized(const Module& module, const std::string& name = "");
/// Undoes register_parametrization for module.<name>: the parameter goes back to its key and
/// place, holding the parametrized value (leave_parametrized, PyTorch's default) or the free
/// original. The "parametrizations" child disappears with its last entry.
void remove_parametrizations(Module& module, const std::string& name,
                             bool leave_parametrized = true);

// ---- constraints for convolution kernels (the last two dimensions are kh, kw; the last one
// for 1-D kernels). Each ties or maps entries exactly: the constraint holds bit for bit. ----

/// Mirror symmetry of every kernel: LeftRight (w[.., y, x] == w[.., y, kw-1-x]), UpDown
/// (w[.., y, x] == w[.., kh-1-y, x], 2-D kernels only) or Both. Tied entries hold their mean.
enum class Flip { LeftRight, UpDown, Both };
std::shared_ptr<Parametrization> symmetric(Flip flip);

/// Rotation symmetry of square kernels: Quarter (unchanged by 90-degree turns: the up to 4
/// positions a turn maps into each other share one value) or Radial (the value depends only
/// on the distance from the kernel's centre). A non-square kernel is refused.
enum class Rotation { Quarter, Radial };
std::shared_ptr<Parametrization> rotation_symmetric(Rotation rotation);

/// Non-negative entries: |original| (Abs; right_inverse the identity on w >= 0) or
/// softplus(original) = log(1 + exp(original)) (Softplus; right_inverse log(expm1(w))).
enum class Positive { Abs, Softplus };
std::shared_ptr<Parametrization> non_negative(Positive how = Positive::Abs);

/// Entries where mask is 1 are fixed to `values` (buffers "mask" and "values", not trained);
/// the others are free: w = original * (1 - mask) + values * mask. mask and values have one
/// shape and the parameter's dtype, and broadcast to the parameter's shape (a (kh, kw) mask
/// fixes the same taps of every kernel); mask holds only 0 and 1. Ones fix the whole tensor.
std::shared_ptr<Parametrization> fixed_entries(const Tensor& mask, const Tensor& values);

/// A parametrization from functions: `name` for summaries, `forward` from the free tensor to
/// the weight, and an optional right_inverse (identity when empty).
std::shared_ptr<Parametrization> from_function(
    std::string name, std::function<ag::Variable(const ag::Variable&)> forward,
    std::function<Tensor(const Tensor&)> right_inverse = {});

}  // namespace convkit::nn::parametrize

namespace convkit::nn {
/// Stops training module.<name> (requires_grad off: optimizers skip it; its gradient stays
/// undefined) or resumes it; Keras' trainable=False for one tensor. count_params reports a
/// frozen parameter as non-trainable.
void freeze(Module& module, const std::string& name);
void unfreeze(Module& module, const std::string& name);
}  // namespace convkit::nn
