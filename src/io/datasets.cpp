// Data sets: CIFAR-10 and MNIST readers, permutations, batch gathering, augmentation, statistics.
#include "convkit/io/datasets.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace convkit::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

/// The whole file, or IoError naming it (and a compressed copy beside it, the usual mistake).
Bytes read_file(const fs::path& path, const char* what) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  std::error_code ec;
  if (!f)
    throw IoError(fmt::format(
        "{} file '{}' cannot be opened: {}{}", what, path.string(), std::strerror(errno),
        fs::exists(path.string() + ".gz", ec) ? " (decompress the .gz)" : ""));
  // A folder or a pipe would fail late and vaguely (or never end): refuse it by name.
  if (!fs::is_regular_file(path, ec))
    throw IoError(fmt::format("{} file '{}' is not a regular file", what, path.string()));
  Bytes bytes;
  if (const auto size = fs::file_size(path, ec); !ec) bytes.reserve(size);
  unsigned char buffer[1 << 16];
  while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, f.get()))
    bytes.insert(bytes.end(), buffer, buffer + got);
  if (std::ferror(f.get()))
    throw IoError(
        fmt::format("{} file '{}' cannot be read: {}", what, path.string(), std::strerror(errno)));
  return bytes;
}

/// Throws InvalidArgument unless `data` holds (N, C, H, W) float32 images and (N) int64 labels.
void check_dataset(const Dataset& data, const char* fn) {
  const Tensor& x = data.images;
  const Tensor& y = data.labels;
  if (!x.defined() || x.dim() != 4 || x.dtype() != DType::F32 || !x.is_contiguous())
    throw InvalidArgument(fmt::format("{}: images must be contiguous (N, C, H, W) float32, got {}",
                                      fn, x.defined() ? x.str() : "undefined"));
  if (!y.defined() || y.dim() != 1 || y.dtype() != DType::I64 || y.size(0) != x.size(0))
    throw InvalidArgument(fmt::format("{}: labels must be int64 of shape [{}], got {}", fn,
                                      x.size(0), y.defined() ? y.str() : "undefined"));
}

/// Decodes records i = 0 .. count-1 into images and labels first + i: the label byte is at
/// label + i * label_stride, the `item` pixel bytes (all channels, planar) at
/// pixels + i * pixel_stride.
void decode(const unsigned char* label, std::int64_t label_stride, const unsigned char* pixels,
            std::int64_t pixel_stride, std::int64_t count, std::int64_t item, Dataset& d,
            std::int64_t first, const char* what, const std::string& source) {
  float* dst = d.images.data<float>() + first * item;
  std::int64_t* labels = d.labels.data<std::int64_t>() + first;
  for (std::int64_t i = 0; i < count; ++i, dst += item) {
    const unsigned char y = label[i * label_stride];
    if (y >= 10)
      throw FormatError(fmt::format(
          "{} file '{}': record {} is mislabelled: label {}, expected 0..9", what, source, i, y));
    labels[i] = y;
    const unsigned char* src = pixels + i * pixel_stride;
    for (std::int64_t k = 0; k < item; ++k) dst[k] = static_cast<float>(src[k]) / 255.0f;
  }
}

constexpr std::int64_t kCifarRecord = 1 + 3 * 32 * 32;

/// The number of records in a CIFAR-10 batch, or FormatError naming `source`.
std::int64_t cifar_records(std::span<const std::uint8_t> bytes, const std::string& source) {
  const auto size = static_cast<std::int64_t>(bytes.size());
  if (size == 0 || size % kCifarRecord != 0)
    throw FormatError(
        fmt::format("CIFAR-10 file '{}' has {} bytes, not a positive multiple of {} (1 label "
                    "byte + 3072 pixel bytes per record): truncated or not the binary version",
                    source, size, kCifarRecord));
  return size / kCifarRecord;
}

/// CIFAR-10 batches (the bytes of each and its name for messages) as one data set.
Dataset decode_cifar(const std::vector<std::span<const std::uint8_t>>& contents,
                     const std::vector<std::string>& sources) {
  std::int64_t total = 0;
  for (std::size_t f = 0; f < contents.size(); ++f) total += cifar_records(contents[f], sources[f]);
  Dataset d{
      Tensor::empty({total, 3, 32, 32}),
      Tensor::empty({total}, DType::I64),
      {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}};
  std::int64_t first = 0;
  for (std::size_t f = 0; f < contents.size(); ++f) {
    const auto count = static_cast<std::int64_t>(contents[f].size()) / kCifarRecord;
    decode(contents[f].data(), kCifarRecord, contents[f].data() + 1, kCifarRecord, count,
           kCifarRecord - 1, d, first, "CIFAR-10", sources[f]);
    first += count;
  }
  return d;
}

Dataset read_cifar_files(const std::vector<fs::path>& files) {
  std::vector<Bytes> contents;
  std::vector<std::string> sources;
  for (const auto& path : files) {
    contents.push_back(read_file(path, "CIFAR-10"));
    sources.push_back(path.string());
    cifar_records(contents.back(), sources.back());  // a bad file is refused before the next read
  }
  return decode_cifar({contents.begin(), contents.end()}, sources);
}

// IDX magic numbers: 0x08 (unsigned bytes), then the rank.
constexpr std::uint32_t kIdxImages = 0x00000803, kIdxLabels = 0x00000801;

std::uint32_t big_endian_u32(std::span<const std::uint8_t> b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

/// The sizes in an IDX header, count first, after checking the magic number and that the
/// size is what the header says.
std::vector<std::uint64_t> idx_dims(std::span<const std::uint8_t> b, const std::string& source,
                                    std::uint32_t magic) {
  const std::size_t rank = magic & 0xFF, header = 4 + 4 * rank;
  const char* kind = rank == 1 ? "labels" : "images";
  if (b.size() < header || big_endian_u32(b, 0) != magic)
    throw FormatError(fmt::format(
        "MNIST file '{}' is not an uncompressed IDX file of {}: magic number {}, expected 0x{:08x}",
        source, kind, b.size() < 4 ? "missing" : fmt::format("0x{:08x}", big_endian_u32(b, 0)),
        magic));
  std::vector<std::uint64_t> dims;
  std::uint64_t item = 1;  // bytes per image (or label): two 32-bit sizes cannot overflow
  for (std::size_t k = 0; k < rank; ++k) {
    dims.push_back(big_endian_u32(b, 4 + 4 * k));
    if (k > 0) item *= dims.back();
  }
  const std::uint64_t n = dims[0], body = b.size() - header;
  if (n == 0 || item == 0 || n > body / item || body != n * item)
    throw FormatError(fmt::format(
        "MNIST file '{}' is {}: its header says {} {} ({}) but {} bytes follow it", source,
        n == 0 || item == 0 ? "empty"
        : n > body / item   ? "truncated"
                            : "followed by trailing bytes",
        n, kind, fmt::join(dims, "x"), body));
  return dims;
}

/// An images and a labels IDX file (their bytes and names) as one data set.
Dataset decode_mnist(std::span<const std::uint8_t> image_bytes,
                     std::span<const std::uint8_t> label_bytes, const std::string& image_source,
                     const std::string& label_source) {
  const std::vector<std::uint64_t> images = idx_dims(image_bytes, image_source, kIdxImages);
  const std::vector<std::uint64_t> labels = idx_dims(label_bytes, label_source, kIdxLabels);
  if (images[0] != labels[0])
    throw FormatError(fmt::format("MNIST files disagree: '{}' holds {} images but '{}' {} labels",
                                  image_source, images[0], label_source, labels[0]));
  const auto n = static_cast<std::int64_t>(images[0]);
  const auto rows = static_cast<std::int64_t>(images[1]);
  const auto cols = static_cast<std::int64_t>(images[2]);
  Dataset d{Tensor::empty({n, 1, rows, cols}),
            Tensor::empty({n}, DType::I64),
            {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  decode(label_bytes.data() + 8, 1, image_bytes.data() + 16, rows * cols, n, rows * cols, d, 0,
         "MNIST", label_source);
  return d;
}

/// The first of `names` that exists in `dir` (or the first name, for the error message).
fs::path first_existing(const fs::path& dir, std::initializer_list<std::string> names) {
  std::error_code ec;
  for (const auto& n : names)
    if (fs::exists(dir / n, ec)) return dir / n;
  return dir / *names.begin();
}

/// Reads `prefix`-images-idx3-ubyte and `prefix`-labels-idx1-ubyte (or the names with '.' for
/// the last '-', as some mirrors spell them).
Dataset read_mnist_pair(const fs::path& dir, const std::string& prefix) {
  const fs::path ip =
      first_existing(dir, {prefix + "-images-idx3-ubyte", prefix + "-images.idx3-ubyte"});
  const fs::path lp =
      first_existing(dir, {prefix + "-labels-idx1-ubyte", prefix + "-labels.idx1-ubyte"});
  const Bytes images = read_file(ip, "MNIST");
  idx_dims(images, ip.string(), kIdxImages);  // a bad images file is refused before the labels
  const Bytes labels = read_file(lp, "MNIST");
  return decode_mnist(images, labels, ip.string(), lp.string());
}

}  // namespace

std::int64_t Dataset::size() const { return images.defined() ? images.size(0) : 0; }
std::int64_t Dataset::num_classes() const { return static_cast<std::int64_t>(class_names.size()); }

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) {
  SplitMix64 a{seed};
  SplitMix64 b{a.next() ^ (index * 0xD1B54A32D192ED03ull)};
  return b.next();
}

Dataset parse_cifar10(std::span<const std::uint8_t> bytes, const std::string& source) {
  return decode_cifar({bytes}, {source});
}

Dataset parse_mnist(std::span<const std::uint8_t> images, std::span<const std::uint8_t> labels,
                    const std::string& images_source, const std::string& labels_source) {
  return decode_mnist(images, labels, images_source, labels_source);
}

DatasetSplit load_cifar10(const fs::path& dir) {
  std::error_code ec;
  const fs::path root = !fs::exists(dir / "data_batch_1.bin", ec) &&
                                fs::exists(dir / "cifar-10-batches-bin" / "data_batch_1.bin", ec)
                            ? dir / "cifar-10-batches-bin"
                            : dir;
  std::vector<fs::path> train;
  for (int k = 1; k <= 5; ++k) train.push_back(root / fmt::format("data_batch_{}.bin", k));
  return {read_cifar_files(train), read_cifar_files({root / "test_batch.bin"})};
}

DatasetSplit load_mnist(const fs::path& dir) {
  DatasetSplit split{read_mnist_pair(dir, "train"), read_mnist_pair(dir, "t10k")};
  const Shape& train = split.train.images.shape();
  const Shape& test = split.test.images.shape();
  if (train[2] != test[2] || train[3] != test[3])
    throw FormatError(fmt::format(
        "MNIST files disagree: the train images in '{}' are {}x{}, the t10k (test) images {}x{}",
        dir.string(), train[2], train[3], test[2], test[3]));
  return split;
}

std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  if (n < 0) throw InvalidArgument(fmt::format("permutation: n must be >= 0, got {}", n));
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  SplitMix64 rng{seed};
  // The modulo's bias is below n / 2^64: invisible, and it keeps the draw to one integer op.
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<std::size_t>(i)], p[rng.next() % static_cast<std::uint64_t>(i + 1)]);
  return p;
}

std::pair<Tensor, Tensor> gather(const Dataset& data, std::span<const std::int64_t> indices) {
  check_dataset(data, "gather");
  const Shape& s = data.images.shape();
  const auto b = static_cast<std::int64_t>(indices.size());
  const std::int64_t n = s[0], item = s[1] * s[2] * s[3];
  Tensor x = Tensor::empty({b, s[1], s[2], s[3]});
  Tensor y = Tensor::empty({b}, DType::I64);
  const float* src = data.images.data<float>();
  const std::int64_t* labels = data.labels.data<std::int64_t>();
  float* dst = x.data<float>();
  std::int64_t* out = y.data<std::int64_t>();
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t k = indices[static_cast<std::size_t>(i)];
    if (k < 0 || k >= n)
      throw InvalidArgument(
          fmt::format("gather: indices[{}] = {} is outside the data set's [0, {})", i, k, n));
    std::memcpy(dst + i * item, src + k * item, static_cast<std::size_t>(item) * sizeof(float));
    out[i] = labels[k];
  }
  return {x, y};
}

AugmentDraw augment_draw(std::int64_t index, const AugmentOptions& options, std::uint64_t seed) {
  SplitMix64 rng{derive_seed(seed, static_cast<std::uint64_t>(index))};
  const auto span = static_cast<std::uint64_t>(2 * options.crop_padding + 1);
  AugmentDraw d;
  d.dy = static_cast<std::int64_t>(rng.next() % span);
  d.dx = static_cast<std::int64_t>(rng.next() % span);
  d.flip = options.horizontal_flip && (rng.next() >> 63) != 0;
  return d;
}

Tensor augment(const Tensor& batch, const AugmentOptions& options, std::uint64_t seed) {
  if (!batch.defined() || batch.dim() != 4 || batch.dtype() != DType::F32)
    throw InvalidArgument(
        fmt::format("augment: batch must be a (B, C, H, W) float32 tensor, got {}",
                    batch.defined() ? batch.str() : "undefined"));
  const Tensor src = batch.contiguous();
  const std::int64_t b = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);
  const std::int64_t pad = options.crop_padding;
  if (pad < 0 || pad > std::max(h, w))
    throw InvalidArgument(
        fmt::format("augment: crop_padding must be in [0, {}] for {}x{} images, got {}",
                    std::max(h, w), h, w, pad));
  Tensor out = Tensor::empty(src.shape());
  const float* in = src.data<float>();
  float* dst = out.data<float>();
  for (std::int64_t i = 0; i < b; ++i) {
    const AugmentDraw d = augment_draw(i, options, seed);
    const std::int64_t oy = d.dy - pad, ox = d.dx - pad;  // output (y, x) reads input (y+oy, x+ox)
    // Output columns [x0, x1) read inside the image; the rest are padding zeros.
    const std::int64_t x0 = std::clamp<std::int64_t>(-ox, 0, w),
                       x1 = std::clamp<std::int64_t>(w - ox, 0, w);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float* plane = in + (i * c + ch) * h * w;
      for (std::int64_t y = 0; y < h; ++y) {
        float* row = dst + ((i * c + ch) * h + y) * w;
        const std::int64_t sy = y + oy;
        if (sy < 0 || sy >= h || x0 >= x1) {
          std::fill(row, row + w, 0.0f);
          continue;
        }
        const float* srow = plane + sy * w;  // columns [x0 + ox, x1 + ox) of it
        std::fill(row, row + x0, 0.0f);
        std::fill(row + x1, row + w, 0.0f);
        std::copy(srow + x0 + ox, srow + x1 + ox, row + x0);
        if (d.flip) std::reverse(row, row + w);
      }
    }
  }
  return out;
}

std::pair<std::vector<double>, std::vector<double>> channel_stats(const Dataset& data) {
  check_dataset(data, "channel_stats");
  const Shape& s = data.images.shape();
  if (s.numel() == 0)
    throw InvalidArgument(fmt::format("channel_stats: the data set is empty: images {}", s.str()));
  const std::int64_t c = s[1], plane = s[2] * s[3];
  std::vector<double> mean(static_cast<std::size_t>(c)), sd(static_cast<std::size_t>(c));
  const float* x = data.images.data<float>();
  for (std::int64_t ch = 0; ch < c; ++ch) {
    // Sums of (v - first value) keep the variance exact enough without a second pass.
    const double ref = x[ch * plane];
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < s[0]; ++i) {
      const float* p = x + (i * c + ch) * plane;
      for (std::int64_t k = 0; k < plane; ++k) {
        const double v = p[k] - ref;
        sum += v;
        sq += v * v;
      }
    }
    const double count = static_cast<double>(s[0] * plane), m = sum / count;
    mean[static_cast<std::size_t>(ch)] = ref + m;
    sd[static_cast<std::size_t>(ch)] = std::sqrt(std::max(0.0, sq / count - m * m));
  }
  return {mean, sd};
}

void normalize(Dataset& data, const std::vector<double>& mean, const std::vector<double>& sd) {
  check_dataset(data, "normalize");
  const Shape& s = data.images.shape();
  const auto c = static_cast<std::size_t>(s[1]);
  if (mean.size() != c || sd.size() != c)
    throw InvalidArgument(
        fmt::format("normalize: mean and std need one value per channel ({}), got {} and {}", c,
                    mean.size(), sd.size()));
  for (std::size_t ch = 0; ch < c; ++ch)
    if (!(sd[ch] > 0) || !std::isfinite(sd[ch]) || !std::isfinite(mean[ch]))
      throw InvalidArgument(fmt::format(
          "normalize: channel {} needs a finite mean and a finite std > 0, got mean {} and std {}",
          ch, mean[ch], sd[ch]));
  const std::int64_t plane = s[2] * s[3];
  float* x = data.images.data<float>();
  for (std::int64_t i = 0; i < s[0]; ++i)
    for (std::size_t ch = 0; ch < c; ++ch) {
      const auto m = static_cast<float>(mean[ch]), inv = static_cast<float>(1.0 / sd[ch]);
      float* p = x + (i * static_cast<std::int64_t>(c) + static_cast<std::int64_t>(ch)) * plane;
      for (std::int64_t k = 0; k < plane; ++k) p[k] = (p[k] - m) * inv;
    }
}

}  // namespace convkit::io
