import re, json, subprocess, shutil
import pytest
from tdclient import Browser

PW = "correct horse battery"

@pytest.fixture
def demo(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    return app

def login(app, who="admin"):
    b = Browser(app)
    r = b.login(f"{who}@demo.tallydesk.test", PW)
    assert r.status_code == 303, r.text[:300]
    return b

def key(app, role="manager"):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}

def tidy(html):
    if not shutil.which("tidy"):
        return
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if "Error:" in l]
    assert not errors, "\n".join(errors)

def test_create_show_edit_list(demo):
    b = login(demo)
    r = b.get("/clients")
    assert r.status_code == 200, r.text[:2000]
    tidy(r.text)
    assert "No clients yet" in r.text
    r = b.get("/clients/new"); assert r.status_code == 200; tidy(r.text)
    r = b.post("/clients", {"name": "Acme Ltd", "domain": "Acme.COM", "contact_email": "it@acme.com",
                            "phone": "+44 1", "address": "1 Road\nTown", "notes": "VIP",
                            "tags": " Managed, vip ,managed,", "payment_terms_days": "14",
                            "tax_number": "GB123", "currency": "eur"})
    assert r.status_code == 303, r.text[:3000]
    loc = r.headers["Location"]; cid = int(loc.rsplit("/", 1)[1])
    r = b.get(loc); assert r.status_code == 200, r.text[:2000]; tidy(r.text)
    assert "acme.com" in r.text and "Primary" in r.text and "Acme Ltd created" in r.text
    row = demo.sql("SELECT tags, currency, payment_terms_days FROM clients WHERE id=%s", (cid,))[0]
    assert row == (["managed", "vip"], "EUR", 14)
    # duplicate name, bad domain, taken domain
    r = b.post("/clients", {"name": "acme ltd", "domain": "bad_domain", "payment_terms_days": "400", "currency": "EU"})
    assert r.status_code == 422; tidy(r.text)
    assert "another active client is called Acme Ltd" in r.text
    assert "enter a domain" in r.text and "0 to 365" in r.text
    r = b.post("/clients", {"name": "Other", "domain": "acme.com", "payment_terms_days": "30"})
    assert r.status_code == 422 and "acme.com belongs to Acme Ltd" in r.text
    r = b.get(f"/clients/{cid}/edit"); assert r.status_code == 200; tidy(r.text)
    assert 'value="managed, vip"' in r.text
    r = b.post(f"/clients/{cid}", {"name": "Acme Limited", "domain": "acme.co.uk", "contact_email": "",
               "phone": "", "address": "", "notes": "", "tags": "x", "payment_terms_days": "30",
               "tax_number": "", "currency": "", "billing_contact_id": ""})
    assert r.status_code == 303, r.text[:3000]
    doms = demo.sql("SELECT domain, is_primary FROM client_domains WHERE client_id=%s ORDER BY domain", (cid,))
    assert doms == [("acme.co.uk", True), ("acme.com", False)]
    r = b.get("/clients"); tidy(r.text); assert "Acme Limited" in r.text
    acts = demo.sql("SELECT action FROM audit_log WHERE object_type='client' ORDER BY id")
    assert [a[0] for a in acts] == ["client.create", "client.update"]
    r = b.get(f"/clients/{cid}/activity"); assert r.status_code == 200; tidy(r.text)
    assert "client.update" in r.text

def test_api(demo):
    h = key(demo)
    r = demo.post("/api/v1/clients", json={"name": "Beta", "tags": ["A", "b", "a"], "domain": "beta.io"}, headers=h)
    assert r.status_code == 201, r.text
    c = r.json()["client"]
    assert c["tags"] == ["a", "b"] and c["domain"] == "beta.io" and c["payment_terms_days"] == 30
    assert c["counts"]["open_tickets"] == 0 and c["domains"][0]["primary"] is True
    cid = c["id"]
    r = demo.post(f"/api/v1/clients/{cid}", json={"phone": "123"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["client"]["phone"] == "123" and r.json()["client"]["tags"] == ["a", "b"]
    r = demo.post("/api/v1/clients", json={"name": ""}, headers=h)
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]
    r = demo.get("/api/v1/clients", headers=h)
    assert r.status_code == 200
    j = r.json(); assert j["next"] is None and j["clients"][0]["name"] == "Beta"
    print(json.dumps(j["clients"][0]))
    r = demo.get(f"/api/v1/clients/{cid}", headers=h)
    assert r.status_code == 200; print(json.dumps(r.json()["client"]))
    r = demo.post(f"/api/v1/clients/{cid}/domains", json={"domain": "beta2.io"}, headers=h)
    assert r.status_code == 201, r.text
    r = demo.post("/api/v1/clients", json={"name": "Gamma"}, headers=h); gid = r.json()["client"]["id"]
    r = demo.post(f"/api/v1/clients/{cid}/related", json={"other_id": gid}, headers=h)
    assert r.status_code == 201, r.text
    assert demo.sql("SELECT client_a, client_b FROM client_links") == [(min(cid, gid), max(cid, gid))]
    r = demo.get(f"/api/v1/clients/{gid}", headers=h)
    assert [x["id"] for x in r.json()["client"]["related"]] == [cid]
    r = demo.post(f"/api/v1/clients/{gid}/related/{cid}/delete", json={}, headers=h)
    assert r.status_code == 200, r.text
    r = demo.get(f"/api/v1/clients/{cid}/activity", headers=h)
    assert r.status_code == 200
    acts = [e["action"] for e in r.json()["events"]]
    assert "client.link_delete" in acts and "client.link_add" in acts, acts
    r = demo.get(f"/api/v1/clients/{gid}/activity", headers=h)
    acts = [e["action"] for e in r.json()["events"]]
    assert "client.link_delete" in acts and "client.create" in acts, acts

def test_pagination_and_filters(demo):
    h = key(demo)
    for i in range(7):
        r = demo.post("/api/v1/clients", json={"name": f"C{i:02d} Co", "tags": "t%d" % (i % 2)}, headers=h)
        assert r.status_code == 201
    for sort in ("name", "created", "assets"):
        seen, after = [], None
        while True:
            q = f"/api/v1/clients?limit=3&sort={sort}" + (f"&after={after}" if after else "")
            j = demo.get(q, headers=h).json()
            seen += [c["name"] for c in j["clients"]]
            after = j["next"]
            if not after: break
        assert sorted(seen) == [f"C{i:02d} Co" for i in range(7)], (sort, seen)
        assert len(set(seen)) == 7
    j = demo.get("/api/v1/clients?tag=T1", headers=h).json()
    assert [c["name"] for c in j["clients"]] == ["C01 Co", "C03 Co", "C05 Co"]
    j = demo.get("/api/v1/clients?q=c03", headers=h).json()
    assert [c["name"] for c in j["clients"]] == ["C03 Co"]
    j = demo.get("/api/v1/clients?q=3%20c", headers=h).json()
    assert [c["name"] for c in j["clients"]] == ["C03 Co"]
    assert demo.get("/api/v1/clients?sort=bogus", headers=h).status_code == 422
    assert demo.get("/api/v1/clients?sort=assets&after=5.x", headers=h).status_code == 422
    assert demo.get("/api/v1/clients?sort=created&after=5.x", headers=h).status_code in (400, 422)
    b = login(demo)
    r = b.get("/clients?limit=3"); tidy(r.text); assert "Next page" in r.text
    nxt = re.search(r'href="([^"]+)" rel="next"', r.text).group(1).replace("&amp;", "&")
    r = b.get(nxt); assert r.status_code == 200 and "C03 Co" in r.text

def test_archive_restore_delete(demo):
    b = login(demo)
    h = key(demo)
    cid = demo.post("/api/v1/clients", json={"name": "Del"}, headers=h).json()["client"]["id"]
    tech = login(demo, "tess")
    assert tech.post(f"/clients/{cid}/archive").status_code == 403
    r = b.get(f"/clients/{cid}"); tidy(r.text); assert "Delete…" in r.text
    assert b.post(f"/clients/{cid}/archive").status_code == 303
    r = b.get(f"/clients/{cid}"); tidy(r.text); assert "Restore" in r.text
    assert b.get("/clients").text.count("Del<") == 0
    assert "Del" in b.get("/clients?status=archived").text
    demo.post("/api/v1/clients", json={"name": "del"}, headers=h)
    r = b.post(f"/clients/{cid}/restore"); assert r.status_code == 409, r.status_code
    assert "Another active client is called del" in r.text
    r = demo.post(f"/api/v1/clients/{cid}/restore", json={}, headers=h); assert r.status_code == 409
    # delete with assets refused
    demo.sql("INSERT INTO assets (tenant_id, client_id, name, kind) SELECT tenant_id, id, 'pc', 'workstation' FROM clients WHERE id=%s", (cid,))
    r = demo.post(f"/api/v1/clients/{cid}/delete", json={}, headers=h)
    assert r.status_code == 409 and "has 1 asset: archive it instead" in r.json()["error"]["message"], r.text
    # delete with tickets or contracts refused (billing and SLAs point at them)
    busy = demo.post("/api/v1/clients", json={"name": "Busy"}, headers=h).json()["client"]["id"]
    assert demo.post("/api/v1/tickets", json={"subject": "x", "client_id": busy}, headers=h).status_code == 201
    r = demo.post(f"/api/v1/clients/{busy}/delete", json={}, headers=h)
    assert r.status_code == 409 and "Busy has 1 ticket: archive it instead" in r.json()["error"]["message"], r.text
    signed = demo.post("/api/v1/clients", json={"name": "Signed"}, headers=h).json()["client"]["id"]
    r = demo.post("/api/v1/contracts", json={"client_id": signed, "name": "AYCE", "type": "all_you_can_eat",
                                             "starts_on": "2026-01-01", "flat_fee": "500.00"}, headers=h)
    assert r.status_code == 201, r.text
    r = demo.post(f"/api/v1/clients/{signed}/delete", json={}, headers=h)
    assert r.status_code == 409 and "Signed has 1 contract: archive it instead" in r.json()["error"]["message"], r.text
    other = demo.post("/api/v1/clients", json={"name": "Gone", "domain": "gone.org"}, headers=h).json()["client"]["id"]
    demo.sql("INSERT INTO contacts (tenant_id, client_id, name, email) SELECT tenant_id, id, 'Bob', 'b@gone.org' FROM clients WHERE id=%s", (other,))
    demo.sql("INSERT INTO sites (tenant_id, client_id, name) SELECT tenant_id, id, 'HQ' FROM clients WHERE id=%s", (other,))
    r = b.post(f"/clients/{other}/delete"); assert r.status_code == 303 and r.headers["Location"] == "/clients"
    assert demo.sql("SELECT count(*) FROM clients WHERE id=%s", (other,))[0][0] == 0
    assert demo.sql("SELECT count(*) FROM contacts")[0][0] == 0

def test_merge(demo):
    b = login(demo); h = key(demo)
    a = demo.post("/api/v1/clients", json={"name": "Keep Co", "domain": "keep.com"}, headers=h).json()["client"]["id"]
    o = demo.post("/api/v1/clients", json={"name": "Dup Co", "domain": "dup.com"}, headers=h).json()["client"]["id"]
    x = demo.post("/api/v1/clients", json={"name": "Third"}, headers=h).json()["client"]["id"]
    demo.post(f"/api/v1/clients/{o}/related", json={"other_id": x}, headers=h)
    demo.post(f"/api/v1/clients/{o}/related", json={"other_id": a}, headers=h)
    t = demo.sql("SELECT tenant_id FROM clients WHERE id=%s", (a,))[0][0]
    demo.sql("INSERT INTO contacts (tenant_id, client_id, name, email, is_billing) VALUES (%s,%s,'Ann','ann@x.com',true),(%s,%s,'Ann B','ANN@x.com',false),(%s,%s,'Zed','z@x.com',false)", (t,o,t,a,t,o))
    demo.sql("INSERT INTO sites (tenant_id, client_id, name) VALUES (%s,%s,'HQ'),(%s,%s,'hq'),(%s,%s,'Annex')", (t,a,t,o,t,o))
    demo.sql("INSERT INTO assets (tenant_id, client_id, name, kind, site_id, external_id) SELECT %s,%s,'pc1','workstation',id,'E1' FROM sites WHERE client_id=%s AND name='hq'", (t,o,o))
    demo.sql("INSERT INTO assets (tenant_id, client_id, name, kind, external_id) VALUES (%s,%s,'pc1-keep','workstation','E1'),(%s,%s,'srv','server',NULL)", (t,a,t,o))
    r = b.get(f"/clients/merge?id={a}&id={o}"); assert r.status_code == 200, r.text[:3000]; tidy(r.text)
    assert "ann@x.com" in r.text.lower() and "RMM asset E1" in r.text
    r = b.get(f"/clients/merge?a={a}&b={a}"); assert r.status_code == 409
    r = b.get("/clients/merge"); assert r.status_code == 422; tidy(r.text)
    tech = login(demo, "tess"); assert tech.get(f"/clients/merge?a={a}&b={o}").status_code == 403
    r = b.post("/clients/merge", {"keep": str(a), "a": str(a), "b": str(o)})
    assert r.status_code == 303, r.text[:3000]
    r2 = b.get(r.headers["Location"]); tidy(r2.text)
    print(re.search(r'class="flash[^"]*">([^<]*)', r2.text).group(1))
    assert demo.sql("SELECT merged_into, archived_at IS NOT NULL FROM clients WHERE id=%s", (o,))[0] == (a, True)
    assert demo.sql("SELECT name, is_billing FROM contacts WHERE client_id=%s ORDER BY name", (a,)) == [("Ann B", True), ("Zed", False)]
    assert demo.sql("SELECT count(*) FROM contacts WHERE client_id=%s", (o,))[0][0] == 0
    assert sorted(demo.sql("SELECT name FROM sites WHERE client_id=%s", (a,))) == [("Annex",), ("HQ",)]
    assert demo.sql("SELECT count(*) FROM assets WHERE client_id=%s", (a,))[0][0] == 3
    assert demo.sql("SELECT archived_at IS NOT NULL, external_id FROM assets WHERE name='pc1'")[0] == (True, None)
    assert demo.sql("SELECT s.name FROM assets a JOIN sites s ON s.id=a.site_id WHERE a.name='pc1'")[0][0] == "HQ"
    assert demo.sql("SELECT domain, is_primary FROM client_domains WHERE client_id=%s ORDER BY domain", (a,)) == [("dup.com", False), ("keep.com", True)]
    assert demo.sql("SELECT client_a, client_b FROM client_links") == [(min(a, x), max(a, x))]
    hist = demo.sql("SELECT h.client_id FROM asset_history h JOIN assets a ON a.id=h.asset_id WHERE a.name='srv' ORDER BY h.id")
    assert [r[0] for r in hist] == [o, a]
    after = demo.sql("SELECT after FROM audit_log WHERE action='client.merge'")[0][0]
    print(json.dumps(after))
    assert after["moved"]["assets"] == 2 and len(after["conflicts"]) == 4
    r = b.get(f"/clients/{o}"); tidy(r.text); assert "merged into" in r.text
    r = b.post("/clients/merge", {"keep": str(a), "other": str(o)}); assert r.status_code == 409
    r = b.get(f"/clients/{o}/activity"); assert "client.merge" in r.text
    j = demo.get(f"/api/v1/clients/merge?a={a}&b={x}", headers=h).json()
    assert j["a"]["id"] == a and j["conflict_count"] == 0

def test_other_tenant(demo):
    h = key(demo)
    cid = demo.post("/api/v1/clients", json={"name": "Mine"}, headers=h).json()["client"]["id"]
    demo.run("tenant", "create", "--slug", "rival", "--name", "Rival IT")
    r = demo.run("apikey", "create", "--tenant", "rival", "--name", "x", "--role", "admin")
    rh = {"Authorization": "Bearer " + r.stdout.strip()}
    assert demo.get(f"/api/v1/clients/{cid}", headers=rh).status_code == 404
    assert demo.post(f"/api/v1/clients/{cid}", json={"name": "x"}, headers=rh).status_code == 404
    assert demo.post(f"/api/v1/clients/{cid}/delete", json={}, headers=rh).status_code == 404
    assert demo.get("/api/v1/clients", headers=rh).json()["clients"] == []
    rid = demo.post("/api/v1/clients", json={"name": "Theirs", "domain": "x.org"}, headers=rh).json()["client"]["id"]
    r = demo.post(f"/api/v1/clients/{cid}/related", json={"other_id": rid}, headers=h)
    assert r.status_code == 422
    r = demo.post("/api/v1/clients/merge", json={"keep": cid, "other": rid}, headers=h)
    assert r.status_code == 404
    # a domain in another tenant does not clash
    assert demo.post("/api/v1/clients", json={"name": "X", "domain": "x.org"}, headers=h).status_code == 201

def test_html_error_paths(demo):
    b = login(demo); h = key(demo)
    a = demo.post("/api/v1/clients", json={"name": "A1", "domain": "a1.com", "tags": "x, y"}, headers=h).json()["client"]
    assert a["tags"] == ["x", "y"]
    a = a["id"]
    o = demo.post("/api/v1/clients", json={"name": "O1", "domain": "o1.com"}, headers=h).json()["client"]["id"]
    b.get(f"/clients/{a}")
    r = b.post(f"/clients/{a}/domains", {"domain": "o1.com"}); assert r.status_code == 422; tidy(r.text)
    assert "o1.com belongs to O1 already" in r.text and 'value="o1.com"' in r.text
    r = b.post(f"/clients/{a}/related", {"other_id": str(a)}); assert r.status_code == 422; tidy(r.text)
    r = b.post(f"/clients/{a}/domains", {"domain": "extra.org", "primary": "1"}); assert r.status_code == 303
    assert demo.sql("SELECT domain FROM client_domains WHERE client_id=%s AND is_primary", (a,)) == [("extra.org",)]
    did = demo.sql("SELECT id FROM client_domains WHERE domain='a1.com'")[0][0]
    r = b.post(f"/clients/{a}/domains/{did}/delete"); assert r.status_code == 303
    r = b.post(f"/clients/{o}/domains/{did}/delete"); assert r.status_code == 404
    demo.sql("INSERT INTO assets (tenant_id, client_id, name, kind) SELECT tenant_id, id, 'pc', 'workstation' FROM clients WHERE id=%s", (a,))
    r = b.post(f"/clients/{a}/delete"); assert r.status_code == 409; tidy(r.text)
    assert "A1 has 1 asset: archive it instead" in r.text
    r = b.post(f"/clients/{a}", {"name": "", "payment_terms_days": "x", "tags": ",".join(f"t{i}" for i in range(25))})
    assert r.status_code == 422; tidy(r.text)
    assert "use at most 20 tags" in r.text
    b.post("/clients/merge", {"keep": str(a), "a": str(a), "b": str(o)})
    assert b.get(f"/clients/{o}/edit").status_code == 409
    assert demo.post(f"/api/v1/clients/{o}", json={"name": "zz"}, headers=h).status_code == 409
    r = b.get(f"/clients/merge?a={a}&b={o}"); assert r.status_code == 409; tidy(r.text)
    assert "merged into" in r.text
    r = b.get(f"/clients/{a}/activity?after=abc"); assert r.status_code == 422; tidy(r.text)
    r = demo.get(f"/api/v1/clients/{a}/activity?limit=2", headers=h).json()
    assert len(r["events"]) == 2 and r["next"]
    r2 = demo.get(f"/api/v1/clients/{a}/activity?limit=2&after={r['next']}", headers=h).json()
    assert r2["events"][0]["id"] < r["events"][1]["id"] + 0 or r2["events"][0]["id"] < r["events"][-1]["id"]
