/* mailauth.c: our own DKIM, SPF and DMARC verdict on inbound mail
 *
 * Used when no trusted MTA says it for us (its Authentication-Results
 * win where configured). DKIM is libopendkim with the key looked up by
 * our own resolver (maildns, so the server is configurable); SPF is RFC
 * 7208's check_host with its limits (ten look-ups that cost DNS, two
 * void ones); DMARC is RFC 7489 alignment, relaxed or strict, with the
 * policy of the From domain or of its organisational domain.
 */
#define _DEFAULT_SOURCE /* dkim.h needs u_char and u_int */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dkim.h>

#include "arena.h"
#include "mailauth.h"
#include "maildns.h"
#include "sbuf.h"
#include "banned.h"

#define SPF_MAX_LOOKUPS 10
#define SPF_MAX_VOID	2
#define SPF_MAX_MX	10
#define RECEIVED_MAX	5 /* hops inside our own network looked past */

/* ---- headers ------------------------------------------------------------ */

/* The nth value (from 0, topmost first) of header name, unfolded; NULL
 * when there are fewer. */
static const char *header(struct arena *a, const unsigned char *raw,
			  size_t len, const char *name, int nth)
{
	size_t n = strlen(name), i = 0, start, end;
	struct sbuf sb;

	while (i < len) {
		/* the end of the header section: an empty line */
		if (raw[i] == '\n' || (raw[i] == '\r' && i + 1 < len &&
				       raw[i + 1] == '\n'))
			return NULL;
		start = i;
		/* one header with its continuation lines */
		for (end = i; end < len; end++)
			if (raw[end] == '\n' &&
			    (end + 1 >= len ||
			     (raw[end + 1] != ' ' && raw[end + 1] != '\t')))
				break;
		i = end + 1;
		if (end - start > n && raw[start + n] == ':' &&
		    !strncasecmp((const char *)raw + start, name, n) &&
		    nth-- == 0) {
			size_t k;

			sbuf_init(&sb, a, end - start);
			for (k = start + n + 1; k < end; k++)
				if (raw[k] != '\r' && raw[k] != '\n')
					sbuf_addch(&sb, (char)raw[k]);
			return sbuf_cstr(&sb);
		}
	}
	return NULL;
}

/* Loopback, private (RFC 1918, fc00::/7) or link-local: a hop inside. */
static bool internal_ip(const struct maildns_addr *ip)
{
	static const unsigned char v6_loop[16] = { [15] = 1 };
	const unsigned char *b = ip->b;

	if (ip->len == 4)
		return b[0] == 127 || b[0] == 10 ||
		       (b[0] == 172 && (b[1] & 0xf0) == 16) ||
		       (b[0] == 192 && b[1] == 168) ||
		       (b[0] == 169 && b[1] == 254);
	return !memcmp(b, v6_loop, 16) || (b[0] & 0xfe) == 0xfc ||
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

/* "[1.2.3.4]" or "[IPv6:...]" in the from part of a Received value. */
static const char *received_ip(struct arena *a, const char *v)
{
	const char *p = v, *close, *by = strstr(v, " by ");
	struct maildns_addr ip;
	char *s;

	while ((p = strchr(p, '[')) != NULL && (by == NULL || p < by)) {
		close = strchr(p, ']');
		if (close == NULL)
			return NULL;
		s = arena_strndup(a, p + 1, (size_t)(close - p - 1));
		if (!strncasecmp(s, "IPv6:", 5))
			s += 5;
		if (maildns_parse_ip(s, &ip))
			return internal_ip(&ip) ? NULL : s;
		p = close;
	}
	return NULL;
}

/* The address inside "<...>" (or the trimmed value); "" for "<>". */
static const char *angle_addr(struct arena *a, const char *v)
{
	const char *lt = strchr(v, '<'), *gt;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL)
		return arena_strndup(a, lt + 1, (size_t)(gt - lt - 1));
	while (*v == ' ' || *v == '\t')
		v++;
	return arena_strndup(a, v, strcspn(v, " \t\r\n"));
}

static char *lower(struct arena *a, const char *s)
{
	char *out = arena_strdup(a, s), *p;

	for (p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* The domain of local@domain (lowercase), or NULL. */
static const char *domain_of(struct arena *a, const char *addr)
{
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;

	return at != NULL && at[1] != '\0' ? lower(a, at + 1) : NULL;
}

/*
 * The organisational domain: the last two labels.
 * XXX(#9): no public suffix list, so example.co.uk counts as co.uk.
 */
static const char *org_domain(const char *d)
{
	const char *last = strrchr(d, '.'), *p;

	if (last == NULL)
		return d;
	for (p = last - 1; p > d; p--)
		if (*p == '.')
			return p + 1;
	return d;
}

static bool aligned(const char *a_dom, const char *b_dom, bool strict)
{
	if (a_dom == NULL || b_dom == NULL)
		return false;
	if (strict)
		return !strcasecmp(a_dom, b_dom);
	return !strcasecmp(org_domain(a_dom), org_domain(b_dom));
}

/* ---- SPF ---------------------------------------------------------------- */

struct spf {
	struct arena *a;
	struct maildns *dns;
	struct maildns_addr ip;
	const char *ip_text;
	const char *sender; /* local@domain */
	const char *helo;
	int lookups, voids;
};

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR
};

static const char *const spf_words[] = { "none",     "neutral",	 "pass",
					 "fail",     "softfail", "temperror",
					 "permerror" };

static bool in_cidr(const struct maildns_addr *ip,
		    const struct maildns_addr *net, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (ip->len != net->len || bits < 0 || bits > ip->len * 8)
		return false;
	if (memcmp(ip->b, net->b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((ip->b[full] ^ net->b[full]) & (0xff << (8 - rest)) & 0xff) ==
	       0;
}

/* The ip in the %{i} form: dotted quad, or dotted nibbles for IPv6. */
static const char *ip_macro(struct arena *a, const struct maildns_addr *ip)
{
	struct sbuf sb;
	int i;

	sbuf_init(&sb, a, 72);
	if (ip->len == 4) {
		sbuf_addf(&sb, "%u.%u.%u.%u", ip->b[0], ip->b[1], ip->b[2],
			  ip->b[3]);
		return sbuf_cstr(&sb);
	}
	for (i = 0; i < 16; i++)
		sbuf_addf(&sb, "%s%x.%x", i ? "." : "", ip->b[i] >> 4,
			  ip->b[i] & 15);
	return sbuf_cstr(&sb);
}

/* One macro letter's value, its labels cut or reversed as asked. */
static const char *macro_value(struct spf *s, const char *domain, char letter,
			       int keep, bool reverse)
{
	const char *v, *labels[128];
	const char *at = strrchr(s->sender, '@');
	char *copy, *tok, *save;
	struct sbuf sb;
	int n = 0, i, from;

	switch (tolower((unsigned char)letter)) {
	case 's':
		v = s->sender;
		break;
	case 'l':
		v = arena_strndup(s->a, s->sender, (size_t)(at - s->sender));
		break;
	case 'o':
		v = at + 1;
		break;
	case 'd':
		v = domain;
		break;
	case 'i':
		v = ip_macro(s->a, &s->ip);
		break;
	case 'h':
		v = s->helo != NULL ? s->helo : "unknown";
		break;
	case 'v':
		v = s->ip.len == 4 ? "in-addr" : "ip6";
		break;
	default:
		return NULL;
	}
	if (keep == 0 && !reverse)
		return v;
	copy = arena_strdup(s->a, v);
	for (tok = strtok_r(copy, ".", &save); tok != NULL && n < 128;
	     tok = strtok_r(NULL, ".", &save))
		labels[n++] = tok;
	if (reverse)
		for (i = 0; i < n / 2; i++) {
			const char *t = labels[i];

			labels[i] = labels[n - 1 - i];
			labels[n - 1 - i] = t;
		}
	sbuf_init(&sb, s->a, strlen(v) + 1);
	from = keep > 0 && keep < n ? n - keep : 0;
	for (i = from; i < n; i++)
		sbuf_addf(&sb, "%s%s", i > from ? "." : "", labels[i]);
	return sbuf_cstr(&sb);
}

/* A domain-spec with its macros expanded; NULL when malformed. */
static const char *expand(struct spf *s, const char *spec, const char *domain)
{
	struct sbuf sb;
	const char *p = spec, *v;
	int keep;
	bool reverse;
	char letter;

	if (strchr(spec, '%') == NULL)
		return spec;
	sbuf_init(&sb, s->a, strlen(spec) + 64);
	while (*p) {
		if (*p != '%') {
			sbuf_addch(&sb, *p++);
			continue;
		}
		p++;
		if (*p == '%' || *p == '_' || *p == '-') {
			sbuf_adds(&sb, *p == '%' ? "%" : *p == '_' ? " " : "%20");
			p++;
			continue;
		}
		if (*p != '{' || p[1] == '\0')
			return NULL;
		letter = p[1];
		p += 2;
		keep = 0;
		while (isdigit((unsigned char)*p))
			keep = keep * 10 + (*p++ - '0');
		reverse = *p == 'r' || *p == 'R';
		if (reverse)
			p++;
		/* other delimiters than '.' are not supported: permerror */
		if (*p != '}')
			return NULL;
		p++;
		v = macro_value(s, domain, letter, keep, reverse);
		if (v == NULL)
			return NULL;
		sbuf_adds(&sb, v);
	}
	return sbuf_cstr(&sb);
}

static enum spf_result check_host(struct spf *s, const char *domain,
				  int depth);

/* Counts a look-up that costs DNS; false past the limit. */
static bool spend(struct spf *s)
{
	return ++s->lookups <= SPF_MAX_LOOKUPS;
}

/* Counts a look-up that found nothing; false past the limit. */
static bool void_lookup(struct spf *s, enum maildns_rc rc)
{
	return rc != MAILDNS_NONE || ++s->voids <= SPF_MAX_VOID;
}

/* Whether one of host's addresses is the client's within bits. */
static enum spf_result host_matches(struct spf *s, const char *host, int bits,
				    bool *match)
{
	struct maildns_addr *addrs;
	enum maildns_rc rc;
	size_t n, i;

	*match = false;
	rc = maildns_addrs(s->dns, s->a, host, s->ip.len == 16, &addrs, &n);
	if (rc == MAILDNS_TEMP)
		return SPF_TEMPERROR;
	if (!void_lookup(s, rc))
		return SPF_PERMERROR;
	for (i = 0; i < n && !*match; i++)
		*match = in_cidr(&s->ip, &addrs[i], bits);
	return SPF_NONE;
}

/* Splits "domain/24//64" into the domain (or NULL) and the prefix. */
static bool split_cidr(struct spf *s, const char *arg, const char **dom,
		       int *bits)
{
	const char *slash = strchr(arg, '/'), *p;
	int v4 = 32, v6 = 128;
	char *end;

	*dom = slash == arg ? NULL :
	       slash != NULL ? arena_strndup(s->a, arg, (size_t)(slash - arg)) :
			       (*arg ? arg : NULL);
	if (slash != NULL) {
		p = slash + 1;
		if (*p != '/') {
			v4 = (int)strtol(p, &end, 10);
			if (end == p || v4 < 0 || v4 > 32)
				return false;
			p = end;
			if (*p == '/')
				p++;
			else if (*p != '\0')
				return false;
		}
		if (*p == '/') {
			v6 = (int)strtol(p + 1, &end, 10);
			if (end == p + 1 || *end != '\0' || v6 < 0 || v6 > 128)
				return false;
		}
	}
	*bits = s->ip.len == 4 ? v4 : v6;
	return true;
}

/* One mechanism: SPF_NONE no match, SPF_PASS match, else an error. */
static enum spf_result mechanism(struct spf *s, const char *name,
				 const char *arg, const char *domain,
				 int depth)
{
	const char *target, **hosts;
	struct maildns_addr net;
	enum maildns_rc rc;
	enum spf_result r;
	bool match = false;
	int bits, i;
	char *slash, *end;

	if (!strcasecmp(name, "all"))
		return arg == NULL ? SPF_PASS : SPF_PERMERROR;
	if (!strcasecmp(name, "ip4") || !strcasecmp(name, "ip6")) {
		bool six = name[2] == '6';
		char *net_text;

		if (arg == NULL)
			return SPF_PERMERROR;
		net_text = arena_strdup(s->a, arg);
		bits = six ? 128 : 32;
		slash = strchr(net_text, '/');
		if (slash != NULL) {
			*slash = '\0';
			bits = (int)strtol(slash + 1, &end, 10);
			if (end == slash + 1 || *end != '\0' || bits < 0 ||
			    bits > (six ? 128 : 32))
				return SPF_PERMERROR;
		}
		if (!maildns_parse_ip(net_text, &net) ||
		    net.len != (six ? 16 : 4))
			return SPF_PERMERROR;
		return in_cidr(&s->ip, &net, bits) ? SPF_PASS : SPF_NONE;
	}
	if (!strcasecmp(name, "include")) {
		if (arg == NULL || (target = expand(s, arg, domain)) == NULL)
			return SPF_PERMERROR;
		if (!spend(s))
			return SPF_PERMERROR;
		r = check_host(s, target, depth + 1);
		if (r == SPF_PASS)
			return SPF_PASS;
		if (r == SPF_TEMPERROR)
			return SPF_TEMPERROR;
		if (r == SPF_PERMERROR || r == SPF_NONE)
			return SPF_PERMERROR;
		return SPF_NONE;
	}
	if (!strcasecmp(name, "a") || !strcasecmp(name, "mx")) {
		if (!split_cidr(s, arg != NULL ? arg : "", &target, &bits))
			return SPF_PERMERROR;
		if (target != NULL && (target = expand(s, target, domain)) == NULL)
			return SPF_PERMERROR;
		if (target == NULL)
			target = domain;
		if (!spend(s))
			return SPF_PERMERROR;
		if (tolower((unsigned char)name[0]) == 'a') {
			r = host_matches(s, target, bits, &match);
			if (r != SPF_NONE)
				return r;
			return match ? SPF_PASS : SPF_NONE;
		}
		rc = maildns_mx(s->dns, s->a, target, &hosts);
		if (rc == MAILDNS_TEMP)
			return SPF_TEMPERROR;
		if (!void_lookup(s, rc))
			return SPF_PERMERROR;
		for (i = 0; hosts != NULL && hosts[i] != NULL && !match; i++) {
			if (i >= SPF_MAX_MX)
				return SPF_PERMERROR;
			r = host_matches(s, hosts[i], bits, &match);
			if (r != SPF_NONE)
				return r;
		}
		return match ? SPF_PASS : SPF_NONE;
	}
	if (!strcasecmp(name, "exists")) {
		struct maildns_addr *addrs;
		size_t n;

		if (arg == NULL || (target = expand(s, arg, domain)) == NULL)
			return SPF_PERMERROR;
		if (!spend(s))
			return SPF_PERMERROR;
		rc = maildns_addrs(s->dns, s->a, target, false, &addrs, &n);
		if (rc == MAILDNS_TEMP)
			return SPF_TEMPERROR;
		if (!void_lookup(s, rc))
			return SPF_PERMERROR;
		return n > 0 ? SPF_PASS : SPF_NONE;
	}
	if (!strcasecmp(name, "ptr")) {
		/* Deprecated (RFC 7208 5.5): counted, never a match here. */
		return spend(s) ? SPF_NONE : SPF_PERMERROR;
	}
	return SPF_PERMERROR;
}

/* The one "v=spf1" record of domain, or NULL with *r saying why. */
static const char *spf_record(struct spf *s, const char *domain,
			      enum spf_result *r)
{
	const char **txt, *found = NULL;
	enum maildns_rc rc = maildns_txt(s->dns, s->a, domain, &txt);
	int i;

	*r = SPF_NONE;
	if (rc == MAILDNS_TEMP) {
		*r = SPF_TEMPERROR;
		return NULL;
	}
	for (i = 0; txt != NULL && txt[i] != NULL; i++) {
		if (strncasecmp(txt[i], "v=spf1", 6) != 0 ||
		    (txt[i][6] != '\0' && txt[i][6] != ' '))
			continue;
		if (found != NULL) {
			*r = SPF_PERMERROR;
			return NULL;
		}
		found = txt[i];
	}
	return found;
}

static enum spf_result check_host(struct spf *s, const char *domain,
				  int depth)
{
	const char *rec, *redirect = NULL;
	enum spf_result r, qual;
	char *copy, *term, *save, *sep, *arg;

	if (depth > SPF_MAX_LOOKUPS)
		return SPF_PERMERROR;
	rec = spf_record(s, domain, &r);
	if (rec == NULL)
		return r;
	copy = arena_strdup(s->a, rec + 6);
	for (term = strtok_r(copy, " ", &save); term != NULL;
	     term = strtok_r(NULL, " ", &save)) {
		qual = SPF_PASS;
		switch (*term) {
		case '+':
			term++;
			break;
		case '-':
			qual = SPF_FAIL;
			term++;
			break;
		case '~':
			qual = SPF_SOFTFAIL;
			term++;
			break;
		case '?':
			qual = SPF_NEUTRAL;
			term++;
			break;
		}
		sep = term + strcspn(term, ":=/");
		if (*sep == '=') {
			*sep = '\0';
			if (!strcasecmp(term, "redirect")) {
				if (redirect != NULL)
					return SPF_PERMERROR;
				redirect = sep + 1;
			}
			continue; /* exp= and unknown modifiers */
		}
		arg = NULL;
		if (*sep == ':') {
			*sep = '\0';
			arg = sep + 1;
		} else if (*sep == '/') {
			/* "a/24": the cidr belongs to the argument */
			arg = arena_strdup(s->a, sep);
			*sep = '\0';
		}
		r = mechanism(s, term, arg, domain, depth);
		if (r == SPF_PASS)
			return qual;
		if (r != SPF_NONE)
			return r;
	}
	if (redirect != NULL) {
		const char *target = expand(s, redirect, domain);

		if (target == NULL || !spend(s))
			return SPF_PERMERROR;
		r = check_host(s, target, depth + 1);
		return r == SPF_NONE ? SPF_PERMERROR : r;
	}
	return SPF_NEUTRAL;
}

const char *mailauth_spf(struct arena *a, struct maildns *dns, const char *ip,
			 const char *sender, const char *helo)
{
	struct spf s;
	const char *domain;

	memset(&s, 0, sizeof(s));
	s.a = a;
	s.dns = dns;
	s.helo = helo != NULL && *helo ? helo : NULL;
	if (ip == NULL || !maildns_parse_ip(ip, &s.ip))
		return "none";
	if (sender == NULL || *sender == '\0' || strchr(sender, '@') == NULL) {
		if (s.helo == NULL)
			return "none";
		sender = arena_printf(a, "postmaster@%s", s.helo);
	}
	s.sender = sender;
	domain = domain_of(a, sender);
	if (domain == NULL)
		return "none";
	return spf_words[check_host(&s, domain, 0)];
}

/* ---- DKIM --------------------------------------------------------------- */

struct dkim_ctx {
	struct arena *a;
	struct maildns *dns;
	bool temp; /* a key look-up failed for now */
};

/* libopendkim's key look-up, through our resolver. */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf,
			      size_t buflen)
{
	struct dkim_ctx *c = dkim_get_user_context(dkim);
	const unsigned char *sel = dkim_sig_getselector(sig);
	const unsigned char *dom = dkim_sig_getdomain(sig);
	const char **txt;
	enum maildns_rc rc;
	size_t n;

	if (c == NULL || sel == NULL || dom == NULL)
		return DKIM_CBSTAT_ERROR;
	rc = maildns_txt(c->dns, c->a,
			 arena_printf(c->a, "%s._domainkey.%s",
				      (const char *)sel, (const char *)dom),
			 &txt);
	if (rc == MAILDNS_TEMP) {
		c->temp = true;
		return DKIM_CBSTAT_TRYAGAIN;
	}
	if (rc != MAILDNS_FOUND || txt == NULL || txt[0] == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	n = strlen(txt[0]);
	if (n + 1 > buflen)
		return DKIM_CBSTAT_ERROR;
	memcpy(buf, txt[0], n + 1);
	return DKIM_CBSTAT_CONTINUE;
}

/*
 * The best result over every signature (pass > fail > temperror >
 * permerror), and the domains that passed, NULL-ended.
 */
static const char *dkim_check(struct arena *a, struct maildns *dns,
			      const unsigned char *raw, size_t len,
			      const char ***passed)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	struct dkim_ctx ctx = { a, dns, false };
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st = DKIM_STAT_INTERNAL;
	unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
	const char *best = "none";
	const char **ok;
	DKIM *d = NULL;
	int nsigs = 0, i, k = 0, err;

	*passed = NULL;
	if (lib == NULL)
		return "temperror";
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
		     sizeof(flags));
	dkim_set_key_lookup(lib, key_lookup);
	d = dkim_verify(lib, (const unsigned char *)"tallydesk", NULL, &st);
	if (d == NULL)
		goto done;
	dkim_set_user_context(d, &ctx);
	st = dkim_chunk(d, (u_char *)raw, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG)
		dkim_eom(d, NULL);
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0)
		goto done;
	ok = arena_alloc(a, (size_t)(nsigs + 1) * sizeof(*ok));
	best = "permerror";
	for (i = 0; i < nsigs; i++) {
		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		if (DKIM_SIG_CHECK(sigs[i])) {
			ok[k++] = lower(a, (const char *)dkim_sig_getdomain(
						   sigs[i]));
			best = "pass";
			continue;
		}
		err = dkim_sig_geterror(sigs[i]);
		if (err == DKIM_SIGERROR_KEYFAIL || ctx.temp) {
			if (strcmp(best, "pass") && strcmp(best, "fail"))
				best = "temperror";
		} else if (err == DKIM_SIGERROR_BADSIG ||
			   err == DKIM_SIGERROR_OK ||
			   dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MISMATCH) {
			if (strcmp(best, "pass"))
				best = "fail";
		}
	}
	ok[k] = NULL;
	*passed = ok;
done:
	/* A key that could not be fetched leaves the signature unjudged. */
	if (ctx.temp && strcmp(best, "pass") && strcmp(best, "fail"))
		best = "temperror";
	if (d != NULL)
		dkim_free(d);
	dkim_close(lib);
	return best;
}

/* ---- DMARC -------------------------------------------------------------- */

/* The value of tag in a "v=DMARC1; p=reject; ..." record, or NULL. */
static const char *dmarc_tag(struct arena *a, const char *rec, const char *tag)
{
	size_t n = strlen(tag);
	const char *p = rec;

	while (p != NULL && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (!strncasecmp(p, tag, n)) {
			const char *v = p + n;

			while (*v == ' ')
				v++;
			if (*v == '=') {
				v++;
				while (*v == ' ')
					v++;
				return lower(a, arena_strndup(a, v,
							      strcspn(v, "; \t")));
			}
		}
		p = strchr(p, ';');
	}
	return NULL;
}

/* The DMARC record for domain (or NULL); TEMP when DNS failed. */
static enum maildns_rc dmarc_record(struct arena *a, struct maildns *dns,
				    const char *domain, const char **rec)
{
	const char **txt;
	enum maildns_rc rc;
	int i;

	*rec = NULL;
	rc = maildns_txt(dns, a, arena_printf(a, "_dmarc.%s", domain), &txt);
	if (rc == MAILDNS_TEMP)
		return rc;
	for (i = 0; txt != NULL && txt[i] != NULL; i++)
		if (!strncasecmp(txt[i], "v=DMARC1", 8) &&
		    (txt[i][8] == ';' || txt[i][8] == ' ' ||
		     txt[i][8] == '\0')) {
			if (*rec != NULL) { /* more than one: none applies */
				*rec = NULL;
				return MAILDNS_NONE;
			}
			*rec = txt[i];
		}
	return *rec != NULL ? MAILDNS_FOUND : MAILDNS_NONE;
}

static void dmarc_check(struct arena *a, struct maildns *dns,
			const char *from_domain, const char *const *dkim_passed,
			const char *spf, const char *spf_domain,
			struct mailauth_result *out)
{
	const char *rec, *org = org_domain(from_domain), *policy = NULL;
	enum maildns_rc rc = dmarc_record(a, dns, from_domain, &rec);
	bool strict_dkim, strict_spf, pass = false;
	size_t i;

	if (rc == MAILDNS_NONE && strcmp(org, from_domain) != 0) {
		rc = dmarc_record(a, dns, org, &rec);
		if (rc == MAILDNS_FOUND)
			policy = dmarc_tag(a, rec, "sp");
	}
	if (rc == MAILDNS_TEMP) {
		out->dmarc = "temperror";
		return;
	}
	if (rc != MAILDNS_FOUND) {
		out->dmarc = "none";
		return;
	}
	if (policy == NULL)
		policy = dmarc_tag(a, rec, "p");
	if (policy == NULL || (strcmp(policy, "none") &&
			       strcmp(policy, "quarantine") &&
			       strcmp(policy, "reject")))
		policy = "none";
	out->dmarc_policy = policy;
	strict_dkim = dmarc_tag(a, rec, "adkim") != NULL &&
		      !strcmp(dmarc_tag(a, rec, "adkim"), "s");
	strict_spf = dmarc_tag(a, rec, "aspf") != NULL &&
		     !strcmp(dmarc_tag(a, rec, "aspf"), "s");
	for (i = 0; dkim_passed != NULL && dkim_passed[i] != NULL && !pass;
	     i++)
		pass = aligned(dkim_passed[i], from_domain, strict_dkim);
	if (!pass && !strcmp(spf, "pass"))
		pass = aligned(spf_domain, from_domain, strict_spf);
	out->dmarc = pass ? "pass" : "fail";
}

/* ---- the verdict -------------------------------------------------------- */

void mailauth_check(struct arena *a, struct maildns *dns,
		    const unsigned char *raw, size_t len,
		    const char *from_domain, const struct mailauth_env *env,
		    struct mailauth_result *out)
{
	const char *ip = env != NULL ? env->client_ip : NULL;
	const char *sender = env != NULL ? env->mail_from : NULL;
	const char *helo = env != NULL ? env->helo : NULL;
	const char **passed, *v, *spf_domain;
	struct sbuf sb;
	int i;

	memset(out, 0, sizeof(out[0]));
	/*
	 * The first hop from outside, as our own MTA wrote it: the topmost
	 * Received header naming a public address (hops inside — LMTP to
	 * the mail store, a local filter — come from internal ones).
	 */
	for (i = 0; ip == NULL && i < RECEIVED_MAX &&
		    (v = header(a, raw, len, "Received", i)) != NULL;
	     i++)
		ip = received_ip(a, v);
	if (sender == NULL &&
	    (v = header(a, raw, len, "Return-Path", 0)) != NULL)
		sender = angle_addr(a, v);
	out->dkim = dkim_check(a, dns, raw, len, &passed);
	out->spf = mailauth_spf(a, dns, ip, sender, helo);
	spf_domain = sender != NULL && *sender ? domain_of(a, sender) :
						 (helo != NULL ? lower(a, helo) : NULL);
	if (from_domain != NULL && *from_domain)
		dmarc_check(a, dns, lower(a, from_domain), passed, out->spf,
			    spf_domain, out);
	else
		out->dmarc = "none";
	out->failed = !strcmp(out->dkim, "fail") || !strcmp(out->spf, "fail") ||
		      (!strcmp(out->dmarc, "fail") &&
		       out->dmarc_policy != NULL &&
		       strcmp(out->dmarc_policy, "none") != 0);
	sbuf_init(&sb, a, 80);
	sbuf_addf(&sb, "dkim=%s spf=%s dmarc=%s", out->dkim, out->spf,
		  out->dmarc);
	if (out->dmarc_policy != NULL && !strcmp(out->dmarc, "fail"))
		sbuf_addf(&sb, " (p=%s)", out->dmarc_policy);
	out->verdict = sbuf_cstr(&sb);
}
