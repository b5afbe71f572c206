"""Time tracking: timers (one per technician, start/stop atomic), stop
commits time, closing discards running timers, manual and bulk entry,
closed-ticket and invoice locks, approval, rates, DST, reports."""
import csv
import datetime
import io
import re
import threading
import time

import pytest
import requests
from tdclient import Browser

PW = "correct horse battery"


@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def login(app, who="tess"):
    b = Browser(app)
    r = b.login(f"{who}@demo.tallydesk.test", PW)
    assert r.status_code == 303, r.text[:300]
    return b


def key(app, role="admin"):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def client(app, h, name="Acme Ltd"):
    r = app.post("/api/v1/clients", json={"name": name}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["client"]["id"]


def ticket(app, h, cid, subject="Printer on fire", **kw):
    body = {"subject": subject, "client_id": cid}
    body.update(kw)
    r = app.post("/api/v1/tickets", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["ticket"]


def uid(app, who):
    return app.sql("SELECT id FROM users WHERE email = %s", (f"{who}@demo.tallydesk.test",))[0][0]


def api(b, method, path, body=None):
    """A JSON call with the browser session (cookie + CSRF header)."""
    hdr = {"Accept": "application/json", "X-CSRF-Token": b.csrf}
    url = b.app.url + "/api/v1" + path
    if method == "GET":
        return b.s.get(url, headers=hdr, timeout=20, allow_redirects=False)
    return b.s.post(url, json=body or {}, headers=hdr, timeout=20, allow_redirects=False)


def entries(app, where="TRUE", params=None):
    return app.sql("SELECT ticket_id, user_id, minutes, kind, status, description, service, source, timer_id"
                   f" FROM time_entries WHERE {where} ORDER BY id", params)


def test_start_stop_commits_and_nav_shows_timer(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    b = login(demo)
    r = b.post(f"/tickets/{t['id']}/timer", {"next": f"/tickets/{t['id']}"})
    assert r.status_code == 303, r.text[:500]
    # the nav bar on any page shows the running timer, with a no-JS start time
    r = b.get("/clients")
    assert r.status_code == 200
    m = re.search(r'<div id="timer"[^>]*>(.*?)</div>', r.text, re.S)
    assert m and t["ref"] in m.group(1) and 'data-started="' in m.group(1) and "since " in m.group(1), m
    # the ticket header offers Stop, not Start
    r = b.get(f"/tickets/{t['id']}")
    assert 'action="/timer/stop"' in r.text and 'id="timer-start"' not in r.text
    # ten minutes ago, really
    demo.sql("UPDATE timers SET started_at = now() - interval '10 minutes 5 seconds'")
    r = b.post("/timer/stop", {"kind": "internal", "description": "Swapped toner", "service": "ONSITE",
                               "next": f"/tickets/{t['id']}"})
    assert r.status_code == 303, r.text[:500]
    assert entries(demo) == [(t["id"], uid(demo, "tess"), 11, "internal", "committed", "Swapped toner", "ONSITE",
                              "timer", entries(demo)[0][8])]
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    r = b.get(f"/tickets/{t['id']}")
    assert "Swapped toner" in r.text and "0:11" in r.text and "logged 0:11 Internal time" in r.text
    m = re.search(r'<div id="timer"[^>]*>(.*?)</div>', r.text, re.S)
    assert m.group(1) == ""
    # the API twin has the entries and the total
    j = demo.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert j["ticket"]["time_total_minutes"] == 11 and len(j["time_entries"]) == 1
    # who logged it and for which client: the names the person and the client have now
    demo.sql("UPDATE users SET name = 'Tess Renamed' WHERE id = %s", (uid(demo, "tess"),))
    j = demo.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    e = j["time_entries"][0]
    assert e["user"] == {"id": uid(demo, "tess"), "name": "Tess Renamed"}
    assert e["client"]["id"] == cid and e["client"]["name"] == demo.sql(
        "SELECT name FROM clients WHERE id = %s", (cid,))[0][0]
    assert [x["who"] for x in j["timeline"] if x.get("action") == "time.create"] == ["Tess Renamed"]
    assert "Tess Renamed" in b.get(f"/tickets/{t['id']}").text
    # a stop with nothing running is a 409
    assert api(b, "POST", "/timer/stop").status_code == 409
    # API keys have no timers
    assert demo.post(f"/api/v1/tickets/{t['id']}/timer", headers=h).status_code == 403


def test_second_start_is_409_naming_the_running_timer(demo):
    h = key(demo)
    cid = client(demo, h)
    t1 = ticket(demo, h, cid, "First job")
    t2 = ticket(demo, h, cid, "Second job")
    b = login(demo)
    r = api(b, "POST", f"/tickets/{t1['id']}/timer")
    assert r.status_code == 201 and r.json()["timer"]["ref"] == t1["ref"]
    r = api(b, "POST", f"/tickets/{t2['id']}/timer")
    assert r.status_code == 409
    assert t1["ref"] in r.json()["error"]["message"] and "First job" in r.json()["error"]["message"]
    # the browser gets the page offering to stop and commit the running one first
    r = b.post(f"/tickets/{t2['id']}/timer")
    assert r.status_code == 409
    assert "Stop, commit and start on " + t2["ref"] in r.text
    assert f'name="then_start" value="{t2["id"]}"' in r.text
    r = b.post("/timer/stop", {"then_start": str(t2["id"]), "kind": "billable"})
    assert r.status_code == 303 and r.headers["Location"] == f"/tickets/{t2['id']}"
    assert [(e[0], e[4]) for e in entries(demo)] == [(t1["id"], "committed")]
    assert demo.sql("SELECT ticket_id FROM timers")[0][0] == t2["id"]


def test_race_two_tabs_200_times(demo):
    """Two sessions of one technician hammer start/stop: never two timers,
    every stop that succeeded committed exactly one entry."""
    h = key(demo)
    cid = client(demo, h)
    ts = [ticket(demo, h, cid, f"Job {i}") for i in range(2)]
    tabs = [login(demo), login(demo)]
    me = uid(demo, "tess")
    stops = [0, 0]
    max_running = [0]
    done = threading.Event()
    errors = []

    def watch():
        while not done.is_set():
            n = demo.sql("SELECT count(*) FROM timers WHERE user_id = %s", (me,))[0][0]
            max_running[0] = max(max_running[0], n)

    def hammer(k):
        b = tabs[k]
        for i in range(100):
            r = api(b, "POST", f"/tickets/{ts[(i + k) % 2]['id']}/timer")
            if r.status_code not in (201, 409):
                errors.append(("start", r.status_code, r.text[:200]))
            r = api(b, "POST", "/timer/stop", {"kind": "billable"})
            if r.status_code == 200:
                stops[k] += 1
            elif r.status_code != 409:
                errors.append(("stop", r.status_code, r.text[:200]))

    w = threading.Thread(target=watch)
    w.start()
    th = [threading.Thread(target=hammer, args=(k,)) for k in range(2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    done.set()
    w.join()
    assert not errors, errors[:5]
    assert max_running[0] <= 1
    n, distinct = demo.sql("SELECT count(*), count(DISTINCT timer_id) FROM time_entries WHERE source = 'timer'")[0]
    assert n == sum(stops) and distinct == n and n > 0
    started = demo.sql("SELECT count(*) FROM audit_log WHERE action = 'time.timer_start'")[0][0]
    # every started timer is either committed or still running
    assert started == n + demo.sql("SELECT count(*) FROM timers")[0][0]


def test_close_discards_running_timer_and_says_so(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    tess, tom = login(demo, "tess"), login(demo, "tom")
    assert tess.post(f"/tickets/{t['id']}/timer").status_code == 303
    assert tom.post(f"/tickets/{t['id']}/timer").status_code == 303
    r = tess.post(f"/tickets/{t['id']}/close", {"confirm_no_time": "1"})
    assert r.status_code == 303
    r = tess.get(f"/tickets/{t['id']}")
    assert "2 running timers on it were discarded" in r.text
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    assert demo.sql("SELECT count(*) FROM time_entries")[0][0] == 0
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'time.timer_discard'"
                    " AND object_type = 'ticket' AND object_id = %s", (t["id"],))[0][0] == 2
    # the header offers no Start on a closed ticket, and a start is refused
    assert 'id="timer-start"' not in r.text
    assert api(tess, "POST", f"/tickets/{t['id']}/timer").status_code == 409


def test_close_guard_passes_once_time_is_logged(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    assert demo.post(f"/api/v1/tickets/{t['id']}/close", json={}, headers=h).status_code == 409
    b = login(demo)
    r = api(b, "POST", f"/tickets/{t['id']}/time",
            {"started_at": "2026-03-02 09:30", "duration": "0:45", "description": "Diagnosed"})
    assert r.status_code == 201, r.text
    assert r.json()["entry"]["minutes"] == 45 and r.json()["entry"]["status"] == "committed"
    r = demo.post(f"/api/v1/tickets/{t['id']}/close", json={}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["closed_without_time"] is False and r.json()["timers_discarded"] == 0


def test_entries_on_closed_tickets_need_reopen_and_reason(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    b = login(demo)
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02T09:00", "duration": "30"})
    assert r.status_code == 201, r.text
    eid = r.json()["entry"]["id"]
    assert demo.post(f"/api/v1/tickets/{t['id']}/close", json={}, headers=h).status_code == 200
    # no change, no new time, no delete while closed
    r = api(b, "POST", f"/time/entries/{eid}", {"duration": "40"})
    assert r.status_code == 409 and "reopen" in r.json()["error"]["message"]
    r = api(b, "POST", f"/time/entries/{eid}/delete")
    assert r.status_code == 409
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02T10:00", "duration": "15"})
    assert r.status_code == 422 and "reopen" in r.json()["error"]["fields"]["ticket"]
    # the browser page says so too
    r = b.post(f"/time/entries/{eid}", {"started_at": "2026-03-02T09:00", "duration": "40", "kind": "billable"})
    assert r.status_code == 409 and "reopen it to change its time" in r.text
    assert demo.post(f"/api/v1/tickets/{t['id']}/reopen", json={}, headers=h).status_code == 200
    # after the reopen a change needs a reason, recorded with who
    r = api(b, "POST", f"/time/entries/{eid}", {"duration": "40"})
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = api(b, "POST", f"/time/entries/{eid}", {"duration": "40", "reason": "forgot the drive back"})
    assert r.status_code == 200 and r.json()["entry"]["minutes"] == 40
    row = demo.sql("SELECT actor_user_id, after::text FROM audit_log WHERE action = 'time.update' AND object_id = %s", (eid,))
    assert row[0][0] == uid(demo, "tess")
    assert "forgot the drive back" in str(row[0][1])
    # an entry on an invoice is locked outright, even in SQL
    demo.sql("UPDATE time_entries SET invoice_line_id = 1 WHERE id = %s", (eid,))
    r = api(b, "POST", f"/time/entries/{eid}", {"duration": "50", "reason": "x"})
    assert r.status_code == 409 and "invoice" in r.json()["error"]["message"]
    with pytest.raises(Exception):
        demo.sql("UPDATE time_entries SET minutes = 1 WHERE id = %s", (eid,))
    with pytest.raises(Exception):
        demo.sql("DELETE FROM time_entries WHERE id = %s", (eid,))


def test_other_technicians_entries_and_roles(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    tess, tom, boss = login(demo, "tess"), login(demo, "tom"), login(demo, "morgan")
    r = api(tess, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "1:00"})
    eid = r.json()["entry"]["id"]
    assert api(tom, "POST", f"/time/entries/{eid}", {"duration": "5"}).status_code == 403
    assert api(boss, "POST", f"/time/entries/{eid}", {"duration": "50"}).status_code == 200
    # a technician cannot log for someone else; a manager can
    r = api(tom, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "10",
                                           "user_id": str(uid(demo, "tess"))})
    assert r.status_code == 422
    r = api(boss, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "10",
                                            "user_id": str(uid(demo, "tom"))})
    assert r.status_code == 201 and r.json()["entry"]["user"]["id"] == uid(demo, "tom")
    # technicians have no approvals, reports or missing-time pages
    for p in ("/time/approvals", "/reports/time", "/time/missing", "/settings/time"):
        assert tom.get(p).status_code == 403, p


def test_manual_entry_validation(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    b = login(demo)
    bad = [({"duration": "1:60"}, "duration"), ({"duration": "-5"}, "duration"), ({"duration": "25:00"}, "duration"),
           ({"started_at": "2026-02-30 09:00"}, "started_at"), ({"started_at": "yesterday"}, "started_at"),
           ({"started_at": "2099-01-01 09:00"}, "started_at"), ({"ticket": "T-99999"}, "ticket"),
           ({"kind": "free"}, "kind")]
    for change, fld in bad:
        body = {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "30"}
        body.update(change)
        r = api(b, "POST", "/time/entries", body)
        assert r.status_code == 422 and fld in r.json()["error"]["fields"], (change, r.text)
    # the form shows what was typed and the message
    r = b.post("/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02T09:00", "duration": "1:5"})
    assert r.status_code == 422 and 'value="1:5"' in r.text and "h:mm" in r.text
    assert demo.sql("SELECT count(*) FROM time_entries")[0][0] == 0


def test_dst_gap_rejected_and_timer_across_dst_counts_real_minutes(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    b = login(demo)
    assert demo.sql("SELECT time_zone FROM tenants WHERE slug = 'demo'")[0][0] == "Europe/London"
    # 01:30 on 2026-03-29 never happened in London
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-29 01:30", "duration": "30"})
    assert r.status_code == 422
    msg = r.json()["error"]["fields"]["started_at"]
    assert "does not exist in Europe/London" in msg and "02:30" in msg
    # 02:30 that day is BST: 01:30 UTC
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-29 02:30", "duration": "30"})
    assert r.status_code == 201
    assert r.json()["entry"]["started_at_iso"] == "2026-03-29T01:30:00Z"
    # a winter time is GMT
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-01-10 09:00", "duration": "30"})
    assert r.json()["entry"]["started_at_iso"] == "2026-01-10T09:00:00Z"
    # the technician's own zone wins over the workspace's
    demo.sql("UPDATE users SET time_zone = 'America/New_York' WHERE id = %s", (uid(demo, "tess"),))
    r = api(b, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-01-10 09:00", "duration": "30"})
    assert r.json()["entry"]["started_at_iso"] == "2026-01-10T14:00:00Z"
    demo.sql("UPDATE users SET time_zone = NULL")
    # a timer that ran across the autumn change: real elapsed minutes,
    # not the wall-clock difference (which is an hour less)
    assert b.post(f"/tickets/{t['id']}/timer").status_code == 303
    # half an hour before the latest change of the clocks in London (last
    # Sunday of March or October, 01:00 UTC) at least a day ago
    change = demo.sql(
        "SELECT max(d) FROM (SELECT (date_trunc('month', make_date(y, m, 1)) + interval '1 month'"
        " - interval '1 day')::date AS last, y, m FROM generate_series(extract(year FROM now())::int - 1,"
        " extract(year FROM now())::int) y, unnest(ARRAY[3, 10]) m) x,"
        " LATERAL (SELECT (last - extract(dow FROM last)::int)::timestamp AT TIME ZONE 'UTC'"
        " + interval '1 hour' AS d) z WHERE d < now() - interval '1 day'")[0][0]
    start = change - datetime.timedelta(minutes=30)
    demo.sql("UPDATE timers SET started_at = %s", (start,))
    real, wall = demo.sql(
        "SELECT ceil(extract(epoch FROM now() - %s::timestamptz) / 60)::int,"
        " ceil(extract(epoch FROM (now() AT TIME ZONE 'Europe/London') - (%s::timestamptz AT TIME ZONE"
        " 'Europe/London')) / 60)::int", (start, start))[0]
    assert abs(real - wall) == 60
    r = api(b, "POST", "/timer/stop", {"kind": "billable"})
    assert r.status_code == 200, r.text
    got = r.json()["entry"]["minutes"]
    assert real <= got <= real + 1


def test_approval_gates_and_rejected_goes_back(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    admin, tess, boss = login(demo, "admin"), login(demo, "tess"), login(demo, "morgan")
    assert admin.get("/settings/time").status_code == 200
    assert admin.post("/settings/time", {"approval": "1", "hours": "8"}).status_code == 303
    assert demo.sql("SELECT time_approval, timer_alert_hours FROM tenants WHERE slug = 'demo'")[0] == (True, 8)
    # no contract: the default kind is internal
    r = api(tess, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "60",
                                            "kind": "billable"})
    e1 = r.json()["entry"]
    assert e1["status"] == "pending"
    r = api(tess, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 11:00", "duration": "30"})
    e2 = r.json()["entry"]["id"]
    # pending is not committed: reports leave it out of billable
    r = boss.get("/reports/time?from=2026-03-01&to=2026-03-31")
    assert r.status_code == 200
    j = api(boss, "GET", "/reports/time?from=2026-03-01&to=2026-03-31").json()
    assert j["totals"]["billable"]["minutes"] == 0 and j["totals"]["pending"]["minutes"] == 90
    r = boss.get("/time/approvals")
    assert r.status_code == 200 and f'value="{e1["id"]}"' in r.text
    # rejecting needs a note
    r = boss.post("/time/approvals", {"action": "reject", "id": str(e2)})
    assert r.status_code == 422
    r = boss.post("/time/approvals", {"action": "reject", "id": str(e2), "note": "That was lunch"})
    assert r.status_code == 303
    r = boss.post("/time/approvals", {"action": "approve", "id": str(e1["id"])})
    assert r.status_code == 303
    assert demo.sql("SELECT status, review_note FROM time_entries ORDER BY id") == [("committed", ""), ("rejected", "That was lunch")]
    j = api(boss, "GET", "/reports/time?from=2026-03-01&to=2026-03-31").json()
    assert j["totals"]["billable"]["minutes"] == 60 and j["totals"]["pending"]["minutes"] == 0
    # the technician sees the note and a change sends it back for approval
    r = tess.get("/time?from=2026-03-02")
    assert "That was lunch" in r.text and "Sent back by a manager" in r.text
    r = api(tess, "POST", f"/time/entries/{e2}", {"duration": "20"})
    assert r.status_code == 200 and r.json()["entry"]["status"] == "pending"
    # bulk approve through the API
    r = api(boss, "POST", "/time/approvals", {"action": "approve", "ids": [e2]})
    assert r.status_code == 200 and r.json()["approved"] == 1


def test_rates_per_user(demo):
    admin = login(demo, "admin")
    tess = uid(demo, "tess")
    r = admin.post(f"/settings/users/{tess}/rates", {"hourly_rate": "85.5", "cost_rate": "30", "time_zone": ""})
    assert r.status_code == 303
    assert demo.sql("SELECT hourly_rate::text, cost_rate::text, time_zone FROM users WHERE id = %s", (tess,))[0] == ("85.50", "30.00", None)
    r = admin.get("/settings/time")
    assert 'value="85.50"' in r.text
    r = admin.post(f"/settings/users/{tess}/rates", {"hourly_rate": "85.555", "cost_rate": "", "time_zone": "Mars/Base"})
    assert r.status_code == 422
    assert demo.sql("SELECT hourly_rate::text FROM users WHERE id = %s", (tess,))[0][0] == "85.50"
    # empty means the contract's rate
    assert admin.post(f"/settings/users/{tess}/rates", {"hourly_rate": "", "cost_rate": "", "time_zone": "Europe/Paris"}).status_code == 303
    assert demo.sql("SELECT hourly_rate, time_zone FROM users WHERE id = %s", (tess,))[0] == (None, "Europe/Paris")
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'user.rates'")[0][0] == 2


def test_bulk_entry_all_or_nothing(demo):
    h = key(demo)
    cid = client(demo, h)
    t1 = ticket(demo, h, cid, "One")
    t2 = ticket(demo, h, cid, "Two")
    b = login(demo)
    assert b.get("/time/bulk").status_code == 200
    form = {"date": "2026-03-03", "ticket_1": t1["ref"], "duration_1": "1:00", "description_1": "Morning",
            "ticket_2": t2["ref"], "duration_2": "0:99"}
    r = b.post("/time/bulk", form)
    assert r.status_code == 422 and 'value="Morning"' in r.text
    assert demo.sql("SELECT count(*) FROM time_entries")[0][0] == 0
    form["duration_2"] = "45"
    form["kind_2"] = "internal"
    r = b.post("/time/bulk", form)
    assert r.status_code == 303, r.text[:500]
    rows = demo.sql("SELECT ticket_id, minutes, kind, to_char(started_at AT TIME ZONE 'Europe/London', 'HH24:MI'), source"
                    " FROM time_entries ORDER BY id")
    # no contract, so the row without a type is internal; rows follow each other from 09:00
    assert rows == [(t1["id"], 60, "internal", "09:00", "bulk"),
                    (t2["id"], 45, "internal", "10:00", "bulk")]


def test_report_totals_equal_sum_of_entries_and_csv(demo):
    h = key(demo)
    c1, c2 = client(demo, h, "Acme"), client(demo, h, "Beta")
    t1, t2 = ticket(demo, h, c1), ticket(demo, h, c2)
    tess, tom, boss = login(demo, "tess"), login(demo, "tom"), login(demo, "morgan")
    import random
    rnd = random.Random(7)
    for i in range(30):
        b = (tess, tom)[i % 2]
        tk = (t1, t2)[rnd.randrange(2)]
        r = api(b, "POST", "/time/entries", {"ticket": tk["ref"], "started_at": f"2026-03-{1 + i % 28:02d} 10:00",
                                             "duration": str(rnd.randint(1, 300)),
                                             "kind": rnd.choice(["billable", "internal", "prepaid"])})
        assert r.status_code == 201, r.text
    # one outside the period
    api(tess, "POST", "/time/entries", {"ticket": t1["ref"], "started_at": "2026-04-01 00:30", "duration": "33"})
    # one billable entry is on an invoice: logged vs billed
    demo.sql("UPDATE time_entries SET invoice_line_id = 1 WHERE id = (SELECT min(id) FROM time_entries"
             " WHERE kind = 'billable' AND started_at < '2026-04-01')")
    billed = demo.sql("SELECT minutes FROM time_entries WHERE invoice_line_id IS NOT NULL")[0][0]
    # cost at each technician's cost rate (Tom has none: 0)
    demo.sql("UPDATE users SET cost_rate = 31.17 WHERE email = 'tess@demo.tallydesk.test'")
    cost = demo.sql("SELECT round(sum(minutes * 31.17) * 100 / 60) FROM time_entries e JOIN users u ON u.id = e.user_id"
                    " WHERE u.email = 'tess@demo.tallydesk.test' AND started_at < '2026-04-01 00:00 Europe/London'")[0][0]
    for by in ("technician", "client", "type"):
        j = api(boss, "GET", f"/reports/time?from=2026-03-01&to=2026-03-31&by={by}").json()
        for kind in ("billable", "internal", "prepaid"):
            want = demo.sql("SELECT coalesce(sum(minutes), 0) FROM time_entries WHERE kind = %s AND status = 'committed'"
                            " AND started_at >= '2026-03-01 00:00 Europe/London' AND started_at < '2026-04-01 00:00 Europe/London'", (kind,))[0][0]
            assert j["totals"][kind]["minutes"] == want
            assert sum(row[kind]["minutes"] for row in j["rows"]) == want
        assert j["totals"]["total"]["minutes"] == sum(j["totals"][k]["minutes"] for k in ("billable", "internal", "prepaid"))
        assert j["totals"]["billed"]["minutes"] == billed
        cents = [int(x["cost"].replace(".", "")) for x in j["rows"]]
        assert int(j["totals"]["cost"].replace(".", "")) == sum(cents)
        assert abs(sum(cents) - cost) <= len(cents)  # each row rounds once
        assert j["totals"]["unbilled"]["minutes"] == j["totals"]["billable"]["minutes"] - billed
        r = boss.get(f"/reports/time.csv?from=2026-03-01&to=2026-03-31&by={by}")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert rows[-1]["name"] == "Total"
        assert int(rows[-1]["total_minutes"]) == sum(int(x["total_minutes"]) for x in rows[:-1]) == j["totals"]["total"]["minutes"]
    r = boss.get("/reports/time?from=2026-03-31&to=2026-03-01")
    assert r.status_code == 422


def test_missing_time_view(demo):
    h = key(demo)
    cid = client(demo, h)
    t1 = ticket(demo, h, cid, "Closed quietly")
    t2 = ticket(demo, h, cid, "Long timer")
    assert demo.post(f"/api/v1/tickets/{t1['id']}/close", json={"confirm_no_time": True}, headers=h).status_code == 200
    tess = login(demo)
    assert tess.post(f"/tickets/{t2['id']}/timer").status_code == 303
    demo.sql("UPDATE timers SET started_at = now() - interval '12 hours'")
    api(tess, "POST", "/time/entries", {"ticket": t2["ref"], "started_at": "2026-03-02 09:00",
                                        "duration": "30", "kind": "billable"})
    boss = login(demo, "morgan")
    r = boss.get("/time/missing")
    assert r.status_code == 200
    j = api(boss, "GET", "/time/missing").json()
    assert [x["ref"] for x in j["closed_without_time"]] == [t1["ref"]]
    assert [x["ref"] for x in j["long_timers"]] == [t2["ref"]] and j["long_timers"][0]["technician"] == "Tess Technician"


def test_time_page_and_discard(demo):
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    b = login(demo)
    r = b.get("/time")
    assert r.status_code == 200 and "Log time by hand" in r.text
    assert b.post(f"/tickets/{t['id']}/timer").status_code == 303
    r = b.get("/timer")
    assert r.status_code == 200 and t["ref"] in r.text
    r = b.post("/timer/discard")
    assert r.status_code == 303
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    assert demo.sql("SELECT count(*) FROM time_entries")[0][0] == 0


def test_time_pages_are_valid_html(demo):
    import shutil
    import subprocess
    if not shutil.which("tidy"):
        pytest.skip("tidy is not installed (./dev test installs it)")
    h = key(demo)
    cid = client(demo, h)
    t = ticket(demo, h, cid)
    t2 = ticket(demo, h, cid, "Other")
    admin = login(demo, "admin")
    r = api(admin, "POST", "/time/entries", {"ticket": t["ref"], "started_at": "2026-03-02 09:00", "duration": "30",
                                             "description": "Looked <b>hard</b>"})
    eid = r.json()["entry"]["id"]
    assert admin.post(f"/tickets/{t['id']}/timer").status_code == 303
    pages = {p: admin.get(p) for p in (f"/tickets/{t['id']}", f"/tickets/{t2['id']}", "/time?from=2026-03-02",
                                       "/timer", "/time/bulk", "/time/approvals", "/time/missing",
                                       "/reports/time?from=2026-03-01&to=2026-03-31", "/settings/time",
                                       f"/time/entries/{eid}")}
    pages["conflict"] = admin.post(f"/tickets/{t2['id']}/timer")
    pages["bad entry"] = admin.post("/time/entries", {"ticket": "T-1", "duration": "x"})
    for p, r in pages.items():
        assert r.status_code in (200, 409, 422), (p, r.status_code)
        assert "<b>hard</b>" not in r.text, p
        out = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                             input=r.text, capture_output=True, text=True)
        errors = [l for l in out.stderr.splitlines() if "Error:" in l]
        assert not errors, (p, errors)


def test_alert_auto_close_discards_running_timer(demo):
    rmm = {"Authorization": "Bearer " + demo.run("apikey", "create", "--tenant", "demo", "--name", "rmm",
                                                 "--role", "technician").stdout.strip()}
    h = key(demo)
    cid = client(demo, h)
    a = {"client_id": cid, "dedupe_key": "disk", "severity": "critical", "subject": "Disk full",
         "message": "C: 99%", "source": "NinjaOne"}
    r = requests.post(demo.url + "/api/v1/alerts", headers=rmm, json=a, timeout=30)
    tk = r.json()["results"][0]["ticket_id"]
    b = login(demo)
    assert b.post(f"/tickets/{tk}/timer").status_code == 303
    r = requests.post(demo.url + "/api/v1/alerts", headers=rmm, json=dict(a, state="resolved"), timeout=30)
    assert r.json()["results"][0]["action"] == "closed"
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    assert demo.sql("SELECT after->>'timers_discarded' FROM audit_log WHERE action = 'ticket.close'"
                    " AND object_id = %s", (tk,)) == [("1",)]
    r = b.get(f"/tickets/{tk}")
    # the ticket's timeline says whose timer was discarded and why
    tl = re.search(r'<ol class="timeline.*?</ol>', r.text, re.S).group(0)
    assert "Tess Technician" in tl and "the ticket was closed" in tl
    assert re.search(r'<div id="timer"[^>]*></div>', r.text)


def test_close_racing_stop_commits_or_discards_exactly_once(demo):
    h = key(demo)
    cid = client(demo, h)
    b = login(demo)
    for i in range(25):
        t = ticket(demo, h, cid, f"Race {i}")
        assert api(b, "POST", f"/tickets/{t['id']}/timer").status_code == 201
        out = {}

        def close():
            out["close"] = demo.post(f"/api/v1/tickets/{t['id']}/close", json={"confirm_no_time": True},
                                     headers=h).status_code

        def stop():
            out["stop"] = api(b, "POST", "/timer/stop", {"kind": "internal"}).status_code

        th = [threading.Thread(target=close), threading.Thread(target=stop)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        assert out["close"] == 200 and out["stop"] in (200, 409), out
        logged = demo.sql("SELECT count(*) FROM time_entries WHERE ticket_id = %s", (t["id"],))[0][0]
        dropped = demo.sql("SELECT count(*) FROM audit_log WHERE action = 'time.timer_discard'"
                           " AND object_type = 'ticket' AND object_id = %s", (t["id"],))[0][0]
        assert logged + dropped == 1 and logged == (out["stop"] == 200), (i, out, logged, dropped)
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0


def test_passive_timer_starts_pauses_and_resumes(demo):
    h = key(demo)
    cid = client(demo, h)
    me = uid(demo, "tess")
    mine = ticket(demo, h, cid, "Assigned to me", assignee_id=me)
    other = ticket(demo, h, cid, "Not mine")
    b = login(demo)
    # off by default: opening my ticket starts nothing
    b.get(f"/tickets/{mine['id']}")
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    assert b.post("/time/passive", {"passive_timer": "1"}).status_code == 303
    assert 'name="passive_timer" value="1" checked' in b.get("/time").text
    # someone else's ticket, or the API, starts nothing
    b.get(f"/tickets/{other['id']}")
    api(b, "GET", f"/tickets/{mine['id']}")
    assert demo.sql("SELECT count(*) FROM timers")[0][0] == 0
    r = b.get(f"/tickets/{mine['id']}")
    assert demo.sql("SELECT ticket_id, passive, paused_at IS NULL FROM timers") == [(mine["id"], True, True)]
    stretch = re.search(r'data-passive-stretch="([^"]+)"', r.text).group(1)
    # a stale pause (another stretch) changes nothing; the page's own pauses
    demo.sql("UPDATE timers SET started_at = started_at - interval '5 minutes', began_at = began_at - interval '5 minutes'")
    assert api(b, "POST", "/timer/pause", {"stretch": stretch}).json()["paused"] is False
    stretch = demo.sql("SELECT started_at::text FROM timers")[0][0]
    assert api(b, "POST", "/timer/pause", {"stretch": stretch}).json()["paused"] is True
    banked, paused = demo.sql("SELECT banked_seconds, paused_at IS NOT NULL FROM timers")[0]
    assert 300 <= banked <= 310 and paused
    # paused time does not count, and the bar says paused
    demo.sql("UPDATE timers SET paused_at = paused_at - interval '1 hour'")
    r = b.get("/clients")
    assert 'data-paused="1"' in r.text and f'data-banked="{banked}"' in r.text
    # coming back resumes, keeping what was banked
    b.get(f"/tickets/{mine['id']}")
    assert demo.sql("SELECT paused_at IS NULL, banked_seconds FROM timers")[0] == (True, banked)
    demo.sql("UPDATE timers SET started_at = started_at - interval '2 minutes'")
    r = api(b, "POST", "/timer/stop", {"kind": "internal"})
    assert r.status_code == 200
    # 5 minutes banked + 2 running, begun: 8 at most, never the paused hour
    assert 7 <= r.json()["entry"]["minutes"] <= 8
    # bad stretch text is refused, not a crash
    assert api(b, "POST", "/timer/pause", {"stretch": "nonsense"}).status_code == 422


def test_default_kind_follows_the_contract(demo):
    h = key(demo)
    with_c, without = client(demo, h, "Contracted"), client(demo, h, "Ad hoc")
    tid = demo.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    demo.sql("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate)"
             " VALUES (%s, %s, 'PAYG', 'pay_as_you_go', current_date - 30, 95)", (tid, with_c))
    t1, t2 = ticket(demo, h, with_c), ticket(demo, h, without)
    b = login(demo)
    assert api(b, "GET", f"/tickets/{t1['id']}").json()["ticket"]["time_default_kind"] == "billable"
    assert api(b, "GET", f"/tickets/{t2['id']}").json()["ticket"]["time_default_kind"] == "internal"
    # the stop form preselects it; a stop without a kind takes it
    r = b.get(f"/tickets/{t1['id']}")
    assert b.post(f"/tickets/{t1['id']}/timer").status_code == 303
    r = b.get(f"/tickets/{t1['id']}")
    assert re.search(r'<select id="stop-kind"[^>]*>.*?<option value="billable" selected>', r.text, re.S)
    assert api(b, "POST", "/timer/stop", {}).json()["entry"]["kind"] == "billable"
    r = api(b, "POST", "/time/entries", {"ticket": t2["ref"], "started_at": "2026-03-02 09:00", "duration": "5"})
    assert r.json()["entry"]["kind"] == "internal"
    # billable time on a client without a contract is a leak the missing-time view shows
    recent = demo.sql("SELECT to_char(now() AT TIME ZONE 'Europe/London' - interval '2 days', 'YYYY-MM-DD HH24:MI')")[0][0]
    api(b, "POST", "/time/entries", {"ticket": t2["ref"], "started_at": recent, "duration": "25",
                                     "kind": "billable"})
    boss = login(demo, "morgan")
    j = api(boss, "GET", "/time/missing").json()
    assert [c["name"] for c in j["no_contract"]] == ["Ad hoc"]
