/* Kernel checks for tests and benchmarks (library lplcheck, never shipped): every
 * kernel against a plain reference loop, and a fingerprint of kernel outputs for
 * comparing builds and thread counts. */
#ifndef LPL_KERNELS_CHECK_H
#define LPL_KERNELS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lpl/core/kernels.h"

/* Self-check: runs every kernel against a plain reference loop on awkward shapes and
 * writes a JSON report {"simd","threads","checks","failures","first_failure"} to
 * report (truncated to cap bytes). Returns the number of failed checks. */
int lpl_kernels_selfcheck(char *report, size_t cap);
/* The same without the int8 products when skip_q8 is set (an engine whose relaxed dot
 * is known wrong, Node 20: tests/wasm/kernels.test.mjs says so when it skips). */
int lpl_kernels_selfcheck_ex(char *report, size_t cap, int skip_q8);
/* Writes a JSON object of kernel outputs on a fixed deterministic input (per kernel:
 * n, sum, abssum, a hash of the bits, a strided sample) for comparing builds and
 * thread counts; entries named exact_* (conversions) must agree bit for bit. Returns the full length (like snprintf; call with cap 0 to size). */
size_t lpl_kernels_fingerprint(char *buf, size_t cap);

/* Plain scalar references of the int8 products (kernels_q8_ref.c): the same
 * quantization, int32 sums per block, the scaled block sums added in double. W must be
 * Q8_0. The self-check holds lpl_linear_forward_q8 / lpl_linear_backward_input_q8 to them. */
void lpl_linear_forward_q8_ref(float *Y, const float *X, const lpl_matrix *W, const float *bias, int T,
                               int accumulate);
void lpl_linear_backward_input_q8_ref(float *dX, const float *dY, const lpl_matrix *W, int T);
/* The activation quantizer of the int8 products, for tests: x[0..n) (n <= 32, zeros
 * after) to q[32] with the returned scale d: d = max|x| / 127, q = round-half-even
 * of x * (1/d) (0 when d is 0). */
float lpl_quantize_block_q8_ref(const float *x, int n, int8_t q[32]);

#endif
