/* agent.h: enrollment tokens and the RMM-facing asset API */
#ifndef TD_AGENT_H
#define TD_AGENT_H

#include "err.h"

struct req;

enum td_err agent_tokens(struct req *r);
enum td_err agent_token_create(struct req *r);
enum td_err agent_token_revoke(struct req *r);
enum td_err agent_asset_put(struct req *r);
enum td_err agent_asset_delete(struct req *r);
enum td_err agent_assets_bulk(struct req *r);

#endif
