/* Writing a GEMM register tile back to C: one routine for the fp32 GEMM (kernels.c)
 * and the int8 GEMM (kernels_q8.c). Internal to src/core. */
#ifndef LPL_CORE_TILE_STORE_H
#define LPL_CORE_TILE_STORE_H

#include "lpl/core/simd.h"

#include <stdint.h>

/* Largest tile (rows x columns) a caller may pass; checked where tiles are sized. */
#define LPL_TILE_MAX 384

/* C[mr][nr] (row stride ldc) = (overwrite ? 0 : C) + acc, then + bias[0..nr) when
 * bias is given. acc holds rows x nrv vectors, row-major (acc[i * nrv + v] are
 * columns v*VW ..). A full tile (mr == rows, nr == nrv * VW) moves by vectors; an
 * edge tile is spilled and added element by element, the same additions in the same
 * order, so an element's value does not depend on where in a tile it sits. rows and
 * nrv are compile-time constants at every call, so the spill loop unrolls and the
 * accumulators stay in registers in the main loop. */
static inline void lpl_tile_store(const lpl_vf *acc, int rows, int nrv, float *C, int64_t ldc, int mr, int nr,
                                  int overwrite, const float *bias)
{
    if (mr == rows && nr == nrv * LPL_VW) {
        for (int i = 0; i < rows; i++)
            for (int v = 0; v < nrv; v++) {
                float *c = C + i * ldc + v * LPL_VW;
                lpl_vf r = overwrite ? acc[i * nrv + v] : lpl_vf_add(lpl_vf_load(c), acc[i * nrv + v]);
                if (bias)
                    r = lpl_vf_add(r, lpl_vf_load(bias + v * LPL_VW));
                lpl_vf_store(c, r);
            }
        return;
    }
    float t[LPL_TILE_MAX];
    int nrw = nrv * LPL_VW;
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < nrv; v++)
            lpl_vf_store(t + i * nrw + v * LPL_VW, acc[i * nrv + v]);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + i * ldc + j;
            float r = overwrite ? t[i * nrw + j] : *c + t[i * nrw + j];
            *c = bias ? r + bias[j] : r;
        }
}

#endif
