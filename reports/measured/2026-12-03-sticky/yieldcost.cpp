#include <chrono>
#include <cstdio>
#include <thread>
#include <sched.h>
int main() {
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100000; ++i) sched_yield();
    auto t1 = std::chrono::steady_clock::now();
    printf("sched_yield %.2f us each\n", std::chrono::duration<double, std::micro>(t1 - t0).count() / 100000);
  }
}
