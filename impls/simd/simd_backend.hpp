// The SIMD CPU backend: vectorised, multi-threaded matching and loss that agree exactly with the reference on
// matches and within the stated tolerances on losses and gradients (DESIGN.md section 6).
#pragma once

#include "multibox/backend.hpp"

namespace multibox::simd {
const Backend& backend() noexcept;
}
