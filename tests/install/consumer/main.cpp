// Uses the installed convkit through its umbrella header: one depthwise convolution.
#include <convkit/convkit.hpp>

int main() {
  const convkit::Tensor x = convkit::Tensor::ones({1, 4, 5, 5});
  const convkit::Tensor w = convkit::Tensor::ones({8, 1, 3, 3});  // multiplier 2
  const convkit::Tensor y = convkit::conv2d(x, w, {}, {.padding = 1, .groups = 4});
  // The centre pixel sums nine ones.
  return y.shape() == convkit::Shape{1, 8, 5, 5} && y.get({0, 7, 2, 2}) == 9.0 ? 0 : 1;
}
