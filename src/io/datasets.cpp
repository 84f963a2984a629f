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
using Bytes = std::vector<unsigned char>;

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
            std::int64_t first, const char* what, const fs::path& path) {
  float* dst = d.images.data<float>() + first * item;
  std::int64_t* labels = d.labels.data<std::int64_t>() + first;
  for (std::int64_t i = 0; i < count; ++i, dst += item) {
    const unsigned char y = label[i * label_stride];
    if (y >= 10)
      throw FormatError(
          fmt::format("{} file '{}': record {} is mislabelled: label {}, expected 0..9", what,
                      path.string(), i, y));
    labels[i] = y;
    const unsigned char* src = pixels + i * pixel_stride;
    for (std::int64_t k = 0; k < item; ++k) dst[k] = static_cast<float>(src[k]) / 255.0f;
  }
}

Dataset read_cifar_files(const std::vector<fs::path>& files) {
  constexpr std::int64_t kRecord = 1 + 3 * 32 * 32;
  std::vector<Bytes> contents;
  std::int64_t total = 0;
  for (const auto& path : files) {
    contents.push_back(read_file(path, "CIFAR-10"));
    const auto size = static_cast<std::int64_t>(contents.back().size());
    if (size == 0 || size % kRecord != 0)
      throw FormatError(
          fmt::format("CIFAR-10 file '{}' has {} bytes, not a positive multiple of {} (1 label "
                      "byte + 3072 pixel bytes per record): truncated or not the binary version",
                      path.string(), size, kRecord));
    total += size / kRecord;
  }
  Dataset d{
      Tensor::empty({total, 3, 32, 32}),
      Tensor::empty({total}, DType::I64),
      {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}};
  std::int64_t first = 0;
  for (std::size_t f = 0; f < files.size(); ++f) {
    const auto count = static_cast<std::int64_t>(contents[f].size()) / kRecord;
    decode(contents[f].data(), kRecord, contents[f].data() + 1, kRecord, count, kRecord - 1, d,
           first, "CIFAR-10", files[f]);
    first += count;
  }
  return d;
}

std::uint32_t big_endian_u32(const Bytes& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

struct Idx {
  Bytes bytes;
  std::vector<std::uint64_t> dims;  // count first
};

/// Reads one IDX file and checks the magic number and that the size is what the header says.
Idx read_idx(const fs::path& path, std::uint32_t magic) {
  Idx idx{read_file(path, "MNIST"), {}};
  const Bytes& b = idx.bytes;
  const std::size_t rank = magic & 0xFF, header = 4 + 4 * rank;
  const char* kind = rank == 1 ? "labels" : "images";
  if (b.size() < header || big_endian_u32(b, 0) != magic)
    throw FormatError(fmt::format(
        "MNIST file '{}' is not an uncompressed IDX file of {}: magic number {}, expected 0x{:08x}",
        path.string(), kind,
        b.size() < 4 ? "missing" : fmt::format("0x{:08x}", big_endian_u32(b, 0)), magic));
  std::uint64_t item = 1;  // bytes per image (or label): two 32-bit sizes cannot overflow
  for (std::size_t k = 0; k < rank; ++k) {
    idx.dims.push_back(big_endian_u32(b, 4 + 4 * k));
    if (k > 0) item *= idx.dims.back();
  }
  const std::uint64_t n = idx.dims[0], body = b.size() - header;
  if (n == 0 || item == 0 || n > body / item || body != n * item)
    throw FormatError(fmt::format(
        "MNIST file '{}' is {}: its header says {} {} ({}) but {} bytes follow it", path.string(),
        n == 0 || item == 0 ? "empty"
        : n > body / item   ? "truncated"
                            : "followed by trailing bytes",
        n, kind, fmt::join(idx.dims, "x"), body));
  return idx;
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
  const Idx images = read_idx(ip, 0x00000803), labels = read_idx(lp, 0x00000801);
  if (images.dims[0] != labels.dims[0])
    throw FormatError(fmt::format("MNIST files disagree: '{}' holds {} images but '{}' {} labels",
                                  ip.string(), images.dims[0], lp.string(), labels.dims[0]));
  const auto n = static_cast<std::int64_t>(images.dims[0]);
  const auto rows = static_cast<std::int64_t>(images.dims[1]);
  const auto cols = static_cast<std::int64_t>(images.dims[2]);
  Dataset d{Tensor::empty({n, 1, rows, cols}),
            Tensor::empty({n}, DType::I64),
            {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  decode(labels.bytes.data() + 8, 1, images.bytes.data() + 16, rows * cols, n, rows * cols, d, 0,
         "MNIST", lp);
  return d;
}

}  // namespace

std::int64_t Dataset::size() const { return images.defined() ? images.size(0) : 0; }
std::int64_t Dataset::num_classes() const { return static_cast<std::int64_t>(class_names.size()); }

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) {
  SplitMix64 a{seed};
  SplitMix64 b{a.next() ^ (index * 0xD1B54A32D192ED03ull)};
  return b.next();
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
