// The built-in parametrizations for kernels: mirror and rotation symmetry (tied entries),
// non-negativity, fixed entries, and parametrizations from plain functions.
#include <cmath>
#include <map>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"
#include "convkit/nn/parametrize.hpp"
#include "core/check.hpp"

namespace convkit::nn::parametrize {

using convkit::detail::require;
using I = std::int64_t;

namespace {

// The group of each position of a kh x kw plane: positions a symmetry maps onto each other
// share the group of the smallest one (row-major index). `images` lists, for a position
// (y, x), the positions it must equal.
template <typename Images>
std::vector<I> orbits(I kh, I kw, Images images) {
  std::vector<I> group(static_cast<std::size_t>(kh * kw));
  for (I i = 0; i < kh * kw; ++i) group[static_cast<std::size_t>(i)] = i;
  // Repeated relaxation to the smallest reachable index (orbits have at most 8 members).
  for (bool changed = true; changed;) {
    changed = false;
    for (I y = 0; y < kh; ++y)
      for (I x = 0; x < kw; ++x)
        for (auto [yy, xx] : images(y, x)) {
          I& a = group[static_cast<std::size_t>(y * kw + x)];
          I& b = group[static_cast<std::size_t>(yy * kw + xx)];
          if (a != b) {
            a = b = std::min(a, b);
            changed = true;
          }
        }
  }
  return group;
}

class Symmetric final : public Parametrization {
 public:
  explicit Symmetric(Flip flip) : flip_(flip) {}
  ag::Variable forward(const ag::Variable& w) override {
    require(w.dim() >= 3, "symmetric: expects a convolution kernel (out, in, k...), got {}",
            w.shape());
    const bool plane = w.dim() >= 4;
    require(plane || flip_ == Flip::LeftRight,
            "symmetric: up-down symmetry needs a 2-D kernel, got shape {}", w.shape());
    const I kh = plane ? w.size(w.dim() - 2) : 1, kw = w.size(w.dim() - 1);
    const bool lr = flip_ != Flip::UpDown, ud = flip_ != Flip::LeftRight;
    return ag::tie_mean(w, orbits(kh, kw, [&](I y, I x) {
                          std::vector<std::pair<I, I>> out;
                          if (lr) out.emplace_back(y, kw - 1 - x);
                          if (ud) out.emplace_back(kh - 1 - y, x);
                          return out;
                        }));
  }
  std::string type_name() const override {
    return flip_ == Flip::LeftRight ? "SymmetricLeftRight"
           : flip_ == Flip::UpDown  ? "SymmetricUpDown"
                                    : "SymmetricBoth";
  }

 private:
  Flip flip_;
};

class RotationSymmetric final : public Parametrization {
 public:
  explicit RotationSymmetric(Rotation r) : rotation_(r) {}
  ag::Variable forward(const ag::Variable& w) override {
    require(w.dim() >= 4, "rotation_symmetric: expects a 2-D convolution kernel, got {}",
            w.shape());
    const I kh = w.size(w.dim() - 2), kw = w.size(w.dim() - 1);
    require(kh == kw, "rotation_symmetric: the kernel must be square, got {}x{} (shape {})", kh,
            kw, w.shape());
    const I k = kh;
    if (rotation_ == Rotation::Quarter)  // a quarter turn: (y, x) -> (x, k-1-y)
      return ag::tie_mean(w, orbits(k, k, [&](I y, I x) {
                            return std::vector<std::pair<I, I>>{{x, k - 1 - y}};
                          }));
    // Radial: squared distance from the centre in half-pixel units, exact for even k too.
    std::map<I, I> group_of_distance;
    std::vector<I> group(static_cast<std::size_t>(k * k));
    for (I y = 0; y < k; ++y)
      for (I x = 0; x < k; ++x) {
        const I dy = 2 * y - (k - 1), dx = 2 * x - (k - 1);
        auto [it, fresh] = group_of_distance.try_emplace(dy * dy + dx * dx,
                                                         static_cast<I>(group_of_distance.size()));
        group[static_cast<std::size_t>(y * k + x)] = it->second;
      }
    return ag::tie_mean(w, group);
  }
  std::string type_name() const override {
    return rotation_ == Rotation::Quarter ? "RotationSymmetric" : "RadialSymmetric";
  }

 private:
  Rotation rotation_;
};

class NonNegative final : public Parametrization {
 public:
  explicit NonNegative(Positive how) : how_(how) {}
  ag::Variable forward(const ag::Variable& w) override {
    return how_ == Positive::Abs ? ag::abs(w) : ag::softplus(w);
  }
  Tensor right_inverse(const Tensor& w) const override {
    if (how_ == Positive::Abs) return w;
    // softplus^-1(v) = log(expm1(v)); v <= 0 has none, so the smallest weights start at
    // softplus^-1(1e-6). Above 20 softplus is the identity.
    return convkit::detail::map1(w, "non_negative", [](double v) {
      v = std::max(v, 1e-6);
      return v > 20 ? v : std::log(std::expm1(v));
    });
  }
  std::string type_name() const override {
    return how_ == Positive::Abs ? "NonNegativeAbs" : "NonNegativeSoftplus";
  }

 private:
  Positive how_;
};

class FixedEntries final : public Parametrization {
 public:
  FixedEntries(const Tensor& mask, const Tensor& values) {
    require(mask.defined() && values.defined(), "fixed_entries: mask and values must be defined");
    require(mask.shape() == values.shape(),
            "fixed_entries: mask {} and values {} must have the same shape", mask.shape(),
            values.shape());
    convkit::detail::require_same_dtype(mask, values, "fixed_entries", "mask", "values");
    const Tensor m = mask.contiguous().to(DType::F64);
    for (I i = 0; i < m.numel(); ++i) {
      const double v = m.data<double>()[i];
      require(v == 0 || v == 1, "fixed_entries: mask must hold only 0 and 1, got {} at index {}",
              v, i);
    }
    mask_ = register_buffer("mask", mask.contiguous().clone());
    values_ = register_buffer("values", values.contiguous().clone());
  }
  ag::Variable forward(const ag::Variable& w) override {
    require(w.dtype() == mask_.dtype(), "fixed_entries: the parameter is {}, the mask {}",
            dtype_name(w.dtype()), dtype_name(mask_.dtype()));
    // Constants without history: keep = 1 - mask, fixed = values * mask.
    const ag::Variable mask(mask_), values(values_);
    const ag::Variable keep = ag::add(ag::mul(mask, -1.0), 1.0);
    const ag::Variable fixed = ag::mul(values, mask);
    return ag::add(ag::mul(w, keep), fixed);
  }
  std::string type_name() const override { return "FixedEntries"; }

 private:
  Tensor mask_, values_;
};

class FromFunction final : public Parametrization {
 public:
  FromFunction(std::string name, std::function<ag::Variable(const ag::Variable&)> f,
               std::function<Tensor(const Tensor&)> inverse)
      : name_(std::move(name)), f_(std::move(f)), inverse_(std::move(inverse)) {
    require(static_cast<bool>(f_), "from_function: '{}' has no forward function", name_);
  }
  ag::Variable forward(const ag::Variable& w) override { return f_(w); }
  Tensor right_inverse(const Tensor& w) const override { return inverse_ ? inverse_(w) : w; }
  std::string type_name() const override { return name_; }

 private:
  std::string name_;
  std::function<ag::Variable(const ag::Variable&)> f_;
  std::function<Tensor(const Tensor&)> inverse_;
};

}  // namespace

std::shared_ptr<Parametrization> symmetric(Flip flip) { return std::make_shared<Symmetric>(flip); }
std::shared_ptr<Parametrization> rotation_symmetric(Rotation rotation) {
  return std::make_shared<RotationSymmetric>(rotation);
}
std::shared_ptr<Parametrization> non_negative(Positive how) {
  return std::make_shared<NonNegative>(how);
}
std::shared_ptr<Parametrization> fixed_entries(const Tensor& mask, const Tensor& values) {
  return std::make_shared<FixedEntries>(mask, values);
}
std::shared_ptr<Parametrization> from_function(
    std::string name, std::function<ag::Variable(const ag::Variable&)> forward,
    std::function<Tensor(const Tensor&)> right_inverse) {
  return std::make_shared<FromFunction>(std::move(name), std::move(forward),
                                        std::move(right_inverse));
}

}  // namespace convkit::nn::parametrize
