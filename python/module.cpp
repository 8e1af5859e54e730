// The Python face of multibox (issue 13): backends, configuration, priors, workloads and the comparator on NumPy
// arrays. Inputs are borrowed without a copy, so only float32 / int32 C-contiguous arrays are taken; a backend runs
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "multibox/case_file.hpp"
#include "multibox/compare.hpp"
#include "multibox/priors.hpp"
#include "multibox/registry.hpp"
#include "multibox/run_case.hpp"
#include "multibox/workloads.hpp"

namespace py = pybind11;

namespace multibox::python {
namespace {

// A Status that is not ok becomes the Python exception a caller would expect for its kind: bad values and shapes are
// ValueError, a backend that cannot run here or a file that cannot be read RuntimeError. The message is the C++ one.
[[noreturn]] void raise(const Status& s) {
  switch (s.code()) {
    case ErrorCode::invalid_input:
    case ErrorCode::invalid_config:
    case ErrorCode::shape_mismatch: throw py::value_error(s.to_string());
    default: throw std::runtime_error(s.to_string());
  }
}
void check(const Status& s) {
  if (!s.ok()) raise(s);
}
template <class T>
T take(Result<T> r) {
  if (!r.ok()) raise(r.status());
  return std::move(r).value();
}

Stage parse_stage(const std::string& name) {
  for (Stage s : {Stage::match, Stage::encode, Stage::forward, Stage::backward})
    if (name == to_string(s)) return s;
  throw py::value_error(fmt::format("stage '{}' is not one of match, encode, forward, backward", name));
}

template <class T>
const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, int32_t>) return "int32";
  else return "uint8";
}

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// The array `obj` as a span, without a copy; anything that would need one is refused with the conversion to apply.
// `shape` entries of -1 match any extent; the extents found are written back into `shape`.
template <class T>
std::span<const T> borrow(py::handle obj, const char* name, std::vector<py::ssize_t>& shape) {
  const std::string fix = fmt::format("convert with np.ascontiguousarray({}, dtype=np.{})", name, dtype_name<T>());
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(fmt::format("{}: expected a numpy.ndarray of {}, got {} ({})", name, dtype_name<T>(),
                                     std::string(py::str(py::type::of(obj).attr("__name__"))), fix));
  auto array = py::reinterpret_borrow<py::array>(obj);
  if (!array.dtype().is(py::dtype::of<T>()))
    throw py::type_error(fmt::format("{}: dtype {} is not taken; multibox reads {} without copying ({})", name,
                                     std::string(py::str(array.dtype())), dtype_name<T>(), fix));
  if (!(array.flags() & py::array::c_style) || !(array.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::type_error(fmt::format("{}: the array is not C-contiguous and aligned; multibox reads it without "
                                     "copying ({})", name, fix));
  std::vector<py::ssize_t> actual(array.shape(), array.shape() + array.ndim());
  bool same = actual.size() == shape.size();
  for (size_t i = 0; same && i < shape.size(); ++i) same = shape[i] < 0 || shape[i] == actual[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (i ? ", " : "") + (shape[i] < 0 ? std::string("any") : std::to_string(shape[i]));
    throw py::value_error(fmt::format("{}: shape {}, expected {}{}", name, shape_text(actual), want,
                                      shape.size() == 1 ? ",)" : ")"));
  }
  shape = actual;
  return {static_cast<const T*>(array.data()), static_cast<size_t>(array.size())};
}

template <class T>
std::span<const T> borrow(py::handle obj, const char* name, std::vector<py::ssize_t>&& shape) {
  return borrow<T>(obj, name, shape);
}

// A NumPy array over memory `owner` keeps alive (no copy).
template <class T>
py::array_t<T> view(const T* data, std::vector<py::ssize_t> shape, py::handle owner) {
  return py::array_t<T>(shape, data, owner);
}

Config make_config(const std::string& forced_match, float pos_threshold, std::optional<float> neg_threshold,
                   std::pair<float, float> variances, int neg_pos_ratio, int min_negatives, float alpha, float beta) {
  Config c;
  const auto mode = parse_forced_match(forced_match);
  if (!mode) throw py::value_error(fmt::format("forced_match '{}' is not one of bipartite, argmax", forced_match));
  c.forced_match = *mode;
  c.pos_threshold = pos_threshold;
  c.neg_threshold = neg_threshold;
  c.variance_xy = variances.first;
  c.variance_wh = variances.second;
  c.neg_pos_ratio = neg_pos_ratio;
  c.min_negatives_per_image = min_negatives;
  c.alpha = alpha;
  c.smooth_l1_beta = beta;
  check(c.validate());
  return c;
}

// One run's outputs, plus what compare() needs to judge another program's outputs against them: the inputs (borrowed
// arrays, kept alive here), the priors and the configuration.
struct Outputs {
  std::string backend;
  Stage stage = Stage::backward;
  Config config;
  ProblemShape shape;
  std::shared_ptr<const std::vector<float>> priors;
  py::object gt_boxes, gt_labels, gt_offsets, conf, loc;  // conf and loc null where the stage read no predictions
  BatchOutputs out;  // everything but the gradients
  // The gradients live in NumPy arrays, allocated uninitialised: the backend writes every element, and zeroing B*P*C
  // floats first (std::vector) doubled the cost of a training step's outputs.
  py::array_t<float> grad_conf, grad_loc;

  // `out` with the gradients copied in, for the comparator.
  BatchOutputs complete() const {
    BatchOutputs all = out;
    auto copy = [](const py::array_t<float>& a, std::vector<float>& into) {
      if (a) into.assign(a.data(), a.data() + a.size());
    };
    copy(grad_conf, all.grad_conf);
    copy(grad_loc, all.grad_loc);
    return all;
  }

  int total_ground_truths() const { return static_cast<int>(out.forced_prior.size()); }
  bool produces(std::string_view quantity) const {
    const auto q = quantities_of(stage);
    return std::find(q.begin(), q.end(), quantity) != q.end();
  }

  // The inputs as an owning case, for the comparator (which recomputes reference cross-entropies from the logits).
  Case as_case() const {
    Case c;
    c.name = backend;
    c.config = config;
    c.shape = shape;
    c.priors = *priors;
    auto copy = [](const py::object& a, auto& into) {
      if (!a || a.is_none()) return;
      auto array = py::reinterpret_borrow<py::array>(a);
      using V = typename std::decay_t<decltype(into)>::value_type;
      const V* p = static_cast<const V*>(array.data());
      into.assign(p, p + array.size());
    };
    copy(gt_boxes, c.data.gt_boxes);
    copy(gt_labels, c.data.gt_labels);
    copy(gt_offsets, c.data.gt_offsets);
    copy(conf, c.data.conf);
    copy(loc, c.data.loc);
    return c;
  }
};

py::dict loss_dict(const LossTerms& l) {
  py::dict d;
  d["total"] = l.total;
  d["conf"] = l.conf;
  d["loc"] = l.loc;
  d["conf_sum"] = l.conf_sum;
  d["loc_sum"] = l.loc_sum;
  d["num_positives"] = l.num_positives;
  return d;
}

// output_shape() in NumPy's extent type.
std::vector<py::ssize_t> array_shape(std::string_view quantity, const ProblemShape& shape, int64_t ground_truths) {
  const std::vector<int64_t> extents = output_shape(quantity, shape, ground_truths);
  return {extents.begin(), extents.end()};
}

// The array of one output quantity (by file stem), viewing the buffers `self` owns; None when the stage did not
// produce it.
py::object quantity(py::object self, const std::string& name) {
  const Outputs& o = self.cast<const Outputs&>();
  if (!o.produces(name)) return py::none();
  // Not in `out`: the gradients are NumPy arrays of their own (see Outputs).
  if (name == "grad_conf") return o.grad_conf;
  if (name == "grad_loc") return o.grad_loc;
  py::object result;
  const bool known = visit_output(o.out, name, [&](const auto& field) {
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, LossTerms>) {
      result = loss_dict(field);
    } else {
      result = view(field.data(), array_shape(name, o.shape, o.total_ground_truths()), self);
    }
  });
  if (!known) throw py::key_error(name);
  return result;
}

// A plan for one prior set, class count and configuration. The C++ plan is prepared for a batch size and a
// ground-truth capacity, which a training loop changes between calls; it is prepared again only when they grow or
// the batch size changes.
class PyPlan {
 public:
  PyPlan(const Backend& backend, std::vector<float> priors, int num_classes, const Config& config, int threads)
      : backend_(backend),
        priors_(std::make_shared<const std::vector<float>>(std::move(priors))),
        num_classes_(num_classes),
        config_(config) {
    options_.num_threads = threads;
    // Prepared now for one image, so a bad class count, configuration or prior fails at prepare(), not at run().
    prepare_for(1, 0);
  }

  std::string backend_name() const { return std::string(backend_.name()); }
  int num_priors() const { return static_cast<int>(priors_->size() / 4); }

  std::unique_ptr<Outputs> run(py::object gt_boxes, py::object gt_labels, py::object gt_offsets, py::object conf,
                               py::object loc, const std::string& stage_name) {
    const Stage stage = parse_stage(stage_name);
    std::vector<py::ssize_t> offsets_shape{-1};
    const auto offsets = borrow<int32_t>(gt_offsets, "gt_offsets", offsets_shape);
    if (offsets.empty()) throw py::value_error("gt_offsets: empty; it holds B+1 entries, starting at 0");
    std::vector<py::ssize_t> labels_shape{-1};
    const auto labels = borrow<int32_t>(gt_labels, "gt_labels", labels_shape);
    const py::ssize_t B = offsets_shape[0] - 1, G = labels_shape[0], P = num_priors(), C = num_classes_;
    const auto boxes = borrow<float>(gt_boxes, "gt_boxes", {G, 4});
    PredictionView pred;
    if (stage >= Stage::forward) {
      if (conf.is_none() || loc.is_none())
        throw py::value_error(fmt::format("stage '{}' needs conf and loc", stage_name));
      pred.conf = borrow<float>(conf, "conf", {B, P, C});
      pred.loc = borrow<float>(loc, "loc", {B, P, 4});
    }
    if (B < 1) throw py::value_error("gt_offsets: a batch needs at least one image (B+1 >= 2 entries)");

    auto result = std::make_unique<Outputs>();
    result->backend = backend_name();
    result->stage = stage;
    result->config = config_;
    result->priors = priors_;
    result->gt_boxes = gt_boxes;
    result->gt_labels = gt_labels;
    result->gt_offsets = gt_offsets;
    if (stage >= Stage::forward) {
      result->conf = conf;
      result->loc = loc;
    }
    if (stage >= Stage::backward) {
      result->grad_conf = py::array_t<float>(std::vector<py::ssize_t>{B, P, C});
      result->grad_loc = py::array_t<float>(std::vector<py::ssize_t>{B, P, 4});
    }
    const GroundTruthView gt{boxes, labels, offsets};
    {
      py::gil_scoped_release unlocked;
      // One run at a time per plan: a C++ plan owns its scratch memory.
      std::lock_guard lock(mutex_);
      if (!plan_ || plan_->shape().batch != B || plan_->shape().max_ground_truths < G)
        prepare_for(static_cast<int>(B), static_cast<int>(G));
      result->shape = plan_->shape();
      // Only what the stage writes: a training step's forward pass need not fault in B*P*C gradient floats. The
      // gradients go straight into the NumPy arrays, so `out` is sized at most up to the forward stage.
      result->out = BatchOutputs(result->shape, static_cast<int>(G), std::min(stage, Stage::forward));
      OutputView into = result->out.view();
      if (stage >= Stage::backward) {
        const auto rows = static_cast<size_t>(B) * static_cast<size_t>(P);
        into.grad_conf = {result->grad_conf.mutable_data(), rows * static_cast<size_t>(C)};
        into.grad_loc = {result->grad_loc.mutable_data(), rows * 4};
      }
      check(plan_->run(gt, pred, stage, into));
    }
    return result;
  }

 private:
  void prepare_for(int batch, int ground_truths) {
    const int capacity = std::max(ground_truths, plan_ ? plan_->shape().max_ground_truths : 0);
    const ProblemShape shape{batch, num_priors(), num_classes_, capacity};
    plan_ = take(backend_.prepare(shape, *priors_, config_, options_));
  }

  const Backend& backend_;
  std::shared_ptr<const std::vector<float>> priors_;
  int num_classes_;
  Config config_;
  PlanOptions options_;
  std::unique_ptr<Plan> plan_;
  std::mutex mutex_;
};

std::vector<float> priors_from(py::handle priors) {
  if (py::isinstance<py::str>(priors)) return take(priors_by_name(priors.cast<std::string>()));
  const auto p = borrow<float>(priors, "priors", {-1, 4});
  return {p.begin(), p.end()};
}

std::unique_ptr<PyPlan> prepare(py::handle priors, int num_classes, const Config& config, const std::string& backend,
                                int threads) {
  std::vector<float> p = priors_from(priors);
  check(validate_priors(p, static_cast<int>(p.size() / 4)));
  const Backend* chosen = take(select_backend(backend));
  check(chosen->available());
  return std::make_unique<PyPlan>(*chosen, std::move(p), num_classes, config, threads);
}

// A candidate's quantity `name` copied into `into`, refused (with the conversion) unless dtype and shape are exact.
template <class T>
void read_quantity(py::handle value, const std::string& name, std::vector<py::ssize_t> shape, std::vector<T>& into) {
  const auto span = borrow<T>(value, name.c_str(), shape);
  into.assign(span.begin(), span.end());
}

// The candidate of compare(): another run's Outputs, or a dict keyed by the case-folder names (matches, ..., loss,
// grad_conf, grad_loc; loss a dict like loss.json). Returns the outputs and the quantities present.
std::pair<BatchOutputs, std::vector<std::string>> candidate_outputs(const Outputs& expected, py::handle candidate) {
  if (py::isinstance<Outputs>(candidate)) {
    const Outputs& o = candidate.cast<const Outputs&>();
    if (o.shape.batch != expected.shape.batch || o.shape.num_priors != expected.shape.num_priors ||
        o.shape.num_classes != expected.shape.num_classes || o.total_ground_truths() != expected.total_ground_truths())
      throw py::value_error(fmt::format("candidate is for B={} P={} C={} G={}, expected for B={} P={} C={} G={}",
                                        o.shape.batch, o.shape.num_priors, o.shape.num_classes,
                                        o.total_ground_truths(), expected.shape.batch, expected.shape.num_priors,
                                        expected.shape.num_classes, expected.total_ground_truths()));
    return {o.complete(), quantities_of(std::min(o.stage, expected.stage))};
  }
  if (!py::isinstance<py::dict>(candidate))
    throw py::type_error(fmt::format("candidate: expected multibox.Outputs or a dict of quantities ({})",
                                     fmt::join(kOutputQuantities, ", ")));
  const py::ssize_t G = expected.total_ground_truths();
  BatchOutputs out(expected.shape, static_cast<int>(G));
  std::vector<std::string> present;
  const auto producible = quantities_of(expected.stage);
  for (const char* stem : kOutputQuantities) {
    const std::string name = stem;
    auto d = py::reinterpret_borrow<py::dict>(candidate);
    if (!d.contains(name)) continue;
    if (std::find(producible.begin(), producible.end(), name) == producible.end())
      throw py::value_error(fmt::format("candidate: '{}' is not produced by the expected outputs' stage '{}'", name,
                                        to_string(expected.stage)));
    py::object v = d[name.c_str()];
    if (name == "mined" && py::isinstance<py::array>(v) &&
        py::reinterpret_borrow<py::array>(v).dtype().is(py::dtype::of<bool>()))
      v = v.attr("view")("uint8");  // a boolean mask is what PyTorch code has at hand; it has the layout of uint8
    visit_output(out, name, [&](auto& field) {
      if constexpr (std::is_same_v<std::decay_t<decltype(field)>, LossTerms>) {
        if (!py::isinstance<py::dict>(v))
          throw py::type_error("candidate: 'loss' must be a dict with total, conf, loc, num_positives (conf_sum and "
                               "loc_sum optional), as in loss.json");
        auto l = py::reinterpret_borrow<py::dict>(v);
        for (const char* key : {"total", "conf", "loc", "num_positives"})
          if (!l.contains(key)) throw py::value_error(fmt::format("candidate: loss has no '{}'", key));
        field.total = py::float_(l["total"]);
        field.conf = py::float_(l["conf"]);
        field.loc = py::float_(l["loc"]);
        field.num_positives = py::int_(l["num_positives"]);
        // As read_outputs() does for loss.json: the sums follow from the normalised terms when absent.
        const double norm = static_cast<double>(std::max<int64_t>(1, field.num_positives));
        field.conf_sum = l.contains("conf_sum") ? double(py::float_(l["conf_sum"])) : field.conf * norm;
        field.loc_sum = l.contains("loc_sum") ? double(py::float_(l["loc_sum"])) : field.loc * norm;
      } else {
        read_quantity(v, name, array_shape(name, expected.shape, G), field);
      }
    });
    present.push_back(name);
  }
  for (auto item : py::reinterpret_borrow<py::dict>(candidate)) {
    const std::string key = py::str(item.first);
    if (!find_output(key)) throw py::value_error(fmt::format("candidate: unknown quantity '{}'", key));
  }
  return {std::move(out), std::move(present)};
}

struct Validation {
  std::string name;
  CaseValidation result;

  std::string overall() const { return to_string(result.overall()); }
  // Prints like `multibox validate`.
  std::string text() const {
    return fmt::format("against '{}', up to stage '{}':\n{}overall: {} ({} quantities judged)\n", name,
                       to_string(result.stage), result.to_string(), overall(), result.provided());
  }
};

Validation compare(const Outputs& expected, py::handle candidate) {
  auto [out, present] = candidate_outputs(expected, candidate);
  const Case c = expected.as_case();
  Validation v{expected.backend, take(validate_case_outputs(c, expected.complete(), out, present))};
  return v;
}

// A named workload's inputs, owned here and handed out as NumPy views.
struct PyWorkload {
  Workload w;
};

}  // namespace
}  // namespace multibox::python

PYBIND11_MODULE(_multibox, m) {
  using namespace multibox;
  using namespace multibox::python;
  m.doc() = "multibox: SSD target assignment, MultiBox loss, hard negative mining and gradients (C++ backends)";

  m.def(
      "backends",
      [] {
        check(plugin_status());
        py::list out;
        for (const Backend* b : all_backends()) {
          const Status s = b->available();
          py::dict d;
          d["name"] = std::string(b->name());
          d["description"] = std::string(b->description());
          d["available"] = s.ok();
          d["reason"] = s.ok() ? std::string() : s.message();
          out.append(d);
        }
        return out;
      },
      "Every registered backend (the naive reference first): name, description, available, reason.");

  m.def(
      "priors",
      [](const std::string& name) {
        auto p = std::make_unique<std::vector<float>>(take(priors_by_name(name)));
        const auto n = static_cast<py::ssize_t>(p->size() / 4);
        py::capsule owner(p.get(), [](void* v) { delete static_cast<std::vector<float>*>(v); });
        const float* data = p.release()->data();
        return view(data, {n, 4}, owner);
      },
      py::arg("name"),
      "Priors [P, 4] (cx, cy, w, h), normalised: ssd300, ssd512, tutorial or grid:ROWSxCOLS:s1,s2:r1,r2.");

  py::class_<Config>(m, "Config", "Matcher and loss configuration; names and defaults of the command line's flags.")
      .def(py::init(&make_config), py::kw_only(), py::arg("forced_match") = "bipartite",
           py::arg("pos_threshold") = 0.5f, py::arg("neg_threshold") = py::none(),
           py::arg("variances") = std::pair<float, float>{0.1f, 0.2f}, py::arg("neg_pos_ratio") = 3,
           py::arg("min_negatives") = 0, py::arg("alpha") = 1.0f, py::arg("beta") = 1.0f)
      .def_property_readonly("forced_match", [](const Config& c) { return to_string(c.forced_match); })
      .def_property_readonly("pos_threshold", [](const Config& c) { return c.pos_threshold; })
      .def_property_readonly("neg_threshold", [](const Config& c) { return c.negative_threshold(); })
      .def_property_readonly("variances", [](const Config& c) { return std::pair{c.variance_xy, c.variance_wh}; })
      .def_property_readonly("neg_pos_ratio", [](const Config& c) { return c.neg_pos_ratio; })
      .def_property_readonly("min_negatives", [](const Config& c) { return c.min_negatives_per_image; })
      .def_property_readonly("alpha", [](const Config& c) { return c.alpha; })
      .def_property_readonly("beta", [](const Config& c) { return c.smooth_l1_beta; })
      .def("__repr__", [](const Config& c) { return "Config(" + c.describe() + ")"; });

  py::class_<Outputs>(m, "Outputs", "Everything one run produced up to its stage (NumPy views, no copies).")
      .def_readonly("backend", &Outputs::backend)
      .def_property_readonly("stage", [](const Outputs& o) { return to_string(o.stage); })
      .def_readonly("config", &Outputs::config)
      .def_property_readonly("quantities", [](const Outputs& o) { return quantities_of(o.stage); })
      .def("__getitem__", &quantity)
      .def("to_dict",
           [](py::object self) {
             py::dict d;
             for (const std::string& q : quantities_of(self.cast<const Outputs&>().stage))
               d[q.c_str()] = quantity(self, q);
             return d;
           })
      .def("__repr__", [](const Outputs& o) {
        return fmt::format("Outputs(backend='{}', stage='{}', {}, loss={:.7g}, N={})", o.backend, to_string(o.stage),
                           o.shape.describe(), o.out.loss.total, o.out.loss.num_positives);
      });
  auto outputs_class = py::reinterpret_borrow<py::class_<Outputs>>(m.attr("Outputs"));
  for (const char* q : kOutputQuantities)  // string literals: they outlive the class
    outputs_class.def_property_readonly(q, [name = std::string(q)](py::object self) { return quantity(self, name); });

  py::class_<PyPlan>(m, "Plan", "A backend prepared for one prior set, class count and configuration.")
      .def_property_readonly("backend", &PyPlan::backend_name)
      .def_property_readonly("num_priors", &PyPlan::num_priors)
      .def("run", &PyPlan::run, py::arg("gt_boxes"), py::arg("gt_labels"), py::arg("gt_offsets"),
           py::arg("conf") = py::none(), py::arg("loc") = py::none(), py::arg("stage") = "backward",
           "Runs the stages up to `stage` (match, encode, forward, backward) and returns an Outputs. The Outputs hold "
           "references to the input arrays (compare() reads them), so modify those only after the last compare().");

  m.def("prepare", &prepare, py::arg("priors"), py::arg("num_classes"), py::arg("config") = Config{},
        py::arg("backend") = "simd", py::arg("threads") = 0,
        "A Plan of `backend` (MULTIBOX_BACKEND overrides, as in every tool) for these priors ([P, 4] float32 or a "
        "prior-set name) and classes (background 0 included).");

  py::class_<QuantityVerdict>(m, "QuantityVerdict")
      .def_readonly("quantity", &QuantityVerdict::quantity)
      .def_property_readonly("verdict", [](const QuantityVerdict& q) { return to_string(q.verdict); })
      .def_readonly("elements", &QuantityVerdict::elements)
      .def_readonly("mismatches", &QuantityVerdict::mismatches)
      .def_readonly("worst_error", &QuantityVerdict::worst_error)
      .def_readonly("detail", &QuantityVerdict::detail)
      .def("__repr__",
           [](const QuantityVerdict& q) { return fmt::format("<{} {}>", to_string(q.verdict), q.quantity); });

  py::class_<Validation>(m, "Validation", "Verdicts per quantity under the agreement rules of docs/SPEC.md.")
      .def_readwrite("name", &Validation::name)
      .def_property_readonly("overall", &Validation::overall)
      .def_property_readonly("passed", [](const Validation& v) { return v.result.overall() == Verdict::passed; })
      .def_property_readonly("stage", [](const Validation& v) { return to_string(v.result.stage); })
      .def_property_readonly("quantities",
                             [](const Validation& v) {
                               std::vector<QuantityVerdict> out;
                               for (const CaseVerdict& q : v.result.quantities)
                                 if (q.provided) out.push_back(q.verdict);
                               return out;
                             })
      .def("__getitem__",
           [](const Validation& v, const std::string& quantity) {
             for (const CaseVerdict& q : v.result.quantities)
               if (q.verdict.quantity == quantity && q.provided) return q.verdict;
             throw py::key_error(quantity);
           })
      .def("__str__", &Validation::text)
      .def("__repr__", [](const Validation& v) { return fmt::format("<Validation {} {}>", v.name, v.overall()); });

  m.def("compare", &compare, py::arg("expected"), py::arg("candidate"),
        "Judges `candidate` (Outputs, or a dict of quantities named as in a case folder) against `expected` (the "
        "reference's Outputs, which carry the inputs) under docs/SPEC.md section 9.");

  py::class_<PyWorkload>(m, "Workload", "A named workload's inputs (NumPy views) and the configuration it is run with.")
      .def_property_readonly("name", [](const PyWorkload& w) { return w.w.name; })
      .def_property_readonly("description", [](const PyWorkload& w) { return w.w.description; })
      .def_property_readonly("config", [](const PyWorkload& w) { return w.w.config; })
      .def_property_readonly("num_classes", [](const PyWorkload& w) { return w.w.shape.num_classes; })
      .def_property_readonly("seed", [](const PyWorkload& w) { return w.w.seed; })
      .def_property_readonly("priors",
                             [](py::object self) {
                               const auto& w = self.cast<const PyWorkload&>().w;
                               return view(w.priors.data(), {w.shape.num_priors, 4}, self);
                             })
      .def_property_readonly("gt_boxes",
                             [](py::object self) {
                               const auto& d = self.cast<const PyWorkload&>().w.data;
                               return view(d.gt_boxes.data(), {py::ssize_t(d.gt_labels.size()), 4}, self);
                             })
      .def_property_readonly("gt_labels",
                             [](py::object self) {
                               const auto& d = self.cast<const PyWorkload&>().w.data;
                               return view(d.gt_labels.data(), {py::ssize_t(d.gt_labels.size())}, self);
                             })
      .def_property_readonly("gt_offsets",
                             [](py::object self) {
                               const auto& d = self.cast<const PyWorkload&>().w.data;
                               return view(d.gt_offsets.data(), {py::ssize_t(d.gt_offsets.size())}, self);
                             })
      .def_property_readonly("conf",
                             [](py::object self) {
                               const auto& w = self.cast<const PyWorkload&>().w;
                               return view(w.data.conf.data(),
                                           {w.shape.batch, w.shape.num_priors, w.shape.num_classes}, self);
                             })
      .def_property_readonly("loc", [](py::object self) {
        const auto& w = self.cast<const PyWorkload&>().w;
        return view(w.data.loc.data(), {w.shape.batch, w.shape.num_priors, 4}, self);
      });

  m.def(
      "workload",
      [](const std::string& name, int batch, uint64_t seed, const std::string& coco_path) {
        WorkloadOptions options;
        options.batch = batch;
        options.seed = seed;
        options.coco_path = coco_path;
        Result<Workload> made = Status(ErrorCode::internal, "not made");
        {
          py::gil_scoped_release unlocked;
          made = make_workload(name, options);
        }
        Workload w = take(std::move(made));
        return PyWorkload{std::move(w)};
      },
      py::arg("name"), py::kw_only(), py::arg("batch") = 0, py::arg("seed") = 0, py::arg("coco_path") = "",
      "A named workload (see `multibox datasets`): coco128 reads the shared COCO128 annotations.");
  m.def("workloads", [] {
    std::vector<std::string> names;
    for (const WorkloadInfo& w : list_workloads()) names.push_back(w.name);
    return names;
  });
}
