#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
#include <algorithm>
int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  for (int r = 0; r < rounds; ++r) {
    double med[2];
    std::vector<double> all[2];
    for (int k = 0; k < 2; ++k) {
      std::thread([&, k] {
        cpu_set_t one; CPU_ZERO(&one); CPU_SET(k, &one); pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        volatile float sink = 0;
        std::vector<double> t;
        for (int tr = 0; tr < 7; ++tr) {
          __m512 a[12]; for (int c = 0; c < 12; ++c) a[c] = _mm512_set1_ps(1.0f + c * 1e-3f);
          __m512 m = _mm512_set1_ps(0.9999999f), ad = _mm512_set1_ps(1e-7f);
          auto s = std::chrono::steady_clock::now();
          for (int i = 0; i < 100000; ++i) for (int c = 0; c < 12; ++c) a[c] = _mm512_fmadd_ps(a[c], m, ad);
          t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
          for (int c = 0; c < 12; ++c) sink = sink + a[c][0];
        }
        all[k] = t;
        std::sort(t.begin(), t.end()); med[k] = t[3];
      }).join();
    }
    printf("balance %.2f  cpu0:", std::min(med[0], med[1]) / std::max(med[0], med[1]));
    for (double x : all[0]) printf(" %.0f", x);
    printf("  cpu1:"); for (double x : all[1]) printf(" %.0f", x);
    printf("\n");
  }
}
