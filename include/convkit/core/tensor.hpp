// Tensor: a strided view of 64-byte-aligned shared storage, float32/float64 (plus I64/U8 for files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "convkit/core/dtype.hpp"
#include "convkit/core/error.hpp"
#include "convkit/core/shape.hpp"

namespace convkit {

/// How a rank 3-5 tensor is laid out in memory. Sizes are always in logical
/// (N, C, spatial...) order, as in PyTorch; only the strides differ.
///   Contiguous:   N C D H W  (row-major, W fastest)
///   ChannelsLast: N D H W C  (C fastest; NWC / NHWC / NDHWC for rank 3 / 4 / 5)
enum class MemoryFormat : std::uint8_t { Contiguous, ChannelsLast };

/// Byte storage shared between a tensor and its views. Always 64-byte aligned.
class Storage {
 public:
  /// Allocates `bytes` bytes (0 allocates nothing), zero-filled when `zero` is true and
  /// holding unspecified values otherwise. Blocks of 4 MiB and more are 2 MiB aligned, backed
  /// by transparent huge pages where the system allows, and kept for reuse when freed, up
  /// to a cache of 1 GiB (CONVKIT_STORAGE_CACHE_MB sets another size, 0 turns it off), so
  /// that a training loop's activations stop paying page faults after the first step.
  explicit Storage(std::int64_t bytes, bool zero = true);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::int64_t bytes() const { return bytes_; }

 private:
  void* block_ = nullptr;  // what the allocator returned
  void* data_ = nullptr;   // block_ rounded up to 64 bytes (2 MiB for mapped blocks)
  std::int64_t bytes_ = 0;
  std::size_t mapped_ = 0;  // bytes mapped with mmap for large blocks, else 0
};

/// The largest tensor, in bytes, that a Tensor may allocate; 0 (the default) means no limit
/// beyond what int64 can address. The environment variable CONVKIT_MAX_TENSOR_BYTES sets it
/// when the program first allocates. A larger request throws InvalidArgument naming the
/// shape, dtype, bytes and limit before anything is allocated, so a shape read from a file
/// or computed from bad arguments cannot exhaust memory.
///   convkit::set_tensor_memory_limit(std::int64_t{4} << 30);   // refuse tensors over 4 GiB
void set_tensor_memory_limit(std::int64_t bytes);
std::int64_t tensor_memory_limit();

/// A dense n-dimensional array. Copies of a Tensor share storage (like PyTorch);
/// use clone() for a deep copy.
///
///   Tensor x = Tensor::uniform({8, 32, 112, 112}, -1, 1, /*seed=*/7);
///   Tensor y = x.to(MemoryFormat::ChannelsLast);   // NHWC copy, same sizes
///   float v = y.at<float>({0, 3, 10, 10});         // logical (n, c, h, w) index
class Tensor {
 public:
  Tensor() = default;  // undefined tensor: defined() is false

  // --- construction -------------------------------------------------------
  /// A dense tensor whose elements are unspecified until written (like torch.empty);
  /// zeros() for one that starts at zero.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32,
                      MemoryFormat format = MemoryFormat::Contiguous);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32,
                      MemoryFormat format = MemoryFormat::Contiguous);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32,
                     MemoryFormat format = MemoryFormat::Contiguous);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     MemoryFormat format = MemoryFormat::Contiguous);
  /// Uniform in [low, high), deterministic for a seed on every platform
  /// (values are drawn in logical order, whatever the memory format).
  static Tensor uniform(const Shape& shape, double low, double high, std::uint64_t seed,
                        DType dtype = DType::F32, MemoryFormat format = MemoryFormat::Contiguous);
  /// Normal(mean, stddev), deterministic for a seed on every platform.
  static Tensor normal(const Shape& shape, double mean, double stddev, std::uint64_t seed,
                       DType dtype = DType::F32, MemoryFormat format = MemoryFormat::Contiguous);
  /// Contiguous tensor holding `values` (logical order), converted to `dtype`.
  static Tensor from_values(const Shape& shape, const std::vector<double>& values,
                            DType dtype = DType::F32);
  /// Wraps existing storage as a strided view (checked to stay inside the storage).
  static Tensor from_storage(std::shared_ptr<Storage> storage, DType dtype, const Shape& shape,
                             const Shape& strides, std::int64_t offset_elements);

  // --- properties ---------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  /// Strides in elements, one per dimension.
  const Shape& strides() const { return strides_; }
  int dim() const { return shape_.rank(); }
  std::int64_t size(int d) const;
  std::int64_t stride(int d) const;
  std::int64_t numel() const { return shape_.numel(); }
  std::int64_t nbytes() const { return numel() * dtype_size(dtype_); }
  std::int64_t offset() const { return offset_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  /// True when the strides are exactly those of `format` for this shape
  /// (sizes of 1 may have any stride, like PyTorch).
  bool is_contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
  /// ChannelsLast when the tensor is laid out that way (and not also plainly contiguous),
  /// Contiguous otherwise.
  MemoryFormat memory_format() const;

  // --- raw access ---------------------------------------------------------
  /// Pointer to element (0, ..., 0); throws if T does not match dtype().
  template <typename T> T* data() const;
  void* raw_data() const;

  /// Reference to one element by logical index; throws on a bad index or dtype.
  template <typename T> T& at(std::initializer_list<std::int64_t> index) const;
  /// Element at a logical index (or flat logical position) as double, any dtype.
  double get(std::initializer_list<std::int64_t> index) const;
  double get_flat(std::int64_t logical_position) const;
  void set(std::initializer_list<std::int64_t> index, double value) const;
  void set_flat(std::int64_t logical_position, double value) const;
  /// All elements in logical order, as double.
  std::vector<double> to_vector() const;

  // --- copies and views ---------------------------------------------------
  Tensor clone(MemoryFormat format) const;
  Tensor clone() const { return clone(memory_format()); }
  /// This tensor if already laid out as `format`, else a copy that is.
  Tensor to(MemoryFormat format) const;
  Tensor contiguous() const { return to(MemoryFormat::Contiguous); }
  /// A copy converted to `dtype` (this tensor if it already has it).
  Tensor to(DType dtype) const;
  /// Same elements with a new shape (one size may be -1): a view when contiguous, else a copy.
  Tensor reshape(const std::vector<std::int64_t>& sizes) const;
  /// Elements [start, start + length) of dimension `dim`, sharing storage.
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  /// Copies the values of `src` (same shape, any layout or dtype) into this tensor.
  void copy_from(const Tensor& src) const;
  void fill(double value) const;

  std::string str() const;  // "Tensor(F32, [2, 3], Contiguous)"

 private:
  // A dense tensor on new storage, zero-filled or not (empty() and zeros()).
  static Tensor allocate(const Shape& shape, DType dtype, MemoryFormat format, bool zero);
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  std::int64_t offset_ = 0;  // in elements
};

/// Strides (in elements) of a dense tensor of `shape` laid out as `format`.
Shape dense_strides(const Shape& shape, MemoryFormat format);

/// Outcome of allclose: whether |a - b| <= atol + rtol * |b| holds everywhere, and where it
/// is worst. Converts to bool; message() explains a failure.
struct CloseResult {
  bool ok = true;
  std::int64_t worst_position = -1;     // flat logical position of the worst element
  std::vector<std::int64_t> worst_index;  // its (n, c, ...) index
  double a = 0, b = 0;                  // both values there
  double excess = 0;                    // |a - b| - (atol + rtol*|b|); > 0 on failure
  std::string message;
  explicit operator bool() const { return ok; }
};

/// Elementwise closeness like numpy/torch allclose; shapes must match (throws otherwise).
/// NaN equals nothing, except NaN when equal_nan is set.
CloseResult allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
                     bool equal_nan = false);

}  // namespace convkit
