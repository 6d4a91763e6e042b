/* Pre-tokenisation rules of byte-level BPE tokenizers (private to the tokenizer):
 * where the text is cut before BPE runs on each piece. Each rule is one regex of
 * Hugging Face's tokenizers (or llama.cpp's pre-tokenizer of the same name), written
 * out by hand as a backtracking regex engine would match it; \p{L}, \p{N} and \s are
 * the classes of unicode_classes.h. */
#ifndef LPL_PRETOKENIZE_H
#define LPL_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    LPL_PRE_GPT2,
    /* Digits(individual_digits) then the GPT-2 rule on each stretch between digits
     * (SmolLM, SmolLM2, StarCoder) */
    LPL_PRE_SMOLLM,
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*
     * |\s*[\r\n]+|\s+(?!\S)|\s+  (Qwen2, Qwen2.5) */
    LPL_PRE_QWEN2,
    /* the Qwen2 rule with \p{N}{1,3} (Llama 3) */
    LPL_PRE_LLAMA3,
    /* no cut: the whole text is one piece (SentencePiece-style BPE) */
    LPL_PRE_NONE
} lpl_pre_rule;

/* A scan of one text (valid UTF-8) under one rule. */
typedef struct {
    lpl_pre_rule rule;
    const uint8_t *s;
    size_t n;
    size_t limit; /* LPL_PRE_SMOLLM: end of the current stretch without digits */
} lpl_pre_scan;

/* Starts a scan of s[0..n). */
void lpl_pre_begin(lpl_pre_scan *sc, lpl_pre_rule rule, const uint8_t *s, size_t n);
/* End of the pre-token starting at i (< n). Calls must come in text order
 * (i = 0, then each returned end). */
size_t lpl_pre_next(lpl_pre_scan *sc, size_t i);
/* llama.cpp's name of a rule (tokenizer.ggml.pre) and back; -1 if unknown. */
const char *lpl_pre_name(lpl_pre_rule r);
int lpl_pre_from_name(const char *name);

/* Decodes one code point at s[i] (i < n) of valid UTF-8; returns its length. */
static inline int lpl_utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp)
{
    uint8_t c = s[i];
    (void)n;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        return 3;
    }
    *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 |
          (uint32_t)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
    return 4;
}

#endif
