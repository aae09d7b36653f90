/*
 * ysnode.c - a Yeastar PBX as a collector node (ysnode.h).
 *
 * One thread per source, like an AMI node.  The WebSocket client and the
 * webhook's HTTP listener are libwebsockets (one lws context per session,
 * serviced by the node's own thread); the token endpoint is called with
 * libcurl.  Timers: one 100 ms tick per session checks the stop request,
 * the heartbeat, the idle timeout and the token's age.
 */
#include "ysnode.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "secmem.h"
#include "sources.h"
#include "spool.h"
#include "xalloc.h"
#include "yeastar.h"

#define TICK_US 100000
/* append a string literal, without its NUL */
#define BUF_LIT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

static void lws_log_emit(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warn("libwebsockets: %.*s", (int)n, line);
	else
		log_debug("libwebsockets: %.*s", (int)n, line);
}

/* libcurl's soname: the ABI of curl/curl.h since 7.16 */
#ifndef CDRFLOW_LIBCURL
#define CDRFLOW_LIBCURL "libcurl.so.4"
#endif

/* The libcurl functions the node calls, from dlopen (set once, before any thread). */
static struct {
	void *lib;
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	void (*easy_cleanup)(CURL *c);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} cu;

/* cu.field = the function called name in libcurl (POSIX: dlsym's object pointer holds a function's address). */
#define CU_SYM(field, name)                                                        \
	do {                                                                       \
		void *sym_ = dlsym(cu.lib, name);                                  \
		_Static_assert(sizeof sym_ == sizeof cu.field, "function pointer size"); \
		if (!sym_) {                                                       \
			missing = name;                                            \
			goto fail;                                                 \
		}                                                                  \
		memcpy(&cu.field, &sym_, sizeof sym_);                             \
	} while (0)

int yeastar_global_init(char *err, size_t errlen)
{
	const char *missing = NULL;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
	json_object_seed(0); /* jansson's hash seed, before any thread parses */
	cu.lib = dlopen(CDRFLOW_LIBCURL, RTLD_NOW | RTLD_LOCAL);
	if (!cu.lib) {
		const char *e = dlerror();
		snprintf(err, errlen, "cannot load libcurl (the Yeastar sources need it): %s", e ? e : CDRFLOW_LIBCURL);
		return -1;
	}
	CU_SYM(global_init, "curl_global_init");
	CU_SYM(global_cleanup, "curl_global_cleanup");
	CU_SYM(easy_init, "curl_easy_init");
	CU_SYM(easy_setopt, "curl_easy_setopt");
	CU_SYM(easy_perform, "curl_easy_perform");
	CU_SYM(easy_getinfo, "curl_easy_getinfo");
	CU_SYM(easy_strerror, "curl_easy_strerror");
	CU_SYM(easy_cleanup, "curl_easy_cleanup");
	CU_SYM(slist_append, "curl_slist_append");
	CU_SYM(slist_free_all, "curl_slist_free_all");
	if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		goto unload;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot load libcurl: %s has no %s", CDRFLOW_LIBCURL, missing);
unload:
	dlclose(cu.lib);
	memset(&cu, 0, sizeof cu);
	return -1;
}

void yeastar_global_release(void)
{
	if (!cu.lib)
		return;
	cu.global_cleanup();
	dlclose(cu.lib);
	memset(&cu, 0, sizeof cu);
}

/* ------------------------------------------------------------ the API URL */

struct api_url {
	int tls;
	char host[256];
	int port;
	char path[512]; /* "/openapi/v1.0", no trailing slash */
};

static int api_url_parse(const char *url, struct api_url *u)
{
	memset(u, 0, sizeof *u);
	const char *p;
	if (!strncmp(url, "https://", 8)) {
		u->tls = 1;
		p = url + 8;
	} else if (!strncmp(url, "http://", 7)) {
		p = url + 7;
	} else {
		return -1;
	}
	size_t hl = strcspn(p, ":/");
	if (!hl || hl >= sizeof u->host)
		return -1;
	memcpy(u->host, p, hl);
	p += hl;
	u->port = u->tls ? 443 : 80;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (port <= 0 || port > 65535)
			return -1;
		u->port = (int)port;
		p = end;
	}
	if (*p && *p != '/')
		return -1;
	snprintf(u->path, sizeof u->path, "%s", p);
	size_t n = strlen(u->path);
	while (n && u->path[n - 1] == '/')
		u->path[--n] = '\0';
	return 0;
}

/* ------------------------------------------------------------ tokens */

struct token {
	char *access, *refresh;       /* secmem */
	uint64_t access_until_ms;     /* monotonic */
	uint64_t refresh_until_ms;
	uint64_t renew_at_ms;         /* refresh the access token from here on */
	uint64_t refreshes, gets;
};

static void token_clear(struct token *t)
{
	secmem_free(t->access);
	secmem_free(t->refresh);
	t->access = t->refresh = NULL;
	t->access_until_ms = t->refresh_until_ms = t->renew_at_ms = 0;
}

static size_t curl_sink(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	if (b->len + n > (1u << 20) || buf_append(b, p, n) < 0)
		return 0;
	return n;
}

enum tok_result { TOK_OK, TOK_REFUSED, TOK_UNREACHABLE };

/* POST the JSON body (wiped afterwards) to {api_url}/{endpoint}; *out =
 * the answer parsed (HTTP 200 and JSON), else TOK_UNREACHABLE with why. */
static enum tok_result post_json(const struct node *n, const char *endpoint, struct buf *body, json_t **out,
				 char *why, size_t whylen)
{
	const struct yeastar_source *y = &n->src->yeastar;
	char *url = xasprintf("%s%s%s", y->api_url, y->api_url[strlen(y->api_url) - 1] == '/' ? "" : "/", endpoint);
	struct buf resp;
	buf_init(&resp, 0);
	enum tok_result res = TOK_UNREACHABLE;
	*out = NULL;
	CURL *c = cu.lib ? cu.easy_init() : NULL; /* not loaded: yeastar_global_init was not called */
	struct curl_slist *h = NULL;
	if (c && (h = cu.slist_append(NULL, "Content-Type: application/json")) != NULL) {
		struct curl_slist *h2 = cu.slist_append(h, "User-Agent: OpenAPI");
		if (!h2) /* the list is left as it was: free it */
			cu.slist_free_all(h);
		h = h2;
	}
	long code = 0;
	/* the endpoint's name without a query string (a token) for messages */
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)strcspn(endpoint, "?"), endpoint);
	if (!c || !h) {
		snprintf(why, whylen, "cannot start an HTTP request");
		goto out;
	}
	cu.easy_setopt(c, CURLOPT_URL, url);
	cu.easy_setopt(c, CURLOPT_HTTPHEADER, h);
	cu.easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
	cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body->len);
	cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)y->connect_timeout_ms);
	cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
	cu.easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	cu.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, y->tls_verify ? 1L : 0L);
	cu.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, y->tls_verify ? 2L : 0L);
	if (*y->tls_ca_file)
		cu.easy_setopt(c, CURLOPT_CAINFO, y->tls_ca_file);
	CURLcode rc = cu.easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s: %s", name, cu.easy_strerror(rc));
		goto out;
	}
	cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	json_error_t je;
	json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, &je);
	if (code != 200 || !json_is_object(j)) {
		snprintf(why, whylen, "%s: HTTP %ld, %s", name, code, j ? "not a JSON object" : "the answer is not JSON");
		json_decref(j);
		goto out;
	}
	*out = j;
	res = TOK_OK;
out:
	if (resp.data)
		explicit_bzero(resp.data, resp.len);
	buf_release(&resp);
	if (body->data)
		explicit_bzero(body->data, body->len);
	if (c) {
		cu.slist_free_all(h);
		cu.easy_cleanup(c);
	}
	free(url);
	return res;
}

/* A token that can travel in a URL and a log-free JSON body. */
static int token_chars_ok(const char *at)
{
	return at && *at && strlen(at) <= 512 &&
	       strspn(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~") == strlen(at);
}

/* POST body to {api}/{endpoint}; on success fill t.  body is wiped. */
static enum tok_result token_call(const struct node *n, const char *endpoint, struct buf *body, struct token *t,
				  char *why, size_t whylen)
{
	json_t *j;
	enum tok_result res = post_json(n, endpoint, body, &j, why, whylen);
	if (res != TOK_OK)
		return res;
	json_t *ec = json_object_get(j, "errcode");
	if (!json_is_integer(ec)) {
		snprintf(why, whylen, "%s: no errcode in the answer", endpoint);
		json_decref(j);
		return TOK_UNREACHABLE;
	}
	if (json_integer_value(ec) != 0) {
		const char *msg = json_string_value(json_object_get(j, "errmsg"));
		snprintf(why, whylen, "%s refused: errcode %lld %s", endpoint, (long long)json_integer_value(ec),
			 msg ? msg : "");
		json_decref(j);
		return TOK_REFUSED;
	}
	const char *at = json_string_value(json_object_get(j, "access_token"));
	const char *rt = json_string_value(json_object_get(j, "refresh_token"));
	double ae = json_number_value(json_object_get(j, "access_token_expire_time"));
	double re = json_number_value(json_object_get(j, "refresh_token_expire_time"));
	if (!token_chars_ok(at)) {
		snprintf(why, whylen, "%s: no usable access_token in the answer", endpoint);
		json_decref(j);
		return TOK_REFUSED;
	}
	token_clear(t);
	uint64_t now = clock_mono_ms();
	t->access = secmem_dup(at, strlen(at));
	t->refresh = rt ? secmem_dup(rt, strlen(rt)) : NULL;
	if (!(ae >= 1 && ae <= 86400 * 365))
		ae = 1800; /* the documented lifetime */
	if (!(re >= 1 && re <= 86400 * 365))
		re = 86400;
	t->access_until_ms = now + (uint64_t)(ae * 1000);
	t->refresh_until_ms = now + (uint64_t)(re * 1000);
	t->renew_at_ms = now + (uint64_t)(ae * 750); /* renew at 3/4 of its life */
	json_decref(j);
	return t->access ? TOK_OK : TOK_UNREACHABLE;
}

/* Credentials go into the JSON body as they are: no quote, backslash or
 * control character (Yeastar's are letters and digits), so no escaped
 * copy of a secret is made outside secret memory's reach. */
static int json_plain(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* The start of a login body, {"username":"U","password":"P (the caller
 * closes the string and the object). */
static void body_credentials(struct buf *b, const char *user, const char *pass)
{
	BUF_LIT(b, "{\"username\":\"");
	buf_append(b, user, strlen(user));
	BUF_LIT(b, "\",\"password\":\"");
	buf_append(b, pass, strlen(pass));
}

static enum tok_result token_get(const struct node *n, struct token *t, char *why, size_t whylen)
{
	const struct yeastar_source *y = &n->src->yeastar;
	if (!y->held) {
		snprintf(why, whylen, "no Client Secret");
		return TOK_REFUSED;
	}
	if (!json_plain(y->client_id) || !json_plain(y->held)) {
		snprintf(why, whylen, "the Client ID or Secret has a quote, backslash or control character");
		return TOK_REFUSED;
	}
	struct buf b;
	buf_init(&b, 256);
	body_credentials(&b, y->client_id, y->held);
	buf_append(&b, "\"}", 3); /* with the NUL */
	b.len--;
	enum tok_result r = token_call(n, "get_token", &b, t, why, whylen);
	buf_release(&b);
	if (r == TOK_OK)
		t->gets++;
	return r;
}

static enum tok_result token_refresh(const struct node *n, struct token *t, char *why, size_t whylen)
{
	if (!t->refresh || clock_mono_ms() >= t->refresh_until_ms)
		return token_get(n, t, why, whylen);
	if (!json_plain(t->refresh))
		return token_get(n, t, why, whylen);
	struct buf b;
	buf_init(&b, 128);
	BUF_LIT(&b, "{\"refresh_token\":\"");
	buf_append(&b, t->refresh, strlen(t->refresh));
	buf_append(&b, "\"}", 3);
	b.len--;
	struct token nt = { 0 };
	enum tok_result r = token_call(n, "refresh_token", &b, &nt, why, whylen);
	buf_release(&b);
	if (r == TOK_OK) {
		nt.gets = t->gets;
		nt.refreshes = t->refreshes + 1;
		token_clear(t);
		*t = nt;
		return r;
	}
	log_warn("node %s: %s; asking for a new token", n->name, why);
	token_clear(&nt);
	return token_get(n, t, why, whylen);
}

/* ------------------------------------------------------------ storing */

struct store {
	struct node *n;
	uint64_t events, replies, garbage, oversized;
	int fatal;
};

static void store_oversized(struct store *st, size_t len)
{
	st->oversized++;
	atomic_fetch_add(&st->n->oversized, 1);
	log_error("node %s: dropped a message of %zu bytes (collector.max_event_size is %" PRIu64 ")", st->n->name, len,
		  st->n->max_event_size);
}

/* One whole message: store it if it is an event.  Returns its class. */
static enum ys_class store_message(struct store *st, const char *data, size_t len)
{
	if (len > st->n->max_event_size) {
		store_oversized(st, len);
		return YS_GARBAGE;
	}
	enum ys_class c = ys_classify(data, len);
	if (c == YS_EVENT) {
		if (st->n->spool && spool_add(st->n->spool, data, len, clock_real_us()) < 0) {
			st->fatal = 1;
			return c;
		}
		if (st->n->spool)
			spool_batch_end(st->n->spool);
		st->events++;
	} else if (c == YS_REPLY) {
		st->replies++;
	} else {
		st->garbage++;
		atomic_fetch_add(&st->n->garbage, 1);
		/* said for the first few and then every 1000th: a broken PBX must not flood the log */
		if (st->garbage > 5 && st->garbage % 1000)
			return c;
		char show[61];
		size_t k = 0;
		for (size_t i = 0; i < len && k < sizeof show - 1; i++)
			show[k++] = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.';
		show[k] = '\0';
		log_warn("node %s: not stored: a message of %zu bytes that is not a JSON event: \"%s%s\" (%" PRIu64
			 " in this session)", st->n->name, len, show, len > k ? "..." : "", st->garbage);
	}
	return c;
}

static int stop_requested(struct node *n)
{
	return node_wait_stop(n, 0);
}

/* ------------------------------------------------------------ websocket */

struct ws {
	struct node *n;
	const struct yeastar_source *y;
	struct token *tok;
	struct lws_context *ctx;
	struct lws *wsi;
	lws_sorted_usec_list_t sul;
	struct store st;
	struct buf msg;     /* the message being received (fragments) */
	size_t msg_size;    /* its size so far (also when too large to keep) */
	int done, established, subscribed, want_subscribe, want_heartbeat;
	enum session_result result;
	uint64_t start_ms, last_rx_ms, next_hb_ms;
	char path[1200];
	char why[256];
};

static void ws_end(struct ws *w, enum session_result r, const char *why)
{
	if (w->done)
		return;
	w->done = 1;
	w->result = r;
	snprintf(w->why, sizeof w->why, "%s", why);
}

/* A reply to the subscription or another request: {"errcode":N,"errmsg":...} */
static void ws_reply(struct ws *w, const char *data, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	json_t *ec = j ? json_object_get(j, "errcode") : NULL;
	if (json_is_integer(ec)) {
		if (json_integer_value(ec) == 0) {
			if (!w->subscribed) {
				w->subscribed = 1;
				log_info("node %s: subscribed to %s", w->n->name, w->y->topics);
				if (w->n->once)
					ws_end(w, SESSION_STOPPED, "");
			}
		} else {
			const char *m = json_string_value(json_object_get(j, "errmsg"));
			char why[256];
			snprintf(why, sizeof why, "the PBX answered errcode %lld %s", (long long)json_integer_value(ec),
				 m ? m : "");
			/* a refused subscription or token: a new token on the next try */
			token_clear(w->tok);
			ws_end(w, SESSION_LOST, why);
		}
	}
	json_decref(j);
}

static void ws_check(struct ws *w);

static void ws_tick(lws_sorted_usec_list_t *sul)
{
	struct ws *w = lws_container_of(sul, struct ws, sul);
	if (!w->done)
		ws_check(w);
	/* always again: with no timer pending the service would sleep long
	 * before the loop sees done */
	lws_sul_schedule(w->ctx, 0, &w->sul, ws_tick, TICK_US);
}

static void ws_check(struct ws *w)
{
	uint64_t now = clock_mono_ms();
	if (stop_requested(w->n)) {
		ws_end(w, SESSION_STOPPED, "");
		return;
	}
	if (!w->established && now - w->start_ms > w->y->connect_timeout_ms) {
		ws_end(w, SESSION_LOST, "WebSocket handshake timed out");
		return;
	}
	if (w->established && now - w->last_rx_ms > w->y->heartbeat_timeout_ms) {
		char why[128];
		snprintf(why, sizeof why, "nothing received for %" PRIu64 " ms (heartbeat_timeout)", now - w->last_rx_ms);
		ws_end(w, SESSION_LOST, why);
		return;
	}
	if (w->established && now >= w->next_hb_ms) {
		w->want_heartbeat = 1;
		w->next_hb_ms = now + w->y->heartbeat_ms;
		lws_callback_on_writable(w->wsi);
	}
	if (w->established && w->tok->renew_at_ms && now >= w->tok->renew_at_ms) {
		char why[256];
		enum tok_result r = token_refresh(w->n, w->tok, why, sizeof why);
		if (r != TOK_OK) {
			/* the socket lives until the PBX drops it; retry at the next tick */
			log_warn("node %s: cannot renew the access token: %s", w->n->name, why);
			w->tok->renew_at_ms = now + 1000;
		} else {
			log_info("node %s: access token renewed (%" PRIu64 " refreshes, %" PRIu64 " new tokens)", w->n->name,
				 w->tok->refreshes, w->tok->gets);
		}
	}
}

static int ws_send(struct lws *wsi, const char *text)
{
	size_t n = strlen(text);
	unsigned char buf[LWS_PRE + 512];
	if (n > sizeof buf - LWS_PRE)
		return -1;
	memcpy(buf + LWS_PRE, text, n);
	return lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n ? -1 : 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct ws *w = user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[256];
		snprintf(why, sizeof why, "WebSocket connection failed: %s", in ? (const char *)in : "(no reason)");
		if (w) {
			ws_end(w, SESSION_LOST, why);
			w->wsi = NULL;
			/* the handshake was refused (an expired or revoked token?):
			 * the next attempt starts with a fresh access token */
			if (!w->established) {
				secmem_free(w->tok->access);
				w->tok->access = NULL;
			}
		}
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		w->established = 1;
		w->last_rx_ms = clock_mono_ms();
		w->next_hb_ms = w->last_rx_ms + w->y->heartbeat_ms;
		w->want_subscribe = 1;
		atomic_store(&w->n->connected, 1);
		log_info("node %s: WebSocket connected to %s", w->n->name, w->y->api_url);
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (w->done)
			return -1;
		if (w->want_subscribe) {
			char text[512];
			snprintf(text, sizeof text, "{\"topic_list\":[%s]}", w->y->topics);
			w->want_subscribe = 0;
			if (ws_send(wsi, text) < 0) {
				ws_end(w, SESSION_LOST, "cannot send the subscription");
				return -1;
			}
			if (w->want_heartbeat)
				lws_callback_on_writable(wsi);
		} else if (w->want_heartbeat) {
			w->want_heartbeat = 0;
			if (ws_send(wsi, "heartbeat") < 0) {
				ws_end(w, SESSION_LOST, "cannot send the heartbeat");
				return -1;
			}
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		w->last_rx_ms = clock_mono_ms();
		w->msg_size += len;
		if (w->msg_size > w->n->max_event_size) {
			buf_reset(&w->msg); /* too large: nothing of it is kept */
		} else if (buf_append(&w->msg, in, len) < 0) {
			ws_end(w, SESSION_FATAL, "out of memory");
			return -1;
		}
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
			size_t size = w->msg_size;
			w->msg_size = 0;
			if (size > w->n->max_event_size) {
				store_oversized(&w->st, size);
				buf_reset(&w->msg);
				break;
			}
			enum ys_class c = store_message(&w->st, w->msg.data ? w->msg.data : "", w->msg.len);
			if (w->st.fatal) {
				ws_end(w, SESSION_FATAL, "the spool failed");
				return -1;
			}
			if (c == YS_REPLY)
				ws_reply(w, w->msg.data ? w->msg.data : "", w->msg.len);
			buf_reset(&w->msg);
		}
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (w->msg_size)
			log_warn("node %s: the connection closed in the middle of a message: %zu bytes not stored",
				 w->n->name, w->msg_size);
		buf_reset(&w->msg);
		w->msg_size = 0;
		ws_end(w, SESSION_LOST, "the PBX closed the WebSocket");
		w->wsi = NULL;
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (w) {
			w->wsi = NULL;
			ws_end(w, SESSION_LOST, "the WebSocket is gone");
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols ws_protocols[] = {
	{ "cdrflow-yeastar", ws_callback, 0, 1 << 16, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static enum session_result ws_session(struct node *n, struct token *tok)
{
	const struct yeastar_source *y = &n->src->yeastar;
	struct api_url u;
	if (api_url_parse(y->api_url, &u) < 0) {
		snprintf(n->why, sizeof n->why, "yeastar.api_url \"%s\" is not http(s)://host[:port]/path", y->api_url);
		return SESSION_CONFIG;
	}
	if (!tok->access || clock_mono_ms() + 2000 >= tok->access_until_ms) {
		char why[256];
		enum tok_result r = tok->refresh ? token_refresh(n, tok, why, sizeof why) : token_get(n, tok, why, sizeof why);
		if (r != TOK_OK) {
			snprintf(n->why, sizeof n->why, "%s", why);
			return r == TOK_REFUSED ? SESSION_AUTH_FAILED : SESSION_LOST;
		}
	}
	struct ws *w = xcalloc(1, sizeof *w);
	w->n = n;
	w->y = y;
	w->tok = tok;
	w->st.n = n;
	buf_init(&w->msg, 0);
	w->start_ms = clock_mono_ms();
	snprintf(w->path, sizeof w->path, "%s/subscribe?access_token=%s", u.path, tok->access);

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ws_protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	if (u.tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		if (*y->tls_ca_file)
			info.client_ssl_ca_filepath = y->tls_ca_file;
	}
	w->ctx = lws_create_context(&info);
	if (!w->ctx) {
		snprintf(n->why, sizeof n->why, "cannot create the WebSocket context");
		buf_release(&w->msg);
		free(w);
		return SESSION_LOST;
	}
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof ci);
	ci.context = w->ctx;
	ci.address = u.host;
	ci.port = u.port;
	ci.path = w->path;
	ci.host = u.host;
	ci.origin = u.host;
	ci.protocol = NULL;
	ci.local_protocol_name = ws_protocols[0].name;
	ci.userdata = w;
	ci.pwsi = &w->wsi;
	if (u.tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (!y->tls_verify)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	lws_sul_schedule(w->ctx, 0, &w->sul, ws_tick, TICK_US);
	if (!lws_client_connect_via_info(&ci))
		ws_end(w, SESSION_LOST, "cannot start the WebSocket connection");
	while (!w->done)
		if (lws_service(w->ctx, 0) < 0)
			ws_end(w, SESSION_LOST, "WebSocket service failed");
	lws_sul_cancel(&w->sul);
	atomic_store(&n->connected, 0);
	lws_context_destroy(w->ctx);
	explicit_bzero(w->path, sizeof w->path);
	enum session_result r = w->result;
	snprintf(n->why, sizeof n->why, "%s", w->why);
	if (w->st.events || w->st.garbage)
		log_info("node %s: session stored %" PRIu64 " events (%" PRIu64 " replies, %" PRIu64 " not JSON events)",
			 n->name, w->st.events, w->st.replies, w->st.garbage);
	buf_release(&w->msg);
	free(w);
	return r;
}

/* ------------------------------------------------------------ S-Series push registration */

/* Where the PBX pushes: push_url, else listen + webhook_path ("ip:port/path"). */
static void push_target(const struct yeastar_source *y, char *url, size_t n, char *host, size_t hn, char *port,
			size_t pn)
{
	if (*y->push_url)
		snprintf(url, n, "%s", y->push_url);
	else
		snprintf(url, n, "%s%s", y->listen, y->webhook_path);
	const char *p = strstr(url, "://") ? strstr(url, "://") + 3 : url;
	size_t hl = strcspn(p, ":/");
	snprintf(host, hn, "%.*s", (int)hl, p);
	snprintf(port, pn, "%.*s", p[hl] == ':' ? (int)strcspn(p + hl + 1, "/") : 0, p[hl] == ':' ? p + hl + 1 : "");
	if (!*port)
		snprintf(port, pn, "%s", "80");
}

/* The S-Series API (v2) logs an application in with the MD5 of its
 * password, and pushes events to the URL it gives for as long as its
 * token lives (30 min, renewed by each heartbeat). */
static enum tok_result s_login(const struct node *n, char **token, char *why, size_t whylen)
{
	const struct yeastar_source *y = &n->src->yeastar;
	if (!y->held || !json_plain(y->client_id)) {
		snprintf(why, whylen, "no usable API username or password");
		return TOK_REFUSED;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	if (!EVP_Digest(y->held, strlen(y->held), md, &mdlen, EVP_md5(), NULL)) {
		snprintf(why, whylen, "cannot compute the MD5 of the password");
		return TOK_UNREACHABLE;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	explicit_bzero(md, sizeof md);
	char url[512], host[256], port[16];
	push_target(y, url, sizeof url, host, sizeof host, port, sizeof port);
	if (!json_plain(url)) {
		explicit_bzero(hex, sizeof hex);
		snprintf(why, whylen, "yeastar.push_url has a quote, backslash or control character");
		return TOK_REFUSED;
	}
	struct buf b;
	buf_init(&b, 512);
	body_credentials(&b, y->client_id, hex);
	BUF_LIT(&b, "\",\"port\":\"");
	buf_append(&b, port, strlen(port));
	BUF_LIT(&b, "\",\"version\":\"2.0.0\",\"urltag\":\"1\",\"url\":\"");
	buf_append(&b, url, strlen(url));
	buf_append(&b, "\"}", 3);
	b.len--;
	explicit_bzero(hex, sizeof hex);
	json_t *j;
	enum tok_result r = post_json(n, "login", &b, &j, why, whylen);
	buf_release(&b);
	if (r != TOK_OK)
		return r;
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!status || strcasecmp(status, "Success") || !token_chars_ok(tok)) {
		const char *e = json_string_value(json_object_get(j, "errno"));
		snprintf(why, whylen, "login refused: status %s errno %s", status ? status : "(none)", e ? e : "(none)");
		json_decref(j);
		return TOK_REFUSED;
	}
	secmem_free(*token);
	*token = secmem_dup(tok, strlen(tok));
	json_decref(j);
	return *token ? TOK_OK : TOK_UNREACHABLE;
}

static enum tok_result s_heartbeat(const struct node *n, const char *token, char *why, size_t whylen)
{
	const struct yeastar_source *y = &n->src->yeastar;
	char url[512], host[256], port[16];
	push_target(y, url, sizeof url, host, sizeof host, port, sizeof port);
	char *endpoint = xasprintf("heartbeat?token=%s", token);
	struct buf b;
	buf_init(&b, 256);
	BUF_LIT(&b, "{\"ipaddr\":\"");
	buf_append(&b, host, strlen(host));
	BUF_LIT(&b, "\",\"port\":\"");
	buf_append(&b, port, strlen(port));
	BUF_LIT(&b, "\",\"version\":\"2.0.0\",\"urltag\":\"1\",\"url\":\"");
	buf_append(&b, url, strlen(url));
	buf_append(&b, "\"}", 3);
	b.len--;
	json_t *j;
	enum tok_result r = post_json(n, endpoint, &b, &j, why, whylen);
	buf_release(&b);
	explicit_bzero(endpoint, strlen(endpoint));
	free(endpoint);
	if (r != TOK_OK)
		return r;
	const char *status = json_string_value(json_object_get(j, "status"));
	if (!status || strcasecmp(status, "Success")) {
		snprintf(why, whylen, "heartbeat refused: status %s", status ? status : "(none)");
		r = TOK_REFUSED;
	}
	json_decref(j);
	return r;
}

/* ------------------------------------------------------------ webhook */

struct hook {
	struct node *n;
	const struct yeastar_source *y;
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul;
	struct store st;
	int done;
	enum session_result result;
	uint64_t rejected;
	char *s_token;          /* S-Series login token (secmem) */
	uint64_t next_hb_ms;    /* its next heartbeat */
	uint64_t s_logins, s_heartbeats;
};

struct hook_req {
	struct buf body;
	int too_big, post, path_ok;
	char sig[128];
};

/* base64(HMAC-SHA256(key, body)) == sig, in constant time */
static int signature_ok(const char *key, const char *body, size_t len, const char *sig)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, len, md, &mdlen))
		return 0;
	unsigned char b64[EVP_MAX_MD_SIZE * 2];
	int n = EVP_EncodeBlock(b64, md, (int)mdlen);
	return n > 0 && strlen(sig) == (size_t)n && CRYPTO_memcmp(b64, sig, (size_t)n) == 0;
}

static int hook_answer(struct lws *wsi, unsigned code, const char *text)
{
	if (lws_return_http_status(wsi, code, text))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int hook_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct hook_req *rq = user;
	struct hook *h = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		memset(rq, 0, sizeof *rq);
		buf_init(&rq->body, 0);
		rq->post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
		rq->path_ok = in && !strcmp((const char *)in, h->y->webhook_path);
		if (lws_hdr_custom_copy(wsi, rq->sig, sizeof rq->sig, "x-signature:", 12) < 0)
			rq->sig[0] = '\0';
		if (!rq->post) {
			h->rejected++;
			return hook_answer(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "POST only");
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (rq->body.len + len > h->n->max_event_size)
			rq->too_big = 1;
		else if (buf_append(&rq->body, in, len) < 0)
			return -1;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
		const char *body = rq->body.data ? rq->body.data : "";
		unsigned code = HTTP_STATUS_OK;
		if (!rq->path_ok) {
			code = HTTP_STATUS_NOT_FOUND;
		} else if (rq->too_big) {
			code = HTTP_STATUS_REQ_ENTITY_TOO_LARGE;
			atomic_fetch_add(&h->n->oversized, 1);
			log_error("node %s: refused a POST larger than collector.max_event_size", h->n->name);
		} else if (h->y->webhook_held && !signature_ok(h->y->webhook_held, body, rq->body.len, rq->sig)) {
			code = HTTP_STATUS_UNAUTHORIZED;
			log_warn("node %s: refused a POST whose X-Signature does not match the webhook secret", h->n->name);
		} else {
			enum ys_class c = store_message(&h->st, body, rq->body.len);
			if (h->st.fatal) {
				h->done = 1;
				h->result = SESSION_FATAL;
				code = HTTP_STATUS_SERVICE_UNAVAILABLE;
			} else if (c == YS_GARBAGE) {
				code = HTTP_STATUS_BAD_REQUEST;
			}
		}
		if (code != HTTP_STATUS_OK)
			h->rejected++;
		buf_release(&rq->body);
		return hook_answer(wsi, code, code == HTTP_STATUS_OK ? "OK" : "refused");
	}
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (rq)
			buf_release(&rq->body);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols hook_protocols[] = {
	{ "http", hook_callback, sizeof(struct hook_req), 1 << 16, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void hook_tick(lws_sorted_usec_list_t *sul)
{
	struct hook *h = lws_container_of(sul, struct hook, sul);
	if (stop_requested(h->n) || h->n->once) {
		h->done = 1;
		h->result = SESSION_STOPPED;
	} else if (h->y->s_series_login && clock_mono_ms() >= h->next_hb_ms) {
		/* keep the S-Series token alive, or log in again */
		char why[256];
		enum tok_result r = h->s_token ? s_heartbeat(h->n, h->s_token, why, sizeof why) : TOK_REFUSED;
		if (r == TOK_REFUSED) {
			if (h->s_token)
				log_warn("node %s: %s; logging in again", h->n->name, why);
			r = s_login(h->n, &h->s_token, why, sizeof why);
			if (r == TOK_OK)
				h->s_logins++;
		} else if (r == TOK_OK) {
			h->s_heartbeats++;
		}
		if (r != TOK_OK)
			log_warn("node %s: S-Series API: %s", h->n->name, why);
		h->next_hb_ms = clock_mono_ms() + h->y->heartbeat_ms;
	}
	/* always again: with no timer pending the service would sleep long
	 * before the loop sees done */
	lws_sul_schedule(h->ctx, 0, &h->sul, hook_tick, TICK_US);
}

static enum session_result hook_session(struct node *n)
{
	const struct yeastar_source *y = &n->src->yeastar;
	char addr[256];
	snprintf(addr, sizeof addr, "%s", y->listen);
	char *colon = strrchr(addr, ':');
	if (!colon) {
		snprintf(n->why, sizeof n->why, "yeastar.listen \"%s\" is not address:port", y->listen);
		return SESSION_CONFIG;
	}
	*colon = '\0';
	int port = atoi(colon + 1);
	char *host = addr;
	if (*host == '[') { /* [::1]:8260 */
		host++;
		size_t l = strlen(host);
		if (l && host[l - 1] == ']')
			host[l - 1] = '\0';
	}
	struct hook *h = xcalloc(1, sizeof *h);
	h->n = n;
	h->y = y;
	h->st.n = n;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = port;
	info.iface = *host && strcmp(host, "0.0.0.0") ? host : NULL;
	info.protocols = hook_protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.user = h;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * !strchr(host, ':');
	h->ctx = lws_create_context(&info);
	if (!h->ctx) {
		snprintf(n->why, sizeof n->why, "cannot listen on %s for the webhook", y->listen);
		free(h);
		return SESSION_LOST;
	}
	if (y->s_series_login) {
		/* the S-Series PBX pushes only to an application logged in to it */
		char why[256];
		enum tok_result r = s_login(n, &h->s_token, why, sizeof why);
		if (r != TOK_OK) {
			snprintf(n->why, sizeof n->why, "S-Series API: %s", why);
			lws_context_destroy(h->ctx);
			free(h);
			return r == TOK_REFUSED ? SESSION_AUTH_FAILED : SESSION_LOST;
		}
		h->s_logins++;
		h->next_hb_ms = clock_mono_ms() + y->heartbeat_ms;
		log_info("node %s: logged in to the S-Series API: events are pushed to %s", n->name,
			 *y->push_url ? y->push_url : "listen + webhook_path");
	}
	atomic_store(&n->connected, 1);
	log_info("node %s: listening on %s%s for the PBX's webhook POSTs%s", n->name, y->listen, y->webhook_path,
		 y->webhook_held ? " (X-Signature checked)" : "");
	lws_sul_schedule(h->ctx, 0, &h->sul, hook_tick, TICK_US);
	while (!h->done)
		if (lws_service(h->ctx, 0) < 0)
			break;
	lws_sul_cancel(&h->sul);
	atomic_store(&n->connected, 0);
	log_debug("node %s: closing the webhook listener", n->name);
	lws_context_destroy(h->ctx);
	enum session_result r = h->done ? h->result : SESSION_LOST;
	snprintf(n->why, sizeof n->why, "%s", r == SESSION_FATAL ? "the spool failed" : "the listener stopped");
	log_info("node %s: webhook stored %" PRIu64 " events, refused %" PRIu64 " requests", n->name, h->st.events,
		 h->rejected);
	if (y->s_series_login)
		log_info("node %s: S-Series API: %" PRIu64 " logins, %" PRIu64 " heartbeats", n->name, h->s_logins,
			 h->s_heartbeats);
	secmem_free(h->s_token);
	free(h);
	return r;
}

/* ------------------------------------------------------------ the node */

static enum session_result one_session(struct node *n, struct token *tok)
{
	if (n->src->yeastar.transport == YEASTAR_WEBHOOK)
		return hook_session(n);
	return ws_session(n, tok);
}

enum session_result yeastar_check(struct node *n)
{
	struct token tok = { 0 };
	enum session_result r = one_session(n, &tok);
	token_clear(&tok);
	n->result = r;
	return r;
}

void *yeastar_node_main(void *arg)
{
	struct node *n = arg;
	const struct yeastar_source *y = &n->src->yeastar;
	struct backoff bo;
	backoff_init(&bo, y->reconnect_min_ms, y->reconnect_max_ms, n);
	struct token tok = { 0 };
	for (;;) {
		uint64_t started = clock_mono_ms();
		enum session_result r = one_session(n, &tok);
		if (r == SESSION_STOPPED || r == SESSION_FATAL)
			break;
		uint64_t wait;
		if (r == SESSION_AUTH_FAILED || r == SESSION_CONFIG) {
			log_error("node %s: %s", n->name, n->why);
			wait = y->auth_retry_ms;
		} else {
			log_warn("node %s: %s", n->name, n->why);
			wait = backoff_next(&bo, clock_mono_ms() - started);
		}
		atomic_fetch_add(&n->reconnects, 1);
		log_info("node %s: reconnecting in %" PRIu64 " ms", n->name, wait);
		if (node_wait_stop(n, wait))
			break;
	}
	token_clear(&tok);
	return NULL;
}
