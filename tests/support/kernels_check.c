/* Kernel self-check and fingerprint: every kernel against a plain reference loop
 * (double accumulation) on awkward shapes, and a record of kernel outputs on a fixed
 * input. They are a small library of their own (lplcheck), linked by the native tests
 * (tests/test_kernels.c) and by a test-only wasm module (kernel_exports.c), so the
 * very same checks run natively and on the wasm build of the library. */
#include "kernels_check.h"

#include "lpl/core/kernels.h"

#include "lpl/core/simd.h"
#include "lpl/core/threads.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic input: the same numbers on every platform ---- */

static uint32_t rng_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

/* Uniform in [-1, 1) with 24 significant bits, exactly representable. */
static void fill(float *x, int64_t n, uint32_t seed)
{
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(rng_next(&s) >> 8) * 0x1p-23f - 1.0f;
}

/* ---- report ---- */

typedef struct {
    int checks, failures;
    char first[256];
} tally;

static void check(tally *t, int ok, const char *fmt, ...)
{
    t->checks++;
    if (ok)
        return;
    if (t->failures++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->first, sizeof t->first, fmt, ap);
        va_end(ap);
    }
}

/* got vs reference: the error allowed grows with the magnitude of the summed terms. */
static int close_to(float got, double ref, double mag)
{
    return fabs((double)got - ref) <= 1e-5 * mag + 1e-30 && got == got;
}

/* ---- reference products (double accumulation) ---- */

/* C[i][j] = (acc ? C : 0) + sum_k a(i,k) b(k,j), addresses given by strides. */
typedef struct {
    const float *A, *B;
    int64_t a_si, a_sk, b_sk, b_sj;
} ref_operands;

static void ref_check(tally *t, const char *what, const float *got, const float *C0,
                      const ref_operands *o, const float *bias, int M, int N, int K, int acc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = acc ? C0[(size_t)i * N + j] : 0.0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = (double)o->A[i * o->a_si + k * o->a_sk] * o->B[k * o->b_sk + j * o->b_sj];
                s += p;
                mag += fabs(p);
            }
            if (bias) {
                s += bias[j];
                mag += fabs(bias[j]);
            }
            float g = got[(size_t)i * N + j];
            if (!close_to(g, s, mag)) {
                check(t, 0, "%s M=%d N=%d K=%d acc=%d: C[%d][%d] = %.9g, reference %.9g", what, M,
                      N, K, acc, i, j, g, s);
                return;
            }
        }
    check(t, 1, "");
}

typedef struct { int M, N, K; } shape;

static const shape k_shapes[] = {
    {1, 1, 1},   {1, 7, 3},    {5, 1, 9},    {3, 17, 33},  {13, 19, 64},  {1, 300, 5},
    {37, 41, 129}, {64, 70, 96}, {2, 3, 1000}, {100, 1, 17}, {9, 130, 257}, {130, 9, 31}, {150, 5, 7}, {300, 33, 20},
};
#define N_SHAPES ((int)(sizeof k_shapes / sizeof k_shapes[0]))

static void check_plain_products(tally *t)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int M = k_shapes[s].M, N = k_shapes[s].N, K = k_shapes[s].K;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C0 = malloc(sizeof(float) * M * N), *C = malloc(sizeof(float) * M * N);
        if (!A || !B || !C0 || !C) {
            check(t, 0, "out of memory");
            goto next;
        }
        fill(A, (int64_t)M * K, 1 + s);
        fill(B, (int64_t)K * N, 100 + s);
        fill(C0, (int64_t)M * N, 200 + s);
        for (int acc = 0; acc <= 1; acc++) {
            /* nt: A[M][K], B[N][K] */
            ref_operands nt = {A, B, K, 1, 1, K};
            memcpy(C, C0, sizeof(float) * M * N);
            lpl_matmul_nt(C, A, B, M, N, K, acc);
            ref_check(t, "matmul_nt", C, C0, &nt, NULL, M, N, K, acc);
            /* nn: A[M][K], B[K][N] */
            ref_operands nn = {A, B, K, 1, N, 1};
            memcpy(C, C0, sizeof(float) * M * N);
            lpl_matmul_nn(C, A, B, M, N, K, acc);
            ref_check(t, "matmul_nn", C, C0, &nn, NULL, M, N, K, acc);
            /* tn: A[K][M], B[K][N] */
            ref_operands tn = {A, B, 1, M, N, 1};
            memcpy(C, C0, sizeof(float) * M * N);
            lpl_matmul_tn(C, A, B, M, N, K, acc);
            ref_check(t, "matmul_tn", C, C0, &tn, NULL, M, N, K, acc);
        }
        /* the weight gradient is tn with T = K, accumulating */
        {
            ref_operands tn = {A, B, 1, M, N, 1};
            memcpy(C, C0, sizeof(float) * M * N);
            lpl_linear_backward_weight(C, A, B, K, M, N);
            ref_check(t, "linear_backward_weight", C, C0, &tn, NULL, M, N, K, 1);
        }
    next:
        free(A), free(B), free(C0), free(C);
    }
}

/* Weight of type ty holding the quantized/converted version of src[rows][cols]; its
 * fp32 value (what the kernels must compute with) goes to deq. */
static void *make_weight(lpl_dtype ty, const float *src, float *deq, int rows, int cols)
{
    size_t rb = lpl_dtype_row_bytes(ty, cols);
    uint8_t *w = malloc(rb * rows + 1);
    if (!w)
        return NULL;
    for (int r = 0; r < rows; r++) {
        const float *x = src + (size_t)r * cols;
        if (ty == LPL_BF16) { /* no converter to bf16 in the library: truncate */
            uint16_t *h = (uint16_t *)(w + rb * r);
            for (int c = 0; c < cols; c++) {
                uint32_t u;
                memcpy(&u, &x[c], 4);
                h[c] = (uint16_t)(u >> 16);
            }
        } else {
            lpl_convert_row(ty, x, w + rb * r, cols, NULL);
        }
        lpl_dequantize_row(ty, w + rb * r, deq + (size_t)r * cols, cols);
    }
    return w;
}

static const lpl_dtype k_types[] = {LPL_F32, LPL_F16, LPL_BF16, LPL_Q8_0, LPL_Q4_0};
static const shape k_linear_shapes[] = { /* M = T, N = out, K = in (multiple of 32) */
    {1, 1, 32}, {3, 5, 32}, {5, 17, 64}, {33, 45, 96}, {2, 70, 160}, {1, 130, 32}, {67, 3, 288}, {160, 9, 64},
};
#define N_LINEAR ((int)(sizeof k_linear_shapes / sizeof k_linear_shapes[0]))

static void check_linear_one(tally *t, lpl_dtype ty, const shape *sh, int seed)
{
    int T = sh->M, N = sh->N, K = sh->K;
    float *X = malloc(sizeof(float) * T * K), *Wf = malloc(sizeof(float) * N * K);
    float *Wd = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
    float *Y0 = malloc(sizeof(float) * T * N), *Y = malloc(sizeof(float) * T * N);
    float *dY = malloc(sizeof(float) * T * N), *dX0 = malloc(sizeof(float) * T * K);
    float *dX = malloc(sizeof(float) * T * K);
    void *w = NULL;
    if (!X || !Wf || !Wd || !bias || !Y0 || !Y || !dY || !dX0 || !dX)
        goto oom;
    fill(X, (int64_t)T * K, seed);
    fill(Wf, (int64_t)N * K, seed + 1);
    fill(bias, N, seed + 2);
    fill(Y0, (int64_t)T * N, seed + 3);
    fill(dY, (int64_t)T * N, seed + 4);
    fill(dX0, (int64_t)T * K, seed + 5);
    if (!(w = make_weight(ty, Wf, Wd, N, K)))
        goto oom;
    lpl_matrix W = {ty, N, K, w};
    char what[64];
    ref_operands fwd = {X, Wd, K, 1, 1, K}; /* Y = X . Wd^T */
    for (int acc = 0; acc <= 1; acc++)
        for (int b = 0; b <= 1; b++) {
            memcpy(Y, Y0, sizeof(float) * T * N);
            lpl_linear_forward(Y, X, &W, b ? bias : NULL, T, acc);
            snprintf(what, sizeof what, "linear_forward %s bias=%d", lpl_dtype_name(ty), b);
            ref_check(t, what, Y, Y0, &fwd, b ? bias : NULL, T, N, K, acc);
        }
    ref_operands bwd = {dY, Wd, N, 1, K, 1}; /* dX += dY . Wd */
    memcpy(dX, dX0, sizeof(float) * T * K);
    lpl_linear_backward_input(dX, dY, &W, T);
    snprintf(what, sizeof what, "linear_backward_input %s", lpl_dtype_name(ty));
    ref_check(t, what, dX, dX0, &bwd, NULL, T, K, N, 1);
    goto done;
oom:
    check(t, 0, "out of memory");
done:
    free(X), free(Wf), free(Wd), free(bias), free(Y0), free(Y), free(dY), free(dX0), free(dX);
    free(w);
}

static void check_linear(tally *t)
{
    for (int ti = 0; ti < (int)(sizeof k_types / sizeof k_types[0]); ti++)
        for (int s = 0; s < N_LINEAR; s++)
            check_linear_one(t, k_types[ti], &k_linear_shapes[s], 1000 + 10 * s + 100 * ti);
    /* a layer without inputs still adds its bias */
    float bias[3] = {1, 2, 3}, Y[6] = {9, 9, 9, 9, 9, 9};
    lpl_matrix W = {LPL_F32, 3, 0, bias};
    lpl_linear_forward(Y, NULL, &W, bias, 2, 0);
    check(t, Y[0] == 1 && Y[4] == 2 && Y[5] == 3, "linear_forward K=0: %g %g", Y[0], Y[5]);
}

/* The int8 products against their scalar references (kernels_q8_ref.c) on the
 * awkward linear shapes; for the input gradient the summed dimension is the output
 * width, so N = 1, 5, 17, 45, 70, 130, 3, 9 also exercises the zero-padded last block.
 * Allowed error: 1e-5 of the summed magnitude, as for the fp32 products (the codes
 * are the same on every target; only the order of the float block sums differs). */
static void check_linear_q8_one(tally *t, const shape *sh, int seed)
{
    int T = sh->M, N = sh->N, K = sh->K;
    float *X = malloc(sizeof(float) * T * K), *Wf = malloc(sizeof(float) * N * K);
    float *Wd = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
    float *Y0 = malloc(sizeof(float) * T * N), *Y = malloc(sizeof(float) * T * N);
    float *Yr = malloc(sizeof(float) * T * N), *dY = malloc(sizeof(float) * T * N);
    float *dX0 = malloc(sizeof(float) * T * K), *dX = malloc(sizeof(float) * T * K);
    float *dXr = malloc(sizeof(float) * T * K);
    void *w = NULL;
    if (!X || !Wf || !Wd || !bias || !Y0 || !Y || !Yr || !dY || !dX0 || !dX || !dXr)
        goto oom;
    fill(X, (int64_t)T * K, seed);
    fill(Wf, (int64_t)N * K, seed + 1);
    fill(bias, N, seed + 2);
    fill(Y0, (int64_t)T * N, seed + 3);
    fill(dY, (int64_t)T * N, seed + 4);
    fill(dX0, (int64_t)T * K, seed + 5);
    for (int64_t i = 0; i < (int64_t)T * K; i += 7) /* rows with very different scales */
        X[i] *= 40.0f;
    if (!(w = make_weight(LPL_Q8_0, Wf, Wd, N, K)))
        goto oom;
    lpl_matrix W = {LPL_Q8_0, N, K, w};
    for (int acc = 0; acc <= 1; acc++)
        for (int b = 0; b <= 1; b++) {
            memcpy(Y, Y0, sizeof(float) * T * N);
            memcpy(Yr, Y0, sizeof(float) * T * N);
            lpl_linear_forward_q8(Y, X, &W, b ? bias : NULL, T, acc);
            lpl_linear_forward_q8_ref(Yr, X, &W, b ? bias : NULL, T, acc);
            for (int i = 0; i < T * N; i++) {
                int r = i / N, c = i % N;
                double mag = (acc ? fabs(Y0[i]) : 0) + (b ? fabs(bias[c]) : 0);
                for (int k = 0; k < K; k++)
                    mag += fabs(X[(size_t)r * K + k] * Wd[(size_t)c * K + k]);
                if (!close_to(Y[i], Yr[i], mag)) {
                    check(t, 0, "linear_forward_q8 M=%d N=%d K=%d acc=%d bias=%d: Y[%d][%d] = %.9g, reference %.9g",
                          T, N, K, acc, b, r, c, Y[i], Yr[i]);
                    goto done;
                }
            }
            check(t, 1, "");
        }
    memcpy(dX, dX0, sizeof(float) * T * K);
    memcpy(dXr, dX0, sizeof(float) * T * K);
    lpl_linear_backward_input_q8(dX, dY, &W, T);
    lpl_linear_backward_input_q8_ref(dXr, dY, &W, T);
    for (int i = 0; i < T * K; i++) {
        int r = i / K, c = i % K;
        double mag = fabs(dX0[i]);
        for (int n = 0; n < N; n++)
            mag += fabs(dY[(size_t)r * N + n] * Wd[(size_t)n * K + c]);
        if (!close_to(dX[i], dXr[i], mag)) {
            check(t, 0, "linear_backward_input_q8 M=%d N=%d K=%d: dX[%d][%d] = %.9g, reference %.9g", T, N, K,
                  r, c, dX[i], dXr[i]);
            goto done;
        }
    }
    check(t, 1, "");
    goto done;
oom:
    check(t, 0, "out of memory");
done:
    free(X), free(Wf), free(Wd), free(bias), free(Y0), free(Y), free(Yr), free(dY), free(dX0), free(dX);
    free(dXr), free(w);
}

static void check_linear_q8(tally *t)
{
    static const shape extra[] = {{7, 50, 320}, {145, 33, 544}, {4, 290, 64}};
    for (int s = 0; s < N_LINEAR; s++)
        check_linear_q8_one(t, &k_linear_shapes[s], 3000 + 10 * s);
    for (int s = 0; s < 3; s++)
        check_linear_q8_one(t, &extra[s], 3500 + 10 * s);
}

static void check_level1(tally *t)
{
    static const int lens[] = {0, 1, 3, 7, 8, 9, 17, 31, 33, 100, 1000, 4099};
    float *a = malloc(sizeof(float) * 4099), *b = malloc(sizeof(float) * 4099);
    float *y = malloc(sizeof(float) * 4099);
    if (!a || !b || !y) {
        check(t, 0, "out of memory");
        goto done;
    }
    for (int li = 0; li < (int)(sizeof lens / sizeof lens[0]); li++) {
        int n = lens[li];
        fill(a, n, 7 + li);
        fill(b, n, 70 + li);
        double s = 0, mag = 0;
        for (int i = 0; i < n; i++)
            s += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
        float d = lpl_dot(a, b, n);
        check(t, close_to(d, s, mag), "dot n=%d: %.9g, reference %.9g", n, d, s);
        memcpy(y, b, sizeof(float) * n);
        lpl_axpy(y, 0.75f, a, n);
        int ok = 1;
        for (int i = 0; i < n; i++)
            ok &= close_to(y[i], (double)b[i] + 0.75 * a[i], fabs(b[i]) + fabs(a[i]));
        check(t, ok, "axpy n=%d", n);
        /* bias gradient: db += sum over rows of dY (as n/1 rows of 1 column) */
        float db[2] = {0.5f, -0.25f};
        if (n >= 2) {
            double r0 = 0.5, r1 = -0.25, m0 = 0.5, m1 = 0.25;
            for (int r = 0; r < n / 2; r++)
                r0 += a[2 * r], r1 += a[2 * r + 1], m0 += fabs(a[2 * r]), m1 += fabs(a[2 * r + 1]);
            lpl_bias_backward(db, a, n / 2, 2);
            check(t, close_to(db[0], r0, m0) && close_to(db[1], r1, m1), "bias_backward T=%d", n / 2);
        }
    }
done:
    free(a), free(b), free(y);
}

/* ---- quantization, written independently of src/quant.c ---- */

static void ref_q8_0(const float *x, uint8_t out[34])
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax)
            amax = fabsf(x[j]);
    float d = amax / 127.0f, id = d == 0.0f ? 0.0f : 1.0f / d;
    uint16_t h = lpl_fp32_to_fp16(d);
    memcpy(out, &h, 2);
    for (int j = 0; j < 32; j++) {
        float v = x[j] * id; /* round half away from zero */
        int q = (int)(v < 0 ? -floorf(-v + 0.5f) : floorf(v + 0.5f));
        out[2 + j] = (uint8_t)(int8_t)q;
    }
}

static void ref_q4_0(const float *x, uint8_t out[18])
{
    int imax = 0;
    for (int j = 1; j < 32; j++)
        if (fabsf(x[j]) > fabsf(x[imax]))
            imax = j;
    float d = x[imax] / -8.0f, id = d == 0.0f ? 0.0f : 1.0f / d;
    uint16_t h = lpl_fp32_to_fp16(d);
    memcpy(out, &h, 2);
    for (int j = 0; j < 16; j++) {
        int lo = (int)(int8_t)(x[j] * id + 8.5f), hi = (int)(int8_t)(x[16 + j] * id + 8.5f);
        out[2 + j] = (uint8_t)((lo > 15 ? 15 : lo) | ((hi > 15 ? 15 : hi) << 4));
    }
}

static void check_quant(tally *t)
{
    enum { NB = 9 };
    float x[NB * 32], y[NB * 32];
    fill(x, NB * 32, 4242);
    for (int j = 0; j < 32; j++) { /* special blocks: zeros, a negative peak, one value */
        x[32 + j] = 0.0f;
        x[64 + j] = (float)(j - 20) / 3.0f;
        x[96 + j] = j == 5 ? 2.5f : 0.0f;
        x[128 + j] = 1e-3f * (float)(j % 7 - 3);
    }
    lpl_block_q8_0 q8[NB];
    lpl_block_q4_0 q4[NB];
    lpl_quantize_q8_0(x, q8, NB * 32);
    lpl_quantize_q4_0(x, q4, NB * 32);
    for (int b = 0; b < NB; b++) {
        uint8_t r8[34], r4[18];
        ref_q8_0(x + 32 * b, r8);
        ref_q4_0(x + 32 * b, r4);
        check(t, memcmp(r8, &q8[b], 34) == 0, "quantize_q8_0 block %d differs from reference", b);
        check(t, memcmp(r4, &q4[b], 18) == 0, "quantize_q4_0 block %d differs from reference", b);
    }
    /* dequantize: scale times value; for Q4_0 low nibble j, high nibble j + 16 */
    lpl_dequantize_row(LPL_Q8_0, q8, y, NB * 32);
    int ok = 1;
    for (int i = 0; i < NB * 32; i++)
        ok &= y[i] == lpl_fp16_to_fp32(q8[i / 32].d) * (float)q8[i / 32].qs[i % 32];
    check(t, ok, "dequantize q8_0");
    lpl_dequantize_row(LPL_Q4_0, q4, y, NB * 32);
    ok = 1;
    for (int i = 0; i < NB * 32; i++) {
        int b = i / 32, j = i % 32;
        int q = j < 16 ? (q4[b].qs[j] & 15) : (q4[b].qs[j - 16] >> 4);
        ok &= y[i] == lpl_fp16_to_fp32(q4[b].d) * (float)(q - 8);
    }
    check(t, ok, "dequantize q4_0");
    /* worked example: the block (j - 20) / 3 has peak -20/3 at j = 0 */
    check(t, q4[2].qs[0] == (0 | (6 << 4)) && q8[2].qs[0] == -127 && q8[2].qs[20] == 0,
          "q4_0/q8_0 worked example: q4 byte0 %d, q8 %d %d", q4[2].qs[0], q8[2].qs[0], q8[2].qs[20]);
}

static void check_fp16(tally *t)
{
    int bad = -1;
    for (uint32_t h = 0; h < 65536 && bad < 0; h++) {
        float f = lpl_fp16_to_fp32((uint16_t)h);
        uint16_t back = lpl_fp32_to_fp16(f);
        int is_nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (is_nan ? !(f != f) || (back & 0x7c00) != 0x7c00 || !(back & 0x3ff) : back != h)
            bad = (int)h;
    }
    check(t, bad < 0, "fp16 round trip fails at 0x%04x", bad);
    static const struct { float f; uint16_t h; } cases[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff},
        {65520.0f, 0x7c00}, {1e10f, 0x7c00}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000},
        {0x1.8p-25f, 0x0001}, {0x1.8p-24f, 0x0002}, {0x1p-14f, 0x0400}, {0x1.ffcp-15f, 0x0400},
        {-0.0f, 0x8000}, {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x1.8p-11f, 0x3c01},
        {0.1f, 0x2e66}, {-1e-9f, 0x8000}, {3.0f * 0x1p-25f, 0x0002},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        uint16_t h = lpl_fp32_to_fp16(cases[i].f);
        check(t, h == cases[i].h, "fp32_to_fp16(%a) = 0x%04x, want 0x%04x", cases[i].f, h,
              cases[i].h);
    }
    check(t, lpl_fp32_to_fp16(INFINITY) == 0x7c00 && lpl_fp32_to_fp16(-INFINITY) == 0xfc00,
          "fp16 of infinities");
    float nan = lpl_fp16_to_fp32(lpl_fp32_to_fp16(NAN));
    check(t, nan != nan, "fp16 of nan is not nan");
    check(t, lpl_fp16_to_fp32(0x0001) == 0x1p-24f && lpl_fp16_to_fp32(0x83ff) == -0x1.ff8p-15f,
          "fp16 subnormals to fp32");
    check(t, lpl_bf16_to_fp32(0x3f80) == 1.0f && lpl_bf16_to_fp32(0xc0a0) == -5.0f, "bf16");
}

/* The SIMD row conversion against the scalar one on all 65,536 halves, bit for bit
 * (NaN payloads too), from odd byte offsets and in lengths that leave every tail size. */
static void check_fp16_row(tally *t)
{
    uint8_t *src = malloc(2 * 65536 + 1);
    float *dst = malloc(sizeof(float) * 65536);
    if (!src || !dst) {
        check(t, 0, "fp16 row check: out of memory");
        free(src), free(dst);
        return;
    }
    int bad = -1;
    for (int off = 0; off < 2 && bad < 0; off++) {
        for (uint32_t h = 0; h < 65536; h++)
            memcpy(src + off + 2 * h, &(uint16_t){(uint16_t)h}, 2);
        for (int64_t done = 0, len = 1; done < 65536; done += len, len = len * 3 % 97 + 1) {
            int64_t n = done + len > 65536 ? 65536 - done : len;
            lpl_fp16_to_fp32_row(src + off + 2 * done, dst + done, n);
        }
        for (uint32_t h = 0; h < 65536 && bad < 0; h++) {
            float want = lpl_fp16_to_fp32((uint16_t)h);
            if (memcmp(&want, dst + h, 4))
                bad = (int)h;
        }
    }
    check(t, bad < 0, "fp16 row conversion (%s) differs from the scalar one at 0x%04x", LPL_SIMD_NAME, bad);
    free(src), free(dst);
}

int lpl_kernels_selfcheck(char *report, size_t cap) { return lpl_kernels_selfcheck_ex(report, cap, 0); }

int lpl_kernels_selfcheck_ex(char *report, size_t cap, int skip_q8)
{
    tally t = {0, 0, ""};
    check_level1(&t);
    check_fp16(&t);
    check_fp16_row(&t);
    check_quant(&t);
    check_plain_products(&t);
    check_linear(&t);
    if (!skip_q8)
        check_linear_q8(&t);
    if (report && cap)
        snprintf(report, cap,
                 "{\"simd\":\"%s\",\"threads\":%d,\"checks\":%d,\"failures\":%d,\"q8\":%s,\"first_failure\":\"%s\"}",
                 LPL_SIMD_NAME, lpl_threads_count(), t.checks, t.failures, skip_q8 ? "false" : "true", t.first);
    return t.failures;
}

/* ---- fingerprint: outputs on a fixed input, for native-vs-wasm and thread checks ---- */

typedef struct {
    char *buf;
    size_t cap, len;
} sbuf;

static void put(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    int n = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
}

/* One entry: count, sum, sum of |x|, an FNV-1a hash of the bits, a strided sample. */
static void put_entry(sbuf *s, const char *name, const float *x, int64_t n)
{
    double sum = 0, abssum = 0;
    uint32_t h = 2166136261u;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++)
            h = (h ^ ((u >> (8 * b)) & 255u)) * 16777619u;
        sum += x[i];
        abssum += fabs(x[i]);
    }
    if (!isfinite(sum) || !isfinite(abssum))
        sum = abssum = 0; /* keep the JSON valid; exact_* entries compare hashes */
    put(s, "%s\"%s\":{\"n\":%lld,\"sum\":%.17g,\"abssum\":%.17g,\"hash\":\"%08x\",\"sample\":[",
        s->len > 1 ? "," : "", name, (long long)n, sum, abssum, h);
    int64_t step = n > 48 ? n / 48 : 1;
    for (int64_t i = 0, k = 0; i < n && k < 48; i += step, k++)
        if (isfinite(x[i]))
            put(s, "%s%.9g", k ? "," : "", x[i]);
        else /* JSON has no inf or nan; the hash still covers the bits */
            put(s, "%snull", k ? "," : "");
    put(s, "]}");
}

static void fingerprint_linear(sbuf *s, lpl_dtype ty, int T, int N, int K, uint32_t seed)
{
    float *X = malloc(sizeof(float) * T * K), *Wf = malloc(sizeof(float) * N * K);
    float *Wd = malloc(sizeof(float) * N * K), *Y = malloc(sizeof(float) * T * N);
    float *dX = calloc((size_t)T * K, sizeof(float)), *bias = malloc(sizeof(float) * N);
    void *w = NULL;
    char name[64];
    if (X && Wf && Wd && Y && dX && bias) {
        fill(X, (int64_t)T * K, seed);
        fill(Wf, (int64_t)N * K, seed + 1);
        fill(bias, N, seed + 2);
        w = make_weight(ty, Wf, Wd, N, K);
    }
    if (!w) {
        put(s, "%s\"error\":\"out of memory\"", s->len > 1 ? "," : "");
        goto done;
    }
    lpl_matrix W = {ty, N, K, w};
    lpl_linear_forward(Y, X, &W, bias, T, 0);
    snprintf(name, sizeof name, "forward_%s_%dx%dx%d", lpl_dtype_name(ty), T, N, K);
    put_entry(s, name, Y, (int64_t)T * N);
    lpl_linear_backward_input(dX, Y, &W, T);
    snprintf(name, sizeof name, "backward_input_%s_%dx%dx%d", lpl_dtype_name(ty), T, N, K);
    put_entry(s, name, dX, (int64_t)T * K);
    if (ty == LPL_Q8_0) { /* the int8 products */
        lpl_linear_forward_q8(Y, X, &W, bias, T, 0);
        snprintf(name, sizeof name, "forward_int8_%dx%dx%d", T, N, K);
        put_entry(s, name, Y, (int64_t)T * N);
        memset(dX, 0, sizeof(float) * T * K);
        lpl_linear_backward_input_q8(dX, Y, &W, T);
        snprintf(name, sizeof name, "backward_input_int8_%dx%dx%d", T, N, K);
        put_entry(s, name, dX, (int64_t)T * K);
    }
done:
    free(X), free(Wf), free(Wd), free(Y), free(dX), free(bias), free(w);
}

static void fingerprint_plain(sbuf *s, int M, int N, int K)
{
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N);
    char name[64];
    if (!A || !B || !C) {
        put(s, "%s\"error\":\"out of memory\"", s->len > 1 ? "," : "");
        goto done;
    }
    fill(A, (int64_t)M * K, 31);
    fill(B, (int64_t)K * N, 32);
    lpl_matmul_nt(C, A, B, M, N, K, 0);
    snprintf(name, sizeof name, "matmul_nt_%dx%dx%d", M, N, K);
    put_entry(s, name, C, (int64_t)M * N);
    lpl_matmul_nn(C, A, B, M, N, K, 0);
    snprintf(name, sizeof name, "matmul_nn_%dx%dx%d", M, N, K);
    put_entry(s, name, C, (int64_t)M * N);
    lpl_matmul_tn(C, A, B, M, N, K, 0);
    snprintf(name, sizeof name, "matmul_tn_%dx%dx%d", M, N, K);
    put_entry(s, name, C, (int64_t)M * N);
done:
    free(A), free(B), free(C);
}

size_t lpl_kernels_fingerprint(char *buf, size_t cap)
{
    sbuf s = {buf, cap, 0};
    put(&s, "{\"simd\":\"%s\"", LPL_SIMD_NAME);
    fingerprint_plain(&s, 7, 33, 45);
    fingerprint_plain(&s, 130, 197, 259);
    fingerprint_plain(&s, 301, 67, 40);
    for (int ti = 0; ti < (int)(sizeof k_types / sizeof k_types[0]); ti++) {
        fingerprint_linear(&s, k_types[ti], 5, 37, 96, 77 + ti);
        fingerprint_linear(&s, k_types[ti], 70, 301, 384, 88 + ti);
    }
    /* conversions must agree bit for bit on every platform */
    float q[256], r[256];
    uint16_t h[256];
    lpl_block_q8_0 b8[8];
    lpl_block_q4_0 b4[8];
    fill(q, 256, 9);
    for (int i = 0; i < 256; i++)
        q[i] *= (float)(1 + i % 5) * 3.0f;
    lpl_quantize_q8_0(q, b8, 256);
    lpl_dequantize_row(LPL_Q8_0, b8, r, 256);
    put_entry(&s, "exact_q8_0_roundtrip", r, 256);
    lpl_quantize_q4_0(q, b4, 256);
    lpl_dequantize_row(LPL_Q4_0, b4, r, 256);
    put_entry(&s, "exact_q4_0_roundtrip", r, 256);
    for (int i = 0; i < 256; i++)
        q[i] = q[i] * (i % 3 ? 1e-5f : 1e4f);
    lpl_fp32_to_fp16_row(q, h, 256);
    lpl_fp16_to_fp32_row(h, r, 256);
    put_entry(&s, "exact_fp16_roundtrip", r, 256);
    float x[1003], y[1003];
    fill(x, 1003, 5);
    fill(y, 1003, 6);
    float d = lpl_dot(x, y, 1003);
    put_entry(&s, "dot_1003", &d, 1);
    put(&s, "}");
    return s.len;
}
