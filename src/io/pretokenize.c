/* Pre-tokenisation rules, written out by hand (no regex library): each function
 * tries the alternatives of its regex in order at one position, as a backtracking
 * engine would, and returns where the match ends. */
#include "pretokenize.h"

#include <string.h>

#include "unicode_classes.h"

/* Class of the code point at s[i] (valid UTF-8, i < n), and its length. */
static int class_at(const uint8_t *s, size_t n, size_t i, int *len)
{
    static const uint8_t ascii[128] = {
        /* \t \n \v \f \r and space are whitespace; letters and digits; the rest "other" */
        ['\t'] = LPL_UC_SPACE, ['\n'] = LPL_UC_SPACE, ['\v'] = LPL_UC_SPACE, ['\f'] = LPL_UC_SPACE,
        ['\r'] = LPL_UC_SPACE, [' '] = LPL_UC_SPACE,
        ['0'] = 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ['A'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ['a'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    };
    if (s[i] < 0x80) {
        *len = 1;
        return ascii[s[i]];
    }
    uint32_t cp;
    *len = lpl_utf8_next(s, n, i, &cp);
    return lpl_unicode_class(cp);
}

/* End of the run of code points of class cls starting at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, int cls)
{
    int k;
    while (i < n && class_at(s, n, i, &k) == cls)
        i += (size_t)k;
    return i;
}

/* 's|'t|'re|'ve|'m|'ll|'d at i: its length, or 0. With fold, letters match in any
 * case, and U+017F (long s) matches s, as Unicode case folding has it. */
static size_t contraction_len(const uint8_t *s, size_t n, size_t i, int fold)
{
    if (s[i] != '\'' || i + 1 >= n)
        return 0;
    uint8_t c = s[i + 1], d = i + 2 < n ? s[i + 2] : 0;
    if (fold) {
        if (c == 0xC5 && d == 0xBF)
            return 3;
        c = (uint8_t)(c | (c >= 'A' && c <= 'Z' ? 0x20 : 0));
        d = (uint8_t)(d | (d >= 'A' && d <= 'Z' ? 0x20 : 0));
    }
    if (c == 's' || c == 't' || c == 'm' || c == 'd')
        return 2;
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
        return 3;
    return 0;
}

/* The whitespace run starting at i: its end; *last = start of its last code point;
 * *nl = one past its last \r or \n, or 0 if none. */
static size_t space_run(const uint8_t *s, size_t n, size_t i, size_t *last, size_t *nl)
{
    int k;
    size_t e = i;
    *last = i;
    *nl = 0;
    while (e < n && class_at(s, n, e, &k) == LPL_UC_SPACE) {
        *last = e;
        if (s[e] == '\r' || s[e] == '\n')
            *nl = e + 1;
        e += (size_t)k;
    }
    return e;
}

/* \s+(?!\S)|\s+ at the whitespace run [i, e): the whole run if it ends the text or,
 * backing off one code point, the run minus its last whitespace; a lone whitespace
 * before non-space falls to \s+. */
static size_t trailing_space_end(size_t n, size_t i, size_t e, size_t last)
{
    return e == n || last == i ? e : last;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t gpt2_end(const uint8_t *s, size_t n, size_t i)
{
    size_t c = contraction_len(s, n, i, 0);
    if (c)
        return i + c;
    int k, cls = class_at(s, n, i, &k);
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n) {
        int next = class_at(s, n, i + 1, &k);
        if (next != LPL_UC_SPACE) { /* " ?" takes the space in front of a letter/number/other run */
            j = i + 1;
            cls = next;
        }
    }
    if (cls != LPL_UC_SPACE)
        return run_end(s, n, j, cls);
    size_t last, nl, e = space_run(s, n, i, &last, &nl);
    return trailing_space_end(n, i, e, last);
}

/* Qwen2 (max_digits 1) and Llama 3 (max_digits 3):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*
 * |\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t qwen2_end(const uint8_t *s, size_t n, size_t i, int max_digits)
{
    size_t c = contraction_len(s, n, i, 1);
    if (c)
        return i + c;
    int k, k2, cls = class_at(s, n, i, &k);
    if (cls == LPL_UC_LETTER)
        return run_end(s, n, i, LPL_UC_LETTER);
    if (cls != LPL_UC_NUMBER && s[i] != '\r' && s[i] != '\n' && i + (size_t)k < n &&
        class_at(s, n, i + (size_t)k, &k2) == LPL_UC_LETTER)
        return run_end(s, n, i + (size_t)k, LPL_UC_LETTER);
    if (cls == LPL_UC_NUMBER) {
        size_t j = i;
        for (int d = 0; d < max_digits && j < n && class_at(s, n, j, &k2) == LPL_UC_NUMBER; d++)
            j += (size_t)k2;
        return j;
    }
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n && class_at(s, n, i + 1, &k2) == LPL_UC_OTHER)
        j = i + 1;
    if (class_at(s, n, j, &k2) == LPL_UC_OTHER) {
        j = run_end(s, n, j, LPL_UC_OTHER);
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        return j;
    }
    /* \s*[\r\n]+ backs off from the end of the run to its last line break */
    size_t last, nl, e = space_run(s, n, i, &last, &nl);
    if (nl)
        return nl;
    return trailing_space_end(n, i, e, last);
}

void lpl_pre_begin(lpl_pre_scan *sc, lpl_pre_rule rule, const uint8_t *s, size_t n)
{
    sc->rule = rule;
    sc->s = s;
    sc->n = n;
    sc->limit = 0;
}

/* SmolLM: a digit is a piece of its own; between digits, the GPT-2 rule sees the
 * stretch as a whole text (its (?!\S) looks no further than the stretch). */
static size_t smollm_next(lpl_pre_scan *sc, size_t i)
{
    int k;
    if (i >= sc->limit) {
        if (class_at(sc->s, sc->n, i, &k) == LPL_UC_NUMBER)
            return i + (size_t)k;
        size_t j = i;
        while (j < sc->n && class_at(sc->s, sc->n, j, &k) != LPL_UC_NUMBER)
            j += (size_t)k;
        sc->limit = j;
    }
    return gpt2_end(sc->s, sc->limit, i);
}

size_t lpl_pre_next(lpl_pre_scan *sc, size_t i)
{
    switch (sc->rule) {
    case LPL_PRE_GPT2: return gpt2_end(sc->s, sc->n, i);
    case LPL_PRE_SMOLLM: return smollm_next(sc, i);
    case LPL_PRE_QWEN2: return qwen2_end(sc->s, sc->n, i, 1);
    case LPL_PRE_LLAMA3: return qwen2_end(sc->s, sc->n, i, 3);
    case LPL_PRE_NONE: break;
    }
    return sc->n;
}

static const char *const pre_names[] = {"gpt-2", "smollm", "qwen2", "llama-bpe", "default"};

const char *lpl_pre_name(lpl_pre_rule r)
{
    return (unsigned)r < sizeof pre_names / sizeof *pre_names ? pre_names[r] : "default";
}

int lpl_pre_from_name(const char *name)
{
    for (int r = 0; r < (int)(sizeof pre_names / sizeof *pre_names); r++)
        if (!strcmp(name, pre_names[r]))
            return r;
    return -1;
}
