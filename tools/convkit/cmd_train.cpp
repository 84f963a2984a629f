// convkit train: one preset on the embedded data set or CIFAR-10 / MNIST files, with
// checkpoints, resume, Ctrl-C and a PyTorch-named export.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "convkit/core/error.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/module.hpp"
#include "convkit/nn/summary.hpp"
#include "models.hpp"
#include "options.hpp"
#include "progress.hpp"

namespace convkit::cli {

namespace {

struct TrainArgs {
  ModelSpec spec;
  DataOptions data;
  TrainConfig config{.augment = {.crop_padding = 2, .horizontal_flip = true}};
  std::filesystem::path checkpoint = "convkit-checkpoint.safetensors";
  bool no_checkpoint = false;
  std::filesystem::path export_path;
  int threads = 0;
};

int run_train(TrainArgs& a) {
  const int threads = apply_threads(a.threads);
  validate(a.config);
  if (a.checkpoint.empty())
    throw InvalidArgument("--checkpoint is empty; give a path, or --no-checkpoint for none");
  if (a.config.resume && a.no_checkpoint)
    throw InvalidArgument("--resume needs a checkpoint; it cannot go with --no-checkpoint");
  if (a.config.resume && !std::filesystem::exists(a.checkpoint))
    throw IoError(fmt::format("--resume: checkpoint '{}' does not exist", a.checkpoint.string()));
  if (!a.no_checkpoint) check_writable(a.checkpoint, "--checkpoint");
  if (!a.export_path.empty()) check_writable(a.export_path, "--export");
  a.config.checkpoint = a.no_checkpoint ? std::filesystem::path() : a.checkpoint;

  const LoadedData data = load_data(a.data);
  const Shape& image = data.split.train.images.shape();
  if (image[2] != image[3])
    throw InvalidArgument(
        fmt::format("the presets take square images, the data has {}x{}", image[2], image[3]));
  if (a.config.augment.crop_padding > image[2])
    throw InvalidArgument(fmt::format("--crop-padding {} is larger than the images ({} pixels)",
                                      a.config.augment.crop_padding, image[2]));
  a.config.identity = data_identity(a.data);
  a.spec.classes = data.split.train.num_classes();
  a.spec.in_channels = image[1];
  a.spec.image_size = image[2];
  nn::manual_seed(a.config.seed);
  const auto model = make_model(a.spec);
  const nn::ParamCount params = nn::count_params(*model);
  std::printf("model: %s (%s), %s trainable parameters\ndata: %s\nthreads: %d\n",
              a.spec.preset.c_str(), describe(a.spec).c_str(),
              nn::with_commas(params.trainable).c_str(), data.description.c_str(), threads);
  std::fflush(stdout);

  Progress progress;
  install_interrupt_handler();
  const TrainResult result =
      train_with_progress(*model, a.spec, data.split, a.config, progress, a.spec.preset);
  for (const std::string& note : result.notes) std::printf("%s\n", note.c_str());
  if (result.resumed_from > 0)
    std::printf("resumed from '%s' after epoch %d\n", a.checkpoint.string().c_str(),
                result.resumed_from);
  if (!result.interrupted && stop_requested().load()) {
    // Ctrl-C during the last evaluation or checkpoint: the run is complete, but stop here.
    std::printf("interrupted after the last epoch; '%s' holds it\n",
                a.no_checkpoint ? "no checkpoint" : a.checkpoint.string().c_str());
    return kInterruptedStatus;
  }
  if (result.interrupted) {
    const std::size_t done = result.epochs.size();
    if (a.no_checkpoint || done == 0)
      std::printf("interrupted during epoch %zu; no checkpoint was written\n", done + 1);
    else
      std::printf("interrupted during epoch %zu; '%s' holds epoch %zu: continue with --resume\n",
                  done + 1, a.checkpoint.string().c_str(), done);
    return kInterruptedStatus;
  }
  const EpochStats& last = result.epochs.back();
  double seconds = 0;
  std::int64_t images = 0;
  for (const EpochStats& e : result.epochs) {
    seconds += e.train_seconds;
    images += e.images;
  }
  std::printf("final: epoch %d, train accuracy %.2f%%, test accuracy %.2f%%, %.0f images/s\n",
              last.epoch, 100 * last.train_accuracy, 100 * last.test_accuracy,
              seconds > 0 ? static_cast<double>(images) / seconds : 0.0);
  if (!a.no_checkpoint) std::printf("checkpoint: %s\n", a.checkpoint.string().c_str());
  if (!a.export_path.empty()) {
    io::save_safetensors(a.export_path, model->state_dict(), to_metadata(a.spec));
    std::printf("exported: %s (PyTorch state_dict names)\n", a.export_path.string().c_str());
  }
  return 0;
}

}  // namespace

Runner add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train one model preset");
  cmd->add_option("--model", args->spec.preset,
                  "standard_cnn, separable_cnn, mobilenet_v1 or mobilenet_v2")
      ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--width", args->spec.width, "channel width multiplier")->check(width_range());
  add_data_options(*cmd, args->data);
  add_train_options(*cmd, args->config);
  cmd->add_option("--checkpoint", args->checkpoint,
                  "written atomically after every epoch (default convkit-checkpoint.safetensors)");
  cmd->add_flag("--no-checkpoint", args->no_checkpoint, "write no checkpoint");
  cmd->add_flag("--resume", args->config.resume,
                "continue from --checkpoint (same model and options)");
  cmd->add_option("--export", args->export_path,
                  "write the final weights as safetensors with PyTorch state_dict names");
  add_threads_option(*cmd, args->threads);
  // For tests of --resume: behaves as a Ctrl-C right after that many epochs.
  cmd->add_option("--stop-after", args->config.stop_after)->group("")->check(positive());
  // For tests of Ctrl-C in the middle of an epoch: a SIGINT after that many steps.
  cmd->add_option("--interrupt-at-step", args->config.interrupt_at_step)
      ->group("")
      ->check(positive());
  return [args] { return run_train(*args); };
}

}  // namespace convkit::cli
