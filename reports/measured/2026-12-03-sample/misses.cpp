// Counts images whose sampled mining histogram missed (a second scan), over synthetic scenes.
#include <cstdio>
#include "multibox/multibox.hpp"
#include "multibox/workloads.hpp"
#include "simd/loss.hpp"
#include "simd/simd_backend.hpp"
using namespace multibox;
int main() {
  long images = 0, missed = 0;
  for (const char* priors : {"ssd300", "ssd512", "tutorial"})
    for (int C : {2, 21, 81})
      for (auto [lo, hi] : {std::pair{1, 13}, {30, 30}, {100, 100}})
        for (int seed = 1; seed <= 6; ++seed) {
          SyntheticSpec s; s.prior_set = priors; s.batch = 4; s.num_classes = C; s.min_objects = lo; s.max_objects = hi;
          s.logits = seed % 2 ? LogitModel::trained : LogitModel::random; s.seed = seed;
          auto w = make_synthetic(s);
          if (!w.ok()) { printf("skip %s\n", w.status().to_string().c_str()); continue; }
          PlanOptions po; po.num_threads = 1;
          auto plan = simd::backend().prepare(w->shape, w->priors, w->config, po).value();
          BatchOutputs out(w->shape, w->shape.max_ground_truths);
          if (!plan->run(w->data.ground_truths(), w->data.predictions(), Stage::encode, out.view()).ok()) return 1;
          const int P = w->shape.num_priors;
          for (int b = 0; b < w->shape.batch; ++b) {
            simd::ImageLossInputs in;
            in.num_priors = P; in.num_classes = C;
            in.conf = w->data.conf.data() + (size_t)b * P * C; in.loc = w->data.loc.data() + (size_t)b * P * 4;
            in.matches = out.matches.data() + (size_t)b * P; in.labels = w->data.gt_labels.data() + w->data.gt_offsets[b];
            in.targets = out.targets.data() + (size_t)b * P * 4; in.positives = out.positives[b];
            simd::LossScratch sc(P); std::vector<uint8_t> mined(P);
            simd::image_loss_bounds(w->config, in, {mined.data(), nullptr, nullptr}, sc);
            ++images; missed += sc.sample_missed;
            if (sc.sample_missed) printf("missed: %s C=%d objects %d-%d seed %d image %d quota %ld\n", priors, C, lo, hi, seed, b, (long)sc.quota);
          }
        }
  printf("images %ld, sample missed %ld\n", images, missed);
}
