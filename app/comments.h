/* comments.h: a ticket's conversation and its attachments */
#ifndef TD_COMMENTS_H
#define TD_COMMENTS_H

#include "err.h"

struct req;

enum td_err comments_create(struct req *r);
enum td_err comments_update(struct req *r);
enum td_err comments_attach(struct req *r);
enum td_err comments_download(struct req *r);

#endif
