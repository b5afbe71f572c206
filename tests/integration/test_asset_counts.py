"""Per-day billable asset counts from asset history: what billing prorates on."""
import datetime as dt

import psycopg
import pytest

PW = "correct horse battery"


@pytest.fixture
def seeded(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    return app


def setup_client(app):
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    with psycopg.connect(app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tid),))
        a = c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme') RETURNING id", (tid,)).fetchone()[0]
        b = c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Globex') RETURNING id", (tid,)).fetchone()[0]
    return tid, a, b


def counts(app, tid, client, first, last, kinds=None, categories=None):
    with psycopg.connect(app.app_db_url) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tid),))
        rows = c.execute("SELECT day, count FROM asset_daily_counts(%s, %s, %s, 'Europe/London', %s, %s)",
                         (client, first, last, kinds, categories)).fetchall()
    return {d: n for d, n in rows}


def history(app, tid, asset, client, kind, category, counts_, start, end):
    """A history row for [start, end) in London time (end None = still open)."""
    app.sql("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
            " VALUES (%s, %s, %s, %s, %s, %s, tstzrange((%s::timestamp AT TIME ZONE 'Europe/London'),"
            " (%s::timestamp AT TIME ZONE 'Europe/London')))",
            (tid, asset, client, kind, category, counts_, start, end))


def test_the_trigger_records_history_for_every_billing_relevant_change(seeded):
    app = seeded
    tid, acme, globex = setup_client(app)
    with psycopg.connect(app.app_db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tid),))
        aid = c.execute("INSERT INTO assets (tenant_id, client_id, name, kind, category)"
                        " VALUES (%s, %s, 'SRV-01', 'server', 'managed') RETURNING id", (tid, acme)).fetchone()[0]
        c.execute("UPDATE assets SET notes = 'no billing change' WHERE id = %s", (aid,))
        c.execute("UPDATE assets SET category = 'premium' WHERE id = %s", (aid,))
        c.execute("UPDATE assets SET client_id = %s WHERE id = %s", (globex, aid))
        c.execute("UPDATE assets SET archived_at = now() WHERE id = %s", (aid,))
        rows = c.execute("SELECT client_id, category, counts, upper_inf(valid) FROM asset_history"
                         " WHERE asset_id = %s ORDER BY lower(valid), id", (aid,)).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (acme, "managed", True), (acme, "premium", True), (globex, "premium", True), (globex, "premium", False)]
    assert [r[3] for r in rows] == [False, False, False, True]


def test_daily_counts_follow_adds_archives_category_changes_and_moves(seeded):
    app = seeded
    tid, acme, globex = setup_client(app)
    app.sql("SELECT set_config('app.tenant_id', %s, false)", (str(tid),))
    # Ten workstations all month, at Acme.
    for i in range(10):
        history(app, tid, 1000 + i, acme, "workstation", "", True, "2026-10-01 00:00", None)
    # A server added on the 6th at 14:00.
    history(app, tid, 2000, acme, "server", "managed", True, "2026-11-06 14:00", None)
    # A server archived on the 11th at 09:00 (counts until then, then not).
    history(app, tid, 2001, acme, "server", "managed", True, "2026-10-01 00:00", "2026-11-11 09:00")
    history(app, tid, 2001, acme, "server", "managed", False, "2026-11-11 09:00", None)
    # A server whose category changed on the 16th.
    history(app, tid, 2002, acme, "server", "managed", True, "2026-10-01 00:00", "2026-11-16 12:00")
    history(app, tid, 2002, acme, "server", "premium", True, "2026-11-16 12:00", None)
    # A server moved to Globex on the 21st at 23:30 London time.
    history(app, tid, 2003, acme, "server", "managed", True, "2026-10-01 00:00", "2026-11-21 23:30")
    history(app, tid, 2003, globex, "server", "managed", True, "2026-11-21 23:30", None)

    day = dt.date
    all_acme = counts(app, tid, acme, "2026-11-01", "2026-11-30")
    assert len(all_acme) == 30
    assert all_acme[day(2026, 11, 1)] == 10 + 3       # workstations + 2001, 2002, 2003
    assert all_acme[day(2026, 11, 6)] == 10 + 4       # the new server counts from its first day
    assert all_acme[day(2026, 11, 10)] == 14
    assert all_acme[day(2026, 11, 11)] == 13          # archived that morning
    assert all_acme[day(2026, 11, 21)] == 12          # moved away before the day ended
    assert all_acme[day(2026, 11, 22)] == 12
    servers = counts(app, tid, acme, "2026-11-01", "2026-11-30", kinds=["server"])
    assert servers[day(2026, 11, 5)] == 3 and servers[day(2026, 11, 30)] == 2
    managed = counts(app, tid, acme, "2026-11-01", "2026-11-30", categories=["managed"])
    assert managed[day(2026, 11, 15)] == 3 and managed[day(2026, 11, 16)] == 2
    globex_servers = counts(app, tid, globex, "2026-11-01", "2026-11-30", kinds=["server"])
    assert globex_servers[day(2026, 11, 20)] == 0 and globex_servers[day(2026, 11, 21)] == 1
    # Proration as billing will do it: the sum of daily counts over the days.
    assert sum(servers.values()) == 3 * 5 + 4 * 5 + 3 * 10 + 2 * 10


def test_other_tenants_history_is_invisible(seeded):
    app = seeded
    tid, acme, _ = setup_client(app)
    history(app, tid, 3000, acme, "server", "", True, "2026-10-01 00:00", None)
    with psycopg.connect(app.app_db_url) as c:
        c.execute("SELECT set_config('app.tenant_id', '999999', false)")
        rows = c.execute("SELECT sum(count) FROM asset_daily_counts(%s, '2026-11-01', '2026-11-03',"
                         " 'Europe/London', NULL, NULL)", (acme,)).fetchone()
    assert rows[0] == 0
