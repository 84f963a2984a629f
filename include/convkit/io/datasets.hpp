// Labelled image sets in memory: the embedded shapes set, CIFAR-10 and MNIST loaders, batches.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "convkit/core/tensor.hpp"

namespace convkit::io {

/// A labelled image set in memory.
struct Dataset {
  Tensor images;  ///< (N, C, H, W) float32, contiguous, in [0, 1] until normalize()
  Tensor labels;  ///< (N) int64, each in [0, class_names.size())
  std::vector<std::string> class_names;  ///< one per class, in label order
  std::int64_t size() const;             ///< N (0 when images is undefined)
  std::int64_t num_classes() const;      ///< class_names.size()
};

/// A fixed train/test split.
struct DatasetSplit {
  Dataset train, test;
};

/// splitmix64: the random stream behind permutation, augment and make_shapes. Integer
/// arithmetic only, so every platform draws the same numbers.
struct SplitMix64 {
  std::uint64_t state = 0;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
};

/// The seed of sub-stream `index` of `seed` (e.g. one per image or per epoch): neighbouring
/// indices give unrelated streams.
///
///   auto order = io::permutation(train.size(), io::derive_seed(seed, epoch));
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index);

// --- the embedded data set -------------------------------------------------------------------

/// Options of make_shapes; see docs/datasets.md.
struct ShapesOptions {
  std::int64_t train = 6000, test = 1000;  ///< images per split (> 0)
  std::int64_t image_size = 32;            ///< square RGB images, >= 16
  std::uint64_t seed = 0;
};

/// The classes of make_shapes, in label order: disc, ring, square, square_frame, triangle,
/// plus, x_cross, stripes, checkerboard, star.
std::vector<std::string> shapes_class_names();

/// Ten classes of shapes and textures drawn at a random position, size, rotation and colour on
/// a random background with clutter and noise: (N, 3, S, S) images in [0, 1], balanced labels
/// (floor or ceil of N/10 per class), byte-identical for a seed. Train and test are drawn from
/// different streams of the seed. Throws InvalidArgument for train or test <= 0 or
/// image_size < 16.
///
///   auto [train, test] = io::make_shapes({.train = 6000, .test = 1000, .seed = 1});
DatasetSplit make_shapes(const ShapesOptions& options = {});

// --- files -----------------------------------------------------------------------------------

/// CIFAR-10 "binary version": `dir` (or its sub-folder cifar-10-batches-bin) holds
/// data_batch_1.bin .. data_batch_5.bin (train) and test_batch.bin (test), each a sequence of
/// records of 1 label byte + 3072 bytes (R, G, B planes of 32x32, rows top to bottom). Images
/// (N, 3, 32, 32) with byte b read as b / 255.0f; class names airplane .. truck.
/// Throws IoError for a file that cannot be read, FormatError (naming the file) for a size that
/// is not a positive multiple of 3073 or a label byte >= 10 ("mislabelled").
DatasetSplit load_cifar10(const std::filesystem::path& dir);

/// The bytes of one CIFAR-10 batch file (what load_cifar10 reads from each) as a data set:
/// N records of 1 label byte + 3072 pixel bytes. `source` names the bytes in messages. Throws
/// FormatError as load_cifar10 does.
///
///   io::Dataset batch = io::parse_cifar10(bytes, "test_batch.bin");
Dataset parse_cifar10(std::span<const std::uint8_t> bytes,
                      const std::string& source = "<buffer>");

/// MNIST IDX files, uncompressed: train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte in `dir` (the names with '.' for the last
/// '-', as some mirrors spell them, work too). Images (N, 1, rows, cols) with the sizes from
/// the header (28x28 for MNIST and Fashion-MNIST), byte b read as b / 255.0f; class names
/// "0" .. "9". Throws IoError for a file that cannot be read (mentioning a .gz beside it),
/// FormatError (naming the file) for a wrong magic number, a header promising more bytes than
/// the file holds or trailing bytes, image and label counts that differ, or a label >= 10.
DatasetSplit load_mnist(const std::filesystem::path& dir);

/// The bytes of an IDX images file (magic 0x00000803, sizes N, rows, cols) and an IDX labels
/// file (magic 0x00000801, size N), what load_mnist reads for each split, as a data set.
/// The sources name the bytes in messages. Throws FormatError as load_mnist does.
///
///   io::Dataset test = io::parse_mnist(image_bytes, label_bytes);
Dataset parse_mnist(std::span<const std::uint8_t> images, std::span<const std::uint8_t> labels,
                    const std::string& images_source = "<images>",
                    const std::string& labels_source = "<labels>");

// --- batches ---------------------------------------------------------------------------------

/// A permutation of 0 .. n-1 (Fisher-Yates on SplitMix64), the same for a seed on every
/// platform. Throws InvalidArgument for n < 0.
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed);

/// The images and labels at `indices`, as a new (B, C, H, W) float32 batch and (B) int64
/// labels (B = indices.size()). Throws InvalidArgument for an index outside [0, N) or a
/// malformed data set.
///
///   auto order = io::permutation(train.size(), seed);
///   auto [x, y] = io::gather(train, std::span(order).subspan(first, batch));
std::pair<Tensor, Tensor> gather(const Dataset& data, std::span<const std::int64_t> indices);

/// Training augmentation: torchvision's RandomCrop(H x W, padding = crop_padding) with zero
/// padding, then RandomHorizontalFlip(0.5) when horizontal_flip is set.
struct AugmentOptions {
  std::int64_t crop_padding = 0;  ///< 0 .. max(H, W)
  bool horizontal_flip = false;
};

/// What augment draws for image `index` of a batch: output pixel (y, x) comes from input pixel
/// (y + dy - crop_padding, x' + dx - crop_padding), x' = flip ? W - 1 - x : x (zero outside).
struct AugmentDraw {
  std::int64_t dy = 0, dx = 0;  ///< crop offsets in the padded image, 0 .. 2 * crop_padding
  bool flip = false;
};
AugmentDraw augment_draw(std::int64_t index, const AugmentOptions& options, std::uint64_t seed);

/// A new augmented copy of a (B, C, H, W) float32 batch, each image drawn independently
/// (augment_draw(b, options, seed) for image b), deterministic for a seed. With
/// crop_padding 0 and no flip it is a plain copy. Throws InvalidArgument for another shape or
/// dtype, or crop_padding outside 0 .. max(H, W).
///
///   Tensor xa = io::augment(x, {.crop_padding = 4, .horizontal_flip = true}, step_seed);
Tensor augment(const Tensor& batch, const AugmentOptions& options, std::uint64_t seed);

/// Per-channel mean and (population) standard deviation over all images and pixels, for
/// normalize(). Throws InvalidArgument for an empty or malformed data set.
std::pair<std::vector<double>, std::vector<double>> channel_stats(const Dataset& data);

/// images = (images - mean[c]) / std[c], in place. Throws InvalidArgument unless mean and std
/// have one entry per channel and every std is finite and > 0.
///
///   auto [mean, sd] = io::channel_stats(split.train);
///   io::normalize(split.train, mean, sd);
///   io::normalize(split.test, mean, sd);   // the training statistics for both
void normalize(Dataset& data, const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace convkit::io
