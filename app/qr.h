/* qr.h: QR codes (ISO/IEC 18004) as a module matrix or an SVG image */
#ifndef TD_QR_H
#define TD_QR_H

#include <stddef.h>

#include "err.h"

struct arena;

/* Versions 1..10 at level M: up to 213 bytes, 57x57 modules. */
#define QR_MAX_VERSION 10
#define QR_MAX_SIZE    (17 + 4 * QR_MAX_VERSION)
#define QR_MAX_BYTES   213

struct qr {
	int version; /* 1..QR_MAX_VERSION, the smallest that fits */
	int mask;    /* 0..7, the one with the lowest penalty */
	int size;    /* modules per side, 17 + 4 * version */
	/* row-major: modules[y * size + x], 1 = dark; no quiet zone */
	unsigned char modules[QR_MAX_SIZE * QR_MAX_SIZE];
};

/*
 * Encodes len bytes of text (byte mode, error correction level M) into out.
 * TD_ETOOBIG if they do not fit in version 10 (more than QR_MAX_BYTES);
 * TD_EINPUT if text is NULL but len is not 0.
 */
enum td_err qr_encode(const char *text, size_t len, struct qr *out);

/*
 * The QR code of the NUL-terminated text as a standalone <svg> element:
 * one <path> of dark modules on a white square with a 4-module quiet zone,
 * px CSS pixels wide and high, role="img" and aria-label set to the
 * (escaped) label. *svg lives in the arena. TD_ETOOBIG if the text does
 * not fit; TD_EINPUT if text or label is NULL or px is not positive.
 */
enum td_err qr_svg(struct arena *a, const char *text, const char *label, int px,
		   const char **svg);

#endif
