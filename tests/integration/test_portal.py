"""The client portal: magic-link sign-in, a contact's tickets, staff side."""
import re
import statistics
import time

import requests

from clientdata import *
from tdclient import Browser

LINK_RE = re.compile(r"(https?://\S+/link/[A-Za-z0-9_-]{43})")


def make_world(app):
    tid = seed(app)
    a = client(app, tid, "Acme")
    b = client(app, tid, "Beta")

    def contact(cl, name, email, portal=True, admin=False):
        return app.sql("INSERT INTO contacts (tenant_id, client_id, name, email, is_portal, portal_admin)"
                       " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                       (tid, cl, name, email, portal, admin))[0][0]

    ids = {
        "tid": tid, "a": a, "b": b,
        "alice": contact(a, "Alice", "alice@acme.test"),
        "ann": contact(a, "Ann Admin", "ann@acme.test", admin=True),
        "bob": contact(b, "Bob", "bob@beta.test"),
        "nope": contact(a, "Noel", "noel@acme.test", portal=False),
    }
    return ids


def request_link(app, email, slug="demo"):
    b = Browser(app)
    r = b.get(f"/portal/{slug}/login")
    assert r.status_code == 200, r.text[r.text.find("<main"):][:1500]
    return b, b.post(f"/portal/{slug}/login", {"email": email})


def last_link(app, email):
    rows = app.sql("SELECT body_text FROM outbox WHERE kind = 'portal_link' AND to_addr = %s"
                   " ORDER BY id DESC LIMIT 1", (email,))
    assert rows, f"no link mailed to {email}"
    return LINK_RE.search(rows[0][0]).group(1)


def portal_login(app, email, slug="demo"):
    b, r = request_link(app, email, slug)
    assert r.status_code == 200
    path = last_link(app, email)[len(app.url):]
    r = b.get(path)
    assert r.status_code == 200 and "Sign in" in r.text
    r = b.post(path)
    assert r.status_code == 303 and r.headers["Location"] == f"/portal/{slug}", r.text[:300]
    set_cookie = r.headers["Set-Cookie"]
    assert "td_portal=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert b.get(f"/portal/{slug}").status_code == 200
    return b


def test_full_journey(app):
    ids = make_world(app)
    b = portal_login(app, "alice@acme.test")
    assert app.sql("SELECT portal_last_login_at IS NOT NULL FROM contacts WHERE id = %s", (ids["alice"],))[0][0]
    # raise a ticket with an attachment
    r = b.s.post(app.url + "/portal/demo/tickets",
                 data={"csrf": b.csrf, "subject": "Printer jammed", "description": "Paper everywhere",
                       "priority": "2"},
                 files={"file": ("jam.png", b"\x89PNG\r\n\x1a\nfakepng", "image/png")},
                 allow_redirects=False, timeout=20)
    assert r.status_code == 303, r.text[r.text.find("<main"):][:1500]
    tk, source, contact, client_id, prio, status = app.sql(
        "SELECT id, source, contact_id, client_id, priority, status FROM tickets WHERE subject = 'Printer jammed'")[0]
    assert (source, contact, client_id, prio) == ("portal", ids["alice"], ids["a"], 2)
    assert r.headers["Location"] == f"/portal/demo/tickets/{tk}"
    # staff answer: one public reply, one internal note
    staff = login(app)
    staff.get(f"/tickets/{tk}")
    assert staff.post(f"/tickets/{tk}/comments", {"body": "We are on our way", "visibility": "public"}).status_code == 303
    assert staff.post(f"/tickets/{tk}/comments", {"body": "Secret internal musing", "visibility": "internal"}).status_code == 303
    r = staff.s.post(app.url + f"/tickets/{tk}/comments",
                     data={"csrf": staff.csrf, "body": "Internal file", "visibility": "internal"},
                     files={"file": ("secret.txt", b"internal only", "text/plain")},
                     allow_redirects=False, timeout=20)
    assert r.status_code == 303
    secret = app.sql("SELECT id FROM ticket_attachments WHERE filename = 'secret.txt'")[0][0]
    page = b.get(f"/portal/demo/tickets/{tk}")
    assert page.status_code == 200
    assert "secret.txt" not in page.text
    assert b.get(f"/portal/demo/attachments/{secret}").status_code == 404
    assert "We are on our way" in page.text and "Paper everywhere" in page.text
    assert "Secret internal musing" not in page.text
    assert "jam.png" in page.text
    att = app.sql("SELECT id FROM ticket_attachments WHERE filename = 'jam.png'")[0][0]
    d = b.get(f"/portal/demo/attachments/{att}")
    assert d.status_code == 200 and d.content == b"\x89PNG\r\n\x1a\nfakepng"
    assert d.headers["Content-Disposition"].startswith("attachment")
    # a reply while waiting puts the ticket back in progress
    app.sql("UPDATE tickets SET status = 'waiting' WHERE id = %s", (tk,))
    r = b.post(f"/portal/demo/tickets/{tk}/comments", {"body": "Still jammed, thanks"})
    assert r.status_code == 303
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (tk,))[0][0] == "in_progress"
    assert app.sql("SELECT author_contact_id, public FROM ticket_comments WHERE body = 'Still jammed, thanks'")[0] == (ids["alice"], True)
    staff_page = staff.get(f"/tickets/{tk}").text
    assert "Still jammed, thanks" in staff_page and "Alice" in staff_page
    # a staff timer is running; the contact closes the ticket
    uid = app.sql("SELECT id FROM users WHERE email = 'admin@demo.tallydesk.test'")[0][0]
    app.sql("INSERT INTO timers (tenant_id, user_id, ticket_id) VALUES (%s, %s, %s)", (ids["tid"], uid, tk))
    b.get(f"/portal/demo/tickets/{tk}")
    r = b.post(f"/portal/demo/tickets/{tk}/close")
    assert r.status_code == 303
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (tk,))[0][0] == "closed"
    assert app.sql("SELECT count(*) FROM timers WHERE ticket_id = %s", (tk,))[0][0] == 0
    page = b.get(f"/portal/demo/tickets/{tk}")
    assert "This request is closed" in page.text
    # audited as the contact
    acts = app.sql("SELECT action FROM audit_log WHERE actor_kind = 'portal' ORDER BY id")
    acts = [a for (a,) in acts]
    for want in ("portal.login", "ticket.create", "comment.create", "ticket.close"):
        assert want in acts, acts
    assert app.sql("SELECT actor FROM audit_log WHERE action = 'ticket.close'")[0][0] == f"contact:{ids['alice']} alice@acme.test"
    # logout ends the session
    r = b.post("/portal/demo/logout")
    assert r.status_code == 303 and r.headers["Location"] == "/portal/demo/login"
    assert b.get("/portal/demo").status_code == 303


def test_links_refused_when_reused_expired_or_for_another_tenant(app):
    make_world(app)
    portal_login(app, "alice@acme.test")
    used = last_link(app, "alice@acme.test")[len(app.url):]
    r = Browser(app).get(used)
    assert r.status_code == 410 and "used already" in r.text and 'action="/portal/demo/login"' in r.text
    b, _ = request_link(app, "alice@acme.test")
    path = last_link(app, "alice@acme.test")[len(app.url):]
    app.sql("UPDATE portal_links SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
    b.get(path)
    r = b.post(path)
    assert r.status_code == 410 and "expired" in r.text
    assert "td_portal=" not in r.headers.get("Set-Cookie", "")
    # a fresh demo link opened on another tenant's portal
    assert app.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    b, _ = request_link(app, "alice@acme.test")
    token = last_link(app, "alice@acme.test").rsplit("/", 1)[1]
    r = b.get(f"/portal/rival/link/{token}")
    assert r.status_code == 410 and "not valid" in r.text
    r = b.post(f"/portal/rival/link/{token}")
    assert r.status_code == 410
    assert app.sql("SELECT count(*) FROM portal_sessions")[0][0] == 1  # only the first sign-in
    # garbage token
    assert Browser(app).get("/portal/demo/link/short").status_code == 410
    # unknown portal
    assert Browser(app).get("/portal/nosuch/login").status_code == 404


def test_no_enumeration_same_words_same_work(app):
    make_world(app)

    def ask(email):
        b = Browser(app)
        b.get("/portal/demo/login")
        fails = app.sql("SELECT count(*) FROM auth_failures")[0][0]
        t0 = time.perf_counter()
        r = b.post("/portal/demo/login", {"email": email})
        took = time.perf_counter() - t0
        assert r.status_code == 200
        body = re.sub(r'name="csrf" value="[^"]+"', "", r.text)
        body = re.sub(r"<code class=\"request-id\">[^<]+</code>", "", body)
        return body.replace(email, "EMAIL"), took, app.sql("SELECT count(*) FROM auth_failures")[0][0] - fails

    known, t_known, w_known = ask("alice@acme.test")
    unknown, t_unknown, w_unknown = ask("nobody@acme.test")
    notportal, _, _ = ask("noel@acme.test")
    assert known == unknown == notportal
    assert "If that address may use this portal" in known
    assert w_known == w_unknown == 2  # both counted for the rate limit
    assert app.sql("SELECT count(*) FROM outbox WHERE to_addr = 'nobody@acme.test'")[0][0] == 0
    assert app.sql("SELECT count(*) FROM outbox WHERE to_addr = 'noel@acme.test'")[0][0] == 0
    assert app.sql("SELECT count(*) FROM outbox WHERE to_addr = 'alice@acme.test'")[0][0] == 1
    # timing: medians of a few tries each, within a generous bound
    tk, tu = [], []
    for i in range(4):
        tk.append(ask("ann@acme.test")[1])
        tu.append(ask(f"ghost{i}@acme.test")[1])
    mk, mu = statistics.median(tk), statistics.median(tu)
    print(f"median known {mk*1000:.1f} ms, unknown {mu*1000:.1f} ms")
    assert abs(mk - mu) < 0.05 + 0.5 * max(mk, mu)


def test_rate_limit_per_address(app):
    make_world(app)
    for i in range(5):
        assert request_link(app, "alice@acme.test")[1].status_code == 200
    r = request_link(app, "ALICE@acme.test")[1]
    assert r.status_code == 429 and "Too many sign-in links" in r.text
    assert app.sql("SELECT count(*) FROM outbox WHERE to_addr = 'alice@acme.test'")[0][0] == 5
    assert request_link(app, "bob@beta.test")[1].status_code == 200


def test_contacts_see_only_what_is_theirs(app):
    ids = make_world(app)
    alice = portal_login(app, "alice@acme.test")
    bob = portal_login(app, "bob@beta.test")
    ann = portal_login(app, "ann@acme.test")
    alice.post("/portal/demo/tickets", {"subject": "Alice laptop"})
    ann.post("/portal/demo/tickets", {"subject": "Ann phone"})
    tk = app.sql("SELECT id FROM tickets WHERE subject = 'Alice laptop'")[0][0]
    staff_tk = app.sql("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 9001, 'Acme server', %s)"
                       " RETURNING id", (ids["tid"], ids["a"]))[0][0]
    app.sql("INSERT INTO blobs (tenant_id, sha256, size, data) VALUES (%s, sha256('y'), 1, 'y') ON CONFLICT DO NOTHING", (ids["tid"],))
    att = app.sql("INSERT INTO ticket_attachments (tenant_id, ticket_id, sha256, filename, content_type, size)"
                  " VALUES (%s, %s, sha256('y'), 'y.txt', 'text/plain', 1) RETURNING id", (ids["tid"], tk))[0][0]
    before = app.sql("SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM tickets t")[0][0]
    comments = app.sql("SELECT count(*) FROM ticket_comments")[0][0]
    bob.get("/portal/demo")
    for path in (f"/portal/demo/tickets/{tk}", f"/portal/demo/attachments/{att}", f"/portal/demo/tickets/{staff_tk}"):
        assert bob.get(path).status_code == 404, path
        assert bob.get("/api/v1" + path).status_code == 404, path
    assert bob.post(f"/portal/demo/tickets/{tk}/comments", {"body": "pwned"}).status_code == 404
    assert bob.post(f"/portal/demo/tickets/{tk}/close").status_code == 404
    r = bob.get(f"/portal/demo/tickets/{tk}")
    assert "Back to your requests" in r.text and "Sign out" in r.text  # the portal's own error page
    assert app.sql("SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM tickets t")[0][0] == before
    assert app.sql("SELECT count(*) FROM ticket_comments")[0][0] == comments
    # alice sees her own ticket only; ann (client admin) sees all of Acme's
    home = alice.get("/portal/demo").text
    assert "Alice laptop" in home
    assert "Ann" not in home.split("Your requests")[1] and "Acme server" not in home
    assert alice.get(f"/portal/demo/tickets/{staff_tk}").status_code == 404
    home = ann.get("/portal/demo").text
    assert "Acme server" in home and "laptop" in home and "phone" in home
    assert ann.get(f"/portal/demo/tickets/{tk}").status_code == 200
    # ann may close alice's ticket as client admin
    assert ann.post(f"/portal/demo/tickets/{tk}/close").status_code == 303


def test_csrf_and_cookie_separation(app):
    make_world(app)
    alice = portal_login(app, "alice@acme.test")
    r = alice.post("/portal/demo/tickets", {"subject": "No token"}, csrf=False)
    assert r.status_code == 403
    r = alice.post("/portal/demo/tickets", {"subject": "Wrong token", "csrf": "x" * 43})
    assert r.status_code == 403
    assert app.sql("SELECT count(*) FROM tickets")[0][0] == 0
    r = alice.s.post(app.url + "/api/v1/portal/demo/tickets", json={"subject": "API no token"}, timeout=20)
    assert r.status_code == 403
    # a portal cookie opens no staff page
    assert alice.get("/tickets").status_code == 303
    assert alice.get("/tickets").headers["Location"].startswith("/login")
    assert alice.get("/api/v1/tickets").status_code == 401
    # a staff cookie opens no portal page
    staff = login(app)
    r = staff.get("/portal/demo")
    assert r.status_code == 303 and r.headers["Location"] == "/portal/demo/login"
    assert staff.get("/api/v1/portal/demo").status_code == 401


def test_api_twin(app):
    ids = make_world(app)
    alice = portal_login(app, "alice@acme.test")
    h = {"X-CSRF-Token": alice.csrf}
    r = alice.s.post(app.url + "/api/v1/portal/demo/tickets", json={"subject": "Via API", "priority": 4},
                     headers=h, timeout=20)
    assert r.status_code == 201, r.text
    tk = r.json()["ticket"]["id"]
    r = alice.s.post(app.url + "/api/v1/portal/demo/tickets", json={"subject": "", "priority": 1},
                     headers=h, timeout=20)
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"subject", "priority"}
    r = alice.s.get(app.url + "/api/v1/portal/demo", timeout=20)
    assert r.status_code == 200 and [t["subject"] for t in r.json()["tickets"]] == ["Via API"]
    r = alice.s.post(app.url + f"/api/v1/portal/demo/tickets/{tk}/comments", json={"body": "More detail"},
                     headers=h, timeout=20)
    assert r.status_code == 201
    r = alice.s.get(app.url + f"/api/v1/portal/demo/tickets/{tk}", timeout=20)
    t = r.json()["ticket"]
    assert t["priority"] == 4 and [c["body"] for c in t["comments"]] == ["More detail"]
    assert app.run  # silence
    assert Browser(app).get("/api/v1/portal/demo").status_code == 401
    assert ids


def test_staff_page_send_link_and_revoke(app):
    ids = make_world(app)
    alice = portal_login(app, "alice@acme.test")
    staff = login(app)
    r = staff.get(f"/clients/{ids['a']}/portal")
    assert r.status_code == 200 and "alice@acme.test" in r.text and "Revoke access" in r.text
    assert staff.get(f"/api/v1/clients/{ids['a']}/portal").status_code == 200
    r = staff.post(f"/clients/{ids['a']}/portal/{ids['ann']}/link")
    assert r.status_code == 303
    assert app.sql("SELECT requested_by IS NOT NULL FROM portal_links l JOIN contacts c ON c.id = l.contact_id"
                   " WHERE c.email = 'ann@acme.test'")[0][0]
    assert app.sql("SELECT count(*) FROM outbox WHERE to_addr = 'ann@acme.test'")[0][0] == 1
    # a contact of another client through this client's page: 404
    assert staff.post(f"/clients/{ids['a']}/portal/{ids['bob']}/revoke").status_code == 404
    # grant noel as client admin
    assert staff.post(f"/clients/{ids['a']}/portal/{ids['nope']}/grant", {"client_admin": "1"}).status_code == 303
    assert app.sql("SELECT is_portal, portal_admin FROM contacts WHERE id = %s", (ids["nope"],))[0] == (True, True)
    # revoke: alice's session ends at once, and her links die
    assert alice.get("/portal/demo").status_code == 200
    r = staff.post(f"/clients/{ids['a']}/portal/{ids['alice']}/revoke")
    assert r.status_code == 303
    r = alice.get("/portal/demo")
    assert r.status_code == 303 and r.headers["Location"] == "/portal/demo/login"
    assert app.sql("SELECT count(*) FROM portal_sessions WHERE contact_id = %s", (ids["alice"],))[0][0] == 0
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'contact' AND actor_kind = 'user' ORDER BY id")]
    assert acts == ["portal.link_sent", "contact.portal_grant", "contact.portal_revoke"], acts
    # technicians may not grant
    tech = app.sql("SELECT email FROM users WHERE role = 'technician' LIMIT 1")
    if tech:
        t = login(app, tech[0][0])
        page = t.get(f"/clients/{ids['a']}/portal").text
        assert "Send sign-in link" in page and "Give access" not in page
        assert t.post(f"/clients/{ids['a']}/portal/{ids['bob']}/grant").status_code == 403


def test_host_name_maps_to_portal(app):
    ids = make_world(app)
    app.sql("INSERT INTO tenant_hosts (tenant_id, host) VALUES (%s, 'support.acme.test')", (ids["tid"],))
    s = requests.Session()
    h = {"Host": "support.acme.test"}
    r = s.get(app.url + "/", headers=h, allow_redirects=False, timeout=20)
    assert r.status_code == 303 and r.headers["Location"] == "/portal/demo/login"
    r = s.get(app.url + "/login", headers=h, allow_redirects=False, timeout=20)
    assert r.status_code == 200 and "Email me a sign-in link" in r.text
    # staff pages are not served on a portal host
    r = s.get(app.url + "/clients", headers=h, allow_redirects=False, timeout=20)
    assert r.status_code == 404
    page = s.get(app.url + "/login", headers=h, timeout=20).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = s.post(app.url + "/login", headers=h, data={"email": "alice@acme.test", "csrf": csrf},
               allow_redirects=False, timeout=20)
    assert r.status_code == 200
    assert "https://support.acme.test/link/" in app.sql("SELECT body_text FROM outbox ORDER BY id DESC LIMIT 1")[0][0]
    # that link opened on another tenant's host name is refused
    token = LINK_RE.search(app.sql("SELECT body_text FROM outbox ORDER BY id DESC LIMIT 1")[0][0]).group(1).rsplit("/", 1)[1]
    assert app.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    rival = app.sql("SELECT id FROM tenants WHERE slug = 'rival'")[0][0]
    app.sql("INSERT INTO tenant_hosts (tenant_id, host) VALUES (%s, 'help.rival.test')", (rival,))
    r = s.get(app.url + f"/link/{token}", headers={"Host": "help.rival.test"}, allow_redirects=False, timeout=20)
    assert r.status_code == 410 and "not valid" in r.text
    r = s.get(app.url + f"/link/{token}", headers=h, allow_redirects=False, timeout=20)
    assert r.status_code == 200 and "Sign in" in r.text
    # an unknown host is the staff app as before
    r = s.get(app.url + "/", headers={"Host": "other.example"}, allow_redirects=False, timeout=20)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")


def test_branding(app):
    ids = make_world(app)
    app.sql("UPDATE tenants SET brand_colour = '#aa3300', support_email = 'help@msp.test',"
            " support_phone = '+44 20 7946 0000' WHERE id = %s", (ids["tid"],))
    app.sql("INSERT INTO portal_settings (tenant_id, welcome_text) VALUES (%s, 'Welcome to Demo support')", (ids["tid"],))
    r = Browser(app).get("/portal/demo/login")
    assert "Welcome to Demo support" in r.text and "help@msp.test" in r.text and "+44 20 7946 0000" in r.text
    assert 'href="/portal/demo/brand.css"' in r.text and 'lang="en"' in r.text and 'for="portal-email"' in r.text
    css = requests.get(app.url + "/portal/demo/brand.css", timeout=20)
    assert css.status_code == 200 and "--accent:#aa3300" in css.text and css.headers["Content-Type"].startswith("text/css")
    assert "--portal-brand:#aa3300" in css.text
    # a light brand colour marks the top bar only: white text on it would be unreadable
    app.sql("UPDATE tenants SET brand_colour = '#ffee00' WHERE id = %s", (ids["tid"],))
    css = requests.get(app.url + "/portal/demo/brand.css", timeout=20)
    assert "--portal-brand:#ffee00" in css.text and "--accent:" not in css.text
    assert requests.get(app.url + "/portal/demo/logo", timeout=20).status_code == 404


def test_settings_page_welcome_and_hosts(app):
    ids = make_world(app)
    admin = login(app)
    r = admin.get("/settings/portal")
    assert r.status_code == 200 and "/portal/demo" in r.text
    assert admin.post("/settings/portal", {"welcome_text": "Hello from the desk"}).status_code == 303
    assert "Hello from the desk" in Browser(app).get("/portal/demo/login").text
    r = admin.post("/settings/portal", {"welcome_text": "x" * 2001})
    assert r.status_code == 422 and "at most 2000 characters" in r.text
    assert admin.post("/settings/portal/hosts", {"host": "Support.Acme.TEST"}).status_code == 303
    assert app.sql("SELECT host FROM tenant_hosts")[0][0] == "support.acme.test"
    for bad in ("not a host", "nodot", "-bad.example", "127.0.0.1:1"):
        r = admin.post("/settings/portal/hosts", {"host": bad})
        assert r.status_code == 422 and "enter a host name" in r.text, bad
    r = admin.post("/settings/portal/hosts", {"host": "support.acme.test"})
    assert r.status_code == 422 and "in use already" in r.text
    hid = app.sql("SELECT id FROM tenant_hosts")[0][0]
    assert admin.post(f"/settings/portal/hosts/{hid}/delete").status_code == 303
    assert app.sql("SELECT count(*) FROM tenant_hosts")[0][0] == 0
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE action LIKE 'portal.%' ORDER BY id")]
    assert acts == ["portal.settings", "portal.host_add", "portal.host_delete"], acts
    # a technician may not
    tech = app.sql("SELECT email FROM users WHERE role = 'technician' LIMIT 1")
    if tech:
        t = login(app, tech[0][0])
        assert t.get("/settings/portal").status_code == 403
    assert ids


def test_rate_limit_per_ip(app):
    make_world(app)
    b = Browser(app)
    b.get("/portal/demo/login")
    codes = [b.post("/portal/demo/login", {"email": f"someone{i}@x.test"}).status_code for i in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429


def test_portal_pages_are_valid_html(app):
    import shutil
    import test_html_valid as hv
    if shutil.which("tidy") is None:
        import pytest
        pytest.skip("tidy is not installed")
    ids = make_world(app)
    anon = Browser(app)
    pages = {"login": anon.get("/portal/demo/login").text}
    b, _ = request_link(app, "alice@acme.test")
    path = last_link(app, "alice@acme.test")[len(app.url):]
    pages["link"] = b.get(path).text
    b.post(path)
    b.get("/portal/demo")
    b.s.post(app.url + "/portal/demo/tickets", data={"csrf": b.csrf, "subject": "Valid?"},
             files={"file": ("a.txt", b"hello", "text/plain")}, timeout=20)
    tk = app.sql("SELECT id FROM tickets")[0][0]
    pages["home"] = b.get("/portal/demo").text
    pages["new"] = b.get("/portal/demo/tickets/new").text
    pages["ticket"] = b.get(f"/portal/demo/tickets/{tk}").text
    pages["used"] = Browser(app).get(path).text
    pages["error"] = b.get("/portal/demo/tickets/999999").text
    staff = login(app)
    pages["staff"] = staff.get(f"/clients/{ids['a']}/portal").text
    pages["settings"] = staff.get("/settings/portal").text
    for name, html in pages.items():
        assert "<html" in html, name
        hv.validate(html)


def test_session_idle_and_absolute_expiry(app):
    make_world(app)
    b = portal_login(app, "alice@acme.test")
    app.sql("UPDATE portal_sessions SET last_seen_at = now() - interval '61 minutes'")
    r = b.get("/portal/demo")
    assert r.status_code == 303 and r.headers["Location"] == "/portal/demo/login"
    assert "td_portal=;" in r.headers.get("Set-Cookie", "")
    b = portal_login(app, "alice@acme.test")
    app.sql("UPDATE portal_sessions SET expires_at = now() - interval '1 second'")
    assert b.get("/portal/demo").status_code == 303
    # unticking "portal user" on the contact ends the session too
    b = portal_login(app, "alice@acme.test")
    app.sql("UPDATE contacts SET is_portal = false WHERE email = 'alice@acme.test'")
    assert b.get("/portal/demo").status_code == 303


def test_client_admins_see_issued_invoices_and_their_pdfs(app):
    import subprocess
    ids = make_world(app)

    def invoice(cl, number, status="issued"):
        iv = app.sql("INSERT INTO invoices (tenant_id, client_id, status, number, issued_on, due_on, currency)"
                     " VALUES (%s, %s, %s, %s, %s, %s, 'GBP') RETURNING id",
                     (ids["tid"], cl, status, number, "2026-10-01" if number else None,
                      "2026-10-31" if number else None))[0][0]
        app.sql("INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind, description, quantity,"
                " unit_price, amount) VALUES (%s, %s, 1, 'fixed', 'Managed service', 1, 500, 500)",
                (ids["tid"], iv))
        return iv

    mine = invoice(ids["a"], "INV-0042")
    draft = invoice(ids["a"], None, "draft")
    theirs = invoice(ids["b"], "INV-0043")
    ann = portal_login(app, "ann@acme.test")
    home = ann.get("/portal/demo").text
    assert "INV-0042" in home and "INV-0043" not in home and "Overdue" in home
    assert "GBP 500.00" in home
    pdf = ann.get(f"/portal/demo/invoices/{mine}/pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True).stdout.decode()
    assert "INV-0042" in text and "500.00" in text
    # Another client's invoice, a draft, or a contact who is not a client admin: not found.
    assert ann.get(f"/portal/demo/invoices/{theirs}/pdf").status_code == 404
    assert ann.get(f"/portal/demo/invoices/{draft}/pdf").status_code == 404
    alice = portal_login(app, "alice@acme.test")
    assert "INV-0042" not in alice.get("/portal/demo").text
    assert alice.get(f"/portal/demo/invoices/{mine}/pdf").status_code == 404
