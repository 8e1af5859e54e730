// Umbrella header of the public API.
#pragma once

#include "multibox/backend.hpp"
#include "multibox/batch.hpp"
#include "multibox/config.hpp"
#include "multibox/limits.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"
#include "multibox/status.hpp"
