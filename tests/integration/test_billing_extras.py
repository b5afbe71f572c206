"""Billing seen from elsewhere, and fees billed in advance that change:
the month-to-date panel on the client page (managers only), the history
of a contract's terms on its page, and the adjustment the next invoice
carries when a fee already billed in advance changes within its period."""
import html
import re
import subprocess
from decimal import Decimal

from clientdata import apikey, login, seed

D = Decimal


def text_of(page):
    """The page's text as a person reads it (tags out, spaces folded)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def valid_html(page):
    """tidy finds no error (as tests/integration/test_html_valid.py)."""
    r = subprocess.run(["tidy", "-q", "-e", "-utf8", "--drop-empty-elements", "no"],
                       input=page, capture_output=True, text=True)
    errors = [line for line in r.stderr.splitlines() if "Error:" in line]
    assert not errors, "\n".join(errors)


def section(page, ident):
    """The HTML of the element with id ident up to the next panel part."""
    start = page.index(f'id="{ident}"')
    end = page.find("panel-body-sep", start + 1)
    return page[start:end if end > 0 else len(page)]


# -- the month-to-date panel on the client page ---------------------------

def panel_setup(app):
    """A pay-as-you-go client with 1 h 15 min of billable time today at
    £95/h (not billed yet: £118.75 so far) and one issued invoice of
    £120.00 (£100 + 20% VAT) with £50.00 paid."""
    tid = seed(app)
    q = app.sql
    cid = q("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Panel Ltd') RETURNING id", (tid,))[0][0]
    q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate)"
      " VALUES (%s, %s, 'Support', 'pay_as_you_go', '2026-01-01', 95)", (tid, cid))
    tk = q("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 77001,"
           " 'Mail server down', %s) RETURNING id", (tid, cid))[0][0]
    uid = q("SELECT id FROM users WHERE tenant_id = %s AND email = 'tess@demo.tallydesk.test'",
            (tid,))[0][0]
    q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
      " SELECT %s, %s, %s, %s, date_trunc('day', now() AT TIME ZONE t.time_zone)"
      " AT TIME ZONE t.time_zone, 75, 'billable' FROM tenants t WHERE t.id = %s",
      (tid, tk, cid, uid, tid))
    vat = q("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'VAT test', 20)"
            " RETURNING id", (tid,))[0][0]
    inv = q("INSERT INTO invoices (tenant_id, client_id, status, number, issued_on, due_on, currency)"
            " VALUES (%s, %s, 'issued', 'PT-0001', '2026-11-02', current_date + 30, 'GBP')"
            " RETURNING id", (tid, cid))[0][0]
    q("INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind, description, quantity,"
      " unit_price, amount, tax_rate_id, tax_rate) VALUES (%s, %s, 1, 'manual', 'Setup', 1, 100,"
      " 100, %s, 20)", (tid, inv, vat))
    q("INSERT INTO payments (tenant_id, invoice_id, amount, paid_on, method)"
      " VALUES (%s, %s, 50, '2026-11-03', 'bank_transfer')", (tid, inv))
    return tid, cid, inv


def test_client_page_shows_month_to_date_and_last_invoices_to_managers(app):
    tid, cid, inv = panel_setup(app)
    b = login(app, "morgan@demo.tallydesk.test")
    r = b.get(f"/clients/{cid}")
    assert r.status_code == 200, r.text[:300]
    valid_html(r.text)
    mtd = text_of(section(r.text, "month-to-date"))
    assert "GBP 118.75" in mtd and "before tax" in mtd, mtd
    assert "#77001 Mail server down" in mtd and "1.25 h (raw 1.25 h, 1 entry)" in mtd, mtd
    assert f'href="/clients/{cid}/billing"' in r.text
    last = text_of(section(r.text, "last-invoices"))
    assert re.search(r"PT-0001 2026-11-02 Partly paid 120\.00 70\.00 due", last), last
    assert f'href="/invoices?client_id={cid}"' in r.text
    assert f'href="/invoices/{inv}"' in r.text
    # the full preview it links to shows the same figure
    full = b.get(f"/clients/{cid}/billing")
    assert full.status_code == 200 and "118.75" in full.text
    # the JSON twin carries the same data
    j = app.get(f"/api/v1/clients/{cid}", headers=apikey(app, "manager")).json()
    p = j["billing_panel"]
    assert p["total"] == "118.75" and p["line_count"] == 1, p
    assert p["lines"][0]["amount"] == "118.75"
    assert [(i["number"], i["total"], i["balance"], i["status"]) for i in p["invoices"]] == [
        ("PT-0001", "120.00", "70.00", "partly_paid")]
    assert p["invoices_url"] == f"/invoices?client_id={cid}"
    # a draft has no number yet: it shows as such, newest first
    draft = app.sql("INSERT INTO invoices (tenant_id, client_id, currency) VALUES (%s, %s, 'GBP')"
                    " RETURNING id", (tid, cid))[0][0]
    last = text_of(section(b.get(f"/clients/{cid}").text, "last-invoices"))
    assert re.search(rf"Draft #{draft} \S+ Draft 0\.00 0\.00 due PT-0001", last), last
    j = app.get(f"/api/v1/clients/{cid}", headers=apikey(app, "manager")).json()
    assert [(i["number"], i["status"]) for i in j["billing_panel"]["invoices"]] == [
        (None, "draft"), ("PT-0001", "partly_paid")]


def test_technicians_see_no_money_on_the_client_page(app):
    tid, cid, inv = panel_setup(app)
    b = login(app, "tess@demo.tallydesk.test")
    r = b.get(f"/clients/{cid}")
    assert r.status_code == 200
    assert 'id="month-to-date"' not in r.text and "118.75" not in r.text
    assert "PT-0001" not in r.text and "/billing" not in r.text
    j = app.get(f"/api/v1/clients/{cid}", headers=apikey(app, "technician")).json()
    assert "billing_panel" not in j


def test_client_without_contract_or_invoice_says_so(app):
    tid = seed(app)
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Quiet Ltd') RETURNING id",
                  (tid,))[0][0]
    r = login(app).get(f"/clients/{cid}")
    assert "Nothing to bill so far this cycle." in r.text
    assert "No invoices yet." in r.text


# -- the history of terms on the contract page ----------------------------

def billed_contract(app, flat="200", lines=(("Managed endpoints", "assets", None, "15"),)):
    """A contract from 1 October with its lines; October and November
    billed on 1 November."""
    tid = seed(app)
    q = app.sql
    cid = q("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Terms Ltd') RETURNING id", (tid,))[0][0]
    kid = q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, flat_fee)"
            " VALUES (%s, %s, 'Managed', 'per_asset', '2026-10-01', %s) RETURNING id",
            (tid, cid, flat))[0][0]
    ids = [q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source,"
             " quantity, unit_price) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
             (tid, kid, d, src, qty, price))[0][0] for d, src, qty, price in lines]
    r = app.run("billing-run", "--date", "2026-11-01", "--client", str(cid))
    assert r.returncode == 0 and "2 invoices created" in r.stdout, r.stdout + r.stderr
    return tid, cid, kid, ids


def test_contract_page_lists_each_version_of_its_terms_newest_first(app):
    tid, cid, kid, (lid,) = billed_contract(app)
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}",
                 json={"unit_price": "18.00", "effective_from": "2026-11-11"}, headers=h)
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}",
                 json={"flat_fee": "1260.00", "effective_from": "2026-12-11"}, headers=h)
    assert r.status_code == 200, r.text
    j = app.get(f"/api/v1/contracts/{kid}", headers=h).json()
    hist = j["contract"]["terms_history"]
    assert [(v["from"], v["to"], v["in_force"]) for v in hist] == [
        ("2026-12-11", None, True), ("2026-11-11", "2026-12-11", False), (None, "2026-11-11", False)]
    assert hist[0]["changes"] == [{"what": "Flat fee", "before": "200.00", "after": "1,260.00"}]
    assert hist[1]["changes"] == [{"what": "Line Managed endpoints",
                                   "before": "15.00 per asset", "after": "18.00 per asset"}]
    assert hist[2]["first"] and {"what": "Flat fee", "before": None, "after": "200.00"} in hist[2]["changes"]
    assert j["contract"]["has_terms_history"] is True
    # the page, as a technician reads it
    page = login(app, "tess@demo.tallydesk.test").get(f"/contracts/{kid}").text
    valid_html(page)
    t = text_of(page[page.index('id="contract-history"'):])
    assert re.search(r"11 Dec 2026 – now In force \d+ Nov 2026 [\d:]+ .*?Flat fee: 200\.00 → 1,260\.00", t), t
    assert "11 Nov 2026 – 10 Dec 2026" in t
    assert "Line Managed endpoints: 15.00 per asset → 18.00 per asset" in t
    assert "The start – 10 Nov 2026 First terms" in t, t


def test_line_added_and_removed_show_in_the_history(app):
    tid, cid, kid, (lid,) = billed_contract(app)
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/contracts/{kid}/lines", headers=h, json={
        "description": "Backup", "quantity_source": "fixed", "quantity": "2", "unit_price": "50.00",
        "effective_from": "2026-11-16"})
    assert r.status_code in (200, 201), r.text
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}/delete", headers=h,
                 json={"effective_from": "2026-11-21"})
    assert r.status_code == 200, r.text
    hist = app.get(f"/api/v1/contracts/{kid}", headers=h).json()["contract"]["terms_history"]
    assert hist[0]["changes"] == [{"what": "Line Managed endpoints", "before": "15.00 per asset",
                                   "after": "removed"}]
    assert hist[1]["changes"] == [{"what": "Line Backup", "before": "none", "after": "2 × 50.00"}]


def test_contract_never_changed_says_so(app):
    tid, cid, kid, _ = billed_contract(app)
    page = login(app).get(f"/contracts/{kid}").text
    assert "History of terms" in page
    assert "The terms have not changed since the contract started." in page


# -- fees billed in advance that change within their period ---------------

def december(app, cid, created="1 invoice created"):
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert r.returncode == 0 and created in r.stdout, r.stdout + r.stderr
    return app.sql("SELECT l.kind, l.description, l.breakdown, l.quantity, l.unit_price, l.amount,"
                   " l.contract_line_id FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                   " WHERE i.client_id = %s AND i.period_to = '2026-12-31' ORDER BY l.position", (cid,))


def test_price_raised_mid_period_is_adjusted_once_on_the_next_invoice(app):
    tid, cid, kid, (lid,) = billed_contract(
        app, flat="0", lines=(("Managed service", "fixed", "1", "500"),))
    # November's invoice billed November in advance (and October's usage)
    nov = app.sql("SELECT number, id FROM invoices WHERE client_id = %s AND period_to = '2026-11-30'",
                  (cid,))
    assert len(nov) == 1
    nov_ref = nov[0][0] or f"draft #{nov[0][1]}"
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}", headers=apikey(app, "manager"),
                 json={"unit_price": "600.00", "effective_from": "2026-11-11"})
    assert r.status_code == 200, r.text
    # the dry run says it first, and writes nothing
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Adjustment: Managed service £500.00 → £600.00 from 11 Nov 2026, 20 of 30 days" in r.stdout
    lines = december(app, cid)
    assert lines == [
        ("fixed", "Managed service, 1 Dec 2026 – 31 Dec 2026", "", D(1), D("600.00"), D("600.00"), lid),
        ("adjustment", "Adjustment: Managed service £500.00 → £600.00 from 11 Nov 2026, 20 of 30 days",
         f"billed in advance for 1 Nov 2026 – 30 Nov 2026: £500.00 on invoice {nov_ref};"
         " at the terms now in force: 10 days at £500.00, 20 days at £600.00 = £566.67",
         D(1), D("66.67"), D("66.67"), lid)]
    # 20 days at £100 more a month of 30 days: 400.00 - 333.33 = 66.67
    assert app.sql("SELECT subtotal FROM invoice_totals t JOIN invoices i ON i.id = t.invoice_id"
                   " WHERE i.client_id = %s AND i.period_to = '2026-12-31'", (cid,)) == [(D("666.67"),)]
    # billed once: the rerun creates nothing, January carries no adjustment
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert r.returncode == 0 and "0 invoices created" in r.stdout, r.stdout
    assert app.sql("SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                   " WHERE i.client_id = %s AND l.kind = 'adjustment'", (cid,)) == [(1,)]
    r = app.run("billing-run", "--date", "2027-01-01", "--client", str(cid))
    assert r.returncode == 0 and "1 invoice created" in r.stdout, r.stdout
    assert app.sql("SELECT l.kind, l.amount FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                   " WHERE i.client_id = %s AND i.period_to = '2027-01-31'", (cid,)) == [
        ("fixed", D("600.00"))]


def test_quantity_change_line_removed_and_flat_fee_are_adjusted_to_the_penny(app):
    tid, cid, kid, (mon, bak) = billed_contract(
        app, flat="200", lines=(("Monitoring", "fixed", "1", "30"), ("Backup", "fixed", "2", "50")))
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/contracts/{kid}/lines/{mon}/delete", headers=h,
                 json={"effective_from": "2026-11-16"})
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}/lines/{bak}", headers=h,
                 json={"quantity": "3", "effective_from": "2026-11-21"})
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}", headers=h,
                 json={"flat_fee": "230.00", "effective_from": "2026-11-21"})
    assert r.status_code == 200, r.text
    adj = [(l[1], l[5]) for l in december(app, cid) if l[0] == "adjustment"]
    assert adj == [
        # the flat fee: 20 days at £200 and 10 at £230, less the £200 billed:
        # 133.33 + 76.67 - 200.00 = 10.00
        ("Adjustment: Managed £200.00 → £230.00 from 21 Nov 2026, 10 of 30 days", D("10.00")),
        # 15 days of £30 kept, 15 given back
        ("Adjustment: Monitoring removed from 16 Nov 2026, 15 of 30 days", D("-15.00")),
        # 20 days × 2 × £50 and 10 days × 3 × £50, less the £100 billed:
        # 66.67 + 50.00 - 100.00 = 16.67
        ("Adjustment: Backup 2 × £50.00 → 3 × £50.00 from 21 Nov 2026, 10 of 30 days", D("16.67"))]


def test_change_known_before_billing_in_advance_needs_no_adjustment(app):
    """Dated within December before December is billed: December bills its
    two phases (sql/0018), January adjusts nothing."""
    tid, cid, kid, (lid,) = billed_contract(
        app, flat="0", lines=(("Managed service", "fixed", "1", "500"),))
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}", headers=apikey(app, "manager"),
                 json={"unit_price": "600.00", "effective_from": "2026-12-11"})
    assert r.status_code == 200, r.text
    lines = december(app, cid)
    assert [(l[0], l[5]) for l in lines] == [("fixed", D("161.29")), ("fixed", D("406.45"))]
    r = app.run("billing-run", "--date", "2027-01-01", "--client", str(cid))
    assert r.returncode == 0 and "1 invoice created" in r.stdout, r.stdout
    assert app.sql("SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                   " WHERE i.client_id = %s AND l.kind = 'adjustment'", (cid,)) == [(0,)]


def test_contract_ended_after_a_change_gives_back_at_the_new_terms_and_adjusts(app):
    """£500 → £600 from 11 November, then the contract ends on 20 November:
    the closing invoice gives back 21–30 November at £600 and adjusts
    11–30 November to £600, so November costs 10 days at £500 and 10 at
    £600 to the penny."""
    tid, cid, kid, (lid,) = billed_contract(
        app, flat="0", lines=(("Managed service", "fixed", "1", "500"),))
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}", headers=h,
                 json={"unit_price": "600.00", "effective_from": "2026-11-11"})
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}/end", headers=h, json={"ends_on": "2026-11-20"})
    assert r.status_code == 200, r.text
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert r.returncode == 0 and "1 invoice created" in r.stdout, r.stdout + r.stderr
    got = app.sql("SELECT l.kind, l.amount FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                  " WHERE i.client_id = %s AND i.period_to = '2026-11-30' AND i.period_from = '2026-11-01'"
                  " ORDER BY l.position", (cid,))
    assert got == [("fixed", D("-200.00")), ("adjustment", D("66.67"))]
    billed = app.sql("SELECT sum(t.subtotal) FROM invoice_totals t JOIN invoices i ON i.id = t.invoice_id"
                     " WHERE i.client_id = %s AND i.period_to >= '2026-11-30'", (cid,))[0][0]
    # 500.00 billed in advance + 66.67 - 200.00 = 166.67 + 200.00
    assert billed == D("366.67")


def test_fee_edited_by_hand_on_the_invoice_is_not_adjusted(app):
    tid, cid, kid, (lid,) = billed_contract(
        app, flat="0", lines=(("Managed service", "fixed", "1", "500"),))
    h = apikey(app, "manager")
    [(inv, line)] = app.sql("SELECT i.id, l.id FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id"
                            " WHERE i.client_id = %s AND i.period_to = '2026-11-30'", (cid,))
    r = app.post(f"/api/v1/invoices/{inv}/lines/{line}", headers=h,
                 json={"description": "Managed service, November (agreed)", "quantity": "1",
                       "unit_price": "450.00"})
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}", headers=h,
                 json={"unit_price": "600.00", "effective_from": "2026-11-11"})
    assert r.status_code == 200, r.text
    assert [(l[0], l[5]) for l in december(app, cid)] == [("fixed", D("600.00"))]


def test_new_description_alone_adjusts_nothing(app):
    """£10.01 split at 15 of 30 days rounds to 5.01 + 5.01: a change of
    the line's words is no change of price, so no 1p adjustment."""
    tid, cid, kid, (lid,) = billed_contract(
        app, flat="0", lines=(("Backup", "fixed", "1", "10.01"),))
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}", headers=apikey(app, "manager"),
                 json={"description": "Cloud backup", "effective_from": "2026-11-16"})
    assert r.status_code == 200, r.text
    assert [(l[0], l[1], l[5]) for l in december(app, cid)] == [
        ("fixed", "Cloud backup, 1 Dec 2026 – 31 Dec 2026", D("10.01"))]
