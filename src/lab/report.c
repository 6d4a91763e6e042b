/* The self-contained HTML report: a results document and the renderer poured into the
 * one template the page uses too (web/report_template.html), slot by slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "lpl/lab/document.h"
#include "lpl/lab/report.h"

static const char *const SLOTS[] = {"@@LAB_RESULTS@@", "@@LAB_META@@", "@@LAB_RENDERER@@"};
enum { SLOT_RESULTS, SLOT_META, SLOT_RENDERER, N_SLOTS };

lpl_status lpl_report_check_results(const char *json, size_t len, lpl_error *err)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return lpl_fail(err, LPL_ERR_FORMAT, "not JSON (parsing stopped at byte %zu of %zu)", at, len);
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(doc, "format");
    const cJSON *ps = lpl_results_trainings(doc);
    lpl_status st = LPL_OK;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "loralab-results"))
        st = lpl_fail(err, LPL_ERR_FORMAT, "not a loralab results document (no \"format\": \"loralab-results\")");
    else if (!ps || cJSON_GetArraySize(ps) == 0)
        st = lpl_fail(err, LPL_ERR_FORMAT, "a results document with no trainings");
    cJSON_Delete(doc);
    return st;
}

/* Bytes the results need once every '<' is written as the six characters \u003c. */
static size_t escaped_len(const char *s, size_t n)
{
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '<' ? 5 : 0;
    return k;
}

static char *put_escaped(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<') {
            memcpy(o, "\\u003c", 6);
            o += 6;
        } else {
            *o++ = s[i];
        }
    }
    return o;
}

/* The first slot at or after p, or NULL; *which says which one. */
static const char *next_slot(const char *p, int *which)
{
    const char *best = NULL;
    for (int k = 0; k < N_SLOTS; k++) {
        const char *q = strstr(p, SLOTS[k]);
        if (q && (!best || q < best)) {
            best = q;
            *which = k;
        }
    }
    return best;
}

static int has_script_end(const char *s)
{
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<'))
        if (!strncasecmp(p, "</script", 8))
            return 1;
    return 0;
}

char *lpl_report_html(const char *tmpl, const char *renderer, const char *json, size_t len, const char *written,
                      lpl_error *err)
{
    if (lpl_report_check_results(json, len, err))
        return NULL;
    if (has_script_end(renderer)) {
        lpl_fail(err, LPL_ERR_INVALID, "the report renderer contains \"</script\": it would end its element early");
        return NULL;
    }
    char meta[160];
    snprintf(meta, sizeof meta, "{\"written\": \"%s\"}", written ? written : "");
    size_t rlen = strlen(renderer), mlen = strlen(meta), total = strlen(tmpl) + 1;
    int seen[N_SLOTS] = {0}, which = 0;
    for (const char *p = next_slot(tmpl, &which); p; p = next_slot(p + strlen(SLOTS[which]), &which)) {
        seen[which]++;
        total += which == SLOT_RESULTS ? escaped_len(json, len) : which == SLOT_META ? mlen : rlen;
    }
    for (int k = 0; k < N_SLOTS; k++) {
        if (seen[k] != 1) {
            lpl_fail(err, LPL_ERR_INVALID, "the report template has %d %s slots (needs exactly one)", seen[k], SLOTS[k]);
            return NULL;
        }
    }
    char *out = malloc(total), *o = out;
    if (!out) {
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: a report of %zu bytes", total);
        return NULL;
    }
    const char *p = tmpl, *q;
    while ((q = next_slot(p, &which))) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        if (which == SLOT_RESULTS)
            o = put_escaped(o, json, len);
        else if (which == SLOT_META)
            o = (char *)memcpy(o, meta, mlen) + mlen;
        else
            o = (char *)memcpy(o, renderer, rlen) + rlen;
        p = q + strlen(SLOTS[which]);
    }
    size_t rest = strlen(p);
    memcpy(o, p, rest + 1);
    return out;
}
