"""Settings → Email domains: a client's sending domain, its exact DNS
records, a live check against a real DNS server on loopback, and replies
about the client's tickets leaving from it (DKIM-signed) once verified."""
import email
import email.policy
import os
import re
import subprocess

import dkim
import pytest

import tdharness
from loopdns import LoopDNS
from tdclient import Browser
from test_html_valid import validate
from test_mail_outbox import Sink

PW = "correct horse battery"


@pytest.fixture
def dns():
    d = LoopDNS()
    d.start()
    yield d
    d.stop()


@pytest.fixture
def sink(tmp_path):
    s = Sink(tmp_path)
    s.start()  # bound now, before the app picks its ports
    yield s
    s.stop()


def key(app):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def login(app, who="admin"):
    b = Browser(app)
    assert b.login(f"{who}@demo.tallydesk.test", PW).status_code == 303
    return b


def statuses(html, domain):
    """{record kind: status shown} in the domain's panel."""
    panel = html[html.index(f">{domain} "):]
    panel = panel[:panel.index("</section>")]
    return dict(re.findall(r'data-record="(\w+)"><span class="badge[^"]*">([^<]+)</span>', panel))


def send(app, sink):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "outbox-send", "--once", "--smtp", sink.url],
                       capture_output=True, text=True, timeout=120)
    assert tdharness.sanitizer_report(p.stderr) is None, p.stderr
    return p


def test_admin_adds_a_client_domain_and_checks_it_live(app_factory, dns):
    app = app_factory(extra_conf=f"dns_server = {dns.server}\n")
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    acme = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme Mail') RETURNING id", (tid,))[0][0]
    b = login(app)
    page = b.get("/settings/mail-domains")
    assert page.status_code == 200 and "No sending domains yet" in page.text and "Acme Mail" in page.text
    # bad input says what is wrong and adds nothing
    r = b.post("/settings/mail-domains", {"domain": "not a domain", "from_address": "x@elsewhere.test",
                                          "client_id": "999999"})
    assert r.status_code == 422
    for m in ("enter a domain name", "enter an address at this domain", "choose a client"):
        assert m in r.text
    assert app.sql("SELECT count(*) FROM mail_domains") == [(0,)]
    r = b.post("/settings/mail-domains", {"domain": "Help.Acme.test", "from_address": "Support@help.acme.test",
                                          "client_id": str(acme)})
    assert r.status_code == 303 and r.headers["Location"] == "/settings/mail-domains"
    did, sel, pub, frm, verified = app.sql("SELECT id, selector, dkim_public_b64, from_address, verified_at"
                                           " FROM mail_domains WHERE domain = 'help.acme.test'")[0]
    assert frm == "support@help.acme.test" and verified is None
    page = b.get("/settings/mail-domains").text
    assert "help.acme.test added" in page and "For Acme Mail" in page
    # the exact records to publish
    assert f"{sel}._domainkey.help.acme.test" in page and f"v=DKIM1; k=rsa; p={pub}" in page
    assert "_dmarc.help.acme.test" in page and "v=spf1 mx a ~all" in page
    assert statuses(page, "help.acme.test") == {"SPF": "Not checked yet", "DKIM": "Not checked yet",
                                                "DMARC": "Not checked yet"}
    # a second domain for the same client is refused
    r = b.post("/settings/mail-domains", {"domain": "other.acme.test", "from_address": "a@other.acme.test",
                                          "client_id": str(acme)})
    assert r.status_code == 422 and "this client already has a sending domain" in r.text
    # nothing published yet
    r = b.post(f"/settings/mail-domains/{did}/check")
    assert r.status_code == 303
    page = b.get("/settings/mail-domains").text
    assert statuses(page, "help.acme.test") == {"SPF": "Missing", "DKIM": "Missing", "DMARC": "Missing"}
    assert "not sent from it until its DKIM record checks out" in page
    # SPF and DMARC right, DKIM with someone else's key
    dns.txt["help.acme.test"] = ["v=spf1 mx a ~all"]
    dns.txt["_dmarc.help.acme.test"] = ["v=DMARC1; p=quarantine"]
    dns.txt[f"{sel}._domainkey.help.acme.test"] = ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong"]
    dns.start()
    b.post(f"/settings/mail-domains/{did}/check")
    page = b.get("/settings/mail-domains").text
    assert statuses(page, "help.acme.test") == {"SPF": "Found and matching", "DKIM": "Wrong value",
                                                "DMARC": "Found and matching"}
    assert "Found: <code" in page and "wrong</code>" in page
    assert app.sql("SELECT verified_at FROM mail_domains WHERE id = %s", (did,)) == [(None,)]
    # the right key (published split into 255-byte strings, as DNS must)
    dns.txt[f"{sel}._domainkey.help.acme.test"] = [f"v=DKIM1; k=rsa; p={pub}"]
    dns.start()
    b.post(f"/settings/mail-domains/{did}/check")
    page = b.get("/settings/mail-domains").text
    assert statuses(page, "help.acme.test") == {"SPF": "Found and matching", "DKIM": "Found and matching",
                                                "DMARC": "Found and matching"}
    assert "Mail is sent from this domain." in page and "badge-on\">Sending" in page
    validate(page)
    # the JSON twin
    h = key(app)
    j = app.get("/api/v1/settings/mail-domains", headers=h).json()
    d = j["domains"][0]
    assert d["domain"] == "help.acme.test" and d["verified"] is True and d["client_id"] == acme
    assert [(x["kind"], x["status"]) for x in d["records"]] == [("SPF", "ok"), ("DKIM", "ok"), ("DMARC", "ok")]
    dns.txt.pop(f"{sel}._domainkey.help.acme.test")
    dns.start()
    r = app.post(f"/api/v1/settings/mail-domains/{did}/check", headers=h)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["domains"][0]["records"]] == ["ok", "missing", "ok"]
    assert r.json()["domains"][0]["verified"] is False
    r = app.post("/api/v1/settings/mail-domains", json={"domain": "msp.test", "from_address": "help@msp.test"},
                 headers=h)
    assert r.status_code == 201 and len(r.json()["domains"]) == 2
    r = app.post("/api/v1/settings/mail-domains", json={"domain": "msp.test", "from_address": "help@msp.test"},
                 headers=h)
    assert r.status_code == 422 and "already added" in r.text
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'mail_domain' ORDER BY id")]
    assert acts == ["mail_domain.create"] + ["mail_domain.check"] * 4 + ["mail_domain.create"]
    # technicians may not
    assert login(app, "tess").get("/settings/mail-domains").status_code == 403


def test_replies_leave_from_the_clients_verified_domain_signed(app_factory, dns, sink):
    app = app_factory(extra_conf=f"dns_server = {dns.server}\n")
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'help@msp.test')", (tid,))
    h = key(app)

    def client_ticket(name, email_addr):
        cid = app.post("/api/v1/clients", json={"name": name}, headers=h).json()["client"]["id"]
        who = app.sql("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s, %s, 'Dana', %s)"
                      " RETURNING id", (tid, cid, email_addr))[0][0]
        t = app.post("/api/v1/tickets", json={"subject": "VPN drops", "client_id": cid, "contact_id": who},
                     headers=h).json()["ticket"]
        return cid, t

    acme, t1 = client_ticket("Acme", "dana@acme.test")
    beta, t2 = client_ticket("Beta", "dana@beta.test")
    for cid, dom in ((acme, "help.acme.test"), (beta, "help.beta.test")):
        r = app.post("/api/v1/settings/mail-domains", json={"domain": dom, "from_address": f"support@{dom}",
                                                            "client_id": cid}, headers=h)
        assert r.status_code == 201, r.text
    # Acme publishes its records and is verified; Beta never does
    sel, pub, did = app.sql("SELECT selector, dkim_public_b64, id FROM mail_domains WHERE domain = 'help.acme.test'")[0]
    dns.txt[f"{sel}._domainkey.help.acme.test"] = [f"v=DKIM1; k=rsa; p={pub}"]
    dns.start()
    assert app.post(f"/api/v1/settings/mail-domains/{did}/check", headers=h).status_code == 200
    for t in (t1, t2):
        r = app.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "Please restart the router.",
                                                                  "public": True}, headers=h)
        assert r.status_code == 201, r.text
    assert app.sql("SELECT to_addr, from_addr FROM outbox WHERE kind = 'reply' ORDER BY id") == [
        ("dana@acme.test", "support@help.acme.test"), ("dana@beta.test", "help@msp.test")]
    # a new ticket by mail from Acme is acknowledged from Acme's domain too
    app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s, %s, 'acme.test', true)",
            (tid, acme))
    raw = (b"From: Dana <dana@acme.test>\r\nTo: help@msp.test\r\nSubject: Printer\r\n"
           b"Message-ID: <new1@acme.test>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n\r\nIt is jammed.\r\n")
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo"],
                       input=raw, capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith(b"ticket"), p.stderr
    acks = app.sql("SELECT to_addr, from_addr, message_id FROM outbox WHERE kind = 'ack'")
    assert len(acks) == 1 and acks[0][:2] == ("dana@acme.test", "support@help.acme.test")
    assert acks[0][2].endswith("@help.acme.test>")
    app.sql("UPDATE outbox SET status = 'sent' WHERE kind = 'ack'")
    p = send(app, sink)
    assert "2 sent" in p.stdout, p.stdout + p.stderr
    msgs = {}
    for raw in sink.messages():
        m = email.message_from_bytes(raw, policy=email.policy.default)
        msgs[m["To"].addresses[0].addr_spec] = (m, raw)
    m, raw = msgs["dana@acme.test"]
    assert m["From"].addresses[0].addr_spec == "support@help.acme.test"
    assert "d=help.acme.test" in str(m["DKIM-Signature"]).replace(" ", "")
    # the signature verifies against the key published in DNS, and a tampered copy does not
    published = lambda name, timeout=5: dns.txt.get(name.decode().rstrip("."), [""])[0].encode()
    assert dkim.verify(raw, dnsfunc=published)
    assert not dkim.verify(raw.replace(b"Subject: ", b"Subject: X"), dnsfunc=published)
    # the unverified domain falls back to the tenant's address and key
    m, raw = msgs["dana@beta.test"]
    assert m["From"].addresses[0].addr_spec == "help@msp.test"
    assert "d=msp.test" in str(m["DKIM-Signature"]).replace(" ", "")
