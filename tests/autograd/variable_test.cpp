// The backward engine: accumulation, shared subgraphs, no-grad scope, detach, errors.
#include <gtest/gtest.h>

#include <thread>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"
#include "convkit/autograd/variable.hpp"
#include "test_util.hpp"

namespace convkit::ag {
namespace {

Tensor vals(const Shape& s, std::vector<double> v) { return Tensor::from_values(s, v, DType::F64); }

TEST(Variable, LeafBasics) {
  Variable x(vals({3}, {1, 2, 3}), true);
  EXPECT_TRUE(x.defined());
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(x.requires_grad());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(Variable().defined());
  Variable y = x * x;
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(y.requires_grad());
  EXPECT_EQ(y.node()->name, "mul");
}

TEST(Variable, BackwardAccumulatesAcrossCalls) {
  Variable x(vals({3}, {1, 2, 3}), true);
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 4, 6}));
  sum(mul(x, 3.0)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{5, 7, 9}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Variable, SharedSubgraphUsedTwice) {
  // y = a*b used twice: z = y + y*y; dz/da = (1 + 2y) b.
  Variable a(vals({2}, {1, 2}), true), b(vals({2}, {3, -1}), true);
  Variable y = a * b;
  Variable z = sum(y + y * y);
  z.backward();
  EXPECT_EQ(a.grad().to_vector(), (std::vector<double>{(1 + 2 * 3) * 3.0, (1 - 2 * 2) * -1.0}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<double>{(1 + 2 * 3) * 1.0, (1 - 2 * 2) * 2.0}));
}

TEST(Variable, NonLeafGradsAreNotKept) {
  Variable x(vals({2}, {1, 2}), true);
  Variable y = mul(x, 2.0);
  sum(y).backward();
  EXPECT_FALSE(y.grad().defined());
  EXPECT_TRUE(x.grad().defined());
}

TEST(Variable, GradOutputSeedsANonScalar) {
  Variable x(vals({2}, {1, 2}), true);
  Variable y = mul(x, x);
  y.backward(vals({2}, {10, 100}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{20, 400}));
}

TEST(Variable, LeafWithoutGradInputGetsNone) {
  Variable x(vals({2}, {1, 2}), true), c(vals({2}, {5, 5}), false);
  sum(x * c).backward();
  EXPECT_FALSE(c.grad().defined());
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{5, 5}));
}

TEST(Variable, NoGradScopeRecordsNothing) {
  Variable x(vals({2}, {1, 2}), true);
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    {
      NoGradGuard nested;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());
    Variable y = x * x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE(grad_enabled());
}

TEST(Variable, GradModeIsPerThread) {
  NoGradGuard guard;
  bool other = false;
  std::thread t([&] { other = grad_enabled(); });
  t.join();
  EXPECT_TRUE(other);
  EXPECT_FALSE(grad_enabled());
}

TEST(Variable, ZeroGradThenFreshAccumulation) {
  Variable x(vals({2}, {1, 2}), true);
  sum(x * x).backward();
  x.zero_grad();
  sum(mul(x, 5.0)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{5, 5}));
  x.set_grad(vals({2}, {1, 1}));
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 2}));
}

TEST(Variable, F32GradientsStayF32) {
  Variable x(Tensor::uniform({2, 3}, -1, 1, 4), true);
  sum(relu(x)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::F32);
  EXPECT_EQ(x.grad().shape(), x.shape());
}

TEST(Variable, DetachCutsHistory) {
  Variable x(vals({2}, {1, 2}), true);
  Variable y = x * x;
  Variable d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.value().to_vector(), y.value().to_vector());
  sum(x * d).backward();  // d is a constant: grad = d
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{1, 4}));
}

TEST(Variable, ErrorsSayWhatIsWrong) {
  Variable x(vals({2}, {1, 2}), true);
  test::expect_error<InvalidArgument>([&] { (x * x).backward(); },
                                      {"backward", "[2]", "grad_output"});
  Variable c(vals({1}, {1}), false);
  test::expect_error<InvalidArgument>([&] { c.backward(); }, {"does not require"});
  test::expect_error<InvalidArgument>([&] { (x * x).backward(vals({3}, {1, 1, 1})); },
                                      {"grad_output", "[3]", "[2]"});
  test::expect_error<InvalidArgument>([&] { x.set_value(vals({3}, {1, 1, 1})); },
                                      {"set_value", "[3]"});
  test::expect_error<InvalidArgument>([&] { (x * x).set_requires_grad(false); }, {"leaf"});
  test::expect_error<InvalidArgument>([&] { add(x, Variable(vals({3}, {1, 1, 1}))); },
                                      {"add", "[2]", "[3]"});
}

TEST(Variable, GraphIsFreedUnlessRetained) {
  Variable x(vals({2}, {1, 2}), true);
  Variable y = sum(x * x);
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{4, 8}));
  test::expect_error<InvalidArgument>([&] { y.backward(); }, {"already freed", "retain_graph"});
}

TEST(Variable, LeafRootBackward) {
  Variable x(vals({1}, {3}), true);
  x.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{1}));
}

TEST(Variable, DeepChainDoesNotOverflow) {
  Variable x(vals({1}, {1}), true);
  Variable y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, 1.0);
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{1}));
}

TEST(Gradcheck, CatchesAWrongGradient) {
  Variable x(Tensor::uniform({3}, -1, 1, 3, DType::F64), true);
  auto wrong = [](const std::vector<Variable>& v) {
    const Tensor t = v[0].value().clone();
    return Variable::from_op(
        t, {v[0]},
        [](const Tensor& g) -> std::vector<Tensor> {
          Tensor d = g.clone();
          d.set_flat(1, d.get_flat(1) * 2);
          return {d};
        },
        "wrong");
  };
  GradcheckResult r = gradcheck(wrong, {x});
  EXPECT_FALSE(r);
  EXPECT_EQ(r.worst_input, 0);
  EXPECT_EQ(r.worst_position, 1);
  EXPECT_NE(r.message.find("FAILED"), std::string::npos);
  GradcheckResult ok = gradcheck([](const std::vector<Variable>& v) { return v[0] * v[0]; }, {x});
  EXPECT_TRUE(ok) << ok.message;
  EXPECT_EQ(ok.checked, 3);
}

}  // namespace
}  // namespace convkit::ag
