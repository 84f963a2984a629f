// Umbrella header of the module layer: Module, layers, blocks, models, summary.
#pragma once

#include "convkit/nn/conv.hpp"
#include "convkit/nn/convert.hpp"
#include "convkit/nn/layers.hpp"
#include "convkit/nn/mobilenet.hpp"
#include "convkit/nn/module.hpp"
#include "convkit/nn/summary.hpp"
