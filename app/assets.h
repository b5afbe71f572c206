/* assets.h: a client's assets, their history and billable counts */
#ifndef TD_ASSETS_H
#define TD_ASSETS_H

#include "err.h"

struct req;

enum td_err assets_list(struct req *r);
enum td_err assets_create(struct req *r);
enum td_err assets_show(struct req *r);
enum td_err assets_update(struct req *r);
enum td_err assets_move(struct req *r);
enum td_err assets_counts(struct req *r);
enum td_err assets_kinds(struct req *r);
enum td_err assets_kind_add(struct req *r);

#endif
