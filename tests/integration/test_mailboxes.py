"""Settings → Mailboxes: the IMAP mailboxes mail-poll reads, their
passwords never shown back, and "Test connection" against a real Dovecot."""
import re

import tdharness
from tdclient import Browser
from test_html_valid import validate
from test_mail_poll import dovecot  # noqa: F401 (a fixture)

PW = "correct horse battery"


def login(app, who="admin"):
    b = Browser(app)
    assert b.login(f"{who}@demo.tallydesk.test", PW).status_code == 303
    return b


def key(app):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def test_admin_adds_edits_and_disables_a_mailbox_without_seeing_its_password(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = login(app)
    page = b.get("/settings/mailboxes")
    assert page.status_code == 200 and "No mailboxes yet" in page.text
    # Bad input: every problem named, nothing stored.
    r = b.post("/settings/mailboxes", {"url": "http://mail.acme.test/", "username": "", "password": ""})
    assert r.status_code == 422
    for msg in ("enter an IMAP address such as", "enter the login name", "enter the password"):
        assert msg in r.text
    assert 'value="http://mail.acme.test/"' in r.text
    assert app.sql("SELECT count(*) FROM mail_mailboxes") == [(0,)]
    r = b.post("/settings/mailboxes", {"url": "imaps://mail.acme.test/INBOX", "username": "help@acme.test",
                                       "password": "s3cret pass", "enabled": "1"})
    assert r.status_code == 303 and r.headers["Location"] == "/settings/mailboxes"
    page = b.get("/settings/mailboxes").text
    assert "Mailbox added." in page and "imaps://mail.acme.test/INBOX" in page and "Enabled" in page
    assert "s3cret" not in page
    [(mid, url, user, pw, enabled)] = app.sql("SELECT id, url, username, password, enabled FROM mail_mailboxes")
    assert (url, user, pw, enabled) == ("imaps://mail.acme.test/INBOX", "help@acme.test", "s3cret pass", True)
    validate(b.get("/settings/mailboxes").text)
    edit = b.get(f"/settings/mailboxes/{mid}").text
    validate(edit)
    assert "s3cret" not in edit and "Leave blank to keep it" in edit
    # Blank password on an edit keeps it; unticking "enabled" disables the mailbox.
    r = b.post(f"/settings/mailboxes/{mid}", {"url": "imap://mail.acme.test/Support", "username": "help@acme.test",
                                             "password": ""})
    assert r.status_code == 303
    assert app.sql("SELECT url, password, enabled FROM mail_mailboxes") == \
        [("imap://mail.acme.test/Support", "s3cret pass", False)]
    assert "mail-poll skips it" in b.get("/settings/mailboxes").text or \
        "Disabled" in b.get("/settings/mailboxes").text
    r = b.post(f"/settings/mailboxes/{mid}", {"url": "imap://mail.acme.test/Support", "username": "help@acme.test",
                                             "password": "new pass", "enabled": "1"})
    assert r.status_code == 303
    assert app.sql("SELECT password, enabled FROM mail_mailboxes") == [("new pass", True)]
    # The audit log says a password changed, never what it is.
    audit = app.sql("SELECT action, coalesce(before::text, ''), after::text FROM audit_log"
                    " WHERE object_type = 'mailbox' ORDER BY id")
    assert [a for a, _, _ in audit] == ["mailbox.create", "mailbox.update", "mailbox.update"]
    assert all("s3cret" not in b4 + af and "new pass" not in b4 + af for _, b4, af in audit)
    assert '"password_changed": true' in audit[2][2]
    # The JSON twin: same data, no password, ever.
    h = key(app)
    r = app.get("/api/v1/settings/mailboxes", headers=h)
    assert r.status_code == 200
    boxes = r.json()["mailboxes"]
    assert [(x["url"], x["enabled"], x["has_password"]) for x in boxes] == \
        [("imap://mail.acme.test/Support", True, True)]
    assert "password" not in boxes[0] and "new pass" not in r.text
    r = app.post("/api/v1/settings/mailboxes", json={"url": "imap://mx.acme.test/INBOX", "username": "b",
                                                     "password": "p"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["mailbox"]["enabled"] is True and "password" not in r.json()["mailbox"]
    r = app.post(f"/api/v1/settings/mailboxes/{mid}", json={"enabled": False}, headers=h)
    assert r.status_code == 200, r.text
    assert app.sql("SELECT url, password, enabled FROM mail_mailboxes WHERE id = %s", (mid,)) == \
        [("imap://mail.acme.test/Support", "new pass", False)]
    r = app.post("/api/v1/settings/mailboxes", json={"url": "imap://host only", "username": "b",
                                                     "password": "p"}, headers=h)
    assert r.status_code == 422 and "url" in r.json()["error"]["fields"]
    # Technicians may not see them.
    t = login(app, "tess")
    assert t.get("/settings/mailboxes").status_code == 403
    assert t.get(f"/settings/mailboxes/{mid}").status_code == 403


def test_connection_test_logs_in_to_dovecot_and_says_what_happened(app, dovecot):  # noqa: F811
    assert app.run("seed-demo", "--password", PW).returncode == 0
    dovecot.deliver("1.eml", "From: a@acme.test\r\nSubject: One\r\nMessage-ID: <c1@acme.test>\r\n\r\nx\r\n")
    dovecot.deliver("2.eml", "From: a@acme.test\r\nSubject: Two\r\nMessage-ID: <c2@acme.test>\r\n\r\ny\r\n")
    b = login(app)
    b.get("/settings/mailboxes")
    r = b.post("/settings/mailboxes", {"url": dovecot.url, "username": "help@acme.test",
                                       "password": "secret", "enabled": "1"})
    assert r.status_code == 303
    mid = app.sql("SELECT id FROM mail_mailboxes")[0][0]
    b.get(f"/settings/mailboxes/{mid}")
    r = b.post(f"/settings/mailboxes/{mid}/test", {})
    assert r.status_code == 303 and r.headers["Location"] == f"/settings/mailboxes/{mid}"
    page = b.get(f"/settings/mailboxes/{mid}").text
    assert "Connected as help@acme.test: 2 messages waiting in INBOX." in page
    # Looking is not taking: both messages are still there.
    assert dovecot.count() == 2
    # A wrong password: said plainly.
    r = b.post(f"/settings/mailboxes/{mid}", {"url": dovecot.url, "username": "help@acme.test",
                                             "password": "wrong", "enabled": "1"})
    assert r.status_code == 303
    h = key(app)
    r = app.post(f"/api/v1/settings/mailboxes/{mid}/test", json={}, headers=h)
    assert r.status_code == 200, r.text
    t = r.json()["test"]
    assert t["ok"] is False and "refused the user name or password" in t["message"], t
    # Nobody listening: the connection error.
    port = tdharness.free_port()
    url = re.sub(r":\d+/", f":{port}/", dovecot.url)
    r = app.post(f"/api/v1/settings/mailboxes/{mid}", json={"url": url, "password": "secret"}, headers=h)
    assert r.status_code == 200, r.text
    t = app.post(f"/api/v1/settings/mailboxes/{mid}/test", json={}, headers=h).json()["test"]
    assert t["ok"] is False and t["message"].startswith("Could not connect: ") and "onnect" in t["message"], t
    # Back to the right settings: the API reports success too.
    app.post(f"/api/v1/settings/mailboxes/{mid}", json={"url": dovecot.url}, headers=h)
    t = app.post(f"/api/v1/settings/mailboxes/{mid}/test", json={}, headers=h).json()["test"]
    assert t == {"ok": True, "message": "Connected as help@acme.test: 2 messages waiting in INBOX."}
    assert dovecot.count() == 2
