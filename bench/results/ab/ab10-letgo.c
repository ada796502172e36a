/* The cost of a lock let go while its waiter sleeps quietly (issue 17;
 * ab10-variants.txt says how to build it).  H holds, W waits; H lets go and
 * retakes at once for D us (D random in [0, DMAX]), then lets go for good;
 * W's latency from that last release to its acquire is recorded.  Prints
 * quantiles over CYCLES cycles.  Usage: letgo CYCLES DMAX_US */
#define _GNU_SOURCE
#include <fastmutex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
static _Atomic uint64_t last_release; static atomic_int phase; static int CYCLES, DMAX;
static uint64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000ull+t.tv_nsec;}
static uint64_t lat[100000];
static void *waiter(void *a){(void)a;
  for(int c=0;c<CYCLES;c++){
    while(atomic_load(&phase)!=2*c+1) ;   /* H holds */
    usleep(50);                            /* W queues behind H */
    fast_mutex_acquire(&m); uint64_t t=now(); fast_mutex_release(&m);
    uint64_t r=atomic_load(&last_release); lat[c]= t>r ? t-r : 0;
    atomic_store(&phase,2*c+2);
  }
  return NULL;}
int main(int argc,char**argv){CYCLES=atoi(argv[1]);DMAX=atoi(argv[2]);srand(1);
  pthread_t t; pthread_create(&t,NULL,waiter,NULL);
  for(int c=0;c<CYCLES;c++){
    fast_mutex_acquire(&m); atomic_store(&last_release,UINT64_MAX); atomic_store(&phase,2*c+1);
    usleep(200);
    uint64_t end=now()+(uint64_t)(rand()%(DMAX+1))*1000;
    while(now()<end){ fast_mutex_release(&m); fast_mutex_acquire(&m); uint64_t e=now()+100; while(now()<e); }
    atomic_store(&last_release,now()); fast_mutex_release(&m);
    while(atomic_load(&phase)!=2*c+2) usleep(10);
  }
  pthread_join(t,NULL);
  int cmp(const void*a,const void*b){uint64_t x=*(uint64_t*)a,y=*(uint64_t*)b;return x<y?-1:x>y;}
  qsort(lat,CYCLES,8,cmp);
  double s=0; for(int i=0;i<CYCLES;i++) s+=lat[i];
  printf("n=%d p50=%.1f p90=%.1f p99=%.1f max=%.1f mean=%.1f us\n",CYCLES,lat[CYCLES/2]/1e3,lat[CYCLES*9/10]/1e3,lat[CYCLES*99/100]/1e3,lat[CYCLES-1]/1e3,s/CYCLES/1e3);
}
