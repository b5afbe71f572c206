/* view.h: templates from views/, and rendering a request's view model */
#ifndef TD_VIEW_H
#define TD_VIEW_H

#include <stddef.h>

#include "err.h"

struct arena;
struct mustache_rows;
struct mustache_set;
struct req;

/*
 * Compiles every .mustache file under views_dir into a set named by relative
 * path without the extension ("tickets/show"). The set lives in a. On failure
 * returns TD_EINPUT (a template does not compile) or TD_ESYS (unreadable
 * directory) with a message in err naming the file.
 */
enum td_err view_load(const char *views_dir, struct arena *a,
		      struct mustache_set **out, char *err, size_t errlen);

/*
 * Fills r->body_out with the response for r->view: HTML through the
 * template r->view_name inside the layout data every page needs, or JSON.
 */
enum td_err view_render(struct req *r);

/*
 * Adds a row source (mustache.h) to the HTML page: a long list the
 * template reads row by row, with no json_t object per row. *rows is
 * copied; its ctx must live as long as the request. The JSON twin does
 * not see it, so a handler registers it only when !r->want_json and puts
 * the list in r->view otherwise.
 */
void view_rows(struct req *r, const struct mustache_rows *rows);

/*
 * Sets title, template and `settings_tabs` (the settings pages the caller's
 * role may open, href marked active) for a page under /settings.
 */
void view_settings_page(struct req *r, const char *title, const char *view,
			const char *href);

/* Fills r->body_out with the error page or JSON error for err. */
void view_render_error(struct req *r, enum td_err err);

#endif
