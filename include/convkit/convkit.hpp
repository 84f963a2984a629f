// Umbrella header: everything public in convkit.
#pragma once

#include "convkit/autograd/external.hpp"
#include "convkit/core/dtype.hpp"
#include "convkit/core/error.hpp"
#include "convkit/core/shape.hpp"
#include "convkit/core/tensor.hpp"
#include "convkit/io/checkpoint.hpp"
#include "convkit/io/datasets.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "convkit/ops/conv_problem.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/clip.hpp"
#include "convkit/optim/optimizer.hpp"
#include "convkit/optim/schedule.hpp"
#include "convkit/optim/sgd.hpp"
