/* imports.h: CSV export and two-step (preview, commit) CSV import */
#ifndef TD_IMPORTS_H
#define TD_IMPORTS_H

#include "err.h"

struct req;

enum td_err imports_form(struct req *r);
enum td_err imports_preview(struct req *r);
enum td_err imports_commit(struct req *r);
enum td_err imports_export_clients(struct req *r);
enum td_err imports_export_contacts(struct req *r);
enum td_err imports_export_assets(struct req *r);

#endif
