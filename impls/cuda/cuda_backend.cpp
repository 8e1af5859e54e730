// The CUDA plan: one device allocation carved by plan_layout() in prepare(), the prior corners and the mining
// segments uploaded once, a stream and four events of its own. run() with host views validates on the host, uploads,
// enqueues the kernels (kernels.cu), downloads what the stage produces and waits; run_device() only enqueues.
#include "cuda/cuda_backend.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/math.hpp"
#include "cuda/device_math.hpp"
#include "cuda/errors.hpp"
#include "cuda/kernels.hpp"
#include "cuda/launch.hpp"
#include "multibox/cuda.hpp"

namespace multibox::cuda {
namespace {

using detail::Buf;

static_assert(sizeof(detail::DeviceLossTerms) == sizeof(LossTerms) &&
                  offsetof(detail::DeviceLossTerms, total) == offsetof(LossTerms, total) &&
                  offsetof(detail::DeviceLossTerms, conf_sum) == offsetof(LossTerms, conf_sum) &&
                  offsetof(detail::DeviceLossTerms, num_positives) == offsetof(LossTerms, num_positives),
              "the kernels write LossTerms through DeviceLossTerms");

detail::RunStage run_stage(Stage s) { return static_cast<detail::RunStage>(static_cast<int>(s)); }

Status query_availability() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  int major = 0, minor = 0;
  if (e == cudaSuccess && count > 0) {
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess)
      return Status(ErrorCode::unavailable, "cuda: cannot read device 0's compute capability");
  }
  return detail::availability(e, count, major, minor);
}

class CudaPlanImpl final : public CudaPlan {
 public:
  static Result<std::unique_ptr<Plan>> create(const ProblemShape& shape, std::span<const float> priors,
                                              const Config& config, const PlanOptions& options) {
    std::unique_ptr<CudaPlanImpl> plan(new CudaPlanImpl(shape, config, options));
    if (Status s = plan->init(priors); !s) return s;
    return std::unique_ptr<Plan>(std::move(plan));
  }

  ~CudaPlanImpl() override {
    if (cudaSetDevice(device_) != cudaSuccess) return;
    for (cudaEvent_t e : events_)
      if (e != nullptr) cudaEventDestroy(e);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (arena_ != nullptr) cudaFree(arena_);
  }

  const ProblemShape& shape() const noexcept override { return shape_; }
  const Config& config() const noexcept override { return config_; }
  const MemoryPlan& memory() const noexcept override { return layout_.memory; }
  RunTimings last_timings() const noexcept override { return timings_; }

  Status run(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out) override {
    if (Status s = validate_ground_truths(shape_, gt); !s) return s;
    if (Status s = validate_outputs(shape_, gt, stage, out); !s) return s;
    const bool forward = stage >= Stage::forward;
    if (forward) {
      if (Status s = validate_predictions(shape_, pred, options_.check_prediction_values); !s) return s;
    }
    MULTIBOX_CUDA_TRY(cudaSetDevice(device_));

    MULTIBOX_CUDA_TRY(cudaEventRecord(events_[0], stream_));
    if (Status s = upload(Buf::gt_boxes, gt.boxes); !s) return s;
    if (Status s = upload(Buf::gt_labels, gt.labels); !s) return s;
    if (Status s = upload(Buf::gt_offsets, gt.offsets); !s) return s;
    if (forward) {
      if (Status s = upload(Buf::conf, pred.conf); !s) return s;
      if (Status s = upload(Buf::loc, pred.loc); !s) return s;
    }
    MULTIBOX_CUDA_TRY(cudaEventRecord(events_[1], stream_));

    detail::DeviceArgs a = base_args(gt.total());
    a.gt_boxes = buf<float>(Buf::gt_boxes);
    a.gt_labels = buf<int32_t>(Buf::gt_labels);
    a.gt_offsets = buf<int32_t>(Buf::gt_offsets);
    a.conf = buf<float>(Buf::conf);
    a.loc = buf<float>(Buf::loc);
    a.matches = buf<int32_t>(Buf::matches);
    a.forced_prior = buf<int32_t>(Buf::forced_prior);
    a.positives = buf<int32_t>(Buf::positives);
    a.unmatched = buf<int32_t>(Buf::unmatched);
    a.targets = buf<float>(Buf::targets);
    a.mined = buf<uint8_t>(Buf::mined);
    a.mined_negatives = buf<int32_t>(Buf::mined_negatives);
    a.grad_conf = buf<float>(Buf::grad_conf);
    a.grad_loc = buf<float>(Buf::grad_loc);
    a.loss = buf<detail::DeviceLossTerms>(Buf::loss);
    if (Status s = enqueue(a, stage, stream_); !s) return s;
    MULTIBOX_CUDA_TRY(cudaEventRecord(events_[2], stream_));

    Status s;
    auto get = [&](Buf b, auto span) {
      if (s.ok()) s = download(span, b);
    };
    get(Buf::matches, out.matches);
    get(Buf::forced_prior, out.forced_prior);
    get(Buf::positives, out.positives);
    get(Buf::unmatched, out.unmatched_ground_truths);
    if (stage >= Stage::encode) get(Buf::targets, out.targets);
    if (forward) {
      get(Buf::mined, out.mined);
      get(Buf::mined_negatives, out.mined_negatives);
      get(Buf::loss, std::span<LossTerms>(out.loss, 1));
    }
    if (stage >= Stage::backward) {
      get(Buf::grad_conf, out.grad_conf);
      get(Buf::grad_loc, out.grad_loc);
    }
    int32_t flagged = 0;
    get(Buf::input_error, std::span<int32_t>(&flagged, 1));
    if (!s) return s;
    MULTIBOX_CUDA_TRY(cudaEventRecord(events_[3], stream_));
    MULTIBOX_CUDA_TRY(cudaStreamSynchronize(stream_));
    if (flagged)
      return Status(ErrorCode::internal, "cuda: the device rejected ground truths that the host validator accepted");
    float ms[3] = {};
    for (int i = 0; i < 3; ++i) MULTIBOX_CUDA_TRY(cudaEventElapsedTime(&ms[i], events_[i], events_[i + 1]));
    timings_ = {ms[0], ms[1], ms[2]};
    return {};
  }

  Status run_device(const GroundTruthView& gt, const PredictionView& pred, Stage stage, const OutputView& out,
                    void* stream) override {
    if (Status s = validate_ground_truth_sizes(shape_, gt); !s) return s;
    if (Status s = validate_outputs(shape_, gt, stage, out); !s) return s;
    if (stage >= Stage::forward) {
      if (Status s = validate_predictions(shape_, pred, false); !s) return s;
    }
    Status s;
    auto on_device = [&](const char* name, const void* p, size_t alignment) {
      if (!s.ok() || p == nullptr) return;
      if (reinterpret_cast<uintptr_t>(p) % alignment != 0) {
        s = Status(ErrorCode::invalid_input, fmt::format("cuda: '{}' at {} is not {}-byte aligned", name, p, alignment));
        return;
      }
      cudaPointerAttributes attr{};
      if (cudaPointerGetAttributes(&attr, p) != cudaSuccess || attr.devicePointer == nullptr ||
          (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) || attr.device != device_) {
        cudaGetLastError();  // a failed attribute query leaves its error behind for the next cudaGetLastError
        s = Status(ErrorCode::invalid_input,
                   fmt::format("cuda: '{}' ({}) is not device memory of device {}: run_device takes device "
                               "pointers; use run() for host memory", name, p, device_));
      }
    };
    on_device("gt.boxes", gt.boxes.data(), 16);
    on_device("gt.labels", gt.labels.data(), 4);
    on_device("gt.offsets", gt.offsets.data(), 4);
    on_device("out.matches", out.matches.data(), 4);
    on_device("out.forced_prior", out.forced_prior.data(), 4);
    on_device("out.positives", out.positives.data(), 4);
    on_device("out.unmatched_ground_truths", out.unmatched_ground_truths.data(), 4);
    if (stage >= Stage::encode) on_device("out.targets", out.targets.data(), 16);
    if (stage >= Stage::forward) {
      on_device("pred.conf", pred.conf.data(), 4);
      on_device("pred.loc", pred.loc.data(), 16);
      on_device("out.mined", out.mined.data(), 1);
      on_device("out.mined_negatives", out.mined_negatives.data(), 4);
      on_device("out.loss", out.loss, alignof(LossTerms));
    }
    if (stage >= Stage::backward) {
      on_device("out.grad_conf", out.grad_conf.data(), 4);
      on_device("out.grad_loc", out.grad_loc.data(), 16);
    }
    if (!s) return s;
    MULTIBOX_CUDA_TRY(cudaSetDevice(device_));

    detail::DeviceArgs a = base_args(gt.total());
    a.gt_boxes = gt.boxes.data();
    a.gt_labels = gt.labels.data();
    a.gt_offsets = gt.offsets.data();
    a.conf = pred.conf.data();
    a.loc = pred.loc.data();
    a.matches = out.matches.data();
    a.forced_prior = out.forced_prior.data();
    a.positives = out.positives.data();
    a.unmatched = out.unmatched_ground_truths.data();
    a.targets = out.targets.data();
    a.mined = out.mined.data();
    a.mined_negatives = out.mined_negatives.data();
    a.grad_conf = out.grad_conf.data();
    a.grad_loc = out.grad_loc.data();
    a.loss = reinterpret_cast<detail::DeviceLossTerms*>(out.loss);
    last_device_stream_ = static_cast<cudaStream_t>(stream);
    last_device_gt_ = gt;
    return enqueue(a, stage, last_device_stream_);
  }

  Status device_input_status() override {
    MULTIBOX_CUDA_TRY(cudaSetDevice(device_));
    MULTIBOX_CUDA_TRY(cudaStreamSynchronize(last_device_stream_));
    int32_t flagged = 0;
    MULTIBOX_CUDA_TRY(cudaMemcpy(&flagged, buf<int32_t>(Buf::input_error), sizeof flagged, cudaMemcpyDeviceToHost));
    if (!flagged) return {};
    // The device only knows that something is wrong; the host validator names the element, in run()'s words.
    const GroundTruthView& d = last_device_gt_;
    std::vector<float> boxes(d.boxes.size());
    std::vector<int32_t> labels(d.labels.size()), offsets(d.offsets.size());
    MULTIBOX_CUDA_TRY(cudaMemcpy(boxes.data(), d.boxes.data(), boxes.size() * sizeof(float), cudaMemcpyDeviceToHost));
    MULTIBOX_CUDA_TRY(
        cudaMemcpy(labels.data(), d.labels.data(), labels.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
    MULTIBOX_CUDA_TRY(
        cudaMemcpy(offsets.data(), d.offsets.data(), offsets.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
    if (Status s = validate_ground_truths(shape_, GroundTruthView{boxes, labels, offsets}); !s) return s;
    return Status(ErrorCode::internal, "cuda: the device flagged ground truths that the host validator accepts");
  }

 private:
  CudaPlanImpl(const ProblemShape& shape, const Config& config, const PlanOptions& options)
      : shape_(shape), config_(config), options_(options) {}

  Status init(std::span<const float> priors) {
    MULTIBOX_CUDA_TRY(cudaGetDevice(&device_));
    cudaDeviceProp prop{};
    MULTIBOX_CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    detail::DeviceLimits limits;
    limits.max_grid_x = prop.maxGridSize[0];
    limits.max_grid_y = prop.maxGridSize[1];
    limits.shared_per_block = prop.sharedMemPerBlock;
    Result<detail::Launch> launch = detail::plan_launch(shape_, limits);
    if (!launch) return launch.status();
    launch_ = *launch;
    size_t cub_bytes = 0;
    MULTIBOX_CUDA_TRY(detail::mining_sort_temp_bytes(shape_.batch, shape_.num_priors, &cub_bytes));
    layout_ = detail::plan_layout(shape_, cub_bytes);

    size_t free_bytes = 0, total_bytes = 0;
    MULTIBOX_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (layout_.total > free_bytes)
      return Status(ErrorCode::unavailable,
                    fmt::format("cuda: a plan for {} needs {}; device {} ({}) has {} free of {}", shape_.describe(),
                                layout_.memory.describe(), device_, prop.name, detail::format_bytes(free_bytes),
                                detail::format_bytes(total_bytes)));
    void* arena = nullptr;
    if (Status s = detail::cuda_status(cudaMalloc(&arena, layout_.total),
                                       fmt::format("cudaMalloc({})", detail::format_bytes(layout_.total)));
        !s)
      return s;
    arena_ = static_cast<char*>(arena);
    MULTIBOX_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (cudaEvent_t& e : events_) MULTIBOX_CUDA_TRY(cudaEventCreate(&e));

    // Corners once (core::prior_corners, as every backend) and the centre-size form the encoding reads.
    const int P = shape_.num_priors;
    std::vector<float> corners(static_cast<size_t>(P) * 4);
    for (int p = 0; p < P; ++p) {
      const float* v = &priors[static_cast<size_t>(p) * 4];
      const core::Box b = core::prior_corners(v[0], v[1], v[2], v[3]);
      corners[p * 4 + 0] = b.x1, corners[p * 4 + 1] = b.y1, corners[p * 4 + 2] = b.x2, corners[p * 4 + 3] = b.y2;
    }
    std::vector<int32_t> segments(static_cast<size_t>(shape_.batch) + 1);
    for (int b = 0; b <= shape_.batch; ++b) segments[b] = b * P;
    MULTIBOX_CUDA_TRY(cudaMemcpy(buf<float>(Buf::prior_boxes), corners.data(), corners.size() * 4,
                                 cudaMemcpyHostToDevice));
    MULTIBOX_CUDA_TRY(
        cudaMemcpy(buf<float>(Buf::prior_centres), priors.data(), priors.size() * 4, cudaMemcpyHostToDevice));
    MULTIBOX_CUDA_TRY(cudaMemcpy(buf<int32_t>(Buf::segment_offsets), segments.data(), segments.size() * 4,
                                 cudaMemcpyHostToDevice));
    return {};
  }

  template <class T>
  T* buf(Buf b) const {
    return reinterpret_cast<T*>(arena_ + layout_.offset[static_cast<int>(b)]);
  }

  template <class T>
  Status upload(Buf b, std::span<const T> host) {
    if (host.empty()) return {};
    return detail::cuda_status(
        cudaMemcpyAsync(buf<T>(b), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream_),
        fmt::format("cudaMemcpyAsync({} <- host, {})", detail::to_string(b), detail::format_bytes(host.size_bytes())));
  }

  template <class T>
  Status download(std::span<T> host, Buf b) {
    if (host.empty()) return {};
    return detail::cuda_status(
        cudaMemcpyAsync(host.data(), buf<T>(b), host.size_bytes(), cudaMemcpyDeviceToHost, stream_),
        fmt::format("cudaMemcpyAsync(host <- {}, {})", detail::to_string(b), detail::format_bytes(host.size_bytes())));
  }

  // Everything but the caller's inputs and outputs.
  detail::DeviceArgs base_args(int total_ground_truths) const {
    detail::DeviceArgs a;
    a.batch = shape_.batch;
    a.num_priors = shape_.num_priors;
    a.num_classes = shape_.num_classes;
    a.total_ground_truths = total_ground_truths;
    a.prior_boxes = buf<float>(Buf::prior_boxes);
    a.prior_centres = buf<float>(Buf::prior_centres);
    a.best_iou = buf<float>(Buf::best_iou);
    a.best_gt = buf<int32_t>(Buf::best_gt);
    a.owner = buf<int32_t>(Buf::owner);
    a.gt_key = buf<unsigned long long>(Buf::gt_key);
    a.has_prior = buf<uint8_t>(Buf::has_prior);
    a.negatives = buf<int32_t>(Buf::negatives);
    a.row_max = buf<float>(Buf::row_max);
    a.row_log_sum = buf<float>(Buf::row_log_sum);
    a.ce = buf<float>(Buf::ce);
    a.keys_in = buf<unsigned long long>(Buf::keys_in);
    a.keys_out = buf<unsigned long long>(Buf::keys_out);
    a.segment_offsets = buf<int32_t>(Buf::segment_offsets);
    a.image_conf_sum = buf<double>(Buf::image_conf_sum);
    a.image_loc_sum = buf<double>(Buf::image_loc_sum);
    a.input_error = buf<int32_t>(Buf::input_error);
    a.cub_temp = buf<void>(Buf::cub_temp);
    a.cub_temp_bytes = layout_.bytes[static_cast<int>(Buf::cub_temp)];
    a.index_bits = detail::mining_index_bits(shape_.num_priors);
    a.bipartite = config_.forced_match == ForcedMatch::bipartite;
    a.pos_threshold = config_.pos_threshold;
    a.neg_threshold = config_.negative_threshold();
    a.variance_xy = config_.variance_xy;
    a.variance_wh = config_.variance_wh;
    a.neg_pos_ratio = config_.neg_pos_ratio;
    a.min_negatives = config_.min_negatives_per_image;
    a.alpha = config_.alpha;
    a.beta = config_.smooth_l1_beta;
    return a;
  }

  Status enqueue(const detail::DeviceArgs& a, Stage stage, cudaStream_t stream) {
    MULTIBOX_CUDA_TRY(cudaMemsetAsync(a.input_error, 0, sizeof(int32_t), stream));
    const char* what = nullptr;
    const cudaError_t e = detail::enqueue_run(a, launch_, run_stage(stage), stream, &what);
    return detail::cuda_status(e, what != nullptr ? what : "enqueue_run");
  }

  ProblemShape shape_;
  Config config_;
  PlanOptions options_;
  int device_ = 0;
  detail::Launch launch_;
  detail::Layout layout_;
  char* arena_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t events_[4] = {};
  RunTimings timings_;
  cudaStream_t last_device_stream_ = nullptr;
  GroundTruthView last_device_gt_;
};

class CudaBackend final : public Backend {
 public:
  std::string_view name() const noexcept override { return "cuda"; }
  std::string_view description() const noexcept override {
    return "NVIDIA GPU: per-image matching kernels, fused logits rows, CUB segmented sort for mining";
  }
  Status available() const override {
    static const Status status = query_availability();  // the devices do not change while a process runs
    return status;
  }
  Result<std::unique_ptr<Plan>> prepare(const ProblemShape& shape, std::span<const float> priors,
                                        const Config& config, const PlanOptions& options) const override {
    if (Status s = shape.validate(); !s) return s;
    if (Status s = config.validate(); !s) return s;
    if (Status s = validate_priors(priors, shape.num_priors); !s) return s;
    if (Status s = available(); !s) return s;
    return CudaPlanImpl::create(shape, priors, config, options);
  }
  // The arena prepare() would allocate, laid out by the same plan_layout(). The launch limits come first, with the
  // defaults of every GPU since sm_30, so a shape past them is refused by number even where no device is present;
  // CUB's share needs the device. The host keeps the prior corners while preparing (and B + 1 segment offsets,
  // left out of the figure).
  Result<PlanMemory> plan_memory(const ProblemShape& shape, const Config& config,
                                 const PlanOptions& /*options*/) const override {
    if (Status s = shape.validate(); !s) return s;
    if (Status s = config.validate(); !s) return s;
    if (Result<detail::Launch> launch = detail::plan_launch(shape); !launch) return launch.status();
    if (Status s = available(); !s) return s;
    size_t cub_bytes = 0;
    MULTIBOX_CUDA_TRY(detail::mining_sort_temp_bytes(shape.batch, shape.num_priors, &cub_bytes));
    PlanMemory m = caller_memory(shape);
    m.workspace = static_cast<uint64_t>(shape.num_priors) * 4 * sizeof(float);
    m.device = detail::plan_layout(shape, cub_bytes).total;
    return m;
  }
};

}  // namespace

const Backend& backend() noexcept {
  static const CudaBackend instance;
  return instance;
}

}  // namespace multibox::cuda
