/* contacts.h: a client's people and their roles */
#ifndef TD_CONTACTS_H
#define TD_CONTACTS_H

#include "err.h"

struct req;

enum td_err contacts_list(struct req *r);
enum td_err contacts_create(struct req *r);
enum td_err contacts_edit(struct req *r);
enum td_err contacts_update(struct req *r);
enum td_err contacts_delete(struct req *r);

#endif
