"""mail-ingest: real messages become tickets and replies; machines, loops and
storms never do; a database outage loses nothing."""
import base64
import json
import os
import shutil
import subprocess

import pytest

import tdharness

CORPUS = os.path.join(tdharness.SHARED, "testdata", "mail")


@pytest.fixture
def mail(cluster):
    """A migrated database with tenant 'demo' and no server: mail-ingest
    is a command, as an MTA pipe runs it."""
    app = tdharness.App(cluster, cluster.new_db(cluster.template))
    r = app.run("tenant", "create", "--slug", "demo", "--name", "Demo MSP")
    assert r.returncode == 0, r.stderr
    app.tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'support@msp.test')",
            (app.tid,))
    yield app
    shutil.rmtree(app.dir, ignore_errors=True)


def ingest(app, raw, *extra):
    if isinstance(raw, str):
        raw = raw.encode()
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-ingest", "--tenant", "demo",
                        *extra], input=raw, capture_output=True, timeout=60)
    report = tdharness.sanitizer_report(p.stderr.decode(errors="replace"))
    assert report is None, report
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def msg(frm, subject, body, msgid, extra=""):
    return (f"From: {frm}\r\nTo: support@msp.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")


def client_with_domain(app, name, domain):
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, %s) RETURNING id",
                  (app.tid, name))[0][0]
    app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s, %s, %s, true)",
            (app.tid, cid, domain))
    return cid


def ticket_of(app, message_id):
    rows = app.sql("SELECT m.outcome, t.number, t.client_id, m.comment_id FROM mail_messages m"
                   " LEFT JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = %s", (message_id,))
    assert len(rows) == 1, rows
    return rows[0]


def comments(app, number):
    return app.sql("SELECT c.body, k.email, c.public FROM ticket_comments c"
                   " JOIN tickets t ON t.id = c.ticket_id LEFT JOIN contacts k ON k.id = c.author_contact_id"
                   " WHERE t.number = %s AND c.author_contact_id IS NOT NULL ORDER BY c.id", (number,))


def test_every_corpus_message_reads_as_the_table_says(mail):
    if not os.path.isdir(CORPUS):
        pytest.skip(f"the mail corpus is not at {CORPUS} (../shared/testdata/mail)")
    with open(os.path.join(CORPUS, "expected.json")) as f:
        expected = json.load(f)
    for e in sorted(expected, key=lambda e: e["file"]):
        with open(os.path.join(CORPUS, e["file"]), "rb") as f:
            rc, out, err = ingest(mail, f.read())
        want_rc = 65 if e["from_address"] is None else 0
        assert rc == want_rc, (e["file"], rc, err)
    rows = mail.sql("SELECT message_id, from_addr, from_name, subject, kind, outcome, ticket_id,"
                    " attachments, body_text, encode(raw_sha256, 'hex') FROM mail_messages"
                    " WHERE direction = 'in' ORDER BY id")
    assert len(rows) == len(expected)
    by_file = dict(zip(sorted(e["file"] for e in expected), rows))
    tickets = {}
    for e in expected:
        mid, frm, name, subject, kind, outcome, ticket, atts, body, _ = by_file[e["file"]]
        where = e["file"]
        assert mid == e["message_id"], where
        assert frm == e["from_address"], where
        if e["from_name"] is not None:
            assert name == e["from_name"], where
        assert subject in [e["subject"]] + e.get("subject_also_acceptable", []), where
        assert kind == e["kind"], where
        assert sorted(atts) == sorted(e["attachments"]), where
        if e.get("body_contains"):
            assert e["body_contains"] in body, where
        if e["kind"] != "normal":
            # auto-replies, bounces and reports never open or update a ticket
            assert outcome == "ignored-auto" and ticket is None, where
        elif e["from_address"] is None:
            assert outcome == "rejected" and ticket is None, where
        elif "Precedence: junk" in e["auto_signals"]:
            assert outcome == "ignored-bulk" and ticket is None, where
        else:
            assert outcome in ("ticket", "reply") and ticket is not None, (where, outcome)
            tickets[e["file"]] = ticket
            got = sorted(a for (a,) in mail.sql(
                "SELECT filename FROM ticket_attachments WHERE ticket_id = %s", (ticket,)))
            assert got == sorted(e["attachments"]), where
    # example06 answers example01 (In-Reply-To/References): same ticket, as a reply
    assert tickets["mikel-mail-example06.eml"] == tickets["mikel-mail-example01.eml"]
    assert by_file["mikel-mail-example06.eml"][5] == "reply"
    # subjects became ticket subjects, decoded
    subj = mail.sql("SELECT subject FROM tickets WHERE id = %s", (tickets["mikel-mail-raw_email.eml"],))
    assert subj == [("NOTE: 한국말로 하는 것",)]
    # unknown senders wait in the triage client, not the bin
    triage = mail.sql("SELECT c.name, count(*) FROM tickets t JOIN clients c ON c.id = t.client_id"
                      " GROUP BY c.name")
    assert [n for n, _ in triage] == ["Unassigned (email)"]
    # the raw copy is kept byte for byte
    with open(os.path.join(CORPUS, "sisimai-mac-lhost-qmail-01.eml"), "rb") as f:
        raw = f.read()
    assert mail.sql("SELECT raw FROM mail_messages WHERE subject = 'failure notice'")[0][0] == raw
    # a redelivery of everything is a no-op
    n_tickets = mail.sql("SELECT count(*) FROM tickets")[0][0]
    n_comments = mail.sql("SELECT count(*) FROM ticket_comments")[0][0]
    for e in expected[:10]:
        with open(os.path.join(CORPUS, e["file"]), "rb") as f:
            rc, out, _ = ingest(mail, f.read())
        assert out.strip() == "duplicate" and rc == 0, e["file"]
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == n_tickets
    assert mail.sql("SELECT count(*) FROM ticket_comments")[0][0] == n_comments
    assert mail.sql("SELECT count(*) FROM mail_messages")[0][0] == len(expected)


def test_threading_by_token_and_references_cc_colleague_and_trimming(mail):
    acme = client_with_domain(mail, "Acme", "acme.test")
    rc, out, err = ingest(mail, msg('"Alice Smith" <alice@acme.test>', "Printer on fire",
                                    "The printer is on fire.\r\nPlease help.", "a1@acme.test"))
    assert rc == 0 and out.strip() == "ticket T-1001", err
    outcome, number, client, _ = ticket_of(mail, "<a1@acme.test>")
    assert (outcome, number, client) == ("ticket", 1001, acme)
    t = mail.sql("SELECT t.subject, t.description, t.source, k.name, k.email FROM tickets t"
                 " JOIN contacts k ON k.id = t.contact_id WHERE t.number = 1001")[0]
    assert t == ("Printer on fire", "The printer is on fire.\nPlease help.", "email",
                 "Alice Smith", "alice@acme.test")

    # reply with the token; the quoted history is trimmed from the comment
    body = ("It is out now, thanks.\r\n\r\nOn Tue, 24 Nov 2026 at 09:00, Demo MSP <support@msp.test> wrote:\r\n"
            "> Have you tried water?\r\n> Regards\r\n")
    rc, out, _ = ingest(mail, msg("alice@acme.test", "Re: [T-1001] Printer on fire", body, "a2@acme.test"))
    assert rc == 0 and out.strip() == "reply T-1001"
    assert comments(mail, 1001) == [("It is out now, thanks.", "alice@acme.test", True)]
    raw = mail.sql("SELECT raw FROM mail_messages WHERE message_id = '<a2@acme.test>'")[0][0]
    assert b"Have you tried water?" in raw  # the whole reply is kept in the raw copy

    # a colleague who was CC'd replies, subject without token: threads by References
    body = ("Same problem on the second floor.\r\n\r\n-----Original Message-----\r\n"
            "From: Alice Smith\r\nSent: Tuesday\r\nSubject: Printer on fire\r\n\r\nThe printer is on fire.\r\n")
    rc, out, _ = ingest(mail, msg('"Bob Jones" <bob@acme.test>', "RE: Printer on fire", body, "b1@acme.test",
                                  "In-Reply-To: <a2@acme.test>\r\nReferences: <a1@acme.test> <a2@acme.test>\r\n"))
    assert rc == 0 and out.strip() == "reply T-1001"
    assert comments(mail, 1001)[-1] == ("Same problem on the second floor.", "bob@acme.test", True)
    assert mail.sql("SELECT name, client_id FROM contacts WHERE email = 'bob@acme.test'") == [("Bob Jones", acme)]
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 1

    # an Outlook reply with the underscore separator and an inline '>' block
    body = ("Fixed.\r\n> quoted line\r\nThanks\r\n________________________________\r\n"
            "From: Bob Jones <bob@acme.test>\r\nSent: Tuesday\r\n\r\nold text\r\n")
    rc, out, _ = ingest(mail, msg("alice@acme.test", "RE: Printer", body, "a3@acme.test",
                                  "References: <b1@acme.test>\r\n"))
    assert out.strip() == "reply T-1001"
    assert comments(mail, 1001)[-1][0] == "Fixed.\nThanks"

    # an out-of-office answering the thread neither comments nor reopens
    ooo = msg("alice@acme.test", "Automatic reply: Printer on fire", "I am away.", "ooo@acme.test",
              "Auto-Submitted: auto-replied\r\nIn-Reply-To: <a1@acme.test>\r\n")
    rc, out, _ = ingest(mail, ooo)
    assert rc == 0 and out.strip() == "ignored-auto"
    assert len(comments(mail, 1001)) == 3


def test_own_mail_via_lists_unknown_senders_and_rate_limit(mail):
    acme = client_with_domain(mail, "Acme", "acme.test")
    # our own mail coming back (a CC loop) never opens a ticket
    rc, out, _ = ingest(mail, msg('"Demo MSP" <support@msp.test>', "[T-1001] Your ticket", "hi", "own1@msp.test"))
    assert rc == 0 and out.strip() == "ignored-own"
    mail.sql("INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text, message_id)"
             " VALUES (%s, 'notify', 'x@acme.test', 's', 'b', '<sent1@msp.test>')", (mail.tid,))
    rc, out, _ = ingest(mail, msg("someone@else.test", "Fwd", "loop", "sent1@msp.test"))
    assert out.strip() == "ignored-own"
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 0

    # "Jane via List": the real sender is in Reply-To / X-Original-From
    rc, out, _ = ingest(mail, msg('"Carol Chen via IT List" <it-list@lists.example>', "VPN down", "VPN is down",
                                  "c1@lists.example", "Reply-To: Carol Chen <carol@acme.test>\r\n"))
    assert out.strip() == "ticket T-1001"
    assert mail.sql("SELECT t.client_id, k.email, k.name FROM tickets t JOIN contacts k ON k.id = t.contact_id"
                    " WHERE t.number = 1001") == [(acme, "carol@acme.test", "Carol Chen")]
    rc, out, _ = ingest(mail, msg('"Dan via IT List" <it-list@lists.example>', "Mail slow", "slow",
                                  "d1@lists.example", "X-Original-From: Dan Duke <dan@acme.test>\r\n"))
    assert out.strip() == "ticket T-1002"
    assert mail.sql("SELECT k.email FROM tickets t JOIN contacts k ON k.id = t.contact_id"
                    " WHERE t.number = 1002") == [("dan@acme.test",)]

    # an unknown domain goes to the triage client, created once
    for i in range(2):
        rc, out, _ = ingest(mail, msg(f"zed{i}@nowhere.test", "Hello", "who are you", f"z{i}@nowhere.test"))
        assert out.strip().startswith("ticket")
    assert mail.sql("SELECT c.name, count(*) FROM tickets t JOIN clients c ON c.id = t.client_id"
                    " WHERE c.id <> %s GROUP BY c.name", (acme,)) == [("Unassigned (email)", 2)]
    assert mail.sql("SELECT count(*) FROM mail_settings WHERE triage_client_id IS NOT NULL")[0][0] == 1

    # a storm from one sender is cut off by the per-sender rate limit
    mail.sql("UPDATE mail_settings SET rate_limit = 3")
    outs = [ingest(mail, msg("storm@acme.test", f"n{i}", "x", f"s{i}@acme.test"))[1].strip() for i in range(5)]
    assert [o.split()[0] for o in outs] == ["ticket", "ticket", "ticket", "rate-limited", "rate-limited"]
    # no From at all: kept for review, exit 65
    rc, out, err = ingest(mail, "Subject: nobody\r\nMessage-ID: <nf@x.test>\r\n\r\nbody\r\n")
    assert rc == 65 and "review" in err
    assert mail.sql("SELECT outcome FROM mail_messages WHERE message_id = '<nf@x.test>'") == [("rejected",)]


def test_reply_to_closed_ticket_reopens_or_opens_linked_ticket(mail):
    client_with_domain(mail, "Acme", "acme.test")
    ingest(mail, msg("alice@acme.test", "Broken mouse", "mouse broken", "m1@acme.test"))
    mail.sql("UPDATE tickets SET status = 'closed', closed_at = now() WHERE number = 1001")
    rc, out, _ = ingest(mail, msg("alice@acme.test", "Re: [T-1001] Broken mouse", "still broken", "m2@acme.test"))
    assert out.strip() == "reply T-1001"
    assert mail.sql("SELECT status, closed_at FROM tickets WHERE number = 1001") == [("in_progress", None)]
    mail.sql("UPDATE tickets SET status = 'closed', closed_at = now() WHERE number = 1001")
    mail.sql("UPDATE mail_settings SET closed_reply = 'new_ticket'")
    rc, out, _ = ingest(mail, msg("alice@acme.test", "Re: Broken mouse", "broken again", "m3@acme.test",
                                  "In-Reply-To: <m2@acme.test>\r\n"))
    assert out.strip() == "ticket T-1002"
    assert mail.sql("SELECT status FROM tickets WHERE number = 1001") == [("closed",)]
    desc = mail.sql("SELECT description FROM tickets WHERE number = 1002")[0][0]
    assert desc.startswith("Follow-up by email to T-1001") and "broken again" in desc


def test_client_reply_takes_a_waiting_ticket_back_in_progress(mail):
    """A reply counts as client activity: the SLA clock paused while waiting resumes."""
    client_with_domain(mail, "Acme", "acme.test")
    ingest(mail, msg("alice@acme.test", "VPN down", "no vpn", "w1@acme.test"))
    mail.sql("UPDATE tickets SET status = 'waiting' WHERE number = 1001")
    rc, out, _ = ingest(mail, msg("alice@acme.test", "Re: [T-1001] VPN down", "works now, thanks", "w2@acme.test"))
    assert rc == 0 and out.strip() == "reply T-1001"
    assert mail.sql("SELECT status FROM tickets WHERE number = 1001") == [("in_progress",)]
    audit = mail.sql("SELECT after::text FROM audit_log WHERE action = 'ticket.update' ORDER BY id DESC LIMIT 1")
    assert "the client replied" in audit[0][0]
    # A reply to a ticket already being worked leaves its status alone.
    ingest(mail, msg("alice@acme.test", "Re: [T-1001] VPN down", "one more thing", "w3@acme.test"))
    assert mail.sql("SELECT status FROM tickets WHERE number = 1001") == [("in_progress",)]


def test_database_outage_exits_75_and_redelivery_succeeds_once(mail, cluster):
    client_with_domain(mail, "Acme", "acme.test")
    m = msg("alice@acme.test", "During the outage", "hello", "outage@acme.test")
    cluster.stop()
    try:
        rc, out, err = ingest(mail, m)
        assert rc == 75, (rc, err)
        assert "try again" in err
    finally:
        cluster.start()
    rc, out, _ = ingest(mail, m)
    assert rc == 0 and out.strip() == "ticket T-1001"
    rc, out, _ = ingest(mail, m)  # the MTA's redelivery after a lost reply
    assert rc == 0 and out.strip() == "duplicate"
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 1
    assert mail.sql("SELECT count(*) FROM mail_messages")[0][0] == 1


def test_batch_directory_and_unknown_tenant(mail, tmp_path):
    client_with_domain(mail, "Acme", "acme.test")
    for i in range(5):
        (tmp_path / f"{i:03d}.eml").write_text(msg("alice@acme.test", f"batch {i}", "x", f"bt{i}@acme.test"))
    rc, out, _ = ingest(mail, b"", "--batch", str(tmp_path))
    assert rc == 0 and out.strip() == "5 delivered, 0 rejected, 0 failed"
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 5
    p = subprocess.run([tdharness.BIN, "--config", mail.conf, "mail-ingest", "--tenant", "nope"],
                       input=b"From: a@b.test\r\n\r\nx", capture_output=True)
    assert p.returncode == 67 and b"no tenant 'nope'" in p.stderr


def test_new_ticket_is_acknowledged_and_replies_to_the_ack_thread(mail):
    client_with_domain(mail, "Acme", "acme.test")
    rc, out, _ = ingest(mail, msg('"Alice Smith" <alice@acme.test>', "Laptop won't boot", "It beeps.",
                                  "boot1@acme.test", "References: <older@acme.test>\r\n"))
    assert out.strip() == "ticket T-1001"
    acks = mail.sql("SELECT to_addr, from_addr, subject, auto_submitted, in_reply_to, refs, message_id,"
                    " body_text, body_html, status FROM outbox WHERE kind = 'ack'")
    assert len(acks) == 1
    to, frm, subject, auto, irt, refs, mid, text, html, status = acks[0]
    assert (to, frm, subject, auto, irt, status) == (
        "alice@acme.test", "support@msp.test", "[T-1001] Laptop won't boot", "auto-replied",
        "<boot1@acme.test>", "queued")
    assert refs == "<older@acme.test> <boot1@acme.test>"
    assert "Hello Alice Smith" in text and "T-1001" in text and "Laptop won't boot" in text
    assert "Laptop won&#39;t boot" in html or "Laptop won&apos;t boot" in html or "Laptop won't boot" in html
    # a reply to the acknowledgement threads by its Message-ID alone
    rc, out, _ = ingest(mail, msg("alice@acme.test", "Re: your ticket", "It also smells.", "boot2@acme.test",
                                  f"In-Reply-To: {mid}\r\n"))
    assert out.strip() == "reply T-1001"
    # replies, auto-replies and unknown-tenant settings never get an acknowledgement
    assert mail.sql("SELECT count(*) FROM outbox")[0][0] == 1
    mail.sql("UPDATE mail_settings SET acknowledge = false")
    ingest(mail, msg("alice@acme.test", "Another", "x", "boot3@acme.test"))
    assert mail.sql("SELECT count(*) FROM outbox")[0][0] == 1


def test_attachments_are_stored_once_with_types_from_their_bytes(mail):
    client_with_domain(mail, "Acme", "acme.test")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()
    svg = base64.b64encode(b"<svg onload='alert(1)'></svg>").decode()
    raw = ("From: alice@acme.test\r\nSubject: Screens\r\nMessage-ID: <att1@acme.test>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
           "--zz\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
           "--zz\r\nContent-Type: application/octet-stream; name=shot.png\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n"
           "--zz\r\nContent-Type: image/svg+xml\r\nContent-Disposition: inline; filename=\"logo.svg\"\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n{svg}\r\n--zz--\r\n")
    rc, out, _ = ingest(mail, raw)
    assert out.strip() == "ticket T-1001"
    rows = mail.sql("SELECT a.filename, a.content_type, a.size, b.size FROM ticket_attachments a"
                    " JOIN blobs b ON b.sha256 = a.sha256 ORDER BY a.filename")
    assert rows == [("logo.svg", "application/octet-stream", 29, 29), ("shot.png", "image/png", 48, 48)]
    assert mail.sql("SELECT description FROM tickets")[0][0] == "See attached."
    # the same file again in a reply: one blob
    raw2 = raw.replace("<att1@acme.test>", "<att2@acme.test>").replace("Subject: Screens", "Subject: Re: [T-1001] Screens")
    ingest(mail, raw2)
    assert mail.sql("SELECT count(*) FROM blobs")[0][0] == 2
    assert mail.sql("SELECT count(*) FROM ticket_attachments WHERE comment_id IS NOT NULL")[0][0] == 2


def test_failed_sender_authentication_from_our_mta_is_flagged(mail):
    client_with_domain(mail, "Acme", "acme.test")
    mail.sql("UPDATE mail_settings SET trusted_authserv_id = 'mx.msp.test'")
    forged_ok = "Authentication-Results: evil.example; dkim=pass; spf=pass; dmarc=pass\r\n"
    ours_fail = ("Authentication-Results: mx.msp.test; dkim=fail (bad signature) header.d=acme.test;\r\n"
                 " spf=pass smtp.mailfrom=acme.test; dmarc=fail header.from=acme.test\r\n")
    rc, out, _ = ingest(mail, msg("ceo@acme.test", "Pay this invoice now", "Wire 10,000 today.",
                                  "spoof1@acme.test", forged_ok + ours_fail))
    assert out.strip() == "ticket T-1001"
    assert mail.sql("SELECT auth_verdict, auth_failed FROM mail_messages") == [
        ("dkim=fail spf=pass dmarc=fail", True)]
    notes = mail.sql("SELECT body FROM ticket_comments WHERE NOT public")
    assert len(notes) == 1 and "Sender authentication failed" in notes[0][0]
    assert "dmarc=fail" in notes[0][0]
    # a pass from our MTA, or anyone else's header, adds nothing
    ours_ok = "Authentication-Results: mx.msp.test; dkim=pass header.d=acme.test; spf=pass; dmarc=pass\r\n"
    ingest(mail, msg("ceo@acme.test", "Lunch", "Fine.", "ok1@acme.test", ours_ok))
    ingest(mail, msg("ceo@acme.test", "Other", "Fine.", "ok2@acme.test",
                     "Authentication-Results: evil.example; dmarc=fail\r\n"))
    assert mail.sql("SELECT auth_verdict, auth_failed FROM mail_messages ORDER BY id")[1:] == [
        ("dkim=pass spf=pass dmarc=pass", False), ("", False)]
    assert len(mail.sql("SELECT body FROM ticket_comments WHERE NOT public")) == 1


def test_html_only_mail_becomes_clean_text_and_vips_come_first(mail):
    acme = client_with_domain(mail, "Acme", "acme.test")
    mail.sql("INSERT INTO contacts (tenant_id, client_id, name, email, is_vip) VALUES (%s, %s, 'Vera Boss',"
             " 'vera@acme.test', true)", (mail.tid, acme))
    html = ("<html><head><title>t</title><style>p {color: red}</style></head><body>"
            "<p>The <b>portal</b> is down.</p><script>alert('x')</script>"
            "<p>See <a href=\"https://status.acme.test/\">the status page</a>.</p></body></html>")
    raw = ("From: Vera Boss <vera@acme.test>\r\nSubject: =?iso-8859-1?q?Portal_d=E9faillant?=\r\n"
           "Message-ID: <h1@acme.test>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n")
    rc, out, _ = ingest(mail, raw)
    assert out.strip() == "ticket T-1001"
    subject, desc, prio, tags, contact = mail.sql(
        "SELECT t.subject, t.description, t.priority, t.tags, k.email FROM tickets t"
        " JOIN contacts k ON k.id = t.contact_id")[0]
    assert subject == "Portal défaillant"
    assert desc == "The portal is down.\nSee the status page <https://status.acme.test/>."
    assert (prio, tags, contact) == (2, ["vip"], "vera@acme.test")


def test_a_batch_refreshes_mail_statistics_for_the_app(mail):
    """mail-ingest --batch asks for fresh statistics of mail_messages once
    it has delivered a thousand messages (0024); the app, which does not
    own the table, may do that through the function."""
    import psycopg
    with psycopg.connect(mail.app_db_url, autocommit=True) as c:
        c.execute("SELECT mail_refresh_stats()")
    assert mail.sql("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables"
                    " WHERE relname = 'mail_messages'") == [(True,)]
