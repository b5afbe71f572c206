"""Agent API rules: partial updates, bulk validation, archive_missing, last-seen refresh."""
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


def client(app, name="Acme"):
    t = tenant(app)
    return app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, %s) RETURNING id", (t, name))[0][0]


def new_token(app, b, cid, name="RMM"):
    r = b.get(f"/clients/{cid}/tokens")
    assert r.status_code == 200, r.text[:2000]
    r = b.post(f"/clients/{cid}/tokens", {"name": name})
    assert r.status_code == 201, r.text[:2000]
    import re
    m = re.search(r'value="(tde_[^"]+)"', r.text)
    assert m
    return m.group(1)


def api(app, token, method, path, **kw):
    h = {"Authorization": "Bearer " + token}
    return requests.request(method, app.url + "/api/v1" + path, headers=h, timeout=60, **kw)


def test_tokens_page_and_create_and_put(demo):
    b = login(demo)
    cid = client(demo)
    key = new_token(demo, b, cid)
    assert key.startswith(f"tde_{tenant(demo)}_")
    # never in the audit log
    rows = demo.sql("SELECT coalesce(after::text,'') FROM audit_log WHERE action='enrollment_token.create'")
    assert len(rows) == 1 and key not in rows[0][0]
    pref = demo.sql("SELECT prefix FROM enrollment_tokens")[0][0]
    assert pref == key[:14]
    # page shows it again without the key
    r = b.get(f"/clients/{cid}/tokens")
    assert key not in r.text and pref in r.text
    # JSON create
    r = b.s.post(demo.url + f"/clients/{cid}/tokens", json={"name": "X"},
                 headers={"Accept": "application/json", "X-CSRF-Token": b.csrf})
    assert r.status_code == 201, r.text
    j = r.json()["token"]
    assert j["key"].startswith("tde_") and j["name"] == "X"
    # bad name
    r = b.post(f"/clients/{cid}/tokens", {"name": ""})
    assert r.status_code == 422 and "at most 100" in r.text

    r = api(demo, key, "PUT", "/agent/assets/PC-1", json={"name": "PC 1", "kind": "workstation", "site": "HQ"})
    assert r.status_code == 201, r.text
    a = r.json()["asset"]
    assert a["external_id"] == "PC-1" and a["kind"] == "workstation" and a["billable"] is True and a["archived"] is False
    r = api(demo, key, "PUT", "/agent/assets/PC-1", json={"name": "PC 1", "kind": "workstation", "site": "hq"})
    assert r.status_code == 200, r.text
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action='asset.agent_upsert'")[0][0] == 1
    assert demo.sql("SELECT count(*) FROM sites")[0][0] == 1
    # a tech sets notes and billable false; agent PUT without them keeps them
    demo.sql("UPDATE assets SET notes='keep me', billable=false")
    r = api(demo, key, "PUT", "/agent/assets/PC-1", json={"name": "PC 1 renamed", "os": "Win"})
    assert r.status_code == 200
    assert r.json()["asset"]["billable"] is False
    assert demo.sql("SELECT notes, os, name, site_id IS NOT NULL FROM assets")[0] == ("keep me", "Win", "PC 1 renamed", True)
    # site "" clears, null category clears
    r = api(demo, key, "PUT", "/agent/assets/PC-1", json={"name": "PC 1 renamed", "site": "", "category": None})
    assert demo.sql("SELECT site_id FROM assets")[0][0] is None
    # validation
    r = api(demo, key, "PUT", "/agent/assets/PC-2", json={"kind": "toaster", "billable": "yes", "serial": 5})
    assert r.status_code == 422, r.text
    f = r.json()["error"]["fields"]
    assert set(f) == {"name", "kind", "billable", "serial"}, f
    assert "workstation" in f["kind"]
    r = api(demo, key, "PUT", "/agent/assets/PC-2", data="nope")
    assert r.status_code == 400
    # delete
    r = api(demo, key, "DELETE", "/agent/assets/PC-1")
    assert r.status_code == 200 and r.json()["asset"]["archived"] is True
    r = api(demo, key, "DELETE", "/agent/assets/PC-1")
    assert r.status_code == 200
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action='asset.agent_archive'")[0][0] == 1
    r = api(demo, key, "DELETE", "/agent/assets/NOPE")
    assert r.status_code == 404
    # PUT revives
    r = api(demo, key, "PUT", "/agent/assets/PC-1", json={"name": "PC 1 renamed"})
    assert r.status_code == 200 and r.json()["asset"]["archived"] is False
    assert demo.sql("SELECT archived_at FROM assets")[0][0] is None
    # agent token cannot use staff routes
    r = api(demo, key, "GET", "/clients")
    assert r.status_code in (401, 403)
    # revoke
    tid = demo.sql("SELECT id FROM enrollment_tokens WHERE prefix=%s", (pref,))[0][0]
    r = b.post(f"/clients/{cid}/tokens/{tid}/revoke")
    assert r.status_code == 303
    r = api(demo, key, "PUT", "/agent/assets/PC-9", json={"name": "x"})
    assert r.status_code == 401
    r = b.post(f"/clients/{cid}/tokens/999/revoke")
    assert r.status_code == 404


def test_other_clients_and_archived(demo):
    b = login(demo)
    c1 = client(demo, "One")
    c2 = client(demo, "Two")
    k1 = new_token(demo, b, c1)
    k2 = new_token(demo, b, c2)
    assert api(demo, k1, "PUT", "/agent/assets/A", json={"name": "a"}).status_code == 201
    assert api(demo, k2, "PUT", "/agent/assets/A", json={"name": "a2"}).status_code == 201
    assert api(demo, k2, "DELETE", "/agent/assets/A").status_code == 200
    assert demo.sql("SELECT count(*) FROM assets WHERE archived_at IS NULL")[0][0] == 1
    demo.sql("UPDATE clients SET archived_at = now() WHERE id = %s", (c1,))
    r = b.post(f"/clients/{c1}/tokens", {"name": "late"})
    assert r.status_code == 409, r.text[:300]
    assert api(demo, k1, "PUT", "/agent/assets/A", json={"name": "a"}).status_code == 401
    # technician cannot see tokens page
    t = login(demo, "tess@demo.tallydesk.test")
    assert t.get(f"/clients/{c2}/tokens").status_code == 403


def test_bulk(demo):
    b = login(demo)
    cid = client(demo)
    key = new_token(demo, b, cid)
    items = [{"external_id": f"E{i}", "name": f"Asset {i}", "kind": "workstation" if i % 2 else "server",
              "site": f"Site {i % 3}"} for i in range(10000)]
    t0 = time.time()
    r = api(demo, key, "POST", "/agent/assets", json={"assets": items})
    t1 = time.time()
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"created": 10000, "updated": 0, "unchanged": 0, "archived": 0}
    print("10k create", t1 - t0)
    t0 = time.time()
    r = api(demo, key, "POST", "/agent/assets", json={"assets": items})
    print("10k unchanged", time.time() - t0)
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 10000, "archived": 0}
    items[5]["name"] = "changed"
    t0 = time.time()
    r = api(demo, key, "POST", "/agent/assets", json={"assets": items[:9000], "archive_missing": True})
    print("9k + archive", time.time() - t0)
    assert r.json() == {"created": 0, "updated": 1, "unchanged": 8999, "archived": 1000}, r.json()
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action='asset.agent_bulk'")[0][0] == 2
    # 100 x 100
    items2 = [{"external_id": f"F{i}", "name": f"F {i}"} for i in range(10000)]
    t0 = time.time()
    s = requests.Session()
    for j in range(100):
        r = s.post(demo.url + "/api/v1/agent/assets", json={"assets": items2[j*100:(j+1)*100]},
                   headers={"Authorization": "Bearer " + key}, timeout=60)
        assert r.status_code == 200
    print("100x100", time.time() - t0)
    assert demo.sql("SELECT count(*) FROM assets")[0][0] == 20000
    assert demo.sql("SELECT count(*) FROM sites")[0][0] == 3
    # validation: all-or-nothing
    bad = [{"external_id": "N1", "name": "ok"}, {"external_id": "N2", "kind": "nope", "name": "x"},
           {"external_id": "N1", "name": "dup"}, {"name": "noid"}, 5]
    r = api(demo, key, "POST", "/agent/assets", json={"assets": bad})
    assert r.status_code == 422
    f = r.json()["error"]["fields"]
    assert "assets[1].kind" in f and "assets[3].external_id" in f and "assets[4]" in f, f
    r = api(demo, key, "POST", "/agent/assets", json={"assets": bad[:1] + bad[2:3]})
    assert r.status_code == 422
    assert r.json()["error"]["fields"] == {"assets[1].external_id": "appears twice: also assets[0]"}
    assert demo.sql("SELECT count(*) FROM assets WHERE external_id LIKE 'N%%'")[0][0] == 0
    r = api(demo, key, "POST", "/agent/assets", json={"assets": [{"external_id": "x", "name": "y"}] * 20001})
    assert r.status_code == 422 and "assets" in r.json()["error"]["fields"]
    r = api(demo, key, "POST", "/agent/assets", json={"assets": {}})
    assert r.status_code == 422


def test_last_seen_touch_and_put_stale(demo):
    b = login(demo)
    cid = client(demo)
    key = new_token(demo, b, cid)
    items = [{"external_id": f"E{i}", "name": f"A{i}"} for i in range(5)]
    assert api(demo, key, "POST", "/agent/assets", json={"assets": items}).json()["created"] == 5
    demo.sql("UPDATE assets SET last_seen_at = now() - interval '2 hours', updated_at = now() - interval '1 day'")
    r = api(demo, key, "POST", "/agent/assets", json={"assets": items})
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 5, "archived": 0}
    assert demo.sql("SELECT count(*) FROM assets WHERE last_seen_at > now() - interval '1 minute' AND updated_at < now() - interval '1 hour'")[0][0] == 5
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action LIKE 'asset.agent%%'")[0][0] == 1
    demo.sql("UPDATE assets SET last_seen_at = now() - interval '2 hours'")
    r = api(demo, key, "PUT", "/agent/assets/E1", json={"name": "A1"})
    assert r.status_code == 200
    assert demo.sql("SELECT count(*) FROM assets WHERE last_seen_at > now() - interval '1 minute'")[0][0] == 1
    assert demo.sql("SELECT count(*) FROM audit_log WHERE action = 'asset.agent_upsert'")[0][0] == 0
    # history: one open row per asset
    assert demo.sql("SELECT count(*) FROM asset_history WHERE upper_inf(valid)")[0][0] == 5
    api(demo, key, "PUT", "/agent/assets/E1", json={"name": "A1", "billable": False})
    assert demo.sql("SELECT count(*) FROM asset_history WHERE asset_id = (SELECT id FROM assets WHERE external_id='E1')")[0][0] == 2
    # external id with spaces and unicode via percent-encoding
    r = api(demo, key, "PUT", "/agent/assets/caf%C3%A9%20one", json={"name": "x"})
    assert r.status_code == 201 and r.json()["asset"]["external_id"] == "caf\u00e9 one"
    # unicode NUL is refused
    r = requests.put(demo.url + "/api/v1/agent/assets/n", data='{"name": "a\\u0000b"}',
                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
