/* AdamW, learning-rate schedules (transformers' semantics) and gradient clipping. */
#ifndef LPL_OPTIM_H
#define LPL_OPTIM_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

typedef struct {
    float beta1, beta2, eps, weight_decay; /* 0.9, 0.999, 1e-8, 0 */
} lpl_adamw_config;

typedef struct {
    lpl_adamw_config cfg;
    float *m, *v;
    int64_t n;
    int64_t t;  /* steps taken */
} lpl_adamw;

/* torch.optim.AdamW's defaults (betas 0.9/0.999, eps 1e-8, no weight decay). */
void lpl_adamw_config_default(lpl_adamw_config *c);
/* Allocates moment buffers for n parameters; LPL_ERR_NOMEM on failure. */
lpl_status lpl_adamw_init(lpl_adamw *o, const lpl_adamw_config *c, int64_t n, lpl_error *err);
/* Frees the moment buffers (not o itself). */
void lpl_adamw_free(lpl_adamw *o);
/* One AdamW step with learning rate lr (decoupled weight decay, bias correction as torch.optim.AdamW). */
void lpl_adamw_step(lpl_adamw *o, float *params, const float *grads, float lr);

typedef enum { LPL_SCHED_CONSTANT = 0, LPL_SCHED_LINEAR = 1, LPL_SCHED_COSINE = 2 } lpl_schedule;
/* lr at optimizer step `step` (0-based) of `total`, with linear warmup over `warmup`
 * steps, as transformers' get_{constant,linear,cosine}_schedule_with_warmup. */
float lpl_schedule_lr(lpl_schedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total);
/* "constant", "linear", "cosine" -> kind; LPL_ERR_INVALID names an unknown one. */
lpl_status lpl_schedule_parse(const char *name, lpl_schedule *kind, lpl_error *err);

/* Global L2 norm of g[0..n); if max_norm > 0 and the norm exceeds it, scales g by
 * max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_. Returns the norm before clipping. */
double lpl_clip_grad_norm(float *g, int64_t n, double max_norm);

LPL_END_DECLS

#endif
