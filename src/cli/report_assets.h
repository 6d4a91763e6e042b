/* The report's template and renderer (web/report_template.html, web/report.js), built
 * into the program by cmake/embed_text.cmake so that `loralab report` needs no files
 * beside it and fills the very template the page fills. */
#ifndef LPL_CLI_REPORT_ASSETS_H
#define LPL_CLI_REPORT_ASSETS_H

extern const char lpl_report_template[];
extern const char lpl_report_renderer[];

#endif
