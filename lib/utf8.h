/*
 * utf8.h - text for people and files from untrusted bytes: invalid UTF-8
 * becomes U+FFFD, controls optionally spaces.  Shared by the report writers
 * (report/) and delivery (report/delivery/: mail bodies, webhook JSON).
 */
#ifndef CDRFLOW_UTF8_H
#define CDRFLOW_UTF8_H

#include <stddef.h>

#include "buf.h"

/* Append s (at most maxbytes of it, cut on a character boundary; 0 = no
 * limit) to out as valid UTF-8: invalid sequences become U+FFFD; with
 * RTEXT_NO_CTRL every C0 control and DEL becomes a space.  Returns the
 * number of characters appended, or -1 if out's cap was hit. */
#define RTEXT_NO_CTRL 1u
long rtext_clean(struct buf *out, const char *s, size_t maxbytes, unsigned flags);

/* Number of UTF-8 characters in s (what a spreadsheet calls its length). */
size_t utf8_chars(const char *s);

#endif
