#include <condition_variable>
#include <mutex>
#include <thread>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include <x86intrin.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
std::mutex m; std::condition_variable cv; int gen=0; std::atomic<int> ack{0};
std::atomic<unsigned long long> woke{0};
int main(){
  std::thread t([]{ int seen=0; for(;;){ std::unique_lock<std::mutex> l(m); cv.wait(l,[&]{return gen!=seen;}); seen=gen; if(gen<0) return; woke.store(__rdtsc()); l.unlock(); ack.fetch_add(1);} });
  std::vector<double> cost, lat;
  for(int i=0;i<3000;i++){
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    auto a=__rdtsc();
    { std::lock_guard<std::mutex> l(m); gen++; }
    cv.notify_all();
    auto b=__rdtsc();
    while(ack.load()<=i) __builtin_ia32_pause();
    cost.push_back((b-a)/2096.0); lat.push_back((woke.load()-a)/2096.0);
  }
  { std::lock_guard<std::mutex> l(m); gen=-1; } cv.notify_all(); t.join();
  std::sort(cost.begin(),cost.end()); std::sort(lat.begin(),lat.end());
  printf("notify cost med %.2f q10 %.2f q90 %.2f us; wake latency med %.2f q10 %.2f q90 %.2f us\n",cost[1500],cost[300],cost[2700],lat[1500],lat[300],lat[2700]);
}
