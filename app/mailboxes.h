/* mailboxes.h: Settings → Mailboxes — the IMAP mailboxes mail-poll drains */
#ifndef TD_MAILBOXES_H
#define TD_MAILBOXES_H

#include "err.h"

struct req;

/* GET /settings/mailboxes (admins): every mailbox, never its password. */
enum td_err mailboxes_page(struct req *r);

/*
 * POST /settings/mailboxes — url (imap://host[:port]/MAILBOX or imaps://),
 * username, password, enabled (a new mailbox is enabled unless the form
 * says otherwise). 201 (API) or 303; 422 with field messages.
 */
enum td_err mailboxes_add(struct req *r);

/* GET /settings/mailboxes/:id — the edit form; 404 for another tenant's. */
enum td_err mailboxes_edit(struct req *r);

/*
 * POST /settings/mailboxes/:id — the same fields; a blank password keeps
 * the stored one; enabled unticked disables it (mail-poll skips it).
 */
enum td_err mailboxes_update(struct req *r);

/*
 * POST /settings/mailboxes/:id/test — logs in to the IMAP server with
 * libcurl and searches the mailbox as mail-poll would: {ok, message}
 * ("Connected as help@...: 3 messages in INBOX", or what failed).
 */
enum td_err mailboxes_test(struct req *r);

#endif
