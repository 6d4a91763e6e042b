/* Matrix products of linear layers, written once against the SIMD layer.
 * First, simple version: dot products and axpys, threaded over output blocks.
 * Every output element is summed by one thread in an order fixed by the shapes. */
#include "lpl/kernels.h"

#include "lpl/simd.h"
#include "lpl/threads.h"

#include <string.h>

float lpl_dot(const float *a, const float *b, int64_t n)
{
    lpl_vf s0 = lpl_vf_zero(), s1 = lpl_vf_zero(), s2 = lpl_vf_zero(), s3 = lpl_vf_zero();
    int64_t i = 0;
    for (; i + 4 * LPL_VW <= n; i += 4 * LPL_VW) {
        s0 = lpl_vf_madd(lpl_vf_load(a + i), lpl_vf_load(b + i), s0);
        s1 = lpl_vf_madd(lpl_vf_load(a + i + LPL_VW), lpl_vf_load(b + i + LPL_VW), s1);
        s2 = lpl_vf_madd(lpl_vf_load(a + i + 2 * LPL_VW), lpl_vf_load(b + i + 2 * LPL_VW), s2);
        s3 = lpl_vf_madd(lpl_vf_load(a + i + 3 * LPL_VW), lpl_vf_load(b + i + 3 * LPL_VW), s3);
    }
    for (; i + LPL_VW <= n; i += LPL_VW)
        s0 = lpl_vf_madd(lpl_vf_load(a + i), lpl_vf_load(b + i), s0);
    float s = lpl_vf_hsum(lpl_vf_add(lpl_vf_add(s0, s1), lpl_vf_add(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void lpl_axpy(float *y, float a, const float *x, int64_t n)
{
    lpl_vf va = lpl_vf_set1(a);
    int64_t i = 0;
    for (; i + 2 * LPL_VW <= n; i += 2 * LPL_VW) {
        lpl_vf_store(y + i, lpl_vf_madd(va, lpl_vf_load(x + i), lpl_vf_load(y + i)));
        lpl_vf_store(y + i + LPL_VW,
                     lpl_vf_madd(va, lpl_vf_load(x + i + LPL_VW), lpl_vf_load(y + i + LPL_VW)));
    }
    for (; i + LPL_VW <= n; i += LPL_VW)
        lpl_vf_store(y + i, lpl_vf_madd(va, lpl_vf_load(x + i), lpl_vf_load(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* ---- weight rows of any type ---- */

/* Pointer to row r of W, then dequantised columns [k0, k0 + n) into dst
 * (k0 and n multiples of 32 for quantized types, except a final short piece). */
static void weight_piece(const lpl_matrix *W, int r, int k0, int n, float *dst)
{
    size_t row_bytes = lpl_dtype_row_bytes(W->type, W->cols);
    const uint8_t *row = (const uint8_t *)W->data + (size_t)r * row_bytes;
    switch (W->type) {
    case LPL_F32:
        memcpy(dst, (const float *)row + k0, (size_t)n * sizeof(float));
        return;
    case LPL_F16:
    case LPL_BF16:
        lpl_dequantize_row(W->type, (const uint16_t *)row + k0, dst, n);
        return;
    case LPL_Q8_0:
        lpl_dequantize_row(W->type, (const lpl_block_q8_0 *)row + k0 / LPL_QK, dst, n);
        return;
    case LPL_Q4_0:
        lpl_dequantize_row(W->type, (const lpl_block_q4_0 *)row + k0 / LPL_QK, dst, n);
        return;
    }
    memset(dst, 0, (size_t)n * sizeof(float));
}

#define KPIECE 512 /* columns of a weight row dequantised at a time (multiple of 32) */

/* ---- Y = X . W^T (+ bias) ---- */

typedef struct {
    float *Y;
    const float *X;
    const lpl_matrix *W;
    const float *bias;
    int T, accumulate;
} fwd_ctx;

static void forward_range(void *arg, int j0, int j1)
{
    const fwd_ctx *c = arg;
    int N = c->W->rows, K = c->W->cols;
    float buf[KPIECE];
    for (int j = j0; j < j1; j++) {
        for (int k0 = 0; k0 < K; k0 += KPIECE) {
            int kn = K - k0 < KPIECE ? K - k0 : KPIECE;
            weight_piece(c->W, j, k0, kn, buf);
            for (int t = 0; t < c->T; t++) {
                float s = lpl_dot(c->X + (size_t)t * K + k0, buf, kn);
                float *y = c->Y + (size_t)t * N + j;
                *y = (k0 == 0 && !c->accumulate) ? s : *y + s;
            }
        }
        if (c->bias)
            for (int t = 0; t < c->T; t++)
                c->Y[(size_t)t * N + j] += c->bias[j];
    }
}

void lpl_linear_forward(float *Y, const float *X, const lpl_matrix *W, const float *bias,
                        int T, int accumulate)
{
    fwd_ctx c = {Y, X, W, bias, T, accumulate};
    if (W->cols == 0 && !accumulate) /* an empty sum is zero */
        for (int64_t i = 0; i < (int64_t)T * W->rows; i++)
            Y[i] = 0.0f;
    if (W->cols == 0) {
        if (bias)
            for (int t = 0; t < T; t++)
                lpl_axpy(Y + (size_t)t * W->rows, 1.0f, bias, W->rows);
        return;
    }
    lpl_parallel_for(W->rows, 4, forward_range, &c);
}

/* ---- dX += dY . W ---- */

typedef struct {
    float *dX;
    const float *dY;
    const lpl_matrix *W;
    int T;
} bwd_in_ctx;

/* Handles column pieces [p0, p1) of 32 columns each. */
static void backward_input_range(void *arg, int p0, int p1)
{
    const bwd_in_ctx *c = arg;
    int N = c->W->rows, K = c->W->cols;
    float buf[LPL_QK];
    for (int p = p0; p < p1; p++) {
        int k0 = p * LPL_QK;
        int kn = K - k0 < LPL_QK ? K - k0 : LPL_QK;
        for (int n = 0; n < N; n++) {
            weight_piece(c->W, n, k0, kn, buf);
            for (int t = 0; t < c->T; t++)
                lpl_axpy(c->dX + (size_t)t * K + k0, c->dY[(size_t)t * N + n], buf, kn);
        }
    }
}

void lpl_linear_backward_input(float *dX, const float *dY, const lpl_matrix *W, int T)
{
    bwd_in_ctx c = {dX, dY, W, T};
    lpl_parallel_for((W->cols + LPL_QK - 1) / LPL_QK, 1, backward_input_range, &c);
}

void lpl_linear_backward_weight(float *dW, const float *dY, const float *X, int T, int N, int K)
{
    lpl_matmul_tn(dW, dY, X, N, K, T, 1);
}

void lpl_bias_backward(float *db, const float *dY, int T, int N)
{
    for (int t = 0; t < T; t++)
        lpl_axpy(db, 1.0f, dY + (size_t)t * N, N);
}

/* ---- plain fp32 products ---- */

typedef struct {
    float *C;
    const float *A, *B;
    int M, N, K, acc;
} mm_ctx;

static void nt_range(void *arg, int j0, int j1)
{
    const mm_ctx *c = arg;
    for (int j = j0; j < j1; j++)
        for (int i = 0; i < c->M; i++) {
            float s = lpl_dot(c->A + (size_t)i * c->K, c->B + (size_t)j * c->K, c->K);
            float *y = c->C + (size_t)i * c->N + j;
            *y = c->acc ? *y + s : s;
        }
}

void lpl_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    mm_ctx c = {C, A, B, M, N, K, acc};
    lpl_parallel_for(N, 4, nt_range, &c);
}

static void nn_range(void *arg, int i0, int i1)
{
    const mm_ctx *c = arg;
    for (int i = i0; i < i1; i++) {
        float *y = c->C + (size_t)i * c->N;
        if (!c->acc)
            memset(y, 0, (size_t)c->N * sizeof(float));
        for (int k = 0; k < c->K; k++)
            lpl_axpy(y, c->A[(size_t)i * c->K + k], c->B + (size_t)k * c->N, c->N);
    }
}

void lpl_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    mm_ctx c = {C, A, B, M, N, K, acc};
    lpl_parallel_for(M, 1, nn_range, &c);
}

static void tn_range(void *arg, int i0, int i1)
{
    const mm_ctx *c = arg;
    for (int i = i0; i < i1; i++) {
        float *y = c->C + (size_t)i * c->N;
        if (!c->acc)
            memset(y, 0, (size_t)c->N * sizeof(float));
        for (int k = 0; k < c->K; k++)
            lpl_axpy(y, c->A[(size_t)k * c->M + i], c->B + (size_t)k * c->N, c->N);
    }
}

void lpl_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    mm_ctx c = {C, A, B, M, N, K, acc};
    lpl_parallel_for(M, 1, tn_range, &c);
}
