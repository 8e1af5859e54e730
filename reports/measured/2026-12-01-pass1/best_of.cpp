// The one-thread driver behind the "best of N runs" figures in this folder's README and in the commit messages
// of f227240, c02ee26, 20d8bd7 and 0dc2041: the simd loss (simd::image_loss) on the 8 images of the benchmark's
// coco_like("ssd300", 8, C) scene, or the whole plan at T threads, N runs, printing the best, the 10th percentile
// and the median run. The best run is the yardstick: on this shared 2-vCPU VM the medians of two runs of one
// binary minutes apart differ by 10-60 %, the best of some hundred runs by about 1 %.
// Build against a release tree (the static libraries and include paths of build/release):
//   B=build/release
//   c++ -O3 -DNDEBUG -ffp-contract=off -march=native -std=c++20 -DHWY_COMPILE_ONLY_STATIC=1 -DFMT_SHARED \
//     -Iimpls/include -Iimpls -Idatasets/include reports/measured/2026-12-01-pass1/best_of.cpp -o best_of \
//     $B/impls/libmultibox.a $B/datasets/libmultibox_datasets.a $B/impls/libmultibox.a \
//     $B/impls/naive/libmultibox_backend_naive.a $B/impls/simd/libmultibox_backend_simd.a \
//     $B/impls/libmultibox_core.a /usr/lib/x86_64-linux-gnu/libhwy.so.1.0.3 -lfmt -lgomp -lpthread
//   (a tree configured with CUDA also needs $B/impls/cuda/libmultibox_backend_cuda.a and the CUDA runtime)
// Run: best_of C RUNS BACKWARD [THREADS]; PRIORS=tutorial for another prior set, BATCH=n for another batch,
// OBJECTS=n for n objects in every image, DUMP=file (with THREADS) writes the gradients, mined mask and loss terms
// for a byte-for-byte comparison, ENCODE=1 (with THREADS) times the encode stage instead. CHECK=1 has image_loss
// scan the values for NaN/Inf, as the plans do by default (PlanOptions::check_prediction_values) and the
// benchmarks therefore do (the plan mode, with THREADS, always does); without it, the one-thread figures are those
// of a path the benchmarks do not take (the figures of 2026-12-01 were taken without it, those of 2026-12-02 with it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/loss.hpp"
#include "simd/simd_backend.hpp"
using namespace multibox;
int main(int argc, char** argv) {
  int C = argc > 1 ? atoi(argv[1]) : 21;
  int reps = argc > 2 ? atoi(argv[2]) : 300;
  bool backward = argc > 3 ? atoi(argv[3]) : 1;
  SyntheticSpec s;
  s.batch = 8;
  s.prior_set = getenv("PRIORS") ? getenv("PRIORS") : "ssd300";
  if (getenv("BATCH")) s.batch = atoi(getenv("BATCH"));
  s.num_classes = C;
  s.min_objects = 1;
  s.max_objects = 13;
  if (getenv("OBJECTS")) s.min_objects = s.max_objects = atoi(getenv("OBJECTS"));
  s.logits = LogitModel::trained;
  s.seed = 5;
  auto w = make_synthetic(s).value();
  PlanOptions po;
  po.num_threads = 1;
  auto plan = simd::backend().prepare(w.shape, w.priors, w.config, po).value();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  if (!plan->run(w.data.ground_truths(), w.data.predictions(), Stage::encode, out.view()).ok()) return 1;
  const int P = w.shape.num_priors, B = w.shape.batch;
  int64_t bp = 0;
  for (int b = 0; b < B; ++b) bp += out.positives[b];
  std::vector<float> gc((size_t)B * P * C), gl((size_t)B * P * 4);
  std::vector<uint8_t> mined((size_t)B * P);
  if (argc > 4) {  // whole plan, T threads
    int T = atoi(argv[4]);
    PlanOptions p2;
    p2.num_threads = T;
    auto plan2 = simd::backend().prepare(w.shape, w.priors, w.config, p2).value();
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      if (!plan2
               ->run(w.data.ground_truths(), w.data.predictions(),
                     getenv("ENCODE") ? Stage::encode : backward ? Stage::backward : Stage::forward, out.view())
               .ok())
        return 1;
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    if (const char* f = getenv("DUMP")) {
      FILE* fp = fopen(f, "wb");
      fwrite(out.grad_conf.data(), 4, out.grad_conf.size(), fp);
      fwrite(out.grad_loc.data(), 4, out.grad_loc.size(), fp);
      fwrite(out.mined.data(), 1, out.mined.size(), fp);
      fwrite(&out.loss, sizeof(out.loss), 1, fp);
      fclose(fp);
    }
    std::sort(t.begin(), t.end());
    printf("plan C=%d T=%d backward=%d min %.4f q10 %.4f med %.4f ms\n", C, T, backward, t[0], t[t.size() / 10],
           t[t.size() / 2]);
    return 0;
  }
  simd::LossScratch scratch(P);
  std::vector<double> t;
  double sink = 0;
  long exact = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int b = 0; b < B; ++b) {
      simd::ImageLossInputs in;
      in.num_priors = P;
      in.num_classes = C;
      in.conf = w.data.conf.data() + (size_t)b * P * C;
      in.loc = w.data.loc.data() + (size_t)b * P * 4;
      in.matches = out.matches.data() + (size_t)b * P;
      in.labels = w.data.gt_labels.data() + w.data.gt_offsets[b];
      in.targets = out.targets.data() + (size_t)b * P * 4;
      in.positives = out.positives[b];
      in.batch_positives = bp;
      in.check_values = getenv("CHECK") != nullptr;
      simd::ImageLossOutputs o{mined.data() + (size_t)b * P, backward ? gc.data() + (size_t)b * P * C : nullptr,
                               backward ? gl.data() + (size_t)b * P * 4 : nullptr};
      {
        auto L = simd::image_loss(w.config, in, o, scratch);
        sink += L.conf_sum;
        if (r == 0) exact += L.exact_rows;
      }
    }
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  printf("C=%d backward=%d min %.4f q10 %.4f med %.4f ms (sink %g) exact_rows %ld of %d\n", C, backward, t[0],
         t[t.size() / 10], t[t.size() / 2], sink, exact, B * P);
}
