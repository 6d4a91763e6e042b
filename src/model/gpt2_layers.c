/* GPT-2 layers: layer norm, gelu_new, causal attention, cross-entropy. Each forward
 * has a backward that adds into its gradients. Rows (or heads) are split across the
 * thread pool; every output is written by one chunk, so results do not depend on
 * how many threads run. */
#include "lpl/model/gpt2_layers.h"

#include "lpl/core/kernels.h"
#include "lpl/core/rng.h"
#include "lpl/core/simd.h"
#include "lpl/core/threads.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Rows per chunk so that one chunk holds at least ~32K elements of work: waking
 * the pool costs more than a small loop. */
static int rows_per_chunk(int64_t row_work)
{
    int64_t r = 32768 / (row_work > 0 ? row_work : 1);
    return r < 1 ? 1 : (int)r;
}

/* ---------------- layer norm ---------------- */

typedef struct {
    float *out, *mean, *rstd, *dinp;
    const float *inp, *w, *b, *dout;
    int C;
    float eps;
} ln_ctx;

static void ln_forward_rows(void *p, int begin, int end)
{
    const ln_ctx *c = p;
    const int C = c->C;
    for (int t = begin; t < end; t++) {
        const float *x = c->inp + (size_t)t * C;
        double s = 0.0;
        for (int i = 0; i < C; i++)
            s += x[i];
        float m = (float)(s / C);
        double v = 0.0;
        for (int i = 0; i < C; i++) {
            double d = (double)x[i] - m;
            v += d * d;
        }
        float rs = (float)(1.0 / sqrt(v / C + c->eps));
        float *o = c->out + (size_t)t * C;
        for (int i = 0; i < C; i++)
            o[i] = (x[i] - m) * rs * c->w[i] + c->b[i];
        c->mean[t] = m;
        c->rstd[t] = rs;
    }
}

void lpl_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int T, int C, float eps)
{
    ln_ctx c = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .C = C, .eps = eps};
    lpl_parallel_for(T, rows_per_chunk(C), ln_forward_rows, &c);
}

static void ln_backward_rows(void *p, int begin, int end)
{
    const ln_ctx *c = p;
    const int C = c->C;
    for (int t = begin; t < end; t++) {
        const float *x = c->inp + (size_t)t * C;
        const float *dy = c->dout + (size_t)t * C;
        float *dx = c->dinp + (size_t)t * C;
        const float m = c->mean[t], rs = c->rstd[t];
        double sum_dn = 0.0, sum_dn_xh = 0.0;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * rs;
            float dn = dy[i] * c->w[i];
            sum_dn += dn;
            sum_dn_xh += (double)dn * xh;
        }
        float mean_dn = (float)(sum_dn / C), mean_dn_xh = (float)(sum_dn_xh / C);
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * rs;
            float dn = dy[i] * c->w[i];
            dx[i] += (dn - mean_dn - xh * mean_dn_xh) * rs;
        }
    }
}

void lpl_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int T, int C)
{
    ln_ctx c = {.dinp = dinp, .mean = (float *)mean, .rstd = (float *)rstd, .inp = inp, .w = w,
                .dout = dout, .C = C};
    if (dinp)
        lpl_parallel_for(T, rows_per_chunk(C), ln_backward_rows, &c);
    /* weight gradients sum over rows: done serially, in row order */
    if (dw || db) {
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * C;
            const float *dy = dout + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                if (dw)
                    dw[i] += dy[i] * ((x[i] - mean[t]) * rstd[t]);
                if (db)
                    db[i] += dy[i];
            }
        }
    }
}

/* ---------------- gelu_new ---------------- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* e^y for y in [-87, 88], where 2^n stays a normal float: e^y = 2^n e^r with
 * n = round(y / ln2), r = y - n ln2 in [-ln2/2, ln2/2] and e^r = 1 + r + r^2 Q(r)
 * (3.1e-9 relative in exact arithmetic). The one exp polynomial of the layers: tanh
 * (GELU) and the softmax both use it. */
static lpl_vf vexp_normal(lpl_vf y)
{
    /* n = round(y / ln2): adding 1.5 * 2^23 leaves the integer part in the mantissa */
    lpl_vf magic = lpl_vf_set1(12582912.0f);
    lpl_vf n = lpl_vf_sub(lpl_vf_add(lpl_vf_mul(y, lpl_vf_set1(1.4426950408889634f)), magic), magic);
    /* ln2 in two parts: n * 0.693359375 is exact, so r keeps its low bits */
    lpl_vf r = lpl_vf_madd(n, lpl_vf_set1(-0.693359375f), y);
    r = lpl_vf_madd(n, lpl_vf_set1(2.1219444005469057e-4f), r);
    lpl_vf q = lpl_vf_set1(1.3814594130963087e-3f);
    q = lpl_vf_madd(q, r, lpl_vf_set1(8.36870726197958e-3f));
    q = lpl_vf_madd(q, r, lpl_vf_set1(4.166838899254799e-2f));
    q = lpl_vf_madd(q, r, lpl_vf_set1(1.666652113199234e-1f));
    q = lpl_vf_madd(q, r, lpl_vf_set1(4.999999403953552e-1f));
    lpl_vf er = lpl_vf_add(lpl_vf_madd(lpl_vf_mul(r, r), q, r), lpl_vf_set1(1.0f));
    return lpl_vf_mul(er, lpl_vf_pow2i(n));
}

/* tanh on a vector, without libm (one call per element was most of the MLP's time).
 * |x| < 0.625: x + x^3 P(x^2), P fitted here for relative error (4.7e-9 in exact
 * arithmetic). Otherwise 1 - 2 / (e^(2|x|) + 1) with the sign of x (vexp_normal).
 * The cancellation in 1 - 2/(E + 1) is harmless there since the result is >= 0.55.
 * y is capped at 40 so 2^n stays a normal float; 2/(E + 1) is then far below half an
 * ulp of 1, so the result saturates to exactly +-1 (from |x| ~ 9.1 on). A NaN x takes
 * the polynomial branch and stays NaN; +-inf gives +-1. */
static lpl_vf vtanh(lpl_vf x)
{
    lpl_vf ax = lpl_vf_max(x, lpl_vf_sub(lpl_vf_zero(), x));
    lpl_vf z = lpl_vf_mul(x, x);
    lpl_vf p = lpl_vf_set1(-5.717047955840826e-3f);
    p = lpl_vf_madd(p, z, lpl_vf_set1(2.0650589838624e-2f));
    p = lpl_vf_madd(p, z, lpl_vf_set1(-5.3743500262498856e-2f));
    p = lpl_vf_madd(p, z, lpl_vf_set1(1.3331490755081177e-1f));
    p = lpl_vf_madd(p, z, lpl_vf_set1(-3.333328366279602e-1f));
    lpl_vf small = lpl_vf_madd(lpl_vf_mul(x, z), p, x);

    lpl_vf e = vexp_normal(lpl_vf_min(lpl_vf_add(ax, ax), lpl_vf_set1(40.0f)));
    lpl_vf one = lpl_vf_set1(1.0f);
    lpl_vf big = lpl_vf_sub(one, lpl_vf_div(lpl_vf_set1(2.0f), lpl_vf_add(e, one)));
    big = lpl_vf_select_lt(x, lpl_vf_zero(), lpl_vf_sub(lpl_vf_zero(), big), big);
    return lpl_vf_select_lt(lpl_vf_set1(0.625f), ax, big, small);
}

/* gelu_new(x) and, with d != NULL, its derivative, for one vector. */
static lpl_vf vgelu(lpl_vf x, lpl_vf *d)
{
    lpl_vf x2 = lpl_vf_mul(x, x);
    lpl_vf u = lpl_vf_mul(lpl_vf_set1(GELU_K),
                          lpl_vf_add(x, lpl_vf_mul(lpl_vf_mul(lpl_vf_set1(GELU_C), x2), x)));
    lpl_vf th = vtanh(u), half = lpl_vf_set1(0.5f), one = lpl_vf_set1(1.0f);
    lpl_vf onep = lpl_vf_add(one, th);
    if (d) {
        lpl_vf du = lpl_vf_mul(lpl_vf_set1(GELU_K),
                               lpl_vf_add(one, lpl_vf_mul(lpl_vf_set1(3.0f * GELU_C), x2)));
        lpl_vf sech2 = lpl_vf_sub(one, lpl_vf_mul(th, th));
        *d = lpl_vf_add(lpl_vf_mul(half, onep),
                        lpl_vf_mul(lpl_vf_mul(lpl_vf_mul(half, x), sech2), du));
    }
    return lpl_vf_mul(lpl_vf_mul(half, x), onep);
}

void lpl_tanh_row(float *out, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + LPL_VW <= n; i += LPL_VW)
        lpl_vf_store(out + i, vtanh(lpl_vf_load(x + i)));
    if (i < n) { /* the tail through a padded vector: the same arithmetic per element */
        float buf[LPL_VW] = {0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        lpl_vf_store(buf, vtanh(lpl_vf_load(buf)));
        memcpy(out + i, buf, (size_t)(n - i) * sizeof(float));
    }
}

/* The pool splits blocks of 1024 elements; the last block is clipped to n. An
 * element's result depends only on its input, so the split never shows. */
typedef struct {
    float *out;
    const float *inp, *dout;
    int64_t n;
} gelu_ctx;

static void gelu_forward_range(void *p, int begin, int end)
{
    const gelu_ctx *c = p;
    int64_t stop = (int64_t)end * 1024 < c->n ? (int64_t)end * 1024 : c->n;
    int64_t i = (int64_t)begin * 1024;
    for (; i + LPL_VW <= stop; i += LPL_VW)
        lpl_vf_store(c->out + i, vgelu(lpl_vf_load(c->inp + i), NULL));
    if (i < stop) {
        float buf[LPL_VW] = {0};
        memcpy(buf, c->inp + i, (size_t)(stop - i) * sizeof(float));
        lpl_vf_store(buf, vgelu(lpl_vf_load(buf), NULL));
        memcpy(c->out + i, buf, (size_t)(stop - i) * sizeof(float));
    }
}

static void gelu_backward_range(void *p, int begin, int end)
{
    const gelu_ctx *c = p;
    int64_t stop = (int64_t)end * 1024 < c->n ? (int64_t)end * 1024 : c->n;
    int64_t i = (int64_t)begin * 1024;
    lpl_vf g;
    for (; i + LPL_VW <= stop; i += LPL_VW) {
        vgelu(lpl_vf_load(c->inp + i), &g);
        lpl_vf_store(c->out + i,
                     lpl_vf_madd(lpl_vf_load(c->dout + i), g, lpl_vf_load(c->out + i)));
    }
    if (i < stop) {
        float buf[LPL_VW] = {0}, gb[LPL_VW];
        memcpy(buf, c->inp + i, (size_t)(stop - i) * sizeof(float));
        vgelu(lpl_vf_load(buf), &g);
        lpl_vf_store(gb, g);
        for (int64_t j = i; j < stop; j++)
            c->out[j] += c->dout[j] * gb[j - i];
    }
}

void lpl_gelu_forward(float *out, const float *inp, int64_t n)
{
    gelu_ctx c = {out, inp, NULL, n};
    lpl_parallel_for((int)((n + 1023) / 1024), 16, gelu_forward_range, &c);
}

void lpl_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    gelu_ctx c = {dinp, inp, dout, n};
    lpl_parallel_for((int)((n + 1023) / 1024), 16, gelu_backward_range, &c);
}

/* ---------------- causal attention ---------------- */

/* Each head is a few matrix products: its Q, K, V (rows strided by 3C in qkv) are
 * copied into contiguous [T][hd] blocks, and for each block of query rows S = Q K^T
 * comes from one matmul, rows are softmaxed with a vector exp, and O = P V is another
 * matmul. Only one block of scores of one head lives per thread; backward rebuilds P
 * from the saved log-sum-exp. A chunk of heads runs on one thread in head order (the
 * matmuls inside run serially), so results never depend on the thread count. */

/* e^x for x <= ~88 through vexp_normal. Lanes below -87
 * (where 2^n would leave the normal range) give exactly 0. */
static lpl_vf vexp(lpl_vf x)
{
    lpl_vf e = vexp_normal(lpl_vf_max(lpl_vf_min(x, lpl_vf_set1(88.0f)), lpl_vf_set1(-87.0f)));
    return lpl_vf_select_lt(x, lpl_vf_set1(-87.0f), lpl_vf_zero(), e);
}

/* row[j] = exp(row[j] * scale - shift) for j < n; returns the sum (in double). The
 * tail goes through a padded vector so every element sees the same arithmetic. */
static double exp_row(float *row, int n, float scale, float shift)
{
    lpl_vf vs = lpl_vf_set1(scale), vm = lpl_vf_set1(-shift), acc = lpl_vf_zero();
    int j = 0;
    for (; j + LPL_VW <= n; j += LPL_VW) {
        lpl_vf e = vexp(lpl_vf_add(lpl_vf_mul(lpl_vf_load(row + j), vs), vm));
        lpl_vf_store(row + j, e);
        acc = lpl_vf_add(acc, e);
    }
    double sum = lpl_vf_hsum(acc);
    if (j < n) {
        float buf[LPL_VW] = {0};
        memcpy(buf, row + j, (size_t)(n - j) * sizeof(float));
        lpl_vf_store(buf, vexp(lpl_vf_add(lpl_vf_mul(lpl_vf_load(buf), vs), vm)));
        for (int i = 0; i < n - j; i++) {
            row[j + i] = buf[i];
            sum += buf[i];
        }
    }
    return sum;
}

/* Per-thread scratch: a small set of slots, each grown on first use and kept for the
 * life of the process (no allocation per step once warm). A chunk takes a free slot
 * for its whole run; which slot it gets never affects results. */
#define ATTN_SLOTS 64
static float *attn_slot_buf[ATTN_SLOTS];
static size_t attn_slot_cap[ATTN_SLOTS];
static atomic_flag attn_slot_busy[ATTN_SLOTS] = {ATOMIC_FLAG_INIT};

/* Takes a slot holding at least n floats; returns its index and buffer, or -1 (no
 * slot free or out of memory: the caller then takes the per-pair path, which needs
 * only the caller's H*T scratch). */
static int attn_slot_take(size_t n, float **buf)
{
    for (int s = 0; s < ATTN_SLOTS; s++) {
        if (atomic_flag_test_and_set(&attn_slot_busy[s]))
            continue;
        if (attn_slot_cap[s] < n) {
            float *p = realloc(attn_slot_buf[s], n * sizeof(float));
            if (!p) {
                atomic_flag_clear(&attn_slot_busy[s]);
                return -1;
            }
            attn_slot_buf[s] = p;
            attn_slot_cap[s] = n;
        }
        *buf = attn_slot_buf[s];
        return s;
    }
    return -1;
}

static void attn_slot_give(int s) { atomic_flag_clear(&attn_slot_busy[s]); }

/* Q, K, V are row-strided views: head h reads Q at column h*hd of q, and K, V at
 * column (h / group)*hd of k, v, where group = H / KV query heads share one key/value
 * head (grouped-query attention; GPT-2 has KV = H). */
typedef struct {
    float *out, *lse, *scratch; /* scratch: a row per head, for the slow path */
    float *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *fout, *flse;
    size_t qs, kvs, os;         /* row strides of q; of k and v; of out and dout */
    int T, H, KV, hd;
    const lpl_attn_dropout *drop; /* NULL: no dropout */
} attn_ctx;

static const float *q_at(const attn_ctx *c, int t, int h) { return c->q + (size_t)t * c->qs + (size_t)h * c->hd; }
static const float *k_at(const attn_ctx *c, int t, int h)
{
    return c->k + (size_t)t * c->kvs + (size_t)(h / (c->H / c->KV)) * c->hd;
}
static const float *v_at(const attn_ctx *c, int t, int h)
{
    return c->v + (size_t)t * c->kvs + (size_t)(h / (c->H / c->KV)) * c->hd;
}

/* The dropout multiplier of query i, key j in head h (1 without dropout). */
static float attn_keep(const attn_ctx *c, int h, int i, int j)
{
    if (!c->drop)
        return 1.0f;
    uint64_t idx = (uint64_t)h << 32 | (uint64_t)i << 16 | (uint64_t)j;
    return lpl_dropout_scale(c->drop->key, c->drop->stream, idx, c->drop->p);
}

/* dst[T][hd] = hd columns of rows strided by stride starting at src. */
static void gather(float *dst, const float *src, int T, int hd, size_t stride)
{
    for (int t = 0; t < T; t++)
        memcpy(dst + (size_t)t * hd, src + (size_t)t * stride, (size_t)hd * sizeof(float));
}

/* dst (rows strided by stride) += src[T][hd]. */
static void scatter_add(float *dst, const float *src, int T, int hd, size_t stride)
{
    for (int t = 0; t < T; t++)
        for (int d = 0; d < hd; d++)
            dst[(size_t)t * stride + d] += src[(size_t)t * hd + d];
}

/* Query rows per block: a block of rows only needs keys up to its last row, which
 * skips most of the masked upper triangle. */
#define ATTN_BQ 32

/* Scratch for one forward head: S[BQ][T], Q, K, V, O [T][hd]. */
static size_t attn_forward_floats(int T, int hd) { return (size_t)ATTN_BQ * T + 4 * (size_t)T * hd; }

/* The per-pair path, used only if scratch could not be had. */
static void attn_forward_head_slow(const attn_ctx *c, int h, float *s)
{
    const int T = c->T, hd = c->hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < T; i++) {
        const float *q = q_at(c, i, h);
        float mx = -INFINITY;
        for (int j = 0; j <= i; j++) {
            s[j] = lpl_dot(q, k_at(c, j, h), hd) * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        double sum = exp_row(s, i + 1, 1.0f, mx);
        float inv = (float)(1.0 / sum), *o = c->out + (size_t)i * c->os + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j <= i; j++)
            lpl_axpy(o, s[j] * inv * attn_keep(c, h, i, j), v_at(c, j, h), hd);
        c->lse[(size_t)h * T + i] = mx + (float)log(sum);
    }
}

static void attn_forward_head(const attn_ctx *c, int h, float *w)
{
    const int T = c->T, hd = c->hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *S = w, *Q = S + (size_t)ATTN_BQ * T, *K = Q + (size_t)T * hd, *V = K + (size_t)T * hd;
    float *O = V + (size_t)T * hd;
    gather(Q, q_at(c, 0, h), T, hd, c->qs);
    gather(K, k_at(c, 0, h), T, hd, c->kvs);
    gather(V, v_at(c, 0, h), T, hd, c->kvs);
    for (int i0 = 0; i0 < T; i0 += ATTN_BQ) {
        int i1 = i0 + ATTN_BQ < T ? i0 + ATTN_BQ : T; /* rows [i0, i1) see keys [0, i1) */
        lpl_matmul_nt(S, Q + (size_t)i0 * hd, K, i1 - i0, i1, hd, 0);
        for (int i = i0; i < i1; i++) {
            float *s = S + (size_t)(i - i0) * i1, mx = -INFINITY;
            for (int j = 0; j <= i; j++)
                mx = s[j] > mx ? s[j] : mx;
            mx *= scale;
            double sum = exp_row(s, i + 1, scale, mx);
            float inv = (float)(1.0 / sum);
            for (int j = 0; j <= i; j++)
                s[j] *= inv;
            if (c->drop)
                for (int j = 0; j <= i; j++)
                    s[j] *= attn_keep(c, h, i, j);
            memset(s + i + 1, 0, (size_t)(i1 - i - 1) * sizeof(float));
            c->lse[(size_t)h * T + i] = mx + (float)log(sum);
        }
        lpl_matmul_nn(O + (size_t)i0 * hd, S, V, i1 - i0, hd, i1, 0);
    }
    for (int t = 0; t < T; t++)
        memcpy(c->out + (size_t)t * c->os + (size_t)h * hd, O + (size_t)t * hd, (size_t)hd * sizeof(float));
}

typedef void (*attn_head_fn)(const attn_ctx *c, int h, float *work);

/* Runs heads [begin, end) on the fast path with one scratch slot of `floats`, or on the
 * per-pair path in the caller's H*T scratch when no slot can be had. */
static void attn_run_heads(const attn_ctx *c, int begin, int end, size_t floats, attn_head_fn fast,
                           attn_head_fn slow)
{
    float *w = NULL;
    int slot = attn_slot_take(floats, &w);
    for (int h = begin; h < end; h++) {
        if (slot >= 0)
            fast(c, h, w);
        else
            slow(c, h, c->scratch + (size_t)h * c->T);
    }
    if (slot >= 0)
        attn_slot_give(slot);
}

static void attn_forward_heads(void *p, int begin, int end)
{
    const attn_ctx *c = p;
    attn_run_heads(c, begin, end, attn_forward_floats(c->T, c->hd), attn_forward_head, attn_forward_head_slow);
}

/* The dropout to apply, or NULL when there is none. */
static const lpl_attn_dropout *active(const lpl_attn_dropout *d) { return d && d->p > 0.0f ? d : NULL; }

static void attention_forward(attn_ctx *c)
{
    lpl_parallel_for(c->H, 1, attn_forward_heads, c);
}

void lpl_attention_forward(float *out, float *lse, const float *qkv, int T, int C, int H,
                           float *scratch, const lpl_attn_dropout *drop)
{
    attn_ctx c = {.out = out, .lse = lse, .scratch = scratch, .q = qkv, .k = qkv + C, .v = qkv + 2 * C,
                  .qs = 3 * (size_t)C, .kvs = 3 * (size_t)C, .os = (size_t)C, .T = T, .H = H, .KV = H,
                  .hd = C / H, .drop = active(drop)};
    attention_forward(&c);
}

void lpl_attention_gqa_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                               int T, int H, int KV, int hd, float *scratch, const lpl_attn_dropout *drop)
{
    attn_ctx c = {.out = out, .lse = lse, .scratch = scratch, .q = q, .k = k, .v = v,
                  .qs = (size_t)H * hd, .kvs = (size_t)KV * hd, .os = (size_t)H * hd, .T = T, .H = H,
                  .KV = KV, .hd = hd, .drop = active(drop)};
    attention_forward(&c);
}

/* Scratch for one backward head: P, dS [BQ][T]; Q, K, V, dO, dQ, dK, dV [T][hd]. */
static size_t attn_backward_floats(int T, int hd)
{
    return 2 * (size_t)ATTN_BQ * T + 7 * (size_t)T * hd;
}

static float *dq_at(const attn_ctx *c, int t, int h) { return c->dq + (size_t)t * c->qs + (size_t)h * c->hd; }
static float *dk_at(const attn_ctx *c, int t, int h)
{
    return c->dk + (size_t)t * c->kvs + (size_t)(h / (c->H / c->KV)) * c->hd;
}
static float *dv_at(const attn_ctx *c, int t, int h)
{
    return c->dv + (size_t)t * c->kvs + (size_t)(h / (c->H / c->KV)) * c->hd;
}

/* Per row i: p_j = exp(s_ij - lse_i), m_j its dropout multiplier; dp_j = m_j dO_i.v_j;
 * ds_j = p_j (dp_j - dO_i.O_i); dq_i += scale ds_j k_j; dk_j += scale ds_j q_i;
 * dv_j += m_j p_j dO_i. (O_i = sum m_j p_j v_j, so dO_i.O_i = sum p_j dp_j.) */
static void attn_backward_head_slow(const attn_ctx *c, int h, float *pr)
{
    const int T = c->T, hd = c->hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < T; i++) {
        const float *q = q_at(c, i, h);
        const float *dO = c->dout + (size_t)i * c->os + (size_t)h * hd;
        const float *O = c->fout + (size_t)i * c->os + (size_t)h * hd;
        float *dq = dq_at(c, i, h);
        float D = lpl_dot(dO, O, hd);
        for (int j = 0; j <= i; j++)
            pr[j] = lpl_dot(q, k_at(c, j, h), hd);
        exp_row(pr, i + 1, scale, c->flse[(size_t)h * T + i]);
        for (int j = 0; j <= i; j++) {
            const float *k = k_at(c, j, h), *v = v_at(c, j, h);
            float m = attn_keep(c, h, i, j);
            float ds = pr[j] * (m * lpl_dot(dO, v, hd) - D) * scale;
            lpl_axpy(dq, ds, k, hd);
            lpl_axpy(dk_at(c, j, h), ds, q, hd);
            lpl_axpy(dv_at(c, j, h), pr[j] * m, dO, hd);
        }
    }
}

/* The same as matrices, a block of query rows at a time: P from S and lse, M the
 * dropout multipliers (all 1 without dropout); dV += (M P)^T dO; dP = M dO V^T;
 * dS = P (dP - D) scale; dQ = dS K; dK += dS^T Q. (c->fout is not needed: D comes
 * from P and dP.) */
static void attn_backward_head(const attn_ctx *c, int h, float *w)
{
    const int T = c->T, hd = c->hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t th = (size_t)T * hd;
    float *P = w, *dS = P + (size_t)ATTN_BQ * T, *Q = dS + (size_t)ATTN_BQ * T, *K = Q + th;
    float *V = K + th, *dO = V + th, *dQ = dO + th, *dK = dQ + th, *dV = dK + th;
    gather(Q, q_at(c, 0, h), T, hd, c->qs);
    gather(K, k_at(c, 0, h), T, hd, c->kvs);
    gather(V, v_at(c, 0, h), T, hd, c->kvs);
    gather(dO, c->dout + (size_t)h * hd, T, hd, c->os);
    memset(dK, 0, 2 * th * sizeof(float)); /* dK and dV accumulate over blocks */
    for (int i0 = 0; i0 < T; i0 += ATTN_BQ) {
        int i1 = i0 + ATTN_BQ < T ? i0 + ATTN_BQ : T, m = i1 - i0;
        const float *Qb = Q + (size_t)i0 * hd, *dOb = dO + (size_t)i0 * hd;
        lpl_matmul_nt(P, Qb, K, m, i1, hd, 0);
        lpl_matmul_nt(dS, dOb, V, m, i1, hd, 0);
        for (int i = i0; i < i1; i++) {
            float *p = P + (size_t)(i - i0) * i1, *ds = dS + (size_t)(i - i0) * i1;
            exp_row(p, i + 1, scale, c->flse[(size_t)h * T + i]);
            if (c->drop) /* dp_j = m_j (dO V^T)_j; P becomes M P for dV below */
                for (int j = 0; j <= i; j++)
                    ds[j] *= attn_keep(c, h, i, j);
            /* D = dO_i.O_i, taken as sum p_j dp_j: the same products as dp, so a
             * one-hot row gives ds exactly 0 (dO.O by another summation order leaves
             * rounding noise that huge q, k blow up) */
            double Dd = 0.0;
            for (int j = 0; j <= i; j++)
                Dd += (double)p[j] * ds[j];
            float D = (float)Dd;
            for (int j = 0; j <= i; j++)
                ds[j] = p[j] * (ds[j] - D) * scale;
            if (c->drop)
                for (int j = 0; j <= i; j++)
                    p[j] *= attn_keep(c, h, i, j);
            memset(p + i + 1, 0, (size_t)(i1 - i - 1) * sizeof(float));
            memset(ds + i + 1, 0, (size_t)(i1 - i - 1) * sizeof(float));
        }
        lpl_matmul_tn(dV, P, dOb, i1, hd, m, 1);
        lpl_matmul_nn(dQ + (size_t)i0 * hd, dS, K, m, hd, i1, 0);
        lpl_matmul_tn(dK, dS, Qb, i1, hd, m, 1);
    }
    scatter_add(dq_at(c, 0, h), dQ, T, hd, c->qs);
    scatter_add(dk_at(c, 0, h), dK, T, hd, c->kvs);
    scatter_add(dv_at(c, 0, h), dV, T, hd, c->kvs);
}

/* Jobs are key/value heads: the query heads of a group add into the same dK and
 * dV, so one job runs them all, in head order (results never depend on threads). */
static void attn_backward_groups(void *p, int begin, int end)
{
    const attn_ctx *c = p;
    const int group = c->H / c->KV;
    attn_run_heads(c, begin * group, end * group, attn_backward_floats(c->T, c->hd), attn_backward_head,
                   attn_backward_head_slow);
}

void lpl_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                            const float *lse, int T, int C, int H, float *scratch,
                            const lpl_attn_dropout *drop)
{
    attn_ctx c = {.dq = dqkv, .dk = dqkv + C, .dv = dqkv + 2 * C, .scratch = scratch, .q = qkv, .k = qkv + C,
                  .v = qkv + 2 * C, .qs = 3 * (size_t)C, .kvs = 3 * (size_t)C, .os = (size_t)C, .dout = dout,
                  .fout = out, .flse = lse, .T = T, .H = H, .KV = H, .hd = C / H, .drop = active(drop)};
    lpl_parallel_for(H, 1, attn_backward_groups, &c);
}

void lpl_attention_gqa_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                const float *k, const float *v, const float *out, const float *lse, int T,
                                int H, int KV, int hd, float *scratch, const lpl_attn_dropout *drop)
{
    attn_ctx c = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v,
                  .qs = (size_t)H * hd, .kvs = (size_t)KV * hd, .os = (size_t)H * hd, .dout = dout,
                  .fout = out, .flse = lse, .T = T, .H = H, .KV = KV, .hd = hd, .drop = active(drop)};
    lpl_parallel_for(KV, 1, attn_backward_groups, &c);
}

/* ---------------- cross-entropy ---------------- */

typedef struct {
    float *nll, *dlogits, *lse_out;
    const float *logits, *lse;
    const int *targets;
    const uint8_t *mask;
    int V;
    float scale;
} ce_ctx;

/* max and sum of exp(z - max) of one row; the sum is accumulated in double. */
static void row_softmax_stats(const float *z, int V, float *mx, double *sum)
{
    float m = z[0];
    for (int i = 1; i < V; i++)
        if (z[i] > m)
            m = z[i];
    double s = 0.0;
    for (int i = 0; i < V; i++)
        s += expf(z[i] - m);
    *mx = m;
    *sum = s;
}

static void ce_forward_rows(void *p, int begin, int end)
{
    const ce_ctx *c = p;
    for (int t = begin; t < end; t++) {
        if (c->mask && !c->mask[t]) {
            c->nll[t] = 0.0f;
            continue;
        }
        const float *z = c->logits + (size_t)t * c->V;
        float mx;
        double sum;
        row_softmax_stats(z, c->V, &mx, &sum);
        double lse = (double)mx + log(sum);
        c->nll[t] = (float)(lse - (double)z[c->targets[t]]);
        if (c->lse_out)
            c->lse_out[t] = (float)lse;
    }
}

void lpl_crossentropy_forward(float *nll, float *lse, const float *logits, const int *targets,
                              const uint8_t *mask, int T, int V)
{
    ce_ctx c = {.nll = nll, .lse_out = lse, .logits = logits, .targets = targets, .mask = mask, .V = V};
    lpl_parallel_for(T, rows_per_chunk(V), ce_forward_rows, &c);
}

static void ce_backward_rows(void *p, int begin, int end)
{
    const ce_ctx *c = p;
    for (int t = begin; t < end; t++) {
        float *d = c->dlogits + (size_t)t * c->V;
        if (c->mask && !c->mask[t]) {
            memset(d, 0, (size_t)c->V * sizeof(float));
            continue;
        }
        const float *z = c->logits + (size_t)t * c->V;
        float lse;
        if (c->lse) {
            lse = c->lse[t];
        } else {
            float mx;
            double sum;
            row_softmax_stats(z, c->V, &mx, &sum);
            lse = (float)((double)mx + log(sum));
        }
        for (int i = 0; i < c->V; i++)
            d[i] = expf(z[i] - lse) * c->scale;
        d[c->targets[t]] -= c->scale;
    }
}

void lpl_crossentropy_backward(float *dlogits, const float *logits, const float *lse,
                               const int *targets, const uint8_t *mask, int T, int V, float scale)
{
    ce_ctx c = {.dlogits = dlogits, .logits = logits, .lse = lse, .targets = targets, .mask = mask, .V = V,
                .scale = scale};
    lpl_parallel_for(T, rows_per_chunk(2 * (int64_t)V), ce_backward_rows, &c);
}

void lpl_residual_forward(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}
