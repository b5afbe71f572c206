"""Invoice pages and their JSON twins: list with filters, the invoice with
its breakdown and tax per rate, issue (gapless number, due date from the
client's terms), payments, credit notes, CSV exports, ageing, roles."""
import csv
import os
import shutil
import io
import subprocess

import tdharness
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
                 f"/clients/{cid}/billing", "/invoices/settings"):
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
    # a line of another invoice is not found on this one
    other = v["lines"][0]["id"]
    assert app.post(f"/api/v1/invoices/{inv}/lines/{other}/delete", headers=h).status_code == 404
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


# ---- the PDF in the mail, branding, editing drafts, credit notes by rate ----

def png(width, height, rgb):
    """A solid-colour PNG, made by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf_text(pdf_bytes, tmp_path, name="x.pdf"):
    path = tmp_path / name
    path.write_bytes(pdf_bytes)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_sent_invoice_mail_carries_its_pdf_and_the_signature_verifies(app, tmp_path):
    import email
    import email.policy
    from test_mail_outbox import Sink
    tid, cid, inv = setup_invoice(app)
    app.sql("INSERT INTO mail_settings (tenant_id, support_address) VALUES (%s, 'billing@msp.test')"
            " ON CONFLICT (tenant_id) DO UPDATE SET support_address = 'billing@msp.test'", (tid,))
    ct = app.sql("INSERT INTO contacts (tenant_id, client_id, name, email) VALUES (%s, %s, 'Pat',"
                 " 'pat@invoiceme.test') RETURNING id", (tid, cid))[0][0]
    app.sql("UPDATE clients SET billing_contact_id = %s WHERE id = %s", (ct, cid))
    h = apikey(app, "manager")
    v = app.post(f"/api/v1/invoices/{inv}/issue", headers=h).json()["invoice"]
    number = v["number"]
    # the PDF was drawn and stored when the invoice was issued
    assert app.sql("SELECT f.content_type FROM invoices i JOIN stored_files f ON f.tenant_id = i.tenant_id"
                   " AND f.id = i.pdf_file_id WHERE i.id = %s", (inv,)) == [("application/pdf",)]
    assert app.post(f"/api/v1/invoices/{inv}/send", headers=h).status_code == 200
    [(oid, fname, ctype)] = app.sql(
        "SELECT a.outbox_id, a.filename, f.content_type FROM outbox_attachments a JOIN stored_files f"
        " ON f.tenant_id = a.tenant_id AND f.id = a.file_id WHERE a.tenant_id = %s", (tid,))
    assert (fname, ctype) == (f"{number}.pdf", "application/pdf")
    sink = Sink(tmp_path)
    sink.start()
    try:
        r = app.run("outbox-send", "--once", "--smtp", sink.url, timeout=120)
        assert r.returncode == 0 and "1 sent, 0 to retry, 0 failed" in r.stdout, r.stdout + r.stderr
    finally:
        sink.stop()
    [raw] = sink.messages()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m.get_content_type() == "multipart/mixed"
    assert m["To"] == "pat@invoiceme.test" and str(m["Subject"]).startswith(f"Invoice {number} from ")
    body = m.get_body(preferencelist=("plain",)).get_content()
    assert "Total GBP 2,064.00" in body and "attached as a PDF" in body
    [part] = list(m.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_filename() == f"{number}.pdf"
    assert part["Content-Transfer-Encoding"] == "base64"
    pdf = part.get_content()
    assert pdf.startswith(b"%PDF")
    # the very file stored at issue, the one the invoice page serves
    assert pdf == app.get(f"/invoices/{inv}/pdf", headers=h).content
    text = pdf_text(pdf, tmp_path)
    assert number in text and "2,064.00" in text and "Invoice Me Ltd" in text
    # DKIM over the whole multipart message still verifies, and tampering with the PDF breaks it
    sel, pub = app.sql("SELECT selector, dkim_public_b64 FROM mail_domains WHERE tenant_id = %s"
                       " AND domain = 'msp.test'", (tid,))[0]
    keys = tmp_path / "keys"
    keys.write_text(f"{sel}._domainkey.msp.test v=DKIM1; k=rsa; p={pub}\n")
    ok = subprocess.run([tdharness.BIN, "dkim-verify", "--key-file",
                         str(keys)], input=raw, capture_output=True)
    assert ok.returncode == 0 and ok.stdout.startswith(b"pass"), ok.stdout + ok.stderr
    b64 = part.get_payload().splitlines()[3].encode()
    bad = raw.replace(b64, b64[:10] + (b"A" if b64[10:11] != b"A" else b"B") + b64[11:], 1)
    assert bad != raw
    ko = subprocess.run([tdharness.BIN, "dkim-verify", "--key-file",
                         str(keys)], input=bad, capture_output=True)
    assert ko.returncode == 1
    assert app.sql("SELECT status FROM outbox WHERE id = %s", (oid,)) == [("sent",)]


def test_pdf_carries_the_logo_and_the_business_and_payment_details(app, tmp_path):
    tid, cid, inv = setup_invoice(app)
    admin = apikey(app, "admin")
    # the settings page and its JSON twin; bad input is 422 with the field
    r = app.post("/api/v1/invoices/settings", json={"tax_number": "X" * 51}, headers=admin)
    assert r.status_code == 422 and "tax_number" in r.json()["error"]["fields"]
    details = {"business_address": "Unit 4, Canal Wharf\nLeeds LS11 5PS", "tax_number": "GB 987 6543 21",
               "company_number": "09876543",
               "payment_details": "Northbank plc, sort code 12-34-56, account 87654321",
               "footer": "Registered in England and Wales"}
    r = app.post("/api/v1/invoices/settings", json=details, headers=admin)
    assert r.status_code == 200 and r.json()["settings"] == details, r.text
    assert app.get("/api/v1/invoices/settings", headers=apikey(app, "manager")).status_code == 403
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'invoice_settings.update'") == [(1,)]
    # the workspace logo (a red PNG), uploaded where the workspace's settings are
    b = login(app)
    r = b.post("/settings/logo", {}, files=[("logo", ("logo.png", png(200, 60, (220, 20, 20)), "image/png"))])
    assert r.status_code == 303, r.text[:300]
    page = b.get("/invoices/settings").text
    assert "Canal Wharf" in page and "/settings/logo" in page
    assert 'href="/invoices/settings"' in b.get("/invoices").text
    h = apikey(app, "manager")
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 200
    pdf = app.get(f"/invoices/{inv}/pdf", headers=h).content
    text = pdf_text(pdf, tmp_path)
    for want in ("Unit 4, Canal Wharf", "Leeds LS11 5PS", "VAT / tax number GB 987 6543 21",
                 "Company number 09876543", "Payment details",
                 "Northbank plc, sort code 12-34-56, account 87654321", "Registered in England and Wales",
                 "INVOICE", "2,064.00"):
        assert want in text, (want, text)
    # rendered at 72 dpi (1 px = 1 pt): the logo box at the top left is red, the page around it white
    (tmp_path / "x.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "72", "-singlefile", str(tmp_path / "x.pdf"), str(tmp_path / "page")],
                   check=True)
    data = (tmp_path / "page.ppm").read_bytes()
    head = data.split(b"\n", 3)
    width = int(head[1].split()[0])
    pixels = head[3]

    def rgb(x, y):
        i = (y * width + x) * 3
        return tuple(pixels[i:i + 3])
    logo = [rgb(x, y) for x in range(60, 220, 10) for y in range(55, 100, 5)]
    assert all(r > 180 and g < 80 and b_ < 80 for r, g, b_ in logo), logo[:5]
    assert rgb(300, 60) == (255, 255, 255) and rgb(20, 20) == (255, 255, 255)
    if os.environ.get("TD_SHOTS"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(tmp_path / "x.pdf"),
                        os.path.join(os.environ["TD_SHOTS"], "invoice-pdf-branded")])
    # issued: the same stored file, whatever the logo becomes later
    assert b.post("/settings/logo/delete", {}).status_code == 303
    assert app.get(f"/invoices/{inv}/pdf", headers=h).content == pdf


def test_editing_the_lines_of_a_draft_releases_time_and_issued_lines_never_change(app):
    tid, cid, inv = setup_invoice(app)
    zero = app.sql("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'Zero rated', 0) RETURNING id",
                   (tid,))[0][0]
    h = apikey(app, "manager")
    v = app.get(f"/api/v1/invoices/{inv}", headers=h).json()["invoice"]
    assets, time_line = v["lines"][0]["id"], v["lines"][1]["id"]
    entry = v["lines"][1]["entries"][0]["id"]
    for body, field in [({"description": ""}, "description"), ({"quantity": "abc"}, "quantity"),
                        ({"quantity": "0"}, "quantity"), ({"unit_price": "1.001"}, "unit_price"),
                        ({"tax_rate_id": "999999"}, "tax_rate_id")]:
        r = app.post(f"/api/v1/invoices/{inv}/lines/{assets}", json=body, headers=h)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    # a billed line changed: description, quantity and price; the amount and totals follow
    r = app.post(f"/api/v1/invoices/{inv}/lines/{assets}", headers=h,
                 json={"description": "Managed endpoints (agreed)", "quantity": "100", "unit_price": "15"})
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    line = v["lines"][0]
    assert (line["description"], line["quantity"], line["amount"], line["edited"]) == (
        "Managed endpoints (agreed)", "100", "1500.00", True)
    assert line["days_count"] == 30  # its sources stay
    assert (v["subtotal"], v["tax"], v["total"]) == ("1595.00", "319.00", "1914.00")
    # the time line moved to the zero rate: tax per rate
    r = app.post(f"/api/v1/invoices/{inv}/lines/{time_line}", json={"tax_rate_id": str(zero)}, headers=h)
    v = r.json()["invoice"]
    assert [(t["rate"], t["net"], t["tax"]) for t in v["taxes"]] == [("20", "1500.00", "300.00"),
                                                                    ("0", "95.00", "0.00")]
    assert v["total"] == "1895.00"
    # only the quantity sent: ten decimals, as the engine billed it; the rest stays
    r = app.post(f"/api/v1/invoices/{inv}/lines/{assets}", json={"quantity": "108.3333333333"}, headers=h)
    assert r.json()["invoice"]["lines"][0]["amount"] == "1625.00"
    # an ad-hoc line, then the billed time line removed: its entry goes back to be billed again
    r = app.post(f"/api/v1/invoices/{inv}/lines", headers=h,
                 json={"description": "Site visit", "quantity": "1", "unit_price": "60", "tax_rate_id": str(zero)})
    assert r.status_code == 200
    r = app.post(f"/api/v1/invoices/{inv}/lines/{time_line}/delete", headers=h)
    assert r.status_code == 200, r.text
    v = r.json()["invoice"]
    assert [l["description"] for l in v["lines"]] == ["Managed endpoints (agreed)", "Site visit"]
    assert (v["subtotal"], v["tax"], v["total"]) == ("1685.00", "325.00", "2010.00")
    assert app.sql("SELECT invoice_line_id FROM time_entries WHERE id = %s", (entry,)) == [(None,)]
    assert app.sql("SELECT count(*) FROM invoice_line_entries WHERE entry_id = %s", (entry,)) == [(0,)]
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'invoice'"
                                  " AND object_id = %s ORDER BY id", (inv,))]
    assert acts[-5:] == ["invoice.line_update"] * 3 + ["invoice.line_add", "invoice.line_delete"]
    [(before, after)] = app.sql("SELECT before, after FROM audit_log"
                                " WHERE action = 'invoice.line_update' ORDER BY id LIMIT 1")
    assert (before["amount"], after["amount"]) == ("1625.00", "1500.00")
    # the browser: the page offers the change, with CSRF
    b = login(app)
    page = b.get(f"/invoices/{inv}").text
    assert f'action="/invoices/{inv}/lines/{assets}"' in page and "Edited" in page
    r = b.post(f"/invoices/{inv}/lines/{assets}", {"description": "Endpoints", "quantity": "108.3333333333",
                                                    "unit_price": "15.00", "tax_rate_id": ""})
    assert r.status_code == 303
    # the next run bills the released entry, once
    r = app.run("billing-run", "--date", "2027-01-01", "--client", str(cid))
    assert r.returncode == 0, r.stdout + r.stderr
    [(line_id, inv2)] = app.sql("SELECT l.id, l.invoice_id FROM invoice_line_entries e JOIN invoice_lines l"
                                " ON l.id = e.line_id WHERE e.entry_id = %s", (entry,))
    assert inv2 != inv
    assert app.sql("SELECT invoice_line_id FROM time_entries WHERE id = %s", (entry,)) == [(line_id,)]
    import psycopg
    try:
        app.sql("UPDATE time_entries SET invoice_line_id = %s WHERE id = %s", (assets, entry))
        raise AssertionError("a billed entry was billed again")
    except psycopg.errors.CheckViolation:
        pass
    # issued: 409 for every change, and the database refuses too
    assert app.post(f"/api/v1/invoices/{inv}/issue", headers=h).status_code == 200
    r = app.post(f"/api/v1/invoices/{inv}/lines/{assets}", json={"quantity": "1"}, headers=h)
    assert r.status_code == 409 and "never changes" in r.text
    assert app.post(f"/api/v1/invoices/{inv}/lines/{assets}/delete", headers=h).status_code == 409
    r = b.post(f"/invoices/{inv}/lines/{assets}/delete", {})
    assert r.status_code == 409 and "never changes" in r.text
    try:
        app.sql("UPDATE invoice_lines SET amount = 1 WHERE id = %s", (assets,))
        raise AssertionError("an issued line changed")
    except psycopg.errors.CheckViolation:
        pass
    assert app.post(f"/api/v1/invoices/{inv}/lines/{assets}", json={"quantity": "1"},
                    headers=apikey(app, "technician")).status_code == 403


def test_credit_notes_split_by_tax_rate_to_the_penny(app, tmp_path):
    tid = seed(app)
    vat = app.sql("INSERT INTO tax_rates (tenant_id, name, rate, is_default) VALUES (%s, 'UK VAT', 20, true)"
                  " ON CONFLICT (tenant_id) WHERE is_default DO UPDATE SET rate = 20 RETURNING id", (tid,))[0][0]
    zero = app.sql("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'Zero rated', 0) RETURNING id",
                   (tid,))[0][0]
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Mixed Rates Ltd') RETURNING id", (tid,))[0][0]
    h = apikey(app, "manager")
    inv = app.post("/api/v1/invoices", json={"client_id": cid}, headers=h).json()["invoice"]["id"]
    for desc, qty, price, rate in (("Cabling", "2.5", "40.10", vat), ("Books", "1", "50.00", zero),
                                   ("Support", "3", "33.33", vat)):
        r = app.post(f"/api/v1/invoices/{inv}/lines", headers=h,
                     json={"description": desc, "quantity": qty, "unit_price": price, "tax_rate_id": str(rate)})
        assert r.status_code == 200, r.text
    v = app.post(f"/api/v1/invoices/{inv}/issue", headers=h).json()["invoice"]
    assert [(t["rate"], t["net"], t["tax"]) for t in v["taxes"]] == [("20", "200.24", "40.05"),
                                                                    ("0", "50.00", "0.00")]
    assert v["total"] == "290.29"
    cabling, books = v["lines"][0]["id"], v["lines"][1]["id"]
    url = f"/api/v1/invoices/{inv}/credit"
    # one way at a time; nets within what is left
    r = app.post(url, json={"reason": "x", "amount": "10", "net_20": "5"}, headers=h)
    assert r.status_code == 422 and "amount" in r.json()["error"]["fields"]
    r = app.post(url, json={"reason": "x", "net_20": "abc"}, headers=h)
    assert r.status_code == 422 and "net_20" in r.json()["error"]["fields"]
    r = app.post(url, json={"reason": "x", "net_0": "50.01"}, headers=h)
    assert r.status_code == 422 and "net" in r.json()["error"]["fields"]
    # 1. nets per rate: the tax follows at each rate, rounded
    r = app.post(url, json={"reason": "short delivery", "net_20": "33.33", "net_0": "10"}, headers=h)
    assert r.status_code == 200, r.text
    cn = r.json()["invoice"]["credit_notes"][-1]
    assert cn["amount"] == "50.00"
    assert [(t["rate"], t["net"], t["tax"]) for t in cn["taxes"]] == [("20", "33.33", "6.67"), ("0", "10.00", "0.00")]
    # 2. chosen lines: their nets by rate (the books are only 40.00 left: refused)
    r = app.post(url, json={"reason": "returned", f"line_{books}": True}, headers=h)
    assert r.status_code == 422 and "lines" in r.json()["error"]["fields"]
    r = app.post(url, json={"reason": "cabling not done", f"line_{cabling}": True}, headers=h)
    cn = r.json()["invoice"]["credit_notes"][-1]
    assert cn["amount"] == "120.30"
    assert [(t["rate"], t["net"], t["tax"], t["description"]) for t in cn["taxes"]] == [
        ("20", "100.25", "20.05", "Cabling")]
    # 3. an amount, tax included: spread over the rates by what is left at each
    r = app.post(url, json={"reason": "goodwill", "amount": "12.00"}, headers=h)
    cn = r.json()["invoice"]["credit_notes"][-1]
    assert cn["amount"] == "12.00"
    assert [(t["rate"], t["net"], t["tax"]) for t in cn["taxes"]] == [("20", "6.67", "1.33"), ("0", "4.00", "0.00")]
    # 4. the rest: exactly what is left at each rate; the invoice is void and nothing is owed
    r = app.post(url, json={"reason": "cancelled"}, headers=h)
    v = r.json()["invoice"]
    cn = v["credit_notes"][-1]
    assert cn["amount"] == "107.99"
    assert [(t["rate"], t["net"], t["tax"]) for t in cn["taxes"]] == [("20", "59.99", "12.00"), ("0", "36.00", "0.00")]
    assert (v["status_shown"], v["credited"], v["balance"]) == ("void", "290.29", "0.00")
    # per rate the credit notes add up to the invoice, to the penny
    assert app.sql("SELECT trim_scale(l.tax_rate)::text, sum(l.net)::text, sum(l.tax)::text"
                   " FROM credit_note_lines l JOIN credit_notes n ON n.id = l.credit_note_id"
                   " WHERE n.invoice_id = %s GROUP BY l.tax_rate ORDER BY l.tax_rate DESC", (inv,)) == [
        ("20", "200.24", "40.05"), ("0", "50.00", "0.00")]
    assert app.sql("SELECT count(*) FROM credit_notes n WHERE n.invoice_id = %s AND n.amount <>"
                   " (SELECT sum(net + tax) FROM credit_note_lines l WHERE l.credit_note_id = n.id)",
                   (inv,)) == [(0,)]
    assert app.post(url, json={"reason": "again"}, headers=h).status_code == 409
    page = login(app).get(f"/invoices/{inv}").text
    assert "At 20%: net 59.99, tax 12.00" in page and "At 0%: net 36.00, tax 0.00" in page
    # the credit note as a document: net and tax per rate, like the invoice
    r = app.get(cn["pdf_url"], headers=h)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf"
    assert f'filename="{cn["number"]}.pdf"' in r.headers["Content-Disposition"]
    text = pdf_text(r.content, tmp_path)
    for want in ("CREDIT NOTE", cn["number"], f"Credits invoice {v['number']}", "Credit at 20%", "Credit at 0%",
                 "59.99", "Tax at 20% on 59.99", "12.00", "36.00", "Subtotal", "95.99",
                 "Total credited GBP", "107.99", "Reason: cancelled"):
        assert want in text, (want, text)
    assert "Balance due" not in text
    if os.environ.get("TD_SHOTS"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(tmp_path / "x.pdf"),
                        os.path.join(os.environ["TD_SHOTS"], "credit-note-pdf")])
    assert app.get(cn["pdf_url"], headers=apikey(app, "technician")).status_code == 403
    assert app.get(f"/invoices/{inv}/credit-notes/999999/pdf", headers=h).status_code == 404


def test_a_full_credit_note_on_a_mixed_invoice_mirrors_its_tax_per_rate(app):
    tid = seed(app)
    vat = app.sql("INSERT INTO tax_rates (tenant_id, name, rate, is_default) VALUES (%s, 'UK VAT', 20, true)"
                  " ON CONFLICT (tenant_id) WHERE is_default DO UPDATE SET rate = 20 RETURNING id", (tid,))[0][0]
    zero = app.sql("INSERT INTO tax_rates (tenant_id, name, rate) VALUES (%s, 'Zero rated', 0) RETURNING id",
                   (tid,))[0][0]
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Whole Ltd') RETURNING id", (tid,))[0][0]
    h = apikey(app, "manager")
    inv = app.post("/api/v1/invoices", json={"client_id": cid}, headers=h).json()["invoice"]["id"]
    for desc, qty, price, rate in (("A", "1", "0.03", vat), ("B", "1", "0.03", vat), ("C", "7", "1.11", zero)):
        app.post(f"/api/v1/invoices/{inv}/lines", headers=h,
                 json={"description": desc, "quantity": qty, "unit_price": price, "tax_rate_id": str(rate)})
    v = app.post(f"/api/v1/invoices/{inv}/issue", headers=h).json()["invoice"]
    # tax on the rate's sum (0.06 × 20% = 0.012 → 0.01), not per line
    assert [(t["rate"], t["net"], t["tax"]) for t in v["taxes"]] == [("20", "0.06", "0.01"), ("0", "7.77", "0.00")]
    b = login(app)
    r = b.post(f"/invoices/{inv}/credit", {"reason": "wrong client", "amount": ""})
    assert r.status_code == 303
    v = app.get(f"/api/v1/invoices/{inv}", headers=h).json()["invoice"]
    [cn] = v["credit_notes"]
    assert cn["amount"] == v["total"] == "7.84"
    assert [(t["rate"], t["net"], t["tax"]) for t in cn["taxes"]] == [("20", "0.06", "0.01"), ("0", "7.77", "0.00")]
