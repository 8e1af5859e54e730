// The cuda backend of a build without the CUDA toolkit (or with -DMULTIBOX_CUDA=OFF): registered all the same, so
// `multibox backends`, the conformance suite and the benchmarks show it as unavailable with the reason, never absent.
#include <string>

#include "cuda/cuda_backend.hpp"
#include "multibox/cuda.hpp"

#ifndef MULTIBOX_CUDA_REASON
#define MULTIBOX_CUDA_REASON "built without CUDA"
#endif

namespace multibox::cuda {
namespace {

class CudaUnavailable final : public Backend {
 public:
  std::string_view name() const noexcept override { return "cuda"; }
  std::string_view description() const noexcept override { return "NVIDIA GPU (not in this build)"; }
  Status available() const override {
    return Status(ErrorCode::unavailable, std::string("built without CUDA: ") + MULTIBOX_CUDA_REASON);
  }
  Result<std::unique_ptr<Plan>> prepare(const ProblemShape&, std::span<const float>, const Config&,
                                        const PlanOptions&) const override {
    return available();
  }
  Result<PlanMemory> plan_memory(const ProblemShape&, const Config&, const PlanOptions&) const override {
    return available();
  }
};

}  // namespace

const Backend& backend() noexcept {
  static const CudaUnavailable instance;
  return instance;
}

Result<std::unique_ptr<DeviceBatch>> upload_batch(const ProblemShape&, const BatchData&) {
  return backend().available();
}
Result<double> time_device_runs(CudaPlan&, DeviceBatch&, Stage, int) { return backend().available(); }
Result<double> device_copy_gb_per_s(size_t, int) { return backend().available(); }

}  // namespace multibox::cuda
