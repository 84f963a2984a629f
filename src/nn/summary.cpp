// summary(): records each module call during one forward pass and prints a Keras-style table.
#include "convkit/nn/summary.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "convkit/autograd/variable.hpp"
#include "convkit/nn/parametrize.hpp"
#include "nn/recorder.hpp"

namespace convkit::nn {

namespace {

// A layer, as opposed to a block: no children but its parametrizations (a parametrized
// Conv2d is still one row; its parametrizations run inside its forward).
bool is_leaf(const Module& m) {
  for (const auto& [name, child] : m.children())
    if (!dynamic_cast<const parametrize::ParametrizationDict*>(child.get())) return false;
  return true;
}

struct Call {
  const Module* module;
  Shape in, out;
};

/// Every module call, in the order the calls return: a block after its children, so the
/// leaves come in execution order.
class CallLog : public detail::CallRecorder {
 public:
  void record(const Module* module, const Shape& in, const Shape& out) override {
    calls.push_back(Call{module, in, out});
  }
  std::vector<Call> calls;
};

/// Follows the receptive field along the leaf calls, one spatial dimension at a time (the
/// rules are listed at summary() in the header).
class FieldTracker {
 public:
  explicit FieldTracker(const Shape& input)
      : n_(input.rank() > 2 ? static_cast<std::size_t>(input.rank() - 2) : 0),
        rf_(n_, 1.0),
        jump_(n_, 1.0),
        extent_(spatial(input)) {}

  /// Takes one leaf call; returns the receptive field of its output (empty: not spatial).
  std::vector<std::int64_t> step(const Module& m, const Shape& in, const Shape& out) {
    if (is_spatial(in)) {
      std::vector<std::int64_t> size = spatial(in);
      // Code inside a forward reduced the map (global pooling) or mixed it non-spatially.
      if (detoured_ || (all_ones(size) && !all_ones(extent_))) widen_to_extent();
      detoured_ = false;
      extent_ = std::move(size);
      if (auto g = m.geometry(in); g && g->kernel.size() == n_ && g->stride.size() == n_ &&
                                   g->dilation.size() == n_)
        apply(*g);
    } else {
      detoured_ = true;
    }
    if (!is_spatial(out)) {
      detoured_ = true;
      return {};
    }
    if (detoured_) widen_to_extent();  // a layer that makes a map out of a vector
    detoured_ = false;
    extent_ = spatial(out);
    std::vector<std::int64_t> field;
    // Jumps after a transposed convolution are fractional; the tolerance absorbs rounding.
    for (double v : rf_) field.push_back(static_cast<std::int64_t>(std::ceil(v - 1e-9)));
    return field;
  }

 private:
  bool is_spatial(const Shape& s) const {
    return n_ > 0 && s.rank() == static_cast<int>(n_) + 2;
  }
  static std::vector<std::int64_t> spatial(const Shape& s) {
    if (s.rank() <= 2) return {};
    return {s.begin() + 2, s.end()};
  }
  static bool all_ones(const std::vector<std::int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [](std::int64_t x) { return x == 1; });
  }
  /// Every element now sees the whole last map: the window of a global pool.
  void widen_to_extent() {
    for (std::size_t d = 0; d < n_ && d < extent_.size(); ++d)
      rf_[d] += static_cast<double>(extent_[d] - 1) * jump_[d];
  }
  void apply(const Geometry& g) {
    for (std::size_t d = 0; d < n_; ++d) {
      const std::int64_t k = g.kernel[d], s = g.stride[d], dil = g.dilation[d];
      if (!g.transposed) {
        rf_[d] += static_cast<double>((k - 1) * dil) * jump_[d];
        jump_[d] *= static_cast<double>(s);
        continue;
      }
      // Input i reaches outputs i*s + m*dil: two inputs share an output when their taps
      // differ by a multiple of s, so one output sees inputs at most `span` apart.
      std::int64_t span = 0;
      for (std::int64_t tap = 0; tap < k; ++tap)
        if ((tap * dil) % s == 0) span = tap * dil / s;
      rf_[d] += static_cast<double>(span) * jump_[d];
      jump_[d] /= static_cast<double>(s);
    }
  }

  std::size_t n_;  // spatial dimensions of the model input (0: none)
  std::vector<double> rf_, jump_;
  std::vector<std::int64_t> extent_;  // sizes of the last spatial map seen
  bool detoured_ = false;             // a non-spatial tensor came since that map
};

/// Installs a recorder for its lifetime, restoring the previous one.
class RecorderScope {
 public:
  explicit RecorderScope(detail::CallRecorder* r) : previous_(detail::active_recorder()) {
    detail::active_recorder() = r;
  }
  ~RecorderScope() { detail::active_recorder() = previous_; }
  RecorderScope(const RecorderScope&) = delete;
  RecorderScope& operator=(const RecorderScope&) = delete;

 private:
  detail::CallRecorder* previous_;
};

}  // namespace

std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string format_bytes(std::int64_t bytes) {
  const auto b = static_cast<double>(bytes);
  if (bytes >= 1024 * 1024) return fmt::format("{:.2f} MB", b / (1024.0 * 1024.0));
  if (bytes >= 1024) return fmt::format("{:.2f} KB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

Summary summary(Module& model, const Shape& input) {
  CallLog recorder;
  const bool was_training = model.is_training();
  model.eval();
  try {
    ag::NoGradGuard no_grad;
    RecorderScope scope(&recorder);
    model(ag::Variable(Tensor::zeros(input)));
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);

  struct FirstCall {
    const Call* call;
    std::vector<std::int64_t> field;
  };
  std::map<const Module*, FirstCall> first;
  FieldTracker tracker(input);
  for (const Call& c : recorder.calls) {
    if (!is_leaf(*c.module)) continue;
    std::vector<std::int64_t> field = tracker.step(*c.module, c.in, c.out);
    first.try_emplace(c.module, FirstCall{&c, std::move(field)});
  }

  Summary s;
  s.input = input;
  for (auto& [path, m] : model.named_modules()) {
    if (!is_leaf(*m)) continue;
    auto it = first.find(m);
    if (it == first.end()) continue;
    const Call& c = *it->second.call;
    // A model that is one layer gets one row, named after its type.
    SummaryRow row{path.empty() ? m->type_name() : path, m->type_name(), c.out, 0,
                   m->macs(c.in, c.out), it->second.field};
    for (const auto& [name, p] : m->named_parameters()) row.params += p.numel();
    s.total_macs += row.macs;
    s.rows.push_back(std::move(row));
  }
  s.count = count_params(model);
  for (const auto& [name, p] : model.named_parameters())
    (p.requires_grad() ? s.trainable_bytes : s.non_trainable_bytes) += p.value().nbytes();
  for (const auto& [name, b] : model.named_buffers())
    if (is_floating(b.dtype())) s.non_trainable_bytes += b.nbytes();
  s.param_bytes = s.trainable_bytes + s.non_trainable_bytes;
  return s;
}

std::string Summary::str() const {
  auto field = [](const SummaryRow& r) {
    return r.receptive_field.empty() ? std::string("-")
                                     : fmt::format("{}", fmt::join(r.receptive_field, "x"));
  };
  std::size_t wname = 12, wtype = 4, wshape = 12, wrf = 7;
  for (const auto& r : rows) {
    wname = std::max(wname, r.name.size());
    wtype = std::max(wtype, r.type.size());
    wshape = std::max(wshape, r.output.str().size());
    wrf = std::max(wrf, field(r).size());
  }
  const std::size_t width = wname + wtype + wshape + wrf + 15 + 17 + 10;
  const std::string rule(width, '='), thin(width, '-');
  std::string out = fmt::format("Input shape: {}\n", input.str());
  out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>15}  {:>17}\n{}\n", "Layer (path)", wname,
                     "Type", wtype, "Output shape", wshape, "RF", wrf, "Params", "MACs", rule);
  for (const auto& r : rows)
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>15}  {:>17}\n", r.name, wname, r.type,
                       wtype, r.output.str(), wshape, field(r), wrf, with_commas(r.params),
                       with_commas(r.macs));
  out += rule + "\n";
  out += fmt::format("Total params: {} ({})\n", with_commas(count.total), format_bytes(param_bytes));
  out += fmt::format("Trainable params: {} ({})\n", with_commas(count.trainable),
                     format_bytes(trainable_bytes));
  out += fmt::format("Non-trainable params: {} ({})\n", with_commas(count.non_trainable),
                     format_bytes(non_trainable_bytes));
  out += fmt::format("Total MACs: {}\n{}\n", with_commas(total_macs), thin);
  return out;
}

}  // namespace convkit::nn
