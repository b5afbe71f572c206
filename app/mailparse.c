/* mailparse.c: one RFC 5322/MIME message to a plain struct (no database)
 *
 * Headers are read here, leniently (bare CR line ends, invalid lines
 * skipped, raw 8-bit text, encoded-words where RFC 2047 forbids them),
 * because a help desk must read what real mailers send. The cleaned
 * message then goes to GMime for the MIME tree: transfer encodings,
 * RFC 2231 file names, nested messages.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>

#include "arena.h"
#include "mailparse.h"
#include "sbuf.h"
#include "banned.h"

#define MAX_HEADERS 512
#define MAX_IDS	    64
#define MAX_ATTACH  64
#define MAX_DEPTH   12
#define MAX_TEXT    (1024 * 1024) /* readable body kept, in bytes */

struct hdr {
	const char *name;
	const char *value; /* unfolded, raw bytes */
};

struct hdrs {
	struct hdr v[MAX_HEADERS];
	size_t n;
};

static const char *const kind_keys[MAIL_KIND__MAX] = { "normal", "auto-reply",
						       "bounce", "bounce-delay",
						       "feedback-report" };

const char *mail_kind_key(enum mail_kind k)
{
	return (unsigned)k < MAIL_KIND__MAX ? kind_keys[k] : "normal";
}

/* ASCII case-insensitive search for needle in hay. */
static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; hay != NULL && *hay; hay++)
		if (g_ascii_strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- charsets ---------------------------------------------------------- */

/* The iconv name for a label, with the aliases mailers really use. */
static const char *charset_alias(const char *cs)
{
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1",
					      "iso_8859-1", "latin1",
					      "latin-1",    "l1",
					      "cp819",	    NULL };
	int i;

	if (cs == NULL || *cs == '\0')
		return NULL;
	for (i = 0; latin1[i] != NULL; i++)
		if (!g_ascii_strcasecmp(cs, latin1[i]))
			return "WINDOWS-1252";
	if (!g_ascii_strcasecmp(cs, "us-ascii") ||
	    !g_ascii_strcasecmp(cs, "ascii") ||
	    !g_ascii_strcasecmp(cs, "ansi_x3.4-1968"))
		return NULL; /* ASCII, or unlabelled 8-bit: guessed */
	if (!g_ascii_strncasecmp(cs, "ks_c_5601", 9))
		return "CP949";
	if (!g_ascii_strcasecmp(cs, "x-sjis") ||
	    !g_ascii_strcasecmp(cs, "shift-jis") ||
	    !g_ascii_strcasecmp(cs, "sjis"))
		return "SHIFT_JIS";
	if (!g_ascii_strcasecmp(cs, "gb2312") || !g_ascii_strcasecmp(cs, "gbk"))
		return "GB18030";
	if (!g_ascii_strcasecmp(cs, "utf8"))
		return "UTF-8";
	return cs;
}

/* Valid UTF-8 without NUL bytes, copied into the arena. */
static char *clean_utf8(struct arena *a, const char *s, size_t len)
{
	gchar *valid;
	char *out, *w;
	const char *p;

	if (s == NULL || len == 0)
		return arena_strdup(a, "");
	valid = g_utf8_make_valid(s, (gssize)len);
	out = arena_alloc_raw(a, strlen(valid) + 1);
	for (p = valid, w = out; *p; p++)
		*w++ = *p;
	*w = '\0';
	g_free(valid);
	return out;
}

static char *try_convert(struct arena *a, const char *s, size_t len,
			 const char *from)
{
	gsize rd = 0, wr = 0;
	gchar *conv;
	char *out;

	conv = g_convert(s, (gssize)len, "UTF-8", from, &rd, &wr, NULL);
	if (conv == NULL)
		return NULL;
	out = clean_utf8(a, conv, wr);
	g_free(conv);
	return out;
}

/*
 * len bytes in charset (a MIME label, NULL when none) as UTF-8: the label
 * when it converts, else UTF-8 when the bytes are valid, else
 * windows-1252, else ISO-8859-1 (which takes any byte).
 */
static char *to_utf8(struct arena *a, const char *s, size_t len,
		     const char *charset)
{
	const char *cs = charset_alias(charset);
	char *out;

	if (s == NULL || len == 0)
		return arena_strdup(a, "");
	if (cs != NULL && g_ascii_strcasecmp(cs, "UTF-8") != 0) {
		out = try_convert(a, s, len, cs);
		if (out != NULL)
			return out;
	}
	if (g_utf8_validate(s, (gssize)len, NULL) ||
	    (cs != NULL && !g_ascii_strcasecmp(cs, "UTF-8") && len > 0 &&
	     memchr(s, 0, len)))
		return clean_utf8(a, s, len);
	out = try_convert(a, s, len, "WINDOWS-1252");
	if (out == NULL)
		out = try_convert(a, s, len, "ISO-8859-1");
	return out != NULL ? out : clean_utf8(a, s, len);
}

/* ---- RFC 2047 ---------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Base64 that tolerates missing or wrong padding; appends to out. */
static void b64_decode(struct sbuf *out, const char *s, size_t n)
{
	uint32_t acc = 0;
	int bits = 0, v;
	size_t i;

	for (i = 0; i < n && s[i] != '='; i++) {
		v = b64val((unsigned char)s[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sbuf_addch(out, (char)((acc >> bits) & 0xff));
		}
	}
}

static void q_decode(struct sbuf *out, const char *s, size_t n)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = lo = -1;
		if (s[i] == '=') {
			hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
		}
		if (s[i] == '_') {
			sbuf_addch(out, ' ');
		} else if (hi >= 0 && lo >= 0) {
			sbuf_addch(out, (char)(hi * 16 + lo));
			i += 2;
		} else {
			sbuf_addch(out, s[i]);
		}
	}
}

/* An encoded-word at p: its parts, and where it ends (after "?="). */
struct eword {
	char charset[64];
	char enc;
	const char *text;
	size_t text_len;
	const char *end;
};

static bool parse_eword(const char *p, struct eword *w)
{
	const char *q, *cs, *star;
	size_t n;

	if (p[0] != '=' || p[1] != '?')
		return false;
	cs = p + 2;
	q = strchr(cs, '?');
	if (q == NULL || q == cs || (size_t)(q - cs) >= sizeof(w->charset))
		return false;
	n = (size_t)(q - cs);
	memcpy(w->charset, cs, n);
	w->charset[n] = '\0';
	if (strpbrk(w->charset, " \t\"()<>,") != NULL)
		return false;
	star = strchr(w->charset, '*'); /* RFC 2231 language suffix */
	if (star != NULL)
		w->charset[star - w->charset] = '\0';
	w->enc = (char)g_ascii_toupper(q[1]);
	if ((w->enc != 'B' && w->enc != 'Q') || q[2] != '?')
		return false;
	w->text = q + 3;
	q = strstr(w->text, "?=");
	if (q == NULL)
		return false;
	w->text_len = (size_t)(q - w->text);
	if (memchr(w->text, ' ', w->text_len) != NULL)
		return false;
	w->end = q + 2;
	return true;
}

/*
 * Decodes encoded-words wherever they are (also inside quotes or glued to
 * punctuation); whitespace between two of them goes; adjacent words in one
 * charset are joined before conversion, so a character split between
 * words survives. s is already UTF-8 outside the words.
 */
static const char *decode_words(struct arena *a, const char *s)
{
	struct sbuf out, bytes;
	struct eword w, next;
	const char *p = s, *q;

	if (strstr(s, "=?") == NULL)
		return s;
	sbuf_init(&out, a, strlen(s) + 16);
	sbuf_init(&bytes, a, 64);
	while (*p) {
		if (!parse_eword(p, &w)) {
			sbuf_addch(&out, *p++);
			continue;
		}
		sbuf_reset(&bytes);
		for (;;) {
			if (w.enc == 'B')
				b64_decode(&bytes, w.text, w.text_len);
			else
				q_decode(&bytes, w.text, w.text_len);
			p = w.end;
			q = p;
			while (*q == ' ' || *q == '\t' || *q == '\r' ||
			       *q == '\n')
				q++;
			if (!parse_eword(q, &next))
				break;
			if (g_ascii_strcasecmp(next.charset, w.charset) != 0) {
				p = q; /* whitespace between words goes */
				break;
			}
			w = next;
		}
		sbuf_adds(&out, to_utf8(a, bytes.buf, bytes.len, w.charset));
	}
	return sbuf_cstr(&out);
}

const char *mail_decode_header(struct arena *a, const char *value,
			       const char *fallback_charset)
{
	const char *p;
	char *u;

	if (value == NULL)
		return NULL;
	for (p = value; *p && (unsigned char)*p < 0x80; p++)
		;
	if (*p == '\0') {
		u = arena_strdup(a, value);
	} else if (g_utf8_validate(value, -1, NULL)) {
		u = clean_utf8(a, value, strlen(value));
	} else {
		u = to_utf8(a, value, strlen(value),
			    fallback_charset != NULL ? fallback_charset :
						       "windows-1252");
	}
	return decode_words(a, u);
}

/* Runs of whitespace (and control characters) to one space, ends trimmed. */
static const char *collapse(struct arena *a, const char *s)
{
	struct sbuf out;
	bool space = false;

	if (s == NULL)
		return NULL;
	sbuf_init(&out, a, strlen(s) + 1);
	for (; *s; s++) {
		if ((unsigned char)*s <= ' ' || *s == 0x7f) {
			space = out.len > 0;
			continue;
		}
		if (space)
			sbuf_addch(&out, ' ');
		space = false;
		sbuf_addch(&out, *s);
	}
	return sbuf_cstr(&out);
}

/* ---- the header block -------------------------------------------------- */

/* A field name: printable ASCII without colon or space (trailing WSP ok). */
static bool field_name(const char *line, size_t len, size_t *name_len,
		       size_t *colon)
{
	size_t i, end;

	for (i = 0; i < len && line[i] != ':'; i++)
		;
	if (i == len || i == 0)
		return false;
	*colon = i;
	end = i;
	while (end > 0 && is_wsp(line[end - 1]))
		end--;
	if (end == 0)
		return false;
	for (i = 0; i < end; i++)
		if ((unsigned char)line[i] <= ' ' ||
		    (unsigned char)line[i] > '~')
			return false;
	*name_len = end;
	return true;
}

/*
 * Splits buf (LF line ends) into header fields and returns where the body
 * starts. Invalid lines are skipped; only an empty line ends the block.
 */
static const char *read_headers(struct arena *a, const char *buf,
				struct hdrs *h)
{
	const char *p = buf, *eol;
	struct sbuf val;
	size_t len, nlen, colon;
	bool have = false; /* continuation lines belong to the last field */

	h->n = 0;
	sbuf_init(&val, a, 256);
	while (*p) {
		eol = strchr(p, '\n');
		len = eol ? (size_t)(eol - p) : strlen(p);
		if (len == 0) {
			p = eol ? eol + 1 : p + len;
			break;
		}
		if (is_wsp(p[0])) {
			if (have) {
				sbuf_add(&val, p, len);
				h->v[h->n - 1].value = arena_strdup(a, val.buf);
			}
		} else if (field_name(p, len, &nlen, &colon) &&
			   h->n < MAX_HEADERS) {
			h->v[h->n].name = arena_strndup(a, p, nlen);
			sbuf_reset(&val);
			sbuf_add(&val, p + colon + 1, len - colon - 1);
			h->v[h->n].value = arena_strdup(a, val.buf);
			h->n++;
			have = true;
		} else {
			have = false;
		}
		p = eol ? eol + 1 : p + len;
	}
	return p;
}

static const char *hget(const struct hdrs *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!g_ascii_strcasecmp(h->v[i].name, name))
			return h->v[i].value;
	return NULL;
}

/* Every field called name, joined with spaces (References may repeat). */
static const char *hget_all(struct arena *a, const struct hdrs *h,
			    const char *name)
{
	struct sbuf out;
	size_t i;
	bool any = false;

	sbuf_init(&out, a, 128);
	for (i = 0; i < h->n; i++) {
		if (g_ascii_strcasecmp(h->v[i].name, name))
			continue;
		if (any)
			sbuf_addch(&out, ' ');
		sbuf_adds(&out, h->v[i].value);
		any = true;
	}
	return any ? sbuf_cstr(&out) : NULL;
}

/* Every field called name, each collapsed, NULL-terminated. */
static const char **all_values(struct arena *a, const struct hdrs *h,
			       const char *name)
{
	const char **out = arena_alloc(a, (h->n + 1) * sizeof(*out));
	size_t i, n = 0;

	for (i = 0; i < h->n; i++)
		if (!g_ascii_strcasecmp(h->v[i].name, name))
			out[n++] = collapse(a, h->v[i].value);
	out[n] = NULL;
	return out;
}

/* ---- addresses --------------------------------------------------------- */

/* The first element of an address list (top-level comma), trimmed. */
static char *first_element(struct arena *a, const char *s)
{
	int depth = 0;
	bool quoted = false, angle = false;
	const char *p;

	for (p = s; *p; p++) {
		if (quoted) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				quoted = false;
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && *p == '<') {
			angle = true;
		} else if (depth == 0 && *p == '>') {
			angle = false;
		} else if (depth == 0 && !angle && (*p == ',' || *p == ';')) {
			break;
		}
	}
	return g_strstrip(arena_strndup(a, s, (size_t)(p - s)));
}

/* A display name: quotes and quoted-pairs removed, words decoded. */
static const char *display_name(struct arena *a, const char *s, size_t n)
{
	struct sbuf out;
	size_t i;
	const char *name;

	sbuf_init(&out, a, n + 1);
	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			sbuf_addch(&out, s[++i]);
		else if (s[i] != '"')
			sbuf_addch(&out, s[i]);
	}
	name = collapse(a, decode_words(a, sbuf_cstr(&out)));
	return *name ? name : NULL;
}

/*
 * The first mailbox of an address field (already UTF-8): its addr-spec
 * ("" for <>) and display name. Malformed fields give the first thing
 * that looks like an address.
 */
static void parse_mailbox(struct arena *a, const char *value, const char **addr,
			  const char **name)
{
	char *el = first_element(a, value);
	const char *lt = NULL, *gt, *p, *comment = NULL;
	size_t comment_len = 0;
	bool quoted = false;
	int depth = 0;
	struct sbuf bare;
	char **tok;
	int i;

	*addr = NULL;
	*name = NULL;
	for (p = el; *p && lt == NULL; p++) {
		if (quoted) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				quoted = false;
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (*p == '<' && depth == 0) {
			lt = p;
		}
	}
	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		char *in = g_strstrip(
			arena_strndup(a, lt + 1, (size_t)(gt - lt - 1)));
		const char *route_end = in[0] == '@' ? strchr(in, ':') : NULL;

		*addr = route_end != NULL ? route_end + 1 : in;
		*name = display_name(a, el, (size_t)(lt - el));
		return;
	}
	/* No angle brackets: drop comments (the first may be the name). */
	sbuf_init(&bare, a, strlen(el) + 1);
	for (p = el; *p; p++) {
		if (*p == '(') {
			if (depth++ == 0 && comment == NULL)
				comment = p + 1;
			continue;
		}
		if (*p == ')' && depth > 0) {
			if (--depth == 0 && comment != NULL && comment_len == 0)
				comment_len = (size_t)(p - comment);
			continue;
		}
		if (depth == 0)
			sbuf_addch(&bare, *p == '"' ? ' ' : *p);
	}
	if (comment != NULL && comment_len > 0)
		*name = display_name(a, comment, comment_len);
	tok = g_strsplit_set(sbuf_cstr(&bare), " \t<>", -1);
	for (i = 0; tok[i] != NULL && *addr == NULL; i++)
		if (strchr(tok[i], '@') != NULL)
			*addr = arena_strdup(a, tok[i]);
	for (i = 0; tok[i] != NULL && *addr == NULL; i++)
		if (*tok[i])
			*addr = arena_strdup(a, tok[i]);
	g_strfreev(tok);
	if (*addr == NULL)
		*addr = lt != NULL ? "" : NULL;
}

/* Every addr-spec of an address list, appended to list. */
static void add_addresses(struct arena *a, const char *value, const char **list,
			  size_t *n, size_t max)
{
	const char *p = value, *addr, *name;
	char *el;
	size_t len;

	while (value != NULL && *p && *n < max) {
		el = first_element(a, p);
		len = strlen(el);
		parse_mailbox(a, el, &addr, &name);
		if (addr != NULL && strchr(addr, '@') != NULL)
			list[(*n)++] = addr;
		/* skip past this element in the original text */
		p = strstr(p, el) != NULL ? strstr(p, el) + len : p + strlen(p);
		while (*p == ',' || *p == ';' || is_wsp(*p))
			p++;
		if (len == 0 && *p)
			p++;
	}
}

/* The ids of Message-ID/In-Reply-To/References: "<...>" or bare words. */
static const char **parse_ids(struct arena *a, const char *value)
{
	const char **ids;
	const char *p = value, *e;
	size_t n = 0;

	if (value == NULL)
		return NULL;
	ids = arena_alloc(a, (MAX_IDS + 1) * sizeof(*ids));
	while (*p && n < MAX_IDS) {
		if (*p == '<') {
			e = strchr(p, '>');
			if (e == NULL)
				break;
			if (e > p + 1)
				ids[n++] = arena_strndup(a, p,
							 (size_t)(e - p + 1));
			p = e + 1;
		} else if ((unsigned char)*p <= ' ' || *p == ',') {
			p++;
		} else if (*p == '(') {
			e = strchr(p, ')');
			p = e ? e + 1 : p + strlen(p);
		} else {
			e = p;
			while (*e && (unsigned char)*e > ' ' && *e != '<' &&
			       *e != ',')
				e++;
			if (strchr(value, '<') == NULL)
				ids[n++] = arena_strndup(a, p, (size_t)(e - p));
			p = e;
		}
	}
	ids[n] = NULL;
	return ids;
}

/* ---- machine senders --------------------------------------------------- */

static bool is_daemon(const char *addr)
{
	static const char *const names[] = { "mailer-daemon", "postmaster",
					     "mail-daemon", "maildaemon",
					     NULL };
	size_t n;
	int i;

	if (addr == NULL)
		return false;
	n = strcspn(addr, "@");
	for (i = 0; names[i] != NULL; i++)
		if (n == strlen(names[i]) &&
		    !g_ascii_strncasecmp(addr, names[i], n))
			return true;
	return false;
}

static bool starts_ci(const char *s, const char *prefix)
{
	return s != NULL && !g_ascii_strncasecmp(s, prefix, strlen(prefix));
}

static enum mail_kind classify(struct arena *a, const struct hdrs *h,
			       struct mail_msg *m)
{
	const char *ct = hget(h, "Content-Type");
	const char *as = m->auto_submitted, *subj = m->subject;
	const char *prec = hget(h, "Precedence");
	bool delay;

	if (prec != NULL) {
		prec = collapse(a, prec);
		m->bulk = starts_ci(prec, "bulk") || starts_ci(prec, "junk") ||
			  starts_ci(prec, "list");
	}
	delay = (as != NULL && find_ci(as, "warning") != NULL) ||
		starts_ci(subj, "Warning: could not send") ||
		starts_ci(subj, "Delayed Mail") ||
		starts_ci(subj, "Delivery Status Notification (Delay)");
	if (ct != NULL && find_ci(ct, "multipart/report") != NULL) {
		if (find_ci(ct, "delivery-status") != NULL)
			return delay ? MAIL_BOUNCE_DELAY : MAIL_BOUNCE;
		if (find_ci(ct, "feedback-report") != NULL ||
		    find_ci(ct, "disposition-notification") != NULL)
			return MAIL_FEEDBACK;
	}
	if (is_daemon(m->from_addr) ||
	    (m->from_addr != NULL && *m->from_addr == '\0'))
		return delay ? MAIL_BOUNCE_DELAY : MAIL_BOUNCE;
	if ((as != NULL && !starts_ci(collapse(a, as), "no")) ||
	    hget(h, "X-Autoreply") != NULL ||
	    hget(h, "X-Autorespond") != NULL ||
	    hget(h, "X-Autoresponder") != NULL ||
	    find_ci(hget(h, "X-Apple-Action"), "vacation") != NULL ||
	    hget(h, "X-Auto-Response-Suppress") != NULL ||
	    (m->return_path != NULL && *m->return_path == '\0') ||
	    starts_ci(subj, "Automatic reply:") ||
	    starts_ci(subj, "Auto reply:") || starts_ci(subj, "Autoreply:") ||
	    starts_ci(subj, "Out of Office"))
		return MAIL_AUTO_REPLY;
	return MAIL_NORMAL;
}

/* ---- HTML -------------------------------------------------------------- */

static bool block_tag(const char *n)
{
	static const char *const tags[] = {
		"p",  "div",	    "tr",      "li",	  "h1",	    "h2",
		"h3", "h4",	    "h5",      "h6",	  "table",  "ul",
		"ol", "blockquote", "pre",     "hr",	  "center", "dl",
		"dt", "dd",	    "section", "article", NULL
	};
	int i;

	for (i = 0; tags[i] != NULL; i++)
		if (!g_ascii_strcasecmp(n, tags[i]))
			return true;
	return false;
}

static void html_walk(struct sbuf *out, xmlNode *node, int depth)
{
	xmlNode *c;
	const char *name, *t;
	xmlChar *href;
	size_t before;

	for (c = node; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE ||
		    c->type == XML_CDATA_SECTION_NODE) {
			for (t = (const char *)c->content; t != NULL && *t;
			     t++) {
				if ((unsigned char)*t <= ' ') {
					if (out->len > 0 &&
					    out->buf[out->len - 1] != ' ' &&
					    out->buf[out->len - 1] != '\n')
						sbuf_addch(out, ' ');
				} else {
					sbuf_addch(out, *t);
				}
			}
			continue;
		}
		if (c->type != XML_ELEMENT_NODE || depth > 200)
			continue;
		name = (const char *)c->name;
		if (!g_ascii_strcasecmp(name, "script") ||
		    !g_ascii_strcasecmp(name, "style") ||
		    !g_ascii_strcasecmp(name, "head") ||
		    !g_ascii_strcasecmp(name, "title"))
			continue;
		if (!g_ascii_strcasecmp(name, "br")) {
			sbuf_addch(out, '\n');
			continue;
		}
		if (block_tag(name) && out->len > 0 &&
		    out->buf[out->len - 1] != '\n')
			sbuf_addch(out, '\n');
		before = out->len;
		html_walk(out, c->children, depth + 1);
		if (!g_ascii_strcasecmp(name, "a")) {
			href = xmlGetProp(c, (const xmlChar *)"href");
			if (href != NULL &&
			    (starts_ci((const char *)href, "http") ||
			     starts_ci((const char *)href, "mailto:")) &&
			    (out->len == before ||
			     strstr(out->buf + before, (const char *)href) ==
				     NULL)) {
				sbuf_addf(out,
					  out->len == before ? "%s" : " <%s>",
					  (const char *)href);
			}
			xmlFree(href);
		}
		if (block_tag(name) && out->len > 0 &&
		    out->buf[out->len - 1] != '\n')
			sbuf_addch(out, '\n');
	}
}

/* Lines trimmed, at most one empty line in a row, ends trimmed. */
static const char *tidy_lines(struct arena *a, const char *s)
{
	struct sbuf out;
	const char *p = s, *eol, *b, *e;
	int blank = 0;

	sbuf_init(&out, a, strlen(s) + 1);
	while (*p) {
		eol = strchr(p, '\n');
		e = eol ? eol : p + strlen(p);
		b = p;
		while (b < e && is_wsp(*b))
			b++;
		while (e > b && (is_wsp(e[-1]) || e[-1] == '\r'))
			e--;
		if (e == b) {
			blank++;
		} else {
			if (out.len > 0)
				sbuf_adds(&out, blank ? "\n\n" : "\n");
			sbuf_add(&out, b, (size_t)(e - b));
			blank = 0;
		}
		p = eol ? eol + 1 : p + strlen(p);
	}
	return sbuf_cstr(&out);
}

const char *mail_html_to_text(struct arena *a, const char *html, size_t len)
{
	htmlDocPtr doc;
	struct sbuf out;

	if (len == 0 || len > INT32_MAX)
		return "";
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
			     HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
				     HTML_PARSE_NONET | HTML_PARSE_NOIMPLIED);
	if (doc == NULL)
		return "";
	sbuf_init(&out, a, len / 2 + 16);
	html_walk(&out, xmlDocGetRootElement(doc), 0);
	xmlFreeDoc(doc);
	return tidy_lines(a, sbuf_cstr(&out));
}

/* ---- MIME -------------------------------------------------------------- */

struct walk {
	struct arena *a;
	struct mail_msg *m;
	struct sbuf text; /* text/plain parts */
	struct sbuf html; /* text of text/html parts */
	int depth;
};

static GByteArray *part_bytes(GMimeObject *obj, GMimeStream **keep)
{
	GMimeDataWrapper *w;
	GMimeStream *s;

	*keep = NULL;
	if (!GMIME_IS_PART(obj))
		return NULL;
	w = g_mime_part_get_content(GMIME_PART(obj));
	if (w == NULL)
		return NULL;
	s = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, s) < 0) {
		g_object_unref(s);
		return NULL;
	}
	*keep = s;
	return g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
}

static const char *object_filename(struct arena *a, GMimeObject *obj)
{
	const char *fn = NULL;
	GMimeContentDisposition *d;

	if (GMIME_IS_PART(obj))
		fn = g_mime_part_get_filename(GMIME_PART(obj));
	if (fn == NULL) {
		d = g_mime_object_get_content_disposition(obj);
		if (d != NULL)
			fn = g_mime_content_disposition_get_parameter(
				d, "filename");
	}
	if (fn == NULL)
		fn = g_mime_object_get_content_type_parameter(obj, "name");
	if (fn == NULL)
		return NULL;
	fn = collapse(a, mail_decode_header(a, fn, NULL));
	return *fn ? fn : NULL;
}

static void add_attachment(struct walk *w, const char *fn, const char *type,
			   const unsigned char *data, size_t len, bool inl)
{
	struct mail_attachment *at;

	if (w->m->natt == MAX_ATTACH)
		return;
	at = &w->m->att[w->m->natt++];
	at->filename = fn;
	at->content_type = type;
	at->data = arena_alloc_raw(w->a, len + 1);
	if (len > 0)
		memcpy((unsigned char *)at->data, data, len);
	at->len = len;
	at->inline_part = inl;
}

static void walk_object(struct walk *w, GMimeObject *obj);

static void walk_message(struct walk *w, GMimeMessage *msg)
{
	GMimeObject *body;

	if (msg == NULL)
		return;
	body = g_mime_message_get_mime_part(msg);
	if (body != NULL)
		walk_object(w, body);
}

static void walk_alternative(struct walk *w, GMimeMultipart *mp)
{
	GMimeObject *best = NULL, *c;
	GMimeContentType *ct;
	int i, n = g_mime_multipart_get_count(mp);

	for (i = 0; i < n && best == NULL; i++) {
		c = g_mime_multipart_get_part(mp, i);
		ct = g_mime_object_get_content_type(c);
		if (ct != NULL &&
		    g_mime_content_type_is_type(ct, "text", "plain"))
			best = c;
	}
	for (i = 0; i < n && best == NULL; i++) {
		c = g_mime_multipart_get_part(mp, i);
		ct = g_mime_object_get_content_type(c);
		if (ct != NULL &&
		    (g_mime_content_type_is_type(ct, "text", "html") ||
		     GMIME_IS_MULTIPART(c)))
			best = c;
	}
	if (best == NULL && n > 0)
		best = g_mime_multipart_get_part(mp, n - 1);
	if (best != NULL)
		walk_object(w, best);
	/* The other alternatives may hold inline images: keep their files. */
	for (i = 0; i < n; i++) {
		c = g_mime_multipart_get_part(mp, i);
		if (c != best && GMIME_IS_MULTIPART(c)) {
			struct sbuf t = w->text, h = w->html;

			walk_object(w, c);
			w->text = t; /* their text is the same text again */
			w->html = h;
		}
	}
}

static void walk_object(struct walk *w, GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *fn, *disp, *charset;
	GMimeStream *keep = NULL;
	GByteArray *bytes;
	char *type;
	bool attach;
	int i, n;

	if (++w->depth > MAX_DEPTH) {
		w->depth--;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);

		if (ct != NULL && g_mime_content_type_is_type(ct, "multipart",
							      "alternative")) {
			walk_alternative(w, mp);
		} else {
			n = g_mime_multipart_get_count(mp);
			for (i = 0; i < n; i++)
				walk_object(w,
					    g_mime_multipart_get_part(mp, i));
		}
		w->depth--;
		return;
	}
	fn = object_filename(w->a, obj);
	type = ct != NULL ? g_mime_content_type_get_mime_type(ct) :
			    g_strdup("text/plain");
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
			GMIME_MESSAGE_PART(obj));

		if (fn != NULL && inner != NULL) {
			GMimeStream *s = g_mime_stream_mem_new();
			GByteArray *ba;

			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL,
						      s);
			ba = g_mime_stream_mem_get_byte_array(
				GMIME_STREAM_MEM(s));
			add_attachment(w, fn, "message/rfc822", ba->data,
				       ba->len, false);
			g_object_unref(s);
		}
		walk_message(w, inner);
		g_free(type);
		w->depth--;
		return;
	}
	disp = g_mime_object_get_disposition(obj);
	attach = fn != NULL ||
		 (disp != NULL && !g_ascii_strcasecmp(disp, "attachment"));
	bytes = part_bytes(obj, &keep);
	if (bytes != NULL && attach) {
		if (fn == NULL)
			fn = "attachment";
		add_attachment(
			w, arena_strdup(w->a, fn), arena_strdup(w->a, type),
			bytes->data, bytes->len,
			disp == NULL || g_ascii_strcasecmp(disp, "attachment"));
	} else if (bytes != NULL && ct != NULL &&
		   (g_mime_content_type_is_type(ct, "text", "plain") ||
		    g_mime_content_type_is_type(ct, "text", "html"))) {
		charset = g_mime_content_type_get_parameter(ct, "charset");
		if (g_mime_content_type_is_type(ct, "text", "html")) {
			const char *u = to_utf8(w->a, (const char *)bytes->data,
						bytes->len, charset);
			const char *t = mail_html_to_text(w->a, u, strlen(u));

			if (w->html.len > 0 && *t)
				sbuf_adds(&w->html, "\n\n");
			sbuf_adds(&w->html, t);
		} else if (w->text.len < MAX_TEXT) {
			if (w->text.len > 0)
				sbuf_adds(&w->text, "\n\n");
			sbuf_adds(&w->text,
				  to_utf8(w->a, (const char *)bytes->data,
					  bytes->len, charset));
		}
	}
	if (keep != NULL)
		g_object_unref(keep);
	g_free(type);
	w->depth--;
}

static void gmime_once(void)
{
	static bool done;

	if (!done) {
		g_mime_init();
		done = true;
	}
}

/* Bare CR and CRLF to LF; a leading mbox "From " line dropped. */
static char *normalise(struct arena *a, const unsigned char *raw, size_t len,
		       size_t *out_len)
{
	char *buf = arena_alloc_raw(a, len + 1), *w = buf;
	size_t i = 0;

	if (len > 5 && !memcmp(raw, "From ", 5)) {
		while (i < len && raw[i] != '\n' && raw[i] != '\r')
			i++;
		if (i < len && raw[i] == '\r')
			i++;
		if (i < len && raw[i] == '\n')
			i++;
	}
	for (; i < len; i++) {
		if (raw[i] == '\r') {
			*w++ = '\n';
			if (i + 1 < len && raw[i + 1] == '\n')
				i++;
		} else if (raw[i] == '\0') {
			*w++ = ' ';
		} else {
			*w++ = (char)raw[i];
		}
	}
	*w = '\0';
	*out_len = (size_t)(w - buf);
	return buf;
}

/* The cleaned header block (valid fields only) and the body, for GMime. */
static char *rebuild(struct arena *a, const struct hdrs *h, const char *body,
		     size_t *len)
{
	struct sbuf out;
	size_t i;

	sbuf_init(&out, a, strlen(body) + h->n * 80 + 16);
	for (i = 0; i < h->n; i++) {
		sbuf_adds(&out, h->v[i].name);
		sbuf_addch(&out, ':');
		sbuf_adds(&out, h->v[i].value);
		sbuf_addch(&out, '\n');
	}
	sbuf_addch(&out, '\n');
	sbuf_adds(&out, body);
	*len = out.len;
	return out.buf;
}

void mail_parse(struct arena *a, const unsigned char *raw, size_t len,
		struct mail_msg *m)
{
	struct hdrs *h = arena_alloc(a, sizeof(*h));
	const char *body, *v, *charset = NULL, *name;
	const char **rcpt;
	GMimeParserOptions *opts;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg;
	struct walk w;
	size_t nlen, blen, nrcpt = 0;
	char *norm, *clean;

	memset(m, 0, sizeof(*m));
	m->text = "";
	m->att = arena_alloc(a, MAX_ATTACH * sizeof(*m->att));
	norm = normalise(a, raw, len, &nlen);
	body = read_headers(a, norm, h);

	/* Raw 8-bit header text that is not UTF-8 is in the body's charset. */
	v = hget(h, "Content-Type");
	if (v != NULL && (v = find_ci(v, "charset=")) != NULL) {
		v += 8;
		v += *v == '"';
		charset = arena_strndup(a, v, strcspn(v, "\"; \t"));
	}
	v = hget(h, "From");
	if (v != NULL)
		parse_mailbox(a, mail_decode_header(a, v, charset),
			      &m->from_addr, &m->from_name);
	v = hget(h, "Reply-To");
	if (v != NULL)
		parse_mailbox(a, mail_decode_header(a, v, charset),
			      &m->reply_to, &name);
	v = hget(h, "X-Original-From");
	if (v != NULL)
		parse_mailbox(a, mail_decode_header(a, v, charset),
			      &m->original_from, &m->original_name);
	v = hget(h, "Return-Path");
	if (v != NULL)
		parse_mailbox(a, v, &m->return_path, &name);
	v = hget(h, "Subject");
	if (v != NULL)
		m->subject = collapse(a, mail_decode_header(a, v, charset));
	v = hget(h, "Message-ID");
	if (v != NULL) {
		const char **ids = parse_ids(a, collapse(a, v));

		m->message_id = ids[0] != NULL ? ids[0] : NULL;
	}
	m->in_reply_to = parse_ids(a, hget_all(a, h, "In-Reply-To"));
	m->references = parse_ids(a, hget_all(a, h, "References"));
	rcpt = arena_alloc(a, 65 * sizeof(*rcpt));
	add_addresses(a, mail_decode_header(a, hget_all(a, h, "To"), charset),
		      rcpt, &nrcpt, 64);
	add_addresses(a, mail_decode_header(a, hget_all(a, h, "Cc"), charset),
		      rcpt, &nrcpt, 64);
	rcpt[nrcpt] = NULL;
	m->recipients = rcpt;
	v = hget(h, "Auto-Submitted");
	if (v != NULL)
		m->auto_submitted = collapse(a, v);
	m->auth_results = all_values(a, h, "Authentication-Results");
	m->kind = classify(a, h, m);

	/* The MIME tree, through GMime. */
	gmime_once();
	clean = rebuild(a, h, body, &blen);
	stream = g_mime_stream_mem_new_with_buffer(clean, blen);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	opts = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(
		opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(
		opts, GMIME_RFC_COMPLIANCE_LOOSE);
	msg = g_mime_parser_construct_message(parser, opts);
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.m = m;
	sbuf_init(&w.text, a, 1024);
	sbuf_init(&w.html, a, 256);
	if (msg != NULL) {
		walk_message(&w, msg);
		g_object_unref(msg);
	} else {
		m->broken = true;
	}
	g_mime_parser_options_free(opts);
	g_object_unref(parser);
	g_object_unref(stream);
	if (w.text.len > 0) {
		m->text = tidy_lines(a, sbuf_cstr(&w.text));
	} else if (w.html.len > 0) {
		m->text = sbuf_cstr(&w.html);
		m->html_only = true;
	} else if (msg == NULL || (m->natt == 0 && *body)) {
		/* Nothing readable through MIME: keep what the body says. */
		m->text =
			tidy_lines(a, to_utf8(a, body, strlen(body), charset));
	}
}

/* ---- quoted history ---------------------------------------------------- */

static bool line_has(const char *b, const char *e, const char *needle)
{
	size_t n = strlen(needle);

	for (; b + n <= e; b++)
		if (!g_ascii_strncasecmp(b, needle, n))
			return true;
	return false;
}

static bool ends_with_wrote(const char *b, const char *e)
{
	while (e > b && (is_wsp(e[-1]) || e[-1] == '\r'))
		e--;
	return e - b >= 6 && !g_ascii_strncasecmp(e - 6, "wrote:", 6);
}

/* Where the quoted history starts, or NULL. */
static const char *history_start(const char *text)
{
	const char *p = text, *eol, *next, *next_eol;
	int k;

	while (*p) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		next = *eol ? eol + 1 : eol;
		next_eol = strchr(next, '\n');
		if (next_eol == NULL)
			next_eol = next + strlen(next);
		if (starts_ci(p, "On ") &&
		    (ends_with_wrote(p, eol) ||
		     (*next && ends_with_wrote(next, next_eol))))
			return p;
		if (line_has(p, eol, "-----Original Message-----") ||
		    line_has(p, eol, "----- Original Message -----"))
			return p;
		if (eol - p >= 10 && strspn(p, "_") >= 10 &&
		    starts_ci(next, "From:"))
			return p;
		if (starts_ci(p, "From:")) {
			const char *q = next;

			for (k = 0; k < 4 && *q; k++) {
				if (starts_ci(q, "Sent:") ||
				    starts_ci(q, "Date:"))
					return p;
				q = strchr(q, '\n');
				q = q ? q + 1 : "";
			}
		}
		p = next;
	}
	return NULL;
}

const char *mail_trim_quoted(struct arena *a, const char *text)
{
	const char *cut = history_start(text), *p, *eol, *end;
	struct sbuf out;

	end = cut != NULL ? cut : text + strlen(text);
	sbuf_init(&out, a, (size_t)(end - text) + 1);
	for (p = text; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (*p != '>')
			sbuf_add(&out, p, (size_t)(eol - p + (eol < end)));
		if (eol == end)
			break;
	}
	p = tidy_lines(a, sbuf_cstr(&out));
	return *p ? p : text;
}
