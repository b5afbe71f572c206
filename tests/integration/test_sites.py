from clientdata import *


def test_sites_flow(app):
    tid = seed(app)
    b = login(app)
    c = client(app, tid, "Acme")
    c2 = client(app, tid, "Beta")
    r = b.post(f"/clients/{c}/sites", {"name": "Head office", "address": "1 High St"})
    assert r.status_code == 303 and r.headers["Location"] == f"/clients/{c}/sites"
    r = b.post(f"/clients/{c}/sites", {"name": "head OFFICE"})
    assert r.status_code == 422 and "this client has a site with this name" in r.text and 'value="head OFFICE"' in r.text
    # same name at another client is fine
    assert b.post(f"/clients/{c2}/sites", {"name": "Head office"}).status_code == 303
    r = b.post(f"/clients/{c}/sites", {"name": "Warehouse"})
    s1 = app.sql("SELECT id FROM sites WHERE client_id = %s AND name = 'Head office'", (c,))[0][0]
    s2 = app.sql("SELECT id FROM sites WHERE name = 'Warehouse'")[0][0]
    # rename conflict shows on the row
    r = b.post(f"/sites/{s2}", {"name": "Head Office", "address": "x"})
    assert r.status_code == 422 and "this client has a site with this name" in r.text
    assert 'value="Head Office"' in r.text and "<details class=\"confirm site-edit\" open>" in r.text
    r = b.post(f"/sites/{s2}", {"name": "Depot", "address": "Dock road"})
    assert r.status_code == 303
    assert app.sql("SELECT name, address FROM sites WHERE id = %s", (s2,))[0] == ("Depot", "Dock road")
    # asset counts and delete refusal
    a1 = app.sql("INSERT INTO assets (tenant_id, client_id, site_id, name, kind) VALUES (%s, %s, %s, 'PC1', 'workstation') RETURNING id", (tid, c, s1))[0][0]
    a2 = app.sql("INSERT INTO assets (tenant_id, client_id, site_id, name, kind, archived_at) VALUES (%s, %s, %s, 'PC2', 'workstation', now()) RETURNING id", (tid, c, s1))[0][0]
    r = b.get(f"/clients/{c}/sites")
    assert r.status_code == 200
    r = app.get(f"/api/v1/clients/{c}/sites", headers=apikey(app))
    sites = {s["name"]: s for s in r.json()["sites"]}
    assert sites["Head office"]["active_assets"] == 1 and sites["Head office"]["all_assets"] == 2
    r = b.post(f"/sites/{s1}/delete")
    assert r.status_code == 409 and "still has 1 active asset" in r.text
    app.sql("UPDATE assets SET archived_at = now() WHERE id = %s", (a1,))
    r = b.post(f"/sites/{s1}/delete")
    assert r.status_code == 303
    assert app.sql("SELECT count(*) FROM sites WHERE id = %s", (s1,))[0][0] == 0
    assert app.sql("SELECT site_id FROM assets WHERE id = %s", (a2,))[0][0] is None
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'site' ORDER BY id")]
    assert acts == ["site.create", "site.create", "site.create", "site.update", "site.delete"], acts


def test_sites_json(app):
    tid = seed(app)
    h = apikey(app, "technician")
    c = client(app, tid, "Acme")
    r = app.post(f"/api/v1/clients/{c}/sites", json={"name": "HQ"}, headers=h)
    assert r.status_code == 201 and r.json()["site"]["name"] == "HQ"
    sid = r.json()["site"]["id"]
    r = app.post(f"/api/v1/sites/{sid}", json={"address": "Road 1"}, headers=h)
    assert r.status_code == 200 and r.json()["site"] == {"id": sid, "client_id": c, "name": "HQ", "address": "Road 1"}
    r = app.post(f"/api/v1/sites/{sid}", json={"name": ""}, headers=h)
    assert r.status_code == 422
    rt = other_tenant(app)
    oc = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Theirs') RETURNING id", (rt,))[0][0]
    os_ = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'S') RETURNING id", (rt, oc))[0][0]
    assert app.post(f"/api/v1/sites/{os_}", json={"name": "X"}, headers=h).status_code == 404
    assert app.post(f"/api/v1/sites/{os_}/delete", headers=h).status_code == 404
    assert app.get(f"/api/v1/clients/{oc}/sites", headers=h).status_code == 404
    r = app.post(f"/api/v1/sites/{sid}/delete", headers=h)
    assert r.status_code == 200 and r.json()["deleted"]["name"] == "HQ"
