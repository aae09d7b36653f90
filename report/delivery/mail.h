/*
 * mail.h - report mail: a MIME message built here, sent over SMTP by libcurl.
 *
 * The message (RFC 5322 + MIME, CRLF line ends):
 *
 *   multipart/mixed
 *     multipart/alternative        (text/plain only when there is no HTML)
 *       text/plain; charset=utf-8  base64
 *       text/html; charset=utf-8   base64
 *     one part per attachment      base64 in 76-column lines,
 *                                  Content-Disposition: attachment
 *
 * Content types by file extension (mail_content_type): .pdf
 * application/pdf, .csv text/csv; charset=utf-8, .xlsx
 * application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, else
 * application/octet-stream.  Attachments are base64 whatever their type, so
 * the receiver gets the bytes exactly (a CSV's CRLFs included).  A non-ASCII
 * subject or display name becomes RFC 2047 encoded-words; a non-ASCII file
 * name is sent as RFC 2231 filename*=UTF-8''... (and as an encoded-word
 * name= for old readers).
 *
 * SMTP: tls none (plain, for a local relay), starttls (STARTTLS required:
 * the send fails rather than go on in clear text) or tls (implicit TLS,
 * smtps, usually port 465).  AUTH is used when a username is set; libcurl
 * picks the mechanism the server offers.
 */
#ifndef CDRFLOW_REPORT_MAIL_H
#define CDRFLOW_REPORT_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "delivery.h"
#include "outbox.h"

enum mail_tls { MAIL_TLS_NONE, MAIL_TLS_STARTTLS, MAIL_TLS_TLS };

struct mail_cfg {
	char *host;
	int64_t port;
	int tls;                 /* enum mail_tls */
	char *tls_ca_file;       /* CA bundle (empty: the system's) */
	int tls_verify;
	char *helo;              /* EHLO name (empty: libcurl's default) */
	char *username;          /* empty: no AUTH */
	char *password_env;      /* environment variable holding the password */
	char *password_file;     /* or a file whose first line is it */
	char *from;              /* "reports@example.com" or "Name <reports@example.com>" */
	char *to;                /* comma-separated list of the same forms */
	char *subject;
	uint64_t timeout_ms;
	uint64_t connect_timeout_ms;
};

struct mail_attachment {
	const char *path;         /* the file to attach */
	const char *filename;     /* name shown to the reader (NULL: basename of path) */
	const char *content_type; /* NULL: by extension */
};

struct mail_msg {
	const char *from, *to, *subject; /* header forms, as in struct mail_cfg */
	const char *text;                /* plain-text body, UTF-8 */
	const char *html;                /* HTML body, UTF-8, or NULL */
	const struct mail_attachment *att;
	size_t natt;
	const char *message_id;          /* "<...@...>" or NULL: a random one */
	int64_t date;                    /* unix seconds, 0: now */
};

const char *mail_content_type(const char *filename);

/* Split an address list ("a@x, B <b@y>") into bare addresses for the SMTP
 * envelope.  *addrs: malloc()ed array of malloc()ed strings.  0, or -1 with
 * a message (empty list, a bad address). */
int mail_addresses(const char *list, char ***addrs, size_t *n, char *err, size_t errlen);
void mail_addresses_free(char **addrs, size_t n);

/* Build the whole message into out.  0; -1 with errno and err: EINVAL bad
 * input (a line break in a header, a bad address), or the errno of an
 * attachment that cannot be read (ENOENT, EACCES, EIO). */
int mail_build(const struct mail_msg *m, struct buf *out, char *err, size_t errlen);

/* Send a built message.  password may be NULL/"" when no username is set. */
enum dlv_result mail_send(const struct mail_cfg *c, const char *password, const char *from_addr,
			  char *const *rcpt, size_t nrcpt, const char *data, size_t len, char *err, size_t errlen);

/* Send, and keep what was not accepted in spool_dir (outbox_keep; the
 * envelope goes into the message's meta line).  Returns an exit code. */
int mail_deliver(const struct mail_cfg *c, const char *password, const char *spool_dir, const char *key,
		 const char *from_addr, char *const *rcpt, size_t nrcpt, const char *data, size_t len, char *err,
		 size_t errlen);

/* A outbox_send_fn for kind "mail" messages: ctx is a struct mail_sender. */
struct mail_sender {
	const struct mail_cfg *cfg;
	const char *password;
};
enum dlv_result mail_spool_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen);

#endif
