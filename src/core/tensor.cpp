// Tensor: storage, layouts, views, copies and element access.
#include "convkit/core/tensor.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/check.hpp"
#include "core/tensor_iter.hpp"

namespace convkit {

using detail::require;

Shape dense_strides(const Shape& shape, MemoryFormat format) {
  const int rank = shape.rank();
  Shape strides = shape;
  std::int64_t s = 1;
  auto take = [&](int d) {
    strides[d] = s;
    s = checked_mul(s, std::max<std::int64_t>(shape[d], 1), "tensor strides");
  };
  if (format == MemoryFormat::Contiguous) {
    for (int d = rank - 1; d >= 0; --d) take(d);
    return strides;
  }
  require(rank >= 3 && rank <= 5,
          "channels-last layout needs a rank 3-5 tensor (N, C, spatial...), got shape {}",
          shape);
  take(1);                                  // C fastest
  for (int d = rank - 1; d >= 2; --d) take(d);  // then W, H, D
  take(0);                                  // N slowest
  return strides;
}

namespace {

// -1: not read from the environment yet.
std::atomic<std::int64_t> g_memory_limit{-1};

std::int64_t limit_from_environment() {
  const char* env = std::getenv("CONVKIT_MAX_TENSOR_BYTES");
  if (env == nullptr || *env == '\0') return 0;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  require(*end == '\0' && v >= 0, "CONVKIT_MAX_TENSOR_BYTES must be a byte count >= 0, got '{}'",
          env);
  return static_cast<std::int64_t>(v);
}

}  // namespace

void set_tensor_memory_limit(std::int64_t bytes) {
  require(bytes >= 0, "set_tensor_memory_limit: bytes must be >= 0 (0: no limit), got {}", bytes);
  g_memory_limit.store(bytes);
}

std::int64_t tensor_memory_limit() {
  std::int64_t limit = g_memory_limit.load();
  if (limit < 0) {
    std::int64_t expected = -1;
    g_memory_limit.compare_exchange_strong(expected, limit_from_environment());
    limit = g_memory_limit.load();
  }
  return limit;
}

namespace {

std::int64_t checked_nbytes(const Shape& shape, DType dtype) {
  const std::int64_t n = shape.numel();
  std::int64_t bytes = 0;
  require(!__builtin_mul_overflow(n, dtype_size(dtype), &bytes),
          "shape {} of {} needs more bytes than int64 can count", shape, dtype_name(dtype));
  // Leave headroom for rounding to 64 and for pointer arithmetic.
  require(bytes <= std::numeric_limits<std::int64_t>::max() / 2,
          "shape {} of {} needs {} bytes, more than can be addressed", shape,
          dtype_name(dtype), bytes);
  const std::int64_t limit = tensor_memory_limit();
  require(limit == 0 || bytes <= limit,
          "shape {} of {} needs {} bytes, over the tensor memory limit of {} bytes "
          "(set_tensor_memory_limit, CONVKIT_MAX_TENSOR_BYTES)",
          shape, dtype_name(dtype), bytes, limit);
  return bytes;
}

// Converts a double to T; integers must be finite and in range (a cast would be undefined).
// The upper bound is max + 1, exclusive: (double)INT64_MAX rounds up to 2^63, which int64
// cannot hold, so `v <= max` would let 2^63 through.
template <typename T>
T convert(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    require(std::isfinite(v) && v >= static_cast<double>(std::numeric_limits<T>::min()) &&
                v < static_cast<double>(std::numeric_limits<T>::max()) + 1.0,
            "value {} does not fit in {}", v, dtype_name(dtype_of_v<T>));
    return static_cast<T>(v);
  }
}

// splitmix64: tiny, well mixed and identical on every platform (unlike std distributions).
struct SplitMix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

template <typename Gen>
Tensor filled(const Shape& shape, DType dtype, MemoryFormat format, Gen&& gen) {
  Tensor t = Tensor::empty(shape, dtype, format);
  detail::visit_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = t.data<T>();
    detail::for_each_offset2(shape, t.strides(), t.strides(),
                             [&](std::int64_t o, std::int64_t) { p[o] = convert<T>(gen()); });
  });
  return t;
}

std::vector<std::int64_t> unravel(const Shape& shape, std::int64_t pos) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = shape[d] == 0 ? 0 : pos % shape[d];
    pos = shape[d] == 0 ? 0 : pos / shape[d];
  }
  return idx;
}

}  // namespace

Tensor Tensor::allocate(const Shape& shape, DType dtype, MemoryFormat format, bool zero) {
  Tensor t;
  const std::int64_t bytes = checked_nbytes(shape, dtype);  // before anything else is sized
  t.strides_ = dense_strides(shape, format);
  t.storage_ = std::make_shared<Storage>(bytes, zero);
  t.dtype_ = dtype;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, MemoryFormat format) {
  return allocate(shape, dtype, format, false);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, MemoryFormat format) {
  return allocate(shape, dtype, format, true);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, MemoryFormat format) {
  return full(shape, 1.0, dtype, format);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, MemoryFormat format) {
  return filled(shape, dtype, format, [value] { return value; });
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, std::uint64_t seed,
                       DType dtype, MemoryFormat format) {
  require(low <= high, "uniform: low {} is greater than high {}", low, high);
  SplitMix rng{seed};
  return filled(shape, dtype, format, [&] { return low + (high - low) * rng.unit(); });
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, std::uint64_t seed,
                      DType dtype, MemoryFormat format) {
  require(stddev >= 0, "normal: stddev must be >= 0, got {}", stddev);
  SplitMix rng{seed};
  return filled(shape, dtype, format, [&] {
    // Box-Muller, one value per pair of draws; 1 - u keeps the log argument in (0, 1].
    const double u1 = 1.0 - rng.unit(), u2 = rng.unit();
    return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor Tensor::from_values(const Shape& shape, const std::vector<double>& values, DType dtype) {
  require(static_cast<std::int64_t>(values.size()) == shape.numel(),
          "from_values: shape {} holds {} elements but {} values were given", shape,
          shape.numel(), values.size());
  std::size_t i = 0;
  return filled(shape, dtype, MemoryFormat::Contiguous, [&] { return values[i++]; });
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, DType dtype, const Shape& shape,
                            const Shape& strides, std::int64_t offset) {
  require(storage != nullptr, "from_storage: storage is null");
  require(strides.rank() == shape.rank(), "from_storage: shape {} but strides {}", shape,
          strides);
  require(offset >= 0, "from_storage: negative offset {}", offset);
  std::int64_t last = offset;  // largest element offset reached
  if (shape.numel() > 0)
    for (int d = 0; d < shape.rank(); ++d)
      last = checked_add(last, checked_mul(shape[d] - 1, strides[d], "from_storage"),
                         "from_storage");
  const std::int64_t capacity = storage->bytes() / dtype_size(dtype);
  require(shape.numel() == 0 || last < capacity,
          "from_storage: view {} with strides {} at offset {} reaches element {} but the "
          "storage holds {}",
          shape, strides, offset, last, capacity);
  Tensor t;
  t.storage_ = std::move(storage);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = strides;
  t.offset_ = offset;
  return t;
}

std::int64_t Tensor::size(int d) const {
  require(d >= 0 && d < dim(), "dimension {} out of range for shape {}", d, shape_);
  return shape_[d];
}

std::int64_t Tensor::stride(int d) const {
  require(d >= 0 && d < dim(), "dimension {} out of range for shape {}", d, shape_);
  return strides_[d];
}

bool Tensor::is_contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::ChannelsLast && (dim() < 3 || dim() > 5)) return false;
  if (numel() == 0) return true;
  const Shape want = dense_strides(shape_, format);
  for (int d = 0; d < dim(); ++d)
    if (shape_[d] != 1 && strides_[d] != want[d]) return false;
  return true;
}

MemoryFormat Tensor::memory_format() const {
  if (dim() >= 3 && dim() <= 5 && !is_contiguous(MemoryFormat::Contiguous) &&
      is_contiguous(MemoryFormat::ChannelsLast))
    return MemoryFormat::ChannelsLast;
  return MemoryFormat::Contiguous;
}

template <typename T>
T* Tensor::data() const {
  require(defined(), "data(): tensor is undefined");
  require(dtype_ == dtype_of_v<T>, "data(): tensor holds {} but {} was asked for",
          dtype_name(dtype_), dtype_name(dtype_of_v<T>));
  return static_cast<T*>(storage_->data()) + offset_;
}

void* Tensor::raw_data() const {
  require(defined(), "raw_data(): tensor is undefined");
  return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

template <typename T>
T& Tensor::at(std::initializer_list<std::int64_t> index) const {
  require(static_cast<int>(index.size()) == dim(), "index of {} values for a rank-{} tensor",
          index.size(), dim());
  std::int64_t off = 0;
  int d = 0;
  for (std::int64_t i : index) {
    require(i >= 0 && i < shape_[d], "index {} out of range for dimension {} of shape {}", i, d,
            shape_);
    off += i * strides_[d++];
  }
  return data<T>()[off];
}

template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int64_t* Tensor::data<std::int64_t>() const;
template std::uint8_t* Tensor::data<std::uint8_t>() const;
template float& Tensor::at<float>(std::initializer_list<std::int64_t>) const;
template double& Tensor::at<double>(std::initializer_list<std::int64_t>) const;
template std::int64_t& Tensor::at<std::int64_t>(std::initializer_list<std::int64_t>) const;
template std::uint8_t& Tensor::at<std::uint8_t>(std::initializer_list<std::int64_t>) const;

double Tensor::get(std::initializer_list<std::int64_t> index) const {
  return detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return static_cast<double>(at<T>(index));
  });
}

void Tensor::set(std::initializer_list<std::int64_t> index, double value) const {
  detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    at<T>(index) = convert<T>(value);
  });
}

namespace {
std::int64_t flat_offset(const Tensor& t, std::int64_t pos) {
  require(pos >= 0 && pos < t.numel(), "flat position {} out of range for shape {}", pos,
          t.shape());
  const auto idx = unravel(t.shape(), pos);
  std::int64_t off = 0;
  for (int d = 0; d < t.dim(); ++d) off += idx[static_cast<std::size_t>(d)] * t.strides()[d];
  return off;
}
}  // namespace

double Tensor::get_flat(std::int64_t pos) const {
  const std::int64_t off = flat_offset(*this, pos);
  return detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return static_cast<double>(data<T>()[off]);
  });
}

void Tensor::set_flat(std::int64_t pos, double value) const {
  const std::int64_t off = flat_offset(*this, pos);
  detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    data<T>()[off] = convert<T>(value);
  });
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(numel()));
  detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* p = data<T>();
    detail::for_each_offset2(shape_, strides_, strides_, [&](std::int64_t o, std::int64_t) {
      out.push_back(static_cast<double>(p[o]));
    });
  });
  return out;
}

void Tensor::copy_from(const Tensor& src) const {
  require(defined() && src.defined(), "copy_from: undefined tensor");
  require(src.shape() == shape_, "copy_from: source shape {} differs from destination shape {}",
          src.shape(), shape_);
  detail::visit_dtype(dtype_, [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    detail::visit_dtype(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      D* d = data<D>();
      const S* s = src.data<S>();
      detail::for_each_offset2(shape_, strides_, src.strides(),
                               [&](std::int64_t od, std::int64_t os) {
                                 if constexpr (std::is_same_v<D, S>)
                                   d[od] = s[os];
                                 else
                                   d[od] = convert<D>(static_cast<double>(s[os]));
                               });
    });
  });
}

void Tensor::fill(double value) const {
  detail::visit_dtype(dtype_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = data<T>();
    const T v = convert<T>(value);
    detail::for_each_offset2(shape_, strides_, strides_,
                             [&](std::int64_t o, std::int64_t) { p[o] = v; });
  });
}

Tensor Tensor::clone(MemoryFormat format) const {
  Tensor t = empty(shape_, dtype_, format);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(MemoryFormat format) const {
  return is_contiguous(format) ? *this : clone(format);
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, memory_format());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& sizes) const {
  const std::string asked = fmt::format("[{}]", fmt::join(sizes, ", "));
  std::vector<std::int64_t> resolved = sizes;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == -1) {
      require(infer < 0, "reshape {} -> {}: only one size may be -1", shape_, asked);
      infer = static_cast<int>(d);
    } else {
      require(sizes[d] >= 0, "reshape {} -> {}: negative size {}", shape_, asked, sizes[d]);
      known = checked_mul(known, sizes[d], "reshape");
    }
  }
  if (infer >= 0) {
    require(known > 0 && numel() % known == 0, "reshape {} -> {}: cannot infer the -1 size",
            shape_, asked);
    resolved[static_cast<std::size_t>(infer)] = numel() / known;
  }
  const Shape target{std::span<const std::int64_t>(resolved)};
  require(target.numel() == numel(), "reshape {} -> {}: element counts {} and {} differ",
          shape_, target, numel(), target.numel());
  if (!is_contiguous()) return contiguous().reshape(resolved);
  Tensor t = *this;
  t.shape_ = target;
  t.strides_ = dense_strides(target, MemoryFormat::Contiguous);
  return t;
}

Tensor Tensor::narrow(int d, std::int64_t start, std::int64_t length) const {
  require(d >= 0 && d < dim(), "narrow: dimension {} out of range for shape {}", d, shape_);
  require(start >= 0 && length >= 0 && start <= shape_[d] - length,
          "narrow: [{}, {} + {}) is outside dimension {} of size {}", start, start, length, d,
          shape_[d]);
  Tensor t = *this;
  t.shape_[d] = length;
  t.offset_ += start * strides_[d];
  return t;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return fmt::format("Tensor({}, {}, {})", dtype_name(dtype_), shape_.str(),
                     memory_format() == MemoryFormat::ChannelsLast ? "ChannelsLast" : "Contiguous");
}

CloseResult allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  require(a.defined() && b.defined(), "allclose: undefined tensor");
  require(a.shape() == b.shape(), "allclose: shapes {} and {} differ", a.shape(),
          b.shape());
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  CloseResult r;
  std::int64_t bad = 0;
  r.excess = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double x = va[i], y = vb[i];
    double excess;
    if (std::isnan(x) || std::isnan(y)) {
      excess = (equal_nan && std::isnan(x) && std::isnan(y)) ? -1.0
                                                             : std::numeric_limits<double>::infinity();
    } else if (x == y) {
      excess = -(atol + rtol * std::fabs(y));  // also covers equal infinities
    } else {
      excess = std::fabs(x - y) - (atol + rtol * std::fabs(y));
      if (std::isnan(excess)) excess = std::numeric_limits<double>::infinity();
    }
    if (excess > 0) ++bad;
    if (excess > r.excess) {
      r.excess = excess;
      r.worst_position = static_cast<std::int64_t>(i);
      r.a = x;
      r.b = y;
    }
  }
  if (r.worst_position >= 0) r.worst_index = unravel(a.shape(), r.worst_position);
  r.ok = bad == 0;
  if (!r.ok)
    r.message = fmt::format(
        "allclose failed (rtol {}, atol {}): {} of {} elements differ; worst at index [{}]: "
        "a = {:.10g}, b = {:.10g}, |a - b| = {:.3g}",
        rtol, atol, bad, va.size(), fmt::join(r.worst_index, ", "), r.a, r.b, std::fabs(r.a - r.b));
  return r;
}

}  // namespace convkit
