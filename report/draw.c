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

static void desc_free(void *p)
{
	pango_font_description_free(p);
}

void draw_font(cairo_t *cr, const struct rfonts *f, int bold, double size)
{
	PangoFontDescription *d = pango_font_description_copy(bold ? f->bold : f->regular);
	pango_font_description_set_absolute_size(d, size * PANGO_SCALE);
	if (cairo_set_user_data(cr, &font_key, d, desc_free) != CAIRO_STATUS_SUCCESS)
		pango_font_description_free(d);
}

/* A layout of s (cleaned) in cr's current font. */
static PangoLayout *layout_of(cairo_t *cr, const char *s, struct buf *b)
{
	buf_init(b, 0);
	rtext_clean(b, s ? s : "", 8192, RTEXT_NO_CTRL);
	PangoLayout *l = pango_cairo_create_layout(cr);
	/* no hinting of metrics: the same widths on the measuring image
	 * surface and on the PDF, so both layout passes agree */
	PangoContext *ctx = pango_layout_get_context(l);
	cairo_font_options_t *fo = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
	pango_cairo_context_set_font_options(ctx, fo);
	cairo_font_options_destroy(fo);
	pango_layout_context_changed(l);
	const PangoFontDescription *d = cairo_get_user_data(cr, &font_key);
	if (d)
		pango_layout_set_font_description(l, d);
	pango_layout_set_text(l, b->data ? b->data : "", -1);
	return l;
}

double draw_text_width(cairo_t *cr, const char *s)
{
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
	PangoRectangle lr;
	pango_layout_get_extents(l, NULL, &lr);
	g_object_unref(l);
	buf_release(&b);
	return (double)lr.width / PANGO_SCALE;
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
	PangoRectangle lr;
	pango_layout_get_extents(l, NULL, &lr);
	g_object_unref(l);
	buf_release(&b);
	return (double)lr.height / PANGO_SCALE;
}

void draw_text(cairo_t *cr, double x, double y, enum halign a, double maxw, const char *s)
{
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
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
	g_object_unref(l);
	buf_release(&b);
}

double draw_text_wrapped(cairo_t *cr, double x, double y, double w, enum halign a, const char *s, int draw)
{
	struct buf b;
	PangoLayout *l = layout_of(cr, s, &b);
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
	g_object_unref(l);
	buf_release(&b);
	return (double)lr.height / PANGO_SCALE;
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
