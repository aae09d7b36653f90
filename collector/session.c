#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ami.h"
#include "clock.h"
#include "md5key.h"
#include "config.h"
#include "secmem.h"
#include "log.h"
#include "strparse.h"
#include "xalloc.h"

#define READ_CHUNK (64u << 10)

enum { ST_BANNER, ST_CHALLENGE, ST_LOGIN, ST_STREAMING, ST_LOGOFF, ST_DONE };

/* After Logoff, how long to keep storing what Asterisk already sent. */
#define LOGOFF_DRAIN_MS 2000

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int want_write; /* TLS read needs the socket writable */
};

struct sess {
	struct node *n;
	const struct node_config *cfg;
	struct conn c;
	struct ami_parser parser;
	int state;
	enum session_result result;
	uint64_t ping_seq;
	uint64_t ping_sent_ms; /* 0 = no Ping outstanding */
	uint64_t next_ping_ms;
	uint64_t deadline_ms;  /* login must finish by then */
	uint64_t last_rx_ms;   /* when we last read from the socket (or finished processing) */
	uint64_t batch_us;     /* receive time of the bytes being parsed */
	int lag_pending;       /* measure lag on the next event */
	uint64_t events;
	char why[256];         /* why the session ended */
};

int node_wait_stop(struct node *n, uint64_t ms)
{
	struct pollfd p = { n->stop_fd, POLLIN, 0 };
	int rc;
	do
		rc = poll(&p, 1, ms > INT32_MAX ? INT32_MAX : (int)ms);
	while (rc < 0 && errno == EINTR);
	return rc > 0;
}

/* ------------------------------------------------------------ transport */

static int connect_tcp(struct sess *s)
{
	const struct node_config *cfg = s->cfg;
	char port[16];
	snprintf(port, sizeof port, "%" PRId64, cfg->port);
	struct addrinfo hints = { 0 }, *res, *ai;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int rc = getaddrinfo(cfg->host, port, &hints, &res);
	if (rc) {
		snprintf(s->why, sizeof s->why, "cannot resolve \"%s\": %s", cfg->host, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p[2] = { { fd, POLLOUT, 0 }, { s->n->stop_fd, POLLIN, 0 } };
			int prc;
			do
				prc = poll(p, 2, (int)cfg->connect_timeout_ms);
			while (prc < 0 && errno == EINTR);
			int soerr = 0;
			socklen_t len = sizeof soerr;
			if (prc > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
				break;
			errno = prc == 0 ? ETIMEDOUT : (soerr ? soerr : errno);
			if (p[1].revents)
				errno = ECANCELED;
		}
		int e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(s->why, sizeof s->why, "cannot connect to %s:%" PRId64 ": %s", cfg->host, cfg->port,
			 strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	int rcvbuf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	s->c.fd = fd;
	return 0;
}

static const char *ssl_error_string(void)
{
	static _Thread_local char msg[256];
	unsigned long e = ERR_get_error();
	if (!e)
		return "TLS error";
	ERR_error_string_n(e, msg, sizeof msg);
	ERR_clear_error();
	return msg;
}

static int tls_handshake(struct sess *s)
{
	const struct node_config *cfg = s->cfg;
	const char *name = *cfg->tls_server_name ? cfg->tls_server_name : cfg->host;
	s->c.ctx = SSL_CTX_new(TLS_client_method());
	if (!s->c.ctx) {
		snprintf(s->why, sizeof s->why, "cannot create TLS context: %s", ssl_error_string());
		return -1;
	}
	SSL_CTX_set_min_proto_version(s->c.ctx, TLS1_2_VERSION);
	if (cfg->tls_verify) {
		SSL_CTX_set_verify(s->c.ctx, SSL_VERIFY_PEER, NULL);
		int ok = *cfg->tls_ca_file ? SSL_CTX_load_verify_locations(s->c.ctx, cfg->tls_ca_file, NULL)
					   : SSL_CTX_set_default_verify_paths(s->c.ctx);
		if (!ok) {
			snprintf(s->why, sizeof s->why, "cannot load CA certificates \"%s\": %s",
				 *cfg->tls_ca_file ? cfg->tls_ca_file : "(system)", ssl_error_string());
			s->result = SESSION_CONFIG;
			return -1;
		}
	}
	s->c.ssl = SSL_new(s->c.ctx);
	if (!s->c.ssl || !SSL_set_fd(s->c.ssl, s->c.fd)) {
		snprintf(s->why, sizeof s->why, "cannot set up TLS: %s", ssl_error_string());
		return -1;
	}
	SSL_set_tlsext_host_name(s->c.ssl, name);
	if (cfg->tls_verify && !SSL_set1_host(s->c.ssl, name)) {
		snprintf(s->why, sizeof s->why, "cannot set TLS host name: %s", ssl_error_string());
		return -1;
	}
	uint64_t deadline = clock_mono_ms() + cfg->connect_timeout_ms;
	for (;;) {
		int rc = SSL_connect(s->c.ssl);
		if (rc == 1)
			return 0;
		int e = SSL_get_error(s->c.ssl, rc);
		uint64_t now = clock_mono_ms();
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || now >= deadline) {
			long vr = SSL_get_verify_result(s->c.ssl);
			if (vr != X509_V_OK)
				snprintf(s->why, sizeof s->why, "TLS certificate of %s rejected: %s", name,
					 X509_verify_cert_error_string(vr));
			else if (now >= deadline)
				snprintf(s->why, sizeof s->why, "TLS handshake with %s timed out", name);
			else
				snprintf(s->why, sizeof s->why, "TLS handshake with %s failed: %s", name,
					 ssl_error_string());
			return -1;
		}
		struct pollfd p[2] = { { s->c.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0 },
				       { s->n->stop_fd, POLLIN, 0 } };
		if (poll(p, 2, (int)(deadline - now)) > 0 && p[1].revents) {
			snprintf(s->why, sizeof s->why, "stopping");
			return -1;
		}
	}
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* >0 bytes, 0 EOF, -1 error (errno), -2 nothing available now. */
static ssize_t conn_read(struct conn *c, void *p, size_t n)
{
	if (c->ssl) {
		c->want_write = 0;
		int k = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if (k > 0)
			return k;
		int e = SSL_get_error(c->ssl, k);
		if (e == SSL_ERROR_WANT_READ)
			return -2;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->want_write = 1;
			return -2;
		}
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (e == SSL_ERROR_SYSCALL && errno == 0)
			return 0;
		errno = EPROTO;
		return -1;
	}
	ssize_t k;
	do
		k = recv(c->fd, p, n, 0);
	while (k < 0 && errno == EINTR);
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -2;
	return k;
}

/* Send all of p within timeout_ms. */
static int conn_write(struct conn *c, const char *p, size_t n, uint64_t timeout_ms)
{
	uint64_t deadline = clock_mono_ms() + timeout_ms;
	while (n) {
		ssize_t k;
		int want = POLLOUT;
		if (c->ssl) {
			int r = SSL_write(c->ssl, p, (int)n);
			if (r > 0) {
				k = r;
			} else {
				int e = SSL_get_error(c->ssl, r);
				if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
					errno = EPROTO;
					return -1;
				}
				want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				k = -1;
				errno = EAGAIN;
			}
		} else {
			k = send(c->fd, p, n, MSG_NOSIGNAL);
		}
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		uint64_t now = clock_mono_ms();
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd pf = { c->fd, (short)want, 0 };
		poll(&pf, 1, (int)(deadline - now));
	}
	return 0;
}

/* ------------------------------------------------------------ AMI actions */

static int send_action(struct sess *s, const char *text)
{
	if (conn_write(&s->c, text, strlen(text), s->cfg->connect_timeout_ms) < 0) {
		snprintf(s->why, sizeof s->why, "cannot send to %s:%" PRId64 ": %s", s->cfg->host, s->cfg->port,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* The secret is fetched for this login only (secret_file is read now, an
 * inline or environment secret copied from the sealed copy), used, and
 * wiped: between logins no copy of it exists but the sealed one. */
static int send_login(struct sess *s, const char *challenge)
{
	char err[256];
	char *secret = node_secret(s->cfg, err, sizeof err);
	if (!secret) {
		snprintf(s->why, sizeof s->why, "%s", err);
		s->result = SESSION_CONFIG;
		return -1;
	}
	size_t cap = strlen(s->cfg->username) + strlen(secret) + strlen(s->cfg->events) + 256;
	char *text = secmem_alloc(cap); /* the login text holds the secret (plain auth) */
	if (!text) {
		secmem_free(secret);
		snprintf(s->why, sizeof s->why, "cannot allocate memory for the login: %s", strerror(errno));
		return -1;
	}
	size_t o = (size_t)snprintf(text, cap, "Action: Login\r\nActionID: cdrflow-login\r\nUsername: %s\r\n",
				    s->cfg->username);
	if (challenge) {
		char key[33];
		if (ami_md5_key(challenge, secret, key) < 0) {
			secmem_free(secret);
			secmem_free(text);
			snprintf(s->why, sizeof s->why, "MD5 is not available: %s", ssl_error_string());
			return -1;
		}
		o += (size_t)snprintf(text + o, cap - o, "AuthType: MD5\r\nKey: %s", key);
		OPENSSL_cleanse(key, sizeof key);
		o += (size_t)snprintf(text + o, cap - o, "\r\n");
	} else {
		o += (size_t)snprintf(text + o, cap - o, "Secret: %s\r\n", secret);
	}
	secmem_free(secret);
	snprintf(text + o, cap - o, "Events: %s\r\n\r\n", s->cfg->events);
	int rc = send_action(s, text);
	secmem_free(text);
	return rc;
}

static int send_ping(struct sess *s)
{
	char text[128];
	snprintf(text, sizeof text, "Action: Ping\r\nActionID: cdrflow-ping-%" PRIu64 "\r\n\r\n", ++s->ping_seq);
	s->ping_sent_ms = clock_mono_ms();
	return send_action(s, text);
}

const char *const check_class_names[] = {
	"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
	"cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message",
};
const unsigned check_nclasses = sizeof check_class_names / sizeof check_class_names[0];

/* --check: ask the PBX how its AMI is set up (needs write=command; a refusal is reported, not fatal). */
static int send_check(struct sess *s)
{
	char text[256];
	snprintf(text, sizeof text, "Action: Command\r\nActionID: cdrflow-check-user\r\nCommand: manager show user %s\r\n\r\n",
		 s->cfg->username);
	if (send_action(s, "Action: Command\r\nActionID: cdrflow-check-settings\r\nCommand: manager show settings\r\n\r\n") < 0 ||
	    send_action(s, text) < 0 ||
	    send_action(s, "Action: Command\r\nActionID: cdrflow-check-cel\r\nCommand: cel show status\r\n\r\n") < 0)
		return -1;
	return send_ping(s);
}

static void copy_trim(char *dst, size_t dstlen, const char *v, size_t len)
{
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
		len--;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static void append_item(char *dst, size_t dstlen, const char *item)
{
	size_t off = strlen(dst);
	snprintf(dst + off, dstlen - off, "%s%s", off ? "," : "", item);
}

/* One "Output: <line>" of a check command: "Key: value" lines. */
static void check_line(struct node_check *c, const char *which, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return;
	char key[64], val[512];
	copy_trim(key, sizeof key, line, (size_t)(colon - line));
	copy_trim(val, sizeof val, colon + 1, len - (size_t)(colon + 1 - line));
	if (!strcmp(which, "settings")) {
		if (!strcasecmp(key, "Timestamp events"))
			snprintf(c->timestampevents, sizeof c->timestampevents, "%s", val);
		else if (!strcasecmp(key, "Channel vars"))
			snprintf(c->channelvars, sizeof c->channelvars, "%s", val);
		else if (!strcasecmp(key, "Disabled events"))
			snprintf(c->disabledevents, sizeof c->disabledevents, "%s", val);
	} else if (!strcmp(which, "user")) {
		if (!strcasecmp(key, "read perm"))
			snprintf(c->read_perm, sizeof c->read_perm, "%s", val);
	} else if (!strcasecmp(key, "CEL Logging")) {
		snprintf(c->cel_logging, sizeof c->cel_logging, "%s", val);
	} else if (!strcasecmp(key, "CEL Tracking Event")) {
		append_item(c->cel_events, sizeof c->cel_events, val);
	}
}

static void check_response(struct node_check *c, const struct ami_msg *m, const char *which)
{
	int *state = !strcmp(which, "settings") ? &c->settings : !strcmp(which, "user") ? &c->user : &c->cel;
	if (!ami_value_is(m, "Response", "Success")) {
		*state = -1;
		return;
	}
	int lines = 0;
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		if (h->key_len == 6 && !strncasecmp(m->raw + h->key_off, "Output", 6)) {
			check_line(c, which, m->raw + h->val_off, h->val_len);
			lines++;
		}
	}
	*state = lines ? 1 : -1;
}

/* Only the Event header is indexed on the streaming path: look at the raw bytes. */
static const char *raw_value(const struct ami_msg *m, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	const char *p = memmem(m->raw, m->raw_len, key, kl);
	if (!p)
		return NULL;
	p += kl;
	const char *end = m->raw + m->raw_len, *e = p;
	while (e < end && *e != '\r' && *e != '\n')
		e++;
	*len = (size_t)(e - p);
	return p;
}

static void check_event(struct node_check *c, const struct ami_msg *m)
{
	size_t len;
	if (m->raw_len >= 18 && !memcmp(m->raw, "Event: FullyBooted", 18))
		return; /* never has a Timestamp */
	c->events++;
	if (raw_value(m, "\nTimestamp: ", &len))
		c->events_ts++;
	const char *v = raw_value(m, "\nPrivilege: ", &len);
	for (size_t i = 0; v && i < len;) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		for (unsigned k = 0; k < check_nclasses; k++)
			if (strlen(check_class_names[k]) == j - i && !memcmp(v + i, check_class_names[k], j - i))
				c->classes |= 1u << k;
		i = j + 1;
	}
}

static int on_message(void *ctx, const struct ami_msg *m)
{
	struct sess *s = ctx;
	struct node *n = s->n;
	size_t len;
	const char *v;
	switch (m->kind) {
	case AMI_BANNER:
		snprintf(n->ami_version, sizeof n->ami_version, "%d.%d.%d", s->parser.version[0],
			 s->parser.version[1], s->parser.version[2]);
		snprintf(n->check.banner, sizeof n->check.banner, "%s", s->parser.banner);
		if (s->state != ST_BANNER)
			return 0;
		if (s->cfg->auth == AUTH_MD5) {
			s->state = ST_CHALLENGE;
			return send_action(s, "Action: Challenge\r\nActionID: cdrflow-challenge\r\nAuthType: MD5\r\n\r\n");
		}
		s->state = ST_LOGIN;
		return send_login(s, NULL);
	case AMI_RESPONSE:
		v = ami_get(m, "ActionID", &len);
		if (!v)
			return 0;
		if (len == 17 && !memcmp(v, "cdrflow-challenge", 17) && s->state == ST_CHALLENGE) {
			const char *ch = ami_get(m, "Challenge", &len);
			if (!ami_value_is(m, "Response", "Success") || !ch || len == 0 || len > 64) {
				snprintf(s->why, sizeof s->why, "MD5 challenge refused by %s:%" PRId64, s->cfg->host, s->cfg->port);
				s->result = SESSION_AUTH_FAILED;
				return -1;
			}
			char challenge[65];
			memcpy(challenge, ch, len);
			challenge[len] = '\0';
			s->state = ST_LOGIN;
			return send_login(s, challenge);
		}
		if (len == 13 && !memcmp(v, "cdrflow-login", 13) && s->state == ST_LOGIN) {
			if (!ami_value_is(m, "Response", "Success")) {
				const char *msg = ami_get(m, "Message", &len);
				snprintf(s->why, sizeof s->why, "authentication failed for user \"%s\" at %s:%" PRId64 " (%.*s)",
					 s->cfg->username, s->cfg->host, s->cfg->port, msg ? (int)(len > 100 ? 100 : len) : 7,
					 msg ? msg : "refused");
				s->result = SESSION_AUTH_FAILED;
				return -1;
			}
			s->state = ST_STREAMING;
			atomic_store(&n->connected, 1);
			log_info("node %s: logged in to %s:%" PRId64 " as \"%s\" (AMI %s%s)", s->cfg->name, s->cfg->host,
				 s->cfg->port, s->cfg->username, n->ami_version, s->c.ssl ? ", TLS" : "");
			s->next_ping_ms = clock_mono_ms() + s->cfg->ping_interval_ms;
			if (n->once)
				return send_check(s);
			return 0;
		}
		if (len == 14 && !memcmp(v, "cdrflow-logoff", 14) && s->state == ST_LOGOFF) {
			/* Goodbye comes after every event already queued for us */
			s->state = ST_DONE;
			s->result = SESSION_STOPPED;
			return 1;
		}
		if (len > 14 && !memcmp(v, "cdrflow-check-", 14) && n->once) {
			char which[16];
			copy_trim(which, sizeof which, v + 14, len - 14);
			check_response(&n->check, m, which);
			return 0;
		}
		if (len > 13 && !memcmp(v, "cdrflow-ping-", 13)) {
			s->ping_sent_ms = 0;
			if (n->once) {
				s->state = ST_DONE;
				return 1;
			}
		}
		return 0;
	case AMI_EVENT: {
		/* every event of one read() was received at the same moment */
		if (n->spool && spool_add(n->spool, m->raw, m->raw_len, s->batch_us) < 0) {
			snprintf(s->why, sizeof s->why, "spool failed");
			s->result = SESSION_FATAL;
			return -1;
		}
		s->events++;
		if (n->once)
			check_event(&n->check, m);
		if (s->lag_pending) { /* once per read: Timestamp vs receive time */
			const char *t = memmem(m->raw, m->raw_len, "\nTimestamp: ", 12);
			uint64_t ts = t ? parse_unix_us(t + 12, m->raw_len - (size_t)(t + 12 - m->raw)) : 0;
			if (ts)
				atomic_store(&n->lag_us, (int64_t)(s->batch_us - ts));
			s->lag_pending = 0;
		}
		return 0;
	}
	case AMI_OTHER:
		return 0;
	case AMI_ERR_GARBAGE: {
		uint64_t k = atomic_fetch_add(&n->garbage, 1);
		if (k < 10 || k % 1000 == 0)
			log_warn("node %s: ignoring a line that is not \"Key: Value\" outside any message: \"%.*s\"",
				 s->cfg->name, (int)(m->raw_len > 80 ? 80 : m->raw_len), m->raw);
		return 0;
	}
	case AMI_ERR_OVERSIZED: {
		atomic_fetch_add(&n->oversized, 1);
		size_t first = 0;
		while (first < m->raw_len && m->raw[first] != '\r' && m->raw[first] != '\n')
			first++;
		log_error("node %s: dropped a %zu-byte message larger than max_event_size (%" PRIu64 "): \"%.*s\"",
			  s->cfg->name, m->full_len, (uint64_t)s->parser.max_msg, (int)(first > 80 ? 80 : first), m->raw);
		return 0;
	}
	}
	return 0;
}

enum session_result session_run(struct node *n)
{
	struct sess s;
	memset(&s, 0, sizeof s);
	s.n = n;
	s.cfg = n->cfg;
	s.c.fd = -1;
	s.state = ST_BANNER;
	s.result = SESSION_LOST;
	char err[256];
	/* is there a secret at all?  (fetched again, and only, at the login) */
	char *secret = node_secret(s.cfg, err, sizeof err);
	if (!secret) {
		log_error("%s", err);
		snprintf(n->why, sizeof n->why, "%s", err);
		n->result = SESSION_CONFIG;
		return SESSION_CONFIG;
	}
	secmem_free(secret);
	ami_parser_init(&s.parser, n->max_event_size ? n->max_event_size : (1u << 20));
	s.parser.headers_only_first_event = 1; /* events are stored raw; only responses are read */

	if (connect_tcp(&s) < 0 || (s.cfg->tls && tls_handshake(&s) < 0))
		goto out;
	log_debug("node %s: connected to %s:%" PRId64, s.cfg->name, s.cfg->host, s.cfg->port);
	s.deadline_ms = clock_mono_ms() + s.cfg->connect_timeout_ms;
	s.last_rx_ms = clock_mono_ms();

	for (;;) {
		uint64_t now = clock_mono_ms();
		if (s.state != ST_STREAMING && s.state != ST_DONE && now >= s.deadline_ms) {
			snprintf(s.why, sizeof s.why, "no %s from %s:%" PRId64 " within %" PRIu64 " ms",
				 s.state == ST_BANNER ? "AMI banner" : "login response", s.cfg->host, s.cfg->port,
				 s.cfg->connect_timeout_ms);
			break;
		}
		if (s.state == ST_LOGOFF && now >= s.deadline_ms) {
			s.result = SESSION_STOPPED;
			log_warn("node %s: no Goodbye within %d ms of Logoff; closing", s.cfg->name, LOGOFF_DRAIN_MS);
			break;
		}
		/* Dead = Ping unanswered and nothing at all received for ping_timeout
		 * (a Pong can queue behind events we were too busy to read: while the
		 * disk stalls us, that is our delay, not the peer's), or unanswered
		 * for 4 x ping_timeout whatever else arrives. */
		if (s.state != ST_LOGOFF && s.ping_sent_ms && now - s.ping_sent_ms >= s.cfg->ping_timeout_ms &&
		    (now - s.last_rx_ms >= s.cfg->ping_timeout_ms || now - s.ping_sent_ms >= 4 * s.cfg->ping_timeout_ms)) {
			snprintf(s.why, sizeof s.why, "no answer to Ping from %s:%" PRId64 " in %" PRIu64 " ms; the peer is dead",
				 s.cfg->host, s.cfg->port, s.cfg->ping_timeout_ms);
			break;
		}
		if (s.state == ST_STREAMING && !s.ping_sent_ms && now >= s.next_ping_ms && !n->once) {
			if (send_ping(&s) < 0)
				break;
			s.next_ping_ms = now + s.cfg->ping_interval_ms;
		}
		/* while a Ping is outstanding only its deadline matters */
		uint64_t ping_deadline = s.ping_sent_ms + s.cfg->ping_timeout_ms;
		if (s.ping_sent_ms && ping_deadline <= now)
			ping_deadline = s.last_rx_ms + s.cfg->ping_timeout_ms > now ? s.last_rx_ms + s.cfg->ping_timeout_ms : now + 1;
		uint64_t wake = s.ping_sent_ms ? ping_deadline : s.state == ST_STREAMING ? s.next_ping_ms : s.deadline_ms;
		if (s.state != ST_STREAMING && s.state != ST_DONE && s.deadline_ms < wake)
			wake = s.deadline_ms;
		if (s.state == ST_LOGOFF)
			wake = s.deadline_ms;
		int timeout = wake > now ? (int)(wake - now) : 0;
		if (s.c.ssl && SSL_pending(s.c.ssl))
			timeout = 0;
		struct pollfd p[2] = { { s.c.fd, (short)(s.c.want_write ? POLLOUT : POLLIN), 0 },
				       { n->stop_fd, POLLIN, 0 } };
		int prc = poll(p, s.state == ST_LOGOFF ? 1 : 2, timeout);
		if (prc < 0 && errno != EINTR) {
			snprintf(s.why, sizeof s.why, "poll: %s", strerror(errno));
			break;
		}
		if (s.state != ST_LOGOFF && p[1].revents) {
			s.result = SESSION_STOPPED;
			if (s.state != ST_STREAMING ||
			    conn_write(&s.c, "Action: Logoff\r\nActionID: cdrflow-logoff\r\n\r\n", 44, 200) < 0)
				break;
			/* AMI never re-sends: store what is already on its way, up to Goodbye */
			s.state = ST_LOGOFF;
			s.deadline_ms = clock_mono_ms() + LOGOFF_DRAIN_MS;
			continue;
		}
		/* drain what the socket has, a bounded amount per wake-up */
		int stop = 0, got_any = 0;
		for (int i = 0; i < 16 && !stop; i++) {
			size_t avail;
			char *dst = ami_parser_space(&s.parser, READ_CHUNK, &avail);
			ssize_t k = conn_read(&s.c, dst, avail);
			if (k == -2)
				break;
			if (k <= 0) {
				if (s.state == ST_LOGOFF) {
					s.result = SESSION_STOPPED;
					stop = 1;
					break;
				}
				if (k == 0)
					snprintf(s.why, sizeof s.why, "%s:%" PRId64 " closed the connection", s.cfg->host, s.cfg->port);
				else
					snprintf(s.why, sizeof s.why, "read from %s:%" PRId64 " failed: %s", s.cfg->host,
						 s.cfg->port, strerror(errno));
				stop = 1;
				break;
			}
			got_any = 1;
			s.batch_us = clock_real_us();
			s.lag_pending = 1;
			int rc = ami_parser_commit(&s.parser, (size_t)k, on_message, &s);
			if (rc) {
				stop = 1;
				if (s.state == ST_DONE)
					s.result = SESSION_STOPPED;
			}
		}
		if (n->spool)
			spool_batch_end(n->spool);
		if (got_any)
			s.last_rx_ms = clock_mono_ms();
		if (stop)
			break;
	}
out:
	if (s.state == ST_STREAMING && s.result != SESSION_STOPPED) {
		size_t pending = ami_parser_pending(&s.parser);
		if (pending)
			log_warn("node %s: discarding a partial message of %zu bytes cut by the disconnect", s.cfg->name, pending);
	}
	if (s.result == SESSION_AUTH_FAILED || s.result == SESSION_CONFIG)
		log_error("node %s: %s", s.cfg->name, s.why);
	else if (s.result != SESSION_STOPPED && *s.why && !node_wait_stop(n, 0))
		log_warn("node %s: %s", s.cfg->name, s.why);
	atomic_store(&n->connected, 0);
	conn_close(&s.c);
	ami_parser_release(&s.parser);
	snprintf(n->why, sizeof n->why, "%s", s.why);
	n->result = s.result;
	return s.result;
}

void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms, const void *salt)
{
	b->min_ms = min_ms;
	b->max_ms = max_ms < min_ms ? min_ms : max_ms;
	b->delay_ms = min_ms;
	b->seed = (unsigned)(clock_mono_ms() ^ (uint64_t)(uintptr_t)salt);
}

uint64_t backoff_next(struct backoff *b, uint64_t ran_ms)
{
	if (ran_ms > 30000)
		b->delay_ms = b->min_ms; /* it worked for a while: start over */
	/* equal jitter: half fixed, half random */
	uint64_t wait = b->delay_ms / 2 + (uint64_t)rand_r(&b->seed) % (b->delay_ms / 2 + 1);
	b->delay_ms = b->delay_ms * 2 > b->max_ms ? b->max_ms : b->delay_ms * 2;
	return wait;
}

void *node_main(void *arg)
{
	struct node *n = arg;
	struct backoff bo;
	backoff_init(&bo, n->cfg->reconnect_min_ms, n->cfg->reconnect_max_ms, n);
	for (;;) {
		uint64_t started = clock_mono_ms();
		enum session_result r = session_run(n);
		if (r == SESSION_STOPPED || r == SESSION_FATAL)
			break;
		uint64_t wait;
		if (r == SESSION_AUTH_FAILED || r == SESSION_CONFIG)
			wait = n->cfg->auth_retry_ms;
		else
			wait = backoff_next(&bo, clock_mono_ms() - started);
		atomic_fetch_add(&n->reconnects, 1);
		log_info("node %s: reconnecting in %" PRIu64 " ms", n->cfg->name, wait);
		if (node_wait_stop(n, wait))
			break;
	}
	return NULL;
}
