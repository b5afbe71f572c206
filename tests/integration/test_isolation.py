"""Every route with an id, tried by one tenant on another tenant's rows,
answers 404 (or 403/405) and changes nothing. The routes come from
app/routes.c, so a new route is covered the day it is added."""
import os
import re

import psycopg
import pytest

from tdclient import Browser
from tdharness import SRC

PW = "correct horse battery"
ROUTE_RE = re.compile(r'\{\s*(GET|POST|HTTP_PUT|HTTP_DELETE|HTTP_POST)\s*,\s*"([^"]+)"')

# Which table a path parameter names, by the path around it.
TABLE_OF = [
    (r"^/clients/:id/domains/:domain_id", {"id": "clients", "domain_id": "client_domains"}),
    (r"^/clients/:id/related/:other_id", {"id": "clients", "other_id": "clients"}),
    (r"^/clients/:id/tokens/:token_id", {"id": "clients", "token_id": "enrollment_tokens"}),
    (r"^/clients/:id/portal/:contact_id", {"id": "clients", "contact_id": "contacts"}),
    (r"^/clients/:id", {"id": "clients"}),
    (r"^/contacts/:id", {"id": "contacts"}),
    (r"^/sites/:id", {"id": "sites"}),
    (r"^/assets/:id", {"id": "assets"}),
    (r"^/settings/users/:id", {"id": "users"}),
    (r"^/settings/invites/:id", {"id": "invites"}),
    (r"^/settings/apikeys/:id", {"id": "api_keys"}),
    (r"^/settings/tax-rates/:id", {"id": "tax_rates"}),
    (r"^/import/:id", {"id": "import_batches"}),
    (r"^/tickets/views/:id", {"id": "saved_views"}),
    (r"^/tickets/:id", {"id": "tickets"}),
    (r"^/comments/:id", {"id": "ticket_comments"}),
    (r"^/attachments/:id", {"id": "ticket_attachments"}),
    (r"^/maintenance/:id", {"id": "maintenance_windows"}),
    (r"^/settings/queues/:id", {"id": "ticket_queues"}),
    (r"^/settings/mail-domains/:id", {"id": "mail_domains"}),
    (r"^/settings/mail-templates/:name", {}),  # the name becomes "1": no such notification
    (r"^/settings/mailboxes/:id", {"id": "mail_mailboxes"}),
    (r"^/settings/sla/:id/holidays/:holiday_id", {"id": "sla_tiers", "holiday_id": "sla_holidays"}),
    (r"^/settings/sla/:id", {"id": "sla_tiers"}),
    (r"^/time/entries/:id", {"id": "time_entries"}),
    (r"^/contracts/:id/lines/:line_id", {"id": "contracts", "line_id": "contract_lines"}),
    (r"^/contracts/:id", {"id": "contracts"}),
    (r"^/invoices/:id/lines/:line_id", {"id": "invoices", "line_id": "invoice_lines"}),
    (r"^/invoices/:id/credit-notes/:credit_note_id", {"id": "invoices", "credit_note_id": "credit_notes"}),
    (r"^/invoices/:id", {"id": "invoices"}),
    (r"^/settings/portal/hosts/:id", {"id": "tenant_hosts"}),
    (r"^/portal/:slug/tickets/:id", {"id": "tickets"}),
    (r"^/portal/:slug/attachments/:id", {"id": "ticket_attachments"}),
    (r"^/portal/:slug/invoices/:id", {"id": "invoices"}),
    (r"^/portal/:slug", {}),  # the slug becomes "1": no such portal
]
TENANT_TABLES = ["users", "invites", "api_keys", "tax_rates", "sessions", "clients",
                 "client_domains", "client_links", "contacts", "sites", "assets",
                 "asset_history", "enrollment_tokens", "import_batches", "tickets",
                 "ticket_comments", "ticket_attachments", "blobs", "saved_views",
                 "maintenance_windows", "alert_occurrences", "ticket_queues",
                 "ticket_status_labels", "audit_log", "tenants",
                 "sla_tiers", "sla_holidays", "sla_events"]
TENANT_TABLES += ["timers", "time_entries"]
TENANT_TABLES += ["contracts", "contract_lines"]
TENANT_TABLES += ["mail_settings", "mail_messages", "mail_domains", "mail_mailboxes"]
TENANT_TABLES += ["billing_numbers", "invoices", "billing_periods", "invoice_lines",
                  "invoice_line_days", "invoice_line_entries", "credit_notes", "payments"]
TENANT_TABLES += ["portal_settings", "tenant_hosts", "portal_links", "portal_sessions"]
TENANT_TABLES += ["stored_files", "outbox_attachments", "invoice_settings", "credit_note_lines"]
TENANT_TABLES += ["mail_templates"]
TENANT_TABLES += ["contract_terms"]


def routes():
    text = open(os.path.join(SRC, "app", "routes.c")).read()
    out = []
    for method, pattern in ROUTE_RE.findall(text):
        # Token links (/reset/:token) carry their own tenant; agents have their own test.
        if ":" not in pattern or pattern.startswith("/agent/") or re.search(r":token\b", pattern):
            continue
        out.append(({"GET": "GET", "POST": "POST", "HTTP_POST": "POST",
                     "HTTP_PUT": "PUT", "HTTP_DELETE": "DELETE"}[method], pattern))
    return out


def snapshot(app, tenant):
    """A fingerprint of every row the tenant owns."""
    parts = []
    with psycopg.connect(app.db_url) as c:
        for t in TENANT_TABLES:
            if c.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None:
                continue
            col = "id" if t == "tenants" else "tenant_id"
            cols = "*" if t != "sessions" else "id, user_id, csrf_token, mfa_pending, expires_at"
            rows = c.execute(f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"
                             f" FROM (SELECT {cols} FROM {t} WHERE {col} = %s) x", (tenant,)).fetchone()[0]
            parts.append(f"{t}:{rows}")
    return parts


@pytest.fixture
def victim_and_intruder(app):
    """Tenant 'demo' with one row in every table, and an admin of 'rival'."""
    assert app.run("seed-demo", "--password", PW).returncode == 0
    demo = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    with psycopg.connect(app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(demo),))
        cl = c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Victim Ltd') RETURNING id", (demo,)).fetchone()[0]
        c2 = c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Victim Two') RETURNING id", (demo,)).fetchone()[0]
        c.execute("INSERT INTO client_domains (tenant_id, client_id, domain) VALUES (%s, %s, 'victim.example')", (demo, cl))
        c.execute("INSERT INTO client_links (tenant_id, client_a, client_b) VALUES (%s, %s, %s)", (demo, min(cl, c2), max(cl, c2)))
        c.execute("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s, %s, 'Vic', 'vic@victim.example')", (demo, cl))
        site = c.execute("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'HQ') RETURNING id", (demo, cl)).fetchone()[0]
        c.execute("INSERT INTO assets (tenant_id, client_id, site_id, name, kind) VALUES (%s, %s, %s, 'PC-1', 'workstation')", (demo, cl, site))
        c.execute("INSERT INTO enrollment_tokens (tenant_id, client_id, name, prefix, token_hash) VALUES (%s, %s, 'rmm', 'tde_', '\\x00')", (demo, cl))
        c.execute("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'VAT', 20)", (demo,))
        c.execute("INSERT INTO invites (tenant_id, email, role, token_hash, link, expires_at) VALUES (%s, 'i@x.y', 'admin', '\\x01', 'l', now() + interval '1 day')", (demo,))
        c.execute("INSERT INTO api_keys (tenant_id, name, role, prefix, key_hash) VALUES (%s, 'k', 'admin', 'td_', '\\x02')", (demo,))
        c.execute("INSERT INTO import_batches (tenant_id, kind, body, rows) VALUES (%s, 'clients', 'name\\nX\\n', 1)", (demo,))
        uid = c.execute("SELECT id FROM users WHERE tenant_id = %s LIMIT 1", (demo,)).fetchone()[0]
        tk = c.execute("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 1001, 'Victim ticket', %s) RETURNING id", (demo, cl)).fetchone()[0]
        cm = c.execute("INSERT INTO ticket_comments (tenant_id, ticket_id, author_user_id, public, body) VALUES (%s, %s, %s, true, 'secret') RETURNING id", (demo, tk, uid)).fetchone()[0]
        c.execute("INSERT INTO blobs (tenant_id, sha256, size, data) VALUES (%s, sha256('x'), 1, 'x')", (demo,))
        c.execute("INSERT INTO ticket_attachments (tenant_id, ticket_id, comment_id, sha256, filename, content_type, size) VALUES (%s, %s, %s, sha256('x'), 'x.txt', 'text/plain', 1)", (demo, tk, cm))
        c.execute("INSERT INTO saved_views (tenant_id, user_id, name, query) VALUES (%s, %s, 'mine', 'assignee=me')", (demo, uid))
        c.execute("INSERT INTO maintenance_windows (tenant_id, client_id, during) VALUES (%s, %s, tstzrange(now(), now() + interval '1 hour'))", (demo, cl))
        c.execute("INSERT INTO ticket_queues (tenant_id, name) VALUES (%s, 'Victim desk')", (demo,))
        c.execute("INSERT INTO ticket_status_labels (tenant_id, status, label) VALUES (%s, 'new', 'Victim new')", (demo,))
        c.execute("INSERT INTO sla_holidays (tenant_id, tier_id, day, name) SELECT tenant_id, id, '2026-12-25', 'Xmas' FROM sla_tiers WHERE tenant_id = %s AND name = 'Bronze'", (demo,))
        c.execute("INSERT INTO sla_events (tenant_id, ticket_id, clock, kind, due_at) VALUES (%s, %s, 'response', 'breach', now())", (demo, tk))
        c.execute("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind) VALUES (%s, %s, %s, %s, now() - interval '1 hour', 30, 'billable')", (demo, tk, cl, uid))
        c.execute("INSERT INTO timers (tenant_id, user_id, ticket_id) VALUES (%s, %s, %s)", (demo, uid, tk))
        ct = c.execute("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, block_minutes, block_fee) VALUES (%s, %s, 'Victim block', 'block_hours', '2025-01-01', 600, 100) RETURNING id", (demo, cl)).fetchone()[0]
        c.execute("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, quantity, unit_price) VALUES (%s, %s, 'Victim line', 'fixed', 1, 10)", (demo, ct))
        c.execute("INSERT INTO contract_terms (tenant_id, contract_id, valid, flat_fee, block_rollover) VALUES (%s, %s, '[,2025-01-01)', 10, false)", (demo, ct))
        c.execute("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'help@victim.example')", (demo,))
        c.execute("INSERT INTO mail_messages (tenant_id, direction, message_id, raw_sha256, outcome, ticket_id, raw) VALUES (%s, 'in', '<v@victim.example>', sha256('v'), 'ticket', %s, 'v')", (demo, tk))
        c.execute("INSERT INTO mail_domains (tenant_id, domain, dkim_private_pem, dkim_public_b64) VALUES (%s, 'victim.example', 'k', 'p')", (demo,))
        c.execute("INSERT INTO mail_mailboxes (tenant_id, url, username) VALUES (%s, 'imap://mail.victim.example/INBOX', 'help')", (demo,))
        c.execute("INSERT INTO mail_templates (tenant_id, name, subject, body_text, body_html) VALUES (%s, 'ack', 'Victim {{ticket_ref}}', 'victim', '<p>victim</p>')", (demo,))
        iv = c.execute("INSERT INTO invoices (tenant_id, client_id, contract_id, status, number, issued_on, due_on, currency) VALUES (%s, %s, %s, 'issued', 'INV-0001', '2026-01-01', '2026-01-31', 'GBP') RETURNING id", (demo, cl, ct)).fetchone()[0]
        c.execute("INSERT INTO billing_numbers (tenant_id, kind, last) VALUES (%s, 'invoice', 1)", (demo,))
        c.execute("INSERT INTO billing_periods (tenant_id, contract_id, starts_on, covers, state, invoice_id) VALUES (%s, %s, '2025-01-01', '[2025-01-01,2025-02-01)', 'billed', %s)", (demo, ct, iv))
        il = c.execute("INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind, description, quantity, unit_price, amount) VALUES (%s, %s, 1, 'assets', 'Victim line', 1, 100, 100) RETURNING id", (demo, iv)).fetchone()[0]
        c.execute("INSERT INTO invoice_line_days (tenant_id, line_id, day, count) VALUES (%s, %s, '2025-01-01', 1)", (demo, il))
        c.execute("INSERT INTO invoice_line_entries (tenant_id, line_id, entry_id, raw_minutes, billed_minutes) SELECT tenant_id, %s, id, 30, 30 FROM time_entries WHERE tenant_id = %s LIMIT 1", (il, demo))
        c.execute("INSERT INTO credit_notes (tenant_id, invoice_id, number, amount, reason, issued_on) VALUES (%s, %s, 'CN-0001', 10, 'victim', '2026-01-02')", (demo, iv))
        c.execute("INSERT INTO payments (tenant_id, invoice_id, amount, paid_on, method) VALUES (%s, %s, 10, '2026-01-03', 'cash')", (demo, iv))
        sf = c.execute("INSERT INTO stored_files (tenant_id, content_type, bytes) VALUES (%s, 'application/pdf', %s) RETURNING id", (demo, b"%PDF victim")).fetchone()[0]
        c.execute("UPDATE invoices SET pdf_file_id = %s WHERE id = %s", (sf, iv))
        ob = c.execute("INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text, status) VALUES (%s, 'invoice', 'vic@victim.example', 'Invoice INV-0001', 'victim', 'sent') RETURNING id", (demo,)).fetchone()[0]
        c.execute("INSERT INTO outbox_attachments (tenant_id, outbox_id, position, filename, file_id) VALUES (%s, %s, 1, 'INV-0001.pdf', %s)", (demo, ob, sf))
        c.execute("INSERT INTO invoice_settings (tenant_id, payment_details) VALUES (%s, 'Victim bank')", (demo,))
        c.execute("INSERT INTO credit_note_lines (tenant_id, credit_note_id, tax_rate, net, tax) SELECT tenant_id, id, 0, 10, 0 FROM credit_notes WHERE tenant_id = %s", (demo,))
        vc = c.execute("INSERT INTO contacts (tenant_id, client_id, name, email, is_portal) VALUES (%s, %s, 'Portal Vic', 'pvic@victim.example', true) RETURNING id", (demo, cl)).fetchone()[0]
        c.execute("INSERT INTO portal_settings (tenant_id, welcome_text) VALUES (%s, 'Victim welcome')", (demo,))
        c.execute("INSERT INTO tenant_hosts (tenant_id, host) VALUES (%s, 'support.victim.example')", (demo,))
        c.execute("INSERT INTO portal_links (tenant_id, contact_id, token_hash, expires_at) VALUES (%s, %s, sha256('pl'), now() + interval '15 minutes')", (demo, vc))
        c.execute("INSERT INTO portal_sessions (tenant_id, contact_id, token_hash, csrf_token, expires_at) VALUES (%s, %s, sha256('ps'), 'c', now() + interval '1 hour')", (demo, vc))
    assert app.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    link = app.run("user", "invite", "--tenant", "rival", "--email", "boss@rival.test",
                   "--role", "admin").stdout.strip()
    b = Browser(app)
    path = link[len(app.url):]
    b.get(path)
    assert b.post(path, {"name": "Boss", "password": "rival password 1",
                         "password2": "rival password 1"}).status_code == 303
    return demo, b


def ids_in(app, table, tenant):
    return [r[0] for r in app.sql(f"SELECT id FROM {table} WHERE tenant_id = %s", (tenant,))]


def test_every_id_route_refuses_another_tenants_rows(app, victim_and_intruder):
    demo, intruder = victim_and_intruder
    before = snapshot(app, demo)
    tried = 0
    for method, pattern in routes():
        tables = next((t for rx, t in TABLE_OF if re.match(rx, pattern)), None)
        assert tables is not None, f"test_isolation.py does not know what {pattern} names: add it"
        path = pattern
        for param, table in tables.items():
            ids = ids_in(app, table, demo)
            assert ids, f"no {table} row of the victim for {pattern}"
            path = path.replace(":" + param, str(ids[0]), 1)
        path = re.sub(r":\w+", "1", path)
        intruder.get("/")  # a fresh CSRF token
        if method == "GET":
            r = intruder.get(path)
        else:
            r = intruder.s.request(method, app.url + path, data={"csrf": intruder.csrf, "name": "pwned",
                                   "role": "admin", "email": "p@w.n", "domain": "pwned.example",
                                   "other_id": "1", "keep": "1", "other": "1"},
                                   allow_redirects=False, timeout=20)
        assert r.status_code in (403, 404, 405), f"{method} {path} answered {r.status_code}"
        api = intruder.s.request(method, app.url + "/api/v1" + path,
                                 headers={"Accept": "application/json", "X-CSRF-Token": intruder.csrf},
                                 json={"name": "pwned"}, allow_redirects=False, timeout=20)
        assert api.status_code in (403, 404, 405, 415), f"API {method} {path} answered {api.status_code}"
        tried += 1
    assert tried >= 6
    assert snapshot(app, demo) == before
