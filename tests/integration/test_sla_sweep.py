"""tallydesk sla-sweep: each warning and breach raised once per clock,
across repeated and concurrent runs, per tenant, in business hours."""
import subprocess
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tdharness import BIN

PW = "correct horse battery"
UTC = timezone.utc
LOCK = 7342008  # app/slasweep.c SWEEP_LOCK


@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def tenant_of(app, slug):
    return app.sql("SELECT id FROM tenants WHERE slug = %s", (slug,))[0][0]


def make_client(app, tenant, name="Acme Ltd"):
    return app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, %s) RETURNING id", (tenant, name))[0][0]


def make_ticket(app, tenant, cid, tier_name, created, priority=3, status="new", **cols):
    """A ticket of tier_name created at `created` (the owner inserts it
    with the tenant bound, as the app would)."""
    with psycopg.connect(app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        n = c.execute("INSERT INTO ticket_numbers (tenant_id, last) VALUES (%s, 1001)"
                      " ON CONFLICT (tenant_id) DO UPDATE SET last = ticket_numbers.last + 1"
                      " RETURNING last", (tenant,)).fetchone()[0]
        tid = c.execute(
            "INSERT INTO tickets (tenant_id, number, subject, client_id, priority, created_at, sla_tier_id)"
            " SELECT %s, %s, 'Sweep me', %s, %s, %s, id FROM sla_tiers WHERE tenant_id = %s AND name = %s"
            " RETURNING id", (tenant, n, cid, priority, created, tenant, tier_name)).fetchone()[0]
        if status != "new" or cols:
            sets = ", ".join(f"{k} = %s" for k in cols)
            c.execute(f"UPDATE tickets SET status = %s{', ' + sets if sets else ''} WHERE id = %s",
                      (status, *cols.values(), tid))
    return tid


def events(app, where="true", params=()):
    return sorted(app.sql(f"SELECT ticket_id, clock, kind FROM sla_events WHERE {where}", params))


def sweep(app, *args):
    r = app.run("sla-sweep", *args, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_each_event_once_across_repeated_runs(demo):
    t = tenant_of(demo, "demo")
    cid = make_client(demo, t)
    now = datetime.now(UTC)
    # Gold P3: response 60 min (warning at 45), resolution 480 min (at 360)
    warn = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=50))
    late = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=70))
    later = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=500))
    fresh = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=5))
    paused = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=70), status="waiting")
    closed = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=70), status="closed",
                         closed_at=now - timedelta(minutes=65))
    answered = make_ticket(demo, t, cid, "Gold", now - timedelta(minutes=50),
                           first_response_at=now - timedelta(minutes=40))
    out = sweep(demo)
    assert "1 warning, 3 breaches" in out, out
    expect = sorted([(warn, "response", "warning"), (late, "response", "breach"),
                     (later, "response", "breach"), (later, "resolution", "breach")])
    assert events(demo) == expect
    # due_at is the clock's due time, raised_at the sweep's instant
    row = demo.sql("SELECT e.due_at = t.response_due_at, e.raised_at <= now(), e.raised_at >= %s"
                   " FROM sla_events e JOIN tickets t ON t.id = e.ticket_id"
                   " WHERE e.ticket_id = %s AND e.kind = 'warning'", (now, warn))[0]
    assert row == (True, True, True)
    for _ in range(2):
        out = sweep(demo)
        assert "0 warnings, 0 breaches" in out, out
    assert events(demo) == expect
    # later on, the rest comes due, each once
    soon = (now + timedelta(minutes=400)).isoformat()
    out = sweep(demo, "--now", soon)
    got = set(events(demo)) - set(expect)
    assert got == {(warn, "response", "breach"), (warn, "resolution", "warning"),
                   (late, "resolution", "warning"), (fresh, "response", "breach"),
                   (fresh, "resolution", "warning"), (answered, "resolution", "warning")}, got
    assert "warning" in out and "0 warnings, 0 breaches" in sweep(demo, "--now", soon)
    assert not events(demo, "ticket_id IN (%s, %s)", (paused, closed))
    # nothing left pending is looked at again: the index only holds pending tickets
    pending = demo.sql("SELECT count(*) FROM sla_schedule WHERE next_at <= %s", (now + timedelta(minutes=400),))
    assert pending == [(0,)]


def test_concurrent_runs_raise_each_event_once(demo):
    t = tenant_of(demo, "demo")
    cid = make_client(demo, t)
    now = datetime.now(UTC)
    with psycopg.connect(demo.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(t),))
        c.execute("INSERT INTO tickets (tenant_id, number, subject, client_id, priority, created_at,"
                  " sla_tier_id) SELECT %s, 5000 + g, 'Storm', %s, 3, %s - g * interval '1 minute',"
                  " (SELECT id FROM sla_tiers WHERE tenant_id = %s AND name = 'Gold')"
                  " FROM generate_series(1, 600) g", (t, cid, now, t))
    procs = [subprocess.Popen([BIN, "--config", demo.conf, "sla-sweep"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    expected = demo.sql(
        "SELECT count(*) FILTER (WHERE first_response_at IS NULL AND response_due_at <= now())"
        " + count(*) FILTER (WHERE resolution_due_at <= now())"
        " + count(*) FILTER (WHERE response_warn_at <= now() AND response_due_at > now())"
        " + count(*) FILTER (WHERE resolution_warn_at <= now() AND resolution_due_at > now())"
        " FROM tickets")[0][0]
    got = demo.sql("SELECT count(*), count(DISTINCT (ticket_id, clock, kind)) FROM sla_events")[0]
    # every event once, whichever run raised it (a minute may tip one more over between the two counts)
    assert got[0] == got[1] and abs(got[0] - expected) <= 2 and got[0] > 500, (got, expected, outs)
    assert "0 warnings, 0 breaches" in sweep(demo, "--now", now.isoformat())


def test_a_run_while_another_holds_the_lock_does_nothing(demo):
    t = tenant_of(demo, "demo")
    cid = make_client(demo, t)
    make_ticket(demo, t, cid, "Gold", datetime.now(UTC) - timedelta(hours=9))
    with psycopg.connect(demo.db_url, autocommit=True) as c:
        c.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        r = demo.run("sla-sweep", timeout=60)
        assert r.returncode == 0 and "another run holds the lock" in r.stdout, r.stdout + r.stderr
        assert events(demo) == []
    assert "2 breaches" in sweep(demo)


def test_sweep_respects_tenants(demo):
    a = tenant_of(demo, "demo")
    assert demo.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    b = tenant_of(demo, "rival")
    now = datetime.now(UTC)
    ta = make_ticket(demo, a, make_client(demo, a), "Gold", now - timedelta(minutes=70))
    tb1 = make_ticket(demo, b, make_client(demo, b, "Theirs"), "Gold", now - timedelta(minutes=70))
    tb2 = make_ticket(demo, b, make_client(demo, b, "Theirs 2"), "Gold", now - timedelta(minutes=50))
    out = sweep(demo)
    assert "2 tenants" in out and "1 warning, 2 breaches" in out, out
    rows = demo.sql("SELECT e.tenant_id, e.ticket_id, e.kind FROM sla_events e"
                    " JOIN tickets t ON t.tenant_id = e.tenant_id AND t.id = e.ticket_id ORDER BY e.ticket_id")
    assert rows == [(a, ta, "breach"), (b, tb1, "breach"), (b, tb2, "warning")]
    # the app role sees only its own tenant's events
    with psycopg.connect(demo.app_db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(a),))
        assert c.execute("SELECT ticket_id FROM sla_events").fetchall() == [(ta,)]


def test_business_hours_warnings_wait_for_opening_hours(demo):
    t = tenant_of(demo, "demo")
    cid = make_client(demo, t)
    # Bronze (Mon-Fri 09:00-17:30 London) P3: response 240 min, warning at 180.
    # Friday 27 March 2026 14:00 GMT: warning Friday 17:00, due Monday 09:30 BST.
    tid = make_ticket(demo, t, cid, "Bronze", datetime(2026, 3, 27, 14, 0, tzinfo=UTC))
    row = demo.sql("SELECT response_warn_at, response_due_at FROM tickets WHERE id = %s", (tid,))[0]
    assert row == (datetime(2026, 3, 27, 17, 0, tzinfo=UTC), datetime(2026, 3, 30, 8, 30, tzinfo=UTC))
    # the sweep was down on Friday evening; at 3 a.m. on Sunday nothing is raised
    assert "0 warnings" in sweep(demo, "--now", "2026-03-29 03:00:00+00")
    assert events(demo) == []
    assert "0 warnings" in sweep(demo, "--now", "2026-03-30 07:59:00+00")  # 08:59 BST
    # Monday 09:05 BST: the warning
    assert "1 warning" in sweep(demo, "--now", "2026-03-30 08:05:00+00")
    assert demo.sql("SELECT clock, kind, raised_at FROM sla_events") == [
        ("response", "warning", datetime(2026, 3, 30, 8, 5, tzinfo=UTC))]
    assert "1 breach" in sweep(demo, "--now", "2026-03-30 08:31:00+00")
    assert events(demo) == [(tid, "response", "breach"), (tid, "response", "warning")]


def test_bad_arguments(demo):
    r = demo.run("sla-sweep", "--now", "yesterday-ish", timeout=60)
    assert r.returncode == 2 and "--now" in r.stderr, r.stdout + r.stderr
    r = demo.run("sla-sweep", "--frobnicate", timeout=60)
    assert r.returncode == 2 and "unexpected argument" in r.stderr
    r = demo.run("--help")
    assert "sla-sweep" in r.stdout


def test_a_failure_exits_non_zero(demo):
    r = demo.run("sla-sweep", env={"TALLYDESK_DATABASE_URL": "host=/nonexistent dbname=none"}, timeout=60)
    assert r.returncode == 1 and "sla-sweep" in r.stderr, r.stdout + r.stderr
