// Shared pieces of the Keras layers: Keras' argument checks and messages, output sizes, and
// the permuted views that let an NHWC tensor run through the channels-last conv path.
#include "nn/keras_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "convkit/autograd/functional.hpp"
#include "core/check.hpp"

namespace convkit::nn::keras::detail {

using convkit::detail::require;

namespace {

// Keras' standardize_tuple(value, 2, name): one value or two, every value > 0.
std::array<I, 2> keras_pair(const std::string& layer, const char* name, const Ints& v) {
  const std::string base = fmt::format(
      "{}: The `{}` argument must be a tuple of 2 integers. "
      "Received {}={}",
      layer, name, name, received(v));
  require(v.v.size() == 1 || v.v.size() == 2, "{}", base);
  std::set<I> bad;
  for (I x : v.v)
    if (x <= 0) bad.insert(x);
  require(bad.empty(), "{}, including values {{{}}} that do not satisfy `value > 0`", base,
          fmt::join(bad, ", "));
  return v.v.size() == 1 ? std::array<I, 2>{v.v[0], v.v[0]} : std::array<I, 2>{v.v[0], v.v[1]};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The strides of x's dimensions taken in `dims` order: a view, or a copy when not dense.
Tensor permuted(const Tensor& t, const std::vector<int>& dims) {
  Shape shape = t.shape(), strides = t.strides();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    shape[static_cast<int>(i)] = t.size(dims[i]);
    strides[static_cast<int>(i)] = t.stride(dims[i]);
  }
  const Tensor view = Tensor::from_storage(t.storage(), t.dtype(), shape, strides, t.offset());
  const bool dense =
      view.is_contiguous(MemoryFormat::Contiguous) ||
      (view.dim() >= 3 && view.dim() <= 5 && view.is_contiguous(MemoryFormat::ChannelsLast));
  return dense ? view : view.clone(MemoryFormat::Contiguous);
}

}  // namespace

std::string received(const Ints& v) {
  if (v.v.size() == 1) return std::to_string(v.v[0]);
  return fmt::format("({})", fmt::join(v.v, ", "));
}

std::string shape_str(const Shape& s) {
  std::vector<I> sizes(s.begin(), s.end());
  return fmt::format("({})", fmt::join(sizes, ", "));
}

Geo parse_geo(const std::string& layer, const Ints& kernel_size, const Ints& strides,
              const Ints& dilation_rate, const std::string& padding,
              const std::string& data_format) {
  Geo g;
  g.kernel = keras_pair(layer, "kernel_size", kernel_size);
  g.strides = keras_pair(layer, "strides", strides);
  g.dilation = keras_pair(layer, "dilation_rate", dilation_rate);
  const std::string p = lower(padding);
  require(p == "valid" || p == "same",
          "{}: The `padding` argument must be a list/tuple or one of {{'valid', 'same'}}. "
          "Received: {}",
          layer, padding);
  g.same = p == "same";
  const std::string f = lower(data_format);
  require(f == "channels_last" || f == "channels_first",
          "{}: The `data_format` argument must be one of {{'channels_first', 'channels_last'}}. "
          "Received: data_format={}",
          layer, data_format);
  g.channels_last = f == "channels_last";
  return g;
}

ConvOptions Geo::conv_options(I groups) const {
  return ConvOptions{.stride = {strides[0], strides[1]},
                     .padding = same ? Padding::same() : Padding::valid(),
                     .dilation = {dilation[0], dilation[1]},
                     .groups = groups};
}

I Geo::out_size(int d, I n) const {
  const auto i = static_cast<std::size_t>(d);
  if (same) return (n + strides[i] - 1) / strides[i];
  const I span = dilation[i] * (kernel[i] - 1) + 1;
  return n < span ? 0 : (n - span) / strides[i] + 1;
}

I input_channels(const std::string& layer, const Geo& geo, const Shape& x) {
  require(x.rank() == 4,
          "{}: Input 0 is incompatible with the layer: expected ndim=4, found ndim={}. Full "
          "shape received: {}",
          layer, x.rank(), shape_str(x));
  return geo.channels_last ? x[3] : x[1];
}

Shape output_shape(const std::string& layer, const Geo& geo, const Shape& x, I out) {
  input_channels(layer, geo, x);
  const int h = geo.channels_last ? 1 : 2;
  const I oh = geo.out_size(0, x[h]), ow = geo.out_size(1, x[h + 1]);
  require(oh > 0 && ow > 0,
          "{}: Computed output size would be zero or negative. Received `inputs shape={}`, "
          "`kernel shape=({}, {})`, `dilation_rate=({}, {})`, `strides=({}, {})`, "
          "`padding={}`.",
          layer, shape_str(x), geo.kernel[0], geo.kernel[1], geo.dilation[0], geo.dilation[1],
          geo.strides[0], geo.strides[1], geo.same ? "same" : "valid");
  return geo.channels_last ? Shape{x[0], oh, ow, out} : Shape{x[0], out, oh, ow};
}

ag::Variable permute_view(const ag::Variable& x, const std::vector<int>& dims) {
  std::vector<int> inverse(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i)
    inverse[static_cast<std::size_t>(dims[i])] = static_cast<int>(i);
  return ag::Variable::from_op(
      permuted(x.value(), dims), {x},
      [inverse](const Tensor& g) -> std::vector<Tensor> { return {permuted(g, inverse)}; },
      "permute_view");
}

ag::Variable to_nchw(const ag::Variable& x, const Geo& geo) {
  return geo.channels_last ? permute_view(x, {0, 3, 1, 2}) : x;
}

ag::Variable from_nchw(const ag::Variable& y, const Geo& geo) {
  return geo.channels_last ? permute_view(y, {0, 2, 3, 1}) : y;
}

ag::Variable conv_kernel_view(const ag::Variable& kernel) {
  return permute_view(kernel, {3, 2, 0, 1});
}

ag::Variable depthwise_kernel_view(const ag::Variable& kernel) {
  const Shape& s = kernel.shape();
  return permute_view(ag::reshape(kernel, {s[0], s[1], s[2] * s[3], 1}), {2, 3, 0, 1});
}

}  // namespace convkit::nn::keras::detail
