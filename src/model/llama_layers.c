/* Llama-family layers: RMSNorm, RoPE (rotate-half), SwiGLU. Rows are split across
 * the thread pool; weight gradients are summed serially in row order, so results
 * do not depend on the thread count. */
#include "lpl/model/llama_layers.h"

#include "lpl/core/threads.h"

#include <math.h>
#include <string.h>

/* Rows per chunk so that a chunk holds ~32K elements of work. */
static int rows_per_chunk(int64_t row_work)
{
    int64_t r = 32768 / (row_work > 0 ? row_work : 1);
    return r < 1 ? 1 : (int)r;
}

/* ---------------- RMSNorm ---------------- */

typedef struct {
    float *out, *rstd, *dinp;
    const float *inp, *w, *dout, *crstd;
    int C;
    float eps;
} rms_ctx;

static void rms_forward_rows(void *p, int begin, int end)
{
    const rms_ctx *c = p;
    const int C = c->C;
    for (int t = begin; t < end; t++) {
        const float *x = c->inp + (size_t)t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++)
            ss += (double)x[i] * x[i];
        float rs = (float)(1.0 / sqrt(ss / C + c->eps));
        float *o = c->out + (size_t)t * C;
        for (int i = 0; i < C; i++)
            o[i] = x[i] * rs * c->w[i];
        c->rstd[t] = rs;
    }
}

void lpl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int T, int C, float eps)
{
    rms_ctx c = {.out = out, .rstd = rstd, .inp = inp, .w = w, .C = C, .eps = eps};
    lpl_parallel_for(T, rows_per_chunk(C), rms_forward_rows, &c);
}

/* y = w x r, r = (mean x^2 + eps)^-1/2: dx = r (w dy) - x r^3 mean(w dy x). */
static void rms_backward_rows(void *p, int begin, int end)
{
    const rms_ctx *c = p;
    const int C = c->C;
    for (int t = begin; t < end; t++) {
        const float *x = c->inp + (size_t)t * C, *dy = c->dout + (size_t)t * C;
        float *dx = c->dinp + (size_t)t * C;
        const float rs = c->crstd[t];
        double dot = 0.0;
        for (int i = 0; i < C; i++)
            dot += (double)dy[i] * c->w[i] * x[i];
        float k = (float)(dot / C) * rs * rs * rs;
        for (int i = 0; i < C; i++)
            dx[i] += dy[i] * c->w[i] * rs - x[i] * k;
    }
}

void lpl_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, int T, int C)
{
    rms_ctx c = {.dinp = dinp, .inp = inp, .w = w, .dout = dout, .crstd = rstd, .C = C};
    if (dinp)
        lpl_parallel_for(T, rows_per_chunk(C), rms_backward_rows, &c);
    if (dw)
        for (int t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * C, *dy = dout + (size_t)t * C;
            for (int i = 0; i < C; i++)
                dw[i] += dy[i] * x[i] * rstd[t];
        }
}

/* ---------------- RoPE ---------------- */

void lpl_rope_table(float *table, int T, int hd, float theta)
{
    const int half = hd / 2;
    float *cs = table, *sn = table + (size_t)T * half;
    for (int i = 0; i < half; i++) {
        /* HF: inv_freq = 1 / theta^(2i/hd) */
        double inv = 1.0 / pow((double)theta, (double)(2 * i) / hd);
        for (int t = 0; t < T; t++) {
            double a = (double)t * inv;
            cs[(size_t)t * half + i] = (float)cos(a);
            sn[(size_t)t * half + i] = (float)sin(a);
        }
    }
}

typedef struct {
    float *x;
    const float *table;
    int T, n_heads, hd;
    float sign; /* +1 forward, -1 the transpose */
} rope_ctx;

static void rope_rows(void *p, int begin, int end)
{
    const rope_ctx *c = p;
    const int half = c->hd / 2;
    const float *cs = c->table, *sn = c->table + (size_t)c->T * half;
    for (int t = begin; t < end; t++) {
        const float *ct = cs + (size_t)t * half, *st = sn + (size_t)t * half;
        for (int h = 0; h < c->n_heads; h++) {
            float *a = c->x + ((size_t)t * c->n_heads + h) * c->hd, *b = a + half;
            for (int i = 0; i < half; i++) {
                float s = c->sign * st[i], x0 = a[i], x1 = b[i];
                a[i] = x0 * ct[i] - x1 * s;
                b[i] = x1 * ct[i] + x0 * s;
            }
        }
    }
}

void lpl_rope_forward(float *x, const float *table, int T, int n_heads, int hd)
{
    rope_ctx c = {x, table, T, n_heads, hd, 1.0f};
    lpl_parallel_for(T, rows_per_chunk((int64_t)n_heads * hd), rope_rows, &c);
}

void lpl_rope_backward(float *dx, const float *table, int T, int n_heads, int hd)
{
    rope_ctx c = {dx, table, T, n_heads, hd, -1.0f};
    lpl_parallel_for(T, rows_per_chunk((int64_t)n_heads * hd), rope_rows, &c);
}

/* ---------------- SwiGLU ---------------- */

typedef struct {
    float *h, *dg, *du;
    const float *g, *u, *dh;
} swiglu_ctx;

#define SWIGLU_CHUNK 8192

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

typedef struct {
    swiglu_ctx c;
    int64_t n;
} swiglu_job;

static void swiglu_forward_chunks(void *p, int begin, int end)
{
    const swiglu_job *j = p;
    int64_t a = (int64_t)begin * SWIGLU_CHUNK, b = (int64_t)end * SWIGLU_CHUNK;
    b = b < j->n ? b : j->n;
    for (int64_t i = a; i < b; i++) {
        float g = j->c.g[i];
        j->c.h[i] = g * sigmoid(g) * j->c.u[i];
    }
}

static void swiglu_backward_chunks(void *p, int begin, int end)
{
    const swiglu_job *j = p;
    int64_t a = (int64_t)begin * SWIGLU_CHUNK, b = (int64_t)end * SWIGLU_CHUNK;
    b = b < j->n ? b : j->n;
    for (int64_t i = a; i < b; i++) {
        float g = j->c.g[i], sg = sigmoid(g), dh = j->c.dh[i];
        j->c.du[i] += dh * g * sg;
        j->c.dg[i] += dh * j->c.u[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

static int n_chunks(int64_t n) { return (int)((n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK); }

void lpl_swiglu_forward(float *h, const float *g, const float *u, int64_t n)
{
    swiglu_job j = {{.h = h, .g = g, .u = u}, n};
    lpl_parallel_for(n_chunks(n), 1, swiglu_forward_chunks, &j);
}

void lpl_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n)
{
    swiglu_job j = {{.dg = dg, .du = du, .g = g, .u = u, .dh = dh}, n};
    lpl_parallel_for(n_chunks(n), 1, swiglu_backward_chunks, &j);
}
