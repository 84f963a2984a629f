// convkit summary: the Keras-style table of a preset or of a model file saved by convkit.
#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "convkit/core/error.hpp"
#include "convkit/io/checkpoint.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/summary.hpp"
#include "models.hpp"
#include "options.hpp"

namespace convkit::cli {

namespace {

struct SummaryArgs {
  std::string model;
  std::string input;  // "N,C,H,W"
  double width = 1.0;
  std::int64_t classes = 10;
  const CLI::Option* width_option = nullptr;  // to tell given from defaulted
  const CLI::Option* classes_option = nullptr;
};

Shape parse_input(const std::string& text) {
  std::vector<std::int64_t> sizes;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p <= end) {
    std::int64_t v = 0;
    const auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || v <= 0 || (next != end && *next != ','))
      throw InvalidArgument(
          fmt::format("--input must be four positive integers N,C,H,W, got '{}'", text));
    sizes.push_back(v);
    p = next + 1;
  }
  if (sizes.size() != 4)
    throw InvalidArgument(
        fmt::format("--input must be four positive integers N,C,H,W, got '{}'", text));
  return Shape(sizes);
}

/// The model spec and weights of a file written by `convkit train`: a checkpoint
/// (--checkpoint, the spec among its extra entries) or exported weights (--export).
std::pair<ModelSpec, nn::StateDict> read_model_file(const std::string& path) {
  const io::SafetensorsFile file = io::load_safetensors(path);
  const auto format = file.metadata.find("format");
  if (format != file.metadata.end() && format->second == "convkit.checkpoint") {
    io::Checkpoint ck = io::load_checkpoint(path);
    return {from_metadata(ck.extra, path), std::move(ck.model)};
  }
  return {from_metadata(file.metadata, path), file.tensors};
}

int run_summary(const SummaryArgs& a) {
  ModelSpec spec;
  std::shared_ptr<nn::Module> model;
  const auto& names = preset_names();
  const bool is_preset = std::find(names.begin(), names.end(), a.model) != names.end();
  if (is_preset) {
    spec = {.preset = a.model, .width = a.width, .classes = a.classes};
    if (!a.input.empty()) {
      const Shape in = parse_input(a.input);
      spec.in_channels = in[1];
      spec.image_size = std::min(in[2], in[3]);
    }
    try {
      model = make_model(spec);
    } catch (const InvalidArgument& e) {
      if (a.input.empty()) throw;
      throw InvalidArgument(fmt::format("--input {}: {}", a.input, e.what()));
    }
  } else {
    for (const CLI::Option* o : {a.width_option, a.classes_option})
      if (o->count() > 0)
        throw InvalidArgument(fmt::format("{} applies to presets; the file '{}' holds its own",
                                          o->get_name(), a.model));
    if (!std::filesystem::exists(a.model))
      throw InvalidArgument(fmt::format("MODEL '{}' is neither a preset ({}) nor an existing file",
                                        a.model, fmt::join(names, ", ")));
    nn::StateDict state;
    std::tie(spec, state) = read_model_file(a.model);
    model = make_model(spec);
    try {
      model->load_state_dict(state);
    } catch (const Error& e) {
      throw FormatError(fmt::format("{}: its tensors do not fit the {} it names: {}", a.model,
                                    spec.preset, e.what()));
    }
  }
  const Shape input = a.input.empty()
                          ? Shape({1, spec.in_channels, spec.image_size, spec.image_size})
                          : parse_input(a.input);
  nn::Summary table;
  try {
    table = nn::summary(*model, input);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(
        fmt::format("--input {}: the {} cannot run on it: {}", input.str(), spec.preset, e.what()));
  }
  std::printf("%s: %s\ninput: %s\n\n%s", spec.preset.c_str(), describe(spec).c_str(),
              input.str().c_str(), table.str().c_str());
  return 0;
}

}  // namespace

Runner add_summary(CLI::App& app) {
  auto args = std::make_shared<SummaryArgs>();
  CLI::App* cmd = app.add_subcommand(
      "summary",
      "print the layer table (output shapes, parameters, MACs, receptive field) of "
      "a preset or of a file written by convkit train (--export or --checkpoint)");
  cmd->add_option("MODEL", args->model,
                  "a preset (standard_cnn, separable_cnn, mobilenet_v1, mobilenet_v2) or a "
                  ".safetensors file")
      ->required();
  cmd->add_option("--input", args->input,
                  "input shape N,C,H,W (default 1,3,32,32 for presets, the trained size for "
                  "files)");
  args->width_option = cmd->add_option("--width", args->width, "presets: channel width multiplier")
                           ->check(width_range());
  args->classes_option =
      cmd->add_option("--classes", args->classes, "presets: number of classes")->check(positive());
  return [args] { return run_summary(*args); };
}

}  // namespace convkit::cli
