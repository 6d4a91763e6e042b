/* Entry points of the test-only wasm module kernels_test_{mt,st,rx} (prefix kx_), called
 * by tests/wasm/kernels.test.mjs: the library self-check and fingerprint, the thread
 * pool's counters, and a large matmul to show that the threaded build uses threads. */
#include <emscripten.h>
#include <stdlib.h>

#include "kernels_check.h"
#include "lpl/core/kernels.h"
#include "lpl/core/simd.h"
#include "lpl/core/threads.h"

static char g_report[1024];
static char *g_fingerprint;

/* JSON report of the kernel self-check without the int8 products (see
 * lpl_kernels_selfcheck_ex). */
EMSCRIPTEN_KEEPALIVE const char *kx_selfcheck_no_q8(void)
{
    lpl_kernels_selfcheck_ex(g_report, sizeof g_report, 1);
    return g_report;
}

/* JSON report of the kernel self-check (see lpl_kernels_selfcheck). */
EMSCRIPTEN_KEEPALIVE const char *kx_selfcheck(void)
{
    lpl_kernels_selfcheck(g_report, sizeof g_report);
    return g_report;
}

/* Kernel fingerprint JSON with the pool resized to threads (<= 0: all cores);
 * "" if memory runs out. The string stays valid until the next call. */
EMSCRIPTEN_KEEPALIVE const char *kx_fingerprint(int threads)
{
    lpl_threads_init(threads, NULL);
    size_t n = lpl_kernels_fingerprint(NULL, 0);
    free(g_fingerprint);
    g_fingerprint = malloc(n + 1);
    if (!g_fingerprint)
        return "";
    lpl_kernels_fingerprint(g_fingerprint, n + 1);
    return g_fingerprint;
}

/* Resizes the pool; returns the thread count now in use. */
EMSCRIPTEN_KEEPALIVE int kx_threads_init(int n)
{
    lpl_threads_init(n, NULL);
    return lpl_threads_count();
}

EMSCRIPTEN_KEEPALIVE int kx_threads_count(void) { return lpl_threads_count(); }
EMSCRIPTEN_KEEPALIVE int kx_threads_used(void) { return lpl_threads_used(); }
EMSCRIPTEN_KEEPALIVE const char *kx_simd_name(void) { return LPL_SIMD_NAME; }

/* Y[128][768] = X[128][768] . W^T with a Q8_0 W: a product large enough for every
 * thread to take part. Returns Y[0][0] + Y[127][767] (or -1 without memory). */
EMSCRIPTEN_KEEPALIVE double kx_big_matmul(void)
{
    enum { T = 128, N = 768, K = 768 };
    float *X = malloc(sizeof(float) * T * K), *Wf = malloc(sizeof(float) * N * K);
    float *Y = malloc(sizeof(float) * T * N);
    lpl_block_q8_0 *Wq = malloc(sizeof(lpl_block_q8_0) * N * K / LPL_QK);
    double r = -1;
    if (X && Wf && Y && Wq) {
        for (int i = 0; i < T * K; i++)
            X[i] = (float)((i * 7) % 13) - 6.0f;
        for (int i = 0; i < N * K; i++)
            Wf[i] = (float)((i * 5) % 11) * 0.125f - 0.625f;
        lpl_quantize_q8_0(Wf, Wq, (int64_t)N * K);
        lpl_matrix W = {LPL_Q8_0, N, K, Wq};
        lpl_linear_forward(Y, X, &W, NULL, T, 0);
        r = (double)Y[0] + Y[T * N - 1];
    }
    free(X), free(Wf), free(Y), free(Wq);
    return r;
}

/* Joins the pool's threads (their workers go back to Emscripten's pool). */
EMSCRIPTEN_KEEPALIVE void kx_threads_shutdown(void) { lpl_threads_shutdown(); }
