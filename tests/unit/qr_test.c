/* qr_test.c: QR structure, capacity, SVG output, and decoding by zbarimg */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "err.h"
#include "qr.h"
#include "tap.h"
#include "banned.h"

#define ZBARIMG "/usr/bin/zbarimg"
#define SCALE	8 /* pixels per module in the test images */
#define QUIET	4

/* Byte capacity at level M of versions 1..10 (ISO/IEC 18004 table 7). */
static const size_t capacity[QR_MAX_VERSION + 1] = {
	0, 14, 26, 42, 62, 84, 106, 122, 152, 180, 213,
};

static int mod(const struct qr *q, int x, int y)
{
	return q->modules[y * q->size + x];
}

/* The remainder of the polynomial v (nbits long) modulo gen of degree deg. */
static unsigned bch_rem(unsigned v, int nbits, unsigned gen, int deg)
{
	int i;

	for (i = nbits - 1; i >= deg; i--) {
		if ((v >> i) & 1)
			v ^= gen << (i - deg);
	}
	return v;
}

/* A finder pattern with its top-left corner at (x0, y0), and separator. */
static bool finder_ok(const struct qr *q, int x0, int y0)
{
	int dx, dy, x, y, d, want;

	for (dy = -1; dy <= 7; dy++) {
		for (dx = -1; dx <= 7; dx++) {
			x = x0 + dx;
			y = y0 + dy;
			if (x < 0 || y < 0 || x >= q->size || y >= q->size)
				continue;
			d = abs(dx - 3) > abs(dy - 3) ? abs(dx - 3) :
							abs(dy - 3);
			want = d != 2 && d != 4;
			if (mod(q, x, y) != want)
				return false;
		}
	}
	return true;
}

static bool timing_ok(const struct qr *q)
{
	int i;

	for (i = 8; i < q->size - 8; i++) {
		if (mod(q, i, 6) != (i % 2 == 0) ||
		    mod(q, 6, i) != (i % 2 == 0))
			return false;
	}
	return true;
}

/* Reads one copy of the 15 format bits; bit i as placed in clause 7.9.1. */
static unsigned read_format(const struct qr *q, int copy)
{
	unsigned bits = 0;
	int i, n = q->size, b;

	for (i = 0; i < 15; i++) {
		if (copy == 0) {
			if (i <= 5)
				b = mod(q, 8, i);
			else if (i == 6)
				b = mod(q, 8, 7);
			else if (i == 7)
				b = mod(q, 8, 8);
			else if (i == 8)
				b = mod(q, 7, 8);
			else
				b = mod(q, 14 - i, 8);
		} else {
			b = i < 8 ? mod(q, n - 1 - i, 8) :
				    mod(q, 8, n - 15 + i);
		}
		bits |= (unsigned)b << i;
	}
	return bits;
}

/* Reads one copy of the 18 version bits (bottom-left or top-right). */
static unsigned read_version(const struct qr *q, int copy)
{
	unsigned bits = 0;
	int i, a, b;

	for (i = 0; i < 18; i++) {
		a = q->size - 11 + i % 3;
		b = i / 3;
		bits |= (unsigned)(copy == 0 ? mod(q, a, b) : mod(q, b, a))
			<< i;
	}
	return bits;
}

/* All structural checks; says in a diag which one failed. */
static bool structure_ok(const struct qr *q, int version)
{
	unsigned f0, f1, fmt, v0, v1;
	int n = q->size;

	if (q->version != version || n != 17 + 4 * version) {
		diag("version %d size %d, want %d", q->version, n, version);
		return false;
	}
	if (!finder_ok(q, 0, 0) || !finder_ok(q, n - 7, 0) ||
	    !finder_ok(q, 0, n - 7)) {
		diag("finder pattern wrong");
		return false;
	}
	if (!timing_ok(q)) {
		diag("timing pattern wrong");
		return false;
	}
	if (!mod(q, 8, n - 8)) {
		diag("dark module missing");
		return false;
	}
	if (version >= 2 && (!mod(q, n - 7, n - 7) || mod(q, n - 8, n - 7) ||
			     !mod(q, n - 9, n - 7) || mod(q, n - 7, n - 6))) {
		diag("bottom-right alignment pattern wrong");
		return false;
	}
	f0 = read_format(q, 0);
	f1 = read_format(q, 1);
	fmt = f0 ^ 0x5412;
	if (f0 != f1 || bch_rem(fmt, 15, 0x537, 10) != 0) {
		diag("format bits %04x/%04x fail BCH(15,5)", f0, f1);
		return false;
	}
	if ((fmt >> 13) != 0 || (int)((fmt >> 10) & 7) != q->mask) {
		diag("format says level %u mask %u, want M(0) mask %d",
		     fmt >> 13, (fmt >> 10) & 7, q->mask);
		return false;
	}
	if (version >= 7) {
		v0 = read_version(q, 0);
		v1 = read_version(q, 1);
		if (v0 != v1 || bch_rem(v0, 18, 0x1F25, 12) != 0 ||
		    (int)(v0 >> 12) != version) {
			diag("version bits %05x/%05x wrong", v0, v1);
			return false;
		}
	}
	return true;
}

static char *filled(size_t n, unsigned seed)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789 -._~:/?#&=%+";
	char *s = malloc(n + 1);
	size_t i;

	if (s == NULL)
		abort();
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		s[i] = set[(seed >> 16) % (sizeof(set) - 1)];
	}
	s[n] = '\0';
	return s;
}

/* Writes the symbol as a binary PGM with a quiet zone; false on failure. */
static bool write_pgm(const struct qr *q, const char *path)
{
	int dim = (q->size + 2 * QUIET) * SCALE, x, y, mx, my, fd;
	unsigned char *row = malloc((size_t)dim);
	FILE *f;
	bool ret;

	if (row == NULL)
		abort();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	f = fd < 0 ? NULL : fdopen(fd, "wb");
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		free(row);
		return false;
	}
	fprintf(f, "P5\n%d %d\n255\n", dim, dim);
	for (y = 0; y < dim; y++) {
		my = y / SCALE - QUIET;
		for (x = 0; x < dim; x++) {
			mx = x / SCALE - QUIET;
			row[x] = (mx >= 0 && my >= 0 && mx < q->size &&
				  my < q->size && mod(q, mx, my)) ?
					 0 :
					 255;
		}
		fwrite(row, 1, (size_t)dim, f);
	}
	ret = !ferror(f);
	ret = fclose(f) == 0 && ret;
	free(row);
	return ret;
}

/* Encodes text, renders it, and checks that zbarimg reads back the same. */
static bool zbar_roundtrip(const char *text)
{
	static int seq;
	struct qr q;
	char path[64], cmd[128], got[1024];
	size_t n;
	FILE *p;
	bool ret = false;

	if (qr_encode(text, strlen(text), &q) != TD_OK)
		return false;
	snprintf(path, sizeof(path), "/tmp/qr_test_%ld_%d.pgm", (long)getpid(),
		 seq++);
	if (!write_pgm(&q, path)) {
		diag("cannot write '%s'", path);
		return false;
	}
	/* 2>/dev/null: ImageMagick complains when there is no D-Bus */
	snprintf(cmd, sizeof(cmd), "%s --raw -q %s 2>/dev/null", ZBARIMG, path);
	p = popen(cmd, "r");
	if (p == NULL) {
		diag("cannot run '%s'", cmd);
		goto out;
	}
	n = fread(got, 1, sizeof(got) - 1, p);
	if (pclose(p) != 0) {
		diag("zbarimg found nothing (version %d mask %d)", q.version,
		     q.mask);
		goto out;
	}
	got[n] = '\0';
	if (n > 0 && got[n - 1] == '\n')
		got[--n] = '\0';
	ret = !strcmp(got, text);
	if (!ret)
		diag("zbarimg read '%s'", got);
out:
	unlink(path);
	return ret;
}

static void test_structure(void)
{
	struct qr q;
	char *s;
	int v;

	ok(qr_encode("HELLO", 5, &q) == TD_OK && structure_ok(&q, 1),
	   "\"HELLO\" is version 1 with finders, timing and format for M");
	ok(qr_encode("", 0, &q) == TD_OK && structure_ok(&q, 1),
	   "the empty string encodes as version 1");
	for (v = 1; v <= QR_MAX_VERSION; v++) {
		s = filled(capacity[v], (unsigned)v);
		ok(qr_encode(s, capacity[v], &q) == TD_OK &&
			   structure_ok(&q, v),
		   "%zu bytes fill version %d and the structure is right",
		   capacity[v], v);
		free(s);
		if (v == QR_MAX_VERSION)
			break;
		s = filled(capacity[v] + 1, (unsigned)v);
		ok(qr_encode(s, capacity[v] + 1, &q) == TD_OK &&
			   q.version == v + 1,
		   "%zu bytes need version %d", capacity[v] + 1, v + 1);
		free(s);
	}
	s = filled(QR_MAX_BYTES + 1, 1);
	ok(qr_encode(s, QR_MAX_BYTES, &q) == TD_OK && q.size == 57,
	   "213 bytes fit in version 10 (57x57)");
	ok(qr_encode(s, QR_MAX_BYTES + 1, &q) == TD_ETOOBIG,
	   "214 bytes are TD_ETOOBIG");
	free(s);
}

static void test_zbar(void)
{
	static const char uri[] =
		"otpauth://totp/Acme%20%26%20Co:alice.longname%40example.com"
		"?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20%26%20Co"
		"&algorithm=SHA1&digits=6&period=30";
	char *masks[8] = { NULL };
	char *s;
	struct qr q;
	int i, v, bad, found;

	if (access(ZBARIMG, X_OK) != 0) {
		skip("zbarimg not installed: install zbar-tools");
		skip("zbarimg not installed: install zbar-tools");
		skip("zbarimg not installed: install zbar-tools");
		skip("zbarimg not installed: install zbar-tools");
		skip("zbarimg not installed: install zbar-tools");
		return;
	}
	ok(zbar_roundtrip("Hello, tallydesk!"), "zbarimg reads a short text");
	diag("otpauth URI of %zu bytes", strlen(uri));
	ok(zbar_roundtrip(uri), "zbarimg reads an otpauth URI");
	s = filled(200, 42);
	ok(zbar_roundtrip(s), "zbarimg reads 200 bytes");
	free(s);

	bad = 0;
	for (v = 1; v <= QR_MAX_VERSION; v++) {
		s = filled(capacity[v], (unsigned)v * 7);
		if (!zbar_roundtrip(s)) {
			diag("version %d failed", v);
			bad++;
		}
		free(s);
	}
	ok(bad == 0, "zbarimg reads a full symbol of every version 1..10");

	/* different texts pick different masks; find one text per mask */
	for (i = 0, found = 0; i < 2000 && found < 8; i++) {
		s = filled((size_t)(10 + i % 100), (unsigned)i);
		if (qr_encode(s, strlen(s), &q) == TD_OK &&
		    masks[q.mask] == NULL) {
			masks[q.mask] = s;
			found++;
			continue;
		}
		free(s);
	}
	bad = 0;
	for (i = 0; i < 8; i++) {
		if (masks[i] == NULL) {
			diag("no text chose mask %d", i);
			bad++;
			continue;
		}
		if (!zbar_roundtrip(masks[i])) {
			diag("mask %d failed", i);
			bad++;
		}
		free(masks[i]);
	}
	ok(bad == 0, "zbarimg reads a symbol made with each mask chosen");
}

/* Redraws the SVG path into a matrix to compare with qr_encode. */
static bool path_matches(const char *d, const struct qr *q)
{
	unsigned char seen[QR_MAX_SIZE * QR_MAX_SIZE] = { 0 };
	int x, y, w, w2, used, i;

	while (*d == 'M') {
		if (sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &w, &w2, &used) !=
			    4 ||
		    w != w2)
			return false;
		x -= QUIET;
		y -= QUIET;
		if (x < 0 || y < 0 || y >= q->size || x + w > q->size)
			return false;
		for (i = 0; i < w; i++)
			seen[y * q->size + x + i] = 1;
		d += used;
	}
	return *d == '"' &&
	       !memcmp(seen, q->modules, (size_t)(q->size * q->size));
}

static void test_svg(void)
{
	struct arena *a = arena_new();
	const char *svg = NULL, *p, *d;
	struct qr q;
	char *big, *box;
	int paths = 0;

	ok(qr_svg(a, "otpauth://totp/x", "Scan <me> & \"go\"", 200, &svg) ==
		   TD_OK,
	   "qr_svg renders a short URI");
	for (p = svg; (p = strstr(p, "<path")) != NULL; p++)
		paths++;
	ok(paths == 1, "the SVG has exactly one <path>");
	ok(strstr(svg, "aria-label=\"Scan &lt;me&gt; &amp; &quot;go&quot;\"") !=
			   NULL &&
		   strstr(svg, "<me>") == NULL,
	   "the aria-label is escaped");
	qr_encode("otpauth://totp/x", 16, &q);
	box = arena_printf(a, "viewBox=\"0 0 %d %d\"", q.size + 8, q.size + 8);
	ok(strstr(svg, "role=\"img\"") != NULL &&
		   strstr(svg, "shape-rendering=\"crispEdges\"") != NULL &&
		   strstr(svg, "width=\"200\" height=\"200\"") != NULL &&
		   strstr(svg, box) != NULL,
	   "the SVG is 200 px wide with a %s", box);
	d = strstr(svg, " d=\"");
	ok(d != NULL && path_matches(d + 4, &q),
	   "the path draws exactly the dark modules, offset by the quiet zone");
	ok(strncmp(svg, "<svg ", 5) == 0 &&
		   !strcmp(svg + strlen(svg) - 6, "</svg>"),
	   "the output is one <svg> element");
	diag("%zu bytes of SVG for version %d", strlen(svg), q.version);

	ok(qr_svg(a, "x", "l", 0, &svg) == TD_EINPUT,
	   "qr_svg refuses a zero size");
	big = arena_alloc(a, QR_MAX_BYTES + 2);
	memset(big, 'a', QR_MAX_BYTES + 1);
	ok(qr_svg(a, big, "l", 100, &svg) == TD_ETOOBIG,
	   "qr_svg passes TD_ETOOBIG on");
	arena_free(a);
}

int main(void)
{
	test_structure();
	test_svg();
	test_zbar();
	return tap_done();
}
