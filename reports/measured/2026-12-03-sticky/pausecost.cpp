#include <chrono>
#include <cstdio>
int main() {
  double best = 1e9;
  for (int r = 0; r < 200; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i) __builtin_ia32_pause();
    auto t1 = std::chrono::steady_clock::now();
    double us = std::chrono::duration<double, std::micro>(t1 - t0).count();
    if (us < best) best = us;
  }
  printf("2000 pauses: best %.1f us\n", best);
}
