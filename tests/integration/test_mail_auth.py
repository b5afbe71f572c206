"""Inbound sender authentication done by us: DKIM (keys from DNS), SPF for
the connecting address and envelope sender, DMARC alignment of the From
domain, against a real DNS server on loopback (dnsmasq)."""
import base64
import shutil
import subprocess

import dkim
import pytest

import tdharness
from loopdns import LoopDNS

GOOD_IP = "192.0.2.10"
BAD_IP = "203.0.113.5"


def keypair(tmp_path, name):
    key = tmp_path / f"{name}.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


@pytest.fixture
def dns(tmp_path):
    d = LoopDNS()
    d.key, pub = keypair(tmp_path, "client")
    d.txt["sel1._domainkey.client.test"] = [f"v=DKIM1; k=rsa; p={pub}"]
    d.txt["client.test"] = [f"v=spf1 ip4:{GOOD_IP} -all"]
    d.txt["_dmarc.client.test"] = ["v=DMARC1; p=reject; adkim=r; aspf=r"]
    d.txt["_dmarc.bank.test"] = ["v=DMARC1; p=reject"]
    d.txt["bank.test"] = ["v=spf1 mx -all"]
    d.mx["bank.test"] = ["mx.bank.test"]
    d.a["mx.bank.test"] = ["198.51.100.7"]
    d.txt["corp.test"] = ["v=spf1 include:_spf.provider.test exists:%{i}._ip.corp.test ip6:2001:db8::/32"
                          " redirect=_rest.corp.test"]
    d.txt["_spf.provider.test"] = ["v=spf1 ip4:198.51.100.0/24 -all"]
    d.a["192.0.2.77._ip.corp.test"] = ["127.0.0.2"]
    d.txt["_rest.corp.test"] = ["v=spf1 ~all"]
    d.txt["loop.test"] = ["v=spf1 include:loop.test -all"]
    d.start()
    yield d
    d.stop()


@pytest.fixture
def mail(cluster, dns):
    app = tdharness.App(cluster, cluster.new_db(cluster.template), extra_conf=f"dns_server = {dns.server}\n")
    r = app.run("tenant", "create", "--slug", "demo", "--name", "Demo MSP")
    assert r.returncode == 0, r.stderr
    app.tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address, acknowledge) VALUES (%s, 'support@msp.test', false)",
            (app.tid,))
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Client') RETURNING id", (app.tid,))[0][0]
    app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s, %s, 'client.test', true)",
            (app.tid, cid))
    yield app
    shutil.rmtree(app.dir, ignore_errors=True)


def message(frm, subject, body, msgid, extra=""):
    return (f"From: {frm}\r\nTo: support@msp.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def sign(raw, key, domain="client.test", selector="sel1"):
    sig = dkim.sign(raw, selector.encode(), domain.encode(), key,
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return sig + raw


def ingest(app, raw, *extra):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo", *extra],
                       input=raw, capture_output=True, timeout=60)
    report = tdharness.sanitizer_report(p.stderr.decode(errors="replace"))
    assert report is None, report
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def verdict(app, msgid):
    return app.sql("SELECT auth_verdict, auth_failed FROM mail_messages WHERE message_id = %s", (f"<{msgid}>",))[0]


def notes(app, msgid):
    return [b for (b,) in app.sql(
        "SELECT c.body FROM ticket_comments c JOIN mail_messages m ON m.ticket_id = c.ticket_id"
        " WHERE m.message_id = %s AND NOT c.public", (f"<{msgid}>",))]


def test_signed_mail_from_an_authorised_server_passes(mail, dns):
    raw = sign(message("Alice <alice@client.test>", "Printer", "The printer is jammed.", "ok1@client.test"),
               dns.key)
    assert ingest(mail, raw, "--client-ip", GOOD_IP, "--sender", "alice@client.test") == "ticket T-1001"
    assert verdict(mail, "ok1@client.test") == ("dkim=pass spf=pass dmarc=pass", False)
    assert notes(mail, "ok1@client.test") == []


def test_a_tampered_message_fails_dkim_and_is_flagged(mail, dns):
    raw = sign(message("Alice <alice@client.test>", "Invoice", "Please pay invoice 12 to our bank.",
                       "tamper1@client.test"), dns.key)
    forged = raw.replace(b"our bank", b"this new bank account")
    assert ingest(mail, forged) == "ticket T-1001"
    v, failed = verdict(mail, "tamper1@client.test")
    assert v.startswith("dkim=fail") and "dmarc=fail (p=reject)" in v and failed
    n = notes(mail, "tamper1@client.test")
    assert len(n) == 1 and "Sender authentication failed" in n[0] and "dkim=fail" in n[0]
    # the untouched copy passes DKIM (and so DMARC) without SPF data
    assert ingest(mail, raw.replace(b"tamper1@", b"tamper2@")) in ("ticket T-1002", "reply T-1001")
    assert verdict(mail, "tamper2@client.test")[1] is True  # the Message-ID is signed: changed, so it fails
    ok = sign(message("Alice <alice@client.test>", "Invoice", "Paid.", "tamper3@client.test"), dns.key)
    ingest(mail, ok)
    assert verdict(mail, "tamper3@client.test") == ("dkim=pass spf=none dmarc=pass", False)


def test_spf_fail_from_a_wrong_address_is_flagged(mail, dns):
    raw = message("Bob <bob@client.test>", "Reset my password", "Please reset it.", "spf1@client.test")
    assert ingest(mail, raw, "--client-ip", BAD_IP, "--sender", "bob@client.test") == "ticket T-1001"
    assert verdict(mail, "spf1@client.test") == ("dkim=none spf=fail dmarc=fail (p=reject)", True)
    assert any("spf=fail" in n for n in notes(mail, "spf1@client.test"))
    # the same from the right address passes SPF, and DMARC by SPF alignment
    raw = message("Bob <bob@client.test>", "Reset my password", "Please reset it.", "spf2@client.test")
    ingest(mail, raw, "--client-ip", GOOD_IP, "--sender", "bob@client.test")
    assert verdict(mail, "spf2@client.test") == ("dkim=none spf=pass dmarc=pass", False)
    # mx mechanism: the bank's MX may send for it, others may not
    raw = message("Teller <teller@bank.test>", "Statement", "Attached.", "spf3@bank.test")
    ingest(mail, raw, "--client-ip", "198.51.100.7", "--sender", "teller@bank.test")
    assert verdict(mail, "spf3@bank.test") == ("dkim=none spf=pass dmarc=pass", False)


def test_spf_from_the_received_header_of_our_mta(mail, dns):
    """mail-poll (and a pipe without --client-ip) read the topmost Received
    header naming a public address, written by our own MTA (past the
    internal LMTP hop), and Return-Path."""
    extra = (f"Return-Path: <bob@client.test>\r\n"
             f"Received: from mx.msp.test ([127.0.0.1]) by imap.msp.test (Dovecot) with LMTP;\r\n"
             f" Tue, 24 Nov 2026 09:00:02 +0000\r\n"
             f"Received: from mail.evil.example (mail.evil.example [{BAD_IP}])\r\n"
             f" by mx.msp.test (Postfix) with ESMTPS id 4AbC; Tue, 24 Nov 2026 09:00:01 +0000\r\n"
             f"Received: from [{GOOD_IP}] by earlier.example; Tue, 24 Nov 2026 09:00:00 +0000\r\n")
    raw = extra.encode() + message("Bob <bob@client.test>", "Hi", "Hello.", "rcv1@client.test")
    ingest(mail, raw)
    assert verdict(mail, "rcv1@client.test") == ("dkim=none spf=fail dmarc=fail (p=reject)", True)


def test_dmarc_reject_domain_misaligned_is_flagged(mail, dns):
    """Signed by client.test and sent from its authorised server, but the
    From says bank.test (p=reject): neither passing identity aligns."""
    raw = sign(message("CEO <ceo@bank.test>", "Urgent transfer", "Wire it today.", "dm1@client.test"), dns.key)
    assert ingest(mail, raw, "--client-ip", GOOD_IP, "--sender", "bounce@client.test") == "ticket T-1001"
    assert verdict(mail, "dm1@client.test") == ("dkim=pass spf=pass dmarc=fail (p=reject)", True)
    n = notes(mail, "dm1@client.test")
    assert len(n) == 1 and "ceo@bank.test" in n[0] and "dmarc=fail" in n[0]


def test_a_trusted_mta_verdict_still_wins(mail, dns):
    mail.sql("UPDATE mail_settings SET trusted_authserv_id = 'mx.msp.test'")
    raw = sign(message("Alice <alice@client.test>", "Invoice", "Pay to our bank.", "mta1@client.test",
                       "Authentication-Results: mx.msp.test; dkim=pass header.d=client.test; spf=pass;"
                       " dmarc=pass\r\n"), dns.key)
    ingest(mail, raw.replace(b"our bank", b"another bank"))
    assert verdict(mail, "mta1@client.test") == ("dkim=pass spf=pass dmarc=pass", False)
    # without its header, we verify ourselves
    raw = sign(message("Alice <alice@client.test>", "Invoice", "Pay to our bank.", "mta2@client.test"), dns.key)
    ingest(mail, raw.replace(b"our bank", b"another bank"))
    assert verdict(mail, "mta2@client.test")[1] is True
    # a tenant may turn our own checks off
    mail.sql("UPDATE mail_settings SET verify_sender = false")
    raw = sign(message("Alice <alice@client.test>", "Invoice", "Pay to our bank.", "mta3@client.test"), dns.key)
    ingest(mail, raw.replace(b"our bank", b"another bank"))
    assert verdict(mail, "mta3@client.test") == ("", False)


def test_dns_down_is_never_a_failure(mail, dns):
    dns.stop()
    raw = sign(message("Alice <alice@client.test>", "Hello", "Hi.", "down1@client.test"), dns.key)
    assert ingest(mail, raw, "--client-ip", BAD_IP, "--sender", "alice@client.test") == "ticket T-1001"
    v, failed = verdict(mail, "down1@client.test")
    assert v == "dkim=temperror spf=temperror dmarc=temperror" and not failed


@pytest.mark.parametrize("ip, sender, want", [
    ("198.51.100.20", "x@corp.test", "spf=pass"),       # include:
    ("192.0.2.77", "x@corp.test", "spf=pass"),          # exists: with the %{i} macro
    ("2001:db8::5", "x@corp.test", "spf=pass"),         # ip6:
    ("203.0.113.9", "x@corp.test", "spf=softfail"),     # redirect= to ~all: not flagged
    ("203.0.113.9", "x@loop.test", "spf=permerror"),    # an include loop hits the look-up limit
    ("203.0.113.9", "x@nowhere.test", ""),              # no record anywhere: nothing to say
])
def test_spf_mechanisms(mail, dns, ip, sender, want):
    raw = message(f"X <{sender}>", "Hi", "Hello.", "m1@corp.test")
    ingest(mail, raw, "--client-ip", ip, "--sender", sender)
    v, failed = verdict(mail, "m1@corp.test")
    assert (want in v if want else v == "") and not failed, v
