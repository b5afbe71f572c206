"""A staff member's public reply is mailed to the contact, and their answer threads back."""
import subprocess

import tdharness

PW = "correct horse battery"


def key(app):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def test_public_reply_is_mailed_and_the_answer_threads_back(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    h = key(app)
    cid = app.post("/api/v1/clients", json={"name": "Acme"}, headers=h).json()["client"]["id"]
    who = app.sql("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s, %s, 'Dana',"
                  " 'dana@acme.test') RETURNING id", (tid, cid))[0][0]
    t = app.post("/api/v1/tickets", json={"subject": "VPN drops", "client_id": cid, "contact_id": who},
                 headers=h).json()["ticket"]
    # No support address yet: nothing can be sent, nothing is queued.
    r = app.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "Looking now", "public": True},
                 headers=h)
    assert r.status_code == 201, r.text
    assert app.sql("SELECT count(*) FROM outbox WHERE kind = 'reply'") == [(0,)]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'help@msp.test')", (tid,))
    app.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "Internal: check the firewall",
                                                          "public": False}, headers=h)
    assert app.sql("SELECT count(*) FROM outbox WHERE kind = 'reply'") == [(0,)]
    app.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "Please restart the router.",
                                                          "public": True}, headers=h)
    rows = app.sql("SELECT to_addr, from_addr, subject, body_text, message_id FROM outbox WHERE kind = 'reply'")
    assert len(rows) == 1
    to, frm, subject, body, mid = rows[0]
    assert (to, frm, subject) == ("dana@acme.test", "help@msp.test", f"[{t['ref']}] VPN drops")
    assert body.startswith("Please restart the router.") and "keep " + t["ref"] in body
    assert mid.startswith("<td.reply.") and mid.endswith("@msp.test>")
    # Dana answers without the token in the subject: the id we sent threads it.
    raw = (f"From: Dana <dana@acme.test>\r\nTo: help@msp.test\r\nSubject: Re: your email\r\n"
           f"Message-ID: <answer1@acme.test>\r\nIn-Reply-To: {mid}\r\nReferences: {mid}\r\n"
           f"Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nDone, it works now.\r\n").encode()
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo"],
                       input=raw, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == f"reply {t['ref']}"
    assert app.sql("SELECT count(*) FROM ticket_comments WHERE ticket_id = %s AND body LIKE 'Done, it works now.%%'",
                   (t["id"],)) == [(1,)]


def test_assignee_hears_of_assignment_client_replies_and_sla_events(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'help@msp.test')", (tid,))
    h = key(app)
    cid = app.post("/api/v1/clients", json={"name": "Acme"}, headers=h).json()["client"]["id"]
    app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s, %s, 'acme.test', true)",
            (tid, cid))
    t = app.post("/api/v1/tickets", json={"subject": "Printer", "client_id": cid}, headers=h).json()["ticket"]
    tess = app.sql("SELECT id FROM users WHERE email = 'tess@demo.tallydesk.test'")[0][0]
    r = app.post(f"/api/v1/tickets/{t['id']}", json={"assignee_id": tess}, headers=h)
    assert r.status_code == 200, r.text
    notes = lambda kind: app.sql("SELECT to_addr, subject, body_text FROM outbox WHERE kind = %s ORDER BY id", (kind,))
    assert [(a, s) for a, s, _ in notes("assigned")] == [("tess@demo.tallydesk.test", f"[{t['ref']}] assigned to you")]
    # The client answers by mail: Tess hears of it.
    raw = (f"From: Dana <dana@acme.test>\r\nTo: help@msp.test\r\nSubject: Re: [{t['ref']}] Printer\r\n"
           f"Message-ID: <r1@acme.test>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nIt is jammed again.\r\n").encode()
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo"],
                       input=raw, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = notes("client_reply")
    assert len(got) == 1 and got[0][0] == "tess@demo.tallydesk.test" and "It is jammed again." in got[0][2]
    # A year on, the sweep breaches both clocks: one notice per event, once.
    for _ in range(2):
        r = app.run("sla-sweep", "--now", "2027-11-24 12:00:00+00")
        assert r.returncode == 0, r.stderr
    breaches = notes("sla_breach")
    assert len(breaches) == 2 and all(a == "tess@demo.tallydesk.test" for a, _, _ in breaches)
    assert {s.split(": ")[1].split(" ")[0] for _, s, _ in breaches} == {"response", "resolution"}
