/* pages.h: home, health check and the sections still to come */
#ifndef TD_PAGES_H
#define TD_PAGES_H

#include "err.h"

struct req;

enum td_err pages_home(struct req *r);
enum td_err pages_healthz(struct req *r);
enum td_err pages_reports(struct req *r);
enum td_err pages_bench_list(struct req *r);
enum td_err pages_echo(struct req *r);

#endif
