"""Invoice pages and their JSON twins: list with filters, the invoice with
its breakdown and tax per rate, issue (gapless number, due date from the
client's terms), payments, credit notes, CSV exports, ageing, roles."""
import csv
import os
import shutil
import io
import subprocess

from clientdata import PW, apikey, login, seed

ZONE = "Europe/London"


def setup_invoice(app, terms=14):
    """A demo client with 100 then 110 endpoints in November, £15 each,
    VAT 20%, and an hour of pay-as-you-go time: billed for December."""
    tid = seed(app)
    q = app.sql
    vat = q("INSERT INTO tax_rates (tenant_id, name, rate, is_default) VALUES (%s, 'UK VAT', 20, true)"
            " ON CONFLICT (tenant_id) WHERE is_default DO UPDATE SET rate = 20 RETURNING id", (tid,))[0][0]
    cid = q("INSERT INTO clients (tenant_id, name, payment_terms_days) VALUES (%s, 'Invoice Me Ltd', %s)"
            " RETURNING id", (tid, terms))[0][0]
    kid = q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate)"
            " VALUES (%s, %s, 'Managed', 'pay_as_you_go', '2026-11-01', 95) RETURNING id", (tid, cid))[0][0]
    q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, unit_price,"
      " tax_rate_id) VALUES (%s, %s, 'Managed endpoints', 'assets', 15, %s)", (tid, kid, vat))
    for n, since, first in ((100, "2026-10-01", 900000), (10, "2026-11-06", 900100)):
        q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
          " SELECT %s, g, %s, 'workstation', '', true, tstzrange(%s::timestamp AT TIME ZONE %s, NULL)"
          " FROM generate_series(%s::bigint, %s::bigint) g", (tid, cid, since, ZONE, first, first + n - 1))
    uid = q("SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", (tid,))[0][0]
    tk = q("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 99001, 'VPN down', %s)"
           " RETURNING id", (tid, cid))[0][0]
    q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
      " VALUES (%s, %s, %s, %s, '2026-11-12 10:00+00', 60, 'billable')", (tid, tk, cid, uid))
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert r.returncode == 0, r.stdout + r.stderr
    inv = q("SELECT id FROM invoices WHERE client_id = %s AND period_to = '2026-12-31'", (cid,))[0][0]
    return tid, cid, inv


def test_invoice_page_shows_breakdown_tax_and_balance(app):
    tid, cid, inv = setup_invoice(app)
    h = apikey(app, "manager")
    r = app.get(f"/api/v1/invoices/{inv}", headers=h)
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    assert (v["status_shown"], v["number"], v["client_name"]) == ("draft", "", "Invoice Me Ltd")
    assert [(l["kind"], l["quantity"], l["unit_price"], l["amount"]) for l in v["lines"]] == [
        ("assets", "108.3333333333", "15.00", "1625.00"), ("time", "1", "95.00", "95.00")]
    assert v["lines"][0]["breakdown"] == "5 days × 100 assets, 25 days × 110 assets"
    assert v["lines"][0]["days_count"] == 30
    assert v["lines"][1]["entries"][0]["raw_minutes"] == 60
    assert [(t["rate"], t["net"], t["tax"]) for t in v["taxes"]] == [("20", "1720.00", "344.00")]
    assert (v["subtotal"], v["tax"], v["total"], v["balance"]) == ("1720.00", "344.00", "2064.00", "2064.00")
    assert v["total_display"] == "2,064.00" and v["can_issue"] and not v["can_pay"]
    b = login(app)
    page = b.get(f"/invoices/{inv}").text
    assert "5 days × 100 assets, 25 days × 110 assets" in page
    assert "Tax at 20% on 1,720.00" in page and "2,064.00" in page


def test_issue_pay_and_credit(app):
    tid, cid, inv = setup_invoice(app, terms=14)
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/invoices/{inv}/payments", json={"amount": "10"}, headers=h)
    assert r.status_code == 409 and "issue the invoice" in r.text
    r = app.post(f"/api/v1/invoices/{inv}/issue", headers=h)
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    number = app.sql("SELECT invoice_prefix FROM tenants WHERE id = %s", (tid,))[0][0] + "0001"
    assert v["number"] == number and v["status_shown"] == "issued"
    issued = app.sql("SELECT issued_on, due_on - issued_on FROM invoices WHERE id = %s", (inv,))[0]
    assert issued[1] == 14
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 409
    # bad payments: 422 with field messages, nothing stored
    for body, field in [({"amount": "ten"}, "amount"), ({"amount": "-5"}, "amount"),
                        ({"amount": "5000.00"}, "amount"), ({"amount": "1", "paid_on": "2026-02-30"}, "paid_on"),
                        ({"amount": "1", "method": "barter"}, "method")]:
        r = app.post(f"/api/v1/invoices/{inv}/payments", json=body, headers=h)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    assert app.sql("SELECT count(*) FROM payments WHERE invoice_id = %s", (inv,)) == [(0,)]
    r = app.post(f"/api/v1/invoices/{inv}/payments",
                 json={"amount": "1,000.00", "paid_on": "2026-12-10", "method": "card", "reference": "R1"},
                 headers=h)
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    assert (v["paid"], v["balance"], v["status_shown"]) == ("1000.00", "1064.00", "partly_paid")
    # a partial credit note, then one for the rest: void, nothing owed
    r = app.post(f"/api/v1/invoices/{inv}/credit", json={"amount": "64.00", "reason": "goodwill"}, headers=h)
    assert r.status_code == 200 and r.json()["invoice"]["balance"] == "1000.00"
    r = app.post(f"/api/v1/invoices/{inv}/credit", json={"amount": "2000.01", "reason": "too much"}, headers=h)
    assert r.status_code == 422
    r = app.post(f"/api/v1/invoices/{inv}/credit", json={"reason": ""}, headers=h)
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = app.post(f"/api/v1/invoices/{inv}/credit", json={"reason": "cancelled"}, headers=h)
    v = r.json()["invoice"]
    assert [c["amount"] for c in v["credit_notes"]] == ["64.00", "2000.00"]
    assert (v["status_shown"], v["balance"]) == ("void", "-1000.00")
    actions = app.sql("SELECT action FROM audit_log WHERE object_type = 'invoice' AND object_id = %s"
                      " ORDER BY id", (inv,))
    assert [a for (a,) in actions] == ["invoice.create", "invoice.issue", "invoice.payment",
                                       "invoice.credit", "invoice.credit"]


def test_browser_issue_with_csrf_and_pages_are_valid_html(app):
    tid, cid, inv = setup_invoice(app)
    b = login(app)
    r = b.post(f"/invoices/{inv}/issue", {})
    assert r.status_code == 303 and r.headers["Location"] == f"/invoices/{inv}"
    r = b.post(f"/invoices/{inv}/payments", {"amount": "nope"})
    assert r.status_code == 422 and "enter an amount" in r.text
    for path in ("/invoices", f"/invoices/{inv}", "/invoices/ageing", "/invoices?status=overdue&period=2026-11",
                 f"/clients/{cid}/billing"):
        html = b.get(path).text
        t = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8",
                            "--drop-empty-elements", "no"], input=html, capture_output=True, text=True)
        assert not [l for l in t.stderr.splitlines() if "Error:" in l], (path, t.stderr)


def test_list_filters_csv_and_ageing(app):
    tid, cid, inv = setup_invoice(app)
    h = apikey(app, "manager")
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 200
    # due long ago: overdue by 60 days
    app.sql("UPDATE invoices SET issued_on = current_date - 74, due_on = current_date - 60 WHERE id = %s", (inv,))
    ids = lambda q: [i["id"] for i in app.get("/api/v1/invoices" + q, headers=h).json()["invoices"]]
    assert inv in ids("?status=overdue") and inv in ids(f"?client_id={cid}&overdue=1")
    assert inv not in ids("?status=draft") and inv in ids("?period=2026-12")
    assert inv not in ids("?period=2027-03")
    assert app.get("/api/v1/invoices?status=bogus", headers=h).status_code == 400
    assert app.get("/api/v1/invoices?period=2026-13", headers=h).status_code == 400
    rows = list(csv.DictReader(io.StringIO(app.get(f"/invoices.csv?client_id={cid}", headers=h)
                                           .content.decode("utf-8-sig"))))
    mine = [r for r in rows if r["id"] == str(inv)]
    assert mine and (mine[0]["total"], mine[0]["balance"], mine[0]["status"]) == ("2064.00", "2064.00", "overdue")
    lines = list(csv.DictReader(io.StringIO(app.get(f"/invoices/lines.csv?client_id={cid}", headers=h)
                                            .content.decode("utf-8-sig"))))
    assert [(l["kind"], l["amount"]) for l in lines if l["invoice_id"] == str(inv)] == [
        ("assets", "1625.00"), ("time", "95.00")]
    age = app.get("/api/v1/invoices/ageing", headers=h).json()
    row = [c for c in age["clients"] if c["client_id"] == cid][0]
    assert [b["amount"] for b in row["buckets"]] == ["0.00", "0.00", "2,064.00", "0.00", "0.00"]
    assert row["total"] == "2,064.00"


def test_technicians_may_not_see_invoices(app):
    tid, cid, inv = setup_invoice(app)
    h = apikey(app, "technician")
    for path in ("/invoices", f"/invoices/{inv}", "/invoices/ageing", "/invoices.csv"):
        assert app.get("/api/v1" + path, headers=h).status_code == 403, path
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 403
    assert app.get("/api/v1/invoices/999999", headers=apikey(app, "admin")).status_code == 404


def test_pdf_reads_like_an_invoice(app, tmp_path):
    tid, cid, inv = setup_invoice(app)
    app.sql("UPDATE clients SET address = '1 High Street, Leeds', tax_number = 'GB123456789'"
            " WHERE id = %s", (cid,))
    h = apikey(app, "manager")
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 200
    r = app.get(f"/invoices/{inv}/pdf", headers=h)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF")
    number = app.sql("SELECT number, due_on::text FROM invoices WHERE id = %s", (inv,))[0]
    assert f'filename="{number[0]}.pdf"' in r.headers["Content-Disposition"]
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(r.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    seller = app.sql("SELECT name FROM tenants WHERE id = %s", (tid,))[0][0]
    for want in (seller, "INVOICE", number[0], "Invoice Me Ltd", "1 High Street, Leeds",
                 "GB123456789", "Managed endpoints, 1 Nov 2026 – 30 Nov 2026",
                 "5 days × 100 assets, 25 days × 110 assets", "108.3333333333", "1,625.00",
                 "#99001 VPN down", "Tax at 20% on 1,720.00", "344.00", "Total GBP", "2,064.00",
                 "Balance due", f"by {number[1]}", "Payment terms: 14 days"):
        assert want in text, (want, text)
    # one page, drawn: render it to PNG for a look
    png = subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf), str(tmp_path / "page")],
                         capture_output=True)
    assert png.returncode == 0 and (tmp_path / "page.png").stat().st_size > 5000
    if os.environ.get("TD_SHOTS"):
        shutil.copy(tmp_path / "page.png", os.path.join(os.environ["TD_SHOTS"], "invoice-pdf.png"))
    assert app.get(f"/invoices/{inv}/pdf", headers=apikey(app, "technician")).status_code == 403


def test_client_preview_is_this_cycle_so_far(app):
    import datetime
    from zoneinfo import ZoneInfo
    tid = seed(app)
    q = app.sql
    today = datetime.datetime.now(ZoneInfo(ZONE)).date()
    cid = q("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Preview Ltd') RETURNING id", (tid,))[0][0]
    kid = q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate, flat_fee)"
            " VALUES (%s, %s, 'Care', 'pay_as_you_go', %s, 90, 100) RETURNING id",
            (tid, cid, today - datetime.timedelta(days=70)))[0][0]
    q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, unit_price)"
      " VALUES (%s, %s, 'Endpoints', 'assets', 30)", (tid, kid))
    q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
      " SELECT %s, 990000 + g, %s, 'workstation', '', true, tstzrange(now() - interval '90 days', NULL)"
      " FROM generate_series(1, 4) g", (tid, cid))
    uid = q("SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", (tid,))[0][0]
    tk = q("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 99002, 'Slow Wi-Fi', %s)"
           " RETURNING id", (tid, cid))[0][0]
    q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
      " VALUES (%s, %s, %s, %s, now() - interval '1 minute', 40, 'billable')", (tid, tk, cid, uid))
    h = apikey(app, "manager")
    r = app.get(f"/api/v1/clients/{cid}/billing", headers=h)
    assert r.status_code == 200, r.text
    [k] = r.json()["contracts"]
    first = today.replace(day=1)
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    days, full = (today - first).days + 1, (nxt - first).days
    asset = [l for l in k["lines"] if l["description"].startswith("Endpoints")][0]
    assert asset["breakdown"].startswith(f"{days} day{'s' if days > 1 else ''} × 4 assets")
    from decimal import Decimal, ROUND_HALF_UP
    want = (Decimal(4 * days * 30) / full).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert asset["amount"] == str(want)
    assert [(l["description"], l["amount"]) for l in k["lines"] if l["description"].startswith("#")] == [
        ("#99002 Slow Wi-Fi", "60.00")]
    assert k["total"] == f"{want + Decimal('60.00'):,}"
    # a preview writes nothing
    assert q("SELECT count(*) FROM invoices WHERE client_id = %s", (cid,)) == [(0,)]
    assert q("SELECT count(*) FROM billing_periods WHERE contract_id = %s", (kid,)) == [(0,)]
    b = login(app)
    assert "Slow Wi-Fi" in b.get(f"/clients/{cid}/billing").text
    assert app.get(f"/api/v1/clients/{cid}/billing", headers=apikey(app, "technician")).status_code == 403


def test_send_queues_the_invoice_in_the_outbox(app):
    tid, cid, inv = setup_invoice(app)
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/invoices/{inv}/send", headers=h)
    assert r.status_code == 409 and "issue the invoice" in r.text
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 200
    r = app.post(f"/api/v1/invoices/{inv}/send", headers=h)
    assert r.status_code == 422 and "to" in r.json()["error"]["fields"]
    ct = app.sql("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s, %s, 'Pat', 'pat@invoiceme.test')"
                 " RETURNING id", (tid, cid))[0][0]
    app.sql("UPDATE clients SET billing_contact_id = %s WHERE id = %s", (ct, cid))
    r = app.post(f"/api/v1/invoices/{inv}/send", headers=h)
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    assert v["status_shown"] == "sent" and v["sent"]
    [(to, subject, body, kind)] = app.sql("SELECT to_addr, subject, body_text, kind FROM outbox"
                                           " WHERE tenant_id = %s AND kind = 'invoice'", (tid,))
    assert to == "pat@invoiceme.test" and subject.startswith(f"Invoice {v['number']} from ")
    assert "Managed endpoints, 1 Nov 2026 – 30 Nov 2026: 1,625.00" in body
    assert f"Total GBP 2,064.00, balance 2,064.00, due {v['due_on']}." in body
    # sent invoices still take payments
    r = app.post(f"/api/v1/invoices/{inv}/payments", json={"amount": "2064"}, headers=h)
    assert r.status_code == 200 and r.json()["invoice"]["status_shown"] == "paid"


def test_drafts_take_ad_hoc_lines_and_deleting_one_rebills_its_period(app):
    tid, cid, inv = setup_invoice(app)
    h = apikey(app, "manager")
    r = app.post("/api/v1/invoices", json={"client_id": cid}, headers=h)
    assert r.status_code == 201, r.text
    manual = r.json()["invoice"]
    assert (manual["status_shown"], manual["contract_id"], manual["lines"]) == ("draft", None, [])
    for body, field in [({"description": "", "quantity": "1", "unit_price": "1"}, "description"),
                        ({"description": "X", "quantity": "0", "unit_price": "1"}, "quantity"),
                        ({"description": "X", "quantity": "1", "unit_price": "1.005"}, "unit_price"),
                        ({"description": "X", "quantity": "1", "unit_price": "1", "tax_rate_id": "999999"},
                         "tax_rate_id")]:
        r = app.post(f"/api/v1/invoices/{manual['id']}/lines", json=body, headers=h)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    r = app.post(f"/api/v1/invoices/{manual['id']}/lines",
                 json={"description": "Cabling", "quantity": "2.5", "unit_price": "40.10"}, headers=h)
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/invoices/{manual['id']}/lines",
                 json={"description": "Loyalty discount", "quantity": "1", "unit_price": "-10.00"}, headers=h)
    v = r.json()["invoice"]
    assert [(l["quantity"], l["amount"]) for l in v["lines"]] == [("2.5", "100.25"), ("1", "-10.00")]
    assert (v["subtotal"], v["tax"], v["total"]) == ("90.25", "18.05", "108.30")
    r = app.post(f"/api/v1/invoices/{manual['id']}/lines/{v['lines'][1]['id']}/delete", headers=h)
    assert r.status_code == 200 and r.json()["invoice"]["total"] == "120.30"
    # a billed line of a draft cannot be removed on its own
    billed = app.get(f"/api/v1/invoices/{inv}", headers=h).json()["invoice"]["lines"][0]["id"]
    assert app.post(f"/api/v1/invoices/{inv}/lines/{billed}/delete", headers=h).status_code == 404
    # deleting the billed draft releases its time; the next run bills it again, the same
    r = app.post(f"/api/v1/invoices/{inv}/delete", headers=h)
    assert r.status_code == 200 and r.json()["deleted"] == inv
    assert app.sql("SELECT count(*) FROM time_entries WHERE client_id = %s AND invoice_line_id IS NOT NULL",
                   (cid,)) == [(0,)]
    assert app.sql("SELECT state FROM billing_periods WHERE starts_on = '2026-12-01' AND contract_id ="
                   " (SELECT id FROM contracts WHERE client_id = %s)", (cid,)) == [("pending",)]
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert "1 invoice created, total 2,064.00" in r.stdout, r.stdout + r.stderr
    # issued: no more changes
    again = app.sql("SELECT id FROM invoices WHERE client_id = %s AND period_to = '2026-12-31'", (cid,))[0][0]
    assert app.post(f"/api/v1/invoices/{again}/issue", headers=h).status_code == 200
    assert app.post(f"/api/v1/invoices/{again}/delete", headers=h).status_code == 409
    assert app.post(f"/api/v1/invoices/{again}/lines", headers=h,
                    json={"description": "X", "quantity": "1", "unit_price": "1"}).status_code == 409
