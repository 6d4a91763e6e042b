/* AdamW (torch.optim.AdamW), learning-rate schedules (transformers' LambdaLR
 * factors), gradient clipping (torch.nn.utils.clip_grad_norm_) and the project's
 * deterministic random generator. */
#include "lpl/model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


void lpl_adamw_config_default(lpl_adamw_config *c)
{
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
}

lpl_status lpl_adamw_init(lpl_adamw *o, const lpl_adamw_config *c, int64_t n, lpl_error *err)
{
    memset(o, 0, sizeof *o);
    if (c)
        o->cfg = *c;
    else
        lpl_adamw_config_default(&o->cfg);
    if (n < 0)
        return lpl_fail(err, LPL_ERR_INVALID, "adamw: negative parameter count %lld", (long long)n);
    o->m = lpl_calloc((size_t)n, sizeof(float), "adamw first moments", err);
    o->v = lpl_calloc((size_t)n, sizeof(float), "adamw second moments", err);
    if (!o->m || !o->v) {
        lpl_adamw_free(o);
        return LPL_ERR_NOMEM;
    }
    o->n = n;
    return LPL_OK;
}

void lpl_adamw_free(lpl_adamw *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
    o->n = 0;
}

/* Same order of operations as torch's single-tensor AdamW: decay the weights, update
 * the moments, then p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). */
void lpl_adamw_step(lpl_adamw *o, float *params, const float *grads, float lr)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    o->t++;
    double bc1 = 1.0 - pow((double)b1, (double)o->t);
    double bc2 = 1.0 - pow((double)b2, (double)o->t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float decay = 1.0f - lr * o->cfg.weight_decay;
    for (int64_t i = 0; i < o->n; i++) {
        float g = grads[i];
        float p = params[i] * decay;
        float m = o->m[i] * b1 + (1.0f - b1) * g;
        float v = o->v[i] * b2 + (1.0f - b2) * g * g;
        o->m[i] = m;
        o->v[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + eps;
        params[i] = p - step_size * (m / denom);
    }
}

float lpl_schedule_lr(lpl_schedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total)
{
    if (warmup < 0)
        warmup = 0;
    if (step < warmup)
        return (float)(base_lr * ((double)step / (double)(warmup > 1 ? warmup : 1)));
    double after = (double)(step - warmup);
    double span = (double)(total - warmup > 1 ? total - warmup : 1);
    double f = 1.0;
    switch (kind) {
    case LPL_SCHED_CONSTANT:
        f = 1.0;
        break;
    case LPL_SCHED_LINEAR:
        f = (double)(total - step) / span;
        break;
    case LPL_SCHED_COSINE:
        /* num_cycles = 0.5: half a cosine from 1 to 0 over the steps after warmup */
        f = 0.5 * (1.0 + cos(LPL_PI * (after / span)));
        break;
    }
    if (f < 0.0)
        f = 0.0;
    return (float)(base_lr * f);
}

lpl_status lpl_schedule_parse(const char *name, lpl_schedule *kind, lpl_error *err)
{
    if (name && strcmp(name, "constant") == 0)
        *kind = LPL_SCHED_CONSTANT;
    else if (name && strcmp(name, "linear") == 0)
        *kind = LPL_SCHED_LINEAR;
    else if (name && strcmp(name, "cosine") == 0)
        *kind = LPL_SCHED_COSINE;
    else
        return lpl_fail(err, LPL_ERR_INVALID,
                        "unknown schedule '%s' (expected constant, linear or cosine)",
                        name ? name : "(null)");
    return LPL_OK;
}

/* Summed serially in double so the norm does not depend on the thread count. */
double lpl_clip_grad_norm(float *g, int64_t n, double max_norm)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)g[i] * (double)g[i];
    double norm = sqrt(ss);
    if (max_norm > 0.0 && norm > max_norm) {
        float coef = (float)(max_norm / (norm + 1e-6));
        for (int64_t i = 0; i < n; i++)
            g[i] *= coef;
    }
    return norm;
}
