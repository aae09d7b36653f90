/*
 * draw.h - fonts, text and colours shared by the PDF page layout, the
 * chart renderer and the HTML format's SVG charts (cairo).
 *
 * Text goes through Pango with fontconfig: the face is "DejaVu Sans" and
 * fontconfig falls back, glyph by glyph, to any installed font that has
 * the script (Noto Sans CJK for Chinese, Japanese and Korean, Noto Sans
 * Arabic, ...); HarfBuzz shapes it and Pango's bidi algorithm lays out
 * right-to-left runs (Arabic, Hebrew) right to left.  The PDF embeds the
 * subsets used.  Not thread-safe: one document at a time per process.
 */
#ifndef CDRFLOW_REPORT_DRAW_H
#define CDRFLOW_REPORT_DRAW_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

#define RFONT_FAMILY "DejaVu Sans"

struct rfonts {
	void *regular, *bold; /* PangoFontDescription *, owned */
};

/* Check that fontconfig finds the family (after adding dir, if not NULL
 * or "", as an application font directory) and set up the two faces.  0,
 * or -1 with a message in err (and nothing to release). */
int rfonts_load(struct rfonts *f, const char *dir, char *err, size_t errlen);
void rfonts_release(struct rfonts *f);

enum halign { AL_LEFT, AL_CENTER, AL_RIGHT };

/* Select the face and size (points) for the draw_* calls on cr. */
void draw_font(cairo_t *cr, const struct rfonts *f, int bold, double size);
/* Advance width of s on one line in the current font (s is cleaned to
 * valid UTF-8 with controls as spaces). */
double draw_text_width(cairo_t *cr, const char *s);
/* The widest word of s (what a wrapped column needs at least). */
double draw_word_width(cairo_t *cr, const char *s);
/* Draw s on one line with its baseline at y, anchored at x by a; if
 * maxw > 0, cut it to maxw with an ellipsis (charts, headers: never table
 * cells, which wrap). */
void draw_text(cairo_t *cr, double x, double y, enum halign a, double maxw, const char *s);
/* s wrapped to width w (at words, inside a word only when a word is wider
 * than w): the height it takes; with draw, drawn with its top at y, each
 * line aligned by a within [x, x + w] (a right-to-left paragraph mirrors
 * the alignment).  Never cuts text. */
double draw_text_wrapped(cairo_t *cr, double x, double y, double w, enum halign a, const char *s, int draw);
/* Height of one line of the current font. */
double draw_line_height(cairo_t *cr);
void draw_rgb(cairo_t *cr, uint32_t rgb);
/* A colour-blind-safe palette (Okabe-Ito), cycled. */
uint32_t draw_palette(size_t i);

#endif
