// tie_mean: entries of each row replaced by their group's mean (weight-sharing constraints).
#include <algorithm>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;

namespace {

// Rows of P entries; members[g] lists group g's positions in increasing order, so each
// group's sum is taken in one fixed order and written to every member.
template <typename T>
void tie_rows(const T* src, T* dst, std::int64_t rows, std::int64_t plane,
              const std::vector<std::vector<std::int64_t>>& members) {
  detail::parallel_elements(rows, [&](std::int64_t r) {
    const T* s = src + r * plane;
    T* d = dst + r * plane;
    for (const auto& group : members) {
      double sum = 0;
      for (std::int64_t j : group) sum += static_cast<double>(s[j]);
      const T mean = static_cast<T>(sum / static_cast<double>(group.size()));
      for (std::int64_t j : group) d[j] = mean;
    }
  });
}

Tensor tie_tensor(const Tensor& x, const std::vector<std::vector<std::int64_t>>& members,
           std::int64_t plane) {
  const Tensor src = x.contiguous();
  Tensor dst = Tensor::empty(src.shape(), src.dtype());
  detail::visit_float(src.dtype(), "tie_mean", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    tie_rows(src.data<T>(), dst.data<T>(), src.numel() / plane, plane, members);
  });
  return dst;
}

}  // namespace

Variable tie_mean(const Variable& x, const std::vector<std::int64_t>& group_of) {
  require(x.defined(), "tie_mean: the input is undefined");
  detail::require_float(x.value(), "tie_mean", "x");
  const auto plane = static_cast<std::int64_t>(group_of.size());
  require(plane > 0, "tie_mean: group_of is empty");
  require(x.numel() % plane == 0,
          "tie_mean: x has {} elements ({}), not a multiple of the {} positions of group_of",
          x.numel(), x.shape(), plane);
  const std::int64_t groups = *std::max_element(group_of.begin(), group_of.end()) + 1;
  require(*std::min_element(group_of.begin(), group_of.end()) >= 0 && groups <= plane,
          "tie_mean: group ids must lie in [0, {}), got a range up to {}", plane, groups - 1);
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(groups));
  for (std::int64_t j = 0; j < plane; ++j)
    members[static_cast<std::size_t>(group_of[static_cast<std::size_t>(j)])].push_back(j);
  std::erase_if(members, [](const auto& g) { return g.empty(); });
  return Variable::from_op(
      tie_tensor(x.value(), members, plane), {x},
      [members, plane, dtype = x.dtype()](const Tensor& g) -> std::vector<Tensor> {
        return {tie_tensor(g.to(dtype), members, plane)};
      },
      "tie_mean");
}

}  // namespace convkit::ag
