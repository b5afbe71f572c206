import subprocess
from clientdata import *


def check(html, name):
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    lines = [l for l in r.stderr.splitlines()]
    return [f"{name}: {l}" for l in lines]


def test_html(app):
    tid = seed(app)
    b = login(app)
    c = client(app, tid, "Acme & <Co>")
    arch = client(app, tid, "Old", archived=True)
    s = app.sql("INSERT INTO sites (tenant_id, client_id, name, address) VALUES (%s, %s, 'HQ', 'Road 1') RETURNING id", (tid, c))[0][0]
    b.post(f"/clients/{c}/contacts", {"name": "Sam", "email": "s@x.test", "is_billing": "1", "is_portal": "1"})
    b.post(f"/clients/{c}/contacts", {"name": "Nob"})
    b.post(f"/clients/{c}/assets", {"name": "pc1", "kind": "workstation", "site_id": str(s), "category": "Laptop", "billable": "1"})
    b.post(f"/clients/{c}/assets", {"name": "pc2", "kind": "server"})
    aid = app.sql("SELECT id FROM assets WHERE name = 'pc1'")[0][0]
    b.post(f"/assets/{aid}", {"name": "pc1", "kind": "workstation", "category": "Desktop", "client_id": str(c), "site_id": str(s)})
    cid = app.sql("SELECT id FROM contacts WHERE name = 'Sam'")[0][0]
    pages = {
        "contacts": b.get(f"/clients/{c}/contacts").text,
        "contacts_err": b.post(f"/clients/{c}/contacts", {"name": "", "email": "bad"}).text,
        "contacts_arch": b.get(f"/clients/{arch}/contacts").text,
        "contact_edit": b.get(f"/contacts/{cid}/edit").text,
        "contact_edit_err": b.post(f"/contacts/{cid}", {"name": ""}).text,
        "sites": b.get(f"/clients/{c}/sites").text,
        "sites_err": b.post(f"/sites/{s}", {"name": ""}).text,
        "sites_409": b.post(f"/sites/{s}/delete").text,
        "assets": b.get(f"/clients/{c}/assets?limit=1").text,
        "assets_err": b.post(f"/clients/{c}/assets", {"name": ""}).text,
        "asset": b.get(f"/assets/{aid}").text,
        "asset_err": b.post(f"/assets/{aid}", {"name": "", "client_id": str(c)}).text,
        "counts": b.get(f"/clients/{c}/asset-counts").text,
        "counts_long": b.get(f"/clients/{c}/asset-counts?from=2024-01-01&to=2025-01-31").text,
        "counts_err": b.get(f"/clients/{c}/asset-counts?from=x").text,
        "kinds": b.get("/settings/asset-kinds").text,
        "kinds_err": b.post("/settings/asset-kinds", {"key": "x y"}).text,
    }
    problems = []
    for k, v in pages.items():
        assert "<h1" in v, k
        problems += [p for p in check(v, k) if "Error" in p or ("focusable" not in p and "aria-current" not in p)]
    assert not problems, "\n".join(problems)
