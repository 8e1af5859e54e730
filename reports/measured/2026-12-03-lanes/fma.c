#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
int main(){ __m512 a[12]; for(int i=0;i<12;i++) a[i]=_mm512_set1_ps(1.0f+i*1e-3f); __m512 m=_mm512_set1_ps(0.9999999f), c=_mm512_set1_ps(1e-7f);
 double best=1e9, t[7]; for(int r=0;r<7;r++){ double t0=now(); for(long i=0;i<20000000;i++){ for(int k=0;k<12;k++) a[k]=_mm512_fmadd_ps(a[k],m,c);} t[r]=now()-t0; }
 float s=0; for(int k=0;k<12;k++) s+=_mm512_reduce_add_ps(a[k]); for(int r=0;r<7;r++) printf("%.0f ",t[r]); printf(" ms (%g)\n",s); }
