#include <stdio.h>
#include <time.h>
int main(){ struct timespec a,b; volatile double x=1.0; for(int r=0;r<5;r++){ clock_gettime(CLOCK_MONOTONIC,&a); for(long i=0;i<200000000;i++) x=x*1.0000001+1e-9; clock_gettime(CLOCK_MONOTONIC,&b); printf("%.1f ms\n",(b.tv_sec-a.tv_sec)*1e3+(b.tv_nsec-a.tv_nsec)/1e6);} }
