/* queue.h: the ticket queue — list, my work, kanban board, bulk actions, saved
 * views */
#ifndef TD_QUEUE_H
#define TD_QUEUE_H

#include "err.h"

struct req;

enum td_err queue_list(struct req *r);
enum td_err queue_mine(struct req *r);
enum td_err queue_board(struct req *r);
enum td_err queue_board_move(struct req *r);
enum td_err queue_bulk(struct req *r);
enum td_err queue_view_save(struct req *r);
enum td_err queue_view_delete(struct req *r);

#endif
