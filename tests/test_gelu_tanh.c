/* The vectorised tanh and gelu_new against double-precision references over a dense
 * sweep, plus the edge values (saturation, inf, NaN) and thread-count independence. */
#include "check.h"

#include "lpl/core/common.h"
#include "lpl/model/gpt2_layers.h"
#include "lpl/core/threads.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define N_SWEEP 2000003 /* odd, so the last vector is a padded tail */

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_ref(double x)
{
    double th = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
    double du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
}

static float xs[N_SWEEP], ys[N_SWEEP], gs[N_SWEEP], ones[N_SWEEP];

/* Relative error of tanh, largest over the sweep: about 2 ulp (1.2e-7) is the bound
 * that the two roundings of 1 - 2/(E+1) and the polynomial's own allow. */
static void test_tanh_sweep(void)
{
    for (int i = 0; i < N_SWEEP; i++)
        xs[i] = -12.0f + 24.0f * (float)i / (float)(N_SWEEP - 1);
    lpl_tanh_row(ys, xs, N_SWEEP);
    double worst = 0.0, worst_x = 0.0;
    for (int i = 0; i < N_SWEEP; i++) {
        double want = tanh((double)xs[i]);
        double e = want == 0.0 ? fabs(ys[i]) : fabs(ys[i] - want) / fabs(want);
        if (e > worst || isnan(ys[i])) {
            worst = isnan(ys[i]) ? INFINITY : e;
            worst_x = xs[i];
        }
    }
    printf("tanh: max relative error %.3g at x = %.9g over %d points in [-12, 12]\n", worst,
           worst_x, N_SWEEP);
    CHECK(worst <= 1.5e-7, "tanh max relative error %.3g at %.9g", worst, worst_x);

    /* tiny inputs: tanh(x) = x to float precision */
    float tiny[4] = {1e-30f, -1e-20f, 1e-8f, -3e-5f}, ty[4];
    lpl_tanh_row(ty, tiny, 4);
    for (int i = 0; i < 4; i++)
        CHECK_CLOSE(ty[i], tanh((double)tiny[i]), 0.0, 1.2e-7, "tanh of a tiny input");
}

static void test_tanh_edges(void)
{
    float x[9] = {9.2f, -9.2f, 20.0f, -87.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN}, y[9];
    lpl_tanh_row(y, x, 9);
    for (int i = 0; i < 8; i++)
        CHECK(y[i] == (x[i] > 0 ? 1.0f : -1.0f), "tanh(%g) = %.9g, want exactly +-1", x[i], y[i]);
    CHECK(isnan(y[8]), "tanh(NaN) = %g", y[8]);
    /* the sweep never leaves [-1, 1] */
    int outside = 0;
    for (int i = 0; i < N_SWEEP; i++)
        outside += ys[i] > 1.0f || ys[i] < -1.0f;
    CHECK(outside == 0, "%d values outside [-1, 1]", outside);
}

static void test_gelu_sweep(void)
{
    lpl_gelu_forward(ys, xs, N_SWEEP);
    for (int i = 0; i < N_SWEEP; i++) {
        ones[i] = 1.0f;
        gs[i] = 0.0f;
    }
    lpl_gelu_backward(gs, xs, ones, N_SWEEP);
    double worst_f = 0.0, worst_g = 0.0;
    for (int i = 0; i < N_SWEEP; i++) {
        /* absolute error scaled by max(1, |x|): gelu_new crosses zero at x = 0 only,
         * but is ~0 (not exactly) for large negative x */
        double scale = fabs(xs[i]) > 1.0 ? fabs(xs[i]) : 1.0;
        double ef = fabs(ys[i] - gelu_ref(xs[i])) / scale;
        double eg = fabs(gs[i] - gelu_grad_ref(xs[i])) / scale;
        worst_f = ef > worst_f || isnan(ef) ? (isnan(ef) ? INFINITY : ef) : worst_f;
        worst_g = eg > worst_g || isnan(eg) ? (isnan(eg) ? INFINITY : eg) : worst_g;
    }
    printf("gelu_new: max error / max(1,|x|) %.3g forward, %.3g derivative\n", worst_f, worst_g);
    CHECK(worst_f <= 3e-7, "gelu forward error %.3g", worst_f);
    CHECK(worst_g <= 6e-7, "gelu derivative error %.3g", worst_g);
    /* backward adds into its output */
    float x1 = 0.37f, d1 = 2.0f, acc = 5.0f;
    lpl_gelu_backward(&acc, &x1, &d1, 1);
    CHECK_CLOSE(acc, 5.0 + 2.0 * gelu_grad_ref(0.37f), 0.0, 3e-7, "gelu backward accumulates");
}

/* Same bits with 1 and 2 threads. */
static void test_thread_independence(void)
{
    static float a[N_SWEEP], b[N_SWEEP];
    lpl_error err;
    CHECK(lpl_threads_init(1, &err) == LPL_OK, "threads 1");
    lpl_gelu_forward(a, xs, N_SWEEP);
    CHECK(lpl_threads_init(2, &err) == LPL_OK, "threads 2");
    lpl_gelu_forward(b, xs, N_SWEEP);
    CHECK(memcmp(a, b, sizeof a) == 0, "gelu forward differs between 1 and 2 threads");
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    lpl_gelu_backward(b, xs, ones, N_SWEEP);
    CHECK(lpl_threads_init(1, &err) == LPL_OK, "threads 1");
    lpl_gelu_backward(a, xs, ones, N_SWEEP);
    CHECK(memcmp(a, b, sizeof a) == 0, "gelu backward differs between 1 and 2 threads");
}

int main(void)
{
    lpl_error err;
    CHECK(lpl_threads_init(2, &err) == LPL_OK, "threads");
    test_tanh_sweep();
    test_tanh_edges();
    test_gelu_sweep();
    test_thread_independence();
    return check_report("test_gelu_tanh");
}
