// summary(): records each module call during one forward pass and prints a Keras-style table.
#include "convkit/nn/summary.hpp"

#include <fmt/format.h>

#include <map>

#include "convkit/autograd/variable.hpp"
#include "nn/recorder.hpp"

namespace convkit::nn {

namespace {

struct Call {
  Shape in, out;
};

class FirstCallRecorder : public detail::CallRecorder {
 public:
  void record(const Module* module, const Shape& in, const Shape& out) override {
    calls.try_emplace(module, Call{in, out});
  }
  std::map<const Module*, Call> calls;
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
  FirstCallRecorder recorder;
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

  Summary s;
  for (auto& [path, m] : model.named_modules()) {
    if (!m->children().empty() || path.empty()) continue;
    auto it = recorder.calls.find(m);
    if (it == recorder.calls.end()) continue;
    SummaryRow row{path, m->type_name(), it->second.out, 0, m->macs(it->second.in, it->second.out)};
    for (const auto& [name, p] : m->own_parameters()) row.params += p.numel();
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
  std::size_t wname = 12, wtype = 4, wshape = 12;
  for (const auto& r : rows) {
    wname = std::max(wname, r.name.size());
    wtype = std::max(wtype, r.type.size());
    wshape = std::max(wshape, r.output.str().size());
  }
  const std::size_t width = wname + wtype + wshape + 15 + 17 + 8;
  const std::string rule(width, '='), thin(width, '-');
  std::string out = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>15}  {:>17}\n{}\n", "Layer (path)",
                                wname, "Type", wtype, "Output shape", wshape, "Params", "MACs",
                                rule);
  for (const auto& r : rows)
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>15}  {:>17}\n", r.name, wname, r.type, wtype,
                       r.output.str(), wshape, with_commas(r.params), with_commas(r.macs));
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
