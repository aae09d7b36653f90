/*
 * draw.c - DejaVu through FreeType, UTF-8-safe text drawing, palette.
 */
#include "draw.h"

#include <cairo-ft.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "table.h"

/* One FreeType library per process, never freed: cairo keeps font faces in
 * caches past any point where we could know they are unused, so the faces'
 * library must outlive them. */
static FT_Library ft_lib;
static FT_Error ft_init_err;
static pthread_once_t ft_once = PTHREAD_ONCE_INIT;

static void ft_init(void)
{
	ft_init_err = FT_Init_FreeType(&ft_lib);
}

static const cairo_user_data_key_t ft_face_key;

static void ft_face_done(void *p)
{
	FT_Done_Face((FT_Face)p);
}

static cairo_font_face_t *load_face(const char *dir, const char *file, char *err, size_t errlen)
{
	char path[4096];
	FT_Face face;
	snprintf(path, sizeof path, "%s/%s", dir, file);
	if (FT_New_Face(ft_lib, path, 0, &face) != 0) {
		snprintf(err, errlen, "cannot load font \"%s\" (install fonts-dejavu-core)", path);
		return NULL;
	}
	cairo_font_face_t *cf = cairo_ft_font_face_create_for_ft_face(face, 0);
	if (cairo_font_face_status(cf) != CAIRO_STATUS_SUCCESS ||
	    cairo_font_face_set_user_data(cf, &ft_face_key, face, ft_face_done) != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "cannot use font \"%s\" with cairo", path);
		cairo_font_face_destroy(cf);
		FT_Done_Face(face);
		return NULL;
	}
	return cf;
}

int rfonts_load(struct rfonts *f, const char *dir, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	pthread_once(&ft_once, ft_init);
	if (ft_init_err) {
		snprintf(err, errlen, "cannot initialise FreeType (error %d)", (int)ft_init_err);
		return -1;
	}
	if (!dir || !*dir)
		dir = RFONT_DIR_DEFAULT;
	f->regular = load_face(dir, "DejaVuSans.ttf", err, errlen);
	if (!f->regular)
		return -1;
	f->bold = load_face(dir, "DejaVuSans-Bold.ttf", err, errlen);
	if (!f->bold) {
		cairo_font_face_destroy(f->regular);
		f->regular = NULL;
		return -1;
	}
	return 0;
}

void rfonts_release(struct rfonts *f)
{
	if (f->regular)
		cairo_font_face_destroy(f->regular);
	if (f->bold)
		cairo_font_face_destroy(f->bold);
	f->regular = f->bold = NULL;
}

void draw_font(cairo_t *cr, const struct rfonts *f, int bold, double size)
{
	cairo_set_font_face(cr, bold ? f->bold : f->regular);
	cairo_set_font_size(cr, size);
}

static void clean(struct buf *b, const char *s)
{
	buf_init(b, 0);
	rtext_clean(b, s, 4096, RTEXT_NO_CTRL);
}

static double width_of(cairo_t *cr, const char *utf8)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, utf8, &e);
	return e.x_advance;
}

double draw_text_width(cairo_t *cr, const char *s)
{
	struct buf b;
	clean(&b, s);
	double w = width_of(cr, b.data);
	buf_release(&b);
	return w;
}

void draw_text(cairo_t *cr, double x, double y, enum halign a, double maxw, const char *s)
{
	static const char ell[] = "\xE2\x80\xA6";
	struct buf b;
	clean(&b, s);
	double w = width_of(cr, b.data);
	if (maxw > 0 && w > maxw) {
		/* drop whole characters from the end until text + "…" fits */
		double ew = width_of(cr, ell);
		while (b.len > 0) {
			size_t n = b.len - 1;
			while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
				n--;
			buf_setlen(&b, n);
			if (width_of(cr, b.data) + ew <= maxw)
				break;
		}
		buf_puts(&b, ell);
		w = width_of(cr, b.data);
	}
	double x0 = a == AL_LEFT ? x : a == AL_CENTER ? x - w / 2 : x - w;
	cairo_move_to(cr, x0, y);
	cairo_show_text(cr, b.data);
	cairo_new_path(cr);
	buf_release(&b);
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
