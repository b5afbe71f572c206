"""Settings → Email templates: a tenant's own wording of every notification,
with text and HTML parts, checked before it is stored, previewed with a
sample ticket, and back to the default on request. The mail that leaves
(a real aiosmtpd sink) carries the tenant's wording."""
import email
import email.policy
import os
import subprocess

import tdharness
from tdclient import Browser
from test_html_valid import validate
from test_mail_outbox import Sink

PW = "correct horse battery"
VIEWS = os.path.join(tdharness.SRC, "views", "mail")


def login(app, who="admin"):
    b = Browser(app)
    assert b.login(f"{who}@demo.tallydesk.test", PW).status_code == 303
    return b


def key(app):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def prepare(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'help@msp.test')", (tid,))
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme') RETURNING id", (tid,))[0][0]
    app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s, %s, 'acme.test', true)",
            (tid, cid))
    return tid, cid


def ingest(app, raw):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo"],
                       input=raw.encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert tdharness.sanitizer_report(p.stderr.decode()) is None, p.stderr
    return p.stdout.decode().strip()


def send_all(app, sink):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "outbox-send", "--once", "--smtp", sink.url],
                       capture_output=True, text=True, timeout=120)
    assert tdharness.sanitizer_report(p.stderr) is None, p.stderr
    assert p.returncode == 0, p.stdout + p.stderr
    return [email.message_from_bytes(m, policy=email.policy.default) for m in sink.messages()]


def parts_of(m):
    text = m.get_body(("plain",))
    html = m.get_body(("html",))
    return (text.get_content() if text else None), (html.get_content() if html else None)


ACK = {
    "subject": "We got it: {{subject}}",
    "body_text": "Hi {{name}},\n\nticket {{ticket_ref}} is open: {{subject}}\n-- {{tenant}}\n",
    "body_html": "<p>Hi {{name}}, <b>{{ticket_ref}}</b> is open: <i>{{subject}}</i></p>",
}


def test_override_of_the_acknowledgement_is_what_the_sender_receives(app, tmp_path):
    prepare(app)
    b = login(app)
    page = b.get("/settings/mail-templates")
    assert page.status_code == 200
    assert "Acknowledgement" in page.text and "SLA breach" in page.text and "Customised" not in page.text
    page = b.get("/settings/mail-templates/ack")
    assert page.status_code == 200 and "Preview" in page.text and "Reset to default" not in page.text
    r = b.post("/settings/mail-templates/ack", ACK)
    assert r.status_code == 303 and r.headers["Location"] == "/settings/mail-templates/ack"
    page = b.get("/settings/mail-templates/ack").text
    assert "Acknowledgement template saved." in page and "Reset to default" in page
    assert "We got it: {{subject}}" in page  # the stored source, on the form
    assert "Customised" in b.get("/settings/mail-templates").text
    audit = app.sql("SELECT after->>'body_text' FROM audit_log WHERE action = 'mail_template.update'")
    assert audit == [(ACK["body_text"].strip(),)]  # form fields are trimmed

    # A new ticket by mail: the acknowledgement is the tenant's wording.
    out = ingest(app, "From: \"Dana O'Neil\" <dana@acme.test>\r\nTo: help@msp.test\r\n"
                      "Subject: Printer <jam> & smudge\r\nMessage-ID: <new1@acme.test>\r\n"
                      "Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n\r\nIt jams.\r\n")
    assert out == "ticket T-1001"
    sink = Sink(tmp_path)
    sink.start()
    try:
        msgs = send_all(app, sink)
    finally:
        sink.stop()
    assert len(msgs) == 1
    m = msgs[0]
    # The subject template left the token out: it is put back, replies thread by it.
    assert str(m["Subject"]) == "[T-1001] We got it: Printer <jam> & smudge"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["In-Reply-To"] == "<new1@acme.test>" and "<new1@acme.test>" in m["References"]
    assert m["To"].addresses[0].addr_spec == "dana@acme.test"
    text, html = parts_of(m)
    # Plain text as typed (nothing escaped); HTML escaped.
    tenant = app.sql("SELECT name FROM tenants WHERE slug = 'demo'")[0][0]
    assert f"Hi Dana O'Neil,\n\nticket T-1001 is open: Printer <jam> & smudge\n-- {tenant}" in text.replace("\r\n", "\n")
    assert "<p>Hi Dana O&#39;Neil, <b>T-1001</b> is open: <i>Printer &lt;jam&gt; &amp; smudge</i></p>" in html
    assert app.sql("SELECT count(*) FROM outbox WHERE template_data IS NOT NULL") == [(0,)]


def test_a_template_that_does_not_compile_is_refused_with_its_position(app):
    prepare(app)
    b = login(app)
    b.get("/settings/mail-templates/ack")
    broken = dict(ACK, body_text="Hi {{name}},\n\n{{#subject}}\nno end here\n")
    r = b.post("/settings/mail-templates/ack", broken)
    assert r.status_code == 422
    assert "line 3" in r.text and "unclosed section" in r.text
    assert "no end here" in r.text  # what was typed stays on the form
    # The API says which part and where; nothing is stored.
    h = key(app)
    r = app.post("/api/v1/settings/mail-templates/reply",
                 json=dict(ACK, body_html="<p>{{/body}}</p>"), headers=h)
    assert r.status_code == 422, r.text
    field = r.json()["error"]["fields"]["body_html"]
    assert "line 1" in field, field
    r = app.post("/api/v1/settings/mail-templates/reply", json=dict(ACK, subject=""), headers=h)
    assert r.status_code == 422 and "subject" in r.json()["error"]["fields"]
    r = app.post("/api/v1/settings/mail-templates/nope", json=ACK, headers=h)
    assert r.status_code == 404
    assert app.sql("SELECT count(*) FROM mail_templates") == [(0,)]
    # Technicians may not touch them.
    t = login(app, "tess")
    assert t.get("/settings/mail-templates").status_code == 403
    assert t.post("/settings/mail-templates/ack", ACK).status_code == 403


def test_preview_renders_the_sample_ticket_escaped_and_stores_nothing(app):
    prepare(app)
    h = key(app)
    r = app.post("/api/v1/settings/mail-templates/reply/preview", json={
        "subject": "Re: {{subject}}",
        "body_text": "{{body}}\n-- {{author}}",
        "body_html": "<h1>{{subject}}</h1><div>{{body}}</div><p>{{{client}}}</p>"}, headers=h)
    assert r.status_code == 200, r.text
    p = r.json()["preview"]
    assert p["subject"] == "[T-1042] Re: Printer <3rd floor> jams & smudges"
    assert p["text"].startswith("The printer on the 3rd floor jams again.\n<b>Paper</b> is stuck & the tray")
    assert "<h1>Printer &lt;3rd floor&gt; jams &amp; smudges</h1>" in p["html"]
    assert "&lt;b&gt;Paper&lt;/b&gt;" in p["html"]
    assert "<p>Acme & Sons</p>" in p["html"]  # triple braces: the author's choice
    assert app.sql("SELECT count(*) FROM mail_templates") == [(0,)]
    # In the browser the preview sits in a sandboxed frame, escaped once more.
    b = login(app)
    b.get("/settings/mail-templates/reply")
    page = b.post("/settings/mail-templates/reply/preview", {
        "subject": "Re: {{subject}}", "body_text": "{{body}}", "body_html": "<h1>{{subject}}</h1>"})
    assert page.status_code == 200
    assert 'sandbox=""' in page.text
    assert "&lt;h1&gt;Printer &amp;lt;3rd floor&amp;gt; jams &amp;amp; smudges&lt;/h1&gt;" in page.text
    assert "Re: {{subject}}" in page.text  # the typed source is kept on the form
    # The edit page previews the default too.
    page = b.get("/settings/mail-templates/sla_breach").text
    assert "[T-1042] SLA breach: response due 2026-11-24 15:00" in page


def test_reset_restores_the_default(app):
    prepare(app)
    h = key(app)
    r = app.post("/api/v1/settings/mail-templates/assigned", json=ACK, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["template"]["customised"] is True
    r = app.get("/api/v1/settings/mail-templates/assigned", headers=h)
    assert r.json()["template"]["parts"]["subject"] == ACK["subject"]
    r = app.post("/api/v1/settings/mail-templates/assigned/reset", json={}, headers=h)
    assert r.status_code == 200, r.text
    t = r.json()["template"]
    assert t["customised"] is False
    for field, part in (("subject", "subject"), ("body_text", "text"), ("body_html", "html")):
        assert t["parts"][field] == open(os.path.join(VIEWS, f"assigned_{part}.mustache")).read()
    assert app.sql("SELECT count(*) FROM mail_templates") == [(0,)]
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'mail_template' ORDER BY id")]
    assert acts == ["mail_template.update", "mail_template.reset"]
    # The browser's reset button does the same, and says so.
    b = login(app)
    b.get("/settings/mail-templates/ack")
    assert b.post("/settings/mail-templates/ack", ACK).status_code == 303
    b.get("/settings/mail-templates/ack")
    r = b.post("/settings/mail-templates/ack/reset", {})
    assert r.status_code == 303
    assert "reset to the default" in b.get("/settings/mail-templates/ack").text
    assert app.sql("SELECT count(*) FROM mail_templates") == [(0,)]


def test_staff_notices_have_html_parts_and_follow_overrides(app, tmp_path):
    tid, cid = prepare(app)
    h = key(app)
    t = app.post("/api/v1/tickets", json={"subject": "Server <down>", "client_id": cid}, headers=h).json()["ticket"]
    tess = app.sql("SELECT id FROM users WHERE email = 'tess@demo.tallydesk.test'")[0][0]
    # The tenant words the SLA breach notice its own way.
    r = app.post("/api/v1/settings/mail-templates/sla_breach", json={
        "subject": "BREACH {{clock}} {{ticket_ref}}",
        "body_text": "{{assignee}}: {{clock}} missed on {{subject}} ({{due}})",
        "body_html": "<p>{{assignee}}: <b>{{clock}}</b> missed on {{subject}}</p>"}, headers=h)
    assert r.status_code == 200, r.text
    assert app.post(f"/api/v1/tickets/{t['id']}", json={"assignee_id": tess}, headers=h).status_code == 200
    for _ in range(2):
        r = app.run("sla-sweep", "--now", "2027-11-24 12:00:00+00")
        assert r.returncode == 0, r.stderr
    rows = app.sql("SELECT kind, subject, body_text, body_html FROM outbox ORDER BY id")
    kinds = [k for k, _, _, _ in rows]
    assert kinds.count("assigned") == 1 and kinds.count("sla_breach") == 2  # once per event
    _, subject, text, html = next(r for r in rows if r[0] == "assigned")
    assert subject == f"[{t['ref']}] assigned to you"
    assert "assigned " + t["ref"] + " to you" in text
    assert f"<strong>{t['ref']}</strong>" in html and "Server &lt;down&gt; (Acme)" in html
    assert f"/tickets/{t['id']}" in html  # a link for the assignee
    breaches = sorted((s, b, hm) for k, s, b, hm in rows if k == "sla_breach")
    # "T-1001" is not the [T-1001] token: it is put in front.
    assert [s for s, _, _ in breaches] == [f"[{t['ref']}] BREACH resolution {t['ref']}",
                                           f"[{t['ref']}] BREACH response {t['ref']}"]
    assert all(b.startswith("Tess") and "Server <down>" in b for _, b, _ in breaches)
    assert all("Server &lt;down&gt;" in hm for _, _, hm in breaches)
    sink = Sink(tmp_path)
    sink.start()
    try:
        msgs = send_all(app, sink)
    finally:
        sink.stop()
    assert len(msgs) == 3
    for m in msgs:
        text, html = parts_of(m)
        assert text and html and "<p>" in html, m.as_string()[:2000]


def test_template_pages_are_valid_html(app):
    prepare(app)
    b = login(app)
    for path in ("/settings/mail-templates", "/settings/mail-templates/ack",
                 "/settings/mail-templates/sla_warning"):
        page = b.get(path)
        assert page.status_code == 200, path
        validate(page.text)
    assert "{{ticket_ref}}" in page.text and "{{clock}}" in page.text  # the values it may use
    b.get("/settings/mail-templates/ack")
    page = b.post("/settings/mail-templates/ack/preview", ACK)
    assert page.status_code == 200
    validate(page.text)
    page = b.post("/settings/mail-templates/ack", dict(ACK, subject="{{#x}}"))
    assert page.status_code == 422 and "unclosed section" in page.text
    validate(page.text)
