// Differentiable matmul, linear and the shape ops: reshape, flatten, permute, concat.
#include <algorithm>
#include <numeric>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

// c (m, n) = a (m, k) * b (k, n), all contiguous; the i-k-j order walks b and c row by row.
Tensor gemm(const Tensor& a, const Tensor& b, I m, I k, I n) {
  Tensor c = Tensor::zeros({m, n}, a.dtype());
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  detail::visit_float(a.dtype(), "matmul", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pa = ac.data<T>();
    const T* pb = bc.data<T>();
    T* pc = c.data<T>();
    for (I i = 0; i < m; ++i)
      for (I p = 0; p < k; ++p) {
        const T av = pa[i * k + p];
        const T* brow = pb + p * n;
        T* crow = pc + i * n;
        for (I j = 0; j < n; ++j) crow[j] += av * brow[j];
      }
  });
  return c;
}

Tensor transpose2d(const Tensor& t) { return detail::permute_copy(t, {1, 0}); }

Shape with_last(const Shape& s, I last) {
  std::vector<I> sizes(s.begin(), s.end());
  if (sizes.empty()) sizes.push_back(last);
  else sizes.back() = last;
  return Shape(std::span<const I>(sizes));
}

std::vector<I> sizes_of(const Shape& s) { return {s.begin(), s.end()}; }

// Rows of a (..., k) tensor read as a matrix: the product of all but the last size.
I rows_of(const Shape& s) {
  I m = 1;
  for (int d = 0; d + 1 < s.rank(); ++d) m *= s[d];
  return m;
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b) {
  require(a.defined() && b.defined(), "matmul: an operand is undefined");
  detail::require_float(a.value(), "matmul", "a");
  detail::require_same_dtype(a.value(), b.value(), "matmul", "a", "b");
  require(a.dim() >= 1, "matmul: a must have rank >= 1, got shape {}", a.shape());
  require(b.dim() == 2, "matmul: b must be a (k, n) matrix, got shape {}", b.shape());
  const I k = a.size(a.dim() - 1), n = b.size(1);
  require(b.size(0) == k, "matmul: a {} and b {} do not match (a's last size {} vs b's {} rows)",
          a.shape(), b.shape(), k, b.size(0));
  const I m = rows_of(a.shape());
  const Tensor ta = a.value(), tb = b.value();
  const Shape out_shape = with_last(ta.shape(), n);
  Tensor y = gemm(ta, tb, m, k, n).reshape(sizes_of(out_shape));
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return Variable::from_op(
      y, {a, b},
      [ta, tb, m, k, n, ga, gb](const Tensor& g) -> std::vector<Tensor> {
        const Tensor g2 = g.to(ta.dtype()).contiguous();
        Tensor da, db;
        if (ga) da = gemm(g2, transpose2d(tb), m, n, k).reshape(sizes_of(ta.shape()));
        if (gb) db = gemm(transpose2d(ta.contiguous().reshape({m, k})), g2, k, m, n);
        return {da, db};
      },
      "matmul");
}

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  require(x.defined() && w.defined(), "linear: x or w is undefined");
  detail::require_float(x.value(), "linear", "x");
  detail::require_same_dtype(x.value(), w.value(), "linear", "x", "w");
  require(w.dim() == 2, "linear: w must be (out, in), got shape {}", w.shape());
  require(x.dim() >= 1 && x.size(x.dim() - 1) == w.size(1),
          "linear: x {} does not match w {} (x's last size must equal in = {})", x.shape(),
          w.shape(), w.size(1));
  const I in = w.size(1), out = w.size(0), m = rows_of(x.shape());
  if (b.defined()) {
    detail::require_same_dtype(x.value(), b.value(), "linear", "x", "b");
    require(b.dim() == 1 && b.size(0) == out, "linear: b must have shape [{}], got {}", out,
            b.shape());
  }
  const Tensor tx = x.value(), tw = w.value();
  Tensor y = gemm(tx, transpose2d(tw), m, in, out);
  if (b.defined()) detail::add_into(y, detail::expand_to(b.value(), y.shape()));
  y = y.reshape(sizes_of(with_last(tx.shape(), out)));
  const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.requires_grad();
  return Variable::from_op(
      y, {x, w, b},
      [tx, tw, m, in, out, gx, gw, gb](const Tensor& g) -> std::vector<Tensor> {
        const Tensor g2 = g.to(tx.dtype()).contiguous().reshape({m, out});
        Tensor dx, dw, db;
        if (gx) dx = gemm(g2, tw, m, out, in).reshape(sizes_of(tx.shape()));
        if (gw) dw = gemm(transpose2d(g2), tx.contiguous().reshape({m, in}), out, m, in);
        if (gb) db = detail::sum_to(g2, Shape{out});
        return {dx, dw, db};
      },
      "linear");
}

Variable reshape(const Variable& x, const std::vector<I>& sizes) {
  require(x.defined(), "reshape: the input is undefined");
  const Shape in = x.shape();
  Tensor y = x.value().reshape(sizes);
  return Variable::from_op(
      y, {x},
      [in](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(sizes_of(in))}; },
      "reshape");
}

Variable flatten(const Variable& x, int start_dim, int end_dim) {
  require(x.defined(), "flatten: the input is undefined");
  const int rank = x.dim();
  if (rank == 0) return reshape(x, {1});
  const int s = start_dim < 0 ? start_dim + rank : start_dim;
  const int e = end_dim < 0 ? end_dim + rank : end_dim;
  require(s >= 0 && s < rank && e >= 0 && e < rank && s <= e,
          "flatten: start_dim {} and end_dim {} are not a valid range for shape {}", start_dim,
          end_dim, x.shape());
  std::vector<I> sizes;
  for (int d = 0; d < s; ++d) sizes.push_back(x.size(d));
  I merged = 1;
  for (int d = s; d <= e; ++d) merged *= x.size(d);
  sizes.push_back(merged);
  for (int d = e + 1; d < rank; ++d) sizes.push_back(x.size(d));
  return reshape(x, sizes);
}

Variable permute(const Variable& x, const std::vector<int>& dims) {
  require(x.defined(), "permute: the input is undefined");
  const int rank = x.dim();
  std::vector<int> d = dims;
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  bool ok = static_cast<int>(d.size()) == rank;
  for (int& v : d) {
    if (v < 0) v += rank;
    ok = ok && v >= 0 && v < rank && !seen[static_cast<std::size_t>(v)];
    if (ok) seen[static_cast<std::size_t>(v)] = true;
  }
  require(ok, "permute: dims [{}] are not a permutation of the {} dimensions of shape {}",
          fmt::join(dims, ", "), rank, x.shape());
  std::vector<int> inverse(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) inverse[static_cast<std::size_t>(d[i])] = static_cast<int>(i);
  Tensor y = detail::permute_copy(x.value(), d);
  return Variable::from_op(
      y, {x},
      [inverse](const Tensor& g) -> std::vector<Tensor> {
        return {detail::permute_copy(g, inverse)};
      },
      "permute");
}

Variable concat(const std::vector<Variable>& xs, int dim) {
  require(!xs.empty(), "concat: the list of inputs is empty");
  for (std::size_t i = 0; i < xs.size(); ++i)
    require(xs[i].defined(), "concat: input {} is undefined", i);
  const Tensor& first = xs[0].value();
  const int rank = first.dim();
  require(rank >= 1, "concat: inputs must have rank >= 1, got shape {}", first.shape());
  const int d = dim < 0 ? dim + rank : dim;
  require(d >= 0 && d < rank, "concat: dim {} is out of range for shape {}", dim,
          first.shape());
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  std::vector<I> offsets;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i].value();
    detail::require_same_dtype(first, t, "concat", "input 0", "another input");
    bool match = t.dim() == rank;
    for (int k = 0; match && k < rank; ++k) match = k == d || t.size(k) == first.size(k);
    require(match, "concat: input {} has shape {} but input 0 has shape {} (only dim {} may differ)",
            i, t.shape(), first.shape(), d);
    offsets.push_back(out_shape[d]);
    out_shape[d] += t.size(d);
  }
  Tensor y = Tensor::empty(out_shape, first.dtype());
  for (std::size_t i = 0; i < xs.size(); ++i)
    y.narrow(d, offsets[i], xs[i].size(d)).copy_from(xs[i].value());
  std::vector<I> lengths;
  for (const Variable& v : xs) lengths.push_back(v.size(d));
  return Variable::from_op(
      y, xs,
      [d, offsets, lengths](const Tensor& g) -> std::vector<Tensor> {
        std::vector<Tensor> out;
        for (std::size_t i = 0; i < offsets.size(); ++i)
          out.push_back(g.narrow(d, offsets[i], lengths[i]).clone(MemoryFormat::Contiguous));
        return out;
      },
      "concat");
}

}  // namespace convkit::ag
