/* mustache.c: compile mustache templates into node trees and render them */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "err.h"
#include "mustache.h"
#include "sbuf.h"
#include "banned.h"

/*
 * Limits. MUSTACHE_MAX_DEPTH stops a partial, parent or block that
 * expands itself (the spec's recursive partials need a few levels, real
 * pages fewer than ten). MUSTACHE_MAX_OPEN bounds the nesting the
 * compiler accepts and MUSTACHE_MAX_NEST the C recursion of the renderer,
 * so no template can overflow the stack. The step and output caps stop
 * templates whose work grows exponentially (a partial that includes itself
 * twice, sections nested over a list): a 30 KB page takes a few thousand
 * steps, so the caps only ever meet a broken template.
 */
#define MUSTACHE_MAX_DEPTH  64
#define MUSTACHE_MAX_OPEN   256
#define MUSTACHE_MAX_NEST   512
#define MUSTACHE_MAX_STEPS  ((size_t)1 << 22)
#define MUSTACHE_MAX_OUTPUT ((size_t)1 << 24)

/* Longest name quoted in an error message. */
#define MUSTACHE_MSG_NAME 64

enum tok_kind {
	TOK_TEXT,
	TOK_VAR,      /* {{x}} */
	TOK_RAW,      /* {{{x}}} and {{&x}} */
	TOK_SECTION,  /* {{#x}} */
	TOK_INVERTED, /* {{^x}} */
	TOK_CLOSE,    /* {{/x}} */
	TOK_COMMENT,  /* {{!x}} */
	TOK_PARTIAL,  /* {{>x}} */
	TOK_PARENT,   /* {{<x}} */
	TOK_BLOCK,    /* {{$x}} */
	TOK_DELIM,    /* {{=<% %>=}} */
	TOK__MAX
};

/*
 * One token of the source. Text is split after each newline, so every
 * line of the source is a run of tokens whose last one ends in '\n' (or is
 * the last token); the standalone rules work on those runs.
 */
struct tok {
	enum tok_kind kind;
	const char *s; /* TEXT: its bytes; a tag: its name, trimmed */
	size_t n;
	size_t srcline; /* 1-based, for messages */
	size_t line;	/* index into struct compiler's lines */
	size_t match;	/* an opening tag's closing tag, and back */
	bool dynamic;	/* {{>*x}} and {{<*x}} */
	bool in_parent; /* directly inside {{<x}}...{{/x}} */
	bool stripped;	/* on a standalone line, which was removed */
	bool clear_left;
	bool clear_right;
	bool has_intrinsic; /* a block whose content sets its indentation */
	const char *intrinsic;
	size_t nintrinsic;
};

struct line {
	size_t first, last; /* token indices, inclusive */
	const char *lead;   /* leading blanks of the line */
	size_t nlead;
};

struct compiler {
	struct mustache_set *set;
	const char *name;
	const char **errmsg;
	const char *src;
	size_t len;
	size_t pos;
	size_t srcline;
	const char *otag, *ctag;
	size_t olen, clen;
	struct tok *toks;
	size_t ntoks, captoks;
	struct line *lines;
	size_t nlines;
	size_t open[MUSTACHE_MAX_OPEN];
	size_t nopen;
};

enum node_kind {
	NODE_TEXT,
	NODE_VAR,
	NODE_RAW,
	NODE_SECTION,
	NODE_INVERTED,
	NODE_PARTIAL,
	NODE_PARENT,
	NODE_BLOCK,
	NODE__MAX
};

/*
 * A compiled template is an array of nodes; sections, blocks and parents
 * hold their content as a child array. A parent's children are only the
 * blocks it overrides. Everything lives in the set's arena.
 */
struct node {
	enum node_kind kind;
	bool dynamic;
	uint32_t hash;	  /* of text: partial, parent and block names */
	const char *text; /* TEXT: the bytes; others: the name */
	size_t len;
	const char *const *keys; /* the name split at dots; NULL for "." */
	const size_t *keylens;	 /* their lengths */
	size_t nkeys;
	struct key_slot *slot; /* where keys[0] sits in a row source */
	const char *indent;    /* added to each line this node expands */
	size_t nindent;
	const struct node *kids;
	size_t nkids;
	const struct tmpl *tmpl; /* a static partial's or parent's entry */
};

/*
 * The place of a node's first key among a row source's keys. A worker
 * compiles its templates once and renders them on one thread, so a node
 * can remember the key list it last met (a page has one) and find its
 * key again without comparing names.
 */
struct key_slot {
	const char *const *keys; /* the list searched last... */
	size_t nkeys;		 /* ...and its length */
	size_t index;		 /* the key's place in it; SIZE_MAX: absent */
};

/*
 * A named entry of the set. A template that names a partial not added
 * yet creates the entry undefined, so nodes can point at their partials
 * and rendering never looks names up; entries are never freed or moved.
 */
struct tmpl {
	const char *name;
	size_t len;
	uint32_t hash;
	bool defined;
	const struct node *nodes;
	size_t nnodes;
	struct tmpl *next;
};

struct mustache_set {
	struct arena *arena;
	struct tmpl **buckets;
	size_t nbuckets;
	size_t count;
};

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool has_space(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (is_space(s[i]))
			return true;
	}
	return false;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

/*
 * Index of the first needle in s[from, len), which must follow the byte
 * pre unless pre is -1; the index is that of pre. SIZE_MAX if none.
 */
static size_t find(const char *s, size_t len, size_t from, int pre,
		   const char *needle, size_t nlen)
{
	size_t need = nlen + (pre >= 0 ? 1 : 0);
	const char *p;
	size_t i;

	while (from <= len && len - from >= need) {
		p = memchr(s + from, pre >= 0 ? pre : needle[0],
			   len - from - need + 1);
		if (p == NULL)
			return SIZE_MAX;
		i = (size_t)(p - s);
		if (memcmp(s + i + (pre >= 0 ? 1 : 0), needle, nlen) == 0)
			return i;
		from = i + 1;
	}
	return SIZE_MAX;
}

/* True for tags that print nothing themselves and so may stand alone. */
static bool is_silent(enum tok_kind k)
{
	return k != TOK_TEXT && k != TOK_VAR && k != TOK_RAW;
}

/* True for text of only blanks, maybe ending the line ("\n", "\r\n"). */
static bool is_blank_text(const struct tok *t)
{
	size_t i = 0;

	while (i < t->n && is_blank(t->s[i]))
		i++;
	if (i + 1 == t->n && t->s[i] == '\n')
		return true;
	if (i + 2 == t->n && t->s[i] == '\r' && t->s[i + 1] == '\n')
		return true;
	return i == t->n;
}

static const char *kind_word(enum tok_kind k)
{
	switch (k) {
	case TOK_SECTION:
		return "section";
	case TOK_INVERTED:
		return "inverted section";
	case TOK_PARENT:
		return "parent";
	case TOK_BLOCK:
		return "block";
	case TOK_TEXT:
	case TOK_VAR:
	case TOK_RAW:
	case TOK_CLOSE:
	case TOK_COMMENT:
	case TOK_PARTIAL:
	case TOK_DELIM:
		return "tag";
	case TOK__MAX:
	default:
		abort();
	}
}

static enum td_err syntax_error(struct compiler *c, size_t line,
				const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum td_err syntax_error(struct compiler *c, size_t line,
				const char *fmt, ...)
{
	struct arena *a = c->set->arena;
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = arena_vprintf(a, fmt, ap);
	va_end(ap);
	if (c->errmsg != NULL)
		*c->errmsg = arena_printf(a, "%s: line %zu: %s", c->name, line,
					  what);
	return TD_EINPUT;
}

/* The length of a name to quote in a message. */
static int qlen(size_t n)
{
	return n > MUSTACHE_MSG_NAME ? MUSTACHE_MSG_NAME : (int)n;
}

static struct tok *push_tok(struct compiler *c, enum tok_kind kind,
			    const char *s, size_t n)
{
	struct tok *t;

	if (c->ntoks == c->captoks) {
		c->captoks = c->captoks ? c->captoks * 2 : 64;
		c->toks = xrealloc(c->toks, c->captoks * sizeof(*c->toks));
	}
	t = &c->toks[c->ntoks++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->s = s;
	t->n = n;
	t->srcline = c->srcline;
	return t;
}

/* Adds src[from, to) as text tokens, one per line. */
static void add_text(struct compiler *c, size_t from, size_t to)
{
	const char *nl;
	size_t k;

	while (from < to) {
		nl = memchr(c->src + from, '\n', to - from);
		k = nl ? (size_t)(nl - (c->src + from)) + 1 : to - from;
		push_tok(c, TOK_TEXT, c->src + from, k);
		if (nl != NULL)
			c->srcline++;
		from += k;
	}
}

/* A name we look up in the data: "." or dot-separated non-empty keys. */
static bool valid_key(const char *s, size_t n)
{
	size_t i;

	if (n == 1 && s[0] == '.')
		return true;
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 1; i < n; i++) {
		if (s[i] == '.' && s[i - 1] == '.')
			return false;
	}
	return true;
}

static enum td_err set_delims(struct compiler *c, const char *s, size_t n)
{
	size_t i = 0, j;

	trim(&s, &n);
	while (i < n && !is_space(s[i]))
		i++;
	j = i;
	while (j < n && is_space(s[j]))
		j++;
	if (i == 0 || j == n || has_space(s + j, n - j) ||
	    memchr(s, '=', i) != NULL || memchr(s + j, '=', n - j) != NULL)
		return syntax_error(c, c->srcline, "invalid delimiters '%.*s'",
				    qlen(n), s);
	c->otag = s;
	c->olen = i;
	c->ctag = s + j;
	c->clen = n - j;
	return TD_OK;
}

static enum td_err open_section(struct compiler *c, struct tok *t)
{
	if (c->nopen == MUSTACHE_MAX_OPEN)
		return syntax_error(c, t->srcline,
				    "sections nested too deeply");
	c->open[c->nopen++] = (size_t)(t - c->toks);
	return TD_OK;
}

static enum td_err close_section(struct compiler *c, struct tok *t)
{
	struct tok *o;
	const char *s = t->s;
	size_t n = t->n;

	if (c->nopen == 0)
		return syntax_error(c, t->srcline,
				    "unexpected closing tag '%.*s'", qlen(t->n),
				    t->s);
	o = &c->toks[c->open[c->nopen - 1]];
	if (o->dynamic && n > 0 && s[0] == '*') {
		s++;
		n--;
		trim(&s, &n);
	}
	if (n != o->n || memcmp(s, o->s, n) != 0)
		return syntax_error(c, t->srcline,
				    "closing tag '%.*s' does not match open "
				    "%s '%.*s'",
				    qlen(t->n), t->s, kind_word(o->kind),
				    qlen(o->n), o->s);
	c->nopen--;
	o->match = (size_t)(t - c->toks);
	t->match = c->open[c->nopen];
	t->in_parent = o->in_parent;
	return TD_OK;
}

/* Classifies and checks the tag whose content is s[0, n). */
static enum td_err add_tag(struct compiler *c, enum tok_kind kind,
			   const char *s, size_t n)
{
	struct tok *t;
	bool dynamic = false;
	enum td_err err;

	if (kind == TOK_DELIM) {
		/* The token stays, so its line can stand alone. */
		err = set_delims(c, s, n);
		if (err == TD_OK)
			push_tok(c, TOK_DELIM, s, 0);
		return err;
	}
	if (kind != TOK_COMMENT)
		trim(&s, &n);
	if ((kind == TOK_PARTIAL || kind == TOK_PARENT) && n > 0 &&
	    s[0] == '*') {
		dynamic = true;
		s++;
		n--;
		trim(&s, &n);
	}
	if (kind != TOK_COMMENT && n == 0)
		return syntax_error(c, c->srcline, "empty tag");
	/* close_section() reads a closing tag's "*" itself. */
	if (kind != TOK_COMMENT && kind != TOK_CLOSE && has_space(s, n))
		return syntax_error(c, c->srcline, "invalid tag name '%.*s'",
				    qlen(n), s);
	if ((kind == TOK_VAR || kind == TOK_RAW || kind == TOK_SECTION ||
	     kind == TOK_INVERTED || dynamic) &&
	    !valid_key(s, n))
		return syntax_error(c, c->srcline, "invalid name '%.*s'",
				    qlen(n), s);
	t = push_tok(c, kind, s, n);
	t->dynamic = dynamic;
	t->in_parent = c->nopen > 0 &&
		       c->toks[c->open[c->nopen - 1]].kind == TOK_PARENT;
	switch (kind) {
	case TOK_SECTION:
	case TOK_INVERTED:
	case TOK_PARENT:
	case TOK_BLOCK:
		return open_section(c, t);
	case TOK_CLOSE:
		return close_section(c, t);
	case TOK_TEXT:
	case TOK_VAR:
	case TOK_RAW:
	case TOK_COMMENT:
	case TOK_PARTIAL:
	case TOK_DELIM:
		return TD_OK;
	case TOK__MAX:
	default:
		abort();
	}
}

static void count_lines(struct compiler *c, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++) {
		if (c->src[i] == '\n')
			c->srcline++;
	}
}

/* Splits the source into tokens and checks that sections nest. */
static enum td_err lex(struct compiler *c)
{
	enum tok_kind kind;
	enum td_err err;
	size_t o, p, e, end, from;
	int pre;

	while (c->pos < c->len) {
		o = find(c->src, c->len, c->pos, -1, c->otag, c->olen);
		if (o == SIZE_MAX) {
			add_text(c, c->pos, c->len);
			break;
		}
		add_text(c, c->pos, o);
		p = o + c->olen;
		if (p >= c->len)
			return syntax_error(c, c->srcline, "unclosed tag");
		pre = -1;
		from = p + 1;
		switch (c->src[p]) {
		case '{':
			kind = TOK_RAW;
			pre = '}';
			break;
		case '&':
			kind = TOK_RAW;
			break;
		case '=':
			kind = TOK_DELIM;
			pre = '=';
			break;
		case '#':
			kind = TOK_SECTION;
			break;
		case '^':
			kind = TOK_INVERTED;
			break;
		case '/':
			kind = TOK_CLOSE;
			break;
		case '!':
			kind = TOK_COMMENT;
			break;
		case '>':
			kind = TOK_PARTIAL;
			break;
		case '<':
			kind = TOK_PARENT;
			break;
		case '$':
			kind = TOK_BLOCK;
			break;
		default:
			kind = TOK_VAR;
			from = p;
			break;
		}
		e = find(c->src, c->len, from, pre, c->ctag, c->clen);
		if (e == SIZE_MAX)
			return syntax_error(c, c->srcline, "unclosed tag");
		end = e + c->clen + (pre >= 0 ? 1 : 0);
		err = add_tag(c, kind, c->src + from, e - from);
		if (err != TD_OK)
			return err;
		count_lines(c, o, end);
		c->pos = end;
	}
	if (c->nopen > 0) {
		struct tok *t = &c->toks[c->open[c->nopen - 1]];

		return syntax_error(c, t->srcline, "unclosed %s '%.*s'",
				    kind_word(t->kind), qlen(t->n), t->s);
	}
	return TD_OK;
}

static bool ends_line(const struct compiler *c, size_t i)
{
	const struct tok *t = &c->toks[i];

	return i + 1 == c->ntoks ||
	       (t->kind == TOK_TEXT && t->s[t->n - 1] == '\n');
}

/* Groups the tokens into lines; needs at least one token. */
static void split_lines(struct compiler *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->ntoks; i++) {
		if (ends_line(c, i))
			n++;
	}
	c->lines = xcalloc(n, sizeof(*c->lines));
	c->nlines = 0;
	for (i = 0; i < c->ntoks; i++) {
		c->toks[i].line = c->nlines;
		if (!ends_line(c, i))
			continue;
		c->lines[c->nlines].last = i;
		c->nlines++;
		if (c->nlines < n)
			c->lines[c->nlines].first = i + 1;
	}
}

/*
 * Several tags share a standalone line only in the layouts inheritance
 * needs: "{{<parent}}{{$block}}", "{{/block}}{{/parent}}" and
 * "{{<parent}}{{/parent}}". A block opened and closed on one line outside
 * a parent ("  {{$b}}{{/b}}") keeps its line, as the spec's "Standalone
 * block" test wants; other tag pairs keep the classic one-tag rule.
 */
static bool multi_ok(const struct compiler *c, const struct line *l)
{
	const struct tok *t, *o;
	bool visible = false;
	size_t i;

	for (i = l->first; i <= l->last; i++) {
		t = &c->toks[i];
		switch (t->kind) {
		case TOK_TEXT:
			continue;
		case TOK_COMMENT:
			continue;
		case TOK_PARENT:
			break;
		case TOK_BLOCK:
			if (!t->in_parent && c->toks[t->match].line == t->line)
				return false;
			break;
		case TOK_CLOSE:
			o = &c->toks[t->match];
			if (o->kind == TOK_PARENT)
				break;
			if (o->kind != TOK_BLOCK)
				return false;
			if (!o->in_parent && o->line == t->line)
				return false;
			break;
		case TOK_VAR:
		case TOK_RAW:
		case TOK_SECTION:
		case TOK_INVERTED:
		case TOK_PARTIAL:
		case TOK_DELIM:
			return false;
		case TOK__MAX:
		default:
			abort();
		}
		visible = true;
	}
	return visible;
}

/* Finds standalone lines, removes their blanks and newline. */
static void mark_standalone(struct compiler *c)
{
	struct line *l;
	struct tok *t;
	size_t i, j, ntags;
	bool clear, standalone;

	for (i = 0; i < c->nlines; i++) {
		l = &c->lines[i];
		t = &c->toks[l->first];
		l->lead = t->s;
		l->nlead = 0;
		if (t->kind == TOK_TEXT) {
			while (l->nlead < t->n && is_blank(t->s[l->nlead]))
				l->nlead++;
		}
		ntags = 0;
		clear = true;
		for (j = l->first; j <= l->last; j++) {
			t = &c->toks[j];
			if (t->kind != TOK_TEXT) {
				ntags++;
				t->clear_left = clear;
			}
			if (t->kind == TOK_TEXT ? !is_blank_text(t) :
						  !is_silent(t->kind))
				clear = false;
		}
		standalone =
			clear && ntags > 0 && (ntags == 1 || multi_ok(c, l));
		clear = true;
		for (j = l->last + 1; j-- > l->first;) {
			t = &c->toks[j];
			if (t->kind != TOK_TEXT)
				t->clear_right = clear;
			if (t->kind == TOK_TEXT ? !is_blank_text(t) :
						  !is_silent(t->kind))
				clear = false;
			if (!standalone)
				continue;
			if (t->kind == TOK_TEXT)
				t->n = 0;
			else
				t->stripped = true;
		}
	}
}

/* True if only blank text comes before token i on its line. */
static bool first_on_line(const struct compiler *c, size_t i)
{
	size_t j;

	for (j = c->lines[c->toks[i].line].first; j < i; j++) {
		if (c->toks[j].kind != TOK_TEXT || !is_blank_text(&c->toks[j]))
			return false;
	}
	return true;
}

/* True if only blank text, maybe a newline, follows token i on its line. */
static bool last_on_line(const struct compiler *c, size_t i)
{
	size_t j;

	for (j = i + 1; j <= c->lines[c->toks[i].line].last; j++) {
		if (c->toks[j].kind != TOK_TEXT || !is_blank_text(&c->toks[j]))
			return false;
	}
	return true;
}

/*
 * Whatever lies between a parent's tags belongs to the parent, so a
 * parent pair stands alone like a partial tag when only blanks precede
 * its opening tag and follow its closing tag, even with an override on
 * the same line: "  {{<layout}}{{$title}}Hi{{/title}}{{/layout}}\n".
 */
static void mark_parents(struct compiler *c)
{
	struct tok *t, *cl;
	size_t i, j;

	for (i = 0; i < c->ntoks; i++) {
		t = &c->toks[i];
		if (t->kind != TOK_PARENT || t->stripped)
			continue;
		cl = &c->toks[t->match];
		if (!first_on_line(c, i) || !last_on_line(c, t->match))
			continue;
		for (j = c->lines[t->line].first; j < i; j++)
			c->toks[j].n = 0;
		for (j = t->match + 1; j <= c->lines[cl->line].last; j++)
			c->toks[j].n = 0;
		t->stripped = true;
		cl->stripped = true;
	}
}

/* Removes up to nw bytes of the indentation w from the start of line i. */
static void outdent(struct compiler *c, size_t i, const char *w, size_t nw)
{
	struct line *l = &c->lines[i];
	struct tok *t = &c->toks[l->first];
	size_t k = 0;

	while (k < nw && k < l->nlead && l->lead[k] == w[k])
		k++;
	l->lead += k;
	l->nlead -= k;
	if (t->kind == TOK_TEXT && t->n > 0) {
		t->s += k;
		t->n -= k;
	}
}

/*
 * A block whose opening tag stands alone takes the indentation of its
 * first line as its own ("intrinsic") indentation: the content loses it
 * here, and it comes back when the block is expanded. So a block can be
 * defined at one depth and expanded at another. Outer blocks come first
 * in token order, so a nested block measures its indentation relative to
 * the block around it.
 */
static void reindent_blocks(struct compiler *c)
{
	struct tok *b, *cl, *t;
	size_t i, j, first;
	bool empty;

	for (i = 0; i < c->ntoks; i++) {
		b = &c->toks[i];
		if (b->kind != TOK_BLOCK || !b->stripped)
			continue;
		cl = &c->toks[b->match];
		if (cl->line == b->line)
			continue;
		first = b->line + 1;
		empty = cl->line == first;
		for (j = c->lines[first].first; empty && j < b->match; j++) {
			t = &c->toks[j];
			if (t->kind == TOK_TEXT ? !is_blank_text(t) :
						  t->kind != TOK_COMMENT)
				empty = false;
		}
		if (empty)
			continue;
		b->has_intrinsic = true;
		b->intrinsic = c->lines[first].lead;
		b->nintrinsic = c->lines[first].nlead;
		if (b->nintrinsic == 0)
			continue;
		for (j = first; j <= cl->line; j++)
			outdent(c, j, b->intrinsic, b->nintrinsic);
	}
}

static struct tmpl *find_tmpl(const struct mustache_set *set, const char *s,
			      size_t n, uint32_t h)
{
	struct tmpl *t;

	for (t = set->buckets[h & (set->nbuckets - 1)]; t; t = t->next) {
		if (t->hash == h && t->len == n && memcmp(t->name, s, n) == 0)
			return t;
	}
	return NULL;
}

static void grow_buckets(struct mustache_set *set)
{
	size_t nb = set->nbuckets * 2, i;
	struct tmpl **b = arena_alloc(set->arena, nb * sizeof(*b));
	struct tmpl *t, *next;

	for (i = 0; i < set->nbuckets; i++) {
		for (t = set->buckets[i]; t; t = next) {
			next = t->next;
			t->next = b[t->hash & (nb - 1)];
			b[t->hash & (nb - 1)] = t;
		}
	}
	set->buckets = b;
	set->nbuckets = nb;
}

/* The entry for name, created undefined if there is none. */
static struct tmpl *get_tmpl(struct mustache_set *set, const char *name,
			     size_t n, uint32_t h)
{
	struct tmpl *t = find_tmpl(set, name, n, h);

	if (t != NULL)
		return t;
	if (set->count >= set->nbuckets)
		grow_buckets(set);
	t = arena_alloc(set->arena, sizeof(*t));
	t->name = arena_strndup(set->arena, name, n);
	t->len = n;
	t->hash = h;
	t->next = set->buckets[h & (set->nbuckets - 1)];
	set->buckets[h & (set->nbuckets - 1)] = t;
	set->count++;
	return t;
}

static void build(struct compiler *c, size_t lo, size_t hi,
		  const struct node **out, size_t *nout);

static void fill_text(struct compiler *c, struct node *nd, size_t lo, size_t hi,
		      size_t total)
{
	char *p = arena_alloc(c->set->arena, total + 1);
	size_t i, off = 0;

	for (i = lo; i < hi; i++) {
		const struct tok *t = &c->toks[i];

		if (t->kind == TOK_TEXT && t->n > 0) {
			memcpy(p + off, t->s, t->n);
			off += t->n;
		}
	}
	nd->kind = NODE_TEXT;
	nd->text = p;
	nd->len = total;
}

static void fill_keys(struct compiler *c, struct node *nd)
{
	struct arena *a = c->set->arena;
	const char **keys;
	size_t *lens;
	const char *s = nd->text, *dot;
	size_t n = nd->len, i, k;

	if (n == 1 && s[0] == '.')
		return;
	nd->nkeys = 1;
	for (i = 0; i < n; i++) {
		if (s[i] == '.')
			nd->nkeys++;
	}
	keys = arena_alloc(a, nd->nkeys * sizeof(*keys));
	lens = arena_alloc(a, nd->nkeys * sizeof(*lens));
	for (i = 0; i < nd->nkeys; i++) {
		dot = memchr(s, '.', n);
		k = dot ? (size_t)(dot - s) : n;
		keys[i] = arena_strndup(a, s, k);
		lens[i] = k;
		s += k + (dot ? 1 : 0);
		n -= k + (dot ? 1 : 0);
	}
	nd->keys = keys;
	nd->keylens = lens;
	nd->slot = arena_alloc(a, sizeof(*nd->slot));
	nd->slot->index = SIZE_MAX;
}

static void set_indent(struct compiler *c, struct node *nd, const char *s,
		       size_t n)
{
	if (n == 0)
		return;
	nd->indent = arena_strndup(c->set->arena, s, n);
	nd->nindent = n;
}

/* A parent's children: the blocks directly inside it, nothing else. */
static void build_overrides(struct compiler *c, struct node *nd, size_t lo,
			    size_t hi)
{
	struct node *kids;
	size_t i, n = 0;

	for (i = lo; i < hi; i++) {
		if (c->toks[i].kind == TOK_BLOCK)
			n++;
		if (c->toks[i].match > i)
			i = c->toks[i].match;
	}
	kids = arena_alloc(c->set->arena, n * sizeof(*kids));
	n = 0;
	for (i = lo; i < hi; i++) {
		const struct tok *t = &c->toks[i];
		const struct node *sub;
		size_t nsub;

		if (t->kind == TOK_BLOCK) {
			kids[n].kind = NODE_BLOCK;
			kids[n].text = arena_strndup(c->set->arena, t->s, t->n);
			kids[n].len = t->n;
			kids[n].hash = hash_name(t->s, t->n);
			build(c, i + 1, t->match, &sub, &nsub);
			kids[n].kids = sub;
			kids[n].nkids = nsub;
			n++;
		}
		if (t->match > i)
			i = t->match;
	}
	nd->kids = kids;
	nd->nkids = n;
}

static void fill_tag(struct compiler *c, struct node *nd, size_t i)
{
	const struct tok *t = &c->toks[i], *cl = &c->toks[t->match];
	const struct line *l = &c->lines[t->line];
	bool pair = t->clear_left && cl->clear_right;

	nd->text = arena_strndup(c->set->arena, t->s, t->n);
	nd->len = t->n;
	nd->dynamic = t->dynamic;
	nd->hash = hash_name(t->s, t->n);
	switch (t->kind) {
	case TOK_VAR:
		nd->kind = NODE_VAR;
		fill_keys(c, nd);
		break;
	case TOK_RAW:
		nd->kind = NODE_RAW;
		fill_keys(c, nd);
		break;
	case TOK_SECTION:
	case TOK_INVERTED:
		nd->kind =
			t->kind == TOK_SECTION ? NODE_SECTION : NODE_INVERTED;
		fill_keys(c, nd);
		build(c, i + 1, t->match, &nd->kids, &nd->nkids);
		break;
	case TOK_PARTIAL:
		nd->kind = NODE_PARTIAL;
		if (t->dynamic)
			fill_keys(c, nd);
		else
			nd->tmpl = get_tmpl(c->set, t->s, t->n, nd->hash);
		if (t->stripped)
			set_indent(c, nd, l->lead, l->nlead);
		break;
	case TOK_PARENT:
		nd->kind = NODE_PARENT;
		if (t->dynamic)
			fill_keys(c, nd);
		else
			nd->tmpl = get_tmpl(c->set, t->s, t->n, nd->hash);
		if (pair)
			set_indent(c, nd, l->lead, l->nlead);
		build_overrides(c, nd, i + 1, t->match);
		break;
	case TOK_BLOCK:
		nd->kind = NODE_BLOCK;
		if (t->has_intrinsic)
			set_indent(c, nd, t->intrinsic, t->nintrinsic);
		else if (pair)
			set_indent(c, nd, l->lead, l->nlead);
		build(c, i + 1, t->match, &nd->kids, &nd->nkids);
		break;
	case TOK_TEXT:
	case TOK_CLOSE:
	case TOK_COMMENT:
	case TOK_DELIM:
	case TOK__MAX:
	default:
		abort();
	}
}

/*
 * Walks the tokens of one level, [lo, hi): counts its nodes, and fills
 * them too when nodes is not NULL. Text runs merge into one node across
 * comments, delimiter changes and removed standalone lines.
 */
static size_t walk_level(struct compiler *c, size_t lo, size_t hi,
			 struct node *nodes)
{
	size_t i = lo, j, n = 0, total;
	const struct tok *t;

	while (i < hi) {
		t = &c->toks[i];
		switch (t->kind) {
		case TOK_TEXT:
		case TOK_COMMENT:
		case TOK_DELIM:
			total = 0;
			for (j = i; j < hi; j++) {
				enum tok_kind k = c->toks[j].kind;

				if (k != TOK_TEXT && k != TOK_COMMENT &&
				    k != TOK_DELIM)
					break;
				if (k == TOK_TEXT)
					total += c->toks[j].n;
			}
			if (total > 0) {
				if (nodes != NULL)
					fill_text(c, &nodes[n], i, j, total);
				n++;
			}
			i = j;
			break;
		case TOK_VAR:
		case TOK_RAW:
		case TOK_PARTIAL:
			if (nodes != NULL)
				fill_tag(c, &nodes[n], i);
			n++;
			i++;
			break;
		case TOK_SECTION:
		case TOK_INVERTED:
		case TOK_PARENT:
		case TOK_BLOCK:
			if (nodes != NULL)
				fill_tag(c, &nodes[n], i);
			n++;
			i = t->match + 1;
			break;
		case TOK_CLOSE:
			/* Closing tags end levels; lex() matched them all. */
			i++;
			break;
		case TOK__MAX:
		default:
			abort();
		}
	}
	return n;
}

static void build(struct compiler *c, size_t lo, size_t hi,
		  const struct node **out, size_t *nout)
{
	size_t n = walk_level(c, lo, hi, NULL);
	struct node *nodes = arena_alloc(c->set->arena, n * sizeof(*nodes));

	walk_level(c, lo, hi, nodes);
	*out = nodes;
	*nout = n;
}

struct mustache_set *mustache_set_new(struct arena *a)
{
	struct mustache_set *set = arena_alloc(a, sizeof(*set));

	set->arena = a;
	set->nbuckets = 16;
	set->buckets = arena_alloc(a, set->nbuckets * sizeof(*set->buckets));
	return set;
}

enum td_err mustache_set_add(struct mustache_set *set, const char *name,
			     const char *src, size_t len, const char **errmsg)
{
	struct compiler c;
	struct tmpl *t;
	const struct node *nodes = NULL;
	size_t nnodes = 0, nlen = strlen(name);
	uint32_t h = hash_name(name, nlen);
	enum td_err err;

	memset(&c, 0, sizeof(c));
	c.set = set;
	c.name = name;
	c.errmsg = errmsg;
	c.src = src;
	c.len = len;
	c.srcline = 1;
	c.otag = "{{";
	c.olen = 2;
	c.ctag = "}}";
	c.clen = 2;
	err = lex(&c);
	if (err == TD_OK && c.ntoks > 0) {
		split_lines(&c);
		mark_standalone(&c);
		mark_parents(&c);
		reindent_blocks(&c);
		build(&c, 0, c.ntoks, &nodes, &nnodes);
	}
	free(c.toks);
	free(c.lines);
	if (err != TD_OK)
		return err;
	t = get_tmpl(set, name, nlen, h);
	t->defined = true;
	t->nodes = nodes;
	t->nnodes = nnodes;
	return TD_OK;
}

bool mustache_set_has(const struct mustache_set *set, const char *name)
{
	size_t n = strlen(name);
	const struct tmpl *t = find_tmpl(set, name, n, hash_name(name, n));

	return t != NULL && t->defined;
}

/* Rendering. */

/*
 * What a name stands for: a json value, a value a row source gave, a
 * whole row source (row SIZE_MAX) or one row of it.
 */
struct val {
	struct mustache_value mv; /* MV_MISSING when rows is set */
	const struct mustache_rows *rows;
	size_t row;
	bool owned; /* mv.json is a reference the looker-up releases */
};

/* One entry of the context stack; they live on the C stack. */
struct frame {
	struct val v; /* never owned: whoever looked it up releases it */
	const struct frame *up;
};

/*
 * The parents being expanded, innermost first. A block takes the
 * override of the outermost parent that has one, so the page that starts
 * the chain has the last word.
 */
struct ovr {
	const struct node *parent;
	const struct ovr *next;
};

struct span {
	const char *s;
	size_t n;
};

struct render {
	const struct mustache_set *set;
	struct sbuf *out;
	bool bol;  /* the output ends a template line */
	bool stop; /* a limit was hit */
	bool raw;  /* nothing is escaped (plain-text mail) */
	const struct mustache_rows *rows;
	size_t nrows;
	size_t depth;
	size_t nest;
	size_t steps;
	struct span ind[MUSTACHE_MAX_NEST];
	size_t nind;
};

static void render_nodes(struct render *r, const struct node *nodes, size_t n,
			 const struct frame *ctx, const struct ovr *ovr);

static void emit_indent(struct render *r)
{
	size_t i;

	/* Deep indentation costs per line; count it against the limit. */
	r->steps += r->nind;
	for (i = 0; i < r->nind; i++)
		sbuf_add(r->out, r->ind[i].s, r->ind[i].n);
}

static bool is_empty_line(const char *s, size_t n)
{
	return (n == 1 && s[0] == '\n') ||
	       (n == 2 && s[0] == '\r' && s[1] == '\n');
}

/*
 * Template text. Inside an indented partial or block each line gets the
 * indentation, except empty lines and the line a value ended on; a value
 * never indents its own lines (spec: "Standalone Indentation").
 */
static void emit_text(struct render *r, const char *s, size_t n)
{
	const char *nl;
	size_t k;

	if (r->nind == 0) {
		sbuf_add(r->out, s, n);
		r->bol = s[n - 1] == '\n';
		return;
	}
	while (n > 0) {
		nl = memchr(s, '\n', n);
		k = nl ? (size_t)(nl - s) + 1 : n;
		if (r->bol && !is_empty_line(s, k))
			emit_indent(r);
		sbuf_add(r->out, s, k);
		r->bol = s[k - 1] == '\n';
		s += k;
		n -= k;
	}
}

/* The shortest %g form that reads back as the same double. */
static size_t format_real(double d, char *buf, size_t cap)
{
	int prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return strlen(buf);
	}
	snprintf(buf, cap, "%.17g", d);
	return strlen(buf);
}

/* The decimal digits of v, written backwards from the end of buf. */
static const char *format_int(json_int_t v, char *buf, size_t cap, size_t *n)
{
	char *d = buf + cap;
	unsigned long long u =
		v < 0 ? -(unsigned long long)v : (unsigned long long)v;

	do {
		*--d = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--d = '-';
	*n = (size_t)(buf + cap - d);
	return d;
}

static void emit_bytes(struct render *r, const char *s, size_t n, bool escape)
{
	if (n == 0)
		return;
	if (r->bol && r->nind > 0)
		emit_indent(r);
	if (escape && !r->raw)
		sbuf_add_html(r->out, s, n);
	else
		sbuf_add(r->out, s, n);
	r->bol = false;
}

static void emit_json(struct render *r, json_t *v, bool escape)
{
	char num[64];
	const char *s = num;
	size_t n;

	if (v == NULL)
		return;
	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		s = format_int(json_integer_value(v), num, sizeof(num), &n);
		break;
	case JSON_REAL:
		n = format_real(json_real_value(v), num, sizeof(num));
		break;
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	case JSON_NULL:
	case JSON_OBJECT:
	case JSON_ARRAY:
		return;
	default:
		abort();
	}
	/* Numbers and words have nothing to escape. */
	emit_bytes(r, s, n, escape && json_is_string(v));
}

/* A row source and a row print nothing, as a list and an object do. */
static void emit_value(struct render *r, const struct val *v, bool escape)
{
	char num[24];
	const char *s;
	size_t n;

	if (v->rows != NULL)
		return;
	switch (v->mv.kind) {
	case MV_MISSING:
	case MV_NULL:
		break;
	case MV_FALSE:
		emit_bytes(r, "false", 5, false);
		break;
	case MV_TRUE:
		emit_bytes(r, "true", 4, false);
		break;
	case MV_INT:
		s = format_int(v->mv.i, num, sizeof(num), &n);
		emit_bytes(r, s, n, false);
		break;
	case MV_TEXT:
		emit_bytes(r, v->mv.s, v->mv.n, escape);
		break;
	case MV_JSON:
		emit_json(r, v->mv.json, escape);
		break;
	default:
		abort();
	}
}

/*
 * Falsey: missing, null, false and the empty list. Everything else is
 * truthy, "" and 0 included (as in Ruby, the spec's reference).
 */
static bool json_truthy(json_t *v)
{
	if (v == NULL)
		return false;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return false;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_OBJECT:
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
		return true;
	default:
		abort();
	}
}

/* The same for whatever a name stands for; a row counts as an object. */
static bool truthy(const struct val *v)
{
	if (v->rows != NULL)
		return v->row != SIZE_MAX || v->rows->n > 0;
	switch (v->mv.kind) {
	case MV_MISSING:
	case MV_NULL:
	case MV_FALSE:
		return false;
	case MV_TRUE:
	case MV_INT:
	case MV_TEXT:
		return true;
	case MV_JSON:
		return json_truthy(v->mv.json);
	default:
		abort();
	}
}

static void set_json(struct val *v, json_t *j)
{
	v->mv.kind = j != NULL ? MV_JSON : MV_MISSING;
	v->mv.json = j;
	v->rows = NULL;
	v->owned = false;
}

static bool found(const struct val *v)
{
	return v->rows != NULL || v->mv.kind != MV_MISSING;
}

static void release(struct val *v)
{
	if (v->owned)
		json_decref(v->mv.json);
	v->owned = false;
}

/* True if name (NUL-terminated) is s[0, n). */
static bool same_name(const char *name, const char *s, size_t n)
{
	return strncmp(name, s, n) == 0 && name[n] == '\0';
}

/* The place of nd's first key among the keys of rows; SIZE_MAX if none. */
static size_t key_index(struct render *r, const struct node *nd,
			const struct mustache_rows *rows)
{
	struct key_slot *k = nd->slot;
	size_t i;

	if (k->keys == rows->keys && k->nkeys == rows->nkeys)
		return k->index;
	k->keys = rows->keys;
	k->nkeys = rows->nkeys;
	k->index = SIZE_MAX;
	for (i = 0; i < rows->nkeys; i++) {
		r->steps++;
		if (same_name(rows->keys[i], nd->keys[0], nd->keylens[0])) {
			k->index = i;
			break;
		}
	}
	return k->index;
}

/* nd's first key in one frame: a json object's member or a row's value. */
static void find_in_frame(struct render *r, const struct node *nd,
			  const struct frame *f, struct val *out)
{
	const struct mustache_rows *rows = f->v.rows;
	size_t k;

	if (rows == NULL) {
		if (f->v.mv.kind == MV_JSON && json_is_object(f->v.mv.json))
			set_json(out,
				 json_object_getn(f->v.mv.json, nd->keys[0],
						  nd->keylens[0]));
		return;
	}
	k = key_index(r, nd, rows);
	if (k == SIZE_MAX)
		return;
	memset(&out->mv, 0, sizeof(out->mv));
	rows->get(rows->ctx, f->v.row, k, &out->mv);
	out->owned = out->mv.kind == MV_JSON;
}

/* A name no frame has may be a row source's, below the root. */
static void find_source(struct render *r, const struct node *nd,
			struct val *out)
{
	size_t i;

	for (i = 0; i < r->nrows; i++) {
		r->steps++;
		if (same_name(r->rows[i].name, nd->keys[0], nd->keylens[0])) {
			out->rows = &r->rows[i];
			out->row = SIZE_MAX;
			return;
		}
	}
}

/* The next key of a dotted name, inside what the name found so far. */
static void descend(struct val *v, const char *key, size_t n)
{
	json_t *j = NULL;
	bool owned = v->owned;

	if (v->rows == NULL && v->mv.kind == MV_JSON &&
	    json_is_object(v->mv.json))
		j = json_object_getn(v->mv.json, key, n);
	if (owned) {
		json_incref(j);
		json_decref(v->mv.json);
	}
	set_json(v, j);
	v->owned = owned && j != NULL;
}

/*
 * The first key is looked up from the top of the context stack down,
 * then among the row sources; the rest only inside what it found
 * ("Dotted Names - Broken Chain Resolution"). The caller releases out.
 */
static void lookup(struct render *r, const struct node *nd,
		   const struct frame *ctx, struct val *out)
{
	const struct frame *f;
	size_t i;

	if (nd->nkeys == 0) {
		*out = ctx->v;
		return;
	}
	set_json(out, NULL);
	for (f = ctx; f != NULL && !found(out); f = f->up) {
		r->steps++;
		find_in_frame(r, nd, f, out);
	}
	if (!found(out))
		find_source(r, nd, out);
	for (i = 1; i < nd->nkeys && found(out); i++)
		descend(out, nd->keys[i], nd->keylens[i]);
}

/* The text a name stands for, if it stands for text. */
static bool text_of(const struct val *v, const char **s, size_t *n)
{
	if (v->rows == NULL && v->mv.kind == MV_TEXT) {
		*s = v->mv.s;
		*n = v->mv.n;
		return true;
	}
	if (v->rows == NULL && v->mv.kind == MV_JSON &&
	    json_is_string(v->mv.json)) {
		*s = json_string_value(v->mv.json);
		*n = json_string_length(v->mv.json);
		return true;
	}
	return false;
}

/* The template a partial or parent names; NULL renders as nothing. */
static const struct tmpl *resolve(struct render *r, const struct node *nd,
				  const struct frame *ctx)
{
	const struct tmpl *t = nd->tmpl;
	struct val v;
	const char *s;
	size_t n;

	if (nd->dynamic) {
		lookup(r, nd, ctx, &v);
		t = text_of(&v, &s, &n) ?
			    find_tmpl(r->set, s, n, hash_name(s, n)) :
			    NULL;
		release(&v);
	}
	return t != NULL && t->defined ? t : NULL;
}

static void push_indent(struct render *r, const struct node *nd)
{
	r->ind[r->nind].s = nd->indent;
	r->ind[r->nind].n = nd->nindent;
	r->nind++;
}

/* Renders another template's nodes, or a block's, in place of nd. */
static void expand(struct render *r, const struct node *nd,
		   const struct node *nodes, size_t n, const struct frame *ctx,
		   const struct ovr *ovr)
{
	/* Recursive partials just stop: the spec calls them legal. */
	if (r->depth >= MUSTACHE_MAX_DEPTH)
		return;
	r->depth++;
	if (nd->nindent > 0)
		push_indent(r, nd);
	render_nodes(r, nodes, n, ctx, ovr);
	if (nd->nindent > 0)
		r->nind--;
	r->depth--;
}

static const struct node *find_override(struct render *r, const struct node *nd,
					const struct ovr *ovr)
{
	const struct node *found = NULL, *k;
	size_t i;

	for (; ovr != NULL; ovr = ovr->next) {
		for (i = 0; i < ovr->parent->nkids; i++) {
			k = &ovr->parent->kids[i];
			r->steps++;
			if (k->hash == nd->hash && k->len == nd->len &&
			    memcmp(k->text, nd->text, nd->len) == 0) {
				found = k;
				break;
			}
		}
	}
	return found;
}

static void render_list(struct render *r, const struct node *nd, json_t *list,
			const struct frame *ctx, const struct ovr *ovr)
{
	size_t i, n = json_array_size(list);
	struct frame f;

	f.up = ctx;
	for (i = 0; i < n && !r->stop; i++) {
		r->steps++;
		set_json(&f.v, json_array_get(list, i));
		render_nodes(r, nd->kids, nd->nkids, &f, ovr);
	}
}

static void render_rows(struct render *r, const struct node *nd,
			const struct mustache_rows *rows,
			const struct frame *ctx, const struct ovr *ovr)
{
	struct frame f;
	size_t i;

	set_json(&f.v, NULL);
	f.v.rows = rows;
	f.up = ctx;
	for (i = 0; i < rows->n && !r->stop; i++) {
		r->steps++;
		f.v.row = i;
		render_nodes(r, nd->kids, nd->nkids, &f, ovr);
	}
}

static void render_section(struct render *r, const struct node *nd,
			   const struct frame *ctx, const struct ovr *ovr)
{
	struct val v;
	struct frame f;

	lookup(r, nd, ctx, &v);
	if (!truthy(&v)) {
		release(&v);
		return;
	}
	if (v.rows != NULL && v.row == SIZE_MAX) {
		render_rows(r, nd, v.rows, ctx, ovr);
	} else if (v.mv.kind == MV_JSON && json_is_array(v.mv.json)) {
		render_list(r, nd, v.mv.json, ctx, ovr);
	} else {
		f.v = v;
		f.v.owned = false;
		f.up = ctx;
		render_nodes(r, nd->kids, nd->nkids, &f, ovr);
	}
	release(&v);
}

static void render_value(struct render *r, const struct node *nd,
			 const struct frame *ctx)
{
	struct val v;

	lookup(r, nd, ctx, &v);
	emit_value(r, &v, nd->kind == NODE_VAR);
	release(&v);
}

static void render_inverted(struct render *r, const struct node *nd,
			    const struct frame *ctx, const struct ovr *ovr)
{
	struct val v;
	bool yes;

	lookup(r, nd, ctx, &v);
	yes = truthy(&v);
	release(&v);
	if (!yes)
		render_nodes(r, nd->kids, nd->nkids, ctx, ovr);
}

static void render_node(struct render *r, const struct node *nd,
			const struct frame *ctx, const struct ovr *ovr)
{
	const struct tmpl *t;
	const struct node *o;
	struct ovr next;

	switch (nd->kind) {
	case NODE_TEXT:
		emit_text(r, nd->text, nd->len);
		break;
	case NODE_VAR:
	case NODE_RAW:
		render_value(r, nd, ctx);
		break;
	case NODE_SECTION:
		render_section(r, nd, ctx, ovr);
		break;
	case NODE_INVERTED:
		render_inverted(r, nd, ctx, ovr);
		break;
	case NODE_PARTIAL:
		t = resolve(r, nd, ctx);
		if (t != NULL)
			expand(r, nd, t->nodes, t->nnodes, ctx, ovr);
		break;
	case NODE_PARENT:
		t = resolve(r, nd, ctx);
		next.parent = nd;
		next.next = ovr;
		if (t != NULL)
			expand(r, nd, t->nodes, t->nnodes, ctx, &next);
		break;
	case NODE_BLOCK:
		o = find_override(r, nd, ovr);
		if (o != NULL) {
			expand(r, nd, o->kids, o->nkids, ctx, ovr);
		} else {
			if (nd->nindent > 0)
				push_indent(r, nd);
			render_nodes(r, nd->kids, nd->nkids, ctx, ovr);
			if (nd->nindent > 0)
				r->nind--;
		}
		break;
	case NODE__MAX:
	default:
		abort();
	}
}

static void render_nodes(struct render *r, const struct node *nodes, size_t n,
			 const struct frame *ctx, const struct ovr *ovr)
{
	size_t i;

	/*
	 * Each level pushes at most one indentation, so the nest limit also
	 * keeps r->ind in bounds.
	 */
	if (r->nest >= MUSTACHE_MAX_NEST - 1)
		return;
	r->nest++;
	for (i = 0; i < n && !r->stop; i++) {
		if (++r->steps > MUSTACHE_MAX_STEPS ||
		    r->out->len > MUSTACHE_MAX_OUTPUT) {
			r->stop = true;
			break;
		}
		render_node(r, &nodes[i], ctx, ovr);
	}
	r->nest--;
}

static enum td_err render(const struct mustache_set *set, const char *name,
			  json_t *data, const struct mustache_rows *rows,
			  size_t nrows, struct sbuf *out, bool raw)
{
	const struct tmpl *t;
	struct frame root;
	struct render r;
	size_t n = strlen(name);

	t = find_tmpl(set, name, n, hash_name(name, n));
	if (t == NULL || !t->defined)
		return TD_ENOENT;
	/* r.ind is filled as indentation is pushed; no need to clear it. */
	r.set = set;
	r.out = out;
	r.bol = out->len == 0 || out->buf[out->len - 1] == '\n';
	r.stop = false;
	r.raw = raw;
	r.rows = rows;
	r.nrows = nrows;
	r.depth = 0;
	r.nest = 0;
	r.steps = 0;
	r.nind = 0;
	set_json(&root.v, data);
	root.up = NULL;
	render_nodes(&r, t->nodes, t->nnodes, &root, NULL);
	return r.stop ? TD_ESYS : TD_OK;
}

enum td_err mustache_render(const struct mustache_set *set, const char *name,
			    json_t *data, struct sbuf *out)
{
	return render(set, name, data, NULL, 0, out, false);
}

enum td_err mustache_render_rows(const struct mustache_set *set,
				 const char *name, json_t *data,
				 const struct mustache_rows *rows, size_t nrows,
				 struct sbuf *out)
{
	return render(set, name, data, rows, nrows, out, false);
}

enum td_err mustache_render_raw(const struct mustache_set *set,
				const char *name, json_t *data,
				struct sbuf *out)
{
	return render(set, name, data, NULL, 0, out, true);
}
