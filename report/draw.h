/*
 * draw.h - fonts, text and colours shared by the PDF page layout and the
 * chart renderer (cairo).
 *
 * Fonts are DejaVu Sans and DejaVu Sans Bold loaded from their TrueType
 * files through FreeType (not looked up by name), so the PDF always embeds
 * the same subset fonts whatever fontconfig would pick.  Not thread-safe:
 * one PDF at a time per process.
 */
#ifndef CDRFLOW_REPORT_DRAW_H
#define CDRFLOW_REPORT_DRAW_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

#define RFONT_DIR_DEFAULT "/usr/share/fonts/truetype/dejavu"

struct rfonts {
	cairo_font_face_t *regular, *bold; /* owned references */
};

/* Load DejaVuSans.ttf and DejaVuSans-Bold.ttf from dir (NULL = default).
 * 0, or -1 with a message in err (and nothing to release). */
int rfonts_load(struct rfonts *f, const char *dir, char *err, size_t errlen);
void rfonts_release(struct rfonts *f);

enum halign { AL_LEFT, AL_CENTER, AL_RIGHT };

void draw_font(cairo_t *cr, const struct rfonts *f, int bold, double size);
/* Advance width of s in the current font (s is cleaned to valid UTF-8). */
double draw_text_width(cairo_t *cr, const char *s);
/* Draw s with its baseline at y, anchored at x by a; if maxw > 0, cut it to
 * maxw with an ellipsis.  s may be any bytes: it is cleaned to UTF-8 with
 * controls as spaces first (cairo refuses invalid UTF-8). */
void draw_text(cairo_t *cr, double x, double y, enum halign a, double maxw, const char *s);
void draw_rgb(cairo_t *cr, uint32_t rgb);
/* A colour-blind-safe palette (Okabe-Ito), cycled. */
uint32_t draw_palette(size_t i);

#endif
