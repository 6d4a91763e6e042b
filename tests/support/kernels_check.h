/* Kernel checks for tests and benchmarks (library lplcheck, never shipped): every
 * kernel against a plain reference loop, and a fingerprint of kernel outputs for
 * comparing builds and thread counts. */
#ifndef LPL_KERNELS_CHECK_H
#define LPL_KERNELS_CHECK_H

#include <stddef.h>

/* Self-check: runs every kernel against a plain reference loop on awkward shapes and
 * writes a JSON report {"simd","threads","checks","failures","first_failure"} to
 * report (truncated to cap bytes). Returns the number of failed checks. */
int lpl_kernels_selfcheck(char *report, size_t cap);
/* Writes a JSON object of kernel outputs on a fixed deterministic input (per kernel:
 * n, sum, abssum, a hash of the bits, a strided sample) for comparing builds and
 * thread counts; entries named exact_* (conversions) must agree bit for bit. Returns the full length (like snprintf; call with cap 0 to size). */
size_t lpl_kernels_fingerprint(char *buf, size_t cap);

#endif
