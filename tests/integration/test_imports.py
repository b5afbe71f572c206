"""CSV export and the two-step import: preview with per-row errors, then a
commit that imports everything or nothing."""
import csv
import io

from tdclient import Browser

PW = "correct horse battery"


def manager(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = Browser(app)
    assert b.login("morgan@demo.tallydesk.test", PW).status_code == 303
    b.get("/import")
    return b


def preview(b, kind, text):
    return b.post("/import/preview", {"kind": kind, "csv": text})


def test_a_clean_clients_file_previews_then_commits(app):
    b = manager(app)
    app.sql("SELECT 1")
    text = ("name,domain,contact_email,tags,payment_terms_days\r\n"
            "\"Acme, Ltd\",acme.example,it@acme.example,gold;managed,14\r\n"
            "Globex,globex.example,,silver,30\r\n")
    r = preview(b, "clients", text)
    assert r.status_code == 200, r.text[:800]
    assert "Acme, Ltd" in r.text and "Commit" in r.text
    assert app.sql("SELECT count(*) FROM clients")[0][0] == 0  # a preview writes no clients
    batch = app.sql("SELECT id FROM import_batches")[0][0]
    r = b.post(f"/import/{batch}/commit")
    assert r.status_code == 303
    rows = app.sql("SELECT name, tags, payment_terms_days FROM clients ORDER BY name")
    assert rows == [("Acme, Ltd", ["gold", "managed"], 14), ("Globex", ["silver"], 30)]
    assert app.sql("SELECT domain FROM client_domains ORDER BY domain") == [("acme.example",), ("globex.example",)]
    again = b.post(f"/import/{batch}/commit")
    assert again.status_code == 409
    assert app.sql("SELECT count(*) FROM clients")[0][0] == 2


def test_a_file_with_bad_rows_reports_them_and_imports_nothing(app):
    b = manager(app)
    text = ("name,domain,payment_terms_days\n"
            "Good One,good.example,30\n"
            ",nameless.example,30\n"
            "Bad Terms,terms.example,999\n"
            "\"Unclosed,quote.example,1\n")
    r = preview(b, "clients", text)
    assert r.status_code in (200, 422)
    assert "Commit import" not in r.text
    api = b.post("/api/v1/import/preview", {"kind": "clients", "csv": text},
                 headers={"Accept": "application/json"})
    body = api.json()
    errs = body.get("errors") or body.get("error", {}).get("fields")
    assert errs, body
    assert app.sql("SELECT count(*) FROM clients")[0][0] == 0


def test_export_is_csv_that_reimports(app):
    b = manager(app)
    b.get("/clients/new")
    assert b.post("/clients", {"name": "=HYPERLINK(\"x\")", "domain": "formula.example"}).status_code == 303
    assert b.post("/clients", {"name": "Plain Co"}).status_code == 303
    r = b.get("/clients/export.csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))  # BOM for Excel
    names = {row["name"] for row in rows}
    assert "Plain Co" in names
    # A formula is neutralised for spreadsheets.
    assert "'=HYPERLINK(\"x\")" in names


def test_contacts_import_resolves_clients_by_name_or_domain(app):
    b = manager(app)
    b.get("/clients/new")
    b.post("/clients", {"name": "Acme Ltd", "domain": "acme.example"})
    text = ("client,name,email,billing,vip\n"
            "Acme Ltd,Ann,ann@acme.example,yes,no\n"
            "acme.example,Bob,bob@acme.example,no,yes\n")
    r = preview(b, "contacts", text)
    assert r.status_code == 200, r.text[:800]
    batch = app.sql("SELECT id FROM import_batches")[0][0]
    assert b.post(f"/import/{batch}/commit").status_code == 303
    assert app.sql("SELECT name, is_billing, is_vip FROM contacts ORDER BY name") == [
        ("Ann", True, False), ("Bob", False, True)]
