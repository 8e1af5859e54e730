// The interface every implementation of the matcher and the loss sits behind (simdjson-style
// implementation objects): a small final class per backend, plan once per shape, run many times.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "multibox/batch.hpp"
#include "multibox/config.hpp"
#include "multibox/limits.hpp"
#include "multibox/status.hpp"

namespace multibox {

struct PlanOptions {
  int num_threads = 0;  // 0: the backend's default (all cores for threaded backends)
  // Scan every logit and loc value for NaN/Inf on each run. That scan is a full extra pass over B*P*C floats,
  // so benchmarks of data already checked turn it off; shapes and ground truths are always checked.
  bool check_prediction_values = true;
};

// Everything a backend needs for one problem shape, set up once (allocation, upload, prior corners).
class Plan {
 public:
  virtual ~Plan() = default;
  // Runs the stages up to and including `stage`. Must not allocate on the hot path.
  virtual Status run(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out) = 0;
  virtual const ProblemShape& shape() const noexcept = 0;
  virtual const Config& config() const noexcept = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual std::string_view description() const noexcept = 0;
  // Ok, or why this backend cannot run here (missing CPU feature, no CUDA device, built without it).
  virtual Status available() const = 0;
  // priors: [P][4] centre-size (cx, cy, w, h). The plan keeps its own copy or derived form of them.
  virtual Result<std::unique_ptr<Plan>> prepare(const ProblemShape& shape, std::span<const float> priors,
                                                const Config& config, const PlanOptions& options = {}) const = 0;
  // The memory a run of `shape` needs, known before anything is allocated, after the checks prepare() makes: a shape
  // prepare() would refuse is refused here with the same message. The default says the backend does not know, so
  // plugins need not implement it.
  // Defined here, not in the library, so plugins built header-only still link.
  virtual Result<PlanMemory> plan_memory(const ProblemShape& /*shape*/, const Config& /*config*/,
                                         const PlanOptions& /*options*/ = {}) const {
    return Status(ErrorCode::unavailable, "backend '" + std::string(name()) + "' does not estimate its memory");
  }
};

}  // namespace multibox
