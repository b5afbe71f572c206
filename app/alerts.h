/* alerts.h: alert intake from RMMs and monitoring, its settings, maintenance
 * windows */
#ifndef TD_ALERTS_H
#define TD_ALERTS_H

#include "err.h"

struct req;

enum td_err alerts_intake(struct req *r);
enum td_err alerts_settings(struct req *r);
enum td_err alerts_settings_save(struct req *r);
enum td_err alerts_windows(struct req *r);
enum td_err alerts_window_create(struct req *r);
enum td_err alerts_window_delete(struct req *r);

#endif
