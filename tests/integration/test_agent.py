"""The RMM-facing API: enrollment tokens scoped to one client, upserts by
external id, bulk syncs, archive, revocation."""
import re

import requests

from tdclient import Browser

PW = "correct horse battery"


def signed_in_with_clients(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = Browser(app)
    assert b.login("morgan@demo.tallydesk.test", PW).status_code == 303
    b.get("/clients/new")
    for name in ("Acme Ltd", "Globex"):
        r = b.post("/clients", {"name": name})
        assert r.status_code == 303, r.text[:500]
    ids = dict(app.sql("SELECT name, id FROM clients"))
    return b, ids["Acme Ltd"], ids["Globex"]


def enroll(app, b, client_id, name="RMM"):
    b.get(f"/clients/{client_id}/tokens")
    r = b.post(f"/clients/{client_id}/tokens", {"name": name})
    assert r.status_code == 201, r.text[:500]
    token = re.search(r"tde_\d+_[A-Za-z0-9_-]{43}", r.text).group(0)
    assert token not in b.get(f"/clients/{client_id}/tokens").text  # shown once
    return {"Authorization": f"Bearer {token}"}


def test_an_agent_upserts_and_archives_its_clients_assets(app):
    b, acme, globex = signed_in_with_clients(app)
    h = enroll(app, b, acme)
    url = app.url + "/api/v1/agent/assets/"
    r = requests.put(url + "dev-42", headers=h, json={"name": "FRONTDESK-PC", "kind": "workstation",
                                                       "category": "managed", "serial": "SN1"})
    assert r.status_code == 201, r.text
    asset = r.json()["asset"]
    assert asset["name"] == "FRONTDESK-PC" and asset["external_id"] == "dev-42"
    r = requests.put(url + "dev-42", headers=h, json={"name": "FRONTDESK-PC", "kind": "server",
                                                       "category": "managed"})
    assert r.status_code == 200 and r.json()["asset"]["id"] == asset["id"]
    assert app.sql("SELECT client_id, kind FROM assets WHERE id = %s", (asset["id"],))[0] == (acme, "server")
    kinds = [k for (k,) in app.sql("SELECT kind FROM asset_history WHERE asset_id = %s ORDER BY id", (asset["id"],))]
    assert kinds == ["workstation", "server"]
    r = requests.delete(url + "dev-42", headers=h)
    assert r.status_code == 200
    assert app.sql("SELECT archived_at IS NOT NULL FROM assets WHERE id = %s", (asset["id"],))[0][0]
    assert requests.delete(url + "no-such", headers=h).status_code == 404
    r = requests.put(url + "dev-43", headers=h, json={"kind": "toaster"})
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) >= {"name", "kind"}


def test_a_token_reaches_only_its_own_client(app):
    b, acme, globex = signed_in_with_clients(app)
    h = enroll(app, b, acme)
    app.sql("SELECT 1")
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    app.sql("INSERT INTO assets (tenant_id, client_id, name, kind, external_id) VALUES (%s, %s, 'GLOBEX-SRV', 'server', 'shared-1')",
            (tid, globex))
    r = requests.put(app.url + "/api/v1/agent/assets/shared-1", headers=h, json={"name": "MINE", "kind": "server"})
    assert r.status_code == 201  # a new asset at Acme, not Globex's
    assert app.sql("SELECT name FROM assets WHERE client_id = %s AND external_id = 'shared-1'", (globex,))[0][0] == "GLOBEX-SRV"
    assert requests.delete(app.url + "/api/v1/agent/assets/shared-1", headers=h).status_code == 200
    assert app.sql("SELECT archived_at IS NULL FROM assets WHERE client_id = %s", (globex,))[0][0]
    # Staff pages and APIs are closed to agent tokens.
    for path in ("/api/v1/clients", f"/api/v1/clients/{globex}", f"/api/v1/clients/{acme}/assets", "/api/v1/me"):
        assert requests.get(app.url + path, headers=h).status_code == 403, path


def test_a_revoked_token_is_refused(app):
    b, acme, _ = signed_in_with_clients(app)
    h = enroll(app, b, acme)
    tok = app.sql("SELECT id FROM enrollment_tokens")[0][0]
    b.get(f"/clients/{acme}/tokens")
    assert b.post(f"/clients/{acme}/tokens/{tok}/revoke").status_code == 303
    r = requests.put(app.url + "/api/v1/agent/assets/x", headers=h, json={"name": "X", "kind": "server"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_bulk_sync_creates_updates_and_archives_in_one_request(app):
    b, acme, _ = signed_in_with_clients(app)
    h = enroll(app, b, acme)
    url = app.url + "/api/v1/agent/assets"
    items = [{"external_id": f"rmm-{i}", "name": f"HOST-{i}", "kind": "workstation"} for i in range(1500)]
    r = requests.post(url, headers=h, json={"assets": items}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["created"] == 1500
    again = requests.post(url, headers=h, json={"assets": items}, timeout=60).json()
    assert again["created"] == 0 and again["unchanged"] == 1500
    items[0]["kind"] = "server"
    full = requests.post(url, headers=h, json={"assets": items[:1000], "archive_missing": True}, timeout=60).json()
    assert full["updated"] == 1 and full["archived"] == 500
    assert app.sql("SELECT count(*) FROM assets WHERE archived_at IS NULL")[0][0] == 1000


def test_a_bad_bulk_request_writes_nothing(app):
    b, acme, _ = signed_in_with_clients(app)
    h = enroll(app, b, acme)
    url = app.url + "/api/v1/agent/assets"
    items = [{"external_id": f"x-{i}", "name": f"H{i}", "kind": "workstation"} for i in range(10)]
    items[3]["kind"] = "toaster"
    r = requests.post(url, headers=h, json={"assets": items})
    assert r.status_code == 422
    assert any("assets[3]" in f for f in r.json()["error"]["fields"])
    dup = [{"external_id": "same", "name": "A", "kind": "server"}, {"external_id": "same", "name": "B", "kind": "server"}]
    assert requests.post(url, headers=h, json={"assets": dup}).status_code == 422
    assert app.sql("SELECT count(*) FROM assets")[0][0] == 0
