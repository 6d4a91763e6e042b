/* The report's template filling (src/lab/report.c): each slot filled once, in one pass
 * (text put into a slot is not searched again), every '<' of the results written
 * \u003c, and clear refusals for a document that is not results, a template without
 * its slots, and a renderer that would end its script element. */
#include <string.h>

#include "check.h"
#include "lpl/lab/report.h"

static const char *const RESULTS = "{\"format\": \"loralab-results\", \"trainings\": [{\"name\": \"</script><b>\"}]}";

static void test_fill(void)
{
    lpl_error err;
    lpl_error_clear(&err);
    /* The renderer names a slot and the results hold one: neither is replaced again. */
    const char *tmpl = "A[@@LAB_RESULTS@@]B[@@LAB_META@@]C[@@LAB_RENDERER@@]D";
    const char *renderer = "x = '@@LAB_RESULTS@@' < 1;";
    const char *res = "{\"format\": \"loralab-results\", \"trainings\": [{\"name\": \"@@LAB_META@@ <x>\"}]}";
    char *html = lpl_report_html(tmpl, renderer, res, strlen(res), "2026-12-06T06:00:00Z", &err);
    CHECK(html != NULL, "%s", err.msg);
    const char *want = "A[{\"format\": \"loralab-results\", \"trainings\": [{\"name\": \"@@LAB_META@@ \\u003cx>\"}]}]"
                       "B[{\"written\": \"2026-12-06T06:00:00Z\"}]C[x = '@@LAB_RESULTS@@' < 1;]D";
    CHECK(html && !strcmp(html, want), "got %s", html ? html : "(null)");
    free(html);

    html = lpl_report_html("<script>@@LAB_RESULTS@@</script>@@LAB_META@@@@LAB_RENDERER@@", "", RESULTS, strlen(RESULTS), "t", &err);
    CHECK(html && strstr(html, "\\u003c/script>\\u003cb>") && !strstr(html, "</script><b>"), "escaped: %s", html ? html : "");
    free(html);
}

static void test_refusals(void)
{
    const char *tmpl = "@@LAB_RESULTS@@ @@LAB_META@@ @@LAB_RENDERER@@";
    struct { const char *json, *msg; } bad[] = {
        {"{\"format\": \"loralab-results\", \"trainings\": [", "not JSON (parsing stopped at byte"},
        {"[1, 2]", "not a loralab results document"},
        {"{\"format\": \"loralab-plan\", \"trainings\": [{}]}", "not a loralab results document"},
        {"{\"format\": \"loralab-results\", \"trainings\": []}", "a results document with no trainings"},
        {"{\"format\": \"loralab-results\", \"placements\": []}", "a results document with no trainings"}, /* an older file */
        {"{\"format\": \"loralab-results\"}", "a results document with no trainings"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lpl_error err;
        lpl_error_clear(&err);
        char *html = lpl_report_html(tmpl, "", bad[i].json, strlen(bad[i].json), "t", &err);
        CHECK(!html && err.code == LPL_ERR_FORMAT && strstr(err.msg, bad[i].msg), "%s: %d %s", bad[i].json, err.code, err.msg);
        free(html);
    }
    lpl_error err;
    lpl_error_clear(&err);
    char *html = lpl_report_html("@@LAB_RESULTS@@ @@LAB_META@@", "", RESULTS, strlen(RESULTS), "t", &err);
    CHECK(!html && err.code == LPL_ERR_INVALID && strstr(err.msg, "0 @@LAB_RENDERER@@ slots"), "%s", err.msg);
    lpl_error_clear(&err);
    html = lpl_report_html("@@LAB_RESULTS@@ @@LAB_RESULTS@@ @@LAB_META@@ @@LAB_RENDERER@@", "", RESULTS, strlen(RESULTS), "t", &err);
    CHECK(!html && strstr(err.msg, "2 @@LAB_RESULTS@@ slots"), "%s", err.msg);
    lpl_error_clear(&err);
    html = lpl_report_html(tmpl, "a = '</SCRIPT>';", RESULTS, strlen(RESULTS), "t", &err);
    CHECK(!html && err.code == LPL_ERR_INVALID && strstr(err.msg, "</script"), "%s", err.msg);
}

/* The files themselves: the template has each slot once and the renderer no end tag. */
static void test_shipped_files(void)
{
    lpl_error err;
    lpl_error_clear(&err);
    char *tmpl = NULL, *renderer = NULL;
    CHECK(!lpl_read_file("web/report_template.html", &tmpl, NULL, &err), "%s", err.msg);
    CHECK(!lpl_read_file("web/report.js", &renderer, NULL, &err), "%s", err.msg);
    if (tmpl && renderer) {
        char *html = lpl_report_html(tmpl, renderer, RESULTS, strlen(RESULTS), "t", &err);
        CHECK(html && strstr(html, renderer), "%s", err.msg);
        free(html);
    }
    free(tmpl);
    free(renderer);
}

int main(void)
{
    test_fill();
    test_refusals();
    test_shipped_files();
    return check_report("test_report");
}
