/* Plain references of the int8 products (kernels_q8.c): the same quantization
 * written as scalar loops, int32 sums per block, the scaled block sums added in
 * double. They are what the self-check holds the SIMD kernels to, on every target. */
#include "kernels_check.h"

#include "lpl/core/simd.h" /* LPL_QA_MAX: A's largest code on this target (63 for the relaxed dot) */

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float quant_block(const float *x, int n, int8_t q[32], int qmax)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    float d = amax / (float)qmax;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < LPL_QK; j++) {
        float v = j < n ? nearbyintf(x[j] * id) : 0.0f;
        q[j] = (int8_t)(v > -128.0f && v < 128.0f ? (int)v : 0);
    }
    return d;
}

float lpl_quantize_block_q8_ref(const float *x, int n, int8_t q[32]) { return quant_block(x, n, q, 127); }

/* Row r's block b of A ([rows][K], zeros past K) quantized. */
static float quant_row_block(const float *A, int K, int r, int b, int8_t q[32])
{
    int k0 = b * LPL_QK, n = K - k0 < LPL_QK ? K - k0 : LPL_QK;
    return quant_block(A + (size_t)r * K + k0, n, q, LPL_QA_MAX);
}

void lpl_linear_forward_q8_ref(float *Y, const float *X, const lpl_matrix *W, const float *bias, int T,
                               int accumulate)
{
    const int N = W->rows, K = W->cols, nb = K / LPL_QK;
    const lpl_block_q8_0 *w = W->data;
    int8_t q[32];
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int b = 0; b < nb; b++) {
                float dx = quant_row_block(X, K, t, b, q);
                const lpl_block_q8_0 *blk = w + (size_t)n * nb + b;
                int32_t isum = 0;
                for (int j = 0; j < LPL_QK; j++)
                    isum += (int32_t)q[j] * blk->qs[j];
                s += (double)dx * lpl_fp16_to_fp32(blk->d) * isum;
            }
            float *y = Y + (size_t)t * N + n;
            double r = (accumulate ? *y : 0.0) + s + (bias ? bias[n] : 0.0f);
            *y = (float)r;
        }
}

/* W's column c over rows [b*32, b*32+32) ∩ [0, rows), dequantised and requantized. */
static float requant_column_piece(const lpl_matrix *W, int c, int b, int8_t q[32])
{
    const int nb = W->cols / LPL_QK;
    const lpl_block_q8_0 *w = W->data;
    float v[32];
    int n = 0;
    for (int r = b * LPL_QK; r < W->rows && n < LPL_QK; r++, n++) {
        const lpl_block_q8_0 *blk = w + (size_t)r * nb + c / LPL_QK;
        v[n] = lpl_fp16_to_fp32(blk->d) * (float)blk->qs[c % LPL_QK];
    }
    return lpl_quantize_block_q8_ref(v, n, q);
}

void lpl_linear_backward_input_q8_ref(float *dX, const float *dY, const lpl_matrix *W, int T)
{
    const int N = W->rows, K = W->cols, nb = (N + LPL_QK - 1) / LPL_QK;
    int8_t qy[32], qw[32];
    float *sw = malloc(sizeof(float) * (size_t)K * nb);
    int8_t *cw = malloc((size_t)K * nb * LPL_QK);
    if (!sw || !cw) { /* the reference is for tests: leave dX untouched */
        free(sw), free(cw);
        return;
    }
    for (int k = 0; k < K; k++)
        for (int b = 0; b < nb; b++)
            sw[(size_t)k * nb + b] = requant_column_piece(W, k, b, cw + ((size_t)k * nb + b) * LPL_QK);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            double s = 0.0;
            for (int b = 0; b < nb; b++) {
                float dy = quant_row_block(dY, N, t, b, qy);
                memcpy(qw, cw + ((size_t)k * nb + b) * LPL_QK, LPL_QK);
                int32_t isum = 0;
                for (int j = 0; j < LPL_QK; j++)
                    isum += (int32_t)qy[j] * qw[j];
                s += (double)dy * sw[(size_t)k * nb + b] * isum;
            }
            float *x = dX + (size_t)t * K + k;
            *x = (float)(*x + s);
        }
    free(sw), free(cw);
}
