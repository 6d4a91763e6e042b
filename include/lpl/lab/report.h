/* The self-contained HTML report of a results document: one template (the page's
 * web/report_template.html) with three slots, filled the same way by the page's
 * "Download report" (web/report.js, fillTemplate) and by `loralab report`. */
#ifndef LPL_REPORT_H
#define LPL_REPORT_H

#include <stddef.h>

#include "lpl/core/common.h"

/* Checks that json (len bytes) is a loralab results document: JSON, "format":
 * "loralab-results", a non-empty "trainings" list (or an older file's "placements").
 * LPL_ERR_FORMAT says what is wrong (with the byte where parsing stopped); LPL_ERR_NOMEM. */
lpl_status lpl_report_check_results(const char *json, size_t len, lpl_error *err);

/* The report: tmpl with @@LAB_RESULTS@@ replaced by json (every '<' written as
 * \u003c, so no "</script>" can end its element), @@LAB_META@@ by {"written":
 * "<written>"} and @@LAB_RENDERER@@ by renderer, in one pass (replaced text is not
 * searched again). json is checked with lpl_report_check_results first. Returns a
 * malloc'd string, or NULL with LPL_ERR_FORMAT (not a results document), LPL_ERR_INVALID
 * (a slot missing from tmpl, or renderer containing "</script") or LPL_ERR_NOMEM. */
char *lpl_report_html(const char *tmpl, const char *renderer, const char *json, size_t len, const char *written,
                      lpl_error *err);

#endif
