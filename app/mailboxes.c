/* mailboxes.c: Settings → Mailboxes — the IMAP mailboxes mail-poll drains
 *
 * The password is stored as mail_mailboxes keeps it (0014: the text
 * mail-poll logs in with, readable by the tenant's own rows only) and is
 * never shown back: the form leaves it blank, and blank on an edit keeps
 * it. "Test connection" logs in and searches the mailbox exactly as
 * mail-poll does, and says what happened.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "mailboxes.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "view.h"
#include "banned.h"

#define URL_MAX	     1000
#define USER_MAX     320
#define PASSWORD_MAX 1000
#define TEST_MAX     (1024 * 1024) /* bytes of a SEARCH answer we read */

static const char sql_list[] =
	"SELECT id, url, username, enabled, password <> '',"
	" to_char(last_polled_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD HH24:MI \"UTC\"'), last_error FROM mail_mailboxes"
	" WHERE tenant_id = app_tenant() ORDER BY id";
static const char sql_one[] =
	"SELECT id, url, username, enabled, password <> '',"
	" to_char(last_polled_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD HH24:MI \"UTC\"'), last_error, password"
	" FROM mail_mailboxes WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_new[] =
	"INSERT INTO mail_mailboxes (tenant_id, url, username, password,"
	" enabled) VALUES (app_tenant(), $1, $2, $3, $4::boolean) RETURNING id";
/* $3 NULL keeps the password. */
static const char sql_update[] =
	"UPDATE mail_mailboxes SET url = $2, username = $3,"
	" password = coalesce($4, password), enabled = $5::boolean"
	" WHERE tenant_id = app_tenant() AND id = $1";

static const char *const box_fields[] = { "url", "username", NULL };

/* One row of sql_list/sql_one as the view shows it (no password). */
static json_t *box_json(const PGresult *res, int i)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:b, s:s?, s:s?}", "id",
			 (json_int_t)db_int(res, i, 0), "url",
			 db_text(res, i, 1), "username", db_text(res, i, 2),
			 "enabled", db_bool(res, i, 3), "has_password",
			 db_bool(res, i, 4), "last_polled_at",
			 db_isnull(res, i, 5) ? NULL : db_text(res, i, 5),
			 "last_error",
			 db_isnull(res, i, 6) ? NULL : db_text(res, i, 6));
}

static enum td_err list_page(struct req *r)
{
	json_t *v = req_view(r), *list = json_array();
	PGresult *res;
	enum td_err err;
	int i;

	json_object_set_new(v, "mailboxes", list);
	err = req_query(r, sql_list, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, box_json(res, i));
	json_object_set_new(v, "has_mailboxes",
			    json_boolean(PQntuples(res) > 0));
	view_settings_page(r, "Mailboxes", "settings/mailboxes",
			   "/settings/mailboxes");
	return TD_OK;
}

/* GET /settings/mailboxes */
enum td_err mailboxes_page(struct req *r)
{
	return list_page(r);
}

/* The row of :id, or 404. */
static enum td_err load(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err = req_query(r, sql_one, 1, params, res);

	if (err == TD_OK && PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no such mailbox");
	return err;
}

static enum td_err edit_page(struct req *r, int64_t id)
{
	PGresult *res;
	enum td_err err = load(r, id, &res);

	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "mailbox", box_json(res, 0));
	view_settings_page(r, "Mailbox", "settings/mailbox",
			   "/settings/mailboxes");
	return TD_OK;
}

/* GET /settings/mailboxes/:id */
enum td_err mailboxes_edit(struct req *r)
{
	return edit_page(r, route_arg_int(&r->args, "id"));
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* imap://host[:port]/MAILBOX or imaps://..., no spaces or controls. */
static bool url_ok(const char *u)
{
	const char *host, *slash;

	if (!strncmp(u, "imaps://", 8))
		host = u + 8;
	else if (!strncmp(u, "imap://", 7))
		host = u + 7;
	else
		return false;
	slash = strchr(host, '/');
	return slash != NULL && slash > host && slash[1] != '\0' &&
	       strpbrk(u, " \t\r\n\"<>\\") == NULL && !has_ctl(u) &&
	       strlen(u) <= URL_MAX && memchr(host, '@', (size_t)(slash - host)) == NULL;
}

/* Checks the fields; problems go to form_error(). */
static void check(struct req *r, const char *url, const char *user,
		  const char *password, bool adding)
{
	if (!url_ok(url))
		form_error(r, "url",
			   "enter an IMAP address such as"
			   " imaps://mail.example.com/INBOX");
	if (*user == '\0' || http_utf8_len(user) > USER_MAX || has_ctl(user))
		form_error(r, "username", "enter the login name (at most 320"
					  " characters)");
	if (adding && *password == '\0')
		form_error(r, "password", "enter the password");
	else if (strlen(password) > PASSWORD_MAX || has_ctl(password))
		form_error(r, "password", "use at most 1000 characters, no"
					  " control characters");
}

/* Ticked; a JSON body that leaves it out means dflt. */
static bool enabled_flag(struct req *r, bool dflt)
{
	if (r->want_json && !form_sent(r, "enabled"))
		return dflt;
	return form_flag(r, "enabled");
}

/* POST /settings/mailboxes */
enum td_err mailboxes_add(struct req *r)
{
	const char *url = form_text(r, "url"), *user = form_text(r, "username");
	const char *password = form_text(r, "password"), *params[4];
	bool enabled = enabled_flag(r, true);
	PGresult *res;
	json_t *after;
	enum td_err err;
	int64_t id;

	check(r, url, user, password, true);
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = list_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "settings/mailboxes", box_fields);
	}
	params[0] = url;
	params[1] = user;
	params[2] = password;
	params[3] = enabled ? "true" : "false";
	err = req_query(r, sql_new, 4, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:s, s:s, s:b}", "url", url, "username", user,
			  "enabled", enabled);
	req_own_json(r, after);
	err = audit_write(r, "mailbox.create", "mailbox", id, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return edit_page(r, id);
	}
	form_flash(r, "ok", "Mailbox added.");
	r->redirect = "/settings/mailboxes";
	return TD_OK;
}

/* POST /settings/mailboxes/:id */
enum td_err mailboxes_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *url = form_text(r, "url"), *user = form_text(r, "username");
	const char *password = form_text(r, "password"), *params[5];
	json_t *before, *after;
	PGresult *res;
	bool enabled;
	enum td_err err;

	err = load(r, id, &res);
	if (err != TD_OK)
		return err;
	enabled = enabled_flag(r, db_bool(res, 0, 3));
	if (r->want_json && !form_sent(r, "url"))
		url = db_text(res, 0, 1);
	if (r->want_json && !form_sent(r, "username"))
		user = db_text(res, 0, 2);
	check(r, url, user, password, false);
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = edit_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "settings/mailbox", box_fields);
	}
	before = json_pack("{s:s, s:s, s:b}", "url", db_text(res, 0, 1),
			   "username", db_text(res, 0, 2), "enabled",
			   db_bool(res, 0, 3));
	req_own_json(r, before);
	after = json_pack("{s:s, s:s, s:b}", "url", url, "username", user,
			  "enabled", enabled);
	req_own_json(r, after);
	/* Whether, never what: the audit log holds no password. */
	if (*password != '\0' && strcmp(password, db_text(res, 0, 7)) != 0)
		json_object_set_new(after, "password_changed", json_true());
	params[0] = req_id(r, id);
	params[1] = url;
	params[2] = user;
	params[3] = *password != '\0' ? password : NULL;
	params[4] = enabled ? "true" : "false";
	err = req_query(r, sql_update, 5, params, NULL);
	if (err == TD_OK && !json_equal(before, after))
		err = audit_write(r, "mailbox.update", "mailbox", id, before,
				  after);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return edit_page(r, id);
	form_flash(r, "ok", enabled ? "Mailbox saved." :
				      "Mailbox saved; mail-poll skips it"
				      " while it is disabled.");
	r->redirect = "/settings/mailboxes";
	return TD_OK;
}

static size_t collect(char *p, size_t size, size_t n, void *out)
{
	struct sbuf *sb = out;

	if (sb->len + size * n > TEST_MAX)
		return 0;
	sbuf_add(sb, p, size * n);
	return size * n;
}

/* The number of UIDs in a "* SEARCH 1 2 3" answer. */
static long count_search(const char *s)
{
	const char *p = strstr(s, "SEARCH");
	long n = 0;

	if (p == NULL)
		return -1;
	for (p += 6; *p && *p != '\r' && *p != '\n'; p++)
		if (*p != ' ' && (p[-1] == ' '))
			n++;
	return n;
}

/*
 * Logs in to the box as mail-poll does (TLS when offered, required for
 * imaps) and searches the mailbox. *ok and a sentence saying what
 * happened.
 */
static const char *try_box(struct req *r, const char *url, const char *user,
			   const char *password, bool *ok)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	struct sbuf out;
	CURLcode rc;
	long n;

	*ok = false;
	if (c == NULL)
		return "cannot start libcurl";
	sbuf_init(&out, r->arena, 1024);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERNAME, user);
	curl_easy_setopt(c, CURLOPT_PASSWORD, password);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "UID SEARCH ALL");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		return arena_printf(r->arena, "Could not connect: %s%s%s.",
				    rc == CURLE_LOGIN_DENIED ?
					    "the server refused the user name"
					    " or password" :
					    curl_easy_strerror(rc),
				    *errbuf && rc != CURLE_LOGIN_DENIED ? ": " :
									 "",
				    rc != CURLE_LOGIN_DENIED ? errbuf : "");
	*ok = true;
	n = count_search(sbuf_cstr(&out));
	if (n < 0)
		return arena_printf(r->arena, "Connected as %s.", user);
	return arena_printf(r->arena,
			    "Connected as %s: %ld message%s waiting in %s.",
			    user, n, n == 1 ? "" : "s",
			    strrchr(url, '/') + 1);
}

/* POST /settings/mailboxes/:id/test */
enum td_err mailboxes_test(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *msg;
	PGresult *res;
	enum td_err err;
	bool ok;

	err = load(r, id, &res);
	if (err != TD_OK)
		return err;
	msg = try_box(r, db_text(res, 0, 1), db_text(res, 0, 2),
		      db_text(res, 0, 7), &ok);
	if (r->want_json) {
		json_object_set_new(req_view(r), "test",
				    json_pack("{s:b, s:s}", "ok", ok,
					      "message", msg));
		return edit_page(r, id);
	}
	form_flash(r, ok ? "ok" : "error", msg);
	r->redirect = arena_printf(r->arena, "/settings/mailboxes/%" PRId64,
				   id);
	return TD_OK;
}
