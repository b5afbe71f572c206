"""Accounts and the security model: sign-in, sessions, CSRF, throttling,
second factor, invites, resets, API keys, roles and tenant isolation."""
import re

import psycopg
import pytest
import requests

from tdclient import Browser, csrf_of, totp_now

PW = "correct horse battery"


@pytest.fixture
def demo(app):
    """The app with the demo tenant seeded (password PW)."""
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def admin(app):
    b = Browser(app)
    r = b.login("admin@demo.tallydesk.test", PW)
    assert r.status_code == 303, r.text[:500]
    return b


def user_id(app, email):
    return app.sql("SELECT id FROM users WHERE email = %s", (email,))[0][0]


def test_pages_need_a_session_and_send_browsers_to_sign_in(demo):
    r = demo.get("/tickets?view=mine")
    assert r.status_code == 303
    assert r.headers["Location"] == "/login?next=%2Ftickets%3Fview%3Dmine"
    r = demo.get("/api/v1/tickets")
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "unauthorized" and err["message"] and err["fields"] == {}


def test_the_demo_admin_signs_in_and_sees_their_name(demo):
    b = admin(demo)
    r = b.get("/")
    assert r.status_code == 200
    assert "Alex Admin" in r.text
    cookie = [c for c in b.s.cookies if c.name == "td_session"][0]
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'user.login'")[0][0] == 1


def test_a_wrong_password_is_refused_with_the_same_words_as_an_unknown_user(demo):
    b = Browser(demo)
    wrong = b.login("admin@demo.tallydesk.test", "not the password")
    unknown = b.login("nobody@demo.tallydesk.test", PW)
    noworkspace = b.login("admin@demo.tallydesk.test", PW, workspace="nope")
    for r in (wrong, unknown, noworkspace):
        assert r.status_code == 401
        assert "The workspace, email or password is not right." in r.text
    assert "td_session" not in b.s.cookies


def test_repeated_failures_are_throttled_even_with_the_right_password(demo):
    b = Browser(demo)
    for _ in range(5):
        assert b.login("tess@demo.tallydesk.test", "guess guess guess").status_code == 401
    r = b.login("tess@demo.tallydesk.test", PW)
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text
    # Another account from the same address is not locked by this one.
    assert b.login("tom@demo.tallydesk.test", PW).status_code == 303


def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(demo):
    b = admin(demo)
    before = demo.sql("SELECT count(*) FROM invites")[0][0]
    r = b.post("/settings/users/invite", {"email": "x@example.com", "role": "technician"},
               csrf=False)
    assert r.status_code == 403
    r = b.post("/settings/users/invite", {"email": "x@example.com", "role": "technician",
                                          "csrf": "A" * 43})
    assert r.status_code == 403
    assert demo.sql("SELECT count(*) FROM invites")[0][0] == before
    r = b.post("/settings/users/invite", {"email": "x@example.com", "role": "technician"})
    assert r.status_code == 303
    assert demo.sql("SELECT count(*) FROM invites")[0][0] == before + 1


def test_sign_in_without_the_form_token_is_refused(demo):
    r = requests.post(demo.url + "/login", data={"workspace": "demo",
                      "email": "admin@demo.tallydesk.test", "password": PW},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 403


def test_a_session_id_set_before_sign_in_is_never_used(demo):
    b = Browser(demo)
    b.s.cookies.set("td_session", "1." + "A" * 43, domain="127.0.0.1", path="/")
    b.login("admin@demo.tallydesk.test", PW)
    first = b.s.cookies.get("td_session")
    assert first != "1." + "A" * 43
    b.login("admin@demo.tallydesk.test", PW)
    second = b.s.cookies.get("td_session")
    assert second != first
    old = requests.get(demo.url + "/", cookies={"td_session": first}, allow_redirects=False)
    assert old.status_code == 303  # the rotated-away session is gone


def test_sign_out_ends_the_session(demo):
    b = admin(demo)
    token = b.s.cookies.get("td_session")
    r = b.post("/logout")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    r = requests.get(demo.url + "/", cookies={"td_session": token}, allow_redirects=False)
    assert r.status_code == 303


def test_a_deactivated_user_is_out_on_the_next_request(demo):
    tess = Browser(demo)
    assert tess.login("tess@demo.tallydesk.test", PW).status_code == 303
    assert tess.get("/").status_code == 200
    a = admin(demo)
    tid = user_id(demo, "tess@demo.tallydesk.test")
    a.get("/settings/users")
    assert a.post(f"/settings/users/{tid}/deactivate").status_code == 303
    assert tess.get("/").status_code == 303
    assert tess.login("tess@demo.tallydesk.test", PW).status_code == 401


def test_technicians_cannot_reach_admin_pages(demo):
    tess = Browser(demo)
    tess.login("tess@demo.tallydesk.test", PW)
    for path in ("/settings", "/settings/users", "/settings/apikeys", "/invoices"):
        r = tess.get(path)
        assert r.status_code == 403, path
        assert "403" in r.text
    assert tess.get("/settings/security").status_code == 200


def test_api_keys_from_the_command_line_work_and_can_be_revoked(demo):
    r = demo.run("apikey", "create", "--tenant", "demo", "--name", "RMM sync",
                 "--role", "technician")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert re.fullmatch(r"td_\d+_[A-Za-z0-9_-]{43}", key)
    me = demo.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    body = me.json()
    assert body["tenant"]["slug"] == "demo" and body["role"] == "technician"
    assert body["api_key"]["name"] == "RMM sync"
    r = demo.get("/api/v1/settings/users", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    bad = demo.get("/api/v1/me", headers={"Authorization": "Bearer td_1_" + "x" * 43})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    kid = demo.sql("SELECT id FROM api_keys")[0][0]
    a = admin(demo)
    a.get("/settings/apikeys")
    assert a.post(f"/settings/apikeys/{kid}/revoke").status_code == 303
    assert demo.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_an_admin_creates_an_api_key_that_is_shown_once(demo):
    a = admin(demo)
    a.get("/settings/apikeys")
    r = a.post("/settings/apikeys", {"name": "PSA bridge", "role": "manager"})
    assert r.status_code == 201
    key = re.search(r"td_\d+_[A-Za-z0-9_-]{43}", r.text).group(0)
    assert demo.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()["role"] == "manager"
    assert key not in a.get("/settings/apikeys").text
    stored = demo.sql("SELECT key_hash FROM api_keys")[0][0]
    assert key.encode() not in bytes(stored)


def test_invite_by_the_command_line_then_join(demo):
    r = demo.run("user", "invite", "--tenant", "demo", "--email", "new.tech@demo.tallydesk.test",
                 "--role", "technician")
    assert r.returncode == 0, r.stderr
    link = r.stdout.strip()
    path = link[len(demo.url):]
    b = Browser(demo)
    page = b.get(path)
    assert page.status_code == 200 and "new.tech@demo.tallydesk.test" in page.text
    r = b.post(path, {"name": "Nia New", "password": "a fine long pass", "password2": "a fine long pass"})
    assert r.status_code == 303
    assert b.get("/").status_code == 200
    assert demo.sql("SELECT role FROM users WHERE email = 'new.tech@demo.tallydesk.test'")[0][0] == "technician"
    again = Browser(demo).get(path)
    assert "Nia New" not in again.text
    assert Browser(demo).post(path, {"name": "X", "password": "another long pw", "password2": "another long pw"}).status_code == 200
    assert demo.sql("SELECT count(*) FROM users WHERE email = 'new.tech@demo.tallydesk.test'")[0][0] == 1


def test_password_reset_by_link(demo):
    b = Browser(demo)
    b.get("/login/forgot")
    r = b.post("/login/forgot", {"workspace": "demo", "email": "tom@demo.tallydesk.test"})
    same = Browser(demo)
    same.get("/login/forgot")
    r2 = same.post("/login/forgot", {"workspace": "demo", "email": "ghost@demo.tallydesk.test"})
    assert r.status_code == r2.status_code == 200
    assert "we've sent a link" in r.text and "we've sent a link" in r2.text
    mail = demo.sql("SELECT to_addr, body_text FROM outbox WHERE kind = 'password_reset'")
    assert len(mail) == 1 and mail[0][0] == "tom@demo.tallydesk.test"
    link = re.search(r"http://\S+/reset/\S+", mail[0][1]).group(0)
    assert link in admin(demo).get("/settings/users").text
    path = link[len(demo.url):]
    c = Browser(demo)
    c.get(path)
    r = c.post(path, {"password": "brand new secret", "password2": "brand new secret"})
    assert r.status_code == 303
    assert Browser(demo).login("tom@demo.tallydesk.test", PW).status_code == 401
    assert Browser(demo).login("tom@demo.tallydesk.test", "brand new secret").status_code == 303
    reuse = Browser(demo)
    reuse.get(path)
    r = reuse.post(path, {"password": "third secret here", "password2": "third secret here"})
    assert r.status_code == 200 and "third" not in r.text
    assert Browser(demo).login("tom@demo.tallydesk.test", "brand new secret").status_code == 303


def test_two_step_verification(demo):
    b = Browser(demo)
    b.login("morgan@demo.tallydesk.test", PW)
    b.get("/settings/security")
    assert b.post("/settings/totp/start").status_code == 303
    page = b.get("/settings/security").text
    assert "<svg" in page
    secret = demo.sql("SELECT totp_secret FROM users WHERE email = 'morgan@demo.tallydesk.test'")[0][0]
    import base64
    b32 = base64.b32encode(bytes(secret)).decode().rstrip("=")
    assert b32[:4] in page.replace(" ", "")
    assert b.post("/settings/totp/enable", {"code": "000000"}).status_code == 422
    assert b.post("/settings/totp/enable", {"code": totp_now(b32)}).status_code == 303
    b.post("/logout")

    c = Browser(demo)
    r = c.login("morgan@demo.tallydesk.test", PW)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/totp")
    assert c.get("/").headers.get("Location") == "/login/totp"
    assert c.get("/api/v1/me", headers={"Accept": "application/json"}).status_code == 401
    c.get("/login/totp")
    assert c.post("/login/totp", {"code": "123456" if totp_now(b32) != "123456" else "654321"}).status_code == 401
    code = totp_now(b32, step_offset=1)
    assert c.post("/login/totp", {"code": code}).status_code == 303
    assert c.get("/").status_code == 200
    d = Browser(demo)
    d.login("morgan@demo.tallydesk.test", PW)
    d.get("/login/totp")
    assert d.post("/login/totp", {"code": code}).status_code == 401  # no replay


def test_audit_log_page_lists_changes_with_filters(demo):
    a = admin(demo)
    a.get("/settings/users")
    a.post("/settings/users/invite", {"email": "aud@example.com", "role": "manager"})
    page = a.get("/settings/audit?action=user.invite")
    assert page.status_code == 200
    assert "aud@example.com" in page.text or "user.invite" in page.text
    only = a.get("/api/v1/settings/audit?action=user.invite", headers={"Accept": "application/json"})
    assert {e["action"] for e in only.json()["events"]} == {"user.invite"}
    api = a.get("/api/v1/settings/audit?action=user.", headers={"Accept": "application/json"})
    actions = {e["action"] for e in api.json()["events"]}
    assert {"user.invite", "user.login"} <= actions
    none = a.get("/api/v1/settings/audit?action=%25", headers={"Accept": "application/json"})
    assert none.json()["events"] == []  # '%' is matched literally, not as a wildcard


def test_the_app_role_cannot_change_the_audit_log(demo, cluster):
    with psycopg.connect(demo.app_db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', '1', false)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("UPDATE audit_log SET action = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM audit_log")


@pytest.fixture
def two_tenants(demo):
    """The demo tenant plus 'rival' with overlapping data and its own admin."""
    r = demo.run("tenant", "create", "--slug", "rival", "--name", "Rival IT")
    assert r.returncode == 0, r.stderr
    link = demo.run("user", "invite", "--tenant", "rival", "--email",
                    "admin@demo.tallydesk.test", "--role", "admin").stdout.strip()
    b = Browser(demo)
    path = link[len(demo.url):]
    b.get(path)
    assert b.post(path, {"name": "Rita Rival", "password": "rival password 1",
                         "password2": "rival password 1"}).status_code == 303
    return demo


def test_tenants_never_see_each_other(two_tenants):
    app = two_tenants
    rival = Browser(app)
    assert rival.login("admin@demo.tallydesk.test", "rival password 1", workspace="rival").status_code == 303
    demo_tess = user_id(app, "tess@demo.tallydesk.test")
    # Pages and writes aimed at the other tenant's rows: 404, nothing changes.
    rival.get("/settings/users")
    r = rival.post(f"/settings/users/{demo_tess}/role", {"role": "admin"})
    assert r.status_code == 404
    r = rival.post(f"/settings/users/{demo_tess}/deactivate")
    assert r.status_code == 404
    assert app.sql("SELECT role, active FROM users WHERE id = %s", (demo_tess,))[0] == ("technician", True)
    users = rival.get("/settings/users").text
    assert "Tess Technician" not in users and "Rita Rival" in users
    audit = rival.get("/api/v1/settings/audit", headers={"Accept": "application/json"}).json()
    rival_ids = {r[0] for r in app.sql(
        "SELECT a.id FROM audit_log a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = 'rival'")}
    assert audit["events"] and {e["id"] for e in audit["events"]} <= rival_ids
    # A session cookie with the other tenant's id in front is just invalid.
    token = rival.s.cookies.get("td_session")
    forged = "1." + token.split(".", 1)[1]
    r = requests.get(app.url + "/settings/users", cookies={"td_session": forged}, allow_redirects=False)
    assert r.status_code == 303


def test_row_level_security_holds_without_the_app(two_tenants, cluster):
    """Bypass the app: the app's role, set to tenant 'rival', sees nothing of 'demo'."""
    app = two_tenants
    demo_id = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    rival_id = app.sql("SELECT id FROM tenants WHERE slug = 'rival'")[0][0]
    with psycopg.connect(app.app_db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(rival_id),))
        assert c.execute("SELECT count(*) FROM users WHERE tenant_id = %s", (demo_id,)).fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1
        assert c.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", (demo_id,)).fetchone()[0] == 0
        cur = c.execute("UPDATE users SET role = 'admin' WHERE tenant_id = %s", (demo_id,))
        assert cur.rowcount == 0
        cur = c.execute("DELETE FROM sessions WHERE tenant_id = %s", (demo_id,))
        assert cur.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO users (tenant_id, email, name, role) VALUES (%s, 'x@y.z', 'X', 'admin')",
                      (demo_id,))
        c.execute("SELECT set_config('app.tenant_id', '', false)")
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0
    assert app.sql("SELECT count(*) FROM users WHERE role = 'admin' AND tenant_id = %s", (demo_id,))[0][0] == 1


def test_markup_and_sql_in_text_fields_are_shown_verbatim(demo):
    nasty = "<script>alert('x')</script> Robert'); DROP TABLE users;--"
    link = demo.run("user", "invite", "--tenant", "demo", "--email", "n@demo.tallydesk.test",
                    "--role", "technician").stdout.strip()
    b = Browser(demo)
    path = link[len(demo.url):]
    b.get(path)
    assert b.post(path, {"name": nasty, "password": "long enough pw", "password2": "long enough pw"}).status_code == 303
    page = admin(demo).get("/settings/users").text
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Robert&#39;); DROP TABLE users;--" in page
    assert demo.sql("SELECT name FROM users WHERE email = 'n@demo.tallydesk.test'")[0][0] == nasty


def test_tenant_create_refuses_a_duplicate_slug(demo):
    r = demo.run("tenant", "create", "--slug", "demo", "--name", "Again")
    assert r.returncode == 1 and "exists already" in r.stderr
    r = demo.run("tenant", "create", "--slug", "Bad Slug!", "--name", "X")
    assert r.returncode == 1
    r = demo.run("tenant", "create", "--name", "X")
    assert r.returncode == 2 and "'--slug' is required" in r.stderr
