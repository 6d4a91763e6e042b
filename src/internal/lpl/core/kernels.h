/* Numerical kernels: matrix products of linear layers for any weight type,
 * fp16/bf16 conversion, Q8_0/Q4_0 quantization. All matrices are row-major.
 * Results never depend on the number of threads: each output element is summed
 * by one thread in a fixed order. */
#ifndef LPL_KERNELS_H
#define LPL_KERNELS_H

#include "lpl/core/common.h"

/* ggml block layouts: one fp16 scale then 32 quantized weights. */
typedef struct { uint16_t d; int8_t qs[LPL_QK]; } lpl_block_q8_0;       /* 34 bytes */
typedef struct { uint16_t d; uint8_t qs[LPL_QK / 2]; } lpl_block_q4_0;  /* 18 bytes */

/* fp16 / bf16 <-> fp32 scalar and row conversions (round to nearest even). */
float lpl_fp16_to_fp32(uint16_t h);
uint16_t lpl_fp32_to_fp16(float f);
float lpl_bf16_to_fp32(uint16_t h);
/* n halves at src (any alignment: checkpoint bytes) to floats, bit for bit as
 * lpl_fp16_to_fp32, LPL_VW at a time through the SIMD layer. */
void lpl_fp16_to_fp32_row(const void *src, float *dst, int64_t n);
void lpl_fp32_to_fp16_row(const float *src, uint16_t *dst, int64_t n);

/* Bytes of one row of n elements of type t (n % 32 == 0 for quantized types);
 * 0 for an unknown type or a quantized row whose length is not a multiple of 32. */
size_t lpl_dtype_row_bytes(lpl_dtype t, int64_t n);
/* "f32", "f16", "q8_0", "q4_0", "bf16" or "?" */
const char *lpl_dtype_name(lpl_dtype t);
/* "f32", "f16", "q8_0", "q4_0" (the types a weight matrix may have) -> *t; 1, or 0
 * for any other name. */
int lpl_matrix_type_from_name(const char *s, lpl_dtype *t);

/* Quantizes n floats (n % 32 == 0) into ggml blocks, as ggml's reference does. */
void lpl_quantize_q8_0(const float *src, lpl_block_q8_0 *dst, int64_t n);
void lpl_quantize_q4_0(const float *src, lpl_block_q4_0 *dst, int64_t n);
/* Converts one row of n elements of type t to fp32. */
void lpl_dequantize_row(lpl_dtype t, const void *src, float *dst, int64_t n);
/* Converts an fp32 row to type t (f32, f16, q8_0, q4_0); returns LPL_ERR_INVALID
 * for another type or a bad length. */
lpl_status lpl_convert_row(lpl_dtype t, const float *src, void *dst, int64_t n, lpl_error *err);

/* Linear layer forward: Y[T][W.rows] = X[T][W.cols] . W^T (+ bias). W may be f32, f16,
 * q8_0 or q4_0 (dequantised on the fly, never stored). accumulate != 0 adds to Y. */
void lpl_linear_forward(float *Y, const float *X, const lpl_matrix *W, const float *bias,
                        int T, int accumulate);
/* Gradient to the input of a linear layer: dX[T][W.cols] += dY[T][W.rows] . W. */
void lpl_linear_backward_input(float *dX, const float *dY, const lpl_matrix *W, int T);
/* Gradient to an fp32 weight: dW[N][K] += dY[T][N]^T . X[T][K]. */
void lpl_linear_backward_weight(float *dW, const float *dY, const float *X, int T, int N, int K);
/* Gradient to a bias: db[N] += sum over t of dY[t][N]. */
void lpl_bias_backward(float *db, const float *dY, int T, int N);

/* Integer products for a Q8_0 weight ("compute int8"): the other operand (X in the
 * forward, dY in the input gradient) is quantized per block of 32 along the summed
 * dimension to int8 with one float scale, each block is summed exactly in int32 and
 * scaled once. In the input gradient W's blocks run across the sum, so each 32 x 1
 * column piece of W is requantized with its own float scale while packing. Same
 * shapes and semantics as lpl_linear_forward / lpl_linear_backward_input; a weight
 * that is not Q8_0 is computed in fp32 by those. Independent of the thread count.
 * Scalar references: tests/support/kernels_check.h. */
void lpl_linear_forward_q8(float *Y, const float *X, const lpl_matrix *W, const float *bias, int T,
                           int accumulate);
void lpl_linear_backward_input_q8(float *dX, const float *dY, const lpl_matrix *W, int T);
/* Plain fp32 products (LoRA branches, attention). acc != 0 adds to C.
 *   nt: C[M][N] = A[M][K] . B[N][K]^T
 *   nn: C[M][N] = A[M][K] . B[K][N]
 *   tn: C[M][N] = A[K][M]^T . B[K][N]                                   */
void lpl_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K, int acc);
void lpl_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K, int acc);
void lpl_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K, int acc);

/* Level-1 helpers with SIMD and several accumulators. */
float lpl_dot(const float *a, const float *b, int64_t n);
void lpl_axpy(float *y, float a, const float *x, int64_t n); /* y += a*x */

#endif
