// Pruning masks: choosing what to prune (magnitude, threshold, structured, global), keeping
// the mask as a buffer the layer's forward applies, and making it permanent.
#include "convkit/nn/prune.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/conv.hpp"
#include "convkit/nn/layers.hpp"
#include "convkit/nn/parametrize.hpp"
#include "convkit/ops/conv_sparse.hpp"
#include "core/check.hpp"
#include "nn/module_access.hpp"

namespace convkit::nn::prune {

using convkit::detail::require;
using nn::detail::ModuleAccess;
using I = std::int64_t;

namespace {

// The parameter, its values and its current mask (ones when not pruned yet), as doubles.
struct Pruned {
  Module* module;
  std::string name;
  ag::Variable param;
  std::vector<double> w, mask;
};

Pruned load(Module& module, const std::string& name, const char* what) {
  nn::detail::require_transformable(module, name, "prune");
  require(!parametrize::is_parametrized(module, name),
          "{}: {}.{} is parametrized; pruning applies to plain parameters", what,
          module.type_name(), name);
  Pruned p{&module, name, {}, {}, {}};
  for (const auto& [n, v] : module.own_parameters())
    if (n == name) p.param = v;
  require(p.param.defined(), "{}: {} has no parameter '{}'", what, module.type_name(), name);
  const Tensor w = p.param.value().contiguous().to(DType::F64);
  p.w.assign(w.data<double>(), w.data<double>() + w.numel());
  p.mask.assign(p.w.size(), 1.0);
  for (const auto& [b, t] : module.named_buffers())
    if (b == name + "_mask" && is_pruned(module, name)) {
      const Tensor m = t.contiguous().to(DType::F64);
      p.mask.assign(m.data<double>(), m.data<double>() + m.numel());
    }
  return p;
}

// Writes p.mask into the buffer "<name>_mask", registering it on the first pruning.
void store(Pruned& p) {
  const Tensor mask = Tensor::from_values(p.param.shape(), p.mask, p.param.dtype());
  auto& pruned = ModuleAccess::pruned(*p.module);
  if (std::find(pruned.begin(), pruned.end(), p.name) != pruned.end()) {
    for (auto& [b, t] : ModuleAccess::buffers(*p.module))
      if (b == p.name + "_mask") t.copy_from(mask);
    return;
  }
  ModuleAccess::add_buffer(*p.module, p.name + "_mask", mask);
  pruned.push_back(p.name);
}

// How many of `remaining` units an amount prunes.
I to_prune(const Amount& a, I remaining, const std::string& what) {
  if (a.is_count) {
    require(a.count >= 0 && a.count <= remaining,
            "prune: amount {} must lie in [0, {}], the unpruned units of {}", a.count, remaining,
            what);
    return a.count;
  }
  require(a.fraction >= 0 && a.fraction <= 1,
          "prune: amount must be a fraction in [0, 1] (or a count), got {} for {}", a.fraction,
          what);
  return static_cast<I>(std::nearbyint(a.fraction * static_cast<double>(remaining)));
}

// Sorts unit indices by score, smallest first; NaN scores count as largest (never chosen
// first, as torch.topk treats NaN), ties by index.
void sort_by_score(std::vector<I>& units, const std::vector<double>& score) {
  std::stable_sort(units.begin(), units.end(), [&](I a, I b) {
    const double sa = score[static_cast<std::size_t>(a)], sb = score[static_cast<std::size_t>(b)];
    if (std::isnan(sa) || std::isnan(sb)) return !std::isnan(sa) && std::isnan(sb);
    return sa < sb;
  });
}

std::string label(const Module& m, const std::string& name) { return m.type_name() + "." + name; }

}  // namespace

namespace {
std::atomic<bool> g_sparse_inference{true};
std::atomic<double> g_sparse_threshold{kSparseForwardPaysAbove};
}  // namespace

void set_sparse_inference(bool on, double threshold) {
  require(threshold == -1 || (threshold >= 0 && threshold <= 1),
          "prune::set_sparse_inference: threshold must be in [0, 1] (or -1 for the default), "
          "got {}",
          threshold);
  g_sparse_inference.store(on);
  g_sparse_threshold.store(threshold == -1 ? kSparseForwardPaysAbove : threshold);
}
bool sparse_inference() { return g_sparse_inference.load(); }
double sparse_inference_threshold() { return g_sparse_threshold.load(); }

void magnitude(Module& module, const std::string& name, Amount amount) {
  global_magnitude({{&module, name}}, amount);
}

void threshold(Module& module, const std::string& name, double t) {
  require(std::isfinite(t) && t >= 0, "prune::threshold: threshold must be finite and >= 0, got {}",
          t);
  Pruned p = load(module, name, "prune::threshold");
  for (std::size_t i = 0; i < p.w.size(); ++i)
    if (std::abs(p.w[i]) < t) p.mask[i] = 0;
  store(p);
}

void global_magnitude(const std::vector<Target>& targets, Amount amount) {
  require(!targets.empty(), "prune::global_magnitude: no targets");
  std::vector<Pruned> all;
  for (const Target& t : targets) {
    require(t.module != nullptr, "prune::global_magnitude: a target's module is null");
    for (const Pruned& q : all)
      require(!(q.module == t.module && q.name == t.name),
              "prune::global_magnitude: {} is listed twice", label(*t.module, t.name));
    all.push_back(load(*t.module, t.name, "prune::global_magnitude"));
  }
  // One list of (target, index) over every unpruned entry, scored by |w|.
  std::vector<std::pair<std::size_t, std::size_t>> where;
  std::vector<double> score;
  for (std::size_t k = 0; k < all.size(); ++k)
    for (std::size_t i = 0; i < all[k].w.size(); ++i)
      if (all[k].mask[i] != 0) {
        where.emplace_back(k, i);
        score.push_back(std::abs(all[k].w[i]));
      }
  std::vector<I> order(where.size());
  std::iota(order.begin(), order.end(), I{0});
  sort_by_score(order, score);
  const I n = to_prune(amount, static_cast<I>(order.size()),
                       targets.size() == 1 ? label(*targets[0].module, targets[0].name)
                                           : fmt::format("{} targets", targets.size()));
  for (I j = 0; j < n; ++j) {
    auto [k, i] = where[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])];
    all[k].mask[i] = 0;
  }
  for (Pruned& p : all) store(p);
}

void structured(Module& module, const std::string& name, Amount amount, Structure structure,
                Norm norm) {
  Pruned p = load(module, name, "prune::structured");
  const Shape& s = p.param.shape();
  const int min_dims = structure == Structure::OutputChannels ? 1
                       : structure == Structure::InputChannels ? 2
                                                                : 3;
  require(s.rank() >= min_dims, "prune::structured: {} needs a weight of at least {} dimensions, "
          "{} is {}", structure == Structure::Kernels ? "kernel pruning" : "channel pruning",
          min_dims, label(module, name), s);
  const I numel = p.param.numel();
  const I units = structure == Structure::OutputChannels ? s[0]
                  : structure == Structure::InputChannels ? s[1]
                                                           : s[0] * s[1];
  const I inner = structure == Structure::OutputChannels ? numel / s[0] : numel / (s[0] * s[1]);
  auto unit_of = [&](I i) {
    return structure == Structure::InputChannels ? (i / inner) % s[1] : i / inner;
  };
  std::vector<double> score(static_cast<std::size_t>(units), 0.0);
  std::vector<bool> alive(static_cast<std::size_t>(units), false);
  for (I i = 0; i < numel; ++i) {
    const double v = p.w[static_cast<std::size_t>(i)];
    score[static_cast<std::size_t>(unit_of(i))] += norm == Norm::L1 ? std::abs(v) : v * v;
    if (p.mask[static_cast<std::size_t>(i)] != 0) alive[static_cast<std::size_t>(unit_of(i))] = true;
  }
  std::vector<I> candidates;
  for (I u = 0; u < units; ++u)
    if (alive[static_cast<std::size_t>(u)]) candidates.push_back(u);
  sort_by_score(candidates, score);  // sqrt is monotone: L2 compares squared norms
  const I n = to_prune(amount, static_cast<I>(candidates.size()), label(module, name));
  std::vector<bool> drop(static_cast<std::size_t>(units), false);
  for (I j = 0; j < n; ++j) drop[static_cast<std::size_t>(candidates[static_cast<std::size_t>(j)])] = true;
  for (I i = 0; i < numel; ++i)
    if (drop[static_cast<std::size_t>(unit_of(i))]) p.mask[static_cast<std::size_t>(i)] = 0;
  store(p);
}

void custom_mask(Module& module, const std::string& name, const Tensor& mask) {
  Pruned p = load(module, name, "prune::custom_mask");
  require(mask.defined() && mask.shape() == p.param.shape(),
          "prune::custom_mask: mask shape {} does not match {} of shape {}",
          mask.defined() ? mask.shape().str() : "undefined", label(module, name),
          p.param.shape());
  const Tensor m = mask.contiguous().to(DType::F64);
  for (I i = 0; i < m.numel(); ++i) {
    const double v = m.data<double>()[i];
    require(v == 0 || v == 1, "prune::custom_mask: mask must hold only 0 and 1, got {} at index {}",
            v, i);
    p.mask[static_cast<std::size_t>(i)] *= v;
  }
  store(p);
}

std::vector<Target> weights_of(Module& model) {
  std::vector<Target> out;
  for (auto& [path, m] : model.named_modules())
    if (dynamic_cast<ConvNd*>(m) || dynamic_cast<Linear*>(m)) out.push_back({m, "weight"});
  return out;
}

bool is_pruned(const Module& module, const std::string& name) {
  const auto& pruned = ModuleAccess::pruned(module);
  return name.empty() ? !pruned.empty()
                      : std::find(pruned.begin(), pruned.end(), name) != pruned.end();
}

void remove(Module& module, const std::string& name) {
  require(is_pruned(module, name), "prune::remove: {} is not pruned", label(module, name));
  {
    ag::NoGradGuard no_grad;
    const ag::Variable masked = module.param(name);
    for (const auto& [n, v] : module.own_parameters())
      if (n == name) v.set_value(masked.value());
  }
  std::erase_if(ModuleAccess::buffers(module), [&](const auto& b) { return b.first == name + "_mask"; });
  std::erase(ModuleAccess::pruned(module), name);
}

void remove_all(Module& model) {
  for (auto& [path, m] : model.named_modules()) {
    const std::vector<std::string> names = ModuleAccess::pruned(*m);
    for (const std::string& n : names) remove(*m, n);
  }
}

std::vector<SparsityRow> sparsity_report(Module& model) {
  std::vector<SparsityRow> rows;
  SparsityRow total{"total", 0, 0, false};
  ag::NoGradGuard no_grad;
  for (auto& [path, m] : model.named_modules())
    for (const std::string& name : m->transformable_params()) {
      if (name != "weight" && !is_pruned(*m, name)) continue;
      const Tensor w = m->param(name).value().contiguous().to(DType::F64);
      SparsityRow row{path.empty() ? name : path + "." + name, w.numel(), 0, is_pruned(*m, name)};
      for (I i = 0; i < w.numel(); ++i) row.zeros += w.data<double>()[i] == 0;
      total.numel += row.numel;
      total.zeros += row.zeros;
      total.pruned = total.pruned || row.pruned;
      rows.push_back(row);
    }
  rows.push_back(total);
  return rows;
}

std::string format_sparsity(const std::vector<SparsityRow>& rows) {
  std::size_t width = 9;
  for (const auto& r : rows) width = std::max(width, r.parameter.size());
  std::string out = fmt::format("{:<{}}  {:>10}  {:>10}  {:>8}  {}\n", "Parameter", width,
                                "Entries", "Zeros", "Sparsity", "Mask");
  for (const auto& r : rows)
    out += fmt::format("{:<{}}  {:>10}  {:>10}  {:>7.2f}%  {}\n", r.parameter, width, r.numel,
                       r.zeros, 100 * r.sparsity(), r.pruned ? "yes" : "no");
  return out;
}

}  // namespace convkit::nn::prune
