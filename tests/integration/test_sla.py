"""SLA tiers and clocks: shipped tiers, due times (24x7, business hours
across DST and holidays), pause/resume, priority and tier changes, VIP,
first response, the settings page and the report."""
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from tdclient import Browser

PW = "correct horse battery"
UTC = timezone.utc


@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def key(app, role="admin", tenant="demo"):
    r = app.run("apikey", "create", "--tenant", tenant, "--name", "k" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def login(app, who="admin"):
    b = Browser(app)
    r = b.login(f"{who}@demo.tallydesk.test", PW)
    assert r.status_code == 303, r.text[:300]
    return b


def client(app, h, name="Acme Ltd"):
    r = app.post("/api/v1/clients", json={"name": name}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["client"]["id"]


def ticket(app, h, cid, **kw):
    body = {"subject": "Server down", "client_id": cid}
    body.update(kw)
    r = app.post("/api/v1/tickets", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["ticket"]["id"]


def tier_id(app, name, tenant="demo"):
    return app.sql("SELECT s.id FROM sla_tiers s JOIN tenants t ON t.id = s.tenant_id"
                   " WHERE t.slug = %s AND s.name = %s", (tenant, name))[0][0]


def clocks(app, tid):
    return app.sql("SELECT response_due_at, resolution_due_at, sla_paused_at, sla_paused_seconds,"
                   " response_warn_at, resolution_warn_at FROM tickets WHERE id = %s", (tid,))[0]


def place(app, tid, tier, created, priority=None):
    """Moves a ticket to a tier and a creation instant (as the owner): the
    trigger recomputes its clocks from there."""
    if priority is None:
        app.sql("UPDATE tickets SET sla_tier_id = %s, created_at = %s WHERE id = %s",
                (tier, created, tid))
    else:
        app.sql("UPDATE tickets SET sla_tier_id = %s, created_at = %s, priority = %s WHERE id = %s",
                (tier, created, priority, tid))


def at(s):
    return datetime.fromisoformat(s).astimezone(UTC)


def close_to(a, b, secs=5):
    return abs((a - b).total_seconds()) <= secs


# ---------------------------------------------------------------- tiers


def test_every_tenant_gets_the_shipped_tiers(demo):
    r = demo.run("tenant", "create", "--slug", "newco", "--name", "New Co",
                 "--time-zone", "Europe/Paris")
    assert r.returncode == 0, r.stderr
    owner_made = demo.sql("INSERT INTO tenants (slug, name) VALUES ('byowner', 'By owner') RETURNING id")[0][0]
    for slug in ("demo", "newco", "byowner"):
        rows = demo.sql(
            "SELECT s.name, s.is_fallback, s.calendar, s.time_zone, s.response_minutes,"
            " s.resolution_minutes, s.pause_on_waiting, s.warn_percent,"
            " cardinality(array_remove(s.opens, NULL))"
            " FROM sla_tiers s JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = %s"
            " ORDER BY s.position", (slug,))
        names = [row[0] for row in rows]
        assert names == ["Gold", "Silver", "Bronze", "No contract"], (slug, names)
        by = {row[0]: row for row in rows}
        assert [n for n, f, *_ in rows if f] == ["No contract"]
        assert by["Gold"][2] == "24x7" and by["Gold"][8] == 0
        assert by["Silver"][2] == "business" and by["Silver"][8] == 5
        assert by["Bronze"][2] == "business" and by["Bronze"][8] == 5
        for row in rows:
            assert len(row[4]) == 4 and row[4] == sorted(row[4]), row
            assert all(res >= resp for resp, res in zip(row[4], row[5])), row
            assert row[6] is True and row[7] == 75
    tz = demo.sql("SELECT DISTINCT s.time_zone FROM sla_tiers s JOIN tenants t ON t.id = s.tenant_id"
                  " WHERE t.slug = 'newco'")
    assert tz == [("Europe/Paris",)]
    assert owner_made > 0


def test_new_ticket_gets_the_fallback_tier_and_due_times(demo):
    h = key(demo)
    cid = client(demo, h)
    tid = ticket(demo, h, cid, priority=2)
    row = demo.sql("SELECT s.name, t.created_at, t.response_due_at, t.resolution_due_at"
                   " FROM tickets t JOIN sla_tiers s ON s.tenant_id = t.tenant_id AND s.id = t.sla_tier_id"
                   " WHERE t.id = %s", (tid,))[0]
    assert row[0] == "No contract"
    assert row[2] > row[1] and row[3] > row[2]
    # every way in gets clocks: alert intake too
    r = demo.post("/api/v1/alerts", json={"dedupe_key": "disk-1", "severity": "critical",
                                          "subject": "Disk full", "client_id": cid}, headers=h)
    assert r.status_code in (200, 201), r.text
    assert demo.sql("SELECT count(*) FROM tickets WHERE source = 'alert'"
                    " AND sla_tier_id IS NOT NULL AND resolution_due_at IS NOT NULL")[0][0] == 1


def test_due_times_on_a_24x7_tier(demo):
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    created = datetime(2026, 3, 28, 23, 50, tzinfo=UTC)  # a Saturday night
    for prio, resp, reso in ((1, 15, 120), (2, 30, 240), (3, 60, 480), (4, 120, 1440)):
        tid = ticket(demo, h, cid, priority=prio)
        place(demo, tid, gold, created)
        c = clocks(demo, tid)
        assert c[0] == created + timedelta(minutes=resp), prio
        assert c[1] == created + timedelta(minutes=reso), prio
        # warnings at 75 % of the target
        assert c[4] == created + timedelta(seconds=resp * 60 * 75 // 100)
        assert c[5] == created + timedelta(seconds=reso * 60 * 75 // 100)


def test_business_hours_across_both_dst_changes(demo):
    h = key(demo)
    cid = client(demo, h)
    bronze = tier_id(demo, "Bronze")  # Mon-Fri 09:00-17:30 Europe/London
    # Spring: Friday 27 March 2026 16:30 GMT; clocks go forward on Sunday 29th.
    tid = ticket(demo, h, cid, priority=2)  # 120 min response, 960 min resolution
    place(demo, tid, bronze, datetime(2026, 3, 27, 16, 30, tzinfo=UTC))
    c = clocks(demo, tid)
    # 60 min on Friday, then Monday 09:00 BST (08:00Z) + 60 min
    assert c[0] == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
    # 60 Fri + 510 Mon + 390 Tue: Tuesday 15:30 BST
    assert c[1] == datetime(2026, 3, 31, 14, 30, tzinfo=UTC)
    # Autumn: Friday 23 October 2026 16:30 BST (15:30Z); back to GMT on the 25th.
    tid = ticket(demo, h, cid, priority=2)
    place(demo, tid, bronze, datetime(2026, 10, 23, 15, 30, tzinfo=UTC))
    c = clocks(demo, tid)
    assert c[0] == datetime(2026, 10, 26, 10, 0, tzinfo=UTC)  # Monday 10:00 GMT
    # created at the weekend: the clock starts on Monday's opening
    tid = ticket(demo, h, cid, priority=1)  # 60 min
    place(demo, tid, bronze, datetime(2026, 10, 25, 12, 0, tzinfo=UTC))
    assert clocks(demo, tid)[0] == datetime(2026, 10, 26, 10, 0, tzinfo=UTC)
    # the warning of a business-hours clock is in business hours too:
    # 75 % of 960 = 720 min from Fri 16:30 GMT -> 60 Fri + 510 Mon + 150 Tue
    tid = ticket(demo, h, cid, priority=2)
    place(demo, tid, bronze, datetime(2026, 3, 27, 16, 30, tzinfo=UTC))
    assert clocks(demo, tid)[5] == datetime(2026, 3, 31, 10, 30, tzinfo=UTC)  # 11:30 BST


def test_holiday_is_skipped(demo):
    h = key(demo)
    cid = client(demo, h)
    bronze = tier_id(demo, "Bronze")
    r = demo.post(f"/api/v1/settings/sla/{bronze}/holidays",
                  json={"day": "2026-03-30", "name": "Staff day"}, headers=h)
    assert r.status_code == 201, r.text
    tid = ticket(demo, h, cid, priority=2)
    place(demo, tid, bronze, datetime(2026, 3, 27, 16, 30, tzinfo=UTC))
    # Friday 60 min, Monday is a holiday, Tuesday 09:00 BST + 60 min
    assert clocks(demo, tid)[0] == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    # a repeated day is refused, a bad one too
    r = demo.post(f"/api/v1/settings/sla/{bronze}/holidays", json={"day": "2026-03-30"}, headers=h)
    assert r.status_code == 422 and "day" in r.json()["error"]["fields"], r.text
    r = demo.post(f"/api/v1/settings/sla/{bronze}/holidays", json={"day": "2026-02-30"}, headers=h)
    assert r.status_code == 422 and "day" in r.json()["error"]["fields"], r.text
    hid = demo.sql("SELECT id FROM sla_holidays WHERE day = '2026-03-30'")[0][0]
    r = demo.post(f"/api/v1/settings/sla/{bronze}/holidays/{hid}/delete", json={}, headers=h)
    assert r.status_code == 200, r.text
    acts = [a for (a,) in demo.sql("SELECT action FROM audit_log WHERE object_type = 'sla_tier'"
                                   " AND object_id = %s ORDER BY id", (bronze,))]
    assert acts == ["sla_holiday.create", "sla_holiday.delete"]


def test_pause_on_waiting_extends_by_the_paused_time(demo):
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    tid = ticket(demo, h, cid, priority=3)  # 60 / 480 min
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    place(demo, tid, gold, created)
    r = demo.post(f"/api/v1/tickets/{tid}", json={"status": "waiting"}, headers=h)
    assert r.status_code == 200, r.text
    c = clocks(demo, tid)
    assert c[2] is not None and c[3] == 0
    assert demo.sql("SELECT sla_state(t), s.running, s.next_at FROM tickets t JOIN sla_schedule s"
                    " ON s.ticket_id = t.id WHERE t.id = %s", (tid,))[0] == ("paused", False, None)
    # 30 minutes pass while waiting
    demo.sql("UPDATE tickets SET sla_paused_at = sla_paused_at - interval '30 minutes' WHERE id = %s", (tid,))
    r = demo.post(f"/api/v1/tickets/{tid}", json={"status": "in_progress"}, headers=h)
    assert r.status_code == 200, r.text
    c = clocks(demo, tid)
    assert c[2] is None and abs(c[3] - 1800) <= 5, c
    assert close_to(c[0], created + timedelta(minutes=60, seconds=1800))
    assert close_to(c[1], created + timedelta(minutes=480, seconds=1800))
    # a priority change recomputes from creation and keeps the paused time
    r = demo.post(f"/api/v1/tickets/{tid}", json={"priority": 1}, headers=h)
    assert r.status_code == 200, r.text
    c2 = clocks(demo, tid)
    assert c2[3] == c[3]
    assert c2[0] == created + timedelta(minutes=15, seconds=c[3])
    assert c2[1] == created + timedelta(minutes=120, seconds=c[3])
    # so does a change of tier
    silver = tier_id(demo, "Silver")
    demo.sql("UPDATE tickets SET sla_tier_id = %s WHERE id = %s", (silver, tid))
    c3 = clocks(demo, tid)
    assert c3[3] == c[3]
    expect = demo.sql("SELECT sla_add_business(tenant_id, %s, created_at, 30 * 60 + %s)"
                      " FROM tickets WHERE id = %s", (silver, c[3], tid))[0][0]
    assert c3[0] == expect


def test_a_tier_that_does_not_pause_keeps_running(demo):
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    r = demo.post(f"/api/v1/settings/sla/{gold}", json={"pause_on_waiting": False}, headers=h)
    assert r.status_code == 200, r.text
    tid = ticket(demo, h, cid)
    place(demo, tid, gold, datetime.now(UTC) - timedelta(minutes=5))
    before = clocks(demo, tid)
    demo.post(f"/api/v1/tickets/{tid}", json={"status": "waiting"}, headers=h)
    after = clocks(demo, tid)
    assert after[2] is None and after[0] == before[0] and after[1] == before[1]


def test_pause_counts_business_time_only(demo):
    """Paused from 23:00 yesterday to now, where today is a holiday: one
    business hour, whatever the time of day."""
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    r = demo.post("/api/v1/settings/sla", json={"name": "All days", "based_on": gold}, headers=h)
    assert r.status_code == 201, r.text
    t = r.json()["tier"]
    hours = {f"opens_{d}": "00:00" for d in range(1, 8)}
    hours.update({f"closes_{d}": "24:00" for d in range(1, 8)})
    r = demo.post(f"/api/v1/settings/sla/{t['id']}",
                  json={"calendar": "business", "time_zone": "UTC", **hours}, headers=h)
    assert r.status_code == 200, r.text
    today = demo.sql("SELECT (now() AT TIME ZONE 'UTC')::date")[0][0]
    r = demo.post(f"/api/v1/settings/sla/{t['id']}/holidays", json={"day": today.isoformat()}, headers=h)
    assert r.status_code == 201, r.text
    tid = ticket(demo, h, cid, priority=3)
    yesterday_2300 = datetime.combine(today, datetime.min.time(), UTC) - timedelta(hours=1)
    place(demo, tid, t["id"], yesterday_2300 - timedelta(hours=2))
    demo.post(f"/api/v1/tickets/{tid}", json={"status": "waiting"}, headers=h)
    demo.sql("UPDATE tickets SET sla_paused_at = %s WHERE id = %s", (yesterday_2300, tid))
    demo.post(f"/api/v1/tickets/{tid}", json={"status": "in_progress"}, headers=h)
    assert clocks(demo, tid)[3] == 3600


def test_vip_contacts(demo):
    h = key(demo)
    cid = client(demo, h)
    vip = demo.sql("INSERT INTO contacts (tenant_id, client_id, name, is_vip)"
                   " SELECT tenant_id, id, 'The Boss', true FROM clients WHERE id = %s RETURNING id", (cid,))[0][0]
    gold = tier_id(demo, "Gold")  # VIP handling: bump the priority
    created = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
    plain = ticket(demo, h, cid, priority=3)
    boss = ticket(demo, h, cid, priority=3, contact_id=vip)
    place(demo, plain, gold, created)
    place(demo, boss, gold, created)
    assert clocks(demo, plain)[0] == created + timedelta(minutes=60)
    assert clocks(demo, boss)[0] == created + timedelta(minutes=30)  # P2's target
    # the tier's own VIP targets instead
    r = demo.post(f"/api/v1/settings/sla/{gold}", json={"vip_mode": "targets", "vip_response_minutes": 5,
                                                        "vip_resolution_minutes": 90}, headers=h)
    assert r.status_code == 200, r.text
    demo.sql("UPDATE tickets SET priority = 4 WHERE id = %s", (boss,))
    c = clocks(demo, boss)
    assert c[0] == created + timedelta(minutes=5) and c[1] == created + timedelta(minutes=90)
    r = demo.post(f"/api/v1/settings/sla/{gold}", json={"vip_mode": "targets", "vip_response_minutes": ""},
                  headers=h)
    assert r.status_code == 422 and "vip_response_minutes" in r.json()["error"]["fields"]


def test_first_public_staff_reply_meets_the_response(demo):
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    tid = ticket(demo, h, cid, priority=3)
    place(demo, tid, gold, datetime.now(UTC) - timedelta(minutes=50))  # at risk: 50 of 60 min
    assert demo.sql("SELECT sla_state(t) FROM tickets t WHERE id = %s", (tid,))[0][0] == "at_risk"
    b = login(demo)
    b.get(f"/tickets/{tid}")
    r = b.post(f"/tickets/{tid}/comments", {"body": "note", "visibility": "internal"})
    assert r.status_code == 303, r.text[:300]
    assert demo.sql("SELECT first_response_at FROM tickets WHERE id = %s", (tid,))[0][0] is None
    r = b.post(f"/tickets/{tid}/comments", {"body": "On it", "visibility": "public"})
    assert r.status_code == 303, r.text[:300]
    row = demo.sql("SELECT t.first_response_at <= t.response_due_at, sla_state(t), s.next_at = t.resolution_warn_at"
                   " FROM tickets t JOIN sla_schedule s ON s.ticket_id = t.id WHERE t.id = %s", (tid,))[0]
    assert row == (True, "ok", True)
    # a late first reply is a breach of the response clock
    late = ticket(demo, h, cid, priority=3)
    place(demo, late, gold, datetime.now(UTC) - timedelta(minutes=70))
    assert demo.sql("SELECT sla_state(t) FROM tickets t WHERE id = %s", (late,))[0][0] == "breached"
    b.post(f"/tickets/{late}/comments", {"body": "Sorry", "visibility": "public"})
    assert demo.sql("SELECT sla_state(t) FROM tickets t WHERE id = %s", (late,))[0][0] == "breached"


def test_ticket_json_shows_the_sla(demo):
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    tid = ticket(demo, h, cid, priority=3)
    place(demo, tid, gold, datetime.now(UTC) - timedelta(minutes=95))
    t = demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]
    sla = t["sla"]
    assert sla["tier"] == "Gold"
    assert sla["response"]["state"] == "breached" and sla["response"]["label"] == "Overdue by 35 min"
    assert "badge-p1" in sla["response"]["css"]
    assert sla["resolution"]["state"] == "ok" and sla["resolution"]["label"] in ("6 h 25 min left", "6 h 24 min left")
    b = login(demo)
    page = b.get(f"/tickets/{tid}").text
    assert "Overdue by 35 min" in page and 'data-sla-state="breached"' in page
    due = demo.sql("SELECT to_char(response_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                   " FROM tickets WHERE id = %s", (tid,))[0][0]
    assert sla["response"]["due_at_iso"] == due and f'datetime="{due}"' in page
    # A ticket without a tier has no SLA box.
    demo.sql("UPDATE tickets SET sla_tier_id = NULL, response_due_at = NULL, resolution_due_at = NULL,"
             " response_warn_at = NULL, resolution_warn_at = NULL WHERE id = %s", (tid,))
    assert demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]["sla"] is None
    assert "data-sla-state" not in b.get(f"/tickets/{tid}").text


def test_ticket_sla_box_in_every_state(demo):
    """The box's clocks say what sla_state says of the ticket, at risk,
    paused and met, with due times in the tenant's zone."""
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    tid = ticket(demo, h, cid, priority=3)
    place(demo, tid, gold, datetime.now(UTC) - timedelta(minutes=50))  # 50 of 60 min
    sla = demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]["sla"]
    assert sla["tier"] == "Gold" and sla["calendar"] in ("business", "24x7")
    assert sla["business_hours"] == (sla["calendar"] == "business")
    assert sla["response"]["state"] == "at_risk" and "badge-p2" in sla["response"]["css"]
    assert sla["response"]["label"] in ("10 min left", "9 min left")
    local = demo.sql("SELECT to_char(t.response_due_at AT TIME ZONE n.time_zone, 'YYYY-MM-DD HH24:MI')"
                     " FROM tickets t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = %s", (tid,))[0][0]
    assert sla["response"]["due_at"] == local
    assert local in login(demo).get(f"/tickets/{tid}").text
    # Paused (waiting on the client): both clocks say so, time left kept.
    demo.sql("UPDATE sla_tiers SET pause_on_waiting = true WHERE id = %s", (gold,))
    demo.sql("UPDATE tickets SET status = 'waiting' WHERE id = %s", (tid,))
    assert demo.sql("SELECT sla_state(t) FROM tickets t WHERE id = %s", (tid,))[0][0] == "paused"
    sla = demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]["sla"]
    assert sla["response"]["state"] == "paused" and sla["response"]["label"].startswith("Paused, ")
    assert sla["resolution"]["state"] == "paused"
    # Answered in time: the response clock is met, the resolution runs on.
    demo.sql("UPDATE tickets SET status = 'in_progress', first_response_at = now() WHERE id = %s", (tid,))
    sla = demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]["sla"]
    assert sla["response"]["state"] == "met" and sla["response"]["label"] == "Met"
    assert sla["resolution"]["state"] == "ok"
    # A tier without a resolution target: that clock is absent, not broken.
    demo.sql("UPDATE tickets SET resolution_due_at = NULL, resolution_warn_at = NULL WHERE id = %s", (tid,))
    sla = demo.get(f"/api/v1/tickets/{tid}", headers=h).json()["ticket"]["sla"]
    assert sla["resolution"] is None and sla["response"]["state"] == "met"


# ------------------------------------------------------------- settings


def test_settings_page_edit_validates_and_audits(demo):
    b = login(demo)
    r = b.get("/settings/sla")
    assert r.status_code == 200
    assert "Gold" in r.text and "No contract fallback" in r.text and 'href="/settings/sla"' in r.text
    bronze = tier_id(demo, "Bronze")
    r = b.get(f"/settings/sla/{bronze}")
    assert r.status_code == 200 and 'name="response_1" value="60"' in r.text
    form = {"name": "Bronze", "warn_percent": "80", "vip_mode": "bump", "calendar": "business",
            "time_zone": "Europe/London", "pause_on_waiting": "1", "vip_response_minutes": "",
            "vip_resolution_minutes": ""}
    for k, (resp, reso) in enumerate(((60, 480), (120, 960), (240, 1920), (480, 4800)), 1):
        form[f"response_{k}"] = str(resp)
        form[f"resolution_{k}"] = str(reso)
    for d in range(1, 8):
        form[f"opens_{d}"] = "08:30" if d <= 5 else ""
        form[f"closes_{d}"] = "17:00" if d <= 5 else ""
    bad = dict(form, response_2="soon", time_zone="Mars/Olympus", opens_3="18:00", warn_percent="100")
    r = b.post(f"/settings/sla/{bronze}", bad)
    assert r.status_code == 422
    assert 'value="soon"' in r.text and "enter minutes" in r.text
    assert "IANA time zone" in r.text and "after the opening time" in r.text and "from 1 to 99" in r.text
    assert demo.sql("SELECT warn_percent FROM sla_tiers WHERE id = %s", (bronze,))[0][0] == 75
    r = b.post(f"/settings/sla/{bronze}", dict(form, resolution_1="30"))
    assert r.status_code == 422 and "cannot be shorter than the response target" in r.text
    r = b.post(f"/settings/sla/{bronze}", form)
    assert r.status_code == 303 and r.headers["Location"] == f"/settings/sla/{bronze}"
    row = demo.sql("SELECT warn_percent, opens::text, closes::text FROM sla_tiers WHERE id = %s", (bronze,))[0]
    assert row == (80, "{08:30:00,08:30:00,08:30:00,08:30:00,08:30:00,NULL,NULL}",
                   "{17:00:00,17:00:00,17:00:00,17:00:00,17:00:00,NULL,NULL}")
    audit = demo.sql("SELECT action, before, after FROM audit_log WHERE object_type = 'sla_tier' ORDER BY id")
    assert [a for a, _, _ in audit] == ["sla_tier.update"]
    assert audit[0][1]["warn_percent"] == 75 and audit[0][2]["warn_percent"] == 80
    assert audit[0][2]["hours"][0] == {"day": 1, "day_name": "Monday", "opens": "08:30", "closes": "17:00"}
    # a technician may not
    tech = key(demo, "technician")
    assert demo.get("/api/v1/settings/sla", headers=tech).status_code == 403
    assert demo.post(f"/api/v1/settings/sla/{bronze}", json={"warn_percent": 50}, headers=tech).status_code == 403


def test_tiers_api_create_fallback_and_delete(demo):
    h = key(demo)
    r = demo.get("/api/v1/settings/sla", headers=h)
    assert r.status_code == 200
    tiers = {t["name"]: t for t in r.json()["tiers"]}
    assert tiers["Gold"]["response_minutes"] == [15, 30, 60, 120]
    r = demo.post("/api/v1/settings/sla", json={"name": "gold"}, headers=h)
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]
    r = demo.post("/api/v1/settings/sla", json={"name": "Platinum", "based_on": tiers["Gold"]["id"]}, headers=h)
    assert r.status_code == 201, r.text
    plat = r.json()["tier"]
    assert plat["calendar"] == "24x7" and plat["response_minutes"] == [15, 30, 60, 120]
    r = demo.post(f"/api/v1/settings/sla/{plat['id']}", json={"response_minutes": [5, 10, 20, 40],
                                                              "is_fallback": True}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["tier"]["response_minutes"] == [5, 10, 20, 40]
    fallback = demo.sql("SELECT t.name FROM sla_tiers t JOIN tenants n ON n.id = t.tenant_id"
                        " WHERE n.slug = 'demo' AND is_fallback")
    assert fallback == [("Platinum",)]
    # new tickets now get it
    cid = client(demo, h)
    tid = ticket(demo, h, cid)
    assert demo.sql("SELECT sla_tier_id FROM tickets WHERE id = %s", (tid,))[0][0] == plat["id"]
    r = demo.post(f"/api/v1/settings/sla/{plat['id']}/delete", json={}, headers=h)
    assert r.status_code == 409
    nc = tiers["No contract"]["id"]
    r = demo.post(f"/api/v1/settings/sla/{nc}/delete", json={}, headers=h)
    assert r.status_code == 200, r.text
    assert demo.sql("SELECT count(*) FROM sla_tiers WHERE id = %s", (nc,))[0][0] == 0
    r = demo.post(f"/api/v1/settings/sla/{plat['id']}", json={"calendar": "business",
                                                              **{f"opens_{d}": "" for d in range(1, 8)},
                                                              **{f"closes_{d}": "" for d in range(1, 8)}},
                  headers=h)
    assert r.status_code == 422 and "calendar" in r.json()["error"]["fields"]


# --------------------------------------------------------------- report


def test_report_numbers_match_the_tickets(demo):
    h = key(demo)
    acme = client(demo, h, "Acme Ltd")
    beta = client(demo, h, "Beta plc")
    gold = tier_id(demo, "Gold")
    day = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)

    def made(cid, prio, responded_after, closed_after):
        tid = ticket(demo, h, cid, priority=prio)
        place(demo, tid, gold, day)
        if responded_after is not None:
            demo.sql("UPDATE tickets SET first_response_at = created_at + %s WHERE id = %s",
                     (timedelta(minutes=responded_after), tid))
        if closed_after is not None:
            demo.sql("UPDATE tickets SET status = 'closed', closed_at = created_at + %s WHERE id = %s",
                     (timedelta(minutes=closed_after), tid))
        return tid

    # Acme P3 (60/480): met/met, breached/met, met/breached
    made(acme, 3, 10, 100)
    made(acme, 3, 90, 400)
    made(acme, 3, 30, 600)
    # Beta P1 (15/120): met, open with resolution long overdue
    made(beta, 1, 5, None)
    # outside the period
    old = ticket(demo, h, acme, priority=3)
    place(demo, old, gold, datetime(2026, 5, 1, 10, 0, tzinfo=UTC))
    b = login(demo, "morgan")
    r = b.get("/reports/sla?from=2026-06-01&to=2026-06-30&by=client")
    assert r.status_code == 200, r.text[:300]
    assert "<svg" in r.text and "Acme Ltd" in r.text
    r = demo.get("/api/v1/reports/sla?from=2026-06-01&to=2026-06-30&by=client", headers=key(demo, "manager"))
    assert r.status_code == 200
    rows = {x["group"]: x for x in r.json()["rows"]}
    assert rows["Acme Ltd"] == {"group": "Acme Ltd", "tickets": 3, "response_met": 2, "response_breached": 1,
                                "response_rate": "66.7", "resolution_met": 2, "resolution_breached": 1,
                                "resolution_rate": "66.7"}
    assert rows["Beta plc"]["response_rate"] == "100.0" and rows["Beta plc"]["resolution_breached"] == 1
    assert r.json()["totals"]["tickets"] == 4
    r = demo.get("/api/v1/reports/sla?from=2026-06-01&to=2026-06-30&by=priority", headers=h)
    assert [x["group"] for x in r.json()["rows"]] == ["P1", "P3"]
    r = demo.get("/api/v1/reports/sla?from=2026-06-01&to=2026-06-30&by=tier", headers=h)
    assert [(x["group"], x["tickets"]) for x in r.json()["rows"]] == [("Gold", 4)]
    # CSV
    r = b.get("/reports/sla.csv?from=2026-06-01&to=2026-06-30&by=client")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    got = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert got[0] == ["group", "tickets", "response_met", "response_breached", "response_hit_rate",
                      "resolution_met", "resolution_breached", "resolution_hit_rate"]
    assert got[1] == ["Acme Ltd", "3", "2", "1", "66.7", "2", "1", "66.7"]
    assert got[2][0] == "Beta plc" and len(got) == 3
    # bad periods, roles
    r = b.get("/reports/sla?from=2026-06-31&to=2026-06-01")
    assert r.status_code == 422 and "enter a date" in r.text
    r = demo.get("/api/v1/reports/sla?from=2026-06-10&to=2026-06-01", headers=h)
    assert r.status_code == 422 and "to" in r.json()["error"]["fields"]
    assert demo.get("/api/v1/reports/sla.csv?from=x", headers=h).status_code == 422
    tech = key(demo, "technician")
    assert demo.get("/api/v1/reports/sla", headers=tech).status_code == 403


def test_pages_are_valid_html(demo):
    import shutil
    import subprocess
    if not shutil.which("tidy"):
        pytest.skip("tidy is not installed")
    h = key(demo)
    cid = client(demo, h)
    gold = tier_id(demo, "Gold")
    ticket(demo, h, cid)
    b = login(demo)
    pages = [b.get("/settings/sla"), b.get(f"/settings/sla/{gold}"),
             b.post(f"/settings/sla/{gold}", {"name": ""}),
             b.post(f"/settings/sla/{gold}/holidays", {"day": "nope"}),
             b.get("/reports/sla"), b.get("/reports/sla?from=x")]
    assert [p.status_code for p in pages] == [200, 200, 422, 422, 200, 422]
    for p in pages:
        r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8",
                            "--drop-empty-elements", "no"], input=p.text, capture_output=True, text=True)
        errors = [l for l in r.stderr.splitlines() if "Error:" in l]
        assert not errors, (p.url, errors)
    # the holiday form keeps what was typed and says what is wrong, next to it
    assert 'value="nope"' in pages[3].text and "enter a date as YYYY-MM-DD" in pages[3].text


def test_a_tier_a_contract_uses_cannot_be_deleted(demo):
    if demo.sql("SELECT to_regclass('contracts')")[0][0] is None:
        pytest.skip("no contracts table yet (migration 0009)")
    h = key(demo)
    r = demo.post("/api/v1/settings/sla", json={"name": "Contracted"}, headers=h)
    assert r.status_code == 201, r.text
    tier = r.json()["tier"]["id"]
    cid = client(demo, h)
    demo.sql("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, sla_tier_id)"
             " SELECT tenant_id, id, 'Support', 'all_you_can_eat', current_date, %s FROM clients WHERE id = %s",
             (tier, cid))
    r = demo.post(f"/api/v1/settings/sla/{tier}/delete", json={}, headers=h)
    assert r.status_code == 409 and "Contracts use this tier" in r.text, r.text
    b = login(demo)
    r = b.post(f"/settings/sla/{tier}/delete", {})
    assert r.status_code == 409 and "Contracts use this tier" in r.text
    assert demo.sql("SELECT count(*) FROM sla_tiers WHERE id = %s", (tier,))[0][0] == 1
    # and its new tickets get the contract's tier
    t = ticket(demo, h, cid)
    assert demo.sql("SELECT sla_tier_id FROM tickets WHERE id = %s", (t,))[0][0] == tier
