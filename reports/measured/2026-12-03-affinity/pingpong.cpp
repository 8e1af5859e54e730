// The core-to-core round trip of the records: one cache line bounced between threads pinned to CPUs 0 and 1.
// g++ -O2 -pthread pingpong.cpp -o pingpong
#include <atomic>
#include <thread>
#include <chrono>
#include <cstdio>
#include <pthread.h>
alignas(64) std::atomic<int> flag{0};
void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);}
int main(){ const int N=200000;
 std::thread t([&]{pin(1); for(int i=0;i<N;i++){ while(flag.load(std::memory_order_acquire)!=2*i+1); flag.store(2*i+2,std::memory_order_release);} });
 pin(0); auto a=std::chrono::steady_clock::now();
 for(int i=0;i<N;i++){ flag.store(2*i+1,std::memory_order_release); while(flag.load(std::memory_order_acquire)!=2*i+2); }
 auto b=std::chrono::steady_clock::now(); t.join();
 printf("round trip %.1f ns\n", std::chrono::duration<double,std::nano>(b-a).count()/N);}
