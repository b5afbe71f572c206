/* invoices_pdf.h: an invoice's view model drawn as an A4 PDF */
#ifndef TD_INVOICES_PDF_H
#define TD_INVOICES_PDF_H

#include <jansson.h>

#include "err.h"

struct sbuf;

/*
 * Draws view (what invoices_show builds: "invoice", "seller", "buyer")
 * with cairo and pango into out: branding, billing details, the lines
 * with their breakdown, tax per rate, totals and how to pay. TD_ESYS if
 * cairo fails.
 */
enum td_err invoices_pdf_render(json_t *view, struct sbuf *out);

#endif
