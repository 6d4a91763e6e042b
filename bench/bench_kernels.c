/* Kernel benchmark: GFLOP/s of the linear-layer products (forward X.W^T, input
 * gradient dY.W, weight gradient dY^T.X) for fp32 and Q8_0 weights (the latter
 * dequantised to fp32, and with the int8 products of compute int8) at GPT-2 shapes,
 * with one thread and with all threads. Prints a Markdown table.
 *
 *   bench_kernels [--quick] [--threads N] [--min-time S] [--m M]
 *     --quick      skip the 50257-wide (LM head) shapes
 *     --m M        tokens per product (default 128)
 *     --threads N  "all threads" means N (default: all cores; at most 8 in wasm)
 *     --min-time S time each case for at least S seconds (default 0.3); the best
 *                  single run is reported, since the machine may be shared.
 * Columns: best wall-clock time and its GFLOP/s; and GFLOP/s from the
 * best process CPU time of a run times the thread count, which does not count
 * time slices taken by other processes (it does hide idle or waiting threads). */
#include "lpl/core/kernels.h"
#include "lpl/core/simd.h"
#include "lpl/core/threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * 0x1p-23f - 1.0f;
    }
}

typedef enum { FWD, BWD_IN, BWD_W } op_kind;
static const char *k_op_names[] = {"forward   X.W^T", "input grad dY.W", "weight grad dY^T.X"};

typedef struct {
    int M, K, N;
    float *X, *Y, *dX, *dW;
    lpl_matrix W;
    int int8; /* Q8_0 weight with the int8 products (compute int8) */
} bench_case;

static void run_once(const bench_case *c, op_kind op)
{
    switch (op) {
    case FWD:
        if (c->int8)
            lpl_linear_forward_q8(c->Y, c->X, &c->W, NULL, c->M, 0);
        else
            lpl_linear_forward(c->Y, c->X, &c->W, NULL, c->M, 0);
        break;
    case BWD_IN:
        if (c->int8)
            lpl_linear_backward_input_q8(c->dX, c->Y, &c->W, c->M);
        else
            lpl_linear_backward_input(c->dX, c->Y, &c->W, c->M);
        break;
    case BWD_W: lpl_linear_backward_weight(c->dW, c->Y, c->X, c->M, c->N, c->K); break;
    }
}

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
/* Node's process CPU time (all threads); Emscripten's libc has no CPU clock. */
EM_JS(double, node_cpu_s, (void), {
    if (typeof process === 'undefined' || !process.cpuUsage)
        return -1;
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
});
#endif

/* Process CPU seconds, or -1 where the platform has no such clock. */
static double cpu_s(void)
{
#ifdef __EMSCRIPTEN__
    return node_cpu_s();
#endif
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return -1.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    double wall; /* best wall-clock seconds of one run */
    double cpu;  /* best CPU seconds of one run (all threads), or < 0 */
} timing;

/* Best single run over runs that add up to at least min_time wall seconds. */
static timing time_op(const bench_case *c, op_kind op, double min_time)
{
    run_once(c, op); /* warm-up: page faults, caches, thread wake-up */
    timing best = {1e30, 1e30};
    double total = 0;
    int runs = 0;
    while (total < min_time || runs < 3) {
        double t0 = now_s(), c0 = cpu_s();
        run_once(c, op);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        best.wall = dt < best.wall ? dt : best.wall;
        best.cpu = c0 < 0 ? -1.0 : (dc < best.cpu ? dc : best.cpu);
        total += dt;
        runs++;
    }
    return best;
}

int main(int argc, char **argv)
{
    int quick = 0, all = 0, M = 128;
    double min_time = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            all = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--m") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            M = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_kernels [--quick] [--threads N] [--min-time S] [--m M]\n");
            return 2;
        }
    }
    lpl_threads_init(all, NULL);
    all = lpl_threads_count();
    int thread_counts[2] = {1, all};
    int n_counts = all > 1 ? 2 : 1;

    static const int widths[] = {768, 3072, 50257};
    int n_widths = quick ? 2 : 3;
    const int K = 768;
    printf("simd: %s, all threads = %d, best of runs >= %.2f s\n\n", LPL_SIMD_NAME, all, min_time);
    printf("| weights | product | M x K x N | threads | ms | GFLOP/s | GFLOP/s per CPU-s x threads |\n");
    printf("| --- | --- | --- | ---: | ---: | ---: | ---: |\n");
    fflush(stdout);
    for (int wi = 0; wi < n_widths; wi++) {
        int N = widths[wi];
        bench_case c = {M, K, N, NULL, NULL, NULL, NULL, {LPL_F32, N, K, NULL}, 0};
        float *Wf = malloc(sizeof(float) * (size_t)N * K);
        void *Wq = malloc(lpl_dtype_row_bytes(LPL_Q8_0, K) * (size_t)N);
        c.X = malloc(sizeof(float) * M * K);
        c.dX = calloc((size_t)M * K, sizeof(float));
        c.Y = malloc(sizeof(float) * (size_t)M * N);
        c.dW = calloc((size_t)N * K, sizeof(float));
        if (!Wf || !Wq || !c.X || !c.dX || !c.Y || !c.dW) {
            fprintf(stderr, "out of memory at N=%d\n", N);
            return 1;
        }
        fill(Wf, (size_t)N * K, 1);
        fill(c.X, (size_t)M * K, 2);
        fill(c.Y, (size_t)M * N, 3);
        lpl_quantize_q8_0(Wf, Wq, (int64_t)N * K);
        for (int ty = 0; ty < 3; ty++) { /* f32, q8_0 in fp32, q8_0 in int8 */
            c.W.type = ty ? LPL_Q8_0 : LPL_F32;
            c.W.data = ty ? Wq : (void *)Wf;
            c.int8 = ty == 2;
            for (int op = FWD; op <= BWD_W; op++) {
                if (ty && op == BWD_W) /* frozen quantized weights get no gradient */
                    continue;
                for (int tc = 0; tc < n_counts; tc++) {
                    lpl_threads_init(thread_counts[tc], NULL);
                    timing tm = time_op(&c, (op_kind)op, min_time);
                    double flop = 2.0 * M * K * (double)N;
                    char cpu_col[32] = "-";
                    if (tm.cpu > 0) /* immune to time slices lost to other processes */
                        snprintf(cpu_col, sizeof cpu_col, "%.1f",
                                 flop / tm.cpu * thread_counts[tc] * 1e-9);
                    static const char *wname[] = {"f32", "q8_0", "q8_0 int8"};
                    printf("| %s | %s | %dx%dx%d | %d | %.2f | %.1f | %s |\n", wname[ty],
                           k_op_names[op], M, K, N, thread_counts[tc], tm.wall * 1e3,
                           flop / tm.wall * 1e-9, cpu_col);
                    fflush(stdout);
                }
            }
        }
        free(Wf), free(Wq), free(c.X), free(c.dX), free(c.Y), free(c.dW);
    }
    lpl_threads_shutdown();
    return 0;
}
