/* UTF-8 validation: one checker for the format readers, the tokenizer and the data
 * loader, so that every refusal names the same byte. */
#include "lpl/core/utf8.h"

#include <stdint.h>

int lpl_utf8_validate(const void *text, size_t len, size_t *bad_offset)
{
    const uint8_t *s = text;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        int need;
        uint32_t min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c < 0xE0) {
            need = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c < 0xF0) {
            need = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c < 0xF5) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            goto bad;
        }
        if (len - i <= (size_t)need)
            goto bad;
        for (int k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8 */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            goto bad;
        i += (size_t)need + 1;
    }
    return 1;
bad:
    if (bad_offset)
        *bad_offset = i;
    return 0;
}
