// How many negatives reach the cut under various CE bounds (scalar simulation, doubles).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/simd_backend.hpp"
#include "core/math.hpp"
using namespace multibox;
struct Variant { const char* name; int lanes; bool sep0; int newl; };
int main(int argc, char** argv) {
  SyntheticSpec s;
  s.prior_set = getenv("PRIORS") ? getenv("PRIORS") : "ssd300";
  s.batch = getenv("BATCH") ? atoi(getenv("BATCH")) : 8;
  s.num_classes = argc > 1 ? atoi(argv[1]) : 21;
  s.min_objects = 1; s.max_objects = 13;
  if (getenv("OBJECTS")) s.min_objects = s.max_objects = atoi(getenv("OBJECTS"));
  s.logits = LogitModel::trained; s.seed = 5;
  auto w = make_synthetic(s).value();
  PlanOptions po; po.num_threads = 1;
  auto plan = simd::backend().prepare(w.shape, w.priors, w.config, po).value();
  BatchOutputs out(w.shape, w.shape.max_ground_truths);
  if (!plan->run(w.data.ground_truths(), w.data.predictions(), Stage::encode, out.view()).ok()) return 1;
  const int P = w.shape.num_priors, B = w.shape.batch, C = s.num_classes;
  std::vector<Variant> vs = {{"cur16", 16, false}, {"cur8", 8, false}, {"sep16", 16, true}, {"sep8", 8, true},
                             {"sep4", 4, true}, {"new16", 16, true, 16}, {"new9", 9, true, 9}, {"new8", 8, true, 8}, {"new6", 6, true, 6}, {"new5", 5, true, 5}, {"new4", 4, true, 4}};
  std::vector<long> cand(vs.size(), 0);
  long quota_all = 0, pos_all = 0, neg_all = 0;
  for (int b = 0; b < B; ++b) {
    const float* conf = w.data.conf.data() + (size_t)b * P * C;
    const int32_t* m = out.matches.data() + (size_t)b * P;
    std::vector<double> ce(P);
    long neg = 0, pos = 0;
    for (int p = 0; p < P; ++p) {
      const float* x = conf + (size_t)p * C;
      double mx = *std::max_element(x, x + C), s2 = 0;
      for (int c = 0; c < C; ++c) s2 += std::exp(x[c] - mx);
      ce[p] = mx + std::log(s2) - x[0];
      if (m[p] == -1) ++neg; else if (m[p] >= 0) ++pos;
    }
    int64_t quota = core::mining_quota(out.positives[b], neg, w.config.neg_pos_ratio, w.config.min_negatives_per_image);
    quota_all += quota; pos_all += pos; neg_all += neg;
    for (size_t v = 0; v < vs.size(); ++v) {
      const int L = vs[v].lanes;
      std::vector<double> lo(P), hi(P);
      for (int p = 0; p < P; ++p) {
        const float* x = conf + (size_t)p * C;
        std::vector<double> lm(L, -INFINITY), cnt(L, 0);
        for (int c = vs[v].sep0 ? 1 : 0; c < C; ++c) { int l = c % 16 % L; if (vs[v].newl) { l = (c - 1) % 15 + 1; l = 1 + (l - 1) % (vs[v].newl - 1) - 1; } lm[l] = std::max<double>(lm[l], x[c]); cnt[l] += 1; }
        double M = *std::max_element(x, x + C);
        double sl = vs[v].sep0 ? std::exp(x[0] - M) : 0, sh = sl;
        for (int l = 0; l < L; ++l) if (cnt[l] > 0) { sl += std::exp(lm[l] - M); sh += cnt[l] * std::exp(lm[l] - M); }
        lo[p] = M - x[0] + std::log(sl); hi[p] = M - x[0] + std::log(sh);
      }
      std::vector<double> nl;
      for (int p = 0; p < P; ++p) if (m[p] == -1) nl.push_back(lo[p]);
      if (quota <= 0 || quota >= (int64_t)nl.size()) { cand[v] += nl.size(); continue; }
      std::nth_element(nl.begin(), nl.begin() + (quota - 1), nl.end(), std::greater<double>());
      double cut = nl[quota - 1] - 1e-3 * std::max(1.0, nl[quota - 1]);
      for (int p = 0; p < P; ++p) if (m[p] == -1 && hi[p] >= cut) ++cand[v];
    }
  }
  printf("C=%d B=%d P=%d pos %ld neg %ld quota %ld |", C, B, P, pos_all, neg_all, quota_all);
  for (size_t v = 0; v < vs.size(); ++v) printf(" %s %ld", vs[v].name, cand[v]);
  printf("\n");
}
