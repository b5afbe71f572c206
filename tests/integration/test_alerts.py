"""Alert intake: one open ticket per dedupe key, occurrences for repeats,
resolve closes untouched tickets, maintenance windows suppress, and the
settings and maintenance pages."""
import subprocess
import threading

import requests

from tdclient import Browser

PW = "correct horse battery"


def prepare(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    key = app.run("apikey", "create", "--tenant", "demo", "--name", "rmm",
                  "--role", "technician").stdout.strip()
    demo = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    acme = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme Ltd') RETURNING id",
                   (demo,))[0][0]
    return {"Authorization": f"Bearer {key}"}, demo, acme


def post(app, h, body):
    return requests.post(app.url + "/api/v1/alerts", headers=h, json=body, timeout=60)


def alert(client, key="cpu-high", **kw):
    a = {"client_id": client, "dedupe_key": key, "severity": "critical",
         "subject": "CPU high on SRV1", "message": "CPU at 99%", "source": "NinjaOne"}
    a.update(kw)
    return a


def test_first_alert_creates_a_ticket_and_repeats_add_occurrences(app):
    h, demo, acme = prepare(app)
    r = post(app, h, alert(acme))
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["action"] == "created" and res[0]["dedupe_key"] == "cpu-high"
    tid = res[0]["ticket_id"]
    assert res[0]["ticket_number"] > 1000
    assert app.sql("SELECT source, priority, alert_key, touched_by_human, alert_occurrences,"
                   " description FROM tickets WHERE id = %s", (tid,)) == \
        [("alert", 1, "cpu-high", False, 1, "CPU at 99%")]
    assert app.sql("SELECT author_label, public, body FROM ticket_comments WHERE ticket_id = %s",
                   (tid,)) == [("NinjaOne", False, "CPU at 99%")]
    r = post(app, h, alert(acme, severity="warning"))
    assert r.json()["results"][0] == {"dedupe_key": "cpu-high", "action": "occurrence",
                                      "ticket_id": tid, "ticket_number": res[0]["ticket_number"]}
    assert app.sql("SELECT count(*) FROM ticket_comments WHERE ticket_id = %s", (tid,)) == [(1,)]
    assert app.sql("SELECT alert_occurrences FROM tickets WHERE id = %s", (tid,)) == [(2,)]
    # A storm: 1,000 repeats in one call make one more ticket at most... none here.
    r = post(app, h, {"alerts": [alert(acme, key="disk") for _ in range(1000)]})
    assert r.status_code == 200, r.text
    assert r.elapsed.total_seconds() < 3
    actions = [x["action"] for x in r.json()["results"]]
    assert actions[0] == "created" and set(actions[1:]) == {"occurrence"}
    assert app.sql("SELECT count(*), sum(alert_occurrences) FROM tickets WHERE alert_key = 'disk'") \
        == [(1, 1000)]
    assert app.sql("SELECT count(*) FROM alert_occurrences WHERE dedupe_key = 'disk'") == [(1000,)]
    # Closed: the next firing alert opens a new ticket.
    app.sql("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = %s", (tid,))
    r = post(app, h, alert(acme))
    assert r.json()["results"][0]["action"] == "created"
    assert r.json()["results"][0]["ticket_id"] != tid


def test_priority_mapping_and_close_on_resolve_settings(app):
    h, demo, acme = prepare(app)
    b = Browser(app)
    assert b.login("admin@demo.tallydesk.test", PW).status_code == 303
    page = b.get("/settings/alerts")
    assert page.status_code == 200 and "critical_priority" in page.text
    r = b.post("/settings/alerts", {"critical_priority": "2", "error_priority": "2",
                                    "warning_priority": "4", "info_priority": "4"})
    assert r.status_code == 303, r.text[:500]
    assert app.sql("SELECT critical_priority, warning_priority, close_on_resolve FROM alert_settings") \
        == [(2, 4, False)]
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'alert_settings.update'") == [(1,)]
    r = b.post("/settings/alerts", {"critical_priority": "9", "error_priority": "2",
                                    "warning_priority": "4", "info_priority": "4"})
    assert r.status_code == 422
    tid = post(app, h, alert(acme)).json()["results"][0]["ticket_id"]
    assert app.sql("SELECT priority FROM tickets WHERE id = %s", (tid,)) == [(2,)]
    r = post(app, h, alert(acme, state="resolved"))
    assert r.json()["results"][0]["action"] == "resolved"
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (tid,)) == [("new",)]


def test_resolved_closes_untouched_tickets_only(app):
    h, demo, acme = prepare(app)
    t1 = post(app, h, alert(acme, key="a")).json()["results"][0]["ticket_id"]
    t2 = post(app, h, alert(acme, key="b")).json()["results"][0]["ticket_id"]
    app.sql("UPDATE tickets SET touched_by_human = true WHERE id = %s", (t2,))
    r = post(app, h, {"alerts": [alert(acme, key="a", state="resolved", subject=None),
                                 alert(acme, key="b", state="resolved"),
                                 alert(acme, key="c", state="resolved")]})
    assert r.status_code == 200, r.text
    assert [x["action"] for x in r.json()["results"]] == ["closed", "resolved", "ignored"]
    assert app.sql("SELECT id, status, closed_at IS NOT NULL FROM tickets ORDER BY id") == \
        [(t1, "closed", True), (t2, "new", False)]
    assert app.sql("SELECT count(*) FROM ticket_comments WHERE body = 'Alert resolved'") == [(2,)]
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.close'"
                   " AND object_id = %s", (t1,)) == [(1,)]
    assert app.sql("SELECT count(*) FROM alert_occurrences WHERE dedupe_key = 'c'"
                   " AND ticket_id IS NULL") == [(1,)]


def test_maintenance_window_suppresses(app):
    h, demo, acme = prepare(app)
    asset = app.sql("INSERT INTO assets (tenant_id, client_id, name, kind, external_id)"
                    " VALUES (%s, %s, 'SRV1', 'server', 'ninja-7') RETURNING id", (demo, acme))[0][0]
    b = Browser(app)
    assert b.login("morgan@demo.tallydesk.test", PW).status_code == 303
    page = b.get(f"/clients/{acme}/maintenance")
    assert page.status_code == 200 and "SRV1" in page.text
    now = app.sql("SELECT to_char(now() AT TIME ZONE 'Europe/London' - interval '1 hour',"
                  " 'YYYY-MM-DD\"T\"HH24:MI'), to_char(now() AT TIME ZONE 'Europe/London'"
                  " + interval '2 hours', 'YYYY-MM-DD\"T\"HH24:MI')")[0]
    r = b.post(f"/clients/{acme}/maintenance", {"starts": now[1], "ends": now[0]})
    assert r.status_code == 422
    r = b.post(f"/clients/{acme}/maintenance", {"starts": now[0], "ends": now[1],
                                                "asset_id": str(asset), "reason": "Patching"})
    assert r.status_code == 303, r.text[:500]
    assert "Patching" in b.get(f"/clients/{acme}/maintenance").text
    r = post(app, h, {"dedupe_key": "srv1-down", "severity": "error", "subject": "SRV1 down",
                      "asset_external_id": "ninja-7"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0] == {"dedupe_key": "srv1-down", "action": "suppressed",
                                      "ticket_id": None, "ticket_number": None}
    assert app.sql("SELECT count(*) FROM tickets") == [(0,)]
    assert app.sql("SELECT suppressed, ticket_id FROM alert_occurrences") == [(True, None)]
    wid = app.sql("SELECT id FROM maintenance_windows")[0][0]
    r = b.post(f"/maintenance/{wid}/delete", {})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/clients/{acme}/maintenance")
    r = post(app, h, {"dedupe_key": "srv1-down", "severity": "error", "subject": "SRV1 down",
                      "asset_external_id": "ninja-7"})
    res = r.json()["results"][0]
    assert res["action"] == "created"
    assert app.sql("SELECT client_id, asset_id, priority FROM tickets") == [(acme, asset, 2)]


def test_invalid_and_foreign_items_write_nothing(app):
    h, demo, acme = prepare(app)
    other = app.sql("INSERT INTO tenants (slug, name) VALUES ('other', 'Other') RETURNING id")[0][0]
    foreign = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Theirs') RETURNING id",
                      (other,))[0][0]
    r = post(app, h, {"alerts": [alert(acme), alert(acme, severity="bad"), alert(acme, dedupe_key=""),
                                 alert(acme, subject="")]})
    assert r.status_code == 422, r.text
    fields = r.json()["error"]["fields"]
    assert "alerts[1].severity" in fields and "alerts[2].dedupe_key" in fields
    assert "alerts[3].subject" in fields and not any(f.startswith("alerts[0]") for f in fields)
    r = post(app, h, {"alerts": [alert(acme), alert(foreign)]})
    assert r.status_code == 422, r.text
    assert "alerts[1].client_id" in r.json()["error"]["fields"]
    r = post(app, h, {"alerts": [alert(acme), {"dedupe_key": "x", "severity": "info", "subject": "s",
                                                "asset_external_id": "nope"}]})
    assert r.status_code == 422 and "alerts[1].asset_external_id" in r.json()["error"]["fields"]
    assert app.sql("SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM alert_occurrences)") \
        == [(0, 0)]


def test_ambiguous_external_id_needs_client_id(app):
    h, demo, acme = prepare(app)
    globex = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Globex') RETURNING id",
                     (demo,))[0][0]
    for c in (acme, globex):
        app.sql("INSERT INTO assets (tenant_id, client_id, name, kind, external_id)"
                " VALUES (%s, %s, 'PC', 'workstation', 'dup-1')", (demo, c))
    a = {"dedupe_key": "k", "severity": "info", "subject": "s", "asset_external_id": "dup-1"}
    r = post(app, h, a)
    assert r.status_code == 422 and "asset_external_id" in r.json()["error"]["fields"]
    r = post(app, h, dict(a, client_id=globex))
    assert r.status_code == 200, r.text
    assert app.sql("SELECT client_id FROM tickets") == [(globex,)]


def test_concurrent_first_alerts_make_one_ticket(app):
    h, demo, acme = prepare(app)
    results = []

    def fire():
        results.append(post(app, h, alert(acme, key="race")))

    threads = [threading.Thread(target=fire) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    actions = sorted(r.json()["results"][0]["action"] for r in results)
    assert actions == ["created"] + ["occurrence"] * 9
    assert app.sql("SELECT count(*), sum(alert_occurrences) FROM tickets WHERE alert_key = 'race'") \
        == [(1, 10)]


def tidy_errors(html):
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8",
                        "--drop-empty-elements", "no"], input=html, capture_output=True, text=True)
    # The layout's svg focusable and aria-current are fine: tidy is older than them.
    return [l for l in r.stderr.splitlines()
            if "Error" in l or ("focusable" not in l and "aria-current" not in l)]


def test_pages_are_valid_html_and_single_alert_fields(app):
    h, demo, acme = prepare(app)
    app.sql("INSERT INTO assets (tenant_id, client_id, name, kind) VALUES (%s, %s, 'PC & <1>',"
            " 'workstation')", (demo, acme))
    b = Browser(app)
    assert b.login("admin@demo.tallydesk.test", PW).status_code == 303
    pages = {
        "settings": b.get("/settings/alerts").text,
        "settings_err": b.post("/settings/alerts", {"critical_priority": "0"}).text,
        "windows": b.get(f"/clients/{acme}/maintenance").text,
        "windows_err": b.post(f"/clients/{acme}/maintenance", {"starts": "2026-02-30T10:00",
                                                                "ends": "x"}).text,
    }
    _long = b.post(f"/clients/{acme}/maintenance", {"starts": "2027-01-01T10:00", "ends": "2027-03-01T10:00"})
    pages["windows_long"] = _long.text
    assert _long.status_code == 422
    b.post(f"/clients/{acme}/maintenance", {"starts": "2027-01-01T10:00", "ends": "2027-01-02T10:00",
                                            "reason": "<b>x</b>"})
    pages["windows_list"] = b.get(f"/clients/{acme}/maintenance").text
    assert "&lt;b&gt;x&lt;/b&gt;" in pages["windows_list"]
    assert "31 days" in pages["windows_long"]
    errors = [f"{k}: {line}" for k, html in pages.items() for line in tidy_errors(html)]
    assert not errors, "\n".join(errors)
    assert b.get(f"/clients/{acme + 999}/maintenance").status_code == 404
    r = post(app, h, {"dedupe_key": "k", "severity": "nope", "client_id": acme})
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"severity", "subject"}
    r = post(app, h, {"alerts": []})
    assert r.status_code == 422
    adm = {"Authorization": "Bearer " + app.run("apikey", "create", "--tenant", "demo", "--name", "ops",
                                                  "--role", "admin").stdout.strip()}
    r = requests.post(app.url + "/api/v1/settings/alerts", headers=adm, timeout=20, json={"critical_priority": 3, "error_priority": 3,
                                                 "warning_priority": 4, "info_priority": 4,
                                                 "close_on_resolve": True})
    assert r.status_code == 200, r.text
    assert r.json()["alert_settings"]["critical_priority"] == 3
    assert requests.get(app.url + "/api/v1/settings/alerts", headers=adm,
                        timeout=20).json()["alert_settings"] == {
        "critical_priority": 3, "error_priority": 3, "warning_priority": 4, "info_priority": 4,
        "close_on_resolve": True}
