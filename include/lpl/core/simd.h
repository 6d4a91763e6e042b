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
 *
 * LPL_SIMD_NAME names the mapping in use ("avx512", "avx2", "sse2", "wasm128",
 * "scalar"); define LPL_NO_AVX512 to use the AVX2 mapping on an AVX-512 machine. */
#ifndef LPL_SIMD_H
#define LPL_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define LPL_SIMD_NAME "wasm128"
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
    return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
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
    v128_t v = wasm_i32x4_splat(w);
    return wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(v)));
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
static inline lpl_vf lpl_vf_zero(void) { return _mm512_setzero_ps(); }
static inline lpl_vf lpl_vf_set1(float x) { return _mm512_set1_ps(x); }
static inline lpl_vf lpl_vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm512_set1_ps(*p); }
static inline void lpl_vf_store(float *p, lpl_vf v) { _mm512_storeu_ps(p, v); }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return _mm512_add_ps(a, b); }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return _mm512_mul_ps(a, b); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return _mm512_sub_ps(a, b); }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return _mm512_div_ps(a, b); }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return _mm512_min_ps(a, b); }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return _mm512_max_ps(a, b); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
}
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    __m512i e = _mm512_cvtps_epi32(_mm512_add_ps(n, _mm512_set1_ps(127.0f)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
static inline float lpl_vf_hsum(lpl_vf v)
{
    /* halves, then quarters, then the 128-bit sum as in the other mappings */
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LPL_SIMD_NAME "avx2"
#define LPL_VW 8
typedef __m256 lpl_vf;
static inline lpl_vf lpl_vf_zero(void) { return _mm256_setzero_ps(); }
static inline lpl_vf lpl_vf_set1(float x) { return _mm256_set1_ps(x); }
static inline lpl_vf lpl_vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm256_broadcast_ss(p); }
static inline void lpl_vf_store(float *p, lpl_vf v) { _mm256_storeu_ps(p, v); }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return _mm256_add_ps(a, b); }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return _mm256_mul_ps(a, b); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return _mm256_sub_ps(a, b); }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return _mm256_div_ps(a, b); }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return _mm256_min_ps(a, b); }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return _mm256_max_ps(a, b); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    __m256i e = _mm256_cvtps_epi32(_mm256_add_ps(n, _mm256_set1_ps(127.0f)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
static inline lpl_vf lpl_vf_load_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static inline float lpl_vf_hsum(lpl_vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#elif defined(__SSE2__)
#include <emmintrin.h>
#define LPL_SIMD_NAME "sse2"
#define LPL_VW 4
typedef __m128 lpl_vf;
static inline lpl_vf lpl_vf_zero(void) { return _mm_setzero_ps(); }
static inline lpl_vf lpl_vf_set1(float x) { return _mm_set1_ps(x); }
static inline lpl_vf lpl_vf_load(const float *p) { return _mm_loadu_ps(p); }
static inline lpl_vf lpl_vf_load1(const float *p) { return _mm_load1_ps(p); }
static inline void lpl_vf_store(float *p, lpl_vf v) { _mm_storeu_ps(p, v); }
static inline lpl_vf lpl_vf_add(lpl_vf a, lpl_vf b) { return _mm_add_ps(a, b); }
static inline lpl_vf lpl_vf_mul(lpl_vf a, lpl_vf b) { return _mm_mul_ps(a, b); }
static inline lpl_vf lpl_vf_madd(lpl_vf a, lpl_vf b, lpl_vf c)
{
    return _mm_add_ps(_mm_mul_ps(a, b), c);
}
static inline lpl_vf lpl_vf_sub(lpl_vf a, lpl_vf b) { return _mm_sub_ps(a, b); }
static inline lpl_vf lpl_vf_div(lpl_vf a, lpl_vf b) { return _mm_div_ps(a, b); }
static inline lpl_vf lpl_vf_min(lpl_vf a, lpl_vf b) { return _mm_min_ps(a, b); }
static inline lpl_vf lpl_vf_max(lpl_vf a, lpl_vf b) { return _mm_max_ps(a, b); }
static inline lpl_vf lpl_vf_select_lt(lpl_vf a, lpl_vf b, lpl_vf x, lpl_vf y)
{
    __m128 m = _mm_cmplt_ps(a, b);
    return _mm_or_ps(_mm_and_ps(m, x), _mm_andnot_ps(m, y));
}
static inline lpl_vf lpl_vf_pow2i(lpl_vf n)
{
    __m128i e = _mm_cvtps_epi32(_mm_add_ps(n, _mm_set1_ps(127.0f)));
    return _mm_castsi128_ps(_mm_slli_epi32(e, 23));
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

#endif
