/* NFC: full canonical decomposition, canonical ordering of combining marks, then
 * canonical composition (Unicode Standard Annex #15), with Hangul syllables done by
 * arithmetic. */
#include "unicode_norm.h"

#include <stdlib.h>
#include <string.h>

#include "pretokenize.h"

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

static int ccc(uint32_t cp)
{
    int lo = 0, hi = lpl_n_ccc_ranges - 1;
    if (cp < 0x300)
        return 0;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < lpl_ccc_ranges[mid].lo)
            hi = mid - 1;
        else if (cp > lpl_ccc_ranges[mid].hi)
            lo = mid + 1;
        else
            return lpl_ccc_ranges[mid].ccc;
    }
    return 0;
}

static const lpl_decomp *find_decomp(uint32_t cp)
{
    int lo = 0, hi = lpl_n_decomps - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < lpl_decomps[mid].cp)
            hi = mid - 1;
        else if (cp > lpl_decomps[mid].cp)
            lo = mid + 1;
        else
            return &lpl_decomps[mid];
    }
    return NULL;
}

/* The composite of a + b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    int lo = 0, hi = lpl_n_comps - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const lpl_comp *c = &lpl_comps[mid];
        if (a < c->a || (a == c->a && b < c->b))
            hi = mid - 1;
        else if (a > c->a || b > c->b)
            lo = mid + 1;
        else
            return c->c;
    }
    return 0;
}

/* Appends the full canonical decomposition of cp to d; returns the new length. */
static size_t decompose(uint32_t cp, uint32_t *d, size_t k)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        d[k++] = L_BASE + s / N_COUNT;
        d[k++] = V_BASE + s % N_COUNT / T_COUNT;
        if (s % T_COUNT)
            d[k++] = T_BASE + s % T_COUNT;
        return k;
    }
    const lpl_decomp *e = find_decomp(cp);
    if (!e) {
        d[k++] = cp;
        return k;
    }
    memcpy(d + k, lpl_decomp_cps + e->at, e->n * sizeof *d);
    return k + e->n;
}

/* Stable insertion sort of each run of non-starters by combining class. */
static void reorder(uint32_t *d, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int c = ccc(d[i]);
        if (!c)
            continue;
        for (size_t j = i; j > 0 && ccc(d[j - 1]) > c; j--) {
            uint32_t x = d[j];
            d[j] = d[j - 1];
            d[j - 1] = x;
        }
    }
}

/* Canonical composition in place; returns the new length. */
static size_t recompose(uint32_t *d, size_t n)
{
    if (!n)
        return 0;
    size_t starter = 0, out = 1;
    int last = ccc(d[0]) ? 256 : 0; /* a text that opens with a mark has no starter */
    for (size_t i = 1; i < n; i++) {
        uint32_t cp = d[i];
        int c = ccc(cp);
        uint32_t comp = last != 256 ? compose(d[starter], cp) : 0;
        if (comp && (last < c || last == 0)) {
            d[starter] = comp;
            continue;
        }
        if (c == 0) {
            starter = out;
            last = 0;
        } else {
            last = c;
        }
        d[out++] = cp;
    }
    return out;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int lpl_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_n)
{
    size_t k = 0;
    /* a full decomposition is at most 4 code points (18 in theory for U+FDFA, which
     * is a compatibility mapping and so not canonical) */
    uint32_t *d = malloc((4 * n + 1) * sizeof *d);
    if (!d)
        return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)lpl_utf8_next(s, n, i, &cp);
        k = decompose(cp, d, k);
    }
    reorder(d, k);
    k = recompose(d, k);
    uint8_t *o = malloc(4 * k + 1);
    if (!o) {
        free(d);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        m += put_utf8(o + m, d[i]);
    o[m] = 0;
    free(d);
    *out = o;
    *out_n = m;
    return 0;
}
