/* The SIMD mapping layer: a float vector of LPL_VW lanes and the handful of
 * operations the kernels use, mapped to AVX-512F, AVX2+FMA, SSE2, WASM SIMD128 or
 * plain C.
 * Kernels are written once against these names; nothing else in the project
 * includes an instruction-set header.
 *
 *   lpl_vf            vector of LPL_VW floats
 *   lpl_vf_zero()     all lanes 0
 *   lpl_vf_set1(x)    all lanes x
 *   lpl_vf_load1(p)   all lanes *p (one broadcast load)
 *   lpl_vf_load(p)    p[0..VW) (unaligned)
 *   lpl_vf_store(p,v) p[0..VW) = v (unaligned)
 *   lpl_vf_add(a,b), lpl_vf_mul(a,b)
 *   lpl_vf_madd(a,b,c)  a*b + c: fused (one rounding) where the target has FMA,
 *                       multiply then add otherwise (wasm SIMD128, SSE2, scalar)
 *   lpl_vf_hsum(v)    sum of the lanes, in a fixed order
 *   lpl_vf_sub(a,b), lpl_vf_div(a,b), lpl_vf_min(a,b), lpl_vf_max(a,b)
 *                     (min/max: operands finite; which one a NaN yields differs)
 *   lpl_vf_select_lt(a,b,x,y)  per lane a < b ? x : y
 *   lpl_vf_pow2i(n)   2^n for lanes holding integers n in [-126, 127] (as floats)
 *   lpl_vf_load_i8(p) the VW int8 values p[0..VW) converted to float (exact)
 *   lpl_vf_load_f16(p) the VW IEEE halves at p (any alignment) as floats, bit for bit
 *                     what lpl_fp16_to_fp32 gives (subnormals, infinities and NaN
 *                     payloads included): integer operations only, no F16C
 *   lpl_vf_abs(v)     |v|
 *   lpl_vf_round_even(v)  nearest integer, ties to even, for |v| < 2^22 (a zero may
 *                     keep its sign); one instruction where the target has it (wasm),
 *                     else adding and removing 1.5 * 2^23 (no fraction bits left)
 *
 * LPL_SIMD_NAME names the mapping in use ("avx512", "avx2", "sse2", "wasm128",
 * "wasm-relaxed", "scalar"); define LPL_NO_AVX512 to use the AVX2 mapping on an
 * AVX-512 machine.
 *
 * Relaxed SIMD (wasm built with -mrelaxed-simd, the "rx" build): lpl_vf_madd is
 * f32x4.relaxed_madd (fused where the CPU has FMA, so the rounding depends on the
 * CPU, within the self-check's tolerances), and with LPL_RELAXED_DOT=1 (default 0) the
 * int8 products use i32x4.relaxed_dot_i8x16_i7x16_add_s. That instruction is
 * deterministic only while its second operand is in 0..127, so A (the activations,
 * quantized per product) gets 7-bit codes in [-63, 63] stored as q + 64, and each
 * block sum starts at -64 * (sum of B's codes): exact, the same on every CPU.
 * LPL_RELAXED_DOT=0 keeps SIMD128's i32x4.dot_i16x8_s for the int8 products.
 *
 * Integer dot products (the int8 GEMM of kernels_q8.c), LPL_VW int32 lanes that
 * line up with the float lanes:
 *   lpl_vi            vector of LPL_VW int32
 *   LPL_QSTEP         k values one lane sums per step: 4 (int8 quads, x86),
 *                     2 (int16 pairs: wasm SIMD128, SSE2), 1 (scalar)
 *   lpl_qa, lpl_qb    element types of the packed A and B operands
 *   LPL_QA_MAX        largest |code| of A: 127, or 63 for the 7-bit relaxed dot (the
 *                     scale is max|x| / LPL_QA_MAX); define it to 63 on any target to
 *                     reproduce the relaxed build's codes (tests/test_q7_accuracy.c)
 *   LPL_QA_OFFSET     1: A is stored as q + LPL_QA_BIAS (unsigned: vpdpbusd, relaxed
 *                     dot), and the caller starts each sum at -LPL_QA_BIAS * (sum of
 *                     B's k in the block)
 *   lpl_vi_zero(), lpl_vi_load(p)  (p: LPL_VW int32)
 *   lpl_va_bcast(p)   the LPL_QSTEP values a[0..QSTEP) repeated in every lane
 *   lpl_vb_load(p)    LPL_VW * LPL_QSTEP values of B: lane j holds p[j*QSTEP ..)
 *   lpl_vi_dot(acc, a, b)  lane j += sum_q a[q] * b[j*QSTEP + q], exact in int32
 *   lpl_vi_to_vf(v)   int32 -> float (exact below 2^24)
 *   lpl_vq_store(p, r)  codes from LPL_QSTEP float vectors r[0..QSTEP) holding
 *                     integers in [-127, 127]: p[j*QSTEP + q] = r[q] lane j (B's layout)
 *   lpl_qa_put_pairs(dst, stride, v)  (LPL_QSTEP 2 only) the 16 pairs of rounded
 *                     floats v[0..32) (|v| <= 127; NaN: 0) as codes at dst + g * stride
 *   lpl_qb_put_pairs(dst, stride, q)  (LPL_QSTEP 2 only) the 16 pairs of int8 codes
 *                     q[0..32), widened, at dst + g * stride for g = 0..15
 *   LPL_VQ_NAN_ZERO   1: lpl_vq_store already writes 0 for a NaN lane (the int16 pair
 *                     mappings: a saturating or 0x80000000 conversion, then 16 bits) */
#ifndef LPL_SIMD_H
#define LPL_SIMD_H

#include <stdint.h>
#include <string.h>

/* Off unless asked for: the 7-bit relaxed dot lost to SIMD128's int8 products here
 * (kernels 0.77-0.85x under Node, whole step 0.57x in Chromium; docs/BENCHMARKS.md),
 * so the shipped relaxed build uses relaxed_madd only; the kernel self-check and
 * benchmark (kernels_test_rx, bench_kernels_rx) build with -DLPL_RELAXED_DOT=1 */
#if defined(__wasm_relaxed_simd__) && !defined(LPL_RELAXED_DOT)
#define LPL_RELAXED_DOT 0
#endif

/* The x86 mappings below differ mostly in width: each names its integer vector
 * lpl_xi and maps LPL_MM(op) to _mm512_op, _mm256_op or _mm_op and LPL_SI(op) to
 * _mm512_op_si512, _mm256_op_si256 or _mm_op_si128, so the operations that are the
 * same but for width (the "x86, any width" parts) are written once. */
#if !defined(__wasm_simd128__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* The sum of 8 lanes: the two halves, then (s0 + s2) + (s1 + s3) of that 4-lane sum;
 * the order of the AVX2 and AVX-512 mappings */
static inline float lpl_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#if defined(__wasm_relaxed_simd__)
#define LPL_SIMD_NAME "wasm-relaxed"
#else
#define LPL_SIMD_NAME "wasm128"
#endif
#define LPL_VW 4
typedef v128_t lpl_vf;
static inline lpl_vf lpl_vf_zero(void) { return wasm_f32x4_splat(0.0f); }
static inline lpl_vf lpl_vf_set1(float x) { return wasm_f32x4_splat(x); }
static inline lpl_vf lpl_vf_load(const float *p) { return wasm_v128_load(p); }
static inline lpl_vf lpl_vf_load1(const float *p) { return wasm_v128_load32_splat(p); }
static inline void lpl_vf_store(float *p, lpl_vf v) { wasm_v128_store(p, v); }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return wasm_f32x4_add(a, b); }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return wasm_f32x4_mul(a, b); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c)
{
#if defined(__wasm_relaxed_simd__)
    return wasm_f32x4_relaxed_madd(a, b, c);
#else
    return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return wasm_f32x4_sub(a, b); }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return wasm_f32x4_div(a, b); }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return wasm_f32x4_pmin(a, b); }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return wasm_f32x4_pmax(a, b); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    return wasm_v128_bitselect(x, y, wasm_f32x4_lt(a, b));
}
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    v128_t e = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(n, wasm_f32x4_splat(127.0f)));
    return wasm_i32x4_shl(e, 23);
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    int32_t w;
    memcpy(&w, p, 4); /* exactly VW bytes: never reads past the data */
    v128_t v = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(wasm_i32x4_splat(w)));
    /* int to float as bits: 1.5 * 2^23 + q is exact for |q| < 2^22, and its bits are
     * those of 1.5 * 2^23 plus q. f32x4.convert_i32x4 after the sign extensions
     * would be folded by clang into a conversion from int8 that it scalarizes (four
     * extracts and scalar converts under V8). */
    return wasm_f32x4_sub(wasm_i32x4_add(v, wasm_i32x4_splat(0x4B400000)), wasm_f32x4_splat(12582912.0f));
}
static inline float lpl_vf_hsum(lpl_vf v)
{
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

#elif defined(__AVX512F__) && defined(__FMA__) && !defined(LPL_NO_AVX512)
#include <immintrin.h>
#define LPL_SIMD_NAME "avx512"
#define LPL_VW 16
typedef __m512 lpl_vf;
typedef __m512i lpl_xi;
#define LPL_MM(op) _mm512_##op
#define LPL_SI(op) _mm512_##op##_si512
#define LPL_MM_CASTSI_PS _mm512_castsi512_ps
#define LPL_MM_CASTPS_SI _mm512_castps_si512
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm512_set1_ps(*p); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
static inline float lpl_vf_hsum(lpl_vf v)
{
    /* halves, then as the AVX2 mapping */
    return lpl_hsum8(_mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
static inline lpl_xi lpl_xi_load_u16(const void *p)
{
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
}
static inline lpl_xi lpl_xi_select_gt(lpl_xi a, lpl_xi b, lpl_xi x, lpl_xi y)
{
    return _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(a, b), y, x);
}

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LPL_SIMD_NAME "avx2"
#define LPL_VW 8
typedef __m256 lpl_vf;
typedef __m256i lpl_xi;
#define LPL_MM(op) _mm256_##op
#define LPL_SI(op) _mm256_##op##_si256
#define LPL_MM_CASTSI_PS _mm256_castsi256_ps
#define LPL_MM_CASTPS_SI _mm256_castps_si256
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm256_broadcast_ss(p); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static inline float lpl_vf_hsum(lpl_vf v) { return lpl_hsum8(v); }
static inline lpl_xi lpl_xi_load_u16(const void *p)
{
    return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
}
static inline lpl_xi lpl_xi_select_gt(lpl_xi a, lpl_xi b, lpl_xi x, lpl_xi y)
{
    return _mm256_blendv_epi8(y, x, _mm256_cmpgt_epi32(a, b));
}

#elif defined(__SSE2__)
#include <emmintrin.h>
#define LPL_SIMD_NAME "sse2"
#define LPL_VW 4
typedef __m128 lpl_vf;
typedef __m128i lpl_xi;
#define LPL_MM(op) _mm_##op
#define LPL_SI(op) _mm_##op##_si128
#define LPL_MM_CASTSI_PS _mm_castsi128_ps
#define LPL_MM_CASTPS_SI _mm_castps_si128
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm_load1_ps(p); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c)
{
    return _mm_add_ps(_mm_mul_ps(a, b), c);
}
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    __m128 m = _mm_cmplt_ps(a, b);
    return _mm_or_ps(_mm_and_ps(m, x), _mm_andnot_ps(m, y));
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    int32_t w;
    memcpy(&w, p, 4);
    /* each byte to the top of its 32-bit lane, then an arithmetic shift back */
    __m128i v = _mm_cvtsi32_si128(w);
    v = _mm_unpacklo_epi8(v, v);
    v = _mm_unpacklo_epi16(v, v);
    return _mm_cvtepi32_ps(_mm_srai_epi32(v, 24));
}
static inline float lpl_vf_hsum(lpl_vf v)
{
    /* (l0 + l1) + (l2 + l3), the same order as the wasm mapping */
    __m128 s = _mm_add_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    s = _mm_add_ss(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(s);
}
static inline lpl_xi lpl_xi_load_u16(const void *p)
{
    return _mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)p), _mm_setzero_si128());
}
static inline lpl_xi lpl_xi_select_gt(lpl_xi a, lpl_xi b, lpl_xi x, lpl_xi y)
{
    __m128i m = _mm_cmpgt_epi32(a, b);
    return _mm_or_si128(_mm_and_si128(m, x), _mm_andnot_si128(m, y));
}

#else
#define LPL_SIMD_NAME "scalar"
#define LPL_VW 1
typedef float lpl_vf;
static inline lpl_vf lpl_vf_zero(void) { return 0.0f; }
static inline lpl_vf lpl_vf_set1(float x) { return x; }
static inline lpl_vf lpl_vf_load(const float *p) { return *p; }
static inline lpl_vf lpl_vf_load1(const float *p) { return *p; }
static inline void lpl_vf_store(float *p, lpl_vf v) { *p = v; }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return a + b; }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return a * b; }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c) { return a * b + c; }
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return a - b; }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return a / b; }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return a < b ? a : b; }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return a > b ? a : b; }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y) { return a < b ? x : y; }
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    uint32_t u = (uint32_t)((int32_t)n + 127) << 23;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p) { return (float)*p; }
static inline float lpl_vf_hsum(lpl_vf v) { return v; }
#endif

#if !defined(__wasm_simd128__) && LPL_VW > 1
#define LPL_X86 1
/* ---- x86, any width ---- */
static inline lpl_vf lpl_vf_zero(void) { return LPL_MM(setzero_ps)(); }
static inline lpl_vf lpl_vf_set1(float x) { return LPL_MM(set1_ps)(x); }
static inline lpl_vf lpl_vf_load(const float *p) { return LPL_MM(loadu_ps)(p); }
static inline void lpl_vf_store(float *p, lpl_vf v) { LPL_MM(storeu_ps)(p, v); }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return LPL_MM(add_ps)(a, b); }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return LPL_MM(mul_ps)(a, b); }
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return LPL_MM(sub_ps)(a, b); }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return LPL_MM(div_ps)(a, b); }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return LPL_MM(min_ps)(a, b); }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return LPL_MM(max_ps)(a, b); }
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    lpl_xi e = LPL_MM(cvtps_epi32)(LPL_MM(add_ps)(n, LPL_MM(set1_ps)(127.0f)));
    return LPL_MM_CASTSI_PS(LPL_MM(slli_epi32)(e, 23));
}
#endif

/* ---- absolute value and rounding, shared by every mapping ---- */
#if defined(__wasm_simd128__)
static inline lpl_vf lpl_vf_abs(lpl_vf v) { return wasm_f32x4_abs(v); }
static inline lpl_vf lpl_vf_round_even(lpl_vf v) { return wasm_f32x4_nearest(v); }
#else
static inline lpl_vf lpl_vf_abs(lpl_vf v) { return lpl_vf_max(v, lpl_vf_sub(lpl_vf_zero(), v)); }
static inline lpl_vf lpl_vf_round_even(lpl_vf v)
{
    const lpl_vf magic = lpl_vf_set1(0x1.8p23f);
    return lpl_vf_sub(lpl_vf_add(v, magic), magic);
}
#endif

/* ---- integer dot products ---- */
/* Which products, and so the packed element types */
#if defined(__wasm_relaxed_simd__) && LPL_RELAXED_DOT
/* i32x4.relaxed_dot_i8x16_i7x16_add_s(b, a, acc): B's signed codes first, A's 7-bit
 * codes + 64 (1..127) second; a pair of products, at most 2 * 128 * 127 in
 * magnitude, cannot saturate the int16 step that some CPUs take */
#define LPL_QSTEP 4
#define LPL_QA_OFFSET 1
#define LPL_QA_MAX 63
#define LPL_QA_BIAS 64
#define LPL_VQ_NAN_ZERO 1
typedef uint8_t lpl_qa;
typedef int8_t lpl_qb;
#elif defined(__wasm_simd128__) || LPL_VW == 4
/* int16 pairs: i32x4.dot_i16x8_s / pmaddwd, A and B widened when packed */
#define LPL_QSTEP 2
#define LPL_QA_OFFSET 0
#define LPL_VQ_NAN_ZERO 1
typedef int16_t lpl_qa;
typedef int16_t lpl_qb;
#elif LPL_VW == 8 || LPL_VW == 16
/* int8 quads. AVX-512 without AVX512BW (no byte products) would take 256-bit integer
 * lanes against 16 float lanes: not a supported target */
#if LPL_VW == 16 && !defined(__AVX512BW__)
#error "AVX-512 without AVX512BW: integer products need AVX512BW"
#endif
#define LPL_QSTEP 4
typedef int8_t lpl_qb;
#if LPL_VW == 16 ? defined(__AVX512VNNI__) : (defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__)))
/* vpdpbusd multiplies unsigned by signed bytes: A is stored offset by +128 and the
 * offset's contribution (128 * sum of B) is taken off at the start of each block */
#define LPL_QA_OFFSET 1
typedef uint8_t lpl_qa;
#else
/* vpmaddubsw with |a| as unsigned and a's sign moved onto b (|a|, |b| <= 127, so a
 * pair sum never saturates int16), then vpmaddwd against ones */
#define LPL_QA_OFFSET 0
typedef int8_t lpl_qa;
#endif
#else
#define LPL_QSTEP 1
#define LPL_QA_OFFSET 0
typedef int8_t lpl_qa;
typedef int8_t lpl_qb;
#endif

/* The int32 lanes: loads, A's broadcast and the conversion, alike for every kind of
 * product of a mapping */
#if defined(__wasm_simd128__)
typedef v128_t lpl_vi;
static inline lpl_vi lpl_vi_zero(void) { return wasm_i32x4_splat(0); }
static inline lpl_vi lpl_vi_load(const int32_t *p) { return wasm_v128_load(p); }
static inline lpl_vi lpl_va_bcast(const lpl_qa *p) { return wasm_v128_load32_splat(p); }
static inline lpl_vi lpl_vb_load(const lpl_qb *p) { return wasm_v128_load(p); }
static inline lpl_vf lpl_vi_to_vf(lpl_vi v) { return wasm_f32x4_convert_i32x4(v); }
#elif LPL_X86
typedef lpl_xi lpl_vi;
static inline lpl_vi lpl_vi_zero(void) { return LPL_SI(setzero)(); }
static inline lpl_vi lpl_vi_load(const int32_t *p) { return LPL_SI(loadu)((const lpl_xi *)p); }
static inline lpl_vi lpl_va_bcast(const lpl_qa *p)
{
    int32_t w;
    memcpy(&w, p, 4);
    return LPL_MM(set1_epi32)(w);
}
static inline lpl_vi lpl_vb_load(const lpl_qb *p) { return LPL_SI(loadu)((const lpl_xi *)p); }
static inline lpl_vf lpl_vi_to_vf(lpl_vi v) { return LPL_MM(cvtepi32_ps)(v); }
#else
typedef int32_t lpl_vi;
static inline lpl_vi lpl_vi_zero(void) { return 0; }
static inline lpl_vi lpl_vi_load(const int32_t *p) { return *p; }
static inline lpl_vi lpl_va_bcast(const lpl_qa *p) { return *p; }
static inline lpl_vi lpl_vb_load(const lpl_qb *p) { return *p; }
static inline lpl_vf lpl_vi_to_vf(lpl_vi v) { return (float)v; }
#endif

/* The products and the packing of codes */
#if defined(__wasm_relaxed_simd__) && LPL_RELAXED_DOT
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b)
{
    return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(b, a, acc);
}
static inline void lpl_vq_store(lpl_qb *p, const lpl_vf *r)
{
    /* as the pair mapping: + 1.5 * 2^23 leaves each integer's two's complement in
     * the low bits of the float's bits; a NaN lane's code is 0 */
    const v128_t magic = wasm_f32x4_splat(12582912.0f), ff = wasm_i32x4_splat(0xff);
    v128_t w = wasm_i32x4_splat(0);
    for (int e = 0; e < 4; e++) {
        v128_t c = wasm_v128_and(wasm_f32x4_add(r[e], magic), wasm_f32x4_eq(r[e], r[e]));
        w = wasm_v128_or(w, wasm_i32x4_shl(wasm_v128_and(c, ff), 8 * e));
    }
    wasm_v128_store(p, w);
}

#elif defined(__wasm_simd128__)
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b)
{
    return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(a, b));
}
static inline void lpl_vq_store(lpl_qb *p, const lpl_vf *r)
{
    /* r holds integers: + 1.5 * 2^23 puts each in the low 16 bits of the float's
     * bits (exact for |r| < 2^22), one add where i32x4.trunc_sat_f32x4 costs V8 about
     * seven x64 instructions; the eq mask makes a NaN's code 0 */
    const v128_t magic = wasm_f32x4_splat(12582912.0f);
    v128_t lo = wasm_v128_and(wasm_f32x4_add(r[0], magic), wasm_f32x4_eq(r[0], r[0]));
    v128_t hi = wasm_v128_and(wasm_f32x4_add(r[1], magic), wasm_f32x4_eq(r[1], r[1]));
    wasm_v128_store(p, wasm_v128_or(wasm_v128_and(lo, wasm_i32x4_splat(0xffff)), wasm_i32x4_shl(hi, 16)));
}
/* The 16 pairs of integer-valued floats v[0..32) (|v| <= 127, or NaN for 0) as int16
 * at dst + g * stride (g = 0..15): through the float's bits as in lpl_vq_store,
 * narrowed, and stored as 32-bit lanes. */
static inline void lpl_qa_put_pairs(lpl_qa *dst, size_t stride, const float *v)
{
    const v128_t magic = wasm_f32x4_splat(12582912.0f), bias = wasm_i32x4_splat(0x4B400000);
    for (int h = 0; h < 4; h++) {
        v128_t a = wasm_v128_load(v + 8 * h), b = wasm_v128_load(v + 8 * h + 4);
        a = wasm_v128_and(wasm_i32x4_sub(wasm_f32x4_add(a, magic), bias), wasm_f32x4_eq(a, a));
        b = wasm_v128_and(wasm_i32x4_sub(wasm_f32x4_add(b, magic), bias), wasm_f32x4_eq(b, b));
        v128_t p = wasm_i16x8_narrow_i32x4(a, b);
        lpl_qa *d = dst + (size_t)4 * h * stride;
        wasm_v128_store32_lane(d, p, 0);
        wasm_v128_store32_lane(d + stride, p, 1);
        wasm_v128_store32_lane(d + 2 * stride, p, 2);
        wasm_v128_store32_lane(d + 3 * stride, p, 3);
    }
}
/* The 16 pairs of codes q[0..32), widened, at dst + g * stride (g = 0..15): vector
 * widening and 32-bit lane stores (clang turns the plain loop into byte loads,
 * shifts and ors under V8). */
static inline void lpl_qb_put_pairs(lpl_qb *dst, size_t stride, const int8_t *q)
{
    for (int h = 0; h < 2; h++) {
        v128_t v = wasm_v128_load(q + 16 * h);
        v128_t lo = wasm_i16x8_extend_low_i8x16(v), hi = wasm_i16x8_extend_high_i8x16(v);
        lpl_qb *d = dst + (size_t)8 * h * stride;
        wasm_v128_store32_lane(d, lo, 0);
        wasm_v128_store32_lane(d + stride, lo, 1);
        wasm_v128_store32_lane(d + 2 * stride, lo, 2);
        wasm_v128_store32_lane(d + 3 * stride, lo, 3);
        wasm_v128_store32_lane(d + 4 * stride, hi, 0);
        wasm_v128_store32_lane(d + 5 * stride, hi, 1);
        wasm_v128_store32_lane(d + 6 * stride, hi, 2);
        wasm_v128_store32_lane(d + 7 * stride, hi, 3);
    }
}

#elif LPL_VW == 4
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b)
{
    return _mm_add_epi32(acc, _mm_madd_epi16(a, b));
}
static inline void lpl_vq_store(lpl_qb *p, const lpl_vf *r)
{
    __m128i lo = _mm_and_si128(_mm_cvttps_epi32(r[0]), _mm_set1_epi32(0xffff));
    __m128i hi = _mm_slli_epi32(_mm_cvttps_epi32(r[1]), 16);
    _mm_storeu_si128((__m128i *)p, _mm_or_si128(lo, hi));
}
static inline void lpl_qa_put_pairs(lpl_qa *dst, size_t stride, const float *v)
{
    for (int g = 0; g < 16; g++) /* a NaN is 0 */
        for (int e = 0; e < 2; e++)
            dst[(size_t)g * stride + e] = v[2 * g + e] == v[2 * g + e] ? (lpl_qa)(int)v[2 * g + e] : 0;
}
static inline void lpl_qb_put_pairs(lpl_qb *dst, size_t stride, const int8_t *q)
{
    for (int g = 0; g < 16; g++)
        dst[(size_t)g * stride] = q[2 * g], dst[(size_t)g * stride + 1] = q[2 * g + 1];
}

#elif LPL_VW == 8 || LPL_VW == 16
static inline void lpl_vq_store(lpl_qb *p, const lpl_vf *r)
{
    const lpl_xi ff = LPL_MM(set1_epi32)(0xff);
    lpl_xi w = LPL_SI(and)(LPL_MM(cvttps_epi32)(r[0]), ff);
    w = LPL_SI(or)(w, LPL_MM(slli_epi32)(LPL_SI(and)(LPL_MM(cvttps_epi32)(r[1]), ff), 8));
    w = LPL_SI(or)(w, LPL_MM(slli_epi32)(LPL_SI(and)(LPL_MM(cvttps_epi32)(r[2]), ff), 16));
    w = LPL_SI(or)(w, LPL_MM(slli_epi32)(LPL_MM(cvttps_epi32)(r[3]), 24));
    LPL_SI(storeu)((lpl_xi *)p, w);
}
#if LPL_QA_OFFSET && LPL_VW == 16
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b) { return _mm512_dpbusd_epi32(acc, a, b); }
#elif LPL_QA_OFFSET && defined(__AVXVNNI__)
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
#elif LPL_QA_OFFSET
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b) { return _mm256_dpbusd_epi32(acc, a, b); }
#elif LPL_VW == 16
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b)
{
    __mmask64 neg = _mm512_movepi8_mask(a);
    __m512i sb = _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b);
    __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(a), sb);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
}
#else
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b)
{
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(b, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}
#endif

#else
static inline lpl_vi lpl_vi_dot(lpl_vi acc, lpl_vi a, lpl_vi b) { return acc + a * b; }
static inline void lpl_vq_store(lpl_qb *p, const lpl_vf *r) { *p = (lpl_qb)(int)r[0]; }
#endif

/* ---- fp16 -> fp32 ----
 * Per lane, with e = h & 0x7fff: e < 0x400 (zero, subnormal) is e * 2^-24 as a float
 * (exact); e >= 0x7c00 (inf, NaN) is e << 13 | 0x7f800000; otherwise the exponent is
 * rebiased, (e << 13) + (112 << 23). The sign bit moves to bit 31. */
#define LPL_F16_MAGIC_NORMAL (112 << 23)
#define LPL_F16_EXP_ALL 0x7f800000
#if defined(__wasm_simd128__)
static inline lpl_vf lpl_vf_load_f16(const void *p)
{
    v128_t h = wasm_u32x4_load16x4(p);
    v128_t e = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
    v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
    v128_t sh = wasm_i32x4_shl(e, 13);
    v128_t r = wasm_v128_bitselect(wasm_v128_or(sh, wasm_i32x4_splat(LPL_F16_EXP_ALL)),
                                   wasm_i32x4_add(sh, wasm_i32x4_splat(LPL_F16_MAGIC_NORMAL)),
                                   wasm_i32x4_gt(e, wasm_i32x4_splat(0x7bff)));
    v128_t sub = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(e), wasm_f32x4_splat(0x1p-24f));
    r = wasm_v128_bitselect(sub, r, wasm_i32x4_lt(e, wasm_i32x4_splat(0x400)));
    return wasm_v128_or(r, sign);
}
#elif LPL_X86
static inline lpl_vf lpl_vf_load_f16(const void *p)
{
    lpl_xi h = lpl_xi_load_u16(p);
    lpl_xi e = LPL_SI(and)(h, LPL_MM(set1_epi32)(0x7fff));
    lpl_xi sign = LPL_MM(slli_epi32)(LPL_SI(and)(h, LPL_MM(set1_epi32)(0x8000)), 16);
    lpl_xi sh = LPL_MM(slli_epi32)(e, 13);
    lpl_xi r = lpl_xi_select_gt(e, LPL_MM(set1_epi32)(0x7bff), LPL_SI(or)(sh, LPL_MM(set1_epi32)(LPL_F16_EXP_ALL)),
                                LPL_MM(add_epi32)(sh, LPL_MM(set1_epi32)(LPL_F16_MAGIC_NORMAL)));
    lpl_xi sub = LPL_MM_CASTPS_SI(LPL_MM(mul_ps)(LPL_MM(cvtepi32_ps)(e), LPL_MM(set1_ps)(0x1p-24f)));
    r = lpl_xi_select_gt(LPL_MM(set1_epi32)(0x400), e, sub, r);
    return LPL_MM_CASTSI_PS(LPL_SI(or)(r, sign));
}
#else
static inline lpl_vf lpl_vf_load_f16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t e = h & 0x7fffu, sign = (uint32_t)(h & 0x8000u) << 16, r;
    if (e < 0x400) {
        float f = (float)e * 0x1p-24f;
        memcpy(&r, &f, 4);
    } else {
        r = e > 0x7bff ? e << 13 | LPL_F16_EXP_ALL : (e << 13) + LPL_F16_MAGIC_NORMAL;
    }
    r |= sign;
    float out;
    memcpy(&out, &r, 4);
    return out;
}
#endif

#ifndef LPL_VQ_NAN_ZERO
#define LPL_VQ_NAN_ZERO 0
#endif
#ifndef LPL_QA_MAX
#define LPL_QA_MAX 127
#endif
#ifndef LPL_QA_BIAS
#define LPL_QA_BIAS 128
#endif

#endif
