"""Tickets: create, the page with its timeline, edit, close, reopen, merge."""
import shutil
import subprocess
import threading

import pytest
import requests
from tdclient import Browser

PW = "correct horse battery"


@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def login(app, who="admin"):
    b = Browser(app)
    r = b.login(f"{who}@demo.tallydesk.test", PW)
    assert r.status_code == 303, r.text[:300]
    return b


def tidy(html):
    if not shutil.which("tidy"):
        return
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if "Error:" in l]
    assert not errors, "\n".join(errors)


def key(app, tenant="demo", role="admin"):
    r = app.run("apikey", "create", "--tenant", tenant, "--name", "k" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def client(app, h, name="Acme Ltd"):
    r = app.post("/api/v1/clients", json={"name": name}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["client"]["id"]


def api_ticket(app, h, cid, **kw):
    body = {"subject": "Printer on fire", "client_id": cid}
    body.update(kw)
    r = app.post("/api/v1/tickets", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["ticket"]


def test_create_by_form_and_page(demo):
    h = key(demo)
    cid = client(demo, h)
    demo.sql("INSERT INTO contacts (tenant_id, client_id, name) SELECT tenant_id, id, 'Jo' FROM clients WHERE id = %s", (cid,))
    b = login(demo)
    r = b.get("/tickets/new")
    assert r.status_code == 200, r.text[:2000]
    r = b.get(f"/tickets/new?client_id={cid}")
    assert r.status_code == 200 and "Jo</option>" in r.text and 'name="subject"' in r.text
    tidy(r.text)
    r = b.post("/tickets", {"client_id": str(cid), "subject": "", "priority": "9"})
    assert r.status_code == 422 and "enter a subject" in r.text
    r = b.post("/tickets", {"client_id": str(cid), "subject": "VPN down", "description": "since 9am",
                            "priority": "2", "type": "incident", "tags": "VPN, Network ,vpn",
                            "due": "2030-01-31", "source": "phone", "assignee_id": "", "contact_id": ""})
    assert r.status_code == 303, r.text[:2000]
    tid = int(r.headers["Location"].rsplit("/", 1)[1])
    r = b.get(f"/tickets/{tid}")
    assert r.status_code == 200, r.text[:3000]
    assert "T-1001" in r.text and "VPN down" in r.text and "badge-p2" in r.text
    assert "created the ticket" in r.text and 'action="/tickets/%d/comments"' % tid in r.text
    tidy(r.text)
    demo.sql("INSERT INTO ticket_comments (tenant_id, ticket_id, public, body)"
             " SELECT tenant_id, id, false, 'secret <b>note</b>' FROM tickets WHERE id = %s", (tid,))
    r = b.get(f"/tickets/{tid}")
    assert "timeline-internal" in r.text and "Internal" in r.text and "&lt;b&gt;note" in r.text
    demo.sql("INSERT INTO blobs (tenant_id, sha256, size, data) SELECT tenant_id, sha256('x'::bytea), 1, 'x'"
             " FROM tickets WHERE id = %s", (tid,))
    demo.sql("INSERT INTO ticket_attachments (tenant_id, ticket_id, comment_id, sha256, filename, content_type, size)"
             " SELECT t.tenant_id, t.id, c.id, sha256('x'::bytea), 'log.txt', 'text/plain', 1"
             " FROM tickets t JOIN ticket_comments c ON c.ticket_id = t.id WHERE t.id = %s", (tid,))
    demo.sql("INSERT INTO ticket_attachments (tenant_id, ticket_id, sha256, filename, content_type, size)"
             " SELECT tenant_id, id, sha256('x'::bytea), 'loose.png', 'image/png', 1 FROM tickets WHERE id = %s", (tid,))
    r = b.get(f"/tickets/{tid}")
    assert 'log.txt</a>' in r.text and 'loose.png</a>' in r.text and '/attachments/' in r.text
    tidy(r.text)
    row = demo.sql("SELECT number, tags, source, priority FROM tickets WHERE id = %s", (tid,))[0]
    assert row == (1001, ["vpn", "network"], "phone", 2)


def test_api_create_update_close_reopen(demo):
    h = key(demo)
    cid = client(demo, h)
    t = api_ticket(demo, h, cid, tags=["A", "b"], priority=1)
    assert t["ref"] == "T-1001" and t["status"] == "new" and t["tags"] == ["a", "b"]
    assert t["client"]["id"] == cid and t["contact"] is None
    r = demo.post(f"/api/v1/tickets/{t['id']}", json={"status": "waiting", "priority": 4}, headers=h)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["ticket"]["status"] == "waiting" and j["ticket"]["priority"] == 4
    assert j["ticket"]["tags"] == ["a", "b"]
    assert any(e["kind"] == "event" and e["action"] == "ticket.update" for e in j["timeline"])
    assert j["time_entries"] == []
    # Times read in the tenant's zone, to the minute; the timeline's too.
    want = demo.sql("SELECT to_char(t.created_at AT TIME ZONE n.time_zone, 'YYYY-MM-DD HH24:MI'),"
                    " to_char(t.updated_at AT TIME ZONE n.time_zone, 'YYYY-MM-DD HH24:MI')"
                    " FROM tickets t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = %s", (t["id"],))[0]
    assert (j["ticket"]["created_at"], j["ticket"]["updated_at"]) == want
    assert j["ticket"]["first_response_at"] is None and j["ticket"]["closed_at"] is None
    ev = [e for e in j["timeline"] if e["kind"] == "event" and e["action"] == "ticket.update"][0]
    assert ev["at"] == demo.sql("SELECT to_char(a.at AT TIME ZONE n.time_zone, 'YYYY-MM-DD HH24:MI')"
                                " FROM audit_log a JOIN tenants n ON n.id = a.tenant_id"
                                " WHERE a.id = %s", (ev["id"],))[0][0]
    aud = demo.sql("SELECT before, after FROM audit_log WHERE action = 'ticket.update' AND object_id = %s", (t["id"],))
    assert aud == [({"status": "new", "priority": 1}, {"status": "waiting", "priority": 4})]
    r = demo.post(f"/api/v1/tickets/{t['id']}", json={"status": "closed"}, headers=h)
    assert r.status_code == 422
    # close guard
    r = demo.post(f"/api/v1/tickets/{t['id']}/close", json={}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert "no time is logged on T-1001" in r.json()["error"]["message"]
    r = demo.post(f"/api/v1/tickets/{t['id']}/close", json={"confirm_no_time": True}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["closed"] is True and r.json()["ticket"]["closed_without_time"] is True
    r = demo.post(f"/api/v1/tickets/{t['id']}", json={"subject": "x"}, headers=h)
    assert r.status_code == 409 and "T-1001 is closed: reopen it to change it" in r.text
    r = demo.post(f"/api/v1/tickets/{t['id']}/close", json={"confirm_no_time": True}, headers=h)
    assert r.status_code == 409
    r = demo.post(f"/api/v1/tickets/{t['id']}/reopen", json={}, headers=h)
    assert r.status_code == 200 and r.json()["ticket"]["status"] == "in_progress"
    r = demo.post(f"/api/v1/tickets/{t['id']}/reopen", json={}, headers=h)
    assert r.status_code == 409


def test_browser_edit_close_prompt_and_closed_page(demo):
    h = key(demo)
    cid = client(demo, h)
    t = api_ticket(demo, h, cid)
    b = login(demo)
    b.get(f"/tickets/{t['id']}")
    r = b.post(f"/tickets/{t['id']}", {"subject": "Printer still on fire", "status": "in_progress",
                                       "priority": "3", "assignee_id": "", "type": "project",
                                       "tags": "", "due": ""})
    assert r.status_code == 303, r.text[:2000]
    r = b.get(f"/tickets/{t['id']}")
    assert "Printer still on fire" in r.text and "T-1001 saved" in r.text
    r = b.post(f"/tickets/{t['id']}/close", {})
    assert r.status_code == 409 and "No time logged" in r.text and "Close without time" in r.text
    tidy(r.text)
    r = b.post(f"/tickets/{t['id']}/close", {"confirm_no_time": "1"})
    assert r.status_code == 303
    r = b.get(f"/tickets/{t['id']}")
    assert "Reopen" in r.text and 'action="/tickets/%d/comments"' % t["id"] not in r.text
    tidy(r.text)
    r = b.post(f"/tickets/{t['id']}", {"subject": "again"})
    assert r.status_code == 409 and "T-1001 is closed: reopen it to change it" in r.text
    r = b.post(f"/tickets/{t['id']}/reopen", {})
    assert r.status_code == 303


def test_merge_moves_comments(demo):
    h = key(demo)
    cid = client(demo, h)
    a = api_ticket(demo, h, cid, subject="first")
    c = api_ticket(demo, h, cid, subject="second")
    demo.sql("INSERT INTO ticket_comments (tenant_id, ticket_id, public, body)"
             " SELECT tenant_id, id, true, 'hello from a' FROM tickets WHERE id = %s", (a["id"],))
    r = demo.post(f"/api/v1/tickets/{a['id']}/merge", json={"target": "T-1002"}, headers=h)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["ticket"]["id"] == c["id"]
    bodies = [e.get("body") for e in j["timeline"] if e["kind"] == "comment"]
    assert "hello from a" in bodies and "Merged from T-1001" in bodies
    src = demo.sql("SELECT status, merged_into FROM tickets WHERE id = %s", (a["id"],))[0]
    assert src == ("closed", c["id"])
    r = demo.get(f"/api/v1/tickets/{a['id']}", headers=h)
    assert r.json()["ticket"]["merged_into"]["ref"] == "T-1002"
    assert [e["body"] for e in r.json()["timeline"] if e["kind"] == "comment"] == ["Merged into T-1002"]
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.merge'")[0][0] == 2
    r = demo.post(f"/api/v1/tickets/{c['id']}/merge", json={"target": str(a["id"])}, headers=h)
    assert r.status_code == 409
    r = demo.post(f"/api/v1/tickets/{c['id']}/merge", json={"target": "T-9999"}, headers=h)
    assert r.status_code == 422


def test_bulk_merge_duplicates(demo):
    h = key(demo)
    cid = client(demo, h)
    keep = api_ticket(demo, h, cid, subject="Email down")
    dups = [api_ticket(demo, h, cid, subject=f"Email down again {i}") for i in range(3)]
    shut = api_ticket(demo, h, cid, subject="already closed")
    demo.post(f"/api/v1/tickets/{shut['id']}/close", json={"confirm_no_time": True}, headers=h)
    for i, d in enumerate(dups):
        demo.sql("INSERT INTO ticket_comments (tenant_id, ticket_id, public, body)"
                 " SELECT tenant_id, id, true, %s FROM tickets WHERE id = %s", (f"dup says {i}", d["id"]))
    b = login(demo)
    b.get("/tickets")
    ids = [keep["id"]] + [d["id"] for d in dups] + [shut["id"]]
    r = b.post("/tickets/bulk", {"action": "merge", "value": "t-1001", "id": [str(i) for i in ids],
                                 "return_to": "/tickets"})
    assert r.status_code == 303
    assert "Merged 3 tickets into T-1001; skipped the closed ones" in b.get("/tickets").text
    j = demo.get(f"/api/v1/tickets/{keep['id']}", headers=h).json()
    bodies = [e.get("body") for e in j["timeline"] if e["kind"] == "comment"]
    assert {"dup says 0", "dup says 1", "dup says 2"} <= set(bodies)
    assert demo.sql("SELECT count(*) FROM tickets WHERE merged_into = %s", (keep["id"],))[0][0] == 3
    assert j["ticket"]["status"] == "new"
    # A closed target or an unknown one changes nothing.
    other = api_ticket(demo, h, cid, subject="other")
    r = demo.post("/api/v1/tickets/bulk", json={"action": "merge", "value": "T-1005", "ids": [other["id"]]}, headers=h)
    assert r.status_code == 422 and "T-1005 is closed" in r.json()["error"]["fields"]["value"]
    r = demo.post("/api/v1/tickets/bulk", json={"action": "merge", "value": "T-77", "ids": [other["id"]]}, headers=h)
    assert r.status_code == 422
    assert demo.sql("SELECT status FROM tickets WHERE id = %s", (other["id"],)) == [("new",)]


def test_split_a_comment_into_a_new_ticket(demo):
    h = key(demo)
    cid = client(demo, h)
    t = api_ticket(demo, h, cid, subject="Printer broken", priority=2, tags=["printer"])
    b = login(demo)
    b.get(f"/tickets/{t['id']}")
    r = b.post(f"/tickets/{t['id']}/comments", {"body": "Printer fixed. Also my VPN is down.", "public": "1"})
    assert r.status_code == 303
    r = b.post(f"/tickets/{t['id']}/comments", {"body": "And the printer works now", "public": "1"})
    cm = demo.sql("SELECT id FROM ticket_comments WHERE body LIKE 'Printer fixed%%'")[0][0]
    page = b.get(f"/tickets/{t['id']}").text
    assert f'name="comment_id" value="{cm}"' in page and "Split into a new ticket" in page
    r = b.post(f"/tickets/{t['id']}/split", {"comment_id": str(cm), "subject": "VPN down"})
    assert r.status_code == 303
    new_id = int(r.headers["Location"].rsplit("/", 1)[1])
    n = demo.get(f"/api/v1/tickets/{new_id}", headers=h).json()
    assert n["ticket"]["subject"] == "VPN down" and n["ticket"]["ref"] == "T-1002"
    assert n["ticket"]["priority"] == 2 and n["ticket"]["tags"] == ["printer"]
    assert n["ticket"]["client"]["id"] == cid
    nb = [e.get("body") for e in n["timeline"] if e["kind"] == "comment"]
    assert "Printer fixed. Also my VPN is down." in nb and "Split from T-1001" in nb
    o = demo.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    ob = [e.get("body") for e in o["timeline"] if e["kind"] == "comment"]
    assert "Printer fixed. Also my VPN is down." not in ob and "And the printer works now" in ob
    assert "Split off into T-1002" in ob
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.split'")[0][0] == 1
    # A comment of another ticket is refused; so is a closed ticket.
    r = demo.post(f"/api/v1/tickets/{new_id}/split", json={"comment_id": demo.sql(
        "SELECT id FROM ticket_comments WHERE body = 'And the printer works now'")[0][0]}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"]["comment_id"] == "that comment is not on this ticket"
    demo.post(f"/api/v1/tickets/{t['id']}/close", json={"confirm_no_time": True}, headers=h)
    r = demo.post(f"/api/v1/tickets/{t['id']}/split", json={"comment_id": cm}, headers=h)
    assert r.status_code == 409


def test_other_tenant_gets_404(demo):
    h = key(demo)
    cid = client(demo, h)
    t = api_ticket(demo, h, cid)
    assert demo.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    h2 = key(demo, "rival")
    assert demo.get(f"/api/v1/tickets/{t['id']}", headers=h2).status_code == 404
    assert demo.post(f"/api/v1/tickets/{t['id']}", json={"subject": "x"}, headers=h2).status_code == 404
    assert demo.post(f"/api/v1/tickets/{t['id']}/close", json={"confirm_no_time": True}, headers=h2).status_code == 404
    r = demo.post("/api/v1/tickets", json={"subject": "x", "client_id": cid}, headers=h2)
    assert r.status_code == 422
    cid2 = client(demo, h2, "Rival client")
    assert api_ticket(demo, h2, cid2)["ref"] == "T-1001"


def test_numbers_sequential_under_concurrency(demo):
    h = key(demo)
    cid = client(demo, h)
    out, errs = [], []

    def go():
        try:
            r = requests.post(demo.url + "/api/v1/tickets", json={"subject": "c", "client_id": cid},
                              headers=h, timeout=30)
            if r.status_code == 201:
                out.append(r.json()["ticket"]["number"])
            else:
                errs.append(r.text)
        except Exception as e:  # noqa: BLE001
            errs.append(str(e))

    ts = [threading.Thread(target=go) for _ in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs, errs
    assert sorted(out) == list(range(1001, 1021))
