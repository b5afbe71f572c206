/* qr.c: QR code encoder (ISO/IEC 18004), byte mode, level M, versions 1..10 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "err.h"
#include "qr.h"
#include "sbuf.h"
#include "banned.h"

#define QR_QUIET      4
#define QR_MAX_DATA   216 /* data codewords of version 10-M */
#define QR_MAX_CODES  346 /* all codewords of version 10 */
#define QR_MAX_ECC    26  /* error correction codewords per block */
#define QR_MAX_BLOCKS 5	  /* blocks of version 10-M */
#define QR_CELLS      (QR_MAX_SIZE * QR_MAX_SIZE)

/* Level M only: ISO/IEC 18004 table 9, one row per version. */
static const struct blocks {
	unsigned char ecc;    /* error correction codewords per block */
	unsigned char n1, k1; /* n1 blocks of k1 data codewords */
	unsigned char n2, k2; /* then n2 blocks of k2 (= k1 + 1) */
} blocks_m[QR_MAX_VERSION + 1] = {
	{ 0, 0, 0, 0, 0 },    { 10, 1, 16, 0, 0 },  { 16, 1, 28, 0, 0 },
	{ 26, 1, 44, 0, 0 },  { 18, 2, 32, 0, 0 },  { 24, 2, 43, 0, 0 },
	{ 16, 4, 27, 0, 0 },  { 18, 4, 31, 0, 0 },  { 22, 2, 38, 2, 39 },
	{ 22, 3, 36, 2, 37 }, { 26, 4, 43, 1, 44 },
};

/* Alignment pattern centres (annex E), 0-terminated. */
static const unsigned char align_pos[QR_MAX_VERSION + 1][4] = {
	{ 0 },
	{ 0 },
	{ 6, 18, 0 },
	{ 6, 22, 0 },
	{ 6, 26, 0 },
	{ 6, 30, 0 },
	{ 6, 34, 0 },
	{ 6, 22, 38, 0 },
	{ 6, 24, 42, 0 },
	{ 6, 26, 46, 0 },
	{ 6, 28, 50, 0 },
};

/* A symbol being built; fn marks function modules that masks leave alone. */
struct grid {
	int size;
	unsigned char m[QR_CELLS];
	unsigned char fn[QR_CELLS];
};

struct bits {
	unsigned char *buf;
	size_t cap; /* bytes */
	size_t n;   /* bits written */
};

static int data_codewords(int version)
{
	const struct blocks *b = &blocks_m[version];

	return b->n1 * b->k1 + b->n2 * b->k2;
}

/* Bits of the character count indicator in byte mode (table 3). */
static int count_bits(int version)
{
	return version <= 9 ? 8 : 16;
}

/* The smallest version holding len bytes, or 0 if none does. */
static int pick_version(size_t len)
{
	int v;

	for (v = 1; v <= QR_MAX_VERSION; v++) {
		if (4 + count_bits(v) + 8 * len <=
		    (size_t)data_codewords(v) * 8)
			return v;
	}
	return 0;
}

static void bits_put(struct bits *b, unsigned val, int nbits)
{
	int i;

	for (i = nbits - 1; i >= 0; i--) {
		if ((val >> i) & 1)
			b->buf[b->n / 8] |= (unsigned char)(0x80 >> (b->n % 8));
		b->n++;
	}
}

/* Mode, count, data, terminator and padding (clause 7.4). */
static void encode_data(const char *text, size_t len, int version,
			unsigned char *out)
{
	struct bits b = { out, (size_t)data_codewords(version), 0 };
	size_t i, cap = b.cap * 8;

	memset(out, 0, b.cap);
	bits_put(&b, 0x4, 4);
	bits_put(&b, (unsigned)len, count_bits(version));
	for (i = 0; i < len; i++)
		bits_put(&b, (unsigned char)text[i], 8);
	bits_put(&b, 0, cap - b.n < 4 ? (int)(cap - b.n) : 4);
	b.n = (b.n + 7) / 8 * 8;
	for (i = 0; b.n < cap; i++)
		bits_put(&b, i % 2 == 0 ? 0xEC : 0x11, 8);
}

/* Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1. */
static unsigned char gf_mul(unsigned char x, unsigned char y)
{
	unsigned z = 0;
	int i;

	for (i = 7; i >= 0; i--) {
		z = (z << 1) ^ ((z >> 7) * 0x11D);
		z ^= ((y >> i) & 1u) * x;
	}
	return (unsigned char)z;
}

/*
 * The generator polynomial (x - a^0)(x - a^1)...(x - a^(degree-1)),
 * highest coefficient first, without the leading 1.
 */
static void rs_generator(int degree, unsigned char *gen)
{
	unsigned char root = 1;
	int i, j;

	memset(gen, 0, (size_t)degree);
	gen[degree - 1] = 1;
	for (i = 0; i < degree; i++) {
		for (j = 0; j < degree; j++) {
			gen[j] = gf_mul(gen[j], root);
			if (j + 1 < degree)
				gen[j] ^= gen[j + 1];
		}
		root = gf_mul(root, 2);
	}
}

/* The degree error correction codewords of data: the remainder by gen. */
static void rs_remainder(const unsigned char *data, int n,
			 const unsigned char *gen, int degree,
			 unsigned char *ecc)
{
	unsigned char factor;
	int i, j;

	memset(ecc, 0, (size_t)degree);
	for (i = 0; i < n; i++) {
		factor = data[i] ^ ecc[0];
		memmove(ecc, ecc + 1, (size_t)degree - 1);
		ecc[degree - 1] = 0;
		for (j = 0; j < degree; j++)
			ecc[j] ^= gf_mul(gen[j], factor);
	}
}

/*
 * Splits the data into blocks, adds error correction to each and
 * interleaves them (clause 7.6). Returns the number of codewords.
 */
static int add_ecc(const unsigned char *data, int version, unsigned char *out)
{
	const struct blocks *b = &blocks_m[version];
	unsigned char gen[QR_MAX_ECC];
	unsigned char ecc[QR_MAX_BLOCKS][QR_MAX_ECC];
	const unsigned char *start[QR_MAX_BLOCKS];
	int len[QR_MAX_BLOCKS];
	int nblocks = b->n1 + b->n2, i, j, off = 0, n = 0;

	rs_generator(b->ecc, gen);
	for (i = 0; i < nblocks; i++) {
		start[i] = data + off;
		len[i] = i < b->n1 ? b->k1 : b->k2;
		rs_remainder(start[i], len[i], gen, b->ecc, ecc[i]);
		off += len[i];
	}
	for (j = 0; j < b->k1 || j < b->k2; j++) {
		for (i = 0; i < nblocks; i++) {
			if (j < len[i])
				out[n++] = start[i][j];
		}
	}
	for (j = 0; j < b->ecc; j++) {
		for (i = 0; i < nblocks; i++)
			out[n++] = ecc[i][j];
	}
	return n;
}

static void set_fn(struct grid *g, int x, int y, bool dark)
{
	g->m[y * g->size + x] = dark;
	g->fn[y * g->size + x] = 1;
}

static int max_abs(int a, int b)
{
	a = abs(a);
	b = abs(b);
	return a > b ? a : b;
}

/* A finder pattern centred on (cx, cy) with its light separator. */
static void draw_finder(struct grid *g, int cx, int cy)
{
	int dx, dy, x, y, d;

	for (dy = -4; dy <= 4; dy++) {
		for (dx = -4; dx <= 4; dx++) {
			x = cx + dx;
			y = cy + dy;
			if (x < 0 || x >= g->size || y < 0 || y >= g->size)
				continue;
			d = max_abs(dx, dy);
			set_fn(g, x, y, d != 2 && d != 4);
		}
	}
}

static void draw_alignment(struct grid *g, int cx, int cy)
{
	int dx, dy;

	for (dy = -2; dy <= 2; dy++) {
		for (dx = -2; dx <= 2; dx++)
			set_fn(g, cx + dx, cy + dy, max_abs(dx, dy) != 1);
	}
}

/*
 * Both copies of the 15-bit format information (clause 7.9.1): level M is
 * 00, then the mask, BCH(15,5) with generator 0x537, xored with 0x5412.
 */
static void draw_format(struct grid *g, int mask)
{
	unsigned data = (0u << 3) | (unsigned)mask, rem = data, bits;
	int i, n = g->size;

	for (i = 0; i < 10; i++)
		rem = (rem << 1) ^ ((rem >> 9) * 0x537);
	bits = ((data << 10) | rem) ^ 0x5412;
	for (i = 0; i <= 5; i++)
		set_fn(g, 8, i, (bits >> i) & 1);
	set_fn(g, 8, 7, (bits >> 6) & 1);
	set_fn(g, 8, 8, (bits >> 7) & 1);
	set_fn(g, 7, 8, (bits >> 8) & 1);
	for (i = 9; i < 15; i++)
		set_fn(g, 14 - i, 8, (bits >> i) & 1);
	for (i = 0; i < 8; i++)
		set_fn(g, n - 1 - i, 8, (bits >> i) & 1);
	for (i = 8; i < 15; i++)
		set_fn(g, 8, n - 15 + i, (bits >> i) & 1);
	/* the dark module, always dark (clause 7.9.1) */
	set_fn(g, 8, n - 8, true);
}

/* Both copies of the 18-bit version information, BCH(18,6), 0x1F25. */
static void draw_version(struct grid *g, int version)
{
	unsigned rem = (unsigned)version, bits;
	int i, a, b;
	bool bit;

	if (version < 7)
		return;
	for (i = 0; i < 12; i++)
		rem = (rem << 1) ^ ((rem >> 11) * 0x1F25);
	bits = ((unsigned)version << 12) | rem;
	for (i = 0; i < 18; i++) {
		bit = (bits >> i) & 1;
		a = g->size - 11 + i % 3;
		b = i / 3;
		set_fn(g, a, b, bit);
		set_fn(g, b, a, bit);
	}
}

static void draw_function_patterns(struct grid *g, int version)
{
	const unsigned char *pos = align_pos[version];
	int i, j, n = g->size, last;

	for (i = 0; i < n; i++) {
		set_fn(g, 6, i, i % 2 == 0);
		set_fn(g, i, 6, i % 2 == 0);
	}
	draw_finder(g, 3, 3);
	draw_finder(g, n - 4, 3);
	draw_finder(g, 3, n - 4);
	for (last = 0; pos[last] != 0; last++)
		;
	for (i = 0; i < last; i++) {
		for (j = 0; j < last; j++) {
			/* the three corners that hold finder patterns */
			if ((i == 0 && j == 0) || (i == 0 && j == last - 1) ||
			    (i == last - 1 && j == 0))
				continue;
			draw_alignment(g, pos[i], pos[j]);
		}
	}
	/* reserve the format areas; the real bits depend on the mask */
	draw_format(g, 0);
	draw_version(g, version);
}

/*
 * Places the codewords in two-module columns, zigzagging up and down from
 * the bottom right and skipping the vertical timing pattern (clause 7.7.3).
 * Remainder bits stay light.
 */
static void draw_codewords(struct grid *g, const unsigned char *cw, int ncw)
{
	int right, vert, j, x, y, n = g->size;
	size_t i = 0, nbits = (size_t)ncw * 8;
	bool upward;

	for (right = n - 1; right >= 1; right -= 2) {
		if (right == 6)
			right = 5;
		upward = ((right + 1) & 2) == 0;
		for (vert = 0; vert < n; vert++) {
			y = upward ? n - 1 - vert : vert;
			for (j = 0; j < 2; j++) {
				x = right - j;
				if (g->fn[y * n + x] || i >= nbits)
					continue;
				g->m[y * n + x] =
					(cw[i / 8] >> (7 - i % 8)) & 1;
				i++;
			}
		}
	}
}

/* Whether mask pattern `mask` flips the module in row y, column x. */
static bool mask_hit(int mask, int x, int y)
{
	switch (mask) {
	case 0:
		return (y + x) % 2 == 0;
	case 1:
		return y % 2 == 0;
	case 2:
		return x % 3 == 0;
	case 3:
		return (y + x) % 3 == 0;
	case 4:
		return (y / 2 + x / 3) % 2 == 0;
	case 5:
		return (y * x) % 2 + (y * x) % 3 == 0;
	case 6:
		return ((y * x) % 2 + (y * x) % 3) % 2 == 0;
	case 7:
		return ((y + x) % 2 + (y * x) % 3) % 2 == 0;
	default:
		abort();
	}
}

static void apply_mask(struct grid *g, int mask)
{
	int x, y, n = g->size;

	for (y = 0; y < n; y++) {
		for (x = 0; x < n; x++) {
			if (!g->fn[y * n + x] && mask_hit(mask, x, y))
				g->m[y * n + x] ^= 1;
		}
	}
}

/*
 * Module i of row (or column, if col) `line`, so that one loop scores
 * both directions. Outside the symbol is the light quiet zone.
 */
static int at(const struct grid *g, int line, int i, bool col)
{
	if (i < 0 || i >= g->size)
		return 0;
	return col ? g->m[i * g->size + line] : g->m[line * g->size + i];
}

/* N1 and N3 for one row or column. */
static long penalty_line(const struct grid *g, int line, bool col)
{
	/* 1:1:3:1:1 finder-like runs with four light modules on one side */
	static const unsigned char pat[2][11] = {
		{ 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1 },
	};
	int i, k, p, run = 1, n = g->size;
	long score = 0;
	bool match;

	for (i = 1; i <= n; i++) {
		if (i < n && at(g, line, i, col) == at(g, line, i - 1, col)) {
			run++;
			continue;
		}
		if (run >= 5)
			score += 3 + (run - 5);
		run = 1;
	}
	/* the four light modules may lie in the quiet zone */
	for (i = -4; i + 7 <= n; i++) {
		for (p = 0; p < 2; p++) {
			match = true;
			for (k = 0; k < 11 && match; k++)
				match = at(g, line, i + k, col) == pat[p][k];
			if (match)
				score += 40;
		}
	}
	return score;
}

/* The penalty score of a masked symbol (clause 7.8.3, table 11). */
static long penalty(const struct grid *g)
{
	int x, y, n = g->size, dark = 0, total = n * n;
	const unsigned char *m = g->m;
	long score = 0;

	for (y = 0; y < n; y++) {
		score += penalty_line(g, y, false);
		score += penalty_line(g, y, true);
	}
	for (y = 0; y + 1 < n; y++) {
		for (x = 0; x + 1 < n; x++) {
			if (m[y * n + x] == m[y * n + x + 1] &&
			    m[y * n + x] == m[(y + 1) * n + x] &&
			    m[y * n + x] == m[(y + 1) * n + x + 1])
				score += 3;
		}
	}
	for (y = 0; y < total; y++)
		dark += m[y];
	/* 10 points per full 5% that the dark share is away from 50% */
	score += 10L * (abs(dark * 20 - total * 10) / total);
	return score;
}

enum td_err qr_encode(const char *text, size_t len, struct qr *out)
{
	unsigned char data[QR_MAX_DATA], cw[QR_MAX_CODES];
	struct grid base, trial;
	int version, ncw, mask;
	long score, best = -1;

	if (text == NULL && len > 0)
		return TD_EINPUT;
	version = pick_version(len);
	if (version == 0)
		return TD_ETOOBIG;
	encode_data(text, len, version, data);
	ncw = add_ecc(data, version, cw);

	memset(&base, 0, sizeof(base));
	base.size = 17 + 4 * version;
	draw_function_patterns(&base, version);
	draw_codewords(&base, cw, ncw);

	memset(out, 0, sizeof(*out));
	out->version = version;
	out->size = base.size;
	for (mask = 0; mask < 8; mask++) {
		trial = base;
		apply_mask(&trial, mask);
		draw_format(&trial, mask);
		score = penalty(&trial);
		if (best < 0 || score < best) {
			best = score;
			out->mask = mask;
			memcpy(out->modules, trial.m, sizeof(out->modules));
		}
	}
	return TD_OK;
}

/* One subpath per horizontal run of dark modules. */
static void add_path(struct sbuf *sb, const struct qr *q)
{
	int x, y, x0, n = q->size;

	for (y = 0; y < n; y++) {
		for (x = 0; x < n; x++) {
			if (!q->modules[y * n + x])
				continue;
			for (x0 = x; x < n && q->modules[y * n + x]; x++)
				;
			sbuf_addf(sb, "M%d %dh%dv1h-%dz", x0 + QR_QUIET,
				  y + QR_QUIET, x - x0, x - x0);
		}
	}
}

enum td_err qr_svg(struct arena *a, const char *text, const char *label, int px,
		   const char **svg)
{
	struct qr *q;
	struct sbuf sb;
	enum td_err err;
	int dim;

	if (text == NULL || label == NULL || px <= 0)
		return TD_EINPUT;
	q = arena_alloc_raw(a, sizeof(*q));
	err = qr_encode(text, strlen(text), q);
	if (err != TD_OK)
		return err;
	dim = q->size + 2 * QR_QUIET;
	sbuf_init(&sb, a, 4096);
	sbuf_addf(&sb,
		  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		  "height=\"%d\" viewBox=\"0 0 %d %d\" "
		  "shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"",
		  px, px, dim, dim);
	sbuf_add_html(&sb, label, strlen(label));
	sbuf_addf(&sb, "\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
		  dim, dim);
	sbuf_adds(&sb, "<path fill=\"#000\" d=\"");
	add_path(&sb, q);
	sbuf_adds(&sb, "\"/></svg>");
	*svg = sbuf_cstr(&sb);
	return TD_OK;
}
