/*
 * draw.c - text through Pango + fontconfig, palette (draw.h).
 */
#include "draw.h"

#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "table.h"

/* The font description selected on a context (draw_font), as cairo user data. */
static const cairo_user_data_key_t font_key;
/* The context's one PangoLayout, reused by every text call (a layout of
 * its own per call, with its own PangoContext, was most of a long table's
 * rendering time), as cairo user data. */
static const cairo_user_data_key_t layout_key;
/* Measures already taken on the context, keyed by font, width and text (a
 * long table repeats its tenants and destinations on every page), as cairo
 * user data; emptied when it reaches MEASURE_MAX entries. */
static const cairo_user_data_key_t measure_key;
#define MEASURE_MAX 65536

int rfonts_load(struct rfonts *f, const char *dir, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	if (!FcInit()) {
		snprintf(err, errlen, "cannot initialise fontconfig");
		return -1;
	}
	struct stat st;
	if (dir && *dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
			    !FcConfigAppFontAddDir(NULL, (const FcChar8 *)dir))) {
		snprintf(err, errlen, "cannot load font directory \"%s\"", dir);
		return -1;
	}
	/* the family must really be there (fontconfig would silently pick another) */
	FcPattern *pat = FcNameParse((const FcChar8 *)RFONT_FAMILY);
	FcResult res;
	FcPattern *match = NULL;
	int ok = 0;
	if (pat && FcConfigSubstitute(NULL, pat, FcMatchPattern)) {
		FcDefaultSubstitute(pat);
		match = FcFontMatch(NULL, pat, &res);
		FcChar8 *fam = NULL;
		ok = match && FcPatternGetString(match, FC_FAMILY, 0, &fam) == FcResultMatch &&
		     !strcmp((const char *)fam, RFONT_FAMILY);
	}
	if (match)
		FcPatternDestroy(match);
	if (pat)
		FcPatternDestroy(pat);
	if (!ok) {
		snprintf(err, errlen, "cannot load font \"%s\": fontconfig does not find it (install fonts-dejavu-core)", RFONT_FAMILY);
		return -1;
	}
	PangoFontDescription *r = pango_font_description_from_string(RFONT_FAMILY);
	PangoFontDescription *b = pango_font_description_copy(r);
	pango_font_description_set_weight(b, PANGO_WEIGHT_BOLD);
	f->regular = r;
	f->bold = b;
	return 0;
}

void rfonts_release(struct rfonts *f)
{
	if (f->regular)
		pango_font_description_free(f->regular);
	if (f->bold)
		pango_font_description_free(f->bold);
	f->regular = f->bold = NULL;
}

/* The font selected on a context: its description and a short key naming it. */
struct fontsel {
	PangoFontDescription *d;
	char key[32];
};

static void fontsel_free(void *p)
{
	struct fontsel *f = p;
	pango_font_description_free(f->d);
	g_free(f);
}

void draw_font(cairo_t *cr, const struct rfonts *f, int bold, double size)
{
	struct fontsel *sel = g_new(struct fontsel, 1);
	sel->d = pango_font_description_copy(bold ? f->bold : f->regular);
	pango_font_description_set_absolute_size(sel->d, size * PANGO_SCALE);
	snprintf(sel->key, sizeof sel->key, "%d/%.4f", bold, size);
	if (cairo_set_user_data(cr, &font_key, sel, fontsel_free) != CAIRO_STATUS_SUCCESS)
		fontsel_free(sel);
}

static void measures_free(void *p)
{
	g_hash_table_destroy(p);
}

/* The cached measure of s at width w (-1: one line) in cr's font, or
 * NULL; with store, *v is recorded instead. */
static const double *measure(cairo_t *cr, double w, const char *s, const double *store)
{
	const struct fontsel *sel = cairo_get_user_data(cr, &font_key);
	GHashTable *m = cairo_get_user_data(cr, &measure_key);
	if (!m) {
		if (!store)
			return NULL;
		m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		if (cairo_set_user_data(cr, &measure_key, m, measures_free) != CAIRO_STATUS_SUCCESS) {
			g_hash_table_destroy(m);
			return NULL;
		}
	}
	char *key = g_strdup_printf("%s|%.4f|%s", sel ? sel->key : "-", w, s ? s : "");
	if (!store) {
		const double *v = g_hash_table_lookup(m, key);
		g_free(key);
		return v;
	}
	if (g_hash_table_size(m) >= MEASURE_MAX)
		g_hash_table_remove_all(m);
	g_hash_table_replace(m, key, g_memdup2(store, sizeof *store));
	return store;
}

static void layout_unref(void *p)
{
	g_object_unref(p);
}

/* cr's layout (borrowed: it lives as long as cr), reset to one line of s
 * (cleaned) in cr's current font, at cr's current transformation; NULL
 * only when cairo is out of memory.  b holds the cleaned text. */
static PangoLayout *layout_of(cairo_t *cr, const char *s, struct buf *b)
{
	buf_init(b, 0);
	rtext_clean(b, s ? s : "", 8192, RTEXT_NO_CTRL);
	PangoLayout *l = cairo_get_user_data(cr, &layout_key);
	if (!l) {
		l = pango_cairo_create_layout(cr);
		/* no hinting of metrics: the same widths on the measuring image
		 * surface and on the PDF, so both layout passes agree */
		PangoContext *ctx = pango_layout_get_context(l);
		cairo_font_options_t *fo = cairo_font_options_create();
		cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
		cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
		pango_cairo_context_set_font_options(ctx, fo);
		cairo_font_options_destroy(fo);
		pango_layout_context_changed(l);
		if (cairo_set_user_data(cr, &layout_key, l, layout_unref) != CAIRO_STATUS_SUCCESS) {
			g_object_unref(l); /* out of memory: cairo draws nothing more either */
			return NULL;
		}
	} else {
		pango_cairo_update_layout(cr, l);
	}
	pango_layout_set_width(l, -1);
	pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_NONE);
	pango_layout_set_wrap(l, PANGO_WRAP_WORD);
	pango_layout_set_alignment(l, PANGO_ALIGN_LEFT);
	const struct fontsel *sel = cairo_get_user_data(cr, &font_key);
	pango_layout_set_font_description(l, sel ? sel->d : NULL);
	pango_layout_set_text(l, b->data ? b->data : "", -1);
	return l;
}

double draw_text_width(cairo_t *cr, const char *s)
{
	const double *known = measure(cr, -1, s, NULL);
	if (known)
		return *known;
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
	PangoRectangle lr = { 0 };
	if (l)
		pango_layout_get_extents(l, NULL, &lr);
	buf_release(&b);
	double v = (double)lr.width / PANGO_SCALE;
	measure(cr, -1, s, &v);
	return v;
}

double draw_word_width(cairo_t *cr, const char *s)
{
	double best = 0;
	const char *p = s ? s : "";
	while (*p) {
		size_t n = strcspn(p, " \t\n");
		if (n) {
			char w[512];
			size_t k = n < sizeof w - 1 ? n : sizeof w - 1;
			memcpy(w, p, k);
			w[k] = '\0';
			double ww = draw_text_width(cr, w);
			if (ww > best)
				best = ww;
		}
		p += n;
		p += strspn(p, " \t\n");
	}
	return best;
}

double draw_line_height(cairo_t *cr)
{
	struct buf b;
	PangoLayout *l = layout_of(cr, "Xg", &b);
	PangoRectangle lr = { 0 };
	if (l)
		pango_layout_get_extents(l, NULL, &lr);
	buf_release(&b);
	return (double)lr.height / PANGO_SCALE;
}

void draw_text(cairo_t *cr, double x, double y, enum halign a, double maxw, const char *s)
{
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
	if (!l) {
		buf_release(&b);
		return;
	}
	if (maxw > 0) {
		pango_layout_set_width(l, (int)(maxw * PANGO_SCALE));
		pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
	}
	PangoRectangle lr;
	pango_layout_get_extents(l, NULL, &lr);
	double w = (double)lr.width / PANGO_SCALE;
	double x0 = a == AL_LEFT ? x : a == AL_CENTER ? x - w / 2 : x - w;
	double base = (double)pango_layout_get_baseline(l) / PANGO_SCALE;
	/* an ellipsized layout is maxw wide; its ink starts at lr.x */
	cairo_move_to(cr, x0 - (double)lr.x / PANGO_SCALE, y - base);
	pango_cairo_show_layout(cr, l);
	cairo_new_path(cr);
	buf_release(&b);
}

double draw_text_wrapped(cairo_t *cr, double x, double y, double w, enum halign a, const char *s, int draw)
{
	const double *known = draw ? NULL : measure(cr, w, s, NULL);
	if (known)
		return *known;
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
	if (!l) {
		buf_release(&b);
		return 0;
	}
	pango_layout_set_width(l, (int)(w * PANGO_SCALE));
	pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_alignment(l, a == AL_LEFT ? PANGO_ALIGN_LEFT : a == AL_CENTER ? PANGO_ALIGN_CENTER
										: PANGO_ALIGN_RIGHT);
	PangoRectangle lr;
	pango_layout_get_extents(l, NULL, &lr);
	if (draw) {
		cairo_move_to(cr, x, y);
		pango_cairo_show_layout(cr, l);
		cairo_new_path(cr);
	}
	buf_release(&b);
	double h = (double)lr.height / PANGO_SCALE;
	measure(cr, w, s, &h);
	return h;
}

void draw_rgb(cairo_t *cr, uint32_t rgb)
{
	cairo_set_source_rgb(cr, ((rgb >> 16) & 0xFF) / 255.0, ((rgb >> 8) & 0xFF) / 255.0, (rgb & 0xFF) / 255.0);
}

uint32_t draw_palette(size_t i)
{
	static const uint32_t p[] = { 0x0072B2, 0xE69F00, 0x009E73, 0xCC79A7, 0x56B4E9, 0xD55E00, 0xF0E442, 0x000000 };
	return p[i % (sizeof p / sizeof p[0])];
}
