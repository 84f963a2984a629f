// Options shared by the convkit subcommands, and small file helpers.
#include "options.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "convkit/core/error.hpp"

namespace convkit::cli {

namespace {

/// The number in `text`, or an error message.
std::string parse_number(const std::string& text, double& v) {
  try {
    std::size_t used = 0;
    v = std::stod(text, &used);
    if (used != text.size()) return fmt::format("'{}' is not a number", text);
  } catch (const std::exception&) {
    return fmt::format("'{}' is not a number", text);
  }
  if (!std::isfinite(v)) return fmt::format("'{}' is not a finite number", text);
  return "";
}

CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& text) -> std::string {
        double v = 0;
        if (auto bad = parse_number(text, v); !bad.empty()) return bad;
        if (v > 0 || (allow_zero && v == 0)) return "";
        return fmt::format("must be {} 0, got {}", allow_zero ? ">=" : ">", text);
      },
      allow_zero ? ">= 0" : "> 0");
}

}  // namespace

CLI::Validator positive() { return number_check(false); }
CLI::Validator non_negative() { return number_check(true); }

CLI::Validator width_range() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (auto bad = parse_number(text, v); !bad.empty()) return bad;
        return v > 0 && v <= 16 ? "" : fmt::format("must be in (0, 16], got {}", text);
      },
      "(0, 16]");
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size())
          return fmt::format("must be an integer in [0, 2^64), got '{}'", text);
        return "";
      },
      "UINT64");
}

std::map<std::string, std::string> data_identity(const DataOptions& o) {
  std::map<std::string, std::string> id{{"data.source", o.source}};
  if (o.source == "embedded") {
    id["data.train_size"] = std::to_string(o.train_size);
    id["data.test_size"] = std::to_string(o.test_size);
    id["data.image_size"] = std::to_string(o.image_size);
    id["data.seed"] = std::to_string(o.seed);
  } else {
    id["data.dir"] = std::filesystem::absolute(o.dir).lexically_normal().string();
  }
  return id;
}

void add_data_options(CLI::App& app, DataOptions& o) {
  app.add_option("--data", o.source,
                 "embedded (generated shapes, the default), cifar10 (binary version) or mnist "
                 "(IDX files)")
      ->check(CLI::IsMember({"embedded", "cifar10", "mnist"}));
  app.add_option("--data-dir", o.dir, "folder holding the CIFAR-10 .bin or MNIST -ubyte files");
  app.add_option("--train-size", o.train_size, "embedded: training images")->check(positive());
  app.add_option("--test-size", o.test_size, "embedded: test images")->check(positive());
  app.add_option("--image-size", o.image_size, "embedded: image side in pixels (>= 16)")
      ->check(CLI::Range(16, 256));
  app.add_option("--data-seed", o.seed, "embedded: which images are generated")
      ->check(unsigned_integer());
}

LoadedData load_data(const DataOptions& o) {
  LoadedData d;
  if (o.source == "embedded") {
    if (!o.dir.empty())
      throw InvalidArgument("--data-dir is for --data cifar10 or mnist, not the embedded set");
    d.split = io::make_shapes(
        {.train = o.train_size, .test = o.test_size, .image_size = o.image_size, .seed = o.seed});
  } else {
    if (o.dir.empty())
      throw InvalidArgument(fmt::format("--data {} needs --data-dir with its files", o.source));
    if (!std::filesystem::is_directory(o.dir))
      throw IoError(fmt::format("--data-dir '{}' is not a folder", o.dir.string()));
    d.split = o.source == "cifar10" ? io::load_cifar10(o.dir) : io::load_mnist(o.dir);
  }
  const Shape& s = d.split.train.images.shape();
  d.description = fmt::format(
      "{}: {} train / {} test images, {}x{}x{}, {} classes",
      o.source == "embedded" ? fmt::format("embedded shapes (seed {})", o.seed)
                             : fmt::format("{} from {}", o.source, o.dir.string()),
      d.split.train.size(), d.split.test.size(), s[1], s[2], s[3], d.split.train.num_classes());
  const auto [mean, deviation] = io::channel_stats(d.split.train);
  io::normalize(d.split.train, mean, deviation);
  io::normalize(d.split.test, mean, deviation);
  return d;
}

void add_train_options(CLI::App& app, TrainConfig& c) {
  app.add_option("--epochs", c.epochs, "passes over the training set")->check(positive());
  app.add_option("--batch", c.batch, "images per step")->check(positive());
  app.add_option("--optimizer", c.optimizer,
                 "adamw (lr 0.003, weight decay 0.05) or sgd (nesterov momentum 0.9, lr 0.05, "
                 "weight decay 5e-4); cosine schedule with a 5% warm-up")
      ->check(CLI::IsMember({"sgd", "adamw"}));
  app.add_option("--lr", c.lr, "peak learning rate (default: the optimizer's)")
      ->check(positive())
      ->default_str("");
  app.add_option("--weight-decay", c.weight_decay, "weight decay (default: the optimizer's)")
      ->check(non_negative())
      ->default_str("");
  app.add_option("--seed", c.seed, "weights, data order and augmentation")
      ->check(unsigned_integer());
  app.add_option("--crop-padding", c.augment.crop_padding,
                 "random crop after zero padding by this many pixels (0: off)")
      ->check(non_negative());
  app.add_flag("--flip,!--no-flip", c.augment.horizontal_flip,
               fmt::format("random horizontal flips (default {})",
                           c.augment.horizontal_flip ? "on" : "off"))
      ->default_str("");
  app.add_flag("!--nchw", c.channels_last, "keep batches in NCHW instead of channels-last (NHWC)")
      ->default_str("");
}

void add_threads_option(CLI::App& app, int& threads) {
  app.add_option("--threads", threads, "threads for the kernels (0: every core)")
      ->check(CLI::Range(0, 1024));
}

int apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  return omp_get_max_threads();
}

void check_writable(const std::filesystem::path& path, const std::string& what) {
  const std::filesystem::path folder =
      path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(folder))
    throw IoError(
        fmt::format("{} '{}': folder '{}' does not exist", what, path.string(), folder.string()));
  if (::access(folder.c_str(), W_OK) != 0)
    throw IoError(
        fmt::format("{} '{}': folder '{}' is not writable", what, path.string(), folder.string()));
  if (std::filesystem::is_directory(path))
    throw IoError(fmt::format("{} '{}' is a folder", what, path.string()));
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  // Closed whatever fsync says; the rename happens only when both succeeded.
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(err)));
  }
}

}  // namespace convkit::cli
