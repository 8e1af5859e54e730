// The reference backend: scalar code that reads like DESIGN.md, accumulating in double. It is the oracle
// every other backend is compared with, so it is written to be obviously right, not fast.
#pragma once

#include "multibox/backend.hpp"

namespace multibox::naive {
const Backend& backend() noexcept;
}
