/*
 * html_text: an HTML mail body as the plain text a person would read.
 *
 * Not a browser: a single forward pass over the bytes that never fails on
 * bad markup.  script, style, head, title and template contents are
 * dropped; block elements end lines (p and headings leave a blank line);
 * li starts "- "; whitespace collapses outside pre; character references
 * are decoded; a link reads "label (url)" unless the label already is the
 * url; blockquote lines start with "> " per level, so the quote trimmer
 * treats HTML replies like plain ones.
 */
#ifndef PROMPTD_MAIL_HTML_TEXT_H
#define PROMPTD_MAIL_HTML_TEXT_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the text of html (clean UTF-8, see mail_clean) to out, stopping
 * once out would pass limit bytes.  0 done, 1 stopped at the limit, -1 the
 * buf failed.  The output is clean UTF-8 again. */
int html_to_text(buf *out, const char *html, size_t n, size_t limit);

#endif
