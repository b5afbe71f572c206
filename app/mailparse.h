/* mailparse.h: one RFC 5322/MIME message to a plain struct (no database) */
#ifndef TD_MAILPARSE_H
#define TD_MAILPARSE_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/* What kind of sender wrote it; everything but MAIL_NORMAL is a machine. */
enum mail_kind {
	MAIL_NORMAL,
	MAIL_AUTO_REPLY,   /* out-of-office, vacation, autoresponder */
	MAIL_BOUNCE,	   /* a delivery failure, DSN or not */
	MAIL_BOUNCE_DELAY, /* "still trying": a warning, not a failure */
	MAIL_FEEDBACK,	   /* ARF abuse report and other machine reports */
	MAIL_KIND__MAX
};

struct mail_attachment {
	const char *filename; /* decoded, UTF-8, never empty */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	bool inline_part; /* an inline image of an HTML body */
};

/* Every string is UTF-8 in the arena; NULL means the field was absent. */
struct mail_msg {
	const char *from_addr; /* addr-spec of the first mailbox; "" for <> */
	const char *from_name;
	const char *reply_to;	   /* first addr-spec of Reply-To */
	const char *original_from; /* addr-spec of X-Original-From */
	const char *original_name;
	const char *return_path;    /* "" for <> */
	const char *subject;	    /* decoded, whitespace collapsed */
	const char *message_id;	    /* "<...>" (raw when unbracketed) */
	const char **in_reply_to;   /* NULL-terminated; NULL when absent */
	const char **references;    /* NULL-terminated; NULL when absent */
	const char **recipients;    /* To and Cc addr-specs, NULL-terminated */
	const char *auto_submitted; /* the field's value, or NULL */
	const char **auth_results;  /* Authentication-Results, NULL-ended */
	enum mail_kind kind;
	bool bulk;	  /* Precedence: bulk, junk or list */
	const char *text; /* the readable body, never NULL */
	bool html_only;	  /* text came from an HTML part */
	bool broken;	  /* the MIME structure could not be read */
	struct mail_attachment *att;
	size_t natt;
};

/*
 * Parses len bytes of a message (CRLF, LF or bare CR line ends, an mbox
 * "From " line in front allowed) into *m. Never fails: what cannot be
 * read is left out and m->broken says so.
 */
void mail_parse(struct arena *a, const unsigned char *raw, size_t len,
		struct mail_msg *m);

/* "normal", "auto-reply", "bounce", "bounce-delay", "feedback-report". */
const char *mail_kind_key(enum mail_kind k);

/*
 * The reply above the quoted history: cut at "On ... wrote:", Outlook's
 * "-----Original Message-----" or "From:/Sent:" block, and drop lines
 * quoted with '>'. Returns text itself when nothing would be left.
 */
const char *mail_trim_quoted(struct arena *a, const char *text);

/* Decodes RFC 2047 words and raw 8-bit bytes of a header value to UTF-8. */
const char *mail_decode_header(struct arena *a, const char *value,
			       const char *fallback_charset);

/* HTML to readable text (no script/style; links kept as "text <url>"). */
const char *mail_html_to_text(struct arena *a, const char *html, size_t len);

#endif
