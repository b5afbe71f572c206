"""outbox-send: queued mail leaves by SMTP (a real aiosmtpd sink), signed
with the domain's DKIM key, retried with backoff, sent exactly once."""
import email
import email.policy
import glob
import os
import shutil
import subprocess
import time

import pytest

import tdharness


@pytest.fixture
def mail(cluster):
    app = tdharness.App(cluster, cluster.new_db(cluster.template))
    r = app.run("tenant", "create", "--slug", "demo", "--name", "Demo MSP")
    assert r.returncode == 0, r.stderr
    app.tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'support@msp.test')",
            (app.tid,))
    yield app
    shutil.rmtree(app.dir, ignore_errors=True)


class Sink:
    def __init__(self, tmp_path):
        self.dir = str(tmp_path / "sink")
        self.port = tdharness.free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "mailsink.py"),
                                      self.dir, str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def messages(self):
        return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(self.dir, "*.eml")))]


@pytest.fixture
def sink(tmp_path):
    s = Sink(tmp_path)
    yield s
    s.stop()


def send(app, sink):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "outbox-send", "--once", "--smtp", sink.url],
                       capture_output=True, text=True, timeout=120)
    assert tdharness.sanitizer_report(p.stderr) is None, p.stderr
    return p


def queue(app, to, subject, body, **extra):
    cols = ", ".join(["tenant_id", "kind", "to_addr", "subject", "body_text"] + list(extra))
    vals = ", ".join(["%s"] * (5 + len(extra)))
    return app.sql(f"INSERT INTO outbox ({cols}) VALUES ({vals}) RETURNING id",
                   (app.tid, "notify", to, subject, body, *extra.values()))[0][0]


def row(app, oid):
    return app.sql("SELECT status, attempts, message_id, last_error, next_attempt_at > now()"
                   " FROM outbox WHERE id = %s", (oid,))[0]


def test_sink_down_then_up_sends_exactly_once_with_dkim(mail, sink, tmp_path):
    oid = queue(mail, "alice@acme.test", "Ticket T-1001 received — ✓", "We have your request.\nThe Desk")
    # the SMTP server is down: a temporary failure, retried later
    p = send(mail, sink)
    assert p.returncode == 0 and "0 sent, 1 to retry, 0 failed" in p.stdout, p.stderr
    status, attempts, mid, err, later = row(mail, oid)
    assert (status, attempts, later) == ("queued", 1, True) and err
    assert mid.startswith("<td.") and mid.endswith("@msp.test>")
    # not due yet: nothing is tried again
    assert "0 sent, 0 to retry" in send(mail, sink).stdout
    assert row(mail, oid)[1] == 1
    # the server is back and the backoff has passed: sent once, same Message-ID
    sink.start()
    mail.sql("UPDATE outbox SET next_attempt_at = now() WHERE id = %s", (oid,))
    p = send(mail, sink)
    assert "1 sent, 0 to retry, 0 failed" in p.stdout, p.stderr
    assert row(mail, oid)[:3] == ("sent", 2, mid)
    assert "0 sent" in send(mail, sink).stdout
    msgs = sink.messages()
    assert len(msgs) == 1
    m = email.message_from_bytes(msgs[0], policy=email.policy.default)
    assert m["Message-ID"] == mid
    assert str(m["Subject"]) == "Ticket T-1001 received — ✓"
    assert m["From"].addresses[0].addr_spec == "support@msp.test"
    assert m.get_content().replace("\r\n", "\n").strip() == "We have your request.\nThe Desk"
    assert m["DKIM-Signature"] is not None and "d=msp.test" in str(m["DKIM-Signature"]).replace(" ", "")
    # the signature verifies against the domain's published key
    sel, pub = mail.sql("SELECT selector, dkim_public_b64 FROM mail_domains WHERE domain = 'msp.test'")[0]
    keys = tmp_path / "keys"
    keys.write_text(f"{sel}._domainkey.msp.test v=DKIM1; k=rsa; p={pub}\n")
    v = subprocess.run([tdharness.BIN, "dkim-verify", "--key-file", str(keys)], input=msgs[0],
                       capture_output=True)
    assert v.returncode == 0 and v.stdout.startswith(b"pass"), v.stdout + v.stderr
    tampered = msgs[0].replace(b"We have", b"We lost") if b"We have" in msgs[0] else \
        msgs[0].replace(b"Subject: ", b"Subject: X", 1)
    v = subprocess.run([tdharness.BIN, "dkim-verify", "--key-file", str(keys)], input=tampered,
                       capture_output=True)
    assert v.returncode == 1 and v.stdout.startswith(b"fail")
    # the copy we sent is kept, and our own mail coming back never opens a ticket
    assert mail.sql("SELECT outcome FROM mail_messages WHERE direction = 'out'") == [("sent",)]
    back = subprocess.run([tdharness.BIN, "--config", mail.conf, "mail-ingest", "--tenant", "demo"],
                          input=msgs[0], capture_output=True, text=False)
    assert back.returncode == 0 and back.stdout.strip() == b"ignored-own"


def test_permanent_failures_are_marked_and_crashed_sends_keep_their_id(mail, sink):
    sink.start()
    bad = queue(mail, "nobody@acme.test", "Hello", "x")
    crashed = queue(mail, "bob@acme.test", "Again", "y", status="sending", message_id="<keep-me@msp.test>",
                    attempts=1)
    p = send(mail, sink)
    assert "1 sent, 0 to retry, 1 failed" in p.stdout, p.stdout + p.stderr
    status, attempts, _, err, _ = row(mail, bad)
    assert status == "failed" and "550" in err
    assert "gave up" in p.stderr
    assert row(mail, crashed)[:3] == ("sent", 2, "<keep-me@msp.test>")
    msgs = sink.messages()
    assert len(msgs) == 1 and b"Message-ID: <keep-me@msp.test>" in msgs[0]
    acts = [a for (a,) in mail.sql("SELECT action FROM audit_log WHERE object_type = 'outbox' ORDER BY id")]
    assert sorted(acts) == ["outbox.failed", "outbox.sent"]


def test_mail_domain_records(mail):
    r = mail.run("mail-domain", "add", "--tenant", "demo", "--domain", "Help.Acme.test")
    assert r.returncode == 0, r.stderr
    assert "td1._domainkey.help.acme.test. TXT \"v=DKIM1; k=rsa; p=MII" in r.stdout
    assert "_dmarc.help.acme.test. TXT" in r.stdout and "v=spf1" in r.stdout
    r = mail.run("mail-domain", "add", "--tenant", "demo", "--domain", "not a domain")
    assert r.returncode == 2 and "not a domain name" in r.stderr
    r = mail.run("mail-domain", "show", "--tenant", "demo")
    assert r.returncode == 0 and "help.acme.test" in r.stdout


def test_mail_domain_for_a_client_with_its_from_address(mail):
    cid = mail.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme IT') RETURNING id", (mail.tid,))[0][0]
    r = mail.run("mail-domain", "add", "--tenant", "demo", "--domain", "acme-it.test",
                 "--client-id", str(cid), "--from", "Support@acme-it.test")
    assert r.returncode == 0, r.stderr
    assert "acme-it.test for " in r.stdout and ", from support@acme-it.test" in r.stdout
    assert mail.sql("SELECT from_address, client_id FROM mail_domains WHERE domain = 'acme-it.test'") == \
        [("support@acme-it.test", cid)]
    # an address at another domain is refused and nothing is added
    r = mail.run("mail-domain", "add", "--tenant", "demo", "--domain", "beta-it.test", "--from", "help@elsewhere.test")
    assert r.returncode == 2 and "--from must be an address at beta-it.test" in r.stderr
    assert mail.sql("SELECT count(*) FROM mail_domains WHERE domain = 'beta-it.test'")[0][0] == 0
