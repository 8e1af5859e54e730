#include "cuda/errors.hpp"

#include <fmt/format.h>

namespace multibox::cuda::detail {

Status cuda_status(cudaError_t error, std::string_view call) {
  if (error == cudaSuccess) return {};
  ErrorCode code = ErrorCode::internal;
  switch (error) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorDevicesUnavailable:
    case cudaErrorMemoryAllocation:
      code = ErrorCode::unavailable;
      break;
    default:
      break;
  }
  return Status(code, fmt::format("cuda: {} failed: {} ({})", call, cudaGetErrorName(error), cudaGetErrorString(error)));
}

Status availability(cudaError_t count_error, int device_count, int major, int minor) {
  switch (count_error) {
    case cudaSuccess:
      break;
    case cudaErrorNoDevice:
      return Status(ErrorCode::unavailable, "no CUDA device (cudaGetDeviceCount: cudaErrorNoDevice)");
    case cudaErrorInsufficientDriver:
      return Status(ErrorCode::unavailable,
                    fmt::format("no NVIDIA driver, or one older than this CUDA {}.{} runtime "
                                "(cudaGetDeviceCount: cudaErrorInsufficientDriver)",
                                CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10));
    default:
      return Status(ErrorCode::unavailable, fmt::format("the CUDA runtime cannot start: cudaGetDeviceCount: {} ({})",
                                                        cudaGetErrorName(count_error),
                                                        cudaGetErrorString(count_error)));
  }
  if (device_count <= 0) return Status(ErrorCode::unavailable, "no CUDA device (cudaGetDeviceCount returned 0)");
  if (major < kMinMajor || (major == kMinMajor && minor < kMinMinor))
    return Status(ErrorCode::unavailable,
                  fmt::format("device 0 has compute capability {}.{}; this build carries code for {}.{} and newer "
                              "(rebuild with -DCMAKE_CUDA_ARCHITECTURES=<yours>)",
                              major, minor, kMinMajor, kMinMinor));
  return {};
}

}  // namespace multibox::cuda::detail
