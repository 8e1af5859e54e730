// The CUDA backend: matching, encoding, loss, mining and gradients on an NVIDIA GPU, behind the common Plan (host
// views: upload, run, download) and cuda::CudaPlan::run_device (device-resident views on the caller's stream).
#pragma once

#include "multibox/backend.hpp"

namespace multibox::cuda {
const Backend& backend() noexcept;
}
