// What the CUDA backend offers beyond the common Plan: runs on data already on the GPU (a training loop's tensors)
// on the caller's stream, the device memory a plan holds, and the time its last host-view run spent copying.
// Host-only like the rest of the public API: a stream travels as void* (a cudaStream_t), so no CUDA header leaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "multibox/backend.hpp"

namespace multibox::cuda {

// Device memory a plan allocates in prepare(), by purpose, so a caller can see what a shape costs before running.
struct MemoryPlan {
  struct Item {
    std::string name;
    size_t bytes = 0;
  };
  std::vector<Item> items;  // each device buffer, in allocation order
  size_t io_bytes = 0;      // mirrors of the host views' inputs and outputs (the upload/download path)
  size_t scratch_bytes = 0; // matching, loss and mining scratch, CUB temporary storage included
  size_t total_bytes() const noexcept { return io_bytes + scratch_bytes; }
  std::string describe() const;  // "1.62 GiB of device memory: io 1.51 GiB, scratch 110.3 MiB"
};

// Milliseconds of the last host-view run, from CUDA events on the plan's stream.
struct RunTimings {
  double upload_ms = 0;    // host -> device copies of ground truths and predictions
  double kernels_ms = 0;   // every kernel and device-side memset of the run
  double download_ms = 0;  // device -> host copies of the outputs the stage produces
};

class CudaPlan : public Plan {
 public:
  // Device-resident run: every span of gt, pred and out (and out.loss) points to device memory of the plan's
  // device; `stream` is the cudaStream_t to enqueue on (nullptr: the legacy default stream). The call only enqueues
  // work and returns: nothing is synchronised, so the outputs are ready when the stream says so. Span sizes are
  // checked on the host; values cannot be read there without a copy and a synchronisation, so the ground truths are
  // checked on the device instead (the rules of validate_ground_truths) and device_input_status() reports the result.
  // Predictions are not scanned for NaN/Inf on this path.
  virtual Status run_device(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out,
                            void* stream) = 0;
  // Waits for the stream of the last run_device() and returns what the device-side check found: ok, or the error
  // run() would have returned for those ground truths, naming the element. After such an error the outputs are
  // unspecified, but nothing was read or written out of bounds.
  virtual Status device_input_status() = 0;
  virtual const MemoryPlan& memory() const noexcept = 0;
  virtual RunTimings last_timings() const noexcept = 0;
};

// Device copies of one batch's inputs, and room for its outputs, on the current device: device views for
// run_device() without writing CUDA (benchmarks, tests, examples). Unavailable in a build without CUDA.
class DeviceBatch {
 public:
  virtual ~DeviceBatch() = default;
  virtual GroundTruthView ground_truths() const noexcept = 0;
  virtual PredictionView predictions() const noexcept = 0;
  virtual OutputView outputs() noexcept = 0;
  // Copies what `stage` produced into `host` (a BatchOutputs of the same shape), after waiting for the device.
  virtual Status download(Stage stage, BatchOutputs& host) const = 0;
};
Result<std::unique_ptr<DeviceBatch>> upload_batch(const ProblemShape& shape, const BatchData& data);

// `iterations` device-resident runs back to back on one stream, timed with CUDA events: milliseconds per run.
Result<double> time_device_runs(CudaPlan& plan, DeviceBatch& batch, Stage stage, int iterations);

// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written, per second) over a `bytes`-sized buffer,
// best of `trials`: the GPU benchmarks' memory floor, measured in the same run as the time it judges.
Result<double> device_copy_gb_per_s(size_t bytes, int trials);

}  // namespace multibox::cuda
