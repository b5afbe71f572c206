import re
from clientdata import *


def asset(app, tid, c, name, kind="workstation", **kw):
    cols = ["tenant_id", "client_id", "name", "kind"] + list(kw)
    vals = [tid, c, name, kind] + list(kw.values())
    q = f"INSERT INTO assets ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))}) RETURNING id"
    return app.sql(q, vals)[0][0]


def test_list_filters_and_pages(app):
    tid = seed(app)
    b = login(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    s = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'HQ') RETURNING id", (tid, c))[0][0]
    ids = {}
    for i in range(7):
        ids[i] = asset(app, tid, c, f"pc-{i:02d}", category="Laptop" if i % 2 else "Desktop",
                       serial=f"SN_{i}%", site_id=s if i < 3 else None)
    ids["srv"] = asset(app, tid, c, "Server A", kind="server")
    ids["old"] = asset(app, tid, c, "Old box", archived_at="2024-01-01")
    r = app.get(f"/api/v1/clients/{c}/assets", headers=h)
    j = r.json()
    assert [a["name"] for a in j["assets"]] == [f"pc-{i:02d}" for i in range(7)] + ["Server A"]
    r = app.get(f"/api/v1/clients/{c}/assets?status=archived", headers=h)
    assert [a["name"] for a in r.json()["assets"]] == ["Old box"]
    assert r.json()["assets"][0]["archived"] is True
    r = app.get(f"/api/v1/clients/{c}/assets?status=all&kind=server", headers=h)
    assert [a["name"] for a in r.json()["assets"]] == ["Server A"]
    assert r.json()["assets"][0]["kind_label"] == "Server"
    r = app.get(f"/api/v1/clients/{c}/assets?category=Laptop", headers=h)
    assert [a["name"] for a in r.json()["assets"]] == ["pc-01", "pc-03", "pc-05"]
    r = app.get(f"/api/v1/clients/{c}/assets?site_id={s}", headers=h)
    assert [a["name"] for a in r.json()["assets"]] == ["pc-00", "pc-01", "pc-02"]
    r = app.get(f"/api/v1/clients/{c}/assets?site_id=none", headers=h)
    assert len(r.json()["assets"]) == 5
    # q escapes LIKE wildcards: "_" and "%" are literal
    r = app.get(f"/api/v1/clients/{c}/assets?q=sn_3%25", headers=h)
    assert [a["name"] for a in r.json()["assets"]] == ["pc-03"]
    r = app.get(f"/api/v1/clients/{c}/assets?q=%25", headers=h)
    assert len(r.json()["assets"]) == 7
    r = app.get(f"/api/v1/clients/{c}/assets?q=C-0", headers=h)
    assert len(r.json()["assets"]) == 7
    # pages of 3
    seen, url = [], f"/api/v1/clients/{c}/assets?limit=3"
    while url:
        r = app.get(url, headers=h)
        assert r.status_code == 200, r.text
        seen += [a["name"] for a in r.json()["assets"]]
        url = r.json().get("next_url")
    assert seen == [f"pc-{i:02d}" for i in range(7)] + ["Server A"]
    # bad filters
    for q in ("status=gone", "kind=BAD!", "site_id=x", "after=zz"):
        assert app.get(f"/api/v1/clients/{c}/assets?{q}", headers=h).status_code == 422, q
    r = b.get(f"/clients/{c}/assets?limit=3")
    assert r.status_code == 200 and "Next →" in r.text and "pc-02" in r.text and "pc-03" not in r.text
    nxt = re.search(r'href="([^"]*after=[^"]*)"', r.text).group(1).replace("&amp;", "&")
    r = b.get(nxt)
    assert "pc-03" in r.text and "pc-02" not in r.text.split("<tbody>")[1].split("</tbody>")[0]
    r = b.get(f"/clients/{c}/assets?status=zzz")
    assert r.status_code == 422


def test_create_show_update(app):
    tid = seed(app)
    b = login(app)
    c = client(app, tid, "Acme")
    c2 = client(app, tid, "Beta")
    arch = client(app, tid, "Gone", archived=True)
    s = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'HQ') RETURNING id", (tid, c))[0][0]
    s2 = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'B-HQ') RETURNING id", (tid, c2))[0][0]
    r = b.get(f"/clients/{c}/assets")
    assert 'name="billable" value="1" checked' in r.text
    r = b.post(f"/clients/{c}/assets", {"name": "", "kind": "toaster", "site_id": str(s2), "category": "x" * 101, "billable": "1"})
    assert r.status_code == 422
    for m in ("enter a name", "choose a kind from the list", "choose one of this client", "at most 100"):
        assert m in r.text, m
    r = b.post(f"/clients/{c}/assets", {"name": "Laptop 1", "kind": "workstation", "site_id": str(s),
                                       "category": "Laptop", "serial": "S1", "os": "Windows 11", "billable": "1"})
    assert r.status_code == 303, r.text[:1000]
    aid = app.sql("SELECT id FROM assets WHERE name = 'Laptop 1'")[0][0]
    assert app.sql("SELECT count(*), bool_and(counts) FROM asset_history WHERE asset_id = %s", (aid,))[0] == (1, True)
    assert app.sql("SELECT after->>'client_id' FROM audit_log WHERE action = 'asset.create'")[0][0] == str(c)
    r = b.get(f"/assets/{aid}")
    assert r.status_code == 200 and "Laptop 1" in r.text and "<strong>now</strong>" in r.text
    assert f'<option value="{s}" selected>HQ</option>' in r.text
    # change category and unbill: one more history row
    r = b.post(f"/assets/{aid}", {"name": "Laptop 1", "kind": "workstation", "site_id": str(s), "category": "Desktop",
                                  "serial": "S1", "os": "Windows 11", "client_id": str(c)})
    assert r.status_code == 303 and r.headers["Location"] == f"/assets/{aid}"
    hist = app.sql("SELECT category, counts, upper_inf(valid) FROM asset_history WHERE asset_id = %s ORDER BY lower(valid)", (aid,))
    assert hist == [("Laptop", True, False), ("Desktop", False, True)]
    # name-only change writes no history
    r = b.post(f"/assets/{aid}", {"name": "Laptop one", "kind": "workstation", "site_id": str(s), "category": "Desktop",
                                  "client_id": str(c)})
    assert r.status_code == 303
    assert app.sql("SELECT count(*) FROM asset_history WHERE asset_id = %s", (aid,))[0][0] == 2
    # a site of another client is refused; form keeps choices
    r = b.post(f"/assets/{aid}", {"name": "Laptop one", "kind": "server", "site_id": str(s2), "client_id": str(c), "billable": "1"})
    assert r.status_code == 422 and "choose one of this client" in r.text
    assert '<option value="server" selected>' in r.text and 'name="billable" value="1" checked' in r.text
    # moving to an archived client is refused
    r = b.post(f"/assets/{aid}", {"name": "Laptop one", "kind": "workstation", "client_id": str(arch)})
    assert r.status_code == 422 and "archived" in r.text
    # moving to another client clears the site
    r = b.post(f"/assets/{aid}", {"name": "Laptop one", "kind": "workstation", "site_id": str(s), "client_id": str(c2),
                                  "billable": "1", "category": "Desktop"})
    assert r.status_code == 303
    assert app.sql("SELECT client_id, site_id FROM assets WHERE id = %s", (aid,))[0] == (c2, None)
    hist = app.sql("SELECT client_id, counts FROM asset_history WHERE asset_id = %s ORDER BY lower(valid)", (aid,))
    assert hist[-1] == (c2, True) and len(hist) == 3
    r = b.get(f"/assets/{aid}")
    assert "Beta" in r.text and "Acme" in r.text
    # archive
    r = b.post(f"/assets/{aid}", {"name": "Laptop one", "kind": "workstation", "client_id": str(c2), "billable": "1",
                                  "category": "Desktop", "archived": "1"})
    assert r.status_code == 303
    assert app.sql("SELECT archived_at IS NOT NULL FROM assets WHERE id = %s", (aid,))[0][0]
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'asset' ORDER BY id")]
    assert acts == ["asset.create"] + ["asset.update"] * 4
    bef, aft = app.sql("SELECT before, after FROM audit_log WHERE action = 'asset.update' ORDER BY id LIMIT 1")[0]
    assert bef["category"] == "Laptop" and aft["category"] == "Desktop" and bef["billable"] and not aft["billable"]
    # archived client: no add
    r = b.post(f"/clients/{arch}/assets", {"name": "X", "kind": "server"})
    assert r.status_code == 409


def test_assets_json(app):
    tid = seed(app)
    h = apikey(app, "technician")
    c = client(app, tid, "Acme")
    r = app.post(f"/api/v1/clients/{c}/assets", json={"name": "M365 jo", "kind": "m365_user", "category": "E3"}, headers=h)
    assert r.status_code == 201, r.text
    a = r.json()["asset"]
    assert a["billable"] is True and a["kind_label"] == "Microsoft 365 user" and a["site_id"] is None and a["archived"] is False
    r = app.post(f"/api/v1/assets/{a['id']}", json={"category": "E5"}, headers=h)
    assert r.status_code == 200, r.text
    a2 = r.json()["asset"]
    assert a2["category"] == "E5" and a2["name"] == "M365 jo" and a2["billable"] is True
    r = app.get(f"/api/v1/assets/{a['id']}", headers=h)
    j = r.json()
    assert [x["category"] for x in j["history"]] == ["E5", "E3"] and j["history"][0]["to"] is None
    assert j["history"][1]["to"] is not None and j["history"][0]["counts"] is True
    r = app.post(f"/api/v1/assets/{a['id']}", json={"kind": "nope"}, headers=h)
    assert r.status_code == 422 and "kind" in r.json()["error"]["fields"]
    rt = other_tenant(app)
    oc = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Theirs') RETURNING id", (rt,))[0][0]
    oa = asset(app, rt, oc, "theirs")
    assert app.get(f"/api/v1/assets/{oa}", headers=h).status_code == 404
    assert app.post(f"/api/v1/assets/{oa}", json={"name": "x"}, headers=h).status_code == 404
    assert app.post(f"/api/v1/assets/{a['id']}", json={"client_id": oc}, headers=h).status_code == 422
    assert app.get(f"/api/v1/clients/{oc}/assets", headers=h).status_code == 404
    assert app.get(f"/api/v1/clients/{oc}/asset-counts", headers=h).status_code == 404
    assert app.post("/api/v1/assets/move", json={"client_id": oc, "ids": [oa]}, headers=h).status_code == 404


def test_move(app):
    tid = seed(app)
    b = login(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    c2 = client(app, tid, "Beta")
    s = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'HQ') RETURNING id", (tid, c))[0][0]
    s2 = app.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s, %s, 'B') RETURNING id", (tid, c2))[0][0]
    a1, a2, a3 = (asset(app, tid, c, n) for n in ("a1", "a2", "a3"))
    b1 = asset(app, tid, c2, "b1")
    b.get(f"/clients/{c}/assets")
    r = b.s.post(app.url + "/assets/move", data=[("csrf", b.csrf), ("client_id", str(c)), ("site_id", str(s)),
                                                 ("id", str(a1)), ("id", str(a2)), ("id", str(a2))], allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/clients/{c}/assets"
    assert app.sql("SELECT id FROM assets WHERE site_id = %s ORDER BY id", (s,)) == [(a1,), (a2,)]
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'asset.move'")[0][0] == 2
    r = b.get(f"/clients/{c}/assets")
    assert "Moved 2 assets to HQ." in r.text
    # one asset of another client: nothing moves, 404
    r = b.s.post(app.url + "/assets/move", data=[("csrf", b.csrf), ("client_id", str(c)), ("site_id", ""),
                                                 ("id", str(a1)), ("id", str(b1))], allow_redirects=False)
    assert r.status_code == 404
    assert app.sql("SELECT site_id FROM assets WHERE id = %s", (a1,))[0][0] == s
    # site of another client: 422
    r = b.s.post(app.url + "/assets/move", data=[("csrf", b.csrf), ("client_id", str(c)), ("site_id", str(s2)),
                                                 ("id", str(a1))], allow_redirects=False)
    assert r.status_code == 422 and "choose one of this client" in r.text
    r = b.s.post(app.url + "/assets/move", data=[("csrf", b.csrf), ("client_id", str(c)), ("site_id", str(s))],
                 allow_redirects=False)
    assert r.status_code == 422 and "Choose at least one asset" in r.text
    # JSON: back to no site
    r = app.post("/api/v1/assets/move", json={"client_id": c, "site_id": "", "ids": [a1, str(a2), a3]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] == [a1, a2, a3] and r.json()["site"] is None
    assert app.sql("SELECT count(*) FROM assets WHERE site_id IS NOT NULL AND client_id = %s", (c,))[0][0] == 0
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'asset.move'")[0][0] == 4
    assert app.post("/api/v1/assets/move", json={"client_id": c, "ids": [0]}, headers=h).status_code == 422
    assert app.post("/api/v1/assets/move", json={"client_id": "x", "ids": [a1]}, headers=h).status_code == 400
    assert app.sql("SELECT count(*) FROM asset_history WHERE asset_id = %s", (a1,))[0][0] == 1


def test_kinds(app):
    tid = seed(app)
    b = login(app)
    r = b.get("/settings/asset-kinds")
    assert r.status_code == 200 and "Microsoft 365 user" in r.text and 'aria-current="page">Asset kinds' in r.text
    r = b.post("/settings/asset-kinds", {"key": "server", "name": "Srv"})
    assert r.status_code == 422 and "there is a kind with this key already" in r.text
    r = b.post("/settings/asset-kinds", {"key": "Bad Key", "name": "domain"})
    assert r.status_code == 422 and "lowercase" in r.text and "with this name already" in r.text
    r = b.post("/settings/asset-kinds", {"key": "printer", "name": "Printer"})
    assert r.status_code == 303
    r = b.get("/settings/asset-kinds")
    assert "Printer" in r.text and "Yours" in r.text
    assert app.sql("SELECT after FROM audit_log WHERE action = 'asset_kind.create'")[0][0] == {"key": "printer", "name": "Printer"}
    c = client(app, tid, "Acme")
    r = b.post(f"/clients/{c}/assets", {"name": "P1", "kind": "printer", "billable": "1"})
    assert r.status_code == 303
    r = b.get(f"/clients/{c}/assets")
    assert "<td>Printer</td>" in r.text
    t = login(app, "tess@demo.tallydesk.test")
    assert t.get("/settings/asset-kinds").status_code == 403
    h = apikey(app)
    r = app.post("/api/v1/settings/asset-kinds", json={"key": "ups", "name": "UPS"}, headers=h)
    assert r.status_code == 201 and r.json()["kind"] == {"key": "ups", "name": "UPS"}
    r = app.get("/api/v1/settings/asset-kinds", headers=h)
    ks = {k["key"]: k for k in r.json()["kinds"]}
    assert ks["printer"]["assets"] == 1 and ks["ups"]["builtin"] is False and ks["workstation"]["builtin"] is True
