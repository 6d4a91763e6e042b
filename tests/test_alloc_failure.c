/* Allocation failure becomes an error, not an abort: with the address space capped
 * (RLIMIT_AS), building a model or adapters that do not fit must return NULL with
 * LPL_ERR_NOMEM and an "out of memory: <what>" message, and the process must go on
 * working afterwards. Size arithmetic that overflows must be refused the same way.
 * Under AddressSanitizer the cap is skipped (ASan reserves terabytes of shadow
 * memory), only the overflow checks run. */
#include <string.h>
#include <sys/resource.h>

#include "check.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"

#if defined(__SANITIZE_ADDRESS__)
#define LPL_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LPL_UNDER_ASAN 1
#endif
#endif

static void test_overflow(void)
{
    lpl_error err;
    lpl_error_clear(&err);
    void *p = lpl_calloc(SIZE_MAX / 2, 4, "overflowing block", &err);
    CHECK(p == NULL && err.code == LPL_ERR_NOMEM && strstr(err.msg, "out of memory: overflowing block"),
          "calloc overflow: %s", err.msg);
    printf("overflowing size: %s\n", err.msg);
    free(p);
}

#ifndef LPL_UNDER_ASAN
/* Within a 1 GB address space: GPT-2 large (774M fp32 parameters, 3.1 GB) cannot be
 * created, a tiny model still can, before and after the failure. */
static void test_capped(void)
{
    struct rlimit old, cap;
    CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
    cap = old;
    cap.rlim_cur = (rlim_t)1 << 30;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < cap.rlim_cur)
        cap.rlim_cur = old.rlim_max;
    CHECK(setrlimit(RLIMIT_AS, &cap) == 0, "setrlimit");

    lpl_error err;
    lpl_error_clear(&err);
    lpl_gpt2_config big, tiny;
    CHECK(lpl_gpt2_preset("gpt2-large", &big, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gpt2_preset("tiny", &tiny, &err) == LPL_OK, "%s", err.msg);

    lpl_gpt2_model *m = lpl_gpt2_create_random(&big, 1, &err);
    CHECK(m == NULL && err.code == LPL_ERR_NOMEM && strstr(err.msg, "out of memory"),
          "gpt2-large under 1 GB: %s", m ? "created" : err.msg);
    printf("gpt2-large model under a 1 GB cap: %s\n", err.msg);
    lpl_gpt2_free(m);

    /* Adapters of rank 1024 on every linear layer of GPT-2 large: 36 layers x
     * 1024 x (3 x 1280 + 1280 + 2 x (1280 + 5120) + 1280 + 1280) floats, about 2.5 GB
     * of parameters plus as much for gradients. */
    lpl_lora_config lc;
    lpl_lora_config_default(&lc);
    lc.r = 1024;
    lpl_error_clear(&err);
    lpl_lora *l = lpl_lora_attach(&lc, &big, &err);
    CHECK(l == NULL && err.code == LPL_ERR_NOMEM && strstr(err.msg, "out of memory"),
          "rank-1024 adapters under 1 GB: %s", l ? "created" : err.msg);
    printf("rank-1024 adapters under a 1 GB cap: %s\n", err.msg);
    lpl_lora_free(l);

    lpl_error_clear(&err);
    lpl_gpt2_model *small = lpl_gpt2_create_random(&tiny, 1, &err);
    CHECK(small != NULL, "a tiny model after the failures: %s", err.msg);
    lpl_gpt2_free(small);

    CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restoring the address-space limit");
}
#endif

int main(void)
{
    test_overflow();
#ifdef LPL_UNDER_ASAN
    printf("address-space cap skipped under AddressSanitizer\n");
#else
    test_capped();
#endif
    return check_report("test_alloc_failure");
}
