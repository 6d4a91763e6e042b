/* Integer products for a frozen Q8_0 weight ("compute int8").
 *
 * The other operand is quantized per block of 32 along the summed dimension to
 * int8 with one float scale (d = max|x| / 127, q = round-half-even(x / d) computed
 * as x * (1/d), like Q8_0 but with a float scale; 63 instead of 127 under the
 * relaxed dot's 7-bit operand, LPL_QA_MAX of simd.h); each block's products are summed
 * exactly in int32 and scaled once: C(i,j) += sA(i,b) * sB(b,j) * sum_k qa * qb.
 *
 *   forward         Y = X . W^T: A = X quantized along the input features; B = W's
 *                   own Q8_0 blocks (blocks run along k, the layout's own).
 *   input gradient  dX = dY . W: A = dY quantized along the output features; B(k,j)
 *                   = W[k][j] runs down W's columns, across W's blocks, so each
 *                   32 x 1 column piece is requantized (d*q values, one float scale
 *                   per piece) while packing: no second copy of W exists.
 *
 * The GEMM has the shape of kernels.c's: tasks of rows x columns shared by the
 * threads, K in blocks of QKC packed into panels, a register tile of QMR rows x QNR
 * columns with int32 block sums and fp32 accumulators. An element of C is computed
 * by one task, blocks summed in order, so results do not depend on the thread count.
 * The instruction mapping (vpdpbusd, vpmaddubsw, pmaddwd, i32x4.dot_i16x8_s) is
 * include/lpl/core/simd.h's; lpl_linear_*_q8_ref in tests/support/kernels_q8_ref.c is the plain
 * reference the self-check compares against. */
#include "lpl/core/kernels.h"

#include "lpl/core/simd.h"
#include "lpl/core/threads.h"
#include "tile_store.h"

#include <stdlib.h>
#include <string.h>

#if LPL_VW >= 16
#define QMR 4
#define QNRV 2
#elif LPL_VW == 8
#define QMR 3
#define QNRV 2
#elif LPL_VW == 4
/* 3 rows, not 4: the 4 x 8 tile's 8 int32 sums, 8 fp32 accumulators and
 * temporaries do not fit x64's 16 vector registers, and Chromium's V8 then spills a
 * sum inside the inner loop (docs/BENCHMARKS.md, "Training in Chromium"). */
#define QMR 3
#define QNRV 2
#else
#define QMR 4
#define QNRV 4
#endif
#define QNR (QNRV * LPL_VW)  /* divides 32: a panel never straddles a weight block */
#define QKC 256              /* k per packed block (a multiple of 32) */
#define QMC_MAX ((144 + QMR - 1) / QMR * QMR)
#define QNC_MAX 256
#define QB (LPL_QK / LPL_QSTEP) /* steps per block of 32 */

_Static_assert(QMR * QNR <= LPL_TILE_MAX, "register tile larger than lpl_tile_store takes");
#if 32 % QNR != 0
#error "QNR must divide the block length 32"
#endif

/* Per-thread packed B: panels [QNC_MAX/QNR][QKC][QNR] with scales and the offset
 * compensations [..][QKC/32][QNR]. */
static _Thread_local lpl_qb t_qb[QNC_MAX * QKC] __attribute__((aligned(64)));
static _Thread_local float t_sb[QNC_MAX * QKC / LPL_QK] __attribute__((aligned(64)));
static _Thread_local int32_t t_cb[QNC_MAX * QKC / LPL_QK] __attribute__((aligned(64)));

static float hmax(lpl_vf v)
{
    float t[LPL_VW], m = 0.0f;
    lpl_vf_store(t, v);
    for (int i = 0; i < LPL_VW; i++)
        m = t[i] > m ? t[i] : m;
    return m;
}

/* ---- packing A: all of it once per product, shared by the tasks ---- */

/* Quantizes x[0..n) (n <= 32, zeros after) and writes the 32 codes to dst with
 * QSTEP-groups QMR * QSTEP apart; returns the scale. */
static float quant_a_block(const float *x, int n, lpl_qa *dst)
{
    float v[LPL_QK] __attribute__((aligned(64)));
    if (n > 0)
        memcpy(v, x, (size_t)n * sizeof(float));
    memset(v + n, 0, (size_t)(LPL_QK - n) * sizeof(float));
    lpl_vf m = lpl_vf_zero();
    for (int j = 0; j < LPL_QK; j += LPL_VW)
        m = lpl_vf_max(m, lpl_vf_abs(lpl_vf_load(v + j)));
    float d = hmax(m) / (float)LPL_QA_MAX;
    lpl_vf id = lpl_vf_set1(d != 0.0f ? 1.0f / d : 0.0f);
#if LPL_QSTEP == 2 /* a NaN code becomes 0 in the pair writer */
    for (int j = 0; j < LPL_QK; j += LPL_VW)
        lpl_vf_store(v + j, lpl_vf_round_even(lpl_vf_mul(lpl_vf_load(v + j), id)));
    lpl_qa_put_pairs(dst, (size_t)QMR * LPL_QSTEP, v);
#else
    lpl_vf lim = lpl_vf_set1(128.0f);
    for (int j = 0; j < LPL_QK; j += LPL_VW) {
        lpl_vf r = lpl_vf_round_even(lpl_vf_mul(lpl_vf_load(v + j), id));
        /* a NaN code becomes 0 (the scale is NaN, so the product still is) */
        lpl_vf_store(v + j, lpl_vf_select_lt(lpl_vf_abs(r), lim, r, lpl_vf_zero()));
    }
    lpl_qa q[LPL_QK];
    for (int j = 0; j < LPL_QK; j++) /* finite integers in [-LPL_QA_MAX, LPL_QA_MAX] */
        q[j] = (lpl_qa)((int)v[j] + LPL_QA_BIAS * LPL_QA_OFFSET);
    for (int g = 0; g < QB; g++)
        memcpy(dst + (size_t)g * QMR * LPL_QSTEP, q + g * LPL_QSTEP, LPL_QSTEP * sizeof(lpl_qa));
#endif
    return d;
}

/* The quantized A of one product: per panel of QMR rows and block of 32 k, the
 * codes [QB][QMR][QSTEP] and QMR scales; rows past M are zeros with scale 0. */
typedef struct {
    lpl_qa *codes;
    float *scales;
    int kb;          /* blocks per row */
} qa_pack;

/* Scratch of the calling thread, grown to the largest product seen. */
static _Thread_local void *t_abuf;
static _Thread_local size_t t_abuf_cap;

typedef struct {
    const float *A;
    int M, K;
    qa_pack *pk;
} qa_job;

static void quant_a_range(void *ctx, int begin, int end)
{
    const qa_job *j = ctx;
    for (int p = begin; p < end; p++)
        for (int b = 0; b < j->pk->kb; b++) {
            size_t slot = (size_t)p * j->pk->kb + b;
            int n = j->K - b * LPL_QK < LPL_QK ? j->K - b * LPL_QK : LPL_QK;
            for (int ii = 0; ii < QMR; ii++) {
                int i = p * QMR + ii;
                const float *x = i < j->M ? j->A + (int64_t)i * j->K + b * LPL_QK : NULL;
                j->pk->scales[slot * QMR + ii] =
                    quant_a_block(x, x ? n : 0, j->pk->codes + slot * QMR * LPL_QK + ii * LPL_QSTEP);
            }
        }
}

/* Quantizes A[M][K]; 0 if the scratch cannot be allocated. */
static int quant_a(const float *A, int M, int K, qa_pack *pk)
{
    int panels = (M + QMR - 1) / QMR;
    pk->kb = (K + LPL_QK - 1) / LPL_QK;
    size_t nslot = (size_t)panels * pk->kb;
    size_t code_bytes = (nslot * QMR * LPL_QK * sizeof(lpl_qa) + 63) & ~(size_t)63;
    size_t need = code_bytes + nslot * QMR * sizeof(float);
    if (need > t_abuf_cap) {
        void *p = malloc(need);
        if (!p)
            return 0;
        free(t_abuf);
        t_abuf = p;
        t_abuf_cap = need;
    }
    pk->codes = t_abuf;
    pk->scales = (float *)((char *)t_abuf + code_bytes);
    qa_job j = {A, M, K, pk};
    lpl_parallel_for(panels, 1, quant_a_range, &j);
    return 1;
}

typedef struct {
    float *C;
    int M, N, K, acc;
    const float *bias;
    const float *A;       /* [M][K] fp32 */
    const uint8_t *W;     /* Q8_0 weight */
    size_t wrb;           /* bytes per weight row */
    int trans;            /* 0: B(k,j) = W[j][k] (forward); 1: B(k,j) = W[k][j] */
    int nc, mc, tasks_n;
    qa_pack a;            /* A quantized once, before the tasks */
} qgemm;

/* ---- packing B ---- */

/* Codes q[0..32) of one B column into its panel slot c: QSTEP-groups QNR apart. */
static inline void put_b_column(lpl_qb *dst, int c, const int8_t *q)
{
#if LPL_QSTEP == 4
    for (int g = 0; g < QB; g++) /* a group of four int8 codes moves as one word */
        memcpy(dst + ((size_t)g * QNR + c) * 4, q + 4 * g, 4);
#elif LPL_QSTEP == 2
    lpl_qb_put_pairs(dst + (size_t)c * 2, (size_t)QNR * 2, q);
#else
    for (int g = 0; g < QB; g++)
        for (int e = 0; e < LPL_QSTEP; e++)
            dst[((size_t)g * QNR + c) * LPL_QSTEP + e] = (lpl_qb)q[g * LPL_QSTEP + e];
#endif
}

/* Forward: panel columns are W rows j0+jp.., each block their own Q8_0 block. */
static void pack_b_rows(const qgemm *g, int k0, int kc, int j0, int nc)
{
    static const int8_t zeros[LPL_QK];
    int nblk = kc / LPL_QK, npanels = (nc + QNR - 1) / QNR;
    for (int p = 0; p < npanels; p++)
        for (int c = 0; c < QNR; c++) {
            int j = p * QNR + c;
            const lpl_block_q8_0 *blk =
                j < nc ? (const lpl_block_q8_0 *)(g->W + (size_t)(j0 + j) * g->wrb) + k0 / LPL_QK : NULL;
            for (int b = 0; b < nblk; b++) {
                size_t slot = (size_t)p * nblk + b;
                const int8_t *q = blk ? blk[b].qs : zeros;
                int sum = 0;
                if (LPL_QA_OFFSET) /* only the unsigned-A mappings need the offset's term */
                    for (int k = 0; k < LPL_QK; k++)
                        sum += q[k];
                put_b_column(t_qb + slot * QNR * LPL_QK, c, q);
                t_sb[slot * QNR + c] = blk ? lpl_fp16_to_fp32(blk[b].d) : 0.0f;
                t_cb[slot * QNR + c] = -LPL_QA_BIAS * sum;
            }
        }
}

/* Input gradient: panel columns are W columns; rows k (output features) of one
 * block of 32 carry different scales, so the piece is dequantised (d*q, exact) and
 * requantized per column with one float scale, lanes running over the columns.
 * Rows past K are zeros. */
static void pack_b_cols(const qgemm *g, int k0, int kc, int j0, int nc)
{
    int nblk = (kc + LPL_QK - 1) / LPL_QK, npanels = nc / QNR;
    lpl_vf v[LPL_QK][QNRV];
    float s[QNR] __attribute__((aligned(64))), sum[QNR] __attribute__((aligned(64)));
    const lpl_vf lim = lpl_vf_set1(128.0f);
    /* the fp16 scales of rows k0..k0+kc at weight column block cblk, converted once
     * for all panels of that block (with 128-bit vectors a block has four panels, and
     * the conversion is a function call per row) */
    float dk[QKC];
    int cblk = -1;
    for (int p = 0; p < npanels; p++) {
        int col = j0 + p * QNR; /* QNR divides 32: one weight block per panel */
        if (col / LPL_QK != cblk) {
            cblk = col / LPL_QK;
            for (int r = 0; r < kc; r++)
                dk[r] = lpl_fp16_to_fp32(((const lpl_block_q8_0 *)(g->W + (size_t)(k0 + r) * g->wrb) + cblk)->d);
        }
        for (int b = 0; b < nblk; b++) {
            size_t slot = (size_t)p * nblk + b;
            lpl_vf m[QNRV];
            for (int u = 0; u < QNRV; u++)
                m[u] = lpl_vf_zero();
            for (int r = 0; r < LPL_QK; r++) {
                int k = k0 + b * LPL_QK + r;
                if (k >= g->K) {
                    for (int u = 0; u < QNRV; u++)
                        v[r][u] = lpl_vf_zero();
                    continue;
                }
                const lpl_block_q8_0 *blk = (const lpl_block_q8_0 *)(g->W + (size_t)k * g->wrb) + col / LPL_QK;
                lpl_vf d = lpl_vf_set1(dk[b * LPL_QK + r]);
                for (int u = 0; u < QNRV; u++) {
                    v[r][u] = lpl_vf_mul(d, lpl_vf_load_i8(blk->qs + col % LPL_QK + u * LPL_VW));
                    m[u] = lpl_vf_max(m[u], lpl_vf_abs(v[r][u]));
                }
            }
            lpl_vf id[QNRV], acc[QNRV];
            for (int u = 0; u < QNRV; u++) {
                lpl_vf sc = lpl_vf_div(m[u], lpl_vf_set1(127.0f));
                lpl_vf_store(s + u * LPL_VW, sc);
                id[u] = lpl_vf_select_lt(lpl_vf_zero(), sc, lpl_vf_div(lpl_vf_set1(1.0f), sc), lpl_vf_zero());
                acc[u] = lpl_vf_zero();
            }
            for (int r = 0; r < LPL_QK; r++)
                for (int u = 0; u < QNRV; u++) {
                    lpl_vf q = lpl_vf_round_even(lpl_vf_mul(v[r][u], id[u]));
                    /* NaN -> 0, unless lpl_vq_store does that anyway */
                    v[r][u] = LPL_VQ_NAN_ZERO ? q : lpl_vf_select_lt(lpl_vf_abs(q), lim, q, lpl_vf_zero());
                    if (LPL_QA_OFFSET) /* the offset's term: unsigned-A mappings only */
                        acc[u] = lpl_vf_add(acc[u], v[r][u]);
                }
            lpl_qb *dst = t_qb + slot * QNR * LPL_QK;
            for (int gq = 0; gq < QB; gq++)
                for (int u = 0; u < QNRV; u++) {
                    lpl_vf rows[LPL_QSTEP];
                    for (int e = 0; e < LPL_QSTEP; e++)
                        rows[e] = v[gq * LPL_QSTEP + e][u];
                    lpl_vq_store(dst + ((size_t)gq * QNR + u * LPL_VW) * LPL_QSTEP, rows);
                }
            for (int u = 0; u < QNRV; u++)
                lpl_vf_store(sum + u * LPL_VW, acc[u]);
            for (int c = 0; c < QNR; c++) {
                t_sb[slot * QNR + c] = s[c];
                t_cb[slot * QNR + c] = -LPL_QA_BIAS * (int32_t)sum[c];
            }
        }
    }
}

/* ---- register tile ---- */

/* C[mr][nr] (ldc) = (overwrite ? 0 : C) + sum over nblk blocks of
 * sa[i] * sb[j] * (int32 sum of the block), then + bias[0..nr). */
static void qtile(int nblk, const lpl_qa *ap, const float *sa, const lpl_qb *bp, const float *sb,
                  const int32_t *cb, float *C, int64_t ldc, int mr, int nr, int overwrite, const float *bias)
{
    lpl_vf acc[QMR][QNRV];
    for (int i = 0; i < QMR; i++)
        for (int v = 0; v < QNRV; v++)
            acc[i][v] = lpl_vf_zero();
    for (int b = 0; b < nblk; b++, ap += QMR * LPL_QK, bp += QNR * LPL_QK, sa += QMR, sb += QNR, cb += QNR) {
        lpl_vi s[QMR][QNRV];
        for (int v = 0; v < QNRV; v++) {
            lpl_vi init = LPL_QA_OFFSET ? lpl_vi_load(cb + v * LPL_VW) : lpl_vi_zero();
            for (int i = 0; i < QMR; i++)
                s[i][v] = init;
        }
        for (int k = 0; k < QB; k++) {
            lpl_vi bv[QNRV];
            for (int v = 0; v < QNRV; v++)
                bv[v] = lpl_vb_load(bp + (k * QNR + v * LPL_VW) * LPL_QSTEP);
            for (int i = 0; i < QMR; i++) {
                lpl_vi a = lpl_va_bcast(ap + (k * QMR + i) * LPL_QSTEP);
                for (int v = 0; v < QNRV; v++)
                    s[i][v] = lpl_vi_dot(s[i][v], a, bv[v]);
            }
        }
        for (int v = 0; v < QNRV; v++) {
            lpl_vf sbv = lpl_vf_load(sb + v * LPL_VW);
            for (int i = 0; i < QMR; i++)
                acc[i][v] = lpl_vf_madd(lpl_vf_mul(lpl_vi_to_vf(s[i][v]), sbv), lpl_vf_load1(sa + i), acc[i][v]);
        }
    }
    lpl_tile_store(&acc[0][0], QMR, QNRV, C, ldc, mr, nr, overwrite, bias);
}

/* ---- driver ---- */

static void qgemm_task(const qgemm *g, int task)
{
    int i0 = (task / g->tasks_n) * g->mc, j0 = (task % g->tasks_n) * g->nc;
    int mc = g->M - i0 < g->mc ? g->M - i0 : g->mc;
    int nc = g->N - j0 < g->nc ? g->N - j0 : g->nc;
    for (int k0 = 0; k0 < g->K; k0 += QKC) {
        int kc = g->K - k0 < QKC ? g->K - k0 : QKC;
        int nblk = (kc + LPL_QK - 1) / LPL_QK;
        int overwrite = k0 == 0 && !g->acc, last = k0 + kc >= g->K;
        if (g->trans)
            pack_b_cols(g, k0, kc, j0, nc);
        else
            pack_b_rows(g, k0, kc, j0, nc);
        for (int jp = 0; jp < nc; jp += QNR) {
            size_t slot = (size_t)(jp / QNR) * nblk;
            const float *bias = last && g->bias ? g->bias + j0 + jp : NULL;
            int nr = nc - jp < QNR ? nc - jp : QNR;
            for (int ip = 0; ip < mc; ip += QMR) {
                int mr = mc - ip < QMR ? mc - ip : QMR;
                size_t aslot = (size_t)((i0 + ip) / QMR) * g->a.kb + k0 / LPL_QK;
                float *C = g->C + (int64_t)(i0 + ip) * g->N + j0 + jp;
                qtile(nblk, g->a.codes + aslot * QMR * LPL_QK, g->a.scales + aslot * QMR, t_qb + slot * QNR * LPL_QK,
                      t_sb + slot * QNR, t_cb + slot * QNR, C, g->N, mr, nr, overwrite, bias);
            }
        }
    }
}

static void qgemm_range(void *ctx, int begin, int end)
{
    for (int t = begin; t < end; t++)
        qgemm_task(ctx, t);
}

/* Task sizes only change who computes what, never the result. Returns 0 when
 * A's scratch cannot be allocated (nothing was computed). */
static int qgemm_run(qgemm *g)
{
    if (!quant_a(g->A, g->M, g->K, &g->a))
        return 0;
    int threads = lpl_threads_count();
    int per = (g->N + 3 * threads - 1) / (3 * threads);
    g->nc = (per + 31) / 32 * 32;
    if (g->nc < 64)
        g->nc = 64;
    if (g->nc > QNC_MAX)
        g->nc = QNC_MAX;
    g->tasks_n = (g->N + g->nc - 1) / g->nc;
    int mblocks = (g->M + QMC_MAX - 1) / QMC_MAX;
    if (mblocks * g->tasks_n < 2 * threads) {
        int want = (2 * threads + g->tasks_n - 1) / g->tasks_n, most = (g->M + QMR - 1) / QMR;
        mblocks = want < most ? want : most;
    }
    g->mc = ((g->M + mblocks - 1) / mblocks + QMR - 1) / QMR * QMR;
    mblocks = (g->M + g->mc - 1) / g->mc;
    lpl_parallel_for(mblocks * g->tasks_n, 1, qgemm_range, g);
    return 1;
}

/* ---- public products ---- */

void lpl_linear_forward_q8(float *Y, const float *X, const lpl_matrix *W, const float *bias, int T,
                           int accumulate)
{
    if (W->type != LPL_Q8_0 || T <= 0 || W->rows <= 0 || W->cols <= 0) {
        lpl_linear_forward(Y, X, W, bias, T, accumulate);
        return;
    }
    qgemm g = {Y, T, W->rows, W->cols, accumulate, bias, X, W->data,
               lpl_dtype_row_bytes(LPL_Q8_0, W->cols), 0, 0, 0, 0, {0}};
    if (!qgemm_run(&g)) /* no memory for the quantized X: the fp32 product instead */
        lpl_linear_forward(Y, X, W, bias, T, accumulate);
}

void lpl_linear_backward_input_q8(float *dX, const float *dY, const lpl_matrix *W, int T)
{
    if (W->type != LPL_Q8_0 || T <= 0 || W->rows <= 0 || W->cols <= 0) {
        lpl_linear_backward_input(dX, dY, W, T);
        return;
    }
    qgemm g = {dX, T, W->cols, W->rows, 1, NULL, dY, W->data,
               lpl_dtype_row_bytes(LPL_Q8_0, W->cols), 1, 0, 0, 0, {0}};
    if (!qgemm_run(&g))
        lpl_linear_backward_input(dX, dY, W, T);
}
