/* invoices_pdf.h: an invoice's view model drawn as an A4 PDF */
#ifndef TD_INVOICES_PDF_H
#define TD_INVOICES_PDF_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

struct sbuf;

/* The tenant's logo as PNG bytes; data NULL when there is none. */
struct pdf_logo {
	const unsigned char *data;
	size_t len;
};

/*
 * Draws view (what invoices_show builds: "invoice", "seller", "buyer")
 * with cairo and pango into out: branding (logo, colour, the seller's
 * details), billing details, the lines with their breakdown, tax per
 * rate, totals and how to pay. A logo that is not a readable PNG is left
 * out. "pdf_title" overrides the title; "pdf_credit_note" true draws no
 * balance (a credit note). TD_ESYS if cairo fails.
 */
enum td_err invoices_pdf_render(json_t *view, const struct pdf_logo *logo,
				struct sbuf *out);

#endif
