/* invoices_pdf.c: an invoice's view model drawn as an A4 PDF */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <jansson.h>
#include <pango/pangocairo.h>

#include "invoices_pdf.h"
#include "sbuf.h"
#include "banned.h"

#define PAGE_W 595.0 /* A4 in points */
#define PAGE_H 842.0
#define MARGIN 50.0
#define BOTTOM (PAGE_H - 60.0)
#define FONT   "DejaVu Sans"
#define LOGO_W 180.0 /* the box the logo is scaled into */
#define LOGO_H 60.0

struct pen {
	cairo_t *cr;
	double y;
};

static cairo_status_t write_out(void *closure, const unsigned char *data,
				unsigned int len)
{
	sbuf_add(closure, (const char *)data, len);
	return CAIRO_STATUS_SUCCESS;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/*
 * Draws text at (x, y) in a box of width w (0: no wrapping), aligned
 * left, right or centre; returns the height it took.
 */
static double text_at(cairo_t *cr, double x, double y, double w,
		      const char *text, double size, bool bold,
		      PangoAlignment align)
{
	PangoLayout *layout = pango_cairo_create_layout(cr);
	PangoFontDescription *font = pango_font_description_new();
	int pw, ph;

	pango_font_description_set_family(font, FONT);
	pango_font_description_set_absolute_size(font, size * PANGO_SCALE);
	pango_font_description_set_weight(font, bold ? PANGO_WEIGHT_BOLD :
						       PANGO_WEIGHT_NORMAL);
	pango_layout_set_font_description(layout, font);
	if (w > 0) {
		pango_layout_set_width(layout, (int)(w * PANGO_SCALE));
		pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
	}
	pango_layout_set_alignment(layout, align);
	pango_layout_set_text(layout, text, -1);
	cairo_move_to(cr, x, y);
	pango_cairo_show_layout(cr, layout);
	pango_layout_get_size(layout, &pw, &ph);
	pango_font_description_free(font);
	g_object_unref(layout);
	return (double)ph / PANGO_SCALE;
}

static void rule(struct pen *p)
{
	cairo_set_line_width(p->cr, 0.6);
	cairo_move_to(p->cr, MARGIN, p->y);
	cairo_line_to(p->cr, PAGE_W - MARGIN, p->y);
	cairo_stroke(p->cr);
	p->y += 6;
}

static void next_page_if(struct pen *p, double need)
{
	if (p->y + need <= BOTTOM)
		return;
	cairo_show_page(p->cr);
	p->y = MARGIN;
}

struct png_read {
	const unsigned char *data;
	size_t len, off;
};

static cairo_status_t read_png(void *closure, unsigned char *data,
			       unsigned int len)
{
	struct png_read *in = closure;

	if (len > in->len - in->off)
		return CAIRO_STATUS_READ_ERROR;
	memcpy(data, in->data + in->off, len);
	in->off += len;
	return CAIRO_STATUS_SUCCESS;
}

/*
 * Draws the logo scaled into a box at the pen (LOGO_W × LOGO_H, keeping
 * its proportions); returns the height it took, 0 when there is none.
 */
static double draw_logo(struct pen *p, const struct pdf_logo *logo)
{
	struct png_read in = { logo->data, logo->len, 0 };
	cairo_surface_t *img;
	double w, h, scale;

	if (logo->data == NULL || logo->len == 0)
		return 0;
	img = cairo_image_surface_create_from_png_stream(read_png, &in);
	if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(img);
		return 0;
	}
	w = cairo_image_surface_get_width(img);
	h = cairo_image_surface_get_height(img);
	if (w < 1 || h < 1) {
		cairo_surface_destroy(img);
		return 0;
	}
	scale = LOGO_W / w < LOGO_H / h ? LOGO_W / w : LOGO_H / h;
	cairo_save(p->cr);
	cairo_translate(p->cr, MARGIN, p->y);
	cairo_scale(p->cr, scale, scale);
	cairo_set_source_surface(p->cr, img, 0, 0);
	cairo_paint(p->cr);
	cairo_restore(p->cr);
	cairo_surface_destroy(img);
	return h * scale;
}

/* "#3451c6" as the source colour; black when it does not parse. */
static void set_colour(cairo_t *cr, const char *hex)
{
	unsigned int rgb = 0;
	size_t i;

	if (strlen(hex) != 7 || hex[0] != '#') {
		cairo_set_source_rgb(cr, 0, 0, 0);
		return;
	}
	for (i = 1; i < 7; i++) {
		char c = hex[i];

		rgb <<= 4;
		if (c >= '0' && c <= '9')
			rgb |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			rgb |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			rgb |= (unsigned int)(c - 'A' + 10);
	}
	cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0,
			     ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0);
}

static void heading(struct pen *p, json_t *view, json_t *inv,
		    const struct pdf_logo *logo)
{
	json_t *seller = json_object_get(view, "seller");
	json_t *buyer = json_object_get(view, "buyer");
	const char *number = str(inv, "number");
	double h, top = p->y;

	set_colour(p->cr, str(seller, "colour"));
	text_at(p->cr, PAGE_W - MARGIN - 200, p->y, 200,
		*str(view, "pdf_title") ? str(view, "pdf_title") :
		*number			? "INVOICE" :
					  "DRAFT INVOICE",
		18, true, PANGO_ALIGN_RIGHT);
	cairo_set_source_rgb(p->cr, 0, 0, 0);
	h = draw_logo(p, logo);
	if (h > 0) {
		p->y += h + 6;
		p->y += text_at(p->cr, MARGIN, p->y, 300, str(seller, "name"),
				11, true, PANGO_ALIGN_LEFT);
	} else {
		p->y += text_at(p->cr, MARGIN, p->y, 300, str(seller, "name"),
				18, true, PANGO_ALIGN_LEFT);
	}
	if (*str(seller, "details")) {
		cairo_set_source_rgb(p->cr, 0.25, 0.25, 0.25);
		p->y += text_at(p->cr, MARGIN, p->y + 2, 300,
				str(seller, "details"), 8, false,
				PANGO_ALIGN_LEFT) +
			2;
		cairo_set_source_rgb(p->cr, 0, 0, 0);
	}
	if (p->y < top + 34)
		p->y = top + 34;
	p->y += 14;
	h = text_at(p->cr, MARGIN, p->y, 260, "Bill to", 9, true,
		    PANGO_ALIGN_LEFT);
	text_at(p->cr, PAGE_W - MARGIN - 240, p->y, 240,
		*number ? number : "Not issued", 11, true, PANGO_ALIGN_RIGHT);
	p->y += h + 2;
	h = text_at(p->cr, MARGIN, p->y, 260, str(buyer, "name"), 10, true,
		    PANGO_ALIGN_LEFT);
	text_at(p->cr, PAGE_W - MARGIN - 240, p->y, 240, str(view, "pdf_dates"),
		9, false, PANGO_ALIGN_RIGHT);
	p->y += h;
	h = text_at(p->cr, MARGIN, p->y, 260, str(buyer, "address"), 9, false,
		    PANGO_ALIGN_LEFT);
	p->y += h;
	if (*str(buyer, "tax_number")) {
		p->y += text_at(p->cr, MARGIN, p->y, 260,
				str(view, "pdf_buyer_tax"), 9, false,
				PANGO_ALIGN_LEFT);
	}
	p->y += 24;
}

static void line_rows(struct pen *p, json_t *inv)
{
	json_t *line;
	size_t i;
	double h, h2;

	text_at(p->cr, MARGIN, p->y, 230, "Description", 9, true,
		PANGO_ALIGN_LEFT);
	text_at(p->cr, 285, p->y, 90, "Quantity", 9, true, PANGO_ALIGN_RIGHT);
	text_at(p->cr, 375, p->y, 60, "Unit price", 9, true, PANGO_ALIGN_RIGHT);
	text_at(p->cr, 435, p->y, 40, "Tax", 9, true, PANGO_ALIGN_RIGHT);
	text_at(p->cr, 475, p->y, 70, "Amount", 9, true, PANGO_ALIGN_RIGHT);
	p->y += 16;
	rule(p);
	json_array_foreach(json_object_get(inv, "lines"), i, line)
	{
		next_page_if(p, 40);
		h = text_at(p->cr, MARGIN, p->y, 230, str(line, "description"),
			    9, false, PANGO_ALIGN_LEFT);
		text_at(p->cr, 285, p->y, 90, str(line, "quantity"), 9, false,
			PANGO_ALIGN_RIGHT);
		text_at(p->cr, 375, p->y, 60, str(line, "unit_price_display"),
			9, false, PANGO_ALIGN_RIGHT);
		text_at(p->cr, 435, p->y, 40, str(line, "tax_label"), 9, false,
			PANGO_ALIGN_RIGHT);
		text_at(p->cr, 475, p->y, 70, str(line, "amount_display"), 9,
			false, PANGO_ALIGN_RIGHT);
		p->y += h;
		if (*str(line, "breakdown")) {
			cairo_set_source_rgb(p->cr, 0.35, 0.35, 0.35);
			h2 = text_at(p->cr, MARGIN + 8, p->y, 222,
				     str(line, "breakdown"), 8, false,
				     PANGO_ALIGN_LEFT);
			cairo_set_source_rgb(p->cr, 0, 0, 0);
			p->y += h2;
		}
		p->y += 5;
	}
	rule(p);
}

static void total_row(struct pen *p, const char *label, const char *amount,
		      bool bold)
{
	next_page_if(p, 16);
	text_at(p->cr, 275, p->y, 200, label, 9, bold, PANGO_ALIGN_RIGHT);
	text_at(p->cr, 475, p->y, 70, amount, 9, bold, PANGO_ALIGN_RIGHT);
	p->y += 14;
}

static void totals(struct pen *p, json_t *inv, bool credit_note)
{
	json_t *t;
	size_t i;

	total_row(p, "Subtotal", str(inv, "subtotal_display"), false);
	json_array_foreach(json_object_get(inv, "taxes"), i, t)
		total_row(p, str(t, "label"), str(t, "tax_display"), false);
	total_row(p, str(inv, "pdf_total_label"), str(inv, "total_display"),
		  true);
	if (credit_note)
		return;
	if (strcmp(str(inv, "credited"), "0.00") != 0)
		total_row(p, "Credited", str(inv, "credited_display"), false);
	if (strcmp(str(inv, "paid"), "0.00") != 0)
		total_row(p, "Paid", str(inv, "paid_display"), false);
	total_row(p, "Balance due", str(inv, "balance_display"), true);
}

enum td_err invoices_pdf_render(json_t *view, const struct pdf_logo *logo,
				struct sbuf *out)
{
	json_t *inv = json_object_get(view, "invoice");
	cairo_surface_t *surface;
	const char *footer;
	struct pen p;
	cairo_status_t st;

	surface = cairo_pdf_surface_create_for_stream(write_out, out, PAGE_W,
						      PAGE_H);
	p.cr = cairo_create(surface);
	p.y = MARGIN;
	cairo_set_source_rgb(p.cr, 0, 0, 0);
	heading(&p, view, inv, logo);
	line_rows(&p, inv);
	totals(&p, inv, json_is_true(json_object_get(view, "pdf_credit_note")));
	p.y += 20;
	next_page_if(&p, 60);
	p.y += text_at(p.cr, MARGIN, p.y, PAGE_W - 2 * MARGIN,
		       str(view, "pdf_payment"), 9, false, PANGO_ALIGN_LEFT);
	footer = str(json_object_get(view, "seller"), "footer");
	if (*footer) {
		p.y += 16;
		next_page_if(&p, 30);
		cairo_set_source_rgb(p.cr, 0.35, 0.35, 0.35);
		text_at(p.cr, MARGIN, p.y, PAGE_W - 2 * MARGIN, footer, 8,
			false, PANGO_ALIGN_CENTER);
	}
	cairo_show_page(p.cr);
	st = cairo_status(p.cr);
	cairo_destroy(p.cr);
	cairo_surface_finish(surface);
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(surface);
	cairo_surface_destroy(surface);
	return st == CAIRO_STATUS_SUCCESS ? TD_OK : TD_ESYS;
}
