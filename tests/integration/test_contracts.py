"""Contracts: every shape's stored fields and defaults, overlap, end vs
void and roles, the SLA tier of new tickets, live line quantities, block
status from committed time, the block usage report, and valid pages."""
import datetime
import subprocess

from clientdata import *

TODAY = datetime.date.today()


def d(days=0):
    return (TODAY + datetime.timedelta(days=days)).isoformat()


def tier(app, tid, name):
    return app.sql("SELECT id FROM sla_tiers WHERE tenant_id = %s AND name = %s", (tid, name))[0][0]


def fallback(app, tid):
    return app.sql("SELECT id FROM sla_tiers WHERE tenant_id = %s AND is_fallback", (tid,))[0][0]


def create(app, h, **fields):
    r = app.post("/api/v1/contracts", json=fields, headers=h)
    return r


# Fields every answer carries, and the defaults a minimal contract gets.
DEFAULTS = {
    "ends_on": None, "rolling": True, "sla_tier_id": None,
    "billing_frequency": "monthly", "billing_day": 1, "hourly_rate": None,
    "project_rate": None, "overage_rate": None, "flat_fee": "0.00",
    "has_block": False, "block_minutes": None, "block_hours": None,
    "block_fee": None, "block_rollover": False, "rollover_cap_minutes": None,
    "rollover_cap_hours": None, "notes": "", "state": "active",
    "status": "active", "void_reason": None, "voided_at": None,
    "time_default": "billable", "currency": "GBP",
}


def stored(app, cid):
    cols = ("name, type, starts_on::text, ends_on::text, sla_tier_id, billing_frequency,"
            " billing_day, hourly_rate::text, project_rate::text, overage_rate::text,"
            " flat_fee::text, block_minutes, block_fee::text, block_rollover,"
            " rollover_cap_minutes, notes, state")
    row = app.sql(f"SELECT {cols} FROM contracts WHERE id = %s", (cid,))[0]
    return dict(zip([c.strip().split("::")[0] for c in cols.split(",")], row))


def test_every_shape_round_trips_with_its_defaults(app):
    tid = seed(app)
    h = apikey(app, "manager")
    gold, silver = tier(app, tid, "Gold"), tier(app, tid, "Silver")
    shapes = [
        ("per_asset", {"name": "Per asset", "type": "per_asset", "starts_on": "2025-01-01"},
         {}, {"hourly_rate": None, "block_minutes": None, "flat_fee": "0.00"}),
        ("block", {"name": "Block 10", "type": "block_hours", "starts_on": "2025-01-01",
                   "block_hours": "10", "block_fee": "1,625.00", "overage_rate": "95",
                   "sla_tier_id": gold, "billing_frequency": "quarterly", "billing_day": "15"},
         {"has_block": True, "block_minutes": 600, "block_hours": "10.00", "block_fee": "1625.00",
          "block_fee_display": "1,625.00", "overage_rate": "95.00", "sla_tier_id": gold,
          "sla_tier_name": "Gold", "billing_frequency": "quarterly", "billing_day": 15},
         {"block_minutes": 600, "block_fee": "1625.00", "overage_rate": "95.00", "block_rollover": False}),
        ("aycE", {"name": "Unlimited", "type": "all_you_can_eat", "starts_on": "2025-01-01",
                  "ends_on": "2025-12-31", "flat_fee": "2500.5", "hourly_rate": "120",
                  "billing_frequency": "annual", "notes": "Signed by the CFO"},
         {"ends_on": "2025-12-31", "rolling": False, "status": "ended", "flat_fee": "2500.50", "hourly_rate": "120.00",
          "billing_frequency": "annual", "notes": "Signed by the CFO"},
         {"ends_on": "2025-12-31", "flat_fee": "2500.50"}),
        ("payg", {"name": "PAYG", "type": "pay_as_you_go", "starts_on": "2025-01-01",
                  "hourly_rate": "110.00", "project_rate": "130"},
         {"hourly_rate": "110.00", "project_rate": "130.00"},
         {"hourly_rate": "110.00", "project_rate": "130.00", "block_minutes": None}),
        # Hybrids: per-asset with a block, rollover capped; flat fee + per asset.
        ("hybrid", {"name": "Assets + block", "type": "per_asset", "starts_on": "2025-01-01",
                    "block_hours": "7.5", "block_fee": "0", "hourly_rate": "100",
                    "block_rollover": True, "rollover_cap_hours": "2.25", "sla_tier_id": silver},
         {"has_block": True, "block_minutes": 450, "block_hours": "7.50", "block_fee": "0.00",
          "block_rollover": True, "rollover_cap_minutes": 135, "rollover_cap_hours": "2.25",
          "hourly_rate": "100.00", "sla_tier_id": silver},
         {"block_minutes": 450, "block_rollover": True, "rollover_cap_minutes": 135}),
        ("flat+assets", {"name": "Flat plus assets", "type": "per_asset", "starts_on": "2025-01-01",
                         "flat_fee": "300"},
         {"flat_fee": "300.00", "flat_fee_display": "300.00"}, {"flat_fee": "300.00"}),
    ]
    for i, (label, body, want, want_db) in enumerate(shapes):
        c = client(app, tid, f"Client {label}")
        body = dict(body, client_id=c)
        r = create(app, h, **body)
        assert r.status_code == 201, (label, r.text)
        got = r.json()["contract"]
        expect = dict(DEFAULTS, name=body["name"], type=body["type"], starts_on=body["starts_on"],
                      client_id=c, client_name=f"Client {label}")
        expect.update(want)
        for k, v in expect.items():
            assert got[k] == v, (label, k, got[k], v)
        # The API read gives the same, and the row holds exactly this.
        again = app.get(f"/api/v1/contracts/{got['id']}", headers=h).json()["contract"]
        assert {k: again[k] for k in expect} == {k: got[k] for k in expect}
        row = stored(app, got["id"])
        for k, v in want_db.items():
            assert row[k] == v, (label, k, row[k], v)
    acts = app.sql("SELECT count(*) FROM audit_log WHERE action = 'contract.create'")[0][0]
    assert acts == len(shapes)


def test_validation_refuses_with_field_messages(app):
    tid = seed(app)
    h = apikey(app, "manager")
    c = client(app, tid, "Acme")
    old = client(app, tid, "Gone", archived=True)
    cases = [
        ({"name": "", "type": "per_asset", "starts_on": "2025-01-01"}, "name"),
        ({"name": "x", "type": "hourly", "starts_on": "2025-01-01"}, "type"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-02-30"}, "starts_on"),
        ({"name": "x", "type": "per_asset", "starts_on": "01/02/2025"}, "starts_on"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-02-01", "ends_on": "2025-01-31"}, "ends_on"),
        ({"name": "x", "type": "pay_as_you_go", "starts_on": "2025-01-01"}, "hourly_rate"),
        ({"name": "x", "type": "pay_as_you_go", "starts_on": "2025-01-01", "hourly_rate": "90",
          "block_hours": "5", "block_fee": "1"}, "block_hours"),
        ({"name": "x", "type": "block_hours", "starts_on": "2025-01-01", "block_fee": "100",
          "overage_rate": "90"}, "block_hours"),
        ({"name": "x", "type": "block_hours", "starts_on": "2025-01-01", "block_hours": "10",
          "overage_rate": "90"}, "block_fee"),
        ({"name": "x", "type": "block_hours", "starts_on": "2025-01-01", "block_hours": "10",
          "block_fee": "100"}, "overage_rate"),
        ({"name": "x", "type": "block_hours", "starts_on": "2025-01-01", "block_hours": "0.01",
          "block_fee": "1", "overage_rate": "1"}, "block_hours"),
        ({"name": "x", "type": "block_hours", "starts_on": "2025-01-01", "block_hours": "10",
          "block_fee": "1", "overage_rate": "1", "rollover_cap_hours": "3"}, "rollover_cap_hours"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "flat_fee": "12.345"}, "flat_fee"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "flat_fee": "-5"}, "flat_fee"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "hourly_rate": "1,00"}, "hourly_rate"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "billing_day": "29"}, "billing_day"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "flat_fee": 2500.5}, "flat_fee"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "billing_frequency": "weekly"},
         "billing_frequency"),
        ({"name": "x", "type": "per_asset", "starts_on": "2025-01-01", "sla_tier_id": 999999}, "sla_tier_id"),
    ]
    for body, field in cases:
        r = create(app, h, client_id=c, **body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"], (body, r.json())
    r = create(app, h, client_id=old, name="x", type="per_asset", starts_on="2025-01-01")
    assert r.status_code == 422 and "archived" in r.json()["error"]["fields"]["client_id"]
    r = create(app, h, client_id=999999, name="x", type="per_asset", starts_on="2025-01-01")
    assert r.status_code == 422 and "client_id" in r.json()["error"]["fields"]
    assert app.sql("SELECT count(*) FROM contracts")[0][0] == 0
    # The browser form comes back with what was typed and the message.
    b = login(app, "morgan@demo.tallydesk.test")
    b.get("/contracts/new")
    r = b.post("/contracts", {"client_id": str(c), "name": "Typed", "type": "pay_as_you_go",
                              "starts_on": "2025-01-01"})
    assert r.status_code == 422 and "pay as you go needs an hourly rate" in r.text
    assert 'value="Typed"' in r.text


def test_overlap_is_refused_naming_the_contract_and_allowed_after_void(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    other = client(app, tid, "Beta")
    r = create(app, h, client_id=c, name="Managed 2025", type="per_asset", starts_on="2025-01-01",
               ends_on="2025-12-31")
    first = r.json()["contract"]["id"]
    r = create(app, h, client_id=c, name="Overlapping", type="per_asset", starts_on="2025-12-31")
    assert r.status_code == 409
    assert "these dates overlap contract Managed 2025" in r.json()["error"]["message"]
    assert "2025-01-01 to 2025-12-31" in r.text
    # A rolling contract before it overlaps too; one the day after does not.
    assert create(app, h, client_id=c, name="Old rolling", type="per_asset", starts_on="2024-06-01").status_code == 409
    assert create(app, h, client_id=c, name="2026", type="per_asset", starts_on="2026-01-01").status_code == 201
    # Another client is unaffected.
    assert create(app, h, client_id=other, name="B", type="per_asset", starts_on="2025-03-01").status_code == 201
    # Moving a contract onto another one is refused as well.
    r = app.post(f"/api/v1/contracts/{first}", json={"ends_on": ""}, headers=h)
    assert r.status_code == 409 and "overlap contract 2026" in r.text
    # The browser gets the form with the message, status 409.
    b = login(app)
    b.get("/contracts/new")
    r = b.post("/contracts", {"client_id": str(c), "name": "Clash", "type": "per_asset",
                              "starts_on": "2025-06-01", "billing_day": "1"})
    assert r.status_code == 409 and "these dates overlap contract Managed 2025" in r.text
    # The database enforces it whatever the application does.
    import psycopg
    try:
        app.sql("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on) VALUES (%s, %s, 'raw', 'per_asset', '2025-05-05')", (tid, c))
        assert False, "the exclusion constraint let an overlap in"
    except psycopg.errors.ExclusionViolation:
        pass
    # Void the first: it no longer counts.
    r = app.post(f"/api/v1/contracts/{first}/void", json={"reason": "entered twice"}, headers=h)
    assert r.status_code == 200 and r.json()["contract"]["state"] == "voided"
    r = create(app, h, client_id=c, name="Replacement", type="per_asset", starts_on="2025-02-01",
               ends_on="2025-12-31")
    assert r.status_code == 201, r.text


def test_end_and_void_roles_and_audit(app):
    tid = seed(app)
    admin, manager, tech = apikey(app), apikey(app, "manager"), apikey(app, "technician")
    c = client(app, tid, "Acme")
    body = {"client_id": c, "name": "Rolling", "type": "per_asset", "starts_on": "2025-01-01"}
    # Technicians read but never write.
    assert app.post("/api/v1/contracts", json=body, headers=tech).status_code == 403
    cid = create(app, manager, **body).json()["contract"]["id"]
    assert app.get(f"/api/v1/contracts/{cid}", headers=tech).status_code == 200
    assert app.get("/api/v1/contracts", headers=tech).status_code == 200
    for path in ("", "/end", "/void", "/lines"):
        assert app.post(f"/api/v1/contracts/{cid}{path}", json={"reason": "x", "name": "y"},
                        headers=tech).status_code == 403, path
    # Managers end but cannot void.
    assert app.post(f"/api/v1/contracts/{cid}/void", json={"reason": "x"}, headers=manager).status_code == 403
    r = app.post(f"/api/v1/contracts/{cid}/end", json={"ends_on": "2024-12-31"}, headers=manager)
    assert r.status_code == 422 and "ends_on" in r.json()["error"]["fields"]
    r = app.post(f"/api/v1/contracts/{cid}/end", json={"ends_on": d(-1)}, headers=manager)
    assert r.status_code == 200
    got = r.json()["contract"]
    assert got["ends_on"] == d(-1) and got["state"] == "ended" and got["status"] == "ended"
    assert got["void_reason"] is None
    # Ended is not voided: it still blocks an overlap before its end.
    assert create(app, manager, client_id=c, name="x", type="per_asset", starts_on=d(-1)).status_code == 409
    assert create(app, manager, client_id=c, name="Next", type="per_asset", starts_on=d(0)).status_code == 201
    # Void: admins only, a reason required, recorded and audited.
    assert app.post(f"/api/v1/contracts/{cid}/void", json={"reason": ""}, headers=admin).status_code == 422
    r = app.post(f"/api/v1/contracts/{cid}/void", json={"reason": "signed by mistake"}, headers=admin)
    assert r.status_code == 200
    got = r.json()["contract"]
    assert got["state"] == "voided" and got["void_reason"] == "signed by mistake" and got["voided_at"]
    assert app.post(f"/api/v1/contracts/{cid}/void", json={"reason": "again"}, headers=admin).status_code == 409
    assert app.post(f"/api/v1/contracts/{cid}", json={"name": "changed"}, headers=admin).status_code == 409
    assert app.post(f"/api/v1/contracts/{cid}/end", json={}, headers=admin).status_code == 409
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'contract'"
                                  " AND object_id = %s ORDER BY id", (cid,))]
    assert acts == ["contract.create", "contract.end", "contract.void"], acts
    before, after = app.sql("SELECT before->>'state', after->>'state' FROM audit_log"
                            " WHERE action = 'contract.void'")[0]
    assert (before, after) == ("ended", "voided")
    # Browser: a manager sees End but no Void; the technician no buttons.
    bm = login(app, "morgan@demo.tallydesk.test")
    page = bm.get(f"/contracts/{cid + 1}").text
    assert "/end\"" in page and "/void\"" not in page
    bt = login(app, "tess@demo.tallydesk.test")
    page = bt.get(f"/contracts/{cid + 1}").text
    assert "/end\"" not in page and "Edit" not in page
    assert bt.get("/contracts/new").status_code == 403
    ba = login(app)
    r = ba.post(f"/contracts/{cid + 1}/void", {"reason": ""})
    assert r.status_code == 422 and "say why the contract is voided" in r.text
    r = ba.post(f"/contracts/{cid + 1}/void", {"reason": "test"})
    assert r.status_code == 303 and r.headers["Location"] == f"/contracts/{cid + 1}"


def test_new_tickets_get_the_active_contracts_tier(app):
    tid = seed(app)
    h = apikey(app)
    gold = tier(app, tid, "Gold")
    c = client(app, tid, "Acme")
    bare = client(app, tid, "No contract")

    def ticket_tier(cl):
        r = app.post("/api/v1/tickets", json={"subject": "Printer", "client_id": cl}, headers=h)
        assert r.status_code == 201, r.text
        tk = r.json()["ticket"]["id"]
        return app.sql("SELECT sla_tier_id FROM tickets WHERE id = %s", (tk,))[0][0]

    assert ticket_tier(c) == fallback(app, tid)
    # A contract that starts tomorrow does not count yet.
    fut = create(app, h, client_id=c, name="Future", type="per_asset", starts_on=d(1),
                 sla_tier_id=tier(app, tid, "Bronze")).json()["contract"]["id"]
    assert ticket_tier(c) == fallback(app, tid)
    cid = create(app, h, client_id=c, name="Gold care", type="per_asset", starts_on=d(-30),
                 ends_on=d(0), sla_tier_id=gold).json()["contract"]["id"]
    assert ticket_tier(c) == gold
    assert ticket_tier(bare) == fallback(app, tid)
    # The function itself, at other moments.
    at = app.sql("SELECT sla_client_tier(%s, now() + interval '1 day' + interval '2 hours'),"
                 " sla_client_tier(%s, now() - interval '60 days')", (c, c))[0]
    assert at == (tier(app, tid, "Bronze"), fallback(app, tid))
    # A contract without a tier gives the fallback; a voided one never counts.
    app.post(f"/api/v1/contracts/{cid}/void", json={"reason": "wrong client"}, headers=h)
    assert ticket_tier(c) == fallback(app, tid)
    assert app.post(f"/api/v1/contracts/{fut}", json={"starts_on": d(-5)}, headers=h).status_code == 200
    assert ticket_tier(c) == tier(app, tid, "Bronze")


def test_time_default_follows_the_contract(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    bare = client(app, tid, "In-house")
    r = app.get(f"/api/v1/contracts?client_id={c}", headers=h)
    assert r.status_code == 200 and r.json()["contracts"] == []
    got = create(app, h, client_id=c, name="PAYG", type="pay_as_you_go", starts_on=d(-3),
                 hourly_rate="90").json()["contract"]
    assert got["time_default"] == "billable"

    uid = app.sql("SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", (tid,))[0][0]

    def logged_kind(cl):
        """The kind a time entry gets when the caller does not choose one."""
        r = app.post("/api/v1/tickets", json={"subject": "Work", "client_id": cl}, headers=h)
        tk = r.json()["ticket"]["id"]
        r = app.post(f"/api/v1/tickets/{tk}/time", json={"minutes": "30", "description": "x", "started_at": "2026-03-02 09:30",
                                                         "user_id": uid}, headers=h)
        assert r.status_code in (200, 201), r.text
        return app.sql("SELECT kind FROM time_entries WHERE ticket_id = %s", (tk,))[0][0]

    assert logged_kind(c) == "billable"
    assert logged_kind(bare) == "internal"


def test_line_quantities_from_assets_and_totals(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    vat = app.sql("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'VAT 20', 20) RETURNING id", (tid,))[0][0]
    for name, kind, cat, billable in [("pc1", "workstation", "Laptop", True), ("pc2", "workstation", "Desktop", True),
                                      ("pc3", "workstation", "Laptop", False), ("srv", "server", "", True),
                                      ("old", "workstation", "Laptop", True)]:
        app.sql("INSERT INTO assets (tenant_id, client_id, name, kind, category, billable) VALUES (%s, %s, %s, %s, %s, %s)",
                (tid, c, name, kind, cat, billable))
    app.sql("UPDATE assets SET archived_at = now() WHERE name = 'old'")
    cid = create(app, h, client_id=c, name="Managed", type="per_asset", starts_on=d(-10)).json()["contract"]["id"]
    lines = [
        {"description": "Workstations", "quantity_source": "assets", "asset_kinds": ["workstation"],
         "unit_price": "12.50", "tax_rate_id": vat, "service_code": "4000"},
        {"description": "Laptops", "quantity_source": "assets", "asset_kinds": ["workstation"],
         "asset_categories": ["Laptop"], "unit_price": "0.333"},
        {"description": "Everything", "quantity_source": "assets", "unit_price": "1,000"},
        {"description": "Backup TB", "quantity": "1.5", "unit_price": "0.33", "billing_category": "Backup"},
        {"description": "Discount", "quantity": "1", "unit_price": "-10"},
    ]
    r = app.post(f"/api/v1/contracts/{cid}/lines", json=lines[1], headers=h)
    assert r.status_code == 422 and "unit_price" in r.json()["error"]["fields"]
    lines[1]["unit_price"] = "0.33"
    for l in lines:
        r = app.post(f"/api/v1/contracts/{cid}/lines", json=l, headers=h)
        assert r.status_code == 201, r.text
    got = {l["description"]: l for l in app.get(f"/api/v1/contracts/{cid}", headers=h).json()["contract"]["lines"]}
    assert got["Workstations"]["live_quantity"] == "2" and got["Workstations"]["total"] == "25.00"
    assert got["Workstations"]["tax_rate_name"] == "VAT 20" and got["Workstations"]["service_code"] == "4000"
    assert got["Laptops"]["live_quantity"] == "1" and got["Laptops"]["total"] == "0.33"
    assert got["Everything"]["live_quantity"] == "3" and got["Everything"]["total"] == "3000.00"
    assert got["Everything"]["total_display"] == "3,000.00"
    assert got["Backup TB"]["live_quantity"] == "1.50" and got["Backup TB"]["total"] == "0.50"  # 0.495 rounds up
    assert got["Backup TB"]["quantity"] == "1.50" and got["Backup TB"]["billing_category"] == "Backup"
    assert got["Discount"]["total"] == "-10.00"
    contract = app.get(f"/api/v1/contracts/{cid}", headers=h).json()["contract"]
    assert contract["lines_total"] == "3015.83"
    # A new laptop counts at once.
    app.sql("INSERT INTO assets (tenant_id, client_id, name, kind, category) VALUES (%s, %s, 'pc4', 'workstation', 'Laptop')", (tid, c))
    got = {l["description"]: l for l in app.get(f"/api/v1/contracts/{cid}", headers=h).json()["contract"]["lines"]}
    assert got["Laptops"]["live_quantity"] == "2" and got["Workstations"]["total"] == "37.50"
    # Bad lines: unknown kind, a fixed line without quantity, a tax rate of nobody.
    bad = [({"description": "x", "quantity_source": "assets", "asset_kinds": ["toaster"], "unit_price": "1"}, "asset_kinds"),
           ({"description": "x", "unit_price": "1"}, "quantity"),
           ({"description": "x", "quantity": 1.5, "unit_price": "1"}, "quantity"),
           ({"description": "x", "quantity": "1", "unit_price": 9.99}, "unit_price"),
           ({"description": "", "quantity": "1", "unit_price": "1"}, "description"),
           ({"description": "x", "quantity": "1", "unit_price": "1", "tax_rate_id": 999999}, "tax_rate_id"),
           ({"description": "x", "quantity_source": "magic", "quantity": "1", "unit_price": "1"}, "quantity_source")]
    for body, field in bad:
        r = app.post(f"/api/v1/contracts/{cid}/lines", json=body, headers=h)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    # Update and delete.
    lid = got["Discount"]["id"]
    r = app.post(f"/api/v1/contracts/{cid}/lines/{lid}", json={"unit_price": "-12.5"}, headers=h)
    assert r.status_code == 200
    assert app.sql("SELECT unit_price::text, description FROM contract_lines WHERE id = %s", (lid,))[0] == ("-12.50", "Discount")
    r = app.post(f"/api/v1/contracts/{cid}/lines/{lid}/delete", headers=h)
    assert r.status_code == 200 and r.json()["deleted"]["description"] == "Discount"
    assert app.post(f"/api/v1/contracts/{cid}/lines/{lid}/delete", headers=h).status_code == 404
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE action LIKE 'contract.line%%' ORDER BY id")]
    assert acts == ["contract.line_add"] * 5 + ["contract.line_update", "contract.line_delete"]
    # The page shows the live quantity and line total.
    b = login(app)
    page = b.get(f"/contracts/{cid}").text
    assert "Workstations" in page and "37.50" in page and "4,000.00" in page and "Laptop" in page


def add_time(app, tid, c, minutes, kind="billable", status="committed", ticket_type="incident", days_ago=0):
    uid = app.sql("SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", (tid,))[0][0]
    n = app.sql("SELECT coalesce(max(number), 0) + 1 FROM tickets WHERE tenant_id = %s", (tid,))[0][0]
    tk = app.sql("INSERT INTO tickets (tenant_id, number, subject, client_id, type) VALUES (%s, %s, 'T', %s, %s) RETURNING id",
                 (tid, n, c, ticket_type))[0][0]
    app.sql("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind, status)"
            " VALUES (%s, %s, %s, %s, now() - make_interval(days => %s), %s, %s, %s)",
            (tid, tk, c, uid, days_ago, minutes, kind, status))


def test_block_status_counts_committed_billable_non_project_time(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    first = TODAY.replace(day=1)
    cid = create(app, h, client_id=c, name="Block 10", type="block_hours", starts_on=first.isoformat(),
                 block_hours="10", block_fee="900", overage_rate="95").json()["contract"]["id"]
    b = login(app)
    assert "10.0 of 10.0 h left this month" in b.get(f"/clients/{c}").text
    add_time(app, tid, c, 300)                                 # counts
    add_time(app, tid, c, 120, kind="internal")                # not billable
    add_time(app, tid, c, 60, ticket_type="project")           # project work
    add_time(app, tid, c, 45, status="pending")                # not committed
    add_time(app, tid, c, 30, status="rejected")
    add_time(app, tid, c, 600, days_ago=40)                    # a previous cycle
    add_time(app, tid, c, 120, kind="prepaid")
    r = app.get(f"/api/v1/clients/{c}", headers=h).json()
    blk = r["block"]
    assert blk["text"] == "5.0 of 10.0 h left this month" and blk["over"] is False
    assert blk["used_minutes"] == 300 and blk["size_minutes"] == 600
    assert blk["contract_id"] == cid and blk["cycle_from"] == first.isoformat()
    page = b.get(f"/clients/{c}").text
    assert "5.0 of 10.0 h left this month" in page and "badge-p3" in page
    assert "5.0 of 10.0 h left this month" in b.get(f"/contracts/{cid}").text
    # The ticket page asks for the block with the ticket, before it knows the client.
    tk = app.sql("SELECT id FROM tickets WHERE client_id = %s ORDER BY id LIMIT 1", (c,))[0][0]
    assert "5.0 of 10.0 h left this month" in b.get(f"/tickets/{tk}").text
    assert app.get(f"/api/v1/tickets/{tk}", headers=h).status_code == 200
    add_time(app, tid, c, 340)
    blk = app.get(f"/api/v1/contracts/{cid}", headers=h).json()["block"]
    assert blk["text"] == "0.0 of 10.0 h left this month, 0.7 h over" and blk["over"] is True
    page = b.get(f"/clients/{c}").text
    assert "0.7 h over" in page and "badge-p1" in page
    # Clients without a block show none.
    other = client(app, tid, "Beta")
    assert "block" not in app.get(f"/api/v1/clients/{other}", headers=h).json()
    # The report lists the cycle; the CSV carries the same numbers.
    bm = login(app, "morgan@demo.tallydesk.test")
    r = bm.get("/reports/blocks")
    assert r.status_code == 200 and "Block 10" in r.text and "<svg" in r.text
    rows = app.get("/api/v1/reports/blocks", headers=h).json()["rows"]
    cur = [x for x in rows if x["cycle_from"] == first.isoformat()][0]
    assert cur["used_minutes"] == 640 and cur["over"] is True and cur["used_percent"] == 107
    r = bm.get(f"/reports/blocks.csv?from={first.isoformat()}&to={TODAY.isoformat()}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "client,contract,cycle_from,cycle_to,block_hours,used_hours,left_hours,over_hours"
    assert lines[1].startswith(f"Acme,Block 10,{first.isoformat()},") and lines[1].endswith(",10.00,10.67,0.00,0.67")
    assert login(app, "tess@demo.tallydesk.test").get("/reports/blocks").status_code == 403
    assert bm.get("/reports/blocks?from=2020-01-01&to=2025-01-01").status_code == 400
    assert bm.get("/reports/blocks?from=2025-02-30").status_code == 400


def test_rollover_adds_the_previous_cycles_unused_hours_up_to_the_cap(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    first = TODAY.replace(day=1)
    prev = (first - datetime.timedelta(days=1)).replace(day=1)
    create(app, h, client_id=c, name="Roll", type="block_hours", starts_on=prev.isoformat(),
           block_hours="10", block_fee="900", overage_rate="95", block_rollover=True, rollover_cap_hours="3")
    add_time(app, tid, c, 8 * 60, days_ago=(TODAY - prev).days)   # 2 h unused last month
    blk = app.get(f"/api/v1/clients/{c}", headers=h).json()["block"]
    assert blk["carried_minutes"] == 120 and blk["text"] == "12.0 of 12.0 h left this month"


def check_html(html, name):
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    return [f"{name}: {l}" for l in r.stderr.splitlines()]


def test_contract_pages_are_valid_html(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme & <Co>")
    app.sql("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'VAT', 20)", (tid,))
    cid = create(app, h, client_id=c, name="Block <b>", type="block_hours", starts_on=d(-40),
                 block_hours="10", block_fee="900", overage_rate="95", notes="n").json()["contract"]["id"]
    app.post(f"/api/v1/contracts/{cid}/lines", json={"description": "PCs", "quantity_source": "assets",
                                                     "asset_kinds": ["workstation"], "unit_price": "10"}, headers=h)
    add_time(app, tid, c, 700)
    vid = create(app, h, client_id=c, name="Old", type="per_asset", starts_on="2020-01-01",
                 ends_on="2020-12-31").json()["contract"]["id"]
    app.post(f"/api/v1/contracts/{vid}/void", json={"reason": "typo"}, headers=h)
    lid = app.sql("SELECT id FROM contract_lines")[0][0]
    b = login(app)
    pages = {
        "list": b.get("/contracts").text,
        "list_filtered": b.get(f"/contracts?client_id={c}&type=block_hours&state=active").text,
        "client_tab": b.get(f"/clients/{c}/contracts").text,
        "new": b.get(f"/contracts/new?client_id={c}").text,
        "new_err": b.post("/contracts", {"name": "", "type": "x", "starts_on": "no"}).text,
        "overlap": b.post("/contracts", {"client_id": str(c), "name": "x", "type": "per_asset", "starts_on": d(0), "billing_day": "1"}).text,
        "show": b.get(f"/contracts/{cid}").text,
        "voided": b.get(f"/contracts/{vid}").text,
        "edit": b.get(f"/contracts/{cid}/edit").text,
        "edit_err": b.post(f"/contracts/{cid}", {"name": "", "type": "block_hours", "starts_on": d(-40)}).text,
        "line_err": b.post(f"/contracts/{cid}/lines", {"description": ""}).text,
        "line_edit_err": b.post(f"/contracts/{cid}/lines/{lid}", {"description": "", "unit_price": "x"}).text,
        "end_err": b.post(f"/contracts/{cid}/end", {"ends_on": "2000-01-01"}).text,
        "void_err": b.post(f"/contracts/{cid}/void", {"reason": ""}).text,
        "client": b.get(f"/clients/{c}").text,
        "report": b.get("/reports/blocks").text,
        "report_empty": b.get("/reports/blocks?from=2020-01-01&to=2020-02-01").text,
    }
    problems = []
    for k, v in pages.items():
        assert "<h1" in v, k
        problems += [p for p in check_html(v, k) if "Error" in p or ("focusable" not in p and "aria-current" not in p)]
    assert not problems, "\n".join(problems)
    assert "Block &lt;b&gt;" in pages["show"]
    assert "Voided on" in pages["voided"] and "typo" in pages["voided"]


def test_browser_forms_and_list_filters(app):
    tid = seed(app)
    c = client(app, tid, "Acme")
    c2 = client(app, tid, "Beta")
    b = login(app, "morgan@demo.tallydesk.test")
    page = b.get(f"/contracts/new?client_id={c}").text
    assert f'<option value="{c}" selected>Acme</option>' in page
    r = b.post("/contracts", {"client_id": str(c), "name": "Managed", "type": "per_asset",
                              "starts_on": "2025-01-01", "billing_frequency": "monthly", "billing_day": "5",
                              "flat_fee": "1,625.00", "hourly_rate": "", "block_hours": "4",
                              "block_fee": "200", "overage_rate": "90", "block_rollover": "1",
                              "rollover_cap_hours": "", "sla_tier_id": str(tier(app, tid, "Silver"))})
    assert r.status_code == 303, r.text[:3000]
    cid = int(r.headers["Location"].rsplit("/", 1)[1])
    row = stored(app, cid)
    assert (row["flat_fee"], row["block_minutes"], row["block_rollover"], row["billing_day"]) == ("1625.00", 240, True, 5)
    page = b.get(f"/contracts/{cid}").text
    assert "GBP 1,625.00 per cycle" in page and "4.00 h per cycle for GBP 200.00" in page
    # Edit keeps what the form shows; unticking rollover clears it.
    page = b.get(f"/contracts/{cid}/edit").text
    assert 'value="1625.00"' in page and 'value="4.00"' in page and 'name="block_rollover" value="1" checked' in page
    r = b.post(f"/contracts/{cid}", {"name": "Managed+", "type": "per_asset", "starts_on": "2025-01-01",
                                     "billing_frequency": "monthly", "billing_day": "5", "flat_fee": "1625",
                                     "block_hours": "4", "block_fee": "200", "overage_rate": "90"})
    assert r.status_code == 303
    row = stored(app, cid)
    assert row["name"] == "Managed+" and row["block_rollover"] is False and row["sla_tier_id"] is None
    # Lines from the form: ticked kinds arrive as repeated fields.
    r = b.post(f"/contracts/{cid}/lines", {"description": "Endpoints", "quantity_source": "assets",
                                           "asset_kinds": ["workstation", "server"],
                                           "asset_categories": "Laptop, Desktop ,", "unit_price": "15"})
    assert r.status_code == 303
    assert app.sql("SELECT asset_kinds, asset_categories FROM contract_lines")[0] == (["workstation", "server"], ["Laptop", "Desktop"])
    r = b.post(f"/contracts/{cid}/lines", {"description": "x", "quantity_source": "assets",
                                           "asset_kinds": ["nope"], "unit_price": "15"})
    assert r.status_code == 422 and "choose asset kinds from the list" in r.text
    lid = app.sql("SELECT id FROM contract_lines")[0][0]
    r = b.post(f"/contracts/{cid}/lines/{lid}", {"description": "", "quantity_source": "fixed", "unit_price": "x"})
    assert r.status_code == 422 and "<details class=\"confirm\" open>" in r.text
    # The list filters by client, type and state; unknown values are refused.
    h = apikey(app)
    create(app, h, client_id=c2, name="Old", type="pay_as_you_go", starts_on="2020-01-01", ends_on="2020-12-31",
           hourly_rate="80")
    create(app, h, client_id=c2, name="Soon", type="all_you_can_eat", starts_on=d(30))

    def names(q):
        r = app.get(f"/api/v1/contracts{q}", headers=h)
        assert r.status_code == 200, r.text
        return sorted(x["name"] for x in r.json()["contracts"])

    assert names("") == ["Managed+", "Old", "Soon"]
    assert names(f"?client_id={c2}") == ["Old", "Soon"]
    assert names("?type=pay_as_you_go") == ["Old"]
    assert names("?state=ended") == ["Old"]
    assert names("?state=upcoming") == ["Soon"]
    assert names("?state=active") == ["Managed+"]
    assert app.get("/api/v1/contracts?type=weekly", headers=h).status_code == 400
    assert app.get("/api/v1/contracts?client_id=abc", headers=h).status_code == 400
    # The client's contracts tab.
    page = b.get(f"/clients/{c2}/contracts").text
    assert "Old" in page and "Soon" in page and "Managed+" not in page


def test_concurrent_overlapping_creates_let_exactly_one_in(app):
    import threading
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    codes = []

    def go(i):
        r = create(app, h, client_id=c, name=f"Race {i}", type="per_asset", starts_on="2025-01-01")
        codes.append(r.status_code)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 5, codes
    assert app.sql("SELECT count(*) FROM contracts")[0][0] == 1


def test_contract_cycles(app):
    def cyc(starts, ends, freq, day, at):
        return app.sql("SELECT lower(r)::text, upper(r)::text FROM contract_cycle(%s::date, %s::date, %s, %s, %s::date) r",
                       (starts, ends, freq, day, at))[0]
    assert cyc("2025-01-01", None, "monthly", 1, "2025-03-31") == ("2025-03-01", "2025-04-01")
    assert cyc("2025-01-10", None, "monthly", 1, "2025-01-20") == ("2025-01-10", "2025-02-01")  # clipped start
    assert cyc("2025-01-01", None, "monthly", 15, "2025-03-14") == ("2025-02-15", "2025-03-15")
    assert cyc("2025-01-01", None, "monthly", 15, "2025-03-15") == ("2025-03-15", "2025-04-15")
    assert cyc("2025-02-01", None, "quarterly", 1, "2025-06-30") == ("2025-05-01", "2025-08-01")
    assert cyc("2025-02-01", None, "quarterly", 1, "2026-01-31") == ("2025-11-01", "2026-02-01")
    assert cyc("2024-07-01", None, "annual", 1, "2025-06-30") == ("2024-07-01", "2025-07-01")
    assert cyc("2025-01-01", "2025-03-10", "monthly", 1, "2025-03-05") == ("2025-03-01", "2025-03-11")  # clipped end
    rows = app.sql("SELECT lower(r)::text FROM contract_cycles('2025-01-20', '2025-04-10', 'monthly', 5,"
                   " '2024-01-01', '2026-01-01') r")
    assert [r[0] for r in rows] == ["2025-01-20", "2025-02-05", "2025-03-05", "2025-04-05"]
