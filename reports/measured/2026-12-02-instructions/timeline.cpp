#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <atomic>
#include <x86intrin.h>
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/image_pool.hpp"
#include "simd/simd_backend.hpp"
using namespace multibox;
using multibox::simd::g_tl; using multibox::simd::g_tl_n;
int main(int argc, char** argv) {
  int C = atoi(argv[1]), reps = atoi(argv[2]), T = atoi(argv[3]);
  SyntheticSpec s; s.batch = getenv("BATCH") ? atoi(getenv("BATCH")) : 8; s.prior_set = getenv("PRIORS") ? getenv("PRIORS") : "ssd300";
  s.num_classes = C; s.min_objects = 1; s.max_objects = 13; s.logits = LogitModel::trained; s.seed = 5;
  auto w = make_synthetic(s).value();
  PlanOptions po; po.num_threads = T;
  auto plan = simd::backend().prepare(w.shape, w.priors, w.config, po).value();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  std::vector<simd::TimelineEvent> best; uint64_t bestt = ~0ull; std::vector<double> all;
  for (int r = 0; r < reps; ++r) {
    g_tl_n = 0;
    uint64_t t0 = __rdtsc();
    if (!plan->run(w.data.ground_truths(), w.data.predictions(), Stage::backward, out.view()).ok()) return 1;
    uint64_t t1 = __rdtsc();
    all.push_back((t1-t0)/2445.0);
    if (t1 - t0 < bestt) { bestt = t1 - t0; best.assign(g_tl, g_tl + std::min(4096, g_tl_n.load())); for (auto& e : best) { e.t0 -= t0; if (e.t1) e.t1 -= t0; } }
  }
  std::sort(all.begin(), all.end());
  printf("best %.1f us med %.1f us\n", bestt / 2445.0, all[all.size()/2]);
  for (auto& e : best) printf("w%d item %d  %.1f -> %.1f us\n", e.worker, e.item, e.t0 / 2445.0, e.t1 ? e.t1 / 2445.0 : 0.0);
}
