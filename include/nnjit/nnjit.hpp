// The whole public API of nnjit. See engine.hpp for a usage example.
#pragma once

#include "nnjit/engine.hpp"
#include "nnjit/error.hpp"
#include "nnjit/options.hpp"
#include "nnjit/tensor.hpp"
