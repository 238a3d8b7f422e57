/* bench/peak: the machine's FP32 peak as measured, for bench.py's "share of peak".
 *
 *   peak [--threads T] [--json]
 *
 * Each thread runs independent chains of fused multiply-adds on full vector registers
 * (AVX-512 where the CPU has it, else AVX2 + FMA), enough chains to cover the FMA
 * latency on every FMA unit; the best of several timed rounds counts, so another
 * process taking a core for a while lowers nothing but that round. FLOPs are 2 per
 * lane per FMA. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static float fma512(long iters, float seed)
{
    __m512 acc[CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps(seed + (float)i);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma256(long iters, float seed)
{
    __m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps(seed + (float)i);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

int main(int argc, char **argv)
{
    int threads = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: peak [--threads T] [--json]\n");
            return 2;
        }
    }
    if (threads <= 0) threads = omp_get_num_procs();
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        fprintf(stderr, "peak: this CPU has neither AVX-512 nor AVX2 with FMA\n");
        return 1;
    }
    int lanes = wide ? 16 : 8;
    long iters = 20000000; /* about a tenth of a second per round at a few GHz */
    double best = 0, sink = 0;
    for (int round = 0; round < 7; round++) {
        double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += wide ? fma512(iters, (float)omp_get_thread_num()) : fma256(iters, (float)omp_get_thread_num());
        double gflops = (double)threads * iters * CHAINS * lanes * 2 / (now_s() - t0) / 1e9;
        if (gflops > best) best = gflops;
    }
    if (json)
        printf("{\"threads\": %d, \"isa\": \"%s\", \"gflops\": %.1f, \"sink\": %g}\n", threads,
               wide ? "avx512" : "avx2", best, sink);
    else
        printf("FP32 peak: %.1f GFLOP/s on %d threads (%s FMA; best of 7 rounds)\n", best, threads,
               wide ? "AVX-512" : "AVX2");
    return 0;
}
