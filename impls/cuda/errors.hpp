// CUDA runtime errors as multibox Status values that name the failing call, and the reasons the backend cannot run.
#pragma once

#include <cuda_runtime_api.h>

#include <string_view>

#include "multibox/status.hpp"

namespace multibox::cuda::detail {

// Ok for cudaSuccess; otherwise "cuda: <call> failed: cudaErrorX (description)". Errors that mean "no usable GPU or
// driver here" or "does not fit" map to ErrorCode::unavailable, everything else to ErrorCode::internal.
Status cuda_status(cudaError_t error, std::string_view call);

// Why the backend cannot run, from what the runtime said about the devices (pure, so tests cover every branch).
Status availability(cudaError_t count_error, int device_count, int major, int minor);

// The lowest compute capability the build carries code for (CMake passes the smallest of CMAKE_CUDA_ARCHITECTURES;
// by default sm_90 SASS and compute_90 PTX, which newer devices JIT-compile).
#ifndef MULTIBOX_CUDA_MIN_ARCH
#define MULTIBOX_CUDA_MIN_ARCH 90
#endif
inline constexpr int kMinMajor = MULTIBOX_CUDA_MIN_ARCH / 10;
inline constexpr int kMinMinor = MULTIBOX_CUDA_MIN_ARCH % 10;

}  // namespace multibox::cuda::detail

// Returns the Status of a failing runtime call from the enclosing function (which returns Status or Result<T>).
#define MULTIBOX_CUDA_TRY(call)                                                            \
  do {                                                                                     \
    if (::multibox::Status multibox_cuda_status_ = ::multibox::cuda::detail::cuda_status((call), #call); \
        !multibox_cuda_status_)                                                            \
      return multibox_cuda_status_;                                                        \
  } while (false)
