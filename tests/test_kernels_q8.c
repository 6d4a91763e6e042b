/* Accuracy of the int8 products (compute int8) against the fp32 products on the same
 * Q8_0 weights, layer by layer, on awkward shapes.
 *
 * Every element is held to a bound derived from the quantization, not to a guessed
 * tolerance. With x = dx*q + e, |e| <= dx/2 per block (round to nearest; the scale
 * multiplies by 1/dx, which adds at most a relative 2^-22):
 *   forward         |y8 - y| <= sum_b (dx_b / 2) * sum_{k in b} |w_k|
 *   input gradient  |g8 - g| <= sum_b sum_{n in b} (|dy_n| sw_b / 2 + (dy_b / 2) (|w_n| + sw_b / 2))
 * where sw_b is the scale of W's requantized 32 x 1 column piece. Both get a 1e-5
 * relative slack for fp32 rounding of the sums (K_FLOAT_SLACK). The test also
 * reports the relative RMS error per layer shape and holds it under
 * K_RMS_BOUND (docs/BENCHMARKS.md quotes these figures). */
#include "check.h"
#include "kernels_check.h"
#include "lpl/core/kernels.h"
#include "lpl/core/threads.h"

#include <string.h>

#define K_FLOAT_SLACK 1e-5
#define K_RMS_BOUND 0.02 /* relative RMS error of one product, LayerNorm-like inputs */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-53;
}

/* Roughly normal values (sum of 4 uniforms) with rare large outliers, like LayerNorm
 * outputs and GPT-2 activations. */
static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) {
        double s = uniform() + uniform() + uniform() + uniform() - 2.0;
        if (uniform() < 0.01)
            s *= 20.0;
        x[i] = (float)(s * scale);
    }
}

typedef struct {
    double rms_err, rms_ref, worst_ratio; /* worst |err| / bound */
} stats;

static void add_err(stats *st, double got, double ref, double bound, double mag)
{
    double e = fabs(got - ref);
    st->rms_err += e * e;
    st->rms_ref += ref * ref;
    double b = bound * (1.0 + 1e-6) + K_FLOAT_SLACK * mag;
    if (e / b > st->worst_ratio)
        st->worst_ratio = e / b;
}

static void check_shape(int T, int N, int K)
{
    float *X = malloc(sizeof(float) * T * K), *Wf = malloc(sizeof(float) * N * K);
    float *Wd = malloc(sizeof(float) * N * K), *Y = malloc(sizeof(float) * T * N);
    float *Y8 = malloc(sizeof(float) * T * N), *dY = malloc(sizeof(float) * T * N);
    float *dX = calloc((size_t)T * K, sizeof(float)), *dX8 = calloc((size_t)T * K, sizeof(float));
    size_t rb = lpl_dtype_row_bytes(LPL_Q8_0, K);
    void *w = malloc(rb * N);
    int nbn = (N + 31) / 32;
    float *sw = malloc(sizeof(float) * K * nbn);
    CHECK(X && Wf && Wd && Y && Y8 && dY && dX && dX8 && w && sw, "out of memory");
    if (!(X && Wf && Wd && Y && Y8 && dY && dX && dX8 && w && sw))
        goto done;
    fill(X, (int64_t)T * K, 1.0f);
    fill(Wf, (int64_t)N * K, 0.02f);
    fill(dY, (int64_t)T * N, 1e-3f);
    lpl_quantize_q8_0(Wf, w, (int64_t)N * K);
    lpl_dequantize_row(LPL_Q8_0, w, Wd, (int64_t)N * K);
    lpl_matrix W = {LPL_Q8_0, N, K, w};

    lpl_linear_forward(Y, X, &W, NULL, T, 0);
    lpl_linear_forward_q8(Y8, X, &W, NULL, T, 0);
    stats fs = {0, 0, 0};
    int8_t q[32];
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double bound = 0, mag = 0;
            for (int b = 0; b < K / 32; b++) {
                float dx = lpl_quantize_block_q8_ref(X + (size_t)t * K + b * 32, 32, q);
                double sw_abs = 0;
                for (int k = b * 32; k < b * 32 + 32; k++) {
                    sw_abs += fabs(Wd[(size_t)n * K + k]);
                    mag += fabs(X[(size_t)t * K + k] * Wd[(size_t)n * K + k]);
                }
                bound += 0.5 * dx * sw_abs;
            }
            add_err(&fs, Y8[(size_t)t * N + n], Y[(size_t)t * N + n], bound, mag);
        }

    /* scales of W's requantized column pieces, as the kernel makes them */
    for (int k = 0; k < K; k++)
        for (int b = 0; b < nbn; b++) {
            float v[32];
            int n = 0;
            for (int r = b * 32; r < N && n < 32; r++, n++)
                v[n] = Wd[(size_t)r * K + k];
            sw[(size_t)k * nbn + b] = lpl_quantize_block_q8_ref(v, n, q);
        }
    lpl_linear_backward_input(dX, dY, &W, T);
    lpl_linear_backward_input_q8(dX8, dY, &W, T);
    stats bs = {0, 0, 0};
    for (int t = 0; t < T; t++) {
        float dyb[(3072 + 31) / 32 + 1]; /* blocks of the widest shape below */
        for (int b = 0; b < nbn; b++) {
            int n = N - b * 32 < 32 ? N - b * 32 : 32;
            dyb[b] = lpl_quantize_block_q8_ref(dY + (size_t)t * N + b * 32, n, q);
        }
        for (int k = 0; k < K; k++) {
            double bound = 0, mag = 0;
            for (int n = 0; n < N; n++) {
                int b = n / 32;
                double s = sw[(size_t)k * nbn + b], wv = fabs(Wd[(size_t)n * K + k]);
                double dy = fabs(dY[(size_t)t * N + n]);
                bound += dy * s / 2 + dyb[b] / 2 * (wv + s / 2);
                mag += dy * wv;
            }
            add_err(&bs, dX8[(size_t)t * K + k], dX[(size_t)t * K + k], bound, mag);
        }
    }
    double frms = sqrt(fs.rms_err / fs.rms_ref), brms = sqrt(bs.rms_err / bs.rms_ref);
    printf("T=%-4d N=%-5d K=%-5d forward: rel RMS err %.2e, worst err/bound %.3f | input grad: rel RMS err "
           "%.2e, worst err/bound %.3f\n", T, N, K, frms, fs.worst_ratio, brms, bs.worst_ratio);
    CHECK(fs.worst_ratio <= 1.0, "forward T=%d N=%d K=%d exceeds the quantization bound (x%.3f)", T, N, K,
          fs.worst_ratio);
    CHECK(bs.worst_ratio <= 1.0, "input grad T=%d N=%d K=%d exceeds the quantization bound (x%.3f)", T, N, K,
          bs.worst_ratio);
    CHECK(frms < K_RMS_BOUND, "forward T=%d N=%d K=%d: relative RMS error %.3g", T, N, K, frms);
    CHECK(brms < K_RMS_BOUND, "input grad T=%d N=%d K=%d: relative RMS error %.3g", T, N, K, brms);
done:
    free(X), free(Wf), free(Wd), free(Y), free(Y8), free(dY), free(dX), free(dX8), free(w), free(sw);
}

/* The bound must be able to fail: X moved by 1.5 quantization steps towards sign(w)
 * of output 0 changes y[0] by three times its bound, so the int8 product of the
 * moved X against the fp32 product of X must fall outside it. */
static void check_bound_can_fail(void)
{
    enum { T = 3, N = 40, K = 64 };
    float X[T * K], Xs[T * K], Wf[N * K], Wd[N * K], Y[T * N], Ys[T * N];
    fill(X, T * K, 1.0f);
    fill(Wf, N * K, 0.02f);
    lpl_block_q8_0 w[N * K / 32];
    lpl_quantize_q8_0(Wf, w, N * K);
    lpl_dequantize_row(LPL_Q8_0, w, Wd, N * K);
    lpl_matrix W = {LPL_Q8_0, N, K, w};
    int8_t q[32];
    double bound[T] = {0};
    for (int t = 0; t < T; t++)
        for (int b = 0; b < K / 32; b++) {
            float d = lpl_quantize_block_q8_ref(X + t * K + b * 32, 32, q);
            for (int j = 0; j < 32; j++) {
                float wv = Wd[b * 32 + j];
                Xs[t * K + b * 32 + j] = X[t * K + b * 32 + j] + 1.5f * d * (wv > 0 ? 1.0f : wv < 0 ? -1.0f : 0.0f);
                bound[t] += 0.5 * d * fabs(wv);
            }
        }
    lpl_linear_forward(Y, X, &W, NULL, T, 0);
    lpl_linear_forward_q8(Ys, Xs, &W, NULL, T, 0);
    for (int t = 0; t < T; t++)
        CHECK(fabs(Ys[t * N] - Y[t * N]) > bound[t], "row %d: a moved input stayed inside the bound (%g <= %g)", t,
              fabs(Ys[t * N] - Y[t * N]), bound[t]);
}

int main(void)
{
    lpl_threads_init(2, NULL);
    static const int shapes[][3] = {
        {1, 1, 32}, {7, 5, 32}, {33, 45, 96}, {130, 70, 160}, {5, 301, 64}, {17, 768, 768}, {9, 3072, 768},
        {9, 768, 3072}, {3, 2305, 768},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(shapes[i][0], shapes[i][1], shapes[i][2]);
    check_bound_can_fail();
    lpl_threads_shutdown();
    return check_report("test_kernels_q8");
}
