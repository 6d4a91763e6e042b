/* Kernel tests: the library self-check (every kernel against a reference loop on
 * awkward shapes) at several thread counts, bitwise thread-count independence,
 * fp16 rounding against the compiler's _Float16, dtype helpers and error messages.
 * `test_kernels --dump` prints the kernel fingerprint JSON (for the wasm parity test). */
#include "check.h"
#include "kernels_check.h"
#include "lpl/core/kernels.h"
#include "lpl/core/threads.h"

#include <string.h>

static void selfcheck_at(int threads)
{
    char report[1024];
    lpl_error err;
    CHECK(lpl_threads_init(threads, &err) == LPL_OK, "threads_init(%d): %s", threads, err.msg);
    int failures = lpl_kernels_selfcheck(report, sizeof report);
    CHECK(failures == 0, "self-check with %d threads: %s", threads, report);
    CHECK(strstr(report, "\"failures\":0") != NULL || failures, "report %s", report);
    printf("self-check, %d threads: %s\n", threads, report);
}

static char *fingerprint_at(int threads)
{
    lpl_threads_init(threads, NULL);
    size_t n = lpl_kernels_fingerprint(NULL, 0);
    char *s = malloc(n + 1);
    if (s)
        lpl_kernels_fingerprint(s, n + 1);
    return s;
}

static void test_thread_independence(void)
{
    char *one = fingerprint_at(1), *two = fingerprint_at(2), *three = fingerprint_at(3);
    CHECK(one && two && three, "out of memory");
    if (one && two && three) {
        CHECK(strlen(one) > 1000, "fingerprint too short: %zu", strlen(one));
        CHECK(strcmp(one, two) == 0, "results differ between 1 and 2 threads");
        CHECK(strcmp(one, three) == 0, "results differ between 1 and 3 threads");
    }
    CHECK(lpl_threads_used() > 1, "only %d thread(s) ever ran kernel work", lpl_threads_used());
    free(one), free(two), free(three);
}

static void test_fp16_against_compiler(void)
{
#ifdef __FLT16_MAX__
    /* every 65,537th float bit pattern (all exponents, signs and many mantissas) */
    int bad = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 65537) {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        if (f != f)
            continue;
        _Float16 h = (_Float16)f;
        uint16_t want;
        memcpy(&want, &h, 2);
        uint16_t got = lpl_fp32_to_fp16(f);
        if (got != want && bad++ < 5)
            CHECK(got == want, "fp32_to_fp16(%a) = 0x%04x, compiler says 0x%04x", f, got, want);
        float back = lpl_fp16_to_fp32(want);
        if (back != (float)h && bad++ < 5)
            CHECK(back == (float)h, "fp16_to_fp32(0x%04x) = %a, compiler says %a", want, back,
                  (float)h);
    }
    /* midpoints between neighbouring halves (ties) and the floats next to them */
    for (uint32_t hb = 0; hb < 0x7c00; hb++) {
        _Float16 lo, hi;
        uint16_t lb = (uint16_t)hb, ub = (uint16_t)(hb + 1);
        memcpy(&lo, &lb, 2);
        memcpy(&hi, &ub, 2);
        float mid = ((float)lo + (float)hi) * 0.5f; /* exact: fp16 has 11 bits */
        float probes[3] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
        for (int i = 0; i < 3; i++)
            for (int sgn = 0; sgn < 2; sgn++) {
                float f = sgn ? -probes[i] : probes[i];
                _Float16 h = (_Float16)f;
                uint16_t want, got = lpl_fp32_to_fp16(f);
                memcpy(&want, &h, 2);
                if (got != want && bad++ < 5)
                    CHECK(got == want, "fp32_to_fp16(%a) = 0x%04x, compiler says 0x%04x", f, got, want);
            }
    }
    CHECK(bad == 0, "%d fp16 conversions disagree with the compiler", bad);
#else
    printf("no _Float16 in this compiler: fp16 sweep skipped (self-check covers fixed cases)\n");
#endif
}

static void test_rows(void)
{
    float x[64], y[64];
    uint16_t h[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 30) * 0.37f;
    lpl_fp32_to_fp16_row(x, h, 64);
    lpl_fp16_to_fp32_row(h, y, 64);
    int ok = 1;
    for (int i = 0; i < 64; i++)
        ok &= fabsf(y[i] - x[i]) <= fabsf(x[i]) * 0x1p-11f && h[i] == lpl_fp32_to_fp16(x[i]);
    CHECK(ok, "fp16 row conversion");

    CHECK(lpl_dtype_row_bytes(LPL_F32, 10) == 40, "f32 row bytes");
    CHECK(lpl_dtype_row_bytes(LPL_F16, 10) == 20, "f16 row bytes");
    CHECK(lpl_dtype_row_bytes(LPL_BF16, 3) == 6, "bf16 row bytes");
    CHECK(lpl_dtype_row_bytes(LPL_Q8_0, 768) == 24 * 34, "q8_0 row bytes");
    CHECK(lpl_dtype_row_bytes(LPL_Q4_0, 64) == 36, "q4_0 row bytes");
    CHECK(lpl_dtype_row_bytes(LPL_Q8_0, 33) == 0, "q8_0 row of 33");
    CHECK(lpl_dtype_row_bytes((lpl_dtype)5, 32) == 0, "unknown type row bytes");
    CHECK(strcmp(lpl_dtype_name(LPL_Q8_0), "q8_0") == 0 && strcmp(lpl_dtype_name(LPL_BF16), "bf16") == 0 &&
          strcmp(lpl_dtype_name((lpl_dtype)77), "?") == 0, "dtype names");

    lpl_error err;
    lpl_block_q8_0 q[2];
    CHECK(lpl_convert_row(LPL_Q8_0, x, q, 48, &err) == LPL_ERR_INVALID, "q8_0 of 48 accepted");
    CHECK(strcmp(err.msg, "convert row: q8_0 needs a length that is a multiple of 32, got 48") == 0,
          "message: %s", err.msg);
    CHECK(lpl_convert_row(LPL_BF16, x, h, 4, &err) == LPL_ERR_INVALID, "bf16 target accepted");
    CHECK(strcmp(err.msg, "convert row: cannot convert to type bf16 (30)") == 0, "message: %s", err.msg);
    CHECK(lpl_convert_row(LPL_Q8_0, x, q, 64, &err) == LPL_OK, "q8_0 of 64 refused");
    /* Q8_0 round trip error is at most half a step (plus the fp16 rounding of d) */
    lpl_dequantize_row(LPL_Q8_0, q, y, 64);
    ok = 1;
    for (int i = 0; i < 64; i++) {
        float d = lpl_fp16_to_fp32(q[i / 32].d);
        ok &= fabsf(y[i] - x[i]) <= 0.5f * d + 127.0f * d * 0x1p-11f;
    }
    CHECK(ok, "q8_0 round trip error");
    float z[8];
    lpl_dequantize_row((lpl_dtype)5, q, z, 8);
    CHECK(z[0] == 0.0f && z[7] == 0.0f, "unknown type dequantizes to zeros");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump") == 0) {
        char *s = fingerprint_at(0);
        if (!s)
            return 1;
        printf("%s\n", s);
        free(s);
        lpl_threads_shutdown();
        return 0;
    }
    selfcheck_at(1);
    selfcheck_at(2);
    selfcheck_at(0);
    test_thread_independence();
    test_fp16_against_compiler();
    test_rows();
    lpl_threads_shutdown();
    return check_report("test_kernels");
}
