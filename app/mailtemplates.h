/* mailtemplates.h: the notification mails, from templates a tenant may
 * override (Settings → Email templates) */
#ifndef TD_MAILTEMPLATES_H
#define TD_MAILTEMPLATES_H

#include "err.h"

struct arena;
struct config;
struct db;
struct mustache_set;
struct req;

/*
 * The notifications, by the name the outbox row carries in `template`:
 * ack (a new ticket opened by email, to the sender), reply (a staff
 * member's public comment, to the contact), client_reply, assigned,
 * sla_warning and sla_breach (to the assignee). Each has a subject, a
 * text and an HTML part: views/mail/<name>_subject, _text and _html, or
 * the tenant's own in mail_templates (0021).
 *
 * Queueing a notice: insert the outbox row with `template` and
 * `template_data` (what the notice is about beyond the ticket: body,
 * author, what, actor, clock, due...) and a plain subject and text to fall
 * back on, then call mailtpl_render_queued() in the same transaction.
 */

/*
 * Renders every outbox row of the transaction's tenant still waiting for
 * its template: the row's template_data, plus the ticket's ticket_ref,
 * ticket_number, subject, client, tenant and (with base_url configured)
 * ticket_url, through the tenant's override or the default. Subject and
 * text parts escape nothing, the HTML part escapes {{x}}; the subject is
 * one line and always carries the ticket's [T-n] token (replies thread
 * by it). A row that cannot be rendered keeps the text it was queued with
 * (logged). views: the worker's template set, or NULL to read the
 * defaults from conf->views_dir (once per process).
 */
enum td_err mailtpl_render_queued(struct db *db, struct arena *a,
				  const struct config *conf,
				  const struct mustache_set *views);

/* The same with a request's database, arena, config and templates. */
enum td_err mailtpl_render_queued_req(struct req *r);

/* GET /settings/mail-templates (admins): the notifications, customised or not. */
enum td_err mailtpl_list(struct req *r);

/*
 * GET /settings/mail-templates/:name — the three parts in force (the
 * override, else the default), the defaults, the variables, and a preview
 * rendered with sample data. 404 for an unknown name.
 */
enum td_err mailtpl_edit(struct req *r);

/*
 * POST /settings/mail-templates/:name — subject, body_text, body_html.
 * Each must be present, within its length and compile: else 422 naming
 * the part and the line of the problem. Stores the override (audited).
 */
enum td_err mailtpl_save(struct req *r);

/*
 * POST /settings/mail-templates/:name/preview — renders the parts sent
 * (unsaved) with sample data: {preview: {subject, text, html}}; 422 as
 * for save. Changes nothing.
 */
enum td_err mailtpl_preview(struct req *r);

/* POST /settings/mail-templates/:name/reset — back to the default (audited). */
enum td_err mailtpl_reset(struct req *r);

#endif
