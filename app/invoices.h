/* invoices.h: invoice list, page, issue, payments, credit notes, exports */
#ifndef TD_INVOICES_H
#define TD_INVOICES_H

#include <stdint.h>

#include "err.h"

struct req;

/* GET /invoices?status=&client_id=&period=YYYY-MM&overdue=1 — 400. */
/*
 * The status an invoice shows (SQL over invoices i, invoice_totals t and a
 * row d with the tenant's today): its own when draft or void, else paid,
 * overdue or partly paid as its balance and due date say.
 */
#define INVOICE_SHOWN_STATUS                                                   \
	"CASE WHEN i.status IN ('draft', 'void') THEN i.status"                \
	" WHEN t.balance <= 0 THEN 'paid'"                                     \
	" WHEN i.due_on < d.today THEN 'overdue'"                              \
	" WHEN t.paid > 0 OR t.credited > 0 THEN 'partly_paid'"                \
	" ELSE i.status END"

/* "Partly paid" for "partly_paid"; an unknown status as it is. */
const char *invoices_status_label(const char *status);

enum td_err invoices_list(struct req *r);
/* GET /invoices.csv and /invoices/lines.csv (same filters) — 400. */
enum td_err invoices_csv(struct req *r);
enum td_err invoices_lines_csv(struct req *r);
/* GET /invoices/ageing — what clients owe, by days past due. */
enum td_err invoices_ageing(struct req *r);
/* GET /clients/:id/billing — this cycle so far, computed by the engine. */
enum td_err invoices_preview(struct req *r);
/* GET /invoices/:id — lines with their sources, tax per rate, balance. */
enum td_err invoices_show(struct req *r);
/* GET /invoices/:id/pdf — the invoice drawn as a PDF (cairo + pango). */
enum td_err invoices_pdf(struct req *r);
/*
 * Answers the request with invoice id of the tenant as a PDF: for pages
 * that check who may see it first (the client portal).
 */
enum td_err invoices_pdf_of(struct req *r, int64_t id);
/* POST /invoices — a manual draft for client_id; 422. */
enum td_err invoices_create(struct req *r);
/*
 * POST /invoices/:id/lines — an ad-hoc line on a draft;
 * /lines/:line_id — a line of a draft changed (billed lines too);
 * /lines/:line_id/delete — removed, its time entries released. 409.
 */
enum td_err invoices_line_add(struct req *r);
enum td_err invoices_line_update(struct req *r);
enum td_err invoices_line_delete(struct req *r);
/* GET, POST /invoices/settings — the workspace's details on invoices. */
enum td_err invoices_settings(struct req *r);
enum td_err invoices_settings_save(struct req *r);
/* POST /invoices/:id/delete — a draft; its period is billed again. 409. */
enum td_err invoices_delete(struct req *r);
/* POST /invoices/:id/issue — number assigned; 409 unless a draft. */
enum td_err invoices_issue(struct req *r);
/* POST /invoices/:id/send — queued in the outbox; 409 unless issued; 422. */
enum td_err invoices_send(struct req *r);
/* POST /invoices/:id/payments — 422 bad input; 409 unless issued. */
enum td_err invoices_payment(struct req *r);
/* POST /invoices/:id/credit — full or partial, split by tax rate; 422; 409. */
enum td_err invoices_credit(struct req *r);
/* GET /invoices/:id/credit-notes/:credit_note_id/pdf — net and tax per rate. */
enum td_err invoices_credit_note_pdf(struct req *r);

#endif
