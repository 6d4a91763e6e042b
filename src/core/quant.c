/* Element types: fp16/bf16 conversion and ggml's Q8_0/Q4_0 block quantization.
 * The quantizers follow ggml's reference (scalar) quantizers bit for bit, so a
 * file we write dequantizes the same in llama.cpp as here. */
#include "lpl/core/kernels.h"
#include "lpl/core/simd.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static_assert(sizeof(lpl_block_q8_0) == 34, "Q8_0 block must be 34 bytes as in ggml");
static_assert(sizeof(lpl_block_q4_0) == 18, "Q4_0 block must be 18 bytes as in ggml");

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float lpl_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf or nan; the payload moves to the top of the fp32 mantissa */
        return bits_to_float(sign | 0x7f800000u | (man << 13));
    if (exp != 0) /* rebias 15 -> 127 */
        return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24 is exact in fp32 */
    float f = (float)man * 0x1p-24f;
    return sign ? -f : f;
}

/* Rounds m / 2^shift to the nearest integer, ties to even (shift in 1..31). */
static uint32_t shift_round_even(uint32_t m, int shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

uint16_t lpl_fp32_to_fp16(float f)
{
    uint32_t x = float_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* nan stays a (quiet) nan with the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity (inf included) */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal fp16 range, >= 2^-14 */
        uint32_t r = shift_round_even(ax, 13) - (112u << 10);
        return (uint16_t)(sign | r); /* a carry into the exponent is the right result */
    }
    uint32_t e = ax >> 23;
    if (e < 102) /* below 2^-25: rounds to zero */
        return sign;
    /* subnormal: value = m * 2^(e-150); in units of 2^-24 that is m >> (126 - e) */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_round_even(m, (int)(126 - e)));
}

float lpl_bf16_to_fp32(uint16_t h)
{
    return bits_to_float((uint32_t)h << 16);
}

void lpl_fp16_to_fp32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + LPL_VW <= n; i += LPL_VW)
        lpl_vf_store(dst + i, lpl_vf_load_f16(p + 2 * i));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = lpl_fp16_to_fp32(h);
    }
}

void lpl_fp32_to_fp16_row(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = lpl_fp32_to_fp16(src[i]);
}

size_t lpl_dtype_row_bytes(lpl_dtype t, int64_t n)
{
    if (n < 0)
        return 0;
    switch (t) {
    case LPL_F32: return (size_t)n * 4;
    case LPL_F16:
    case LPL_BF16: return (size_t)n * 2;
    case LPL_Q8_0: return n % LPL_QK ? 0 : (size_t)(n / LPL_QK) * sizeof(lpl_block_q8_0);
    case LPL_Q4_0: return n % LPL_QK ? 0 : (size_t)(n / LPL_QK) * sizeof(lpl_block_q4_0);
    }
    return 0;
}

const char *lpl_dtype_name(lpl_dtype t)
{
    switch (t) {
    case LPL_F32: return "f32";
    case LPL_F16: return "f16";
    case LPL_Q8_0: return "q8_0";
    case LPL_Q4_0: return "q4_0";
    case LPL_BF16: return "bf16";
    }
    return "?";
}

int lpl_matrix_type_from_name(const char *s, lpl_dtype *t)
{
    static const lpl_dtype types[] = {LPL_F32, LPL_F16, LPL_Q8_0, LPL_Q4_0};
    for (size_t i = 0; s && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, lpl_dtype_name(types[i]))) {
            *t = types[i];
            return 1;
        }
    return 0;
}

/* float -> int8 where the value may be NaN (a NaN or inf weight read from a file):
 * that conversion is undefined behaviour, so NaN and out-of-range values become 0
 * (found by tests/fuzz). */
static int8_t to_int8(float v)
{
    return v > -129.0f && v < 128.0f ? (int8_t)v : 0;
}

/* roundf (halves away from zero) without the libm call, for what to_int8 reads: the
 * same value for every finite v, inf for inf, NaN for NaN; only the sign of a zero
 * may differ, which to_int8 does not see. v - truncf(v) is exact for |v| < 2^23 and
 * 0 above, where v is already an integer. */
static float round_half_away(float v)
{
    float t = truncf(v), f = v - t;
    return t + (float)((f >= 0.5f) - (f <= -0.5f)); /* no branch: half the rows go each way */
}

/* Q8_0: d = max|x| / 127, q = round(x / d) (computed as x * (1/d), like ggml). The
 * max is a compare, not fmaxf: both skip a NaN, and it stays inline. */
void lpl_quantize_q8_0(const float *src, lpl_block_q8_0 *dst, int64_t n)
{
    for (int64_t b = 0; b < n / LPL_QK; b++) {
        const float *x = src + b * LPL_QK;
        float amax = 0.0f;
        for (int j = 0; j < LPL_QK; j++) {
            float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = lpl_fp32_to_fp16(d);
        for (int j = 0; j < LPL_QK; j++)
            dst[b].qs[j] = to_int8(round_half_away(x[j] * id));
    }
}

/* Q4_0: d = m / -8 where m is the value of largest magnitude (sign kept), so m
 * itself maps to 0 and the other end of the range gets the extra step; element j
 * goes to the low nibble of byte j and element j+16 to its high nibble. */
void lpl_quantize_q4_0(const float *src, lpl_block_q4_0 *dst, int64_t n)
{
    for (int64_t b = 0; b < n / LPL_QK; b++) {
        const float *x = src + b * LPL_QK;
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < LPL_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        float d = m / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = lpl_fp32_to_fp16(d);
        for (int j = 0; j < LPL_QK / 2; j++) {
            int lo = to_int8(x[j] * id + 8.5f);
            int hi = to_int8(x[j + LPL_QK / 2] * id + 8.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            dst[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void lpl_dequantize_row(lpl_dtype t, const void *src, float *dst, int64_t n)
{
    switch (t) {
    case LPL_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case LPL_F16:
        lpl_fp16_to_fp32_row(src, dst, n);
        return;
    case LPL_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = lpl_bf16_to_fp32(h[i]);
        return;
    }
    case LPL_Q8_0: {
        const lpl_block_q8_0 *blk = src;
        for (int64_t b = 0; b < n / LPL_QK; b++) {
            float d = lpl_fp16_to_fp32(blk[b].d);
            for (int j = 0; j < LPL_QK; j++)
                dst[b * LPL_QK + j] = d * (float)blk[b].qs[j];
        }
        return;
    }
    case LPL_Q4_0: {
        const lpl_block_q4_0 *blk = src;
        for (int64_t b = 0; b < n / LPL_QK; b++) {
            float d = lpl_fp16_to_fp32(blk[b].d);
            float *y = dst + b * LPL_QK;
            for (int j = 0; j < LPL_QK / 2; j++) {
                y[j] = d * (float)((blk[b].qs[j] & 0x0f) - 8);
                y[j + LPL_QK / 2] = d * (float)((blk[b].qs[j] >> 4) - 8);
            }
        }
        return;
    }
    }
    /* an unknown type reads as zeros rather than garbage */
    memset(dst, 0, (size_t)n * sizeof(float));
}

lpl_status lpl_convert_row(lpl_dtype t, const float *src, void *dst, int64_t n, lpl_error *err)
{
    if (n < 0)
        return lpl_fail(err, LPL_ERR_INVALID, "convert row: negative length %lld", (long long)n);
    switch (t) {
    case LPL_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return LPL_OK;
    case LPL_F16:
        lpl_fp32_to_fp16_row(src, dst, n);
        return LPL_OK;
    case LPL_Q8_0:
    case LPL_Q4_0:
        if (n % LPL_QK)
            return lpl_fail(err, LPL_ERR_INVALID,
                            "convert row: %s needs a length that is a multiple of %d, got %lld",
                            lpl_dtype_name(t), LPL_QK, (long long)n);
        if (t == LPL_Q8_0)
            lpl_quantize_q8_0(src, dst, n);
        else
            lpl_quantize_q4_0(src, dst, n);
        return LPL_OK;
    default:
        return lpl_fail(err, LPL_ERR_INVALID, "convert row: cannot convert to type %s (%d)",
                        lpl_dtype_name(t), (int)t);
    }
}
