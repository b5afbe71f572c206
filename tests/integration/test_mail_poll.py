"""mail-poll: a real Dovecot on loopback; what it takes becomes tickets and
leaves the mailbox only once committed; a rerun takes nothing twice."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

import tdharness

DOVECOT = "/usr/sbin/dovecot"


@pytest.fixture
def mail(cluster):
    app = tdharness.App(cluster, cluster.new_db(cluster.template))
    r = app.run("tenant", "create", "--slug", "demo", "--name", "Demo MSP")
    assert r.returncode == 0, r.stderr
    app.tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    yield app
    shutil.rmtree(app.dir, ignore_errors=True)


@pytest.fixture
def dovecot():
    if not os.path.exists(DOVECOT) or os.geteuid() != 0:
        pytest.skip("needs dovecot-imapd and root (Dovecot drops to its own users)")
    # Dovecot's auth and mail processes run as its users: a directory they can reach.
    top = tempfile.mkdtemp(prefix="tddovecot-")
    os.chmod(top, 0o755)
    d = pathlib.Path(top)
    for sub in ("run", "state", "home"):
        (d / sub).mkdir(parents=True)
    port = tdharness.free_port()
    (d / "passwd").write_text("help@acme.test:{PLAIN}secret\n")
    (d / "dovecot.conf").write_text(f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={d}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
    maildir = d / "home" / "help@acme.test" / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    subprocess.run(["chown", "-R", "65534:65534", str(d / "home")], check=True)
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not (d / "run" / "master.pid").exists():
        assert time.time() < deadline and proc.poll() is None, "dovecot did not start"
        time.sleep(0.05)
    time.sleep(0.3)

    class Box:
        url = f"imap://127.0.0.1:{port}/INBOX"

        def deliver(self, name, raw):
            p = maildir / "new" / name
            p.write_bytes(raw.encode())
            os.chown(p, 65534, 65534)

        def count(self):
            return len(os.listdir(maildir / "new")) + len(os.listdir(maildir / "cur"))

    yield Box()
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(top, ignore_errors=True)


def poll(app):
    p = subprocess.run([tdharness.BIN, "--config", app.conf, "mail-poll"], capture_output=True,
                       text=True, timeout=120)
    assert tdharness.sanitizer_report(p.stderr) is None, p.stderr
    return p


def test_poll_takes_each_message_once_and_empties_the_mailbox(mail, dovecot):
    mail.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme')", (mail.tid,))
    acme = mail.sql("SELECT id FROM clients WHERE name = 'Acme'")[0][0]
    mail.sql("INSERT INTO client_domains (tenant_id, client_id, domain) VALUES (%s, %s, 'acme.test')",
             (mail.tid, acme))
    mail.sql("INSERT INTO mail_mailboxes (tenant_id, url, username, password) VALUES (%s, %s,"
             " 'help@acme.test', 'secret')", (mail.tid, dovecot.url))
    dovecot.deliver("1.eml", "From: Alice <alice@acme.test>\r\nSubject: Scanner jammed\r\n"
                             "Message-ID: <p1@acme.test>\r\n\r\nThe scanner is jammed.\r\n")
    dovecot.deliver("2.eml", "From: alice@acme.test\r\nSubject: Re: [T-1001] Scanner jammed\r\n"
                             "Message-ID: <p2@acme.test>\r\n\r\nStill jammed.\r\n")
    dovecot.deliver("3.eml", "From: MAILER-DAEMON@acme.test\r\nSubject: Undelivered Mail\r\n"
                             "Auto-Submitted: auto-replied\r\nMessage-ID: <p3@acme.test>\r\n\r\nbounce\r\n")
    p = poll(mail)
    assert p.returncode == 0 and "3 fetched, 3 delivered, 0 left" in p.stdout, p.stdout + p.stderr
    assert dovecot.count() == 0
    assert mail.sql("SELECT number, subject, client_id FROM tickets") == [(1001, "Scanner jammed", acme)]
    assert mail.sql("SELECT body FROM ticket_comments WHERE author_contact_id IS NOT NULL") == [("Still jammed.",)]
    assert mail.sql("SELECT outcome FROM mail_messages ORDER BY id") == [("ticket",), ("reply",), ("ignored-auto",)]
    assert mail.sql("SELECT last_error FROM mail_mailboxes") == [(None,)]
    # a copy that comes back (a crash before the delete) is taken again but not twice
    dovecot.deliver("4.eml", "From: Alice <alice@acme.test>\r\nSubject: Scanner jammed\r\n"
                             "Message-ID: <p1@acme.test>\r\n\r\nThe scanner is jammed.\r\n")
    p = poll(mail)
    assert "1 fetched, 1 delivered" in p.stdout and dovecot.count() == 0
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 1
    assert mail.sql("SELECT count(*) FROM mail_messages")[0][0] == 3


def test_poll_leaves_mail_in_place_while_the_database_is_down(mail, dovecot, cluster):
    mail.sql("INSERT INTO mail_mailboxes (tenant_id, url, username, password) VALUES (%s, %s,"
             " 'help@acme.test', 'secret')", (mail.tid, dovecot.url))
    dovecot.deliver("1.eml", "From: bob@else.test\r\nSubject: Hi\r\nMessage-ID: <q1@else.test>\r\n\r\nx\r\n")
    cluster.stop()
    try:
        p = poll(mail)
        assert p.returncode == 75
    finally:
        cluster.start()
    assert dovecot.count() == 1
    p = poll(mail)
    assert p.returncode == 0 and "1 delivered" in p.stdout
    assert dovecot.count() == 0
    assert mail.sql("SELECT count(*) FROM tickets")[0][0] == 1


def test_wrong_password_is_recorded_on_the_mailbox(mail, dovecot):
    mail.sql("INSERT INTO mail_mailboxes (tenant_id, url, username, password) VALUES (%s, %s,"
             " 'help@acme.test', 'wrong')", (mail.tid, dovecot.url))
    dovecot.deliver("1.eml", "From: bob@else.test\r\nSubject: Hi\r\nMessage-ID: <w1@else.test>\r\n\r\nx\r\n")
    p = poll(mail)
    assert p.returncode == 0 and "0 fetched" in p.stdout
    err = mail.sql("SELECT last_error FROM mail_mailboxes")[0][0]
    assert err and "Login denied" in err, err
    assert dovecot.count() == 1
