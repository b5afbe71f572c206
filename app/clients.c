/* clients.c: clients — list, page with tabs, edit, archive, delete, merge */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "billingpanels.h"
#include "clientctx.h"
#include "clients.h"
#include "contracts.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define POPULAR_TAGS	12
#define RELATED_CHOICES 200
#define FLASH_CONFLICTS 5
#define CURSOR_KEY_MAX	800

/*
 * The list: one statement per sort order, sharing the columns and the
 * filters. Every filter is a parameter that may be NULL, so nothing is
 * built from input. The inner query picks the page's clients (ORDER BY +
 * LIMIT), and only then are their counts taken, from LATERAL subqueries
 * over the (tenant_id, client_id ...) indexes: whatever plan PostgreSQL
 * picks (prepared statements go generic), no count is taken for a row
 * that is not shown. $1 query, $2 query LIKE-escaped, $3 tag, $4 status,
 * $5 cursor key, $6 cursor id, $7 limit. The last column, k, is the
 * row's cursor key. The page's rows are picked first and everything else
 * is looked up per row (laterals), so no join ever reads a whole table.
 */
#define LIST_COLUMNS                                                           \
	"SELECT c.id, c.name, d.domain, to_json(c.tags)::text, ac.n, cc.n,"    \
	" c.archived_at IS NOT NULL, c.merged_into IS NOT NULL, c.k"
#define LIST_INNER                                                             \
	" FROM (SELECT c.tenant_id, c.id, c.name, c.tags, c.archived_at,"      \
	" c.merged_into,"
#define LIST_FILTERS                                                           \
	" WHERE c.tenant_id = app_tenant()"                                    \
	" AND ($1::text IS NULL OR c.search @@ plainto_tsquery('simple', $1)"  \
	" OR c.name ILIKE ('%' || $2::text || '%') ESCAPE '\\')"               \
	" AND ($3::text IS NULL OR c.tags @> ARRAY[$3::text])"                 \
	" AND ($4::text = 'all' OR ($4::text = 'archived') ="                  \
	" (c.archived_at IS NOT NULL OR c.merged_into IS NOT NULL))"
#define LIST_JOINS                                                             \
	" LEFT JOIN LATERAL (SELECT d.domain FROM client_domains d"            \
	" WHERE d.tenant_id = c.tenant_id AND d.client_id = c.id"              \
	" AND d.is_primary LIMIT 1) d ON true"                                 \
	" LEFT JOIN LATERAL (SELECT count(*) AS n FROM contacts k"             \
	" WHERE k.tenant_id = c.tenant_id AND k.client_id = c.id) cc ON true"
#define LIST_ASSETS_LATERAL                                                    \
	" LEFT JOIN LATERAL (SELECT count(*) AS n FROM assets a"               \
	" WHERE a.tenant_id = c.tenant_id AND a.client_id = c.id"              \
	" AND a.archived_at IS NULL) ac ON true"

static const char sql_list_name[] = LIST_COLUMNS LIST_INNER
	" lower(c.name) AS k FROM clients c" LIST_FILTERS
	" AND ($5::text IS NULL OR (lower(c.name), c.id) > ($5::text, $6::bigint))"
	" ORDER BY lower(c.name), c.id LIMIT $7::int) c" LIST_JOINS
		LIST_ASSETS_LATERAL " ORDER BY c.k, c.id";
/*
 * The list everyone opens — active clients by name, no search or tag — as
 * a statement with no optional filter, so it keeps one plan instead of
 * being planned afresh (which cost as much as running it).
 */
static const char sql_list_plain[] = LIST_COLUMNS LIST_INNER
	" lower(c.name) AS k FROM clients c"
	" WHERE c.tenant_id = app_tenant() AND c.archived_at IS NULL"
	" AND c.merged_into IS NULL AND $1::text IS NULL AND $2::text IS NULL"
	" AND $3::text IS NULL AND $4::text = 'active'"
	" AND ($5::text IS NULL OR (lower(c.name), c.id) > ($5::text, $6::bigint))"
	" ORDER BY lower(c.name), c.id LIMIT $7::int) c" LIST_JOINS
		LIST_ASSETS_LATERAL " ORDER BY c.k, c.id";
static const char sql_generic_plans[] =
	"SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";
/* Newest first: identity values are handed out in creation order. */
static const char sql_list_created[] = LIST_COLUMNS LIST_INNER
	" c.id::text AS k FROM clients c" LIST_FILTERS
	" AND ($5::bigint IS NULL OR c.id < $5::bigint)"
	" AND ($6::bigint IS NULL OR c.id < $6::bigint)"
	" ORDER BY c.id DESC LIMIT $7::int) c" LIST_JOINS LIST_ASSETS_LATERAL
	" ORDER BY c.id DESC";
/* Sorting by the count needs every client's count: one grouped pass. */
static const char sql_list_assets[] = LIST_COLUMNS LIST_INNER
	" coalesce(g.n, 0) AS n, coalesce(g.n, 0)::text AS k FROM clients c"
	" LEFT JOIN (SELECT client_id, count(*) AS n FROM assets"
	" WHERE tenant_id = app_tenant() AND archived_at IS NULL"
	" GROUP BY client_id) g ON g.client_id = c.id" LIST_FILTERS
	" AND ($5::bigint IS NULL OR coalesce(g.n, 0) < $5::bigint"
	" OR (coalesce(g.n, 0) = $5::bigint AND c.id > $6::bigint))"
	" ORDER BY coalesce(g.n, 0) DESC, c.id LIMIT $7::int) c" LIST_JOINS
	" CROSS JOIN LATERAL (SELECT c.n) ac (n) ORDER BY c.n DESC, c.id";
/*
 * The list's filters are parameters that may be NULL; a prepared
 * statement's generic plan cannot drop them, misjudges how many rows pass
 * and sorts the whole table instead of walking an index. Planned with the
 * values (for the rest of this transaction only), they fold away.
 */
static const char sql_client_history[] =
	"SELECT (SELECT count(*) FROM tickets WHERE tenant_id = app_tenant()"
	"  AND client_id = $1),"
	" (SELECT count(*) FROM contracts WHERE tenant_id = app_tenant()"
	"  AND client_id = $1)";
static const char sql_custom_plans[] =
	"SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";
/* Kept by a trigger (sql/0004): no scan of every client per page view. */
static const char sql_popular_tags[] =
	"SELECT tag, n FROM client_tag_counts WHERE tenant_id = app_tenant()"
	" AND n > 0 ORDER BY n DESC, tag LIMIT $1::int";

/* One client with everything its pages show; see enum client_col. */
static const char sql_client[] =
	"SELECT c.name, c.contact_email, c.phone, c.address, c.notes,"
	" to_json(c.tags)::text, c.billing_contact_id, b.id, b.name,"
	" c.payment_terms_days, c.tax_number, c.currency, t.currency,"
	" c.archived_at IS NOT NULL, c.merged_into, m.name,"
	" to_char(c.created_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" to_char(c.updated_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" to_char(c.archived_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" (SELECT x.domain FROM client_domains x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id AND x.is_primary),"
	" (SELECT count(*) FROM contacts x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id),"
	" (SELECT count(*) FROM sites x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id),"
	" (SELECT count(*) FROM assets x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id AND x.archived_at IS NULL),"
	" (SELECT count(*) FROM assets x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id),"
	" (SELECT count(*) FROM enrollment_tokens x"
	" WHERE x.tenant_id = c.tenant_id AND x.client_id = c.id),"
	" (SELECT count(*) FROM clients x WHERE x.tenant_id = c.tenant_id"
	" AND x.merged_into = c.id),"
	" (SELECT count(*) FROM client_domains x WHERE x.tenant_id = c.tenant_id"
	" AND x.client_id = c.id),"
	" (SELECT count(*) FROM client_links x WHERE x.tenant_id = c.tenant_id"
	" AND (x.client_a = c.id OR x.client_b = c.id)),"
	" to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	" FROM clients c JOIN tenants t ON t.id = c.tenant_id"
	" LEFT JOIN LATERAL (SELECT x.id, x.name FROM contacts x"
	" WHERE x.tenant_id = c.tenant_id AND x.client_id = c.id"
	" AND (x.id = c.billing_contact_id"
	" OR (c.billing_contact_id IS NULL AND x.is_billing))"
	" ORDER BY x.id LIMIT 1) b ON true"
	" LEFT JOIN clients m ON m.tenant_id = c.tenant_id AND m.id = c.merged_into"
	" WHERE c.tenant_id = app_tenant() AND c.id = $1";
static const char sql_domains[] =
	"SELECT id, domain, is_primary FROM client_domains"
	" WHERE tenant_id = app_tenant() AND client_id = $1"
	" ORDER BY is_primary DESC, domain";
static const char sql_asset_kinds[] =
	"SELECT a.kind, coalesce(k.name, initcap(replace(a.kind, '_', ' '))),"
	" count(*) FILTER (WHERE a.billable), count(*) FILTER (WHERE NOT a.billable)"
	" FROM assets a LEFT JOIN asset_kinds k ON k.tenant_id = a.tenant_id"
	" AND k.key = a.kind"
	" WHERE a.tenant_id = app_tenant() AND a.client_id = $1"
	" AND a.archived_at IS NULL GROUP BY a.kind, k.name ORDER BY 2, 1";
static const char sql_related[] =
	"SELECT o.id, o.name, o.archived_at IS NOT NULL OR o.merged_into IS NOT NULL"
	" FROM client_links l JOIN clients o ON o.tenant_id = l.tenant_id"
	" AND o.id = CASE WHEN l.client_a = $1 THEN l.client_b ELSE l.client_a END"
	" WHERE l.tenant_id = app_tenant() AND (l.client_a = $1 OR l.client_b = $1)"
	" ORDER BY lower(o.name), o.id";
/* Active clients this one could be linked to: $2 a LIKE-escaped filter. */
static const char sql_related_choices[] =
	"SELECT c.id, c.name FROM clients c WHERE c.tenant_id = app_tenant()"
	" AND c.archived_at IS NULL AND c.merged_into IS NULL AND c.id <> $1"
	" AND NOT EXISTS (SELECT 1 FROM client_links l"
	" WHERE l.tenant_id = c.tenant_id"
	" AND l.client_a = least(c.id, $1) AND l.client_b = greatest(c.id, $1))"
	" AND ($2::text IS NULL OR c.name ILIKE ('%' || $2 || '%') ESCAPE '\\')"
	" ORDER BY lower(c.name), c.id LIMIT $3::int";
static const char sql_billing_choices[] =
	"SELECT id, name, email FROM contacts WHERE tenant_id = app_tenant()"
	" AND client_id = $1 ORDER BY lower(name), id";

static const char sql_name_taken[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND lower(name) = lower($1) AND archived_at IS NULL"
	" AND merged_into IS NULL AND id <> $2::bigint LIMIT 1";
static const char sql_domain_owner[] =
	"SELECT d.id, d.client_id, c.name, d.is_primary FROM client_domains d"
	" JOIN clients c ON c.tenant_id = d.tenant_id AND c.id = d.client_id"
	" WHERE d.tenant_id = app_tenant() AND d.domain = $1";
static const char sql_contact_of[] =
	"SELECT name FROM contacts WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND id = $2";
static const char sql_client_new[] =
	"INSERT INTO clients (tenant_id, name, contact_email, phone, address,"
	" notes, tags, payment_terms_days, tax_number, currency,"
	" billing_contact_id) VALUES (app_tenant(), $1, $2, $3, $4, $5,"
	" $6::text[], $7::int, $8, $9, $10) RETURNING id";
static const char sql_client_update[] =
	"UPDATE clients SET name = $2, contact_email = $3, phone = $4,"
	" address = $5, notes = $6, tags = $7::text[],"
	" payment_terms_days = $8::int, tax_number = $9, currency = $10,"
	" billing_contact_id = $11, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_domain_new[] =
	"INSERT INTO client_domains (tenant_id, client_id, domain, is_primary)"
	" VALUES (app_tenant(), $1, $2, $3::boolean) RETURNING id";
static const char sql_domain_unprimary[] =
	"UPDATE client_domains SET is_primary = false"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND is_primary";
static const char sql_domain_primary[] =
	"UPDATE client_domains SET is_primary = true"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND id = $2";
static const char sql_domain_get[] =
	"SELECT domain, is_primary FROM client_domains"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND id = $2";
static const char sql_domain_delete[] =
	"DELETE FROM client_domains WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND id = $2";
static const char sql_archive[] =
	"UPDATE clients SET archived_at = now(), updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1 AND archived_at IS NULL";
static const char sql_restore[] =
	"UPDATE clients SET archived_at = NULL, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1 AND merged_into IS NULL";
static const char sql_delete_contacts[] =
	"DELETE FROM contacts WHERE tenant_id = app_tenant() AND client_id = $1";
static const char sql_delete_sites[] =
	"DELETE FROM sites WHERE tenant_id = app_tenant() AND client_id = $1";
static const char sql_delete_domains[] =
	"DELETE FROM client_domains WHERE tenant_id = app_tenant()"
	" AND client_id = $1";
static const char sql_delete_links[] =
	"DELETE FROM client_links WHERE tenant_id = app_tenant()"
	" AND (client_a = $1 OR client_b = $1)";
static const char sql_delete_tokens[] =
	"DELETE FROM enrollment_tokens WHERE tenant_id = app_tenant()"
	" AND client_id = $1";
static const char sql_delete_client[] =
	"DELETE FROM clients WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_link_target[] =
	"SELECT name, archived_at IS NOT NULL OR merged_into IS NOT NULL"
	" FROM clients WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_link_new[] =
	"INSERT INTO client_links (tenant_id, client_a, client_b)"
	" VALUES (app_tenant(), least($1::bigint, $2::bigint),"
	" greatest($1::bigint, $2::bigint)) ON CONFLICT DO NOTHING";
static const char sql_link_delete[] =
	"DELETE FROM client_links WHERE tenant_id = app_tenant()"
	" AND client_a = least($1::bigint, $2::bigint)"
	" AND client_b = greatest($1::bigint, $2::bigint)";

/*
 * What both clients of a merge have in common, $1 and $2 either way
 * round: contacts with the same email, sites with the same name, assets
 * with the same RMM id.
 */
static const char sql_same_contacts[] =
	"SELECT x.email, x.name, y.name FROM contacts x JOIN contacts y"
	" ON y.tenant_id = x.tenant_id AND y.client_id = $2"
	" AND lower(y.email) = lower(x.email)"
	" WHERE x.tenant_id = app_tenant() AND x.client_id = $1 AND x.email <> ''"
	" ORDER BY lower(x.email)";
static const char sql_same_sites[] =
	"SELECT x.name, y.name FROM sites x JOIN sites y"
	" ON y.tenant_id = x.tenant_id AND y.client_id = $2"
	" AND lower(y.name) = lower(x.name)"
	" WHERE x.tenant_id = app_tenant() AND x.client_id = $1"
	" ORDER BY lower(x.name)";
static const char sql_same_assets[] =
	"SELECT x.external_id, x.name, y.name FROM assets x JOIN assets y"
	" ON y.tenant_id = x.tenant_id AND y.client_id = $2"
	" AND y.external_id = x.external_id"
	" WHERE x.tenant_id = app_tenant() AND x.client_id = $1"
	" ORDER BY x.external_id";

/* The merge itself: $1 is the client kept, $2 the one merged into it. */
static const char sql_merge_lock[] =
	"SELECT id, name, archived_at IS NOT NULL, merged_into IS NOT NULL"
	" FROM clients WHERE tenant_id = app_tenant() AND id IN ($1, $2)"
	" ORDER BY id FOR UPDATE";
static const char sql_merge_contact_roles[] =
	"UPDATE contacts k SET is_billing = k.is_billing OR o.is_billing,"
	" is_portal = k.is_portal OR o.is_portal,"
	" is_technical = k.is_technical OR o.is_technical,"
	" is_vip = k.is_vip OR o.is_vip,"
	" portal_granted_at = coalesce(k.portal_granted_at, o.portal_granted_at)"
	" FROM contacts o WHERE k.tenant_id = app_tenant()"
	" AND o.tenant_id = app_tenant() AND k.client_id = $1"
	" AND o.client_id = $2 AND k.email <> ''"
	" AND lower(k.email) = lower(o.email)"
	" RETURNING k.id, o.id, k.email, k.name";
/* The kept client takes over the other's billing contact if it has none. */
static const char sql_merge_billing[] =
	"UPDATE clients k SET billing_contact_id = coalesce("
	"(SELECT kc.id FROM contacts oc JOIN contacts kc"
	" ON kc.tenant_id = oc.tenant_id AND kc.client_id = $1"
	" AND kc.email <> '' AND lower(kc.email) = lower(oc.email)"
	" WHERE oc.tenant_id = app_tenant() AND oc.id = o.billing_contact_id),"
	" o.billing_contact_id)"
	" FROM clients o WHERE k.tenant_id = app_tenant() AND k.id = $1"
	" AND o.tenant_id = app_tenant() AND o.id = $2"
	" AND k.billing_contact_id IS NULL AND o.billing_contact_id IS NOT NULL";
static const char sql_merge_contact_drop[] =
	"DELETE FROM contacts o USING contacts k WHERE o.tenant_id = app_tenant()"
	" AND k.tenant_id = app_tenant() AND o.client_id = $2"
	" AND k.client_id = $1 AND o.email <> ''"
	" AND lower(o.email) = lower(k.email)";
static const char sql_merge_contact_move[] =
	"UPDATE contacts SET client_id = $1 WHERE tenant_id = app_tenant()"
	" AND client_id = $2";
static const char sql_merge_site_pairs[] =
	"SELECT k.id, o.id, k.name, (SELECT count(*) FROM assets a"
	" WHERE a.tenant_id = o.tenant_id AND a.site_id = o.id)"
	" FROM sites o JOIN sites k ON k.tenant_id = o.tenant_id"
	" AND k.client_id = $1 AND lower(k.name) = lower(o.name)"
	" WHERE o.tenant_id = app_tenant() AND o.client_id = $2"
	" ORDER BY lower(k.name)";
static const char sql_merge_site_address[] =
	"UPDATE sites k SET address = o.address FROM sites o"
	" WHERE k.tenant_id = app_tenant() AND o.tenant_id = app_tenant()"
	" AND k.client_id = $1 AND o.client_id = $2"
	" AND lower(k.name) = lower(o.name) AND k.address = ''";
static const char sql_merge_site_assets[] =
	"UPDATE assets a SET site_id = k.id, updated_at = now()"
	" FROM sites o JOIN sites k ON k.tenant_id = o.tenant_id"
	" AND k.client_id = $1 AND lower(k.name) = lower(o.name)"
	" WHERE a.tenant_id = app_tenant() AND o.tenant_id = app_tenant()"
	" AND o.client_id = $2 AND a.site_id = o.id";
static const char sql_merge_site_drop[] =
	"DELETE FROM sites o USING sites k WHERE o.tenant_id = app_tenant()"
	" AND k.tenant_id = app_tenant() AND o.client_id = $2"
	" AND k.client_id = $1 AND lower(o.name) = lower(k.name)";
static const char sql_merge_site_move[] =
	"UPDATE sites SET client_id = $1 WHERE tenant_id = app_tenant()"
	" AND client_id = $2";
/*
 * The same RMM id on both sides is one machine enrolled twice: the kept
 * client's asset goes on receiving the agent's updates, the other copy is
 * archived (so it is not billed twice) and loses the id.
 */
static const char sql_merge_asset_dups[] =
	"UPDATE assets o SET external_id = NULL,"
	" archived_at = coalesce(o.archived_at, now()), updated_at = now()"
	" FROM assets k WHERE o.tenant_id = app_tenant()"
	" AND k.tenant_id = app_tenant() AND o.client_id = $2"
	" AND k.client_id = $1 AND o.external_id = k.external_id"
	" RETURNING o.id, o.name, k.id, k.external_id";
static const char sql_merge_asset_move[] =
	"UPDATE assets SET client_id = $1, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND client_id = $2";
static const char sql_merge_domain_unprimary[] =
	"UPDATE client_domains SET is_primary = false"
	" WHERE tenant_id = app_tenant() AND client_id = $2 AND is_primary"
	" AND EXISTS (SELECT 1 FROM client_domains k"
	" WHERE k.tenant_id = app_tenant() AND k.client_id = $1 AND k.is_primary)"
	" RETURNING domain";
static const char sql_merge_domain_move[] =
	"UPDATE client_domains SET client_id = $1 WHERE tenant_id = app_tenant()"
	" AND client_id = $2";
static const char sql_merge_link_copy[] =
	"INSERT INTO client_links (tenant_id, client_a, client_b)"
	" SELECT app_tenant(), least($1::bigint, x), greatest($1::bigint, x)"
	" FROM (SELECT CASE WHEN client_a = $2 THEN client_b ELSE client_a END"
	" AS x FROM client_links WHERE tenant_id = app_tenant()"
	" AND (client_a = $2 OR client_b = $2)) l WHERE x <> $1"
	" ON CONFLICT DO NOTHING";
static const char sql_merge_link_drop[] =
	"DELETE FROM client_links WHERE tenant_id = app_tenant()"
	" AND (client_a = $2 OR client_b = $2) AND $1::bigint IS NOT NULL";
static const char sql_merge_token_move[] =
	"UPDATE enrollment_tokens SET client_id = $1"
	" WHERE tenant_id = app_tenant() AND client_id = $2";
/* Clients merged earlier into the other now point at the survivor. */
static const char sql_merge_chain[] =
	"UPDATE clients SET merged_into = $1 WHERE tenant_id = app_tenant()"
	" AND merged_into = $2";
static const char sql_merge_close[] =
	"UPDATE clients SET archived_at = now(), merged_into = $1,"
	" updated_at = now() WHERE tenant_id = app_tenant() AND id = $2";

/*
 * The audit rows about a client: those on the client itself, those whose
 * snapshots name it as their client_id (contacts, sites, assets, tokens)
 * and links and merges that name it from the other side. Newest first,
 * walking the (tenant_id, id) key backwards. $1 id, $2 id as text.
 */
static const char sql_activity[] =
	"SELECT a.id, to_char(a.at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" CASE WHEN u.id IS NOT NULL THEN u.name"
	" WHEN k.id IS NOT NULL THEN 'API key ' || k.name ELSE a.actor END,"
	" a.action, coalesce(a.object_type, ''), a.object_id, a.request_id,"
	" coalesce(a.before::text, ''), coalesce(a.after::text, '')"
	" FROM audit_log a JOIN tenants t ON t.id = a.tenant_id"
	" LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.actor_user_id"
	" LEFT JOIN api_keys k ON k.tenant_id = a.tenant_id"
	" AND k.id = a.actor_apikey_id"
	" WHERE a.tenant_id = app_tenant()"
	" AND ((a.object_type = 'client' AND a.object_id = $1::bigint)"
	" OR a.after->>'client_id' = $2::text OR a.before->>'client_id' = $2::text"
	" OR (a.object_type = 'client' AND (a.after->>'related_id' = $2::text"
	" OR a.before->>'related_id' = $2::text OR a.after->>'merged' = $2::text)))"
	" AND ($3::bigint IS NULL OR a.id < $3::bigint)"
	" ORDER BY a.id DESC LIMIT $4::int";

/* Columns of sql_client. */
enum client_col {
	C_NAME,
	C_EMAIL,
	C_PHONE,
	C_ADDRESS,
	C_NOTES,
	C_TAGS,
	C_BILLING_ID,
	C_BILLING_SHOWN_ID,
	C_BILLING_SHOWN_NAME,
	C_TERMS,
	C_TAX,
	C_CURRENCY,
	C_TENANT_CURRENCY,
	C_ARCHIVED,
	C_MERGED_INTO,
	C_MERGED_NAME,
	C_CREATED,
	C_UPDATED,
	C_ARCHIVED_AT,
	C_DOMAIN,
	C_N_CONTACTS,
	C_N_SITES,
	C_N_ASSETS,
	C_N_ASSETS_ALL,
	C_N_TOKENS,
	C_N_MERGED_IN,
	C_N_DOMAINS,
	C_N_RELATED,
	C_CREATED_ISO,
};

enum list_sort { SORT_NAME, SORT_CREATED, SORT_ASSETS, SORT__MAX };

static const struct {
	const char *key;
	const char *label;
	const char *sql;
} sorts[SORT__MAX] = {
	{ "name", "Name", sql_list_name },
	{ "created", "Newest", sql_list_created },
	{ "assets", "Most assets", sql_list_assets },
};

enum list_status { STATUS_ACTIVE, STATUS_ARCHIVED, STATUS_ALL, STATUS__MAX };

static const struct {
	const char *key;
	const char *label;
} statuses[STATUS__MAX] = {
	{ "active", "Active" },
	{ "archived", "Archived" },
	{ "all", "All" },
};

/* The fields of the client form, refilled after an error. */
static const char *const client_fields[] = { "name",
					     "domain",
					     "contact_email",
					     "phone",
					     "address",
					     "notes",
					     "tags",
					     "payment_terms_days",
					     "tax_number",
					     "currency",
					     "billing_contact_id",
					     NULL };

/* A client as typed (or as stored, for fields an update does not send). */
struct client_input {
	const char *name;
	const char *domain; /* the primary domain, "" for none */
	const char *contact_email;
	const char *phone;
	const char *address;
	const char *notes;
	json_t *tags; /* normalised; owned by the request */
	const char *terms;
	const char *tax_number;
	const char *currency;	/* NULL: the tenant's */
	const char *billing_id; /* NULL: none */
	int64_t domain_row;	/* the domain's row if the client has it */
};

/* What the active filters of the list are. */
struct list_filter {
	const char *q;
	const char *tag;
	enum list_status status;
	enum list_sort sort;
};

/* One merge's tally, for the audit log, the flash and the API. */
struct merge_tally {
	json_t *conflicts;
	long contacts, sites, assets, domains, links, tokens;
};

typedef enum td_err (*page_fn)(struct req *);

static json_int_t int_at(const PGresult *res, int row, int col)
{
	return (json_int_t)db_int(res, row, col);
}

/* Text, or null when empty: mustache takes "" for true. */
static json_t *text_or_null(const char *s)
{
	return s == NULL || *s == '\0' ? json_null() : json_string(s);
}

static json_t *col_text(const PGresult *res, int row, int col)
{
	return text_or_null(db_text(res, row, col));
}

static json_t *col_id(const PGresult *res, int row, int col)
{
	return db_isnull(res, row, col) ? json_null() :
					  json_integer(int_at(res, row, col));
}

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* What an email address needs: one '@' with something either side. */
static bool email_ok(const char *s)
{
	const char *at = strchr(s, '@'), *p;

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	if (strlen(s) > 254)
		return false;
	for (p = s; *p != '\0'; p++)
		if (isspace((unsigned char)*p))
			return false;
	return true;
}

/*
 * What client_domains' CHECK accepts — dot-separated labels of [a-z0-9-],
 * not starting or ending with '-', at least two — within DNS's limits.
 */
static bool domain_ok(const char *s)
{
	size_t labels = 0, len = 0, total = strlen(s);
	const char *p;

	if (total == 0 || total > 253)
		return false;
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (len == 0 || len > 63 || p[-1] == '-')
				return false;
			labels++;
			len = 0;
			if (*p == '\0')
				break;
			continue;
		}
		if (len == 0 && *p == '-')
			return false;
		if (!is_digit(*p) && !(*p >= 'a' && *p <= 'z') && *p != '-')
			return false;
		len++;
	}
	return labels >= 2;
}

static char *ascii_lower(struct req *r, const char *s)
{
	char *out = arena_strdup(r->arena, s), *p;

	for (p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static char *ascii_upper(struct req *r, const char *s)
{
	char *out = arena_strdup(r->arena, s), *p;

	for (p = out; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	return out;
}

/* s with LIKE's wildcards and escape character made literal. */
static const char *like_escape(struct req *r, const char *s)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, strlen(s) + 8);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '%' || *s == '_')
			sbuf_addch(&sb, '\\');
		sbuf_addch(&sb, *s);
	}
	return sbuf_cstr(&sb);
}

/* A query parameter, NULL when absent or empty. */
static const char *query_param(struct req *r, const char *name)
{
	const char *v = http_params_get(&r->query_params, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static bool is_manager(const struct req *r)
{
	return (r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)) != 0;
}

/* The rows a write changed. */
static long changed(PGresult *res)
{
	return strtol(PQcmdTuples(res), NULL, 10);
}

static enum td_err exec_count(struct req *r, const char *sql, int n,
			      const char *const *params, long *count)
{
	PGresult *res;
	enum td_err err = req_query(r, sql, n, params, &res);

	if (err == TD_OK && count != NULL)
		*count = changed(res);
	return err;
}

/* JSON text from PostgreSQL (to_json), or an empty array if unreadable. */
static json_t *json_from(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_array();
}

static const char *client_url(struct req *r, int64_t id)
{
	return arena_printf(r->arena, "/clients/%" PRId64, id);
}

static void page(struct req *r, const char *title, const char *view)
{
	json_t *v = req_view(r);

	json_object_set_new(v, "title", json_string(title));
	json_object_set_new(v, "can_manage", json_boolean(is_manager(r)));
	r->view_name = view;
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/* A request that conflicts with the state: 409, on the page for browsers. */
static enum td_err refuse(struct req *r, page_fn show, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json || show == NULL)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = show(r);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = 409;
	return TD_OK;
}

/*
 * A form with errors on a page that shows more than the form: the API
 * gets 422; a browser gets the page again with what was typed and the
 * messages.
 */
static enum td_err reject(struct req *r, page_fn show, const char *view,
			  const char *const *keep)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, view, keep);
	err = show(r);
	if (err != TD_OK)
		return err;
	return form_reject(r, view, keep);
}

/* "/clients?..." with the filters that differ from the defaults. */
static const char *list_url(struct req *r, const struct list_filter *f)
{
	struct sbuf sb;
	char sep = '?';

	sbuf_init(&sb, r->arena, 64);
	sbuf_adds(&sb, "/clients");
	if (f->q != NULL) {
		sbuf_adds(&sb, "?q=");
		http_url_encode(&sb, f->q);
		sep = '&';
	}
	if (f->tag != NULL) {
		sbuf_addch(&sb, sep);
		sbuf_adds(&sb, "tag=");
		http_url_encode(&sb, f->tag);
		sep = '&';
	}
	if (f->status != STATUS_ACTIVE) {
		sbuf_addch(&sb, sep);
		sbuf_addf(&sb, "status=%s", statuses[f->status].key);
		sep = '&';
	}
	if (f->sort != SORT_NAME) {
		sbuf_addch(&sb, sep);
		sbuf_addf(&sb, "sort=%s", sorts[f->sort].key);
	}
	return sbuf_cstr(&sb);
}

static const char *tag_url(struct req *r, const char *tag)
{
	struct list_filter f = { NULL, tag, STATUS_ACTIVE, SORT_NAME };

	return list_url(r, &f);
}

/* Tags as links to the list filtered by each: [{name, href}]. */
static json_t *tag_links(struct req *r, json_t *tags)
{
	json_t *out = json_array(), *t;
	size_t i;

	json_array_foreach(tags, i, t)
	{
		if (!json_is_string(t))
			continue;
		json_array_append_new(
			out,
			json_pack("{s:s, s:s}", "name", json_string_value(t),
				  "href", tag_url(r, json_string_value(t))));
	}
	return out;
}

/* Tags as the form shows them: "a, b, c". */
static const char *tags_text(struct req *r, json_t *tags)
{
	struct sbuf sb;
	json_t *t;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	json_array_foreach(tags, i, t)
	{
		if (!json_is_string(t))
			continue;
		if (sb.len > 0)
			sbuf_adds(&sb, ", ");
		sbuf_adds(&sb, json_string_value(t));
	}
	return sbuf_cstr(&sb);
}

/* A text[] parameter: {"a","b"} with quotes and backslashes escaped. */
static const char *array_literal(struct req *r, json_t *list)
{
	struct sbuf sb;
	const char *s;
	json_t *t;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	sbuf_addch(&sb, '{');
	json_array_foreach(list, i, t)
	{
		if (i > 0)
			sbuf_addch(&sb, ',');
		sbuf_addch(&sb, '"');
		for (s = json_string_value(t); *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				sbuf_addch(&sb, '\\');
			sbuf_addch(&sb, *s);
		}
		sbuf_addch(&sb, '"');
	}
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

/* The client's row with everything its pages show (TD_ENOENT if none). */
static enum td_err load_client(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err = req_query(r, sql_client, 1, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no client %" PRId64, id);
	return TD_OK;
}

/*
 * The client as the API and the pages see it; optional text is null when
 * empty. Counts: active assets (archived_assets apart), open tickets 0
 * until tickets exist.
 */
static json_t *client_record(struct req *r, const PGresult *res, int64_t id)
{
	json_t *o = json_object(), *tags = json_from(db_text(res, 0, C_TAGS));
	json_t *billing = json_null(), *merged = json_null();
	json_int_t assets = int_at(res, 0, C_N_ASSETS);

	if (!db_isnull(res, 0, C_BILLING_SHOWN_ID))
		billing = json_pack("{s:I, s:s}", "id",
				    int_at(res, 0, C_BILLING_SHOWN_ID), "name",
				    db_text(res, 0, C_BILLING_SHOWN_NAME));
	if (!db_isnull(res, 0, C_MERGED_INTO))
		merged = json_pack(
			"{s:I, s:s, s:s}", "id", int_at(res, 0, C_MERGED_INTO),
			"name", db_text(res, 0, C_MERGED_NAME), "url",
			client_url(r, db_int(res, 0, C_MERGED_INTO)));
	json_object_set_new(o, "id", json_integer((json_int_t)id));
	json_object_set_new(o, "name", json_string(db_text(res, 0, C_NAME)));
	json_object_set_new(o, "url", json_string(client_url(r, id)));
	json_object_set_new(o, "domain", col_text(res, 0, C_DOMAIN));
	json_object_set_new(o, "contact_email", col_text(res, 0, C_EMAIL));
	json_object_set_new(o, "phone", col_text(res, 0, C_PHONE));
	json_object_set_new(o, "address", col_text(res, 0, C_ADDRESS));
	json_object_set_new(o, "notes", col_text(res, 0, C_NOTES));
	json_object_set_new(o, "tag_links", tag_links(r, tags));
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "billing_contact_id",
			    col_id(res, 0, C_BILLING_ID));
	json_object_set_new(o, "billing_contact", billing);
	json_object_set_new(o, "payment_terms_days",
			    json_integer(int_at(res, 0, C_TERMS)));
	json_object_set_new(o, "tax_number", col_text(res, 0, C_TAX));
	json_object_set_new(o, "currency", col_text(res, 0, C_CURRENCY));
	json_object_set_new(
		o, "billing_currency",
		json_string(db_isnull(res, 0, C_CURRENCY) ?
				    db_text(res, 0, C_TENANT_CURRENCY) :
				    db_text(res, 0, C_CURRENCY)));
	json_object_set_new(o, "archived",
			    json_boolean(db_bool(res, 0, C_ARCHIVED)));
	json_object_set_new(o, "archived_at", col_text(res, 0, C_ARCHIVED_AT));
	json_object_set_new(o, "merged",
			    json_boolean(!db_isnull(res, 0, C_MERGED_INTO)));
	json_object_set_new(o, "merged_into", merged);
	json_object_set_new(o, "created",
			    json_string(db_text(res, 0, C_CREATED)));
	json_object_set_new(o, "created_at",
			    json_string(db_text(res, 0, C_CREATED_ISO)));
	json_object_set_new(o, "updated",
			    json_string(db_text(res, 0, C_UPDATED)));
	json_object_set_new(
		o, "counts",
		json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			  "open_tickets", 0, "contacts",
			  int_at(res, 0, C_N_CONTACTS), "sites",
			  int_at(res, 0, C_N_SITES), "assets", assets,
			  "archived_assets",
			  int_at(res, 0, C_N_ASSETS_ALL) - assets, "domains",
			  int_at(res, 0, C_N_DOMAINS), "related",
			  int_at(res, 0, C_N_RELATED), "tokens",
			  int_at(res, 0, C_N_TOKENS)));
	return o;
}

/* The fields a person edits, for the audit log's before and after. */
static json_t *client_snapshot(struct req *r, const PGresult *res, int64_t id)
{
	json_t *o = json_object();

	req_own_json(r, o);
	json_object_set_new(o, "id", json_integer((json_int_t)id));
	json_object_set_new(o, "name", json_string(db_text(res, 0, C_NAME)));
	json_object_set_new(o, "domain", col_text(res, 0, C_DOMAIN));
	json_object_set_new(o, "contact_email", col_text(res, 0, C_EMAIL));
	json_object_set_new(o, "phone", col_text(res, 0, C_PHONE));
	json_object_set_new(o, "address", col_text(res, 0, C_ADDRESS));
	json_object_set_new(o, "notes", col_text(res, 0, C_NOTES));
	json_object_set_new(o, "tags", json_from(db_text(res, 0, C_TAGS)));
	json_object_set_new(o, "billing_contact_id",
			    col_id(res, 0, C_BILLING_ID));
	json_object_set_new(o, "payment_terms_days",
			    json_integer(int_at(res, 0, C_TERMS)));
	json_object_set_new(o, "tax_number", col_text(res, 0, C_TAX));
	json_object_set_new(o, "currency", col_text(res, 0, C_CURRENCY));
	json_object_set_new(o, "archived",
			    json_boolean(db_bool(res, 0, C_ARCHIVED)));
	json_object_set_new(o, "merged_into", col_id(res, 0, C_MERGED_INTO));
	return o;
}

static enum td_err add_domains(struct req *r, int64_t id, json_t *o)
{
	const char *params[1] = { req_id(r, id) };
	json_t *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(o, "domains", list);
	err = req_query(r, sql_domains, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(list,
				      json_pack("{s:I, s:s, s:b}", "id",
						int_at(res, i, 0), "domain",
						db_text(res, i, 1), "primary",
						db_bool(res, i, 2)));
	return TD_OK;
}

/* Active assets by kind, billable and not. */
static enum td_err add_asset_counts(struct req *r, int64_t id, json_t *o)
{
	const char *params[1] = { req_id(r, id) };
	json_t *kinds = json_array();
	json_int_t yes, no, billable = 0, other = 0;
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_asset_kinds, 1, params, &res);
	if (err != TD_OK) {
		json_decref(kinds);
		return err;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		yes = int_at(res, i, 2);
		no = int_at(res, i, 3);
		billable += yes;
		other += no;
		json_array_append_new(kinds,
				      json_pack("{s:s, s:s, s:I, s:I, s:I}",
						"kind", db_text(res, i, 0),
						"label", db_text(res, i, 1),
						"billable", yes, "not_billable",
						no, "total", yes + no));
	}
	json_object_set_new(o, "asset_counts",
			    json_pack("{s:I, s:I, s:I, s:o}", "total",
				      billable + other, "billable", billable,
				      "not_billable", other, "kinds", kinds));
	return TD_OK;
}

static enum td_err add_related(struct req *r, int64_t id, json_t *o)
{
	const char *params[1] = { req_id(r, id) };
	json_t *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(o, "related", list);
	err = req_query(r, sql_related, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:b}", "id",
				  int_at(res, i, 0), "name", db_text(res, i, 1),
				  "url", client_url(r, db_int(res, i, 0)),
				  "archived", db_bool(res, i, 2)));
	return TD_OK;
}

/*
 * The whole client, as GET /clients/:id shows it: the record with its
 * domains, asset counts by kind and related clients. *out is the caller's.
 */
static enum td_err client_full(struct req *r, int64_t id, json_t **out,
			       PGresult **row)
{
	PGresult *res;
	enum td_err err;
	json_t *o;

	*out = NULL;
	err = load_client(r, id, &res);
	if (row != NULL)
		*row = res;
	if (err != TD_OK)
		return err;
	o = client_record(r, res, id);
	err = add_domains(r, id, o);
	if (err == TD_OK)
		err = add_asset_counts(r, id, o);
	if (err == TD_OK)
		err = add_related(r, id, o);
	if (err != TD_OK) {
		json_decref(o);
		return err;
	}
	*out = o;
	return TD_OK;
}

/*
 * Puts the full client into the view's "client" (beside clientctx's keys);
 * row (may be NULL) gets its sql_client row.
 */
static enum td_err view_client(struct req *r, int64_t id, PGresult **row)
{
	json_t *v = req_view(r), *o, *cur;
	enum td_err err;

	err = client_full(r, id, &o, row);
	if (err != TD_OK)
		return err;
	cur = json_object_get(v, "client");
	if (json_is_object(cur)) {
		json_object_update(cur, o);
		json_decref(o);
	} else {
		json_object_set_new(v, "client", o);
	}
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* The list                                                             */

/* Picks a value from a fixed set of keys; -1 for anything else. */
static int pick(const char *s, const char *const *keys, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, keys[i]))
			return i;
	return -1;
}

/*
 * The ?after= cursor, "<id>.<sort key>" as a previous page made it; the
 * key must look like what that sort order writes.
 */
static bool parse_cursor(struct req *r, const char *s, enum list_sort sort,
			 const char **key, const char **id)
{
	const char *dot = strchr(s, '.'), *p;
	int64_t v;

	if (dot == NULL)
		return false;
	if (!http_parse_id(arena_strndup(r->arena, s, (size_t)(dot - s)), &v))
		return false;
	*id = req_id(r, v);
	*key = dot + 1;
	if (strlen(*key) > CURSOR_KEY_MAX)
		return false;
	switch (sort) {
	case SORT_NAME:
		return true;
	case SORT_CREATED:
		return http_parse_id(*key, &v);
	case SORT_ASSETS:
		if (**key == '\0' || strlen(*key) > 18)
			return false;
		for (p = *key; *p != '\0'; p++)
			if (!is_digit(*p))
				return false;
		return true;
	case SORT__MAX:
	default:
		abort();
	}
}

static json_t *list_row(struct req *r, const PGresult *res, int i)
{
	json_t *tags = json_from(db_text(res, i, 3));

	return json_pack(
		"{s:I, s:s, s:s, s:o, s:o, s:o, s:i, s:I, s:I, s:b,"
		" s:b}",
		"id", int_at(res, i, 0), "name", db_text(res, i, 1), "url",
		client_url(r, db_int(res, i, 0)), "domain", col_text(res, i, 2),
		"tag_links", tag_links(r, tags), "tags", tags, "open_tickets",
		0, "assets", int_at(res, i, 4), "contacts", int_at(res, i, 5),
		"archived", db_bool(res, i, 6), "merged", db_bool(res, i, 7));
}

/* Chips for status and tags, and the column headers' sort links. */
static enum td_err list_controls(struct req *r, const struct list_filter *f)
{
	json_t *v = req_view(r), *chips = json_array(), *tags = json_array();
	json_t *sortl = json_object();
	struct list_filter g;
	const char *params[1];
	bool seen = false;
	PGresult *res;
	enum td_err err;
	int i, n;

	for (i = 0; i < STATUS__MAX; i++) {
		g = *f;
		g.status = (enum list_status)i;
		json_array_append_new(
			chips,
			json_pack("{s:s, s:s, s:b}", "label", statuses[i].label,
				  "href", list_url(r, &g), "on",
				  f->status == (enum list_status)i));
	}
	json_object_set_new(v, "status_chips", chips);
	for (i = 0; i < SORT__MAX; i++) {
		g = *f;
		g.sort = (enum list_sort)i;
		json_object_set_new(sortl, sorts[i].key,
				    json_pack("{s:s, s:s, s:b}", "label",
					      sorts[i].label, "href",
					      list_url(r, &g), "on",
					      f->sort == (enum list_sort)i));
	}
	json_object_set_new(v, "sort", sortl);
	json_object_set_new(v, "tag_chips", tags);
	params[0] = arena_printf(r->arena, "%d", POPULAR_TAGS);
	err = req_query(r, sql_popular_tags, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		g = *f;
		g.tag = f->tag != NULL && !strcmp(f->tag, db_text(res, i, 0)) ?
				NULL :
				db_text(res, i, 0);
		seen = seen || g.tag == NULL;
		json_array_append_new(
			tags, json_pack("{s:s, s:I, s:s, s:b}", "name",
					db_text(res, i, 0), "count",
					int_at(res, i, 1), "href",
					list_url(r, &g), "on", g.tag == NULL));
	}
	if (f->tag != NULL && !seen) {
		g = *f;
		g.tag = NULL;
		json_array_append_new(tags,
				      json_pack("{s:s, s:i, s:s, s:b}", "name",
						f->tag, "count", 0, "href",
						list_url(r, &g), "on", true));
	}
	json_object_set_new(v, "has_tag_chips",
			    json_boolean(json_array_size(tags) > 0));
	return TD_OK;
}

/*
 * GET /clients — ?q, ?tag, ?status=active|archived|all, ?sort=name|
 * created|assets, ?after (cursor), ?limit. 422 for an unknown status or
 * sort or a cursor this list did not make.
 */
enum td_err clients_list(struct req *r)
{
	static const char *const status_keys[] = { "active", "archived",
						   "all" };
	static const char *const sort_keys[] = { "name", "created", "assets" };
	const char *status = query_param(r, "status"), *sort;
	const char *after = clientctx_after(r), *params[7];
	bool plain;
	const char *key = NULL, *cid = NULL, *next;
	struct list_filter f = { NULL, NULL, STATUS_ACTIVE, SORT_NAME };
	json_t *v = req_view(r), *rows = json_array();
	int limit = clientctx_limit(r), i, n, k;
	PGresult *res;
	enum td_err err;

	json_object_set_new(v, "clients", rows);
	json_object_set_new(v, "next", json_null());
	sort = query_param(r, "sort");
	f.q = query_param(r, "q");
	f.tag = query_param(r, "tag");
	if (f.tag != NULL)
		f.tag = ascii_lower(r, f.tag);
	if (status != NULL) {
		k = pick(status, status_keys, STATUS__MAX);
		if (k < 0)
			form_error(r, "status", "show active, archived or all");
		else
			f.status = (enum list_status)k;
	}
	if (sort != NULL) {
		k = pick(sort, sort_keys, SORT__MAX);
		if (k < 0)
			form_error(r, "sort",
				   "sort by name, created or assets");
		else
			f.sort = (enum list_sort)k;
	}
	if (after != NULL && !form_has_errors(r) &&
	    !parse_cursor(r, after, f.sort, &key, &cid))
		form_error(r, "after", "not a valid position in the list");
	json_object_set_new(v, "filter",
			    json_pack("{s:s?, s:s?, s:s, s:s}", "q", f.q, "tag",
				      f.tag, "status", statuses[f.status].key,
				      "sort", sorts[f.sort].key));
	json_object_set_new(v, "filtered",
			    json_boolean(f.q != NULL || f.tag != NULL ||
					 f.status != STATUS_ACTIVE));
	json_object_set_new(v, "paged", json_boolean(after != NULL));
	json_object_set_new(v, "first_url", json_string(list_url(r, &f)));
	page(r, "Clients", "clients/list");
	err = list_controls(r, &f);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return form_reject(r, "clients/list", NULL);
	params[0] = f.q;
	params[1] = f.q != NULL ? like_escape(r, f.q) : NULL;
	params[2] = f.tag;
	params[3] = statuses[f.status].key;
	params[4] = key;
	params[5] = cid;
	/* One more than a page, to know whether there is a next one. */
	params[6] = arena_printf(r->arena, "%d", limit + 1);
	plain = f.q == NULL && f.tag == NULL && f.status == STATUS_ACTIVE &&
		f.sort == SORT_NAME;
	err = req_query(r, plain ? sql_generic_plans : sql_custom_plans, 0,
			NULL, NULL);
	if (err == TD_OK)
		err = req_query(r, plain ? sql_list_plain : sorts[f.sort].sql,
				7, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(rows, list_row(r, res, i));
	if (n > limit) {
		next = arena_printf(r->arena, "%s.%s",
				    db_text(res, limit - 1, 0),
				    db_text(res, limit - 1, 8));
		json_object_set_new(v, "next", json_string(next));
		json_object_set_new(
			v, "next_url",
			json_string(clientctx_next_url(r, "/clients", next)));
	}
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* The form                                                             */

static void input_defaults(struct client_input *in)
{
	memset(in, 0, sizeof(*in));
	in->name = "";
	in->domain = "";
	in->contact_email = "";
	in->phone = "";
	in->address = "";
	in->notes = "";
	in->terms = "30";
	in->tax_number = "";
}

static void input_from_row(struct req *r, const PGresult *res,
			   struct client_input *in)
{
	input_defaults(in);
	in->name = db_text(res, 0, C_NAME);
	in->domain = db_text(res, 0, C_DOMAIN);
	in->contact_email = db_text(res, 0, C_EMAIL);
	in->phone = db_text(res, 0, C_PHONE);
	in->address = db_text(res, 0, C_ADDRESS);
	in->notes = db_text(res, 0, C_NOTES);
	in->tags = json_from(db_text(res, 0, C_TAGS));
	req_own_json(r, in->tags);
	in->terms = db_text(res, 0, C_TERMS);
	in->tax_number = db_text(res, 0, C_TAX);
	in->currency = db_isnull(res, 0, C_CURRENCY) ?
			       NULL :
			       db_text(res, 0, C_CURRENCY);
	in->billing_id = db_isnull(res, 0, C_BILLING_ID) ?
				 NULL :
				 db_text(res, 0, C_BILLING_ID);
}

/* What was sent over what in holds: a field not sent keeps its value. */
static void read_input(struct req *r, struct client_input *in)
{
	const char *s;

	if (form_sent(r, "name"))
		in->name = form_text(r, "name");
	if (form_sent(r, "domain"))
		in->domain = ascii_lower(r, form_text(r, "domain"));
	if (form_sent(r, "contact_email"))
		in->contact_email = form_text(r, "contact_email");
	if (form_sent(r, "phone"))
		in->phone = form_text(r, "phone");
	if (form_sent(r, "address"))
		in->address = form_text(r, "address");
	if (form_sent(r, "notes"))
		in->notes = form_text(r, "notes");
	if (form_sent(r, "tags"))
		in->tags = form_tags(r);
	if (in->tags == NULL) {
		in->tags = json_array();
		req_own_json(r, in->tags);
	}
	if (form_sent(r, "payment_terms_days"))
		in->terms = form_text(r, "payment_terms_days");
	if (form_sent(r, "tax_number"))
		in->tax_number = form_text(r, "tax_number");
	if (form_sent(r, "currency")) {
		s = ascii_upper(r, form_text(r, "currency"));
		in->currency = *s != '\0' ? s : NULL;
	}
	if (form_sent(r, "billing_contact_id")) {
		s = form_text(r, "billing_contact_id");
		in->billing_id = *s != '\0' ? s : NULL;
	}
}

static bool terms_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!is_digit(s[i]) || i >= 3)
			return false;
	return i > 0 && strtol(s, NULL, 10) <= 365;
}

static bool currency_ok(const char *s)
{
	return strlen(s) == 3 && isupper((unsigned char)s[0]) &&
	       isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

/* Checks the domain and who has it; in->domain_row if this client does. */
static enum td_err check_domain(struct req *r, struct client_input *in,
				int64_t id)
{
	const char *params[1] = { in->domain };
	PGresult *res;
	enum td_err err;

	in->domain_row = 0;
	if (*in->domain == '\0')
		return TD_OK;
	if (!domain_ok(in->domain)) {
		form_error(
			r, "domain",
			"enter a domain such as example.com (letters, digits, "
			"hyphens and dots)");
		return TD_OK;
	}
	err = req_query(r, sql_domain_owner, 1, params, &res);
	if (err != TD_OK || PQntuples(res) == 0)
		return err;
	if (db_int(res, 0, 1) != id)
		form_error(r, "domain",
			   arena_printf(r->arena, "%s belongs to %s already",
					in->domain, db_text(res, 0, 2)));
	else
		in->domain_row = db_int(res, 0, 0);
	return TD_OK;
}

/* Another active client with this name (case aside): its name, or NULL. */
static enum td_err name_taken(struct req *r, const char *name, int64_t id,
			      const char **other)
{
	const char *params[2] = { name, req_id(r, id) };
	PGresult *res;
	enum td_err err;

	*other = NULL;
	err = req_query(r, sql_name_taken, 2, params, &res);
	if (err == TD_OK && PQntuples(res) > 0)
		*other = arena_strdup(r->arena, db_text(res, 0, 1));
	return err;
}

/*
 * Validates a client as typed: formats here, then what the database
 * decides (the name among active clients, the domain, the billing
 * contact). id is 0 for a new client; active says whether the name must
 * be unique.
 */
static enum td_err check_input(struct req *r, struct client_input *in,
			       int64_t id, bool active)
{
	const char *other, *params[2];
	PGresult *res;
	enum td_err err;
	int64_t bid;

	if (!len_between(in->name, 1, 200))
		form_error(r, "name", "enter a name of at most 200 characters");
	if (*in->contact_email != '\0' && !email_ok(in->contact_email))
		form_error(r, "contact_email",
			   "enter an email address, or leave it empty");
	if (!len_between(in->phone, 0, 50))
		form_error(r, "phone", "use at most 50 characters");
	if (!len_between(in->address, 0, 1000))
		form_error(r, "address", "use at most 1000 characters");
	if (!len_between(in->notes, 0, 20000))
		form_error(r, "notes", "use at most 20000 characters");
	if (!terms_ok(in->terms))
		form_error(r, "payment_terms_days",
			   "enter a number of days from 0 to 365");
	if (!len_between(in->tax_number, 0, 50))
		form_error(r, "tax_number", "use at most 50 characters");
	if (in->currency != NULL && !currency_ok(in->currency))
		form_error(r, "currency",
			   "use a three-letter ISO 4217 code such as EUR, or "
			   "leave it empty for the workspace's");
	if (active && len_between(in->name, 1, 200)) {
		err = name_taken(r, in->name, id, &other);
		if (err != TD_OK)
			return err;
		if (other != NULL)
			form_error(r, "name",
				   arena_printf(r->arena,
						"another active client is "
						"called %s already",
						other));
	}
	err = check_domain(r, in, id);
	if (err != TD_OK || in->billing_id == NULL)
		return err;
	if (!http_parse_id(in->billing_id, &bid) || id == 0) {
		form_error(r, "billing_contact_id",
			   "choose one of this client's contacts");
		return TD_OK;
	}
	params[0] = req_id(r, id);
	params[1] = req_id(r, bid);
	err = req_query(r, sql_contact_of, 2, params, &res);
	if (err == TD_OK && PQntuples(res) == 0)
		form_error(r, "billing_contact_id",
			   "choose one of this client's contacts");
	return err;
}

/* The form's fields from a stored or typed client. */
static json_t *form_json(struct req *r, const struct client_input *in)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			 " s:s}",
			 "name", in->name, "domain", in->domain,
			 "contact_email", in->contact_email, "phone", in->phone,
			 "address", in->address, "notes", in->notes, "tags",
			 tags_text(r, in->tags), "payment_terms_days",
			 in->terms, "tax_number", in->tax_number, "currency",
			 in->currency ? in->currency : "", "billing_contact_id",
			 in->billing_id ? in->billing_id : "");
}

/* The client's contacts for the billing contact select. */
static enum td_err billing_choices(struct req *r, int64_t id,
				   const char *selected)
{
	const char *params[1] = { req_id(r, id) };
	json_t *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(req_view(r), "billing_choices", list);
	err = req_query(r, sql_billing_choices, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list,
			json_pack(
				"{s:I, s:s, s:o, s:b}", "id", int_at(res, i, 0),
				"name", db_text(res, i, 1), "email",
				col_text(res, i, 2), "selected",
				selected != NULL &&
					!strcmp(selected, db_text(res, i, 0))));
	return TD_OK;
}

/* The page around the form: new (id 0) or edit, with the client's tabs. */
static enum td_err form_page(struct req *r, int64_t id)
{
	json_t *v = req_view(r);
	struct clientctx c;
	enum td_err err;

	json_object_set_new(
		v, "tenant_currency",
		json_string(r->auth.currency ? r->auth.currency : ""));
	if (id == 0) {
		json_object_set_new(v, "action", json_string("/clients"));
		json_object_set_new(v, "cancel", json_string("/clients"));
		json_object_set_new(v, "editing", json_false());
		page(r, "New client", "clients/form");
		return TD_OK;
	}
	err = clientctx_load(r, id, "overview", &c);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "action", json_string(client_url(r, id)));
	json_object_set_new(v, "cancel", json_string(client_url(r, id)));
	json_object_set_new(v, "editing", json_true());
	page(r, arena_printf(r->arena, "Edit %s", c.name), "clients/form");
	return TD_OK;
}

/* The form again with what was typed and what is wrong (API: 422). */
static enum td_err reject_form(struct req *r, int64_t id)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "clients/form", client_fields);
	err = form_page(r, id);
	if (err == TD_OK && id > 0)
		err = billing_choices(r, id,
				      form_text(r, "billing_contact_id"));
	if (err != TD_OK)
		return err;
	return form_reject(r, "clients/form", client_fields);
}

/* GET /clients/new */
enum td_err clients_new(struct req *r)
{
	struct client_input in;

	input_defaults(&in);
	in.tags = json_array();
	req_own_json(r, in.tags);
	json_object_set_new(req_view(r), "form", form_json(r, &in));
	return form_page(r, 0);
}

/* GET /clients/:id/edit — 404 for no such client, 409 once merged. */
enum td_err clients_edit(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	struct client_input in;
	PGresult *res;
	enum td_err err;

	err = form_page(r, id);
	if (err == TD_OK)
		err = load_client(r, id, &res);
	if (err != TD_OK)
		return err;
	if (!db_isnull(res, 0, C_MERGED_INTO))
		return req_fail(r, TD_ECONFLICT,
				"%s was merged into %s and cannot be changed",
				db_text(res, 0, C_NAME),
				db_text(res, 0, C_MERGED_NAME));
	input_from_row(r, res, &in);
	json_object_set_new(req_view(r), "form", form_json(r, &in));
	return billing_choices(r, id, in.billing_id);
}

/* Points the primary domain at in->domain (added if new; "" for none). */
static enum td_err set_primary(struct req *r, int64_t id, const char *cur,
			       const struct client_input *in)
{
	const char *params[3];
	enum td_err err;

	if (!strcmp(cur, in->domain))
		return TD_OK;
	params[0] = req_id(r, id);
	err = req_query(r, sql_domain_unprimary, 1, params, NULL);
	if (err != TD_OK || *in->domain == '\0')
		return err;
	if (in->domain_row > 0) {
		params[1] = req_id(r, in->domain_row);
		return req_query(r, sql_domain_primary, 2, params, NULL);
	}
	params[1] = in->domain;
	params[2] = "true";
	return req_query(r, sql_domain_new, 3, params, NULL);
}

/* The parameters shared by INSERT and UPDATE, from params[at] on. */
static void input_params(struct req *r, const struct client_input *in,
			 const char **params)
{
	params[0] = in->name;
	params[1] = in->contact_email;
	params[2] = in->phone;
	params[3] = in->address;
	params[4] = in->notes;
	params[5] = array_literal(r, in->tags);
	params[6] = in->terms;
	params[7] = in->tax_number;
	params[8] = in->currency;
	params[9] = in->billing_id;
}

/* The stored client after a write: the audit's after and the API's view. */
static enum td_err written(struct req *r, int64_t id, json_t **after)
{
	PGresult *res;
	enum td_err err;
	json_t *full;

	if (!r->want_json) {
		err = load_client(r, id, &res);
		if (err == TD_OK)
			*after = client_snapshot(r, res, id);
		return err;
	}
	err = client_full(r, id, &full, &res);
	if (err != TD_OK)
		return err;
	*after = client_snapshot(r, res, id);
	json_object_set_new(req_view(r), "client", full);
	return TD_OK;
}

/*
 * POST /clients — 201 (API) or 303 to the new client; 422 with the
 * fields that are wrong, among them a name another active client has and
 * a domain another client has.
 */
enum td_err clients_create(struct req *r)
{
	const char *params[10];
	struct client_input in;
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t id;

	input_defaults(&in);
	read_input(r, &in);
	if (!form_has_errors(r)) {
		err = check_input(r, &in, 0, true);
		if (err != TD_OK)
			return err;
	}
	if (form_has_errors(r))
		return reject_form(r, 0);
	input_params(r, &in, params);
	err = req_query(r, sql_client_new, 10, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	err = set_primary(r, id, "", &in);
	if (err == TD_OK)
		err = written(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, "client.create", "client", id, NULL,
				  after);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Client %s created.", in.name),
	     client_url(r, id));
	return TD_OK;
}

/*
 * POST /clients/:id — fields not sent keep their values (an API caller may
 * send only what changes). 404, 409 once merged, 422 as for create.
 */
enum td_err clients_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[11], *cur_domain;
	struct client_input in;
	struct clientctx c;
	json_t *before, *after;
	PGresult *cur;
	enum td_err err;

	err = clientctx_load(r, id, NULL, &c);
	if (err == TD_OK)
		err = load_client(r, id, &cur);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return req_fail(r, TD_ECONFLICT,
				"%s was merged into %s and cannot be changed",
				c.name, db_text(cur, 0, C_MERGED_NAME));
	before = client_snapshot(r, cur, id);
	cur_domain = db_text(cur, 0, C_DOMAIN);
	input_from_row(r, cur, &in);
	read_input(r, &in);
	if (!form_has_errors(r)) {
		err = check_input(r, &in, id, !c.archived);
		if (err != TD_OK)
			return err;
	}
	if (form_has_errors(r))
		return reject_form(r, id);
	params[0] = req_id(r, id);
	input_params(r, &in, params + 1);
	err = req_query(r, sql_client_update, 11, params, NULL);
	if (err == TD_OK)
		err = set_primary(r, id, cur_domain, &in);
	if (err == TD_OK)
		err = written(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, "client.update", "client", id, before,
				  after);
	if (err != TD_OK)
		return err;
	done(r, arena_printf(r->arena, "Client %s saved.", in.name),
	     client_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* The client's page                                                    */

/* Active clients to link to, filtered by ?related_q=; RELATED_CHOICES. */
static enum td_err related_choices(struct req *r, int64_t id)
{
	const char *q = query_param(r, "related_q"), *params[3];
	json_t *v = req_view(r), *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(v, "related_choices", list);
	json_object_set_new(v, "related_q", text_or_null(q));
	params[0] = req_id(r, id);
	params[1] = q ? like_escape(r, q) : NULL;
	params[2] = arena_printf(r->arena, "%d", RELATED_CHOICES + 1);
	err = req_query(r, sql_related_choices, 3, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && i < RELATED_CHOICES; i++)
		json_array_append_new(list, json_pack("{s:I, s:s}", "id",
						      int_at(res, i, 0), "name",
						      db_text(res, i, 1)));
	json_object_set_new(v, "related_more",
			    json_boolean(n > RELATED_CHOICES));
	json_object_set_new(v, "has_related_choices", json_boolean(n > 0));
	return TD_OK;
}

/*
 * What a manager may do with the client: archive or restore it, and
 * delete it only without history (assets now; tickets, contracts and
 * invoices once they exist) — delete_blocker says why not.
 */
static void client_actions(struct req *r, const PGresult *res)
{
	json_t *v = req_view(r);
	json_int_t assets = int_at(res, 0, C_N_ASSETS_ALL);
	const char *why = NULL;

	if (!db_isnull(res, 0, C_MERGED_INTO))
		why = "it was merged into another client";
	else if (assets > 0)
		why = arena_printf(r->arena,
				   "it has %" JSON_INTEGER_FORMAT
				   " asset%s: archive it instead",
				   assets, assets == 1 ? "" : "s");
	else if (db_int(res, 0, C_N_MERGED_IN) > 0)
		why = "other clients were merged into it: archive it instead";
	json_object_set_new(v, "can_delete",
			    json_boolean(is_manager(r) && why == NULL));
	json_object_set_new(v, "delete_blocker", text_or_null(why));
	json_object_set_new(v, "can_edit",
			    json_boolean(db_isnull(res, 0, C_MERGED_INTO)));
	json_object_set_new(v, "has_assets",
			    json_boolean(db_int(res, 0, C_N_ASSETS) > 0));
}

/* GET /clients/:id — the overview tab; 404 for no such client. */
enum td_err clients_show(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	struct clientctx c;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, id, "overview", &c);
	if (err == TD_OK)
		err = view_client(r, id, &res);
	if (err != TD_OK)
		return err;
	client_actions(r, res);
	if (!c.archived && !c.merged) {
		err = related_choices(r, id);
		if (err != TD_OK)
			return err;
	}
	/* The client's contracts and its block status (contracts.c). */
	err = contracts_client_json(r, id, req_view(r));
	/* Month-to-date billing and last invoices, managers only. */
	if (err == TD_OK)
		err = billingpanels_client(r, id, req_view(r));
	if (err != TD_OK)
		return err;
	page(r, c.name, "clients/show");
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Archive, restore, delete                                             */

/* POST /clients/:id/archive — 404; 409 once merged. */
enum td_err clients_archive(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	struct clientctx c;
	json_t *before, *after;
	enum td_err err;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one: it is "
			      "archived already");
	if (c.archived) {
		err = view_client(r, id, NULL);
		if (err != TD_OK)
			return err;
		done(r,
		     arena_printf(r->arena, "%s is archived already.", c.name),
		     client_url(r, id));
		return TD_OK;
	}
	err = req_query(r, sql_archive, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:s, s:b}", "name", c.name, "archived", false);
	req_own_json(r, before);
	after = json_pack("{s:s, s:b}", "name", c.name, "archived", true);
	req_own_json(r, after);
	err = audit_write(r, "client.archive", "client", id, before, after);
	if (err == TD_OK && r->want_json)
		err = view_client(r, id, NULL);
	if (err != TD_OK)
		return err;
	done(r,
	     arena_printf(r->arena,
			  "%s is archived: it is hidden from the client list "
			  "and can be restored at any time.",
			  c.name),
	     client_url(r, id));
	return TD_OK;
}

/*
 * POST /clients/:id/restore — 404; 409 once merged or when an active
 * client has the same name now.
 */
enum td_err clients_restore(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) }, *other;
	struct clientctx c;
	json_t *before, *after;
	enum td_err err;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one and "
			      "cannot be restored");
	if (!c.archived) {
		err = view_client(r, id, NULL);
		if (err != TD_OK)
			return err;
		done(r, arena_printf(r->arena, "%s is not archived.", c.name),
		     client_url(r, id));
		return TD_OK;
	}
	err = name_taken(r, c.name, id, &other);
	if (err != TD_OK)
		return err;
	if (other != NULL) {
		form_error(r, "name",
			   arena_printf(r->arena,
					"another active client is called %s: "
					"rename one of them first",
					other));
		return refuse(r, clients_show,
			      arena_printf(r->arena,
					   "another active client is called "
					   "%s: rename one of them first",
					   other));
	}
	err = req_query(r, sql_restore, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:s, s:b}", "name", c.name, "archived", true);
	req_own_json(r, before);
	after = json_pack("{s:s, s:b}", "name", c.name, "archived", false);
	req_own_json(r, after);
	err = audit_write(r, "client.restore", "client", id, before, after);
	if (err == TD_OK && r->want_json)
		err = view_client(r, id, NULL);
	if (err != TD_OK)
		return err;
	done(r, arena_printf(r->arena, "%s is restored.", c.name),
	     client_url(r, id));
	return TD_OK;
}

/*
 * POST /clients/:id/delete — only without history: 409 with the reason
 * when it has assets, was merged, or had others merged into it. Its
 * contacts, sites, domains, links and enrollment tokens go with it.
 */
/* "1 ticket", "3 contracts". */
static const char *plural(struct req *r, long n, const char *what)
{
	return arena_printf(r->arena, "%ld %s%s", n, what, n == 1 ? "" : "s");
}

enum td_err clients_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	long contacts = 0, sites = 0, domains = 0, tokens = 0;
	json_t *before;
	json_int_t assets;
	PGresult *res, *hist;
	enum td_err err;
	const char *name;

	err = load_client(r, id, &res);
	if (err != TD_OK)
		return err;
	name = arena_strdup(r->arena, db_text(res, 0, C_NAME));
	assets = int_at(res, 0, C_N_ASSETS_ALL);
	if (!db_isnull(res, 0, C_MERGED_INTO))
		return refuse(r, clients_show,
			      arena_printf(r->arena,
					   "%s was merged into %s: it stays as "
					   "a record of the merge",
					   name,
					   db_text(res, 0, C_MERGED_NAME)));
	if (assets > 0)
		return refuse(r, clients_show,
			      arena_printf(r->arena,
					   "%s has %" JSON_INTEGER_FORMAT
					   " asset%s: archive it instead",
					   name, assets,
					   assets == 1 ? "" : "s"));
	if (db_int(res, 0, C_N_MERGED_IN) > 0)
		return refuse(r, clients_show,
			      arena_printf(r->arena,
					   "other clients were merged into %s: "
					   "archive it instead",
					   name));
	/* Tickets and contracts are history that billing and SLAs point at. */
	err = req_query(r, sql_client_history, 1, params, &hist);
	if (err != TD_OK)
		return err;
	if (db_int(hist, 0, 0) > 0 || db_int(hist, 0, 1) > 0)
		return refuse(r, clients_show,
			      arena_printf(r->arena,
					   "%s has %s: archive it instead",
					   name,
					   db_int(hist, 0, 0) > 0 ?
						   plural(r, db_int(hist, 0, 0),
							  "ticket") :
						   plural(r, db_int(hist, 0, 1),
							  "contract")));
	before = client_snapshot(r, res, id);
	json_object_set_new(before, "contacts",
			    json_integer(int_at(res, 0, C_N_CONTACTS)));
	json_object_set_new(before, "sites",
			    json_integer(int_at(res, 0, C_N_SITES)));
	json_object_set_new(before, "domains",
			    json_integer(int_at(res, 0, C_N_DOMAINS)));
	err = exec_count(r, sql_delete_contacts, 1, params, &contacts);
	if (err == TD_OK)
		err = exec_count(r, sql_delete_sites, 1, params, &sites);
	if (err == TD_OK)
		err = exec_count(r, sql_delete_domains, 1, params, &domains);
	if (err == TD_OK)
		err = exec_count(r, sql_delete_links, 1, params, NULL);
	if (err == TD_OK)
		err = exec_count(r, sql_delete_tokens, 1, params, &tokens);
	if (err == TD_OK)
		err = exec_count(r, sql_delete_client, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "client.delete", "client", id, before,
				  NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_pack("{s:I, s:s, s:I, s:I, s:I, s:I}", "id",
				      (json_int_t)id, "name", name, "contacts",
				      (json_int_t)contacts, "sites",
				      (json_int_t)sites, "domains",
				      (json_int_t)domains, "tokens",
				      (json_int_t)tokens));
	done(r,
	     arena_printf(r->arena,
			  "%s is deleted, with %ld contact%s and %ld site%s.",
			  name, contacts, contacts == 1 ? "" : "s", sites,
			  sites == 1 ? "" : "s"),
	     "/clients");
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Domains and related clients                                          */

/*
 * POST /clients/:id/domains (domain, primary) — 201 (API); 422 for a
 * malformed domain or one another client has; 409 once merged. A
 * client's first domain is its primary one.
 */
enum td_err clients_domain_add(struct req *r)
{
	static const char *const keep[] = { "domain", NULL };
	int64_t id = route_arg_int(&r->args, "id"), did;
	const char *params[3];
	bool primary = form_flag(r, "primary");
	struct client_input in;
	struct clientctx c;
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one and "
			      "cannot be changed");
	input_defaults(&in);
	in.domain = ascii_lower(r, form_text(r, "domain"));
	if (*in.domain == '\0')
		form_error(r, "domain", "enter a domain such as example.com");
	else
		err = check_domain(r, &in, id);
	if (err != TD_OK)
		return err;
	if (in.domain_row > 0 && !primary)
		form_error(r, "domain",
			   arena_printf(r->arena,
					"%s is one of %s's domains already",
					in.domain, c.name));
	if (form_has_errors(r))
		return reject(r, clients_show, "clients/show", keep);
	params[0] = req_id(r, id);
	err = req_query(r, sql_domains, 1, params, &res);
	if (err != TD_OK)
		return err;
	primary = primary || PQntuples(res) == 0;
	if (primary) {
		err = req_query(r, sql_domain_unprimary, 1, params, NULL);
		if (err != TD_OK)
			return err;
	}
	if (in.domain_row > 0) {
		did = in.domain_row;
		params[1] = req_id(r, did);
		err = req_query(r, sql_domain_primary, 2, params, NULL);
	} else {
		params[1] = in.domain;
		params[2] = primary ? "true" : "false";
		err = req_query(r, sql_domain_new, 3, params, &res);
		did = err == TD_OK ? db_int(res, 0, 0) : 0;
	}
	if (err != TD_OK)
		return err;
	after = json_pack("{s:I, s:I, s:s, s:b}", "client_id", (json_int_t)id,
			  "domain_id", (json_int_t)did, "domain", in.domain,
			  "primary", primary);
	req_own_json(r, after);
	err = audit_write(r,
			  in.domain_row > 0 ? "client.domain_primary" :
					      "client.domain_add",
			  "client", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "domain",
			    json_pack("{s:I, s:s, s:b}", "id", (json_int_t)did,
				      "domain", in.domain, "primary", primary));
	if (r->want_json && in.domain_row == 0)
		r->status = 201;
	done(r,
	     arena_printf(r->arena,
			  in.domain_row > 0 ? "%s is now the primary domain." :
			  primary	    ? "Domain %s added as the primary "
					      "domain." :
					      "Domain %s added.",
			  in.domain),
	     client_url(r, id));
	return TD_OK;
}

/* POST /clients/:id/domains/:domain_id/delete — 404 if not this client's. */
enum td_err clients_domain_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t did = route_arg_int(&r->args, "domain_id");
	const char *params[2] = { req_id(r, id), req_id(r, did) };
	struct clientctx c;
	json_t *before;
	PGresult *res;
	enum td_err err;
	const char *domain;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one and "
			      "cannot be changed");
	err = req_query(r, sql_domain_get, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT,
				"client %" PRId64 " has no domain %" PRId64, id,
				did);
	domain = arena_strdup(r->arena, db_text(res, 0, 0));
	before = json_pack("{s:I, s:I, s:s, s:b}", "client_id", (json_int_t)id,
			   "domain_id", (json_int_t)did, "domain", domain,
			   "primary", db_bool(res, 0, 1));
	req_own_json(r, before);
	err = req_query(r, sql_domain_delete, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "client.domain_delete", "client", id,
				  before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted", json_incref(before));
	done(r, arena_printf(r->arena, "Domain %s removed.", domain),
	     client_url(r, id));
	return TD_OK;
}

/*
 * POST /clients/:id/related (other_id) — 201 (API); 422 for no such
 * active client or the client itself; 409 once merged.
 */
enum td_err clients_link_add(struct req *r)
{
	static const char *const keep[] = { "other_id", NULL };
	int64_t id = route_arg_int(&r->args, "id"), other = 0;
	const char *params[2], *name = NULL;
	struct clientctx c;
	json_t *after;
	PGresult *res;
	enum td_err err;
	long added = 0;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one and "
			      "cannot be changed");
	if (!http_parse_id(form_text(r, "other_id"), &other)) {
		form_error(r, "other_id", "choose a client");
	} else if (other == id) {
		form_error(r, "other_id",
			   "a client cannot be related to itself");
	} else {
		params[0] = req_id(r, other);
		err = req_query(r, sql_link_target, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			form_error(r, "other_id", "there is no such client");
		else if (db_bool(res, 0, 1))
			form_error(r, "other_id",
				   "that client is archived: restore it first");
		else
			name = arena_strdup(r->arena, db_text(res, 0, 0));
	}
	if (form_has_errors(r))
		return reject(r, clients_show, "clients/show", keep);
	params[0] = req_id(r, id);
	params[1] = req_id(r, other);
	err = exec_count(r, sql_link_new, 2, params, &added);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:I, s:I, s:s}", "client_id", (json_int_t)id,
			  "related_id", (json_int_t)other, "related_name",
			  name);
	req_own_json(r, after);
	if (added > 0)
		err = audit_write(r, "client.link_add", "client", id, NULL,
				  after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "related",
			    json_pack("{s:I, s:s, s:s}", "id",
				      (json_int_t)other, "name", name, "url",
				      client_url(r, other)));
	if (r->want_json && added > 0)
		r->status = 201;
	done(r,
	     arena_printf(r->arena,
			  added > 0 ? "%s is now related to %s." :
				      "%s was related to %s already.",
			  c.name, name),
	     client_url(r, id));
	return TD_OK;
}

/* POST /clients/:id/related/:other_id/delete — 404 if not related. */
enum td_err clients_link_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t other = route_arg_int(&r->args, "other_id");
	const char *params[2] = { req_id(r, id), req_id(r, other) };
	const char *name = "";
	struct clientctx c;
	json_t *before;
	PGresult *res;
	enum td_err err;
	long n = 0;

	err = clientctx_load(r, id, NULL, &c);
	if (err != TD_OK)
		return err;
	if (c.merged)
		return refuse(r, clients_show,
			      "this client was merged into another one and "
			      "cannot be changed");
	err = req_query(r, sql_link_target, 1, params + 1, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1)
		name = arena_strdup(r->arena, db_text(res, 0, 0));
	err = exec_count(r, sql_link_delete, 2, params, &n);
	if (err != TD_OK)
		return err;
	if (n == 0)
		return req_fail(r, TD_ENOENT,
				"client %" PRId64 " is not related to %" PRId64,
				id, other);
	before = json_pack("{s:I, s:I, s:s}", "client_id", (json_int_t)id,
			   "related_id", (json_int_t)other, "related_name",
			   name);
	req_own_json(r, before);
	err = audit_write(r, "client.link_delete", "client", id, before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted", json_incref(before));
	done(r,
	     arena_printf(r->arena, "%s is no longer related to %s.", c.name,
			  name),
	     client_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Merging                                                              */

/* Rows of a same-* query as [{key, a, b}]. */
static enum td_err same_rows(struct req *r, const char *sql, int64_t a,
			     int64_t b, const char *key, json_t **out)
{
	const char *params[2] = { req_id(r, a), req_id(r, b) };
	PGresult *res;
	enum td_err err;
	int i, n, last;

	*out = json_array();
	err = req_query(r, sql, 2, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	last = PQnfields(res) - 1;
	for (i = 0; i < n; i++)
		json_array_append_new(*out,
				      json_pack("{s:s, s:s, s:s}", key,
						db_text(res, i, 0), "a",
						db_text(res, i, last - 1), "b",
						db_text(res, i, last)));
	return TD_OK;
}

/* One side of the merge page: the record, and whether it is the survivor. */
static enum td_err merge_side(struct req *r, int64_t id, bool keep,
			      json_t **out, const char **blocked)
{
	PGresult *res;
	enum td_err err;

	err = load_client(r, id, &res);
	if (err != TD_OK)
		return err;
	*out = client_record(r, res, id);
	json_object_set_new(*out, "keep", json_boolean(keep));
	if (!db_isnull(res, 0, C_MERGED_INTO))
		*blocked =
			arena_printf(r->arena, "%s was merged into %s already",
				     db_text(res, 0, C_NAME),
				     db_text(res, 0, C_MERGED_NAME));
	else if (db_bool(res, 0, C_ARCHIVED))
		*blocked = arena_printf(r->arena,
					"%s is archived: restore it before "
					"merging",
					db_text(res, 0, C_NAME));
	return TD_OK;
}

/*
 * The merge page for clients a and b (keep: the survivor picked). Sets
 * *blocked when they cannot be merged, and why.
 */
static enum td_err merge_page(struct req *r, int64_t a, int64_t b, int64_t keep,
			      const char **blocked)
{
	json_t *v = req_view(r), *sa, *sb, *contacts, *sites, *assets;
	enum td_err err;
	size_t n;

	*blocked = NULL;
	page(r, "Merge clients", "clients/merge");
	err = merge_side(r, a, keep != b, &sa, blocked);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "a", sa);
	err = merge_side(r, b, keep == b, &sb, blocked);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "b", sb);
	if (a == b)
		*blocked = "pick two different clients to merge";
	err = same_rows(r, sql_same_contacts, a, b, "email", &contacts);
	json_object_set_new(v, "same_contacts", contacts);
	if (err == TD_OK)
		err = same_rows(r, sql_same_sites, a, b, "name", &sites);
	else
		sites = json_array();
	json_object_set_new(v, "same_sites", sites);
	if (err == TD_OK)
		err = same_rows(r, sql_same_assets, a, b, "external_id",
				&assets);
	else
		assets = json_array();
	json_object_set_new(v, "same_assets", assets);
	if (err != TD_OK)
		return err;
	n = json_array_size(contacts) + json_array_size(sites) +
	    json_array_size(assets);
	json_object_set_new(v, "conflict_count", json_integer((json_int_t)n));
	json_object_set_new(v, "has_conflicts", json_boolean(n > 0));
	json_object_set_new(v, "blocked", text_or_null(*blocked));
	return TD_OK;
}

/* The two clients of /clients/merge: ?a=&b=, or two ?id= from the list. */
static bool merge_pair(struct req *r, int64_t *a, int64_t *b)
{
	const char *sa = query_param(r, "a"), *sb = query_param(r, "b");
	const char *ids[2] = { NULL, NULL };
	size_t i, n = 0;

	if (sa == NULL && sb == NULL) {
		for (i = 0; i < r->query_params.n; i++) {
			if (strcmp(r->query_params.v[i].name, "id") != 0)
				continue;
			if (n == 2)
				return false;
			ids[n++] = r->query_params.v[i].value;
		}
		sa = ids[0];
		sb = ids[1];
	}
	return http_parse_id(sa, a) && http_parse_id(sb, b);
}

/*
 * GET /clients/merge?a=&b=[&keep=] — both clients side by side, what
 * moves and what conflicts. 422 without two clients, 404 for an unknown
 * one, 409 for the same one twice or an archived or merged one.
 */
enum td_err clients_merge_form(struct req *r)
{
	const char *k = query_param(r, "keep"), *blocked;
	int64_t a, b, keep = 0;
	enum td_err err;

	if (!merge_pair(r, &a, &b)) {
		page(r, "Merge clients", "clients/merge");
		json_object_set_new(req_view(r), "error",
				    json_string("Tick two clients in the list, "
						"then choose Merge."));
		form_error(r, "a", "choose exactly two clients to merge");
		return form_reject(r, "clients/merge", NULL);
	}
	if (k != NULL && !http_parse_id(k, &keep))
		keep = 0;
	err = merge_page(r, a, b, keep, &blocked);
	if (err != TD_OK)
		return err;
	if (blocked == NULL)
		return TD_OK;
	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", blocked);
	r->status = 409;
	return TD_OK;
}

/* Appends one resolved conflict to the tally. */
static void conflict(struct merge_tally *t, json_t *c)
{
	json_array_append_new(t->conflicts, c);
}

/* Contacts: same email on both sides → roles OR-ed into the kept one. */
static enum td_err merge_contacts(struct req *r, const char *const *p,
				  struct merge_tally *t)
{
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_merge_contact_roles, 2, p, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		conflict(t, json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "type",
				      "contact", "email", db_text(res, i, 2),
				      "kept_id", int_at(res, i, 0),
				      "removed_id", int_at(res, i, 1), "name",
				      db_text(res, i, 3), "resolution",
				      "kept the surviving client's contact "
				      "with the roles of both"));
	err = req_query(r, sql_merge_billing, 2, p, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_contact_drop, 2, p, NULL);
	if (err == TD_OK)
		err = exec_count(r, sql_merge_contact_move, 2, p, &t->contacts);
	return err;
}

/* Sites: same name on both sides → one site, the assets moved to it. */
static enum td_err merge_sites(struct req *r, const char *const *p,
			       struct merge_tally *t)
{
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_merge_site_pairs, 2, p, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		conflict(t,
			 json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "type",
				   "site", "name", db_text(res, i, 2),
				   "kept_id", int_at(res, i, 0), "removed_id",
				   int_at(res, i, 1), "assets_moved",
				   int_at(res, i, 3), "resolution",
				   "merged into the surviving client's "
				   "site of the same name"));
	err = req_query(r, sql_merge_site_address, 2, p, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_site_assets, 2, p, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_site_drop, 2, p, NULL);
	if (err == TD_OK)
		err = exec_count(r, sql_merge_site_move, 2, p, &t->sites);
	return err;
}

/* Assets (the history trigger records the move), then the rest. */
static enum td_err merge_rest(struct req *r, const char *const *p,
			      struct merge_tally *t)
{
	PGresult *res;
	enum td_err err;
	long dropped = 0;
	int i, n;

	err = req_query(r, sql_merge_asset_dups, 2, p, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		conflict(t,
			 json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "type",
				   "asset", "external_id", db_text(res, i, 3),
				   "kept_id", int_at(res, i, 2), "archived_id",
				   int_at(res, i, 0), "name",
				   db_text(res, i, 1), "resolution",
				   "the same RMM asset on both: the "
				   "merged client's copy is archived"));
	err = exec_count(r, sql_merge_asset_move, 2, p, &t->assets);
	if (err != TD_OK)
		return err;
	err = req_query(r, sql_merge_domain_unprimary, 2, p, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0)
		conflict(t,
			 json_pack("{s:s, s:s, s:s}", "type", "domain",
				   "domain", db_text(res, 0, 0), "resolution",
				   "no longer primary: the surviving "
				   "client keeps its primary domain"));
	err = exec_count(r, sql_merge_domain_move, 2, p, &t->domains);
	if (err == TD_OK)
		err = exec_count(r, sql_merge_link_copy, 2, p, &t->links);
	if (err == TD_OK)
		err = exec_count(r, sql_merge_link_drop, 2, p, &dropped);
	if (err == TD_OK)
		err = exec_count(r, sql_merge_token_move, 2, p, &t->tokens);
	if (err == TD_OK)
		err = req_query(r, sql_merge_chain, 2, p, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_close, 2, p, NULL);
	return err;
}

/* "Merged B into A: moved ...; resolved ...". */
static const char *merge_flash(struct req *r, const char *kept,
			       const char *merged, const struct merge_tally *t)
{
	struct sbuf sb;
	json_t *c;
	size_t i, n = json_array_size(t->conflicts);
	const char *type, *what;

	sbuf_init(&sb, r->arena, 256);
	sbuf_addf(&sb, "Merged %s into %s: moved %s, %s, %s and %s.", merged,
		  kept, plural(r, t->contacts, "contact"),
		  plural(r, t->sites, "site"), plural(r, t->assets, "asset"),
		  plural(r, t->domains, "domain"));
	if (n == 0)
		return sbuf_cstr(&sb);
	sbuf_addf(&sb, " Resolved %s:", plural(r, (long)n, "conflict"));
	json_array_foreach(t->conflicts, i, c)
	{
		if (i == FLASH_CONFLICTS) {
			sbuf_addf(&sb, "; and %zu more (see Activity)",
				  n - FLASH_CONFLICTS);
			break;
		}
		type = json_string_value(json_object_get(c, "type"));
		if (!strcmp(type, "contact"))
			what = arena_printf(
				r->arena, "contact %s (roles combined)",
				json_string_value(json_object_get(c, "email")));
		else if (!strcmp(type, "site"))
			what = arena_printf(
				r->arena, "site %s (merged)",
				json_string_value(json_object_get(c, "name")));
		else if (!strcmp(type, "asset"))
			what = arena_printf(
				r->arena, "asset %s (duplicate archived)",
				json_string_value(json_object_get(c, "name")));
		else
			what = arena_printf(r->arena,
					    "domain %s (no longer primary)",
					    json_string_value(json_object_get(
						    c, "domain")));
		sbuf_addf(&sb, "%s %s", i == 0 ? "" : ";", what);
	}
	sbuf_addch(&sb, '.');
	return sbuf_cstr(&sb);
}

/* The survivor and the client merged into it, from keep + other (or a/b). */
static bool merge_ids(struct req *r, int64_t *keep, int64_t *other)
{
	int64_t a, b;

	if (!http_parse_id(form_text(r, "keep"), keep))
		return false;
	if (http_parse_id(form_text(r, "other"), other))
		return true;
	if (!http_parse_id(form_text(r, "a"), &a) ||
	    !http_parse_id(form_text(r, "b"), &b))
		return false;
	if (*keep != a && *keep != b)
		return false;
	*other = *keep == a ? b : a;
	return true;
}

/*
 * POST /clients/merge (keep, other) — moves everything of other to keep
 * in the request's one transaction and marks other merged. 422 without
 * two clients, 404 for an unknown one, 409 for the same one twice or an
 * archived or merged one.
 */
enum td_err clients_merge(struct req *r)
{
	const char *params[2], *names[2] = { NULL, NULL }, *blocked = NULL;
	struct merge_tally t;
	int64_t keep = 0, other = 0;
	json_t *after;
	PGresult *res;
	enum td_err err;
	int i;

	memset(&t, 0, sizeof(t));
	if (!merge_ids(r, &keep, &other)) {
		form_error(r, "keep",
			   "choose the client to keep and the one to merge "
			   "into it");
		if (r->want_json)
			return form_reject(r, "clients/merge", NULL);
		page(r, "Merge clients", "clients/merge");
		json_object_set_new(req_view(r), "error",
				    json_string("Choose the client to keep."));
		return form_reject(r, "clients/merge", NULL);
	}
	if (keep == other)
		return req_fail(r, TD_ECONFLICT,
				"a client cannot be merged into itself");
	params[0] = req_id(r, keep);
	params[1] = req_id(r, other);
	err = req_query(r, sql_merge_lock, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 2)
		return req_fail(r, TD_ENOENT,
				"no client %" PRId64 " or %" PRId64, keep,
				other);
	for (i = 0; i < 2; i++) {
		names[db_int(res, i, 0) == keep ? 0 : 1] =
			arena_strdup(r->arena, db_text(res, i, 1));
		if (blocked == NULL && db_bool(res, i, 3))
			blocked = arena_printf(r->arena,
					       "%s was merged into another "
					       "client already",
					       db_text(res, i, 1));
		else if (blocked == NULL && db_bool(res, i, 2))
			blocked = arena_printf(r->arena,
					       "%s is archived: restore it "
					       "before merging",
					       db_text(res, i, 1));
	}
	if (blocked != NULL) {
		if (r->want_json)
			return req_fail(r, TD_ECONFLICT, "%s", blocked);
		err = merge_page(r, keep, other, keep, &blocked);
		if (err != TD_OK)
			return err;
		r->status = 409;
		return TD_OK;
	}
	t.conflicts = json_array();
	req_own_json(r, t.conflicts);
	err = merge_contacts(r, params, &t);
	if (err == TD_OK)
		err = merge_sites(r, params, &t);
	if (err == TD_OK)
		err = merge_rest(r, params, &t);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:I, s:I, s:s, s:s,"
			  " s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:O}",
			  "kept", (json_int_t)keep, "merged", (json_int_t)other,
			  "kept_name", names[0], "merged_name", names[1],
			  "moved", "contacts", (json_int_t)t.contacts, "sites",
			  (json_int_t)t.sites, "assets", (json_int_t)t.assets,
			  "domains", (json_int_t)t.domains, "links",
			  (json_int_t)t.links, "tokens", (json_int_t)t.tokens,
			  "conflicts", t.conflicts);
	req_own_json(r, after);
	err = audit_write(r, "client.merge", "client", keep, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "merge", after);
	if (r->want_json) {
		err = view_client(r, keep, NULL);
		if (err != TD_OK)
			return err;
	}
	done(r, merge_flash(r, names[0], names[1], &t), client_url(r, keep));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Activity                                                             */

static json_t *activity_event(const PGresult *res, int i)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
			 "id", int_at(res, i, 0), "at", db_text(res, i, 1),
			 "at_iso", db_text(res, i, 2), "actor",
			 db_text(res, i, 3), "action", db_text(res, i, 4),
			 "object_type", db_text(res, i, 5), "object_id",
			 col_id(res, i, 6), "request_id", col_text(res, i, 7),
			 "before", col_text(res, i, 8), "after",
			 col_text(res, i, 9));
}

/*
 * GET /clients/:id/activity — the audit rows about the client (see
 * sql_activity), newest first; ?after=<audit id> pages back. 404; 422
 * for a cursor that is not an id.
 */
enum td_err clients_activity(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), cursor = 0;
	const char *after = clientctx_after(r), *params[4], *next;
	int limit = clientctx_limit(r), i, n;
	json_t *v = req_view(r), *events = json_array();
	struct clientctx c;
	PGresult *res;
	enum td_err err;

	json_object_set_new(v, "events", events);
	json_object_set_new(v, "next", json_null());
	err = clientctx_load(r, id, "activity", &c);
	if (err != TD_OK)
		return err;
	page(r, arena_printf(r->arena, "%s: activity", c.name),
	     "clients/activity");
	if (after != NULL && !http_parse_id(after, &cursor)) {
		form_error(r, "after", "not a valid position in the log");
		return form_reject(r, "clients/activity", NULL);
	}
	params[0] = req_id(r, id);
	params[1] = params[0];
	params[2] = after != NULL ? req_id(r, cursor) : NULL;
	params[3] = arena_printf(r->arena, "%d", limit + 1);
	err = req_query(r, sql_activity, 4, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(events, activity_event(res, i));
	json_object_set_new(v, "paged", json_boolean(after != NULL));
	if (n > limit) {
		next = db_text(res, limit - 1, 0);
		json_object_set_new(v, "next", json_string(next));
		json_object_set_new(
			v, "next_url",
			json_string(clientctx_next_url(
				r,
				arena_printf(r->arena,
					     "/clients/%" PRId64 "/activity",
					     id),
				next)));
	}
	return TD_OK;
}
