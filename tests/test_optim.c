/* AdamW against values recorded from torch.optim.AdamW (torch 1.13, float32), the
 * schedules against hand-computed values of transformers' schedulers, gradient
 * clipping against torch.nn.utils.clip_grad_norm_, and the generator's determinism. */
#include "check.h"
#include "lpl/model/optim.h"
#include "lpl/core/rng.h"

#include <string.h>

static void test_adamw(void)
{
    /* torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
     * p = [1, -2, 0.5, 0], three steps with the grads below */
    static const float grads[3][4] = {{0.1f, -0.2f, 0.3f, 0.0f}, {0.05f, 0.4f, -0.3f, 1e-3f}, {-0.2f, 0.1f, 0.0f, 2.0f}};
    static const double torch_p[3][4] = {
        {0.989000022, -1.98800004, 0.489500016, 0},
        {0.978689253, -1.98967314, 0.489536822, -0.00744126271},
        {0.979774177, -1.99184, 0.48945412, -0.0138248317},
    };
    lpl_adamw_config c;
    lpl_adamw_config_default(&c);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0.0f, "defaults");
    c.weight_decay = 0.1f;
    lpl_adamw o;
    CHECK(lpl_adamw_init(&o, &c, 4, NULL) == LPL_OK, "init");
    float p[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    for (int s = 0; s < 3; s++) {
        lpl_adamw_step(&o, p, grads[s], 0.01f);
        for (int i = 0; i < 4; i++)
            CHECK_CLOSE(p[i], torch_p[s][i], 2e-7, 2e-7, "adamw vs torch");
    }
    CHECK(o.t == 3, "step counter %lld", (long long)o.t);
    lpl_adamw_free(&o);
}

static void test_schedules(void)
{
    const float lr = 1e-3f;
    /* warmup 10 of 100 steps: ramp step/10, then the decay over the remaining 90 */
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 0, 10, 100), 0.0, 1e-12, 0, "cosine step 0");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 5, 10, 100), 5e-4, 1e-10, 1e-6, "cosine mid-warmup");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 10, 10, 100), 1e-3, 1e-10, 1e-6, "cosine warmup end");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 55, 10, 100), 5e-4, 1e-10, 1e-6, "cosine midpoint");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 32, 10, 100),
                1e-3 * 0.5 * (1 + cos(3.14159265358979 * 22.0 / 90.0)), 1e-10, 1e-6, "cosine step 32");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, lr, 100, 10, 100), 0.0, 1e-12, 0, "cosine end");
    /* no warmup: the first step runs at the full rate (the study's setting) */
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, 2e-4f, 0, 0, 300), 2e-4, 1e-12, 1e-6, "cosine no warmup step 0");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_COSINE, 2e-4f, 150, 0, 300), 1e-4, 1e-12, 1e-6, "cosine no warmup half");

    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 5, 10, 100), 5e-4, 1e-10, 1e-6, "linear warmup");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 10, 10, 100), 1e-3, 1e-10, 1e-6, "linear warmup end");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 55, 10, 100), 5e-4, 1e-10, 1e-6, "linear midpoint");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 91, 10, 100), 1e-4, 1e-10, 1e-6, "linear step 91");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 100, 10, 100), 0.0, 1e-12, 0, "linear end");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_LINEAR, lr, 120, 10, 100), 0.0, 1e-12, 0, "linear past the end");

    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_CONSTANT, lr, 0, 0, 100), 1e-3, 1e-12, 1e-6, "constant");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_CONSTANT, lr, 3, 4, 100), 7.5e-4, 1e-12, 1e-6, "constant warmup");
    CHECK_CLOSE(lpl_schedule_lr(LPL_SCHED_CONSTANT, lr, 99, 4, 100), 1e-3, 1e-12, 1e-6, "constant after warmup");

    lpl_schedule k;
    lpl_error err;
    CHECK(lpl_schedule_parse("cosine", &k, &err) == LPL_OK && k == LPL_SCHED_COSINE, "parse cosine");
    CHECK(lpl_schedule_parse("linear", &k, &err) == LPL_OK && k == LPL_SCHED_LINEAR, "parse linear");
    CHECK(lpl_schedule_parse("constant", &k, &err) == LPL_OK && k == LPL_SCHED_CONSTANT, "parse constant");
    CHECK(lpl_schedule_parse("cosin", &k, &err) == LPL_ERR_INVALID && strstr(err.msg, "'cosin'"),
          "unknown schedule named: %s", err.msg);
}

static void test_clip(void)
{
    float g[2] = {3.0f, 4.0f};
    double n = lpl_clip_grad_norm(g, 2, 1.0);
    CHECK_CLOSE(n, 5.0, 1e-12, 0, "norm before clipping");
    /* torch: coef = max_norm / (norm + 1e-6) */
    CHECK_CLOSE(g[0], 3.0 / (5.0 + 1e-6), 1e-7, 0, "clipped g0");
    CHECK_CLOSE(g[1], 4.0 / (5.0 + 1e-6), 1e-7, 0, "clipped g1");
    float h[3] = {0.1f, -0.2f, 0.2f};
    n = lpl_clip_grad_norm(h, 3, 1.0);
    CHECK_CLOSE(n, 0.3, 1e-7, 0, "small norm");
    CHECK(h[0] == 0.1f && h[1] == -0.2f && h[2] == 0.2f, "below max_norm: untouched");
    float big[2] = {30.0f, 40.0f};
    n = lpl_clip_grad_norm(big, 2, 0.0);
    CHECK(n == 50.0 && big[0] == 30.0f, "max_norm 0: no clipping");
}

static void test_rng(void)
{
    lpl_rng a, b;
    lpl_rng_seed(&a, 42);
    lpl_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= lpl_rng_next(&a) == lpl_rng_next(&b);
    CHECK(same, "same seed, same stream");
    lpl_rng_seed(&b, 43);
    CHECK(lpl_rng_next(&a) != lpl_rng_next(&b), "different seeds differ");
    double s = 0, ss = 0, umin = 1, umax = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = lpl_rng_uniform(&a);
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
        double z = lpl_rng_normal(&a);
        s += z;
        ss += z * z;
    }
    CHECK(umin >= 0.0 && umax < 1.0 && umax > 0.999, "uniform range [%g, %g]", umin, umax);
    CHECK(fabs(s / n) < 0.01, "normal mean %g", s / n);
    CHECK(fabs(ss / n - 1.0) < 0.02, "normal variance %g", ss / n);
}

int main(void)
{
    test_adamw();
    test_schedules();
    test_clip();
    test_rng();
    return check_report("test_optim");
}
