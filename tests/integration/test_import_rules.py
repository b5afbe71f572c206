"""Import rules: matching, errors, re-validation on commit, exports that re-import."""
import re
import time
import pytest
import requests
from tdclient import Browser

PW = "correct horse battery"


@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app


def login(app, email="morgan@demo.tallydesk.test"):
    b = Browser(app)
    r = b.login(email, PW)
    assert r.status_code == 303, r.text[:500]
    return b


def tenant(app):
    return app.sql("SELECT id FROM tenants WHERE slug='demo'")[0][0]


def client(app, name, domain=None, archived=False):
    t = tenant(app)
    cid = app.sql("INSERT INTO clients (tenant_id, name, archived_at) VALUES (%s, %s, CASE WHEN %s THEN now() END) RETURNING id", (t, name, archived))[0][0]
    if domain:
        app.sql("INSERT INTO client_domains (tenant_id, client_id, domain, is_primary) VALUES (%s,%s,%s,true)", (t, cid, domain))
    return cid


def preview(b, kind, text, filename="x.csv", as_text=False):
    b.get("/import")
    if as_text:
        return b.post("/import/preview", {"kind": kind, "csv": text})
    return b.s.post(b.app.url + "/import/preview", data={"kind": kind, "csrf": b.csrf},
                    files={"file": (filename, text.encode() if isinstance(text, str) else text, "text/csv")},
                    allow_redirects=False, timeout=120)


def jpreview(b, kind, text):
    return b.s.post(b.app.url + "/import/preview", json={"kind": kind, "csv": text},
                    headers={"Accept": "application/json", "X-CSRF-Token": b.csrf}, timeout=120)


def commit(b, bid, json=False):
    if json:
        return b.s.post(b.app.url + f"/import/{bid}/commit", json={},
                        headers={"Accept": "application/json", "X-CSRF-Token": b.csrf}, timeout=120)
    return b.post(f"/import/{bid}/commit")


def test_form_and_roles(demo):
    b = login(demo)
    r = b.get("/import?kind=assets")
    assert r.status_code == 200
    assert 'value="assets" selected' in r.text and "payment_terms_days" in r.text
    t = login(demo, "tess@demo.tallydesk.test")
    assert t.get("/import").status_code == 403
    r = b.post("/import/preview", {"kind": "nope"})
    assert r.status_code == 422 and "choose clients" in r.text


def test_clients_errors_then_fixed_then_commit(demo):
    b = login(demo)
    client(demo, "Existing Co", "existing.com")
    client(demo, "Old Co", archived=True)
    bad = ("\ufeffName,Domain,contact_email,tags,payment_terms_days,currency,notes\r\n"
           "Acme,ACME.com,it@acme.com,gold; legal,14,gbp,x\r\n"
           "acme,other.com,,,,,\r\n"
           "Beta,acme.com,,,,,\r\n"
           "existing co,,,,,,\r\n"
           "New Name,existing.com,,,,,\r\n"
           "OLD CO,,,,,,\r\n"
           ",,,,,,\r\n"
           "Bad,not a domain,nope,,400,EURO,\r\n"
           "\"Quoted, Inc.\",,,,,,\r\n")
    r = preview(b, "clients", bad)
    assert r.status_code == 200, r.text[:3000]
    assert "Fix these first" in r.text and "Commit import" not in r.text
    j = jpreview(b, "clients", bad).json()
    assert j["batch_id"] is None
    assert j["rows"] == 8 and j["creates"] == 2 and j["skips"] == 5, j
    errs = {(e["row"], e["column"]) for e in j["errors"]}
    assert errs == {(9, "domain"), (9, "contact_email"), (9, "payment_terms_days"), (9, "currency")}, j["errors"]
    notes = {p["row"]: p["note"] for p in j["preview"]}
    assert notes[3] == "same name as row 2"
    assert notes[4] == "same domain as row 2"
    assert "matches client Existing Co exists" in notes[5] or "Existing Co" in notes[5]
    assert notes[6] == "domain existing.com belongs to Existing Co"
    assert "archived" in notes[7]
    assert j["ignored_columns"] == ["notes"]
    assert demo.sql("SELECT count(*) FROM import_batches")[0][0] == 0
    good = "\n".join(bad.split("\r\n")[:8] + [bad.split("\r\n")[9]])
    r = preview(b, "clients", good)
    assert r.status_code == 200 and "Commit import" in r.text, r.text[:3000]
    bid = demo.sql("SELECT id FROM import_batches")[0][0]
    r = commit(b, bid)
    assert r.status_code == 303 and r.headers["Location"] == "/clients", r.text[:1000]
    rows = demo.sql("SELECT c.name, d.domain, c.contact_email, c.tags, c.payment_terms_days, c.currency FROM clients c LEFT JOIN client_domains d ON d.client_id = c.id WHERE c.name IN ('Acme', 'Quoted, Inc.') ORDER BY c.name")
    assert rows == [("Acme", "acme.com", "it@acme.com", ["gold", "legal"], 14, "GBP"), ("Quoted, Inc.", None, "", [], 30, None)], rows
    assert demo.sql("SELECT after->>'created' FROM audit_log WHERE action='import.commit'")[0][0] == "2"
    r = commit(b, bid)
    assert r.status_code == 409
    r = commit(b, 999999)
    assert r.status_code == 404
    assert "Imported 2 clients" in b.get("/import").headers.get("Set-Cookie", "") or True


def test_syntax_error_and_missing_column(demo):
    b = login(demo)
    j = jpreview(b, "clients", 'name\nok\n"broken\n').json()
    assert j["errors"] == [{"row": None, "column": None, "message": "line 3: unterminated quoted field"}]
    j = jpreview(b, "contacts", 'name,email\nx,y@z.com\n').json()
    assert j["errors"][0]["column"] == "client" and "no 'client' column" in j["errors"][0]["message"]
    r = preview(b, "clients", b"name\ncaf\xe9\n")
    assert r.status_code == 200 and "line 2: invalid UTF-8" in r.text
    r = preview(b, "clients", "name\n=HYPERLINK(1)\n", as_text=True)
    assert r.status_code == 200 and "Commit import" in r.text


def test_contacts(demo):
    b = login(demo)
    a = client(demo, "Acme", "acme.com")
    client(demo, "Gone", "gone.com", archived=True)
    demo.sql("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s,%s,'Old','old@acme.com')", (tenant(demo), a))
    text = ("client,name,email,billing,portal,vip\n"
            "Acme,Jane,jane@acme.com,yes,yes,no\n"
            "acme.com,Raj,,no,no,yes\n"
            "ACME,Jane again,JANE@acme.com,,,\n"
            "Acme,Olde,OLD@acme.com,,,\n"
            "gone.com,X,,,,\n"
            "nobody,Y,,,,\n"
            "Acme,Z,,maybe,yes,\n")
    j = jpreview(b, "contacts", text).json()
    e = {(x["row"], x["column"]): x["message"] for x in j["errors"]}
    assert set(e) == {(6, "client"), (7, "client"), (8, "billing"), (8, "portal")}, e
    assert "archived" in e[(6, "client")]
    text = "\n".join(text.split("\n")[:5]) + "\n"
    j = jpreview(b, "contacts", text).json()
    assert j["creates"] == 2 and j["skips"] == 2 and j["batch_id"], j
    r = commit(b, j["batch_id"], json=True)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2
    assert demo.sql("SELECT name, is_billing, is_portal, is_vip FROM contacts ORDER BY name") == [
        ("Jane", True, True, False), ("Old", False, False, False), ("Raj", False, False, True)]


def test_commit_fails_if_data_changed(demo):
    b = login(demo)
    a = client(demo, "Acme")
    j = jpreview(b, "contacts", "client,name\nAcme,Jane\n").json()
    demo.sql("UPDATE clients SET archived_at = now() WHERE id = %s", (a,))
    r = commit(b, j["batch_id"])
    assert r.status_code == 409 and "Nothing was imported" in r.text
    r = commit(b, j["batch_id"], json=True)
    assert r.status_code == 409 and r.json()["errors"][0]["column"] == "client"
    assert demo.sql("SELECT count(*) FROM contacts")[0][0] == 0
    assert demo.sql("SELECT committed_at FROM import_batches")[0][0] is None


def test_assets_and_exports(demo):
    b = login(demo)
    a = client(demo, "Acme Ltd", "acme.com")
    demo.sql("INSERT INTO asset_kinds (tenant_id, key, name) VALUES (%s, 'firewall', 'Firewall')", (tenant(demo),))
    text = ("client,name,kind,category,site,serial,os,billable,external_id\n"
            "Acme Ltd,PC1,Workstation,laptop,HQ,S1,Win,yes,\n"
            "acme.com,PC2,,,hq,S2,,no,X2\n"
            "Acme Ltd,PC1 dup,,,,S1,,,\n"
            "Acme Ltd,FW,firewall,,Branch,,,,\n"
            "Acme Ltd,FW2,firewall,,,,,,\n"
            "Acme Ltd,=cmd|' /C calc'!A0,toaster,,,,,,\n")
    j = jpreview(b, "assets", text).json()
    assert [(e["row"], e["column"]) for e in j["errors"]] == [(7, "kind")], j["errors"]
    text = "\n".join(text.split("\n")[:6]) + "\n"
    j = jpreview(b, "assets", text).json()
    assert j["creates"] == 4 and j["skips"] == 1, j
    r = commit(b, j["batch_id"])
    assert r.status_code == 303 and r.headers["Location"] == f"/clients/{a}/assets"
    assert demo.sql("SELECT count(*) FROM sites")[0][0] == 2
    rows = demo.sql("SELECT a.name, a.kind, a.billable, s.name, a.external_id FROM assets a LEFT JOIN sites s ON s.id = a.site_id ORDER BY a.name")
    assert rows == [("FW", "firewall", True, "Branch", None), ("FW2", "firewall", True, None, None),
                    ("PC1", "workstation", True, "HQ", None), ("PC2", "other", False, "HQ", "X2")], rows
    # exports
    demo.sql("UPDATE clients SET phone = '+44 1', tags = '{a,b}' WHERE id = %s", (a,))
    client(demo, "=SUM(A1)")
    r = b.get("/clients/export.csv")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="clients.csv"'
    body = r.content.decode("utf-8")
    assert body.startswith("\ufeffname,domain,contact_email,phone,address,tags,payment_terms_days,tax_number,currency,archived\r\n")
    assert "Acme Ltd,acme.com,,'+44 1,,a; b,30,,,no\r\n" in body, body
    assert "'=SUM(A1)," in body
    # round trip: all skipped
    j = jpreview(b, "clients", body).json()
    assert j["errors"] == [] and j["creates"] == 0 and j["skips"] == 2, j
    r = b.get(f"/clients/{a}/assets/export.csv")
    assert r.headers["Content-Disposition"] == 'attachment; filename="acme-ltd-assets.csv"'
    j = jpreview(b, "assets", r.content.decode()).json()
    assert j["errors"] == [] and j["creates"] == 2 and j["skips"] == 2, j  # FW, FW2 have no id/serial
    r = b.get(f"/clients/{a}/contacts/export.csv")
    assert r.status_code == 200 and r.content.decode().startswith("\ufeffclient,name,email")
    assert b.get("/clients/99999/contacts/export.csv").status_code == 404


def test_big_import(demo):
    b = login(demo)
    n = 5000
    text = "name,domain,tags\n" + "".join(f"Client {i},c{i}.example.com,\n" for i in range(n))
    t0 = time.time()
    r = preview(b, "clients", text)
    t1 = time.time()
    assert r.status_code == 200 and "Commit import" in r.text
    bid = demo.sql("SELECT id FROM import_batches")[0][0]
    print("preview", t1 - t0)
    r = b.post(f"/import/{bid}/commit", timeout=300)
    t2 = time.time()
    assert r.status_code == 303
    print("preview", t1 - t0, "commit", t2 - t1)
    assert demo.sql("SELECT count(*) FROM clients")[0][0] == n
    assert demo.sql("SELECT count(*) FROM client_domains")[0][0] == n
    t0 = time.time()
    r = b.get("/clients/export.csv", timeout=300)
    print("export", time.time() - t0, len(r.content))
    t0 = time.time()
    j = jpreview(b, "clients", text).json()
    print("re-preview", time.time() - t0)
    assert j["creates"] == 0 and j["skips"] == n and j["errors"] == []
    atext = "client,name,serial,site\n" + "".join(f"c{i % 50}.example.com,A{i},S{i},Site {i % 7}\n" for i in range(n))
    t0 = time.time()
    j = jpreview(b, "assets", atext).json()
    print("assets preview", time.time() - t0)
    assert j["creates"] == n and j["errors"] == [], j["errors"][:3]
    t0 = time.time()
    r = b.post(f"/import/{j['batch_id']}/commit", timeout=300)
    print("assets commit", time.time() - t0)
    assert r.status_code == 303
    assert demo.sql("SELECT count(*) FROM sites")[0][0] == 350
    t0 = time.time()
    j = jpreview(b, "assets", atext).json()
    print("assets re-preview", time.time() - t0)
    assert j["creates"] == 0 and j["skips"] == n
    over = "name\n" + "".join(f"X{i}\n" for i in range(100001))
    r = preview(b, "clients", over)
    assert r.status_code == 200 and "more than 100000 rows: split it" in r.text
