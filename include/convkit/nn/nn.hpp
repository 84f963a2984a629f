// Umbrella header of the module layer: Module, layers, blocks, models, summary.
#pragma once

#include "convkit/nn/attention.hpp"
#include "convkit/nn/conv.hpp"
#include "convkit/nn/convert.hpp"
#include "convkit/nn/keras.hpp"
#include "convkit/nn/layers.hpp"
#include "convkit/nn/mobilenet.hpp"
#include "convkit/nn/module.hpp"
#include "convkit/nn/parametrize.hpp"
#include "convkit/nn/prune.hpp"
#include "convkit/nn/summary.hpp"
