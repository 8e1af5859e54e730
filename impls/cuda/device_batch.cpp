// Device-resident batches and the timing helpers of cuda.hpp: what a benchmark or an example needs to drive
// run_device() without CUDA code of its own.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "cuda/errors.hpp"
#include "multibox/cuda.hpp"

namespace multibox::cuda {
namespace {

// One cudaMalloc'ed array, freed with its owner.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (data_ != nullptr) cudaFree(data_);
  }
  Status allocate(size_t count, const char* name) {
    count_ = count;
    if (count == 0) return {};
    void* p = nullptr;
    if (Status s = detail::cuda_status(cudaMalloc(&p, count * sizeof(T)), fmt::format("cudaMalloc({}, {} B)", name,
                                                                                       count * sizeof(T)));
        !s)
      return s;
    data_ = static_cast<T*>(p);
    return {};
  }
  Status upload(const std::vector<T>& host, const char* name) {
    if (Status s = allocate(host.size(), name); !s) return s;
    if (host.empty()) return {};
    return detail::cuda_status(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                               fmt::format("cudaMemcpy({} <- host)", name));
  }
  Status download(std::span<T> host, const char* name) const {
    if (host.empty()) return {};
    return detail::cuda_status(cudaMemcpy(host.data(), data_, host.size_bytes(), cudaMemcpyDeviceToHost),
                               fmt::format("cudaMemcpy(host <- {})", name));
  }
  std::span<T> span() const noexcept { return {data_, count_}; }
  T* data() const noexcept { return data_; }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

class DeviceBatchImpl final : public DeviceBatch {
 public:
  Status init(const ProblemShape& shape, const BatchData& data) {
    const size_t rows = static_cast<size_t>(shape.batch) * shape.num_priors;
    const size_t G = data.gt_labels.size();
    Status s;
    for (Status step : {boxes_.upload(data.gt_boxes, "gt_boxes"), labels_.upload(data.gt_labels, "gt_labels"),
                        offsets_.upload(data.gt_offsets, "gt_offsets"), conf_.upload(data.conf, "conf"),
                        loc_.upload(data.loc, "loc"), matches_.allocate(rows, "matches"),
                        forced_.allocate(G, "forced_prior"), positives_.allocate(shape.batch, "positives"),
                        unmatched_.allocate(shape.batch, "unmatched"), targets_.allocate(rows * 4, "targets"),
                        mined_.allocate(rows, "mined"), mined_negatives_.allocate(shape.batch, "mined_negatives"),
                        grad_conf_.allocate(rows * shape.num_classes, "grad_conf"),
                        grad_loc_.allocate(rows * 4, "grad_loc"), loss_.allocate(1, "loss")})
      if (!step) return step;
    return {};
  }
  GroundTruthView ground_truths() const noexcept override { return {boxes_.span(), labels_.span(), offsets_.span()}; }
  PredictionView predictions() const noexcept override { return {conf_.span(), loc_.span()}; }
  OutputView outputs() noexcept override {
    return {matches_.span(), forced_.span(),   positives_.span(), unmatched_.span(), targets_.span(),
            mined_.span(),   mined_negatives_.span(), grad_conf_.span(), grad_loc_.span(), loss_.data()};
  }
  Status download(Stage stage, BatchOutputs& host) const override {
    MULTIBOX_CUDA_TRY(cudaDeviceSynchronize());
    std::vector<Status> steps = {matches_.download(std::span(host.matches), "matches"),
                                 forced_.download(std::span(host.forced_prior), "forced_prior"),
                                 positives_.download(std::span(host.positives), "positives"),
                                 unmatched_.download(std::span(host.unmatched_ground_truths), "unmatched")};
    if (stage >= Stage::encode) steps.push_back(targets_.download(std::span(host.targets), "targets"));
    if (stage >= Stage::forward) {
      steps.push_back(mined_.download(std::span(host.mined), "mined"));
      steps.push_back(mined_negatives_.download(std::span(host.mined_negatives), "mined_negatives"));
      steps.push_back(loss_.download(std::span(&host.loss, 1), "loss"));
    }
    if (stage >= Stage::backward) {
      steps.push_back(grad_conf_.download(std::span(host.grad_conf), "grad_conf"));
      steps.push_back(grad_loc_.download(std::span(host.grad_loc), "grad_loc"));
    }
    for (const Status& s : steps)
      if (!s) return s;
    return {};
  }

 private:
  DeviceArray<float> boxes_, conf_, loc_, targets_, grad_conf_, grad_loc_;
  DeviceArray<int32_t> labels_, offsets_, matches_, forced_, positives_, unmatched_, mined_negatives_;
  DeviceArray<uint8_t> mined_;
  DeviceArray<LossTerms> loss_;
};

// An event pair on one stream, destroyed with its owner.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~EventPair() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

}  // namespace

Result<std::unique_ptr<DeviceBatch>> upload_batch(const ProblemShape& shape, const BatchData& data) {
  auto batch = std::make_unique<DeviceBatchImpl>();
  if (Status s = batch->init(shape, data); !s) return s;
  return std::unique_ptr<DeviceBatch>(std::move(batch));
}

Result<double> time_device_runs(CudaPlan& plan, DeviceBatch& batch, Stage stage, int iterations) {
  EventPair events;
  MULTIBOX_CUDA_TRY(cudaEventCreate(&events.start));
  MULTIBOX_CUDA_TRY(cudaEventCreate(&events.stop));
  const GroundTruthView gt = batch.ground_truths();
  const PredictionView pred = batch.predictions();
  const OutputView out = batch.outputs();
  MULTIBOX_CUDA_TRY(cudaEventRecord(events.start, nullptr));
  for (int i = 0; i < iterations; ++i)
    if (Status s = plan.run_device(gt, pred, stage, out, nullptr); !s) return s;
  MULTIBOX_CUDA_TRY(cudaEventRecord(events.stop, nullptr));
  MULTIBOX_CUDA_TRY(cudaEventSynchronize(events.stop));
  if (Status s = plan.device_input_status(); !s) return s;
  float ms = 0;
  MULTIBOX_CUDA_TRY(cudaEventElapsedTime(&ms, events.start, events.stop));
  return static_cast<double>(ms) / std::max(1, iterations);
}

Result<double> device_copy_gb_per_s(size_t bytes, int trials) {
  DeviceArray<char> a, b;
  if (Status s = a.allocate(bytes, "copy source"); !s) return s;
  if (Status s = b.allocate(bytes, "copy destination"); !s) return s;
  MULTIBOX_CUDA_TRY(cudaMemset(a.data(), 1, bytes));
  EventPair events;
  MULTIBOX_CUDA_TRY(cudaEventCreate(&events.start));
  MULTIBOX_CUDA_TRY(cudaEventCreate(&events.stop));
  double best_ms = 1e30;
  for (int t = 0; t < std::max(1, trials); ++t) {
    MULTIBOX_CUDA_TRY(cudaEventRecord(events.start, nullptr));
    MULTIBOX_CUDA_TRY(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, nullptr));
    MULTIBOX_CUDA_TRY(cudaEventRecord(events.stop, nullptr));
    MULTIBOX_CUDA_TRY(cudaEventSynchronize(events.stop));
    float ms = 0;
    MULTIBOX_CUDA_TRY(cudaEventElapsedTime(&ms, events.start, events.stop));
    best_ms = std::min(best_ms, static_cast<double>(ms));
  }
  return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3) / 1e9;
}

}  // namespace multibox::cuda
