/* Matrix products of linear layers, written once against the SIMD layer.
 *
 * Every product is one blocked GEMM, C[M][N] (+)= sum_k A(i,k) B(k,j), in the usual
 * shape: the output is cut into tasks of MC x NC elements that threads take; inside
 * a task, K is walked in blocks of KC; for each block the task packs its slice of A
 * into panels of MR rows and its slice of B into panels of NR columns (dequantising
 * weights on the way, so a quantized matrix is never expanded in full), and a
 * register tile of MR x NR accumulators runs over the block.
 *
 * Determinism: an element of C is computed by exactly one task, summing k in
 * order within KC blocks and the blocks in order. KC is a constant and padding
 * lanes never mix with real ones, so the result does not depend on the number of
 * threads, on MC/NC, or on where the element sits in its tile. */
#include "lpl/core/kernels.h"

#include "lpl/core/simd.h"
#include "lpl/core/threads.h"
#include "tile_store.h"

#include <string.h>

/* ---- level 1 ---- */

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

/* ---- blocking ---- */

/* Register tile: MR rows x NR columns (NRV vectors). The vector registers (32 with
 * AVX-512, 16 otherwise) hold MR*NRV accumulators plus NRV loads of B and one
 * broadcast of A (and, without FMA, one product). */
#if LPL_VW >= 16 /* 32 registers */
#define MR 12
#define NRV 2
#elif LPL_VW >= 8
#define MR 6
#define NRV 2
#elif LPL_VW == 4
#define MR 4
#define NRV 2
#else
#define MR 4
#define NRV 4
#endif
#define NR (NRV * LPL_VW)
#define KC 256          /* depth of a block: fixes the summation order, never change per call */
#define MC_MAX ((144 + MR - 1) / MR * MR) /* rows of a task */
#define NC_MAX 256      /* columns of a task (multiple of 32 and of NR) */
_Static_assert(MR * NR <= LPL_TILE_MAX, "register tile larger than lpl_tile_store takes");

/* Per-thread packing buffers: A block [MC_MAX/MR panels][KC][MR], B block
 * [NC_MAX/NR panels][KC][NR], one dequantised row piece, and NR row pieces. */
static _Thread_local float t_apack[MC_MAX * KC] __attribute__((aligned(64)));
static _Thread_local float t_bpack[KC * NC_MAX] __attribute__((aligned(64)));
static _Thread_local float t_row[KC > NC_MAX ? KC : NC_MAX] __attribute__((aligned(64)));
static _Thread_local float t_rows[NR * KC] __attribute__((aligned(64)));

/* ---- operands ---- */

/* A(i,k): row-major A[i*lda + k] or, transposed, A[k*lda + i]. */
typedef struct {
    const float *p;
    int64_t lda;
    int trans;
} a_operand;

/* B(k,j) from a matrix of element type `type` with rows of `cols` elements:
 * rows along j (B(k,j) = row k, column j: nn, tn, input gradient) or along k
 * (B(k,j) = row j, column k: nt, forward). */
typedef struct {
    const void *p;
    lpl_dtype type;
    int cols;
    int rows_along_k; /* 1: row j holds B(.,j) */
} b_operand;

typedef struct {
    float *C;
    int M, N, K, acc;
    const float *bias; /* added once to each output element, after its sum */
    a_operand a;
    b_operand b;
    int nc, mc, tasks_n;
} gemm;

/* n elements (a multiple of 32) of Q8_0 blocks as fp32: int8 -> float is exact and
 * each value is one product d * q, so this equals lpl_dequantize_row bit for bit. */
static void dequant_q8_0(const lpl_block_q8_0 *blk, float *dst, int n)
{
    for (int b = 0; b < n / LPL_QK; b++, dst += LPL_QK) {
        lpl_vf d = lpl_vf_set1(lpl_fp16_to_fp32(blk[b].d));
        for (int j = 0; j < LPL_QK; j += LPL_VW)
            lpl_vf_store(dst + j, lpl_vf_mul(d, lpl_vf_load_i8(blk[b].qs + j)));
    }
}

/* Columns [c0, c0 + n) of row r of a typed matrix, as fp32, into dst (c0 and n
 * multiples of 32 for quantized types). */
static void row_piece(const b_operand *b, int64_t r, int c0, int n, float *dst)
{
    size_t row_bytes = lpl_dtype_row_bytes(b->type, b->cols);
    const uint8_t *row = (const uint8_t *)b->p + (size_t)r * row_bytes;
    switch (b->type) {
    case LPL_F32:
        memcpy(dst, (const float *)row + c0, (size_t)n * sizeof(float));
        return;
    case LPL_F16:
    case LPL_BF16:
        lpl_dequantize_row(b->type, (const uint16_t *)row + c0, dst, n);
        return;
    case LPL_Q8_0:
        dequant_q8_0((const lpl_block_q8_0 *)row + c0 / LPL_QK, dst, n);
        return;
    case LPL_Q4_0:
        lpl_dequantize_row(b->type, (const lpl_block_q4_0 *)row + c0 / LPL_QK, dst, n);
        return;
    }
    memset(dst, 0, (size_t)n * sizeof(float));
}

/* ---- packing ---- */

/* A(i0.., k0..) of mc x kc into panels [mc/MR][kc][MR], zero rows past mc. */
static void pack_a(const a_operand *a, int i0, int mc, int k0, int kc, float *dst)
{
    for (int p = 0; p < mc; p += MR, dst += (size_t)kc * MR) {
        int mr = mc - p < MR ? mc - p : MR;
        if (a->trans) {
            for (int k = 0; k < kc; k++) {
                const float *src = a->p + (int64_t)(k0 + k) * a->lda + i0 + p;
                for (int ii = 0; ii < MR; ii++)
                    dst[k * MR + ii] = ii < mr ? src[ii] : 0.0f;
            }
        } else {
            for (int ii = 0; ii < MR; ii++) {
                const float *src = a->p + (int64_t)(i0 + p + ii) * a->lda + k0;
                if (ii < mr)
                    for (int k = 0; k < kc; k++)
                        dst[k * MR + ii] = src[k];
                else
                    for (int k = 0; k < kc; k++)
                        dst[k * MR + ii] = 0.0f;
            }
        }
    }
}

/* Bytes (i, c0 + c) of eight rows, i, c < 8, to dst[(c0 + c) * ds + i]: an 8x8
 * transposition in 64-bit words by swapping 4x4, then 2x2, then 1x1 blocks. */
static void transpose8_bytes(const int8_t *const *rows, int c0, int8_t *dst, int ds)
{
    uint64_t a[8];
    for (int i = 0; i < 8; i++)
        memcpy(&a[i], rows[i] + c0, 8);
    for (int i = 0; i < 4; i++) {
        uint64_t t = ((a[i] >> 32) ^ a[i + 4]) & 0x00000000ffffffffull;
        a[i] ^= t << 32;
        a[i + 4] ^= t;
    }
    for (int i = 0; i < 8; i += (i & 1) ? 3 : 1) { /* 0, 1, 4, 5 */
        uint64_t t = ((a[i] >> 16) ^ a[i + 2]) & 0x0000ffff0000ffffull;
        a[i] ^= t << 16;
        a[i + 2] ^= t;
    }
    for (int i = 0; i < 8; i += 2) {
        uint64_t t = ((a[i] >> 8) ^ a[i + 1]) & 0x00ff00ff00ff00ffull;
        a[i] ^= t << 8;
        a[i + 1] ^= t;
    }
    for (int c = 0; c < 8; c++)
        memcpy(dst + (size_t)(c0 + c) * ds, &a[c], 8);
}

#if NR % 8 != 0
#error "the Q8_0 panel packing transposes 8 columns at a time"
#endif

/* pack_b for Q8_0 rows along k (the forward's weights): per 32-k block, the int8
 * values of the panel's NR rows are transposed as bytes (a quarter of the data the
 * fp32 transposition moved) and then scaled per column with the SIMD layer. Each
 * value is still the one product d * q, so the panels are bitwise the same. */
static void pack_b_q8_0_rows(const b_operand *b, int k0, int kc, int j0, int nc, float *dst)
{
    static const int8_t zeros[LPL_QK];
    size_t rb = lpl_dtype_row_bytes(LPL_Q8_0, b->cols);
    int npanels = (nc + NR - 1) / NR;
    int8_t tq[LPL_QK * NR];
    float sc[NR];
    const int8_t *q[NR];
    for (int p = 0; p < npanels; p++, dst += (size_t)kc * NR) {
        for (int kb = 0; kb < kc; kb += LPL_QK) {
            for (int jj = 0; jj < NR; jj++) {
                int j = p * NR + jj;
                if (j < nc) {
                    const lpl_block_q8_0 *blk =
                        (const lpl_block_q8_0 *)((const uint8_t *)b->p + (size_t)(j0 + j) * rb) +
                        (k0 + kb) / LPL_QK;
                    sc[jj] = lpl_fp16_to_fp32(blk->d);
                    q[jj] = blk->qs;
                } else {
                    sc[jj] = 0.0f;
                    q[jj] = zeros;
                }
            }
            for (int jb = 0; jb < NR; jb += 8)
                for (int c0 = 0; c0 < LPL_QK; c0 += 8)
                    transpose8_bytes(q + jb, c0, tq + jb, NR);
            lpl_vf s[NRV];
            for (int v = 0; v < NRV; v++)
                s[v] = lpl_vf_load(sc + v * LPL_VW);
            float *o = dst + (size_t)kb * NR;
            for (int k = 0; k < LPL_QK; k++, o += NR)
                for (int v = 0; v < NRV; v++)
                    lpl_vf_store(o + v * LPL_VW,
                                 lpl_vf_mul(s[v], lpl_vf_load_i8(tq + k * NR + v * LPL_VW)));
        }
    }
}

/* B(k0.., j0..) of kc x nc into panels [nc/NR][kc][NR], zero columns past nc. */
static void pack_b(const b_operand *b, int k0, int kc, int j0, int nc, float *dst)
{
    int npanels = (nc + NR - 1) / NR;
    if (b->rows_along_k && b->type == LPL_Q8_0) {
        pack_b_q8_0_rows(b, k0, kc, j0, nc, dst);
    } else if (b->rows_along_k) {
        /* per panel: NR row pieces into t_rows, then written out k by k, so that
         * the panel is filled in order (the transposition reads stay in L1) */
        for (int p = 0; p < npanels; p++, dst += (size_t)kc * NR) {
            for (int jj = 0; jj < NR; jj++) {
                int j = p * NR + jj;
                if (j < nc)
                    row_piece(b, j0 + j, k0, kc, t_rows + jj * KC);
                else
                    memset(t_rows + jj * KC, 0, (size_t)kc * sizeof(float));
            }
            for (int k0b = 0; k0b < kc; k0b += 8) { /* 8 k at a time: fewer passes over t_rows */
                int kb = kc - k0b < 8 ? kc - k0b : 8;
                for (int jj = 0; jj < NR; jj++) {
                    const float *src = t_rows + jj * KC + k0b;
                    for (int k = 0; k < kb; k++)
                        dst[(k0b + k) * NR + jj] = src[k];
                }
            }
        }
    } else if (b->type == LPL_Q8_0) {
        /* straight into the panels, a vector at a time (VW divides NR and 32, so a
         * vector never straddles two panels); padding columns are zero */
        size_t rb = lpl_dtype_row_bytes(LPL_Q8_0, b->cols);
        for (int k = 0; k < kc; k++) {
            const lpl_block_q8_0 *blk =
                (const lpl_block_q8_0 *)((const uint8_t *)b->p + (size_t)(k0 + k) * rb) +
                j0 / LPL_QK;
            for (int c = 0; c < nc; c += LPL_QK, blk++) {
                lpl_vf d = lpl_vf_set1(lpl_fp16_to_fp32(blk->d));
                for (int j = 0; j < LPL_QK; j += LPL_VW) {
                    int col = c + j;
                    float *o = dst + ((size_t)(col / NR) * kc + k) * NR + col % NR;
                    lpl_vf_store(o, lpl_vf_mul(d, lpl_vf_load_i8(blk->qs + j)));
                }
            }
            for (int j = nc; j < npanels * NR; j++)
                dst[((size_t)(j / NR) * kc + k) * NR + j % NR] = 0.0f;
        }
    } else {
        for (int k = 0; k < kc; k++) {
            row_piece(b, k0 + k, j0, nc, t_row);
            for (int j = nc; j < npanels * NR; j++)
                t_row[j] = 0.0f;
            for (int p = 0; p < npanels; p++)
                memcpy(dst + ((size_t)p * kc + k) * NR, t_row + p * NR, NR * sizeof(float));
        }
    }
}

/* ---- register tile ---- */

/* C[mr][nr] (ldc) = (overwrite ? 0 : C) + Ap . Bp over kc, then + bias[0..nr). */
static void micro_tile(int kc, const float *ap, const float *bp, float *C, int64_t ldc, int mr,
                       int nr, int overwrite, const float *bias)
{
    lpl_vf acc[MR][NRV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NRV; v++)
            acc[i][v] = lpl_vf_zero();
    for (int k = 0; k < kc; k++, ap += MR, bp += NR) {
        lpl_vf b[NRV];
        for (int v = 0; v < NRV; v++)
            b[v] = lpl_vf_load(bp + v * LPL_VW);
        for (int i = 0; i < MR; i++) {
            lpl_vf a = lpl_vf_load1(ap + i);
            for (int v = 0; v < NRV; v++)
                acc[i][v] = lpl_vf_madd(a, b[v], acc[i][v]);
        }
    }
    lpl_tile_store(&acc[0][0], MR, NRV, C, ldc, mr, nr, overwrite, bias);
}

/* ---- driver ---- */

static void gemm_task(const gemm *g, int task)
{
    int i0 = (task / g->tasks_n) * g->mc, j0 = (task % g->tasks_n) * g->nc;
    int mc = g->M - i0 < g->mc ? g->M - i0 : g->mc;
    int nc = g->N - j0 < g->nc ? g->N - j0 : g->nc;
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        int kc = g->K - k0 < KC ? g->K - k0 : KC;
        int overwrite = k0 == 0 && !g->acc, last = k0 + kc >= g->K;
        pack_b(&g->b, k0, kc, j0, nc, t_bpack);
        pack_a(&g->a, i0, mc, k0, kc, t_apack);
        for (int jp = 0; jp < nc; jp += NR) {
            const float *bp = t_bpack + (size_t)(jp / NR) * kc * NR;
            const float *bias = last && g->bias ? g->bias + j0 + jp : NULL;
            int nr = nc - jp < NR ? nc - jp : NR;
            for (int ip = 0; ip < mc; ip += MR) {
                int mr = mc - ip < MR ? mc - ip : MR;
                float *C = g->C + (int64_t)(i0 + ip) * g->N + j0 + jp;
                micro_tile(kc, t_apack + (size_t)(ip / MR) * kc * MR, bp, C, g->N, mr, nr,
                           overwrite, bias);
            }
        }
    }
}

static void gemm_range(void *ctx, int begin, int end)
{
    for (int t = begin; t < end; t++)
        gemm_task(ctx, t);
}

/* Task sizes only change who computes what, never the result. */
static void gemm_run(gemm *g)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    if (g->K == 0) { /* an empty sum */
        for (int i = 0; i < g->M; i++)
            for (int j = 0; j < g->N; j++) {
                float *c = g->C + (int64_t)i * g->N + j;
                float r = g->acc ? *c : 0.0f;
                *c = g->bias ? r + g->bias[j] : r;
            }
        return;
    }
    int threads = lpl_threads_count();
    /* enough column tasks for every thread, in multiples of 32 (quantized rows) */
    int per = (g->N + 3 * threads - 1) / (3 * threads);
    g->nc = (per + 31) / 32 * 32;
    if (g->nc < 64)
        g->nc = 64;
    if (g->nc > NC_MAX)
        g->nc = NC_MAX;
    g->tasks_n = (g->N + g->nc - 1) / g->nc;
    int mblocks = (g->M + MC_MAX - 1) / MC_MAX;
    if (mblocks * g->tasks_n < 2 * threads) { /* narrow products (LoRA rank r): cut rows finer */
        int want = (2 * threads + g->tasks_n - 1) / g->tasks_n, most = (g->M + MR - 1) / MR;
        mblocks = want < most ? want : most;
    }
    g->mc = ((g->M + mblocks - 1) / mblocks + MR - 1) / MR * MR;
    mblocks = (g->M + g->mc - 1) / g->mc;
    lpl_parallel_for(mblocks * g->tasks_n, 1, gemm_range, g);
}

/* ---- public products ---- */

void lpl_linear_forward(float *Y, const float *X, const lpl_matrix *W, const float *bias,
                        int T, int accumulate)
{
    gemm g = {Y, T, W->rows, W->cols, accumulate, bias, {X, W->cols, 0},
              {W->data, W->type, W->cols, 1}, 0, 0, 0};
    gemm_run(&g);
}

void lpl_linear_backward_input(float *dX, const float *dY, const lpl_matrix *W, int T)
{
    gemm g = {dX, T, W->cols, W->rows, 1, NULL, {dY, W->rows, 0},
              {W->data, W->type, W->cols, 0}, 0, 0, 0};
    gemm_run(&g);
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

void lpl_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    gemm g = {C, M, N, K, acc, NULL, {A, K, 0}, {B, LPL_F32, K, 1}, 0, 0, 0};
    gemm_run(&g);
}

void lpl_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    gemm g = {C, M, N, K, acc, NULL, {A, K, 0}, {B, LPL_F32, N, 0}, 0, 0, 0};
    gemm_run(&g);
}

void lpl_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K, int acc)
{
    gemm g = {C, M, N, K, acc, NULL, {A, M, 1}, {B, LPL_F32, N, 0}, 0, 0, 0};
    gemm_run(&g);
}
