"""tallydesk billing-run: the golden invoices of issue 8, exact to the
penny — prorated asset counts, block and overage with rollover,
pay-as-you-go at contract and technician rates, all-you-can-eat, reruns,
kill -9 mid-run, void by credit notes, quarterly proration and VAT."""
import os
import re
import signal
import subprocess
import time
from decimal import Decimal

import psycopg
import pytest

from tdharness import BIN

D = Decimal
ZONE = "Europe/London"


class Book:
    """A tenant of its own (no demo data to bill), built as the owner."""

    def __init__(self, app, slug="bill"):
        self.app = app
        self.tid = app.sql("INSERT INTO tenants (slug, name, time_zone, invoice_prefix)"
                           " VALUES (%s, 'Bill Co', %s, 'BC-') RETURNING id", (slug, ZONE))[0][0]
        self.tess = self.user("tess@bill.test", "Tess")
        self.rita = self.user("rita@bill.test", "Rita", rate="120.00")
        self.tickets = 0

    def q(self, sql, params=()):
        return self.app.sql(sql, params)

    def user(self, email, name, rate=None, role="technician"):
        return self.q("INSERT INTO users (tenant_id, email, name, role, hourly_rate)"
                      " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                      (self.tid, email, name, role, rate))[0][0]

    def client(self, name="Acme Ltd", terms=30):
        return self.q("INSERT INTO clients (tenant_id, name, payment_terms_days) VALUES (%s, %s, %s)"
                      " RETURNING id", (self.tid, name, terms))[0][0]

    def contract(self, cid, type_, starts, **cols):
        cols = {"name": type_.replace("_", " ").title(), **cols}
        names = ", ".join(cols)
        marks = ", ".join(["%s"] * len(cols))
        return self.q(f"INSERT INTO contracts (tenant_id, client_id, type, starts_on, {names})"
                      f" VALUES (%s, %s, %s, %s, {marks}) RETURNING id",
                      (self.tid, cid, type_, starts, *cols.values()))[0][0]

    def line(self, kid, desc, price, qty=None, tax=None):
        src = "fixed" if qty is not None else "assets"
        return self.q("INSERT INTO contract_lines (tenant_id, contract_id, description,"
                      " quantity_source, quantity, unit_price, tax_rate_id)"
                      " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                      (self.tid, kid, desc, src, qty, price, tax))[0][0]

    def assets(self, cid, n, since, until=None, first=None):
        """n billable assets of client cid counted from local midnight of
        `since` (a date) until local midnight of `until` (None: still)."""
        base = first if first is not None else self.q(
            "SELECT coalesce(max(asset_id), 0) + 1 FROM asset_history")[0][0]
        self.q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
               " SELECT %s, g, %s, 'workstation', '', true,"
               " tstzrange(%s::timestamp AT TIME ZONE %s,"
               "  CASE WHEN %s::date IS NULL THEN NULL ELSE %s::timestamp AT TIME ZONE %s END)"
               " FROM generate_series(%s::bigint, %s::bigint) g",
               (self.tid, cid, since, ZONE, until, until, ZONE, base, base + n - 1))

    def ticket(self, cid, subject="Printer on fire", type_="incident"):
        self.tickets += 1
        return self.q("INSERT INTO tickets (tenant_id, number, subject, client_id, type)"
                      " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                      (self.tid, 1000 + self.tickets, subject, cid, type_))[0][0]

    def entry(self, tkt, cid, minutes, at, user=None, kind="billable"):
        return self.q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id,"
                      " started_at, minutes, kind) VALUES (%s, %s, %s, %s,"
                      " %s::timestamp AT TIME ZONE %s, %s, %s) RETURNING id",
                      (self.tid, tkt, cid, user or self.tess, at, ZONE, minutes, kind))[0][0]

    def tax(self, name, rate, default=False):
        return self.q("INSERT INTO tax_rates (tenant_id, name, rate, is_default)"
                      " VALUES (%s, %s, %s, %s) RETURNING id", (self.tid, name, rate, default))[0][0]

    def run(self, *args, ok=True):
        r = self.app.run("billing-run", *args, timeout=120)
        if ok:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    def invoices(self, cid=None):
        return self.q("SELECT i.id, i.status, i.period_from::text, i.period_to::text,"
                      " t.subtotal, t.tax, t.total, t.balance FROM invoices i"
                      " JOIN invoice_totals t ON t.invoice_id = i.id"
                      " WHERE i.tenant_id = %s AND (%s::bigint IS NULL OR i.client_id = %s)"
                      " ORDER BY i.id", (self.tid, cid, cid))

    def lines(self, inv):
        return self.q("SELECT kind, description, breakdown, quantity, unit_price, amount,"
                      " tax_rate FROM invoice_lines WHERE invoice_id = %s ORDER BY position", (inv,))


@pytest.fixture
def book(app):
    return Book(app)


def one_invoice(book, cid):
    inv = book.invoices(cid)
    assert len(inv) == 1, inv
    return inv[0]


def test_a_asset_counts_prorated_by_day(book):
    cid = book.client()
    kid = book.contract(cid, "per_asset", "2026-11-01")
    book.line(kid, "Managed endpoints", "15.00")
    book.assets(cid, 100, "2026-10-01")
    book.assets(cid, 10, "2026-11-06")  # counted from the end of day 6
    out = book.run("--date", "2026-11-01").stdout
    assert "0 invoices created" in out, out  # first period: no usage yet
    assert book.q("SELECT state FROM billing_periods WHERE contract_id = %s", (kid,)) == [("skipped",)]
    out = book.run("--date", "2026-12-01").stdout
    assert "1 invoice created, total 1,625.00" in out, out
    inv = one_invoice(book, cid)
    assert inv[1:] == ("draft", "2026-11-01", "2026-12-31", D("1625.00"), D("0.00"),
                       D("1625.00"), D("1625.00"))
    [(kind, desc, brk, qty, price, amount, rate)] = book.lines(inv[0])
    assert (kind, amount, price) == ("assets", D("1625.00"), D("15.00"))
    assert qty == D("108.3333333333")
    assert desc == "Managed endpoints, 1 Nov 2026 – 30 Nov 2026"
    assert brk == "5 days × 100 assets, 25 days × 110 assets"
    # where it came from: one count per day, 30 days
    days = book.q("SELECT count(*), sum(count) FROM invoice_line_days d JOIN invoice_lines l"
                  " ON l.id = d.line_id WHERE l.invoice_id = %s", (inv[0],))
    assert days == [(30, 3250)]
    assert book.q("SELECT state, invoice_id FROM billing_periods WHERE contract_id = %s"
                  " ORDER BY starts_on", (kid,)) == [("skipped", None), ("billed", inv[0])]


def block_setup(book, rollover):
    cid = book.client("Block Ltd" if not rollover else "Rollover Ltd")
    kid = book.contract(cid, "block_hours", "2026-10-01" if rollover else "2026-11-01",
                        block_minutes=600, block_fee="750.00", overage_rate="85.00",
                        hourly_rate="95.00", block_rollover=rollover)
    t = book.ticket(cid)
    return cid, kid, t


def test_b_block_with_overage_and_internal_time(book):
    cid, kid, t = block_setup(book, False)
    book.entry(t, cid, 480, "2026-11-03 09:00")
    book.entry(t, cid, 330, "2026-11-20 09:00")
    book.entry(t, cid, 120, "2026-11-21 09:00", kind="internal")
    book.entry(t, cid, 60, "2026-12-02 09:00")  # next period: not yet
    book.run("--date", "2026-11-01")
    first = one_invoice(book, cid)
    assert [(l[0], l[5]) for l in book.lines(first[0])] == [("block_fee", D("750.00"))]
    book.run("--date", "2026-12-01")
    inv = book.invoices(cid)[1]
    lines = book.lines(inv[0])
    assert [(l[0], l[3], l[4], l[5]) for l in lines] == [
        ("block_fee", D("1.0000000000"), D("750.00"), D("750.00")),
        ("overage", D("3.5000000000"), D("85.00"), D("297.50"))]
    assert lines[1][2] == "13.50 h used of 10.00 h available: 3.50 h over (raw 13.50 h)"
    assert inv[4] == D("1047.50")
    # the two billable November entries are on the overage line, nothing else
    billed = book.q("SELECT minutes, invoice_line_id IS NOT NULL FROM time_entries"
                    " WHERE client_id = %s ORDER BY started_at", (cid,))
    assert billed == [(480, True), (330, True), (120, False), (60, False)]


def test_b_rollover_covers_the_overage(book):
    cid, kid, t = block_setup(book, True)
    book.entry(t, cid, 360, "2026-10-10 10:00")  # 6 h of 10: 4 h unused
    book.run("--date", "2026-11-01")
    assert book.q("SELECT block_used_minutes, block_carry_minutes FROM billing_periods"
                  " WHERE contract_id = %s AND starts_on = '2026-11-01'", (kid,)) == [(360, 240)]
    book.entry(t, cid, 480, "2026-11-03 09:00")
    book.entry(t, cid, 330, "2026-11-20 09:00")
    book.run("--date", "2026-12-01")
    inv = book.invoices(cid)[-1]
    over = [l for l in book.lines(inv[0]) if l[0] == "overage"][0]
    assert over[5] == D("0.00")
    assert over[2] == ("13.50 h used of 14.00 h available (4.00 h rolled over):"
                       " 0.00 h over (raw 13.50 h)")
    assert inv[4] == D("750.00")


def test_c_pay_as_you_go_contract_and_technician_rates(book):
    cid = book.client()
    book.contract(cid, "pay_as_you_go", "2026-11-01", hourly_rate="95.00")
    t = book.ticket(cid, "Email down")
    book.entry(t, cid, 75, "2026-11-04 10:00")
    book.entry(t, cid, 30, "2026-11-05 10:00")
    book.entry(t, cid, 60, "2026-11-06 10:00", user=book.rita)  # her own £120/h
    book.run("--date", "2026-12-01")
    inv = one_invoice(book, cid)
    lines = book.lines(inv[0])
    assert [(l[0], l[1], l[3], l[4], l[5]) for l in lines] == [
        ("time", "#1001 Email down", D("1.7500000000"), D("95.00"), D("166.25")),
        ("time", "#1001 Email down", D("1.0000000000"), D("120.00"), D("120.00"))]
    assert lines[0][2] == "1.75 h (raw 1.75 h, 2 entries)"
    assert inv[4] == D("286.25")
    srcs = book.q("SELECT e.raw_minutes, e.billed_minutes FROM invoice_line_entries e"
                  " JOIN invoice_lines l ON l.id = e.line_id WHERE l.invoice_id = %s"
                  " ORDER BY e.entry_id", (inv[0],))
    assert srcs == [(75, 75), (30, 30), (60, 60)]


def test_c_rounding_increment_and_minimum_per_entry(book):
    cid = book.client()
    book.contract(cid, "pay_as_you_go", "2026-11-01", hourly_rate="95.00",
                  time_increment_minutes=15, time_minimum_minutes=30)
    t = book.ticket(cid, "Slow PC")
    book.entry(t, cid, 7, "2026-11-04 10:00")    # minimum: 30
    book.entry(t, cid, 46, "2026-11-05 10:00")   # up to 60
    book.run("--date", "2026-12-01")
    [line] = book.lines(one_invoice(book, cid)[0])
    assert (line[3], line[5]) == (D("1.5000000000"), D("142.50"))
    assert line[2] == "1.50 h (raw 0.88 h, 2 entries)"


def test_d_all_you_can_eat_bills_no_time(book):
    cid = book.client()
    kid = book.contract(cid, "all_you_can_eat", "2026-11-01", flat_fee="500.00")
    book.line(kid, "Endpoints", "15.00")
    book.assets(cid, 10, "2026-10-01")
    t = book.ticket(cid)
    e = book.entry(t, cid, 180, "2026-11-10 09:00")
    book.run("--date", "2026-12-01")
    invs = book.invoices(cid)
    assert len(invs) == 2
    assert [(l[0], l[5]) for l in book.lines(invs[0][0])] == [("flat_fee", D("500.00"))]
    assert [(l[0], l[2], l[5]) for l in book.lines(invs[1][0])] == [
        ("flat_fee", "", D("500.00")), ("assets", "30 days × 10 assets", D("150.00"))]
    assert invs[1][6] == D("650.00")
    assert book.q("SELECT minutes, kind, invoice_line_id FROM time_entries WHERE id = %s",
                  (e,)) == [(180, "billable", None)]


def test_e_rerun_creates_nothing_and_bills_no_entry_twice(book):
    cid = book.client()
    kid = book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="95.00", flat_fee="10.00")
    t = book.ticket(cid)
    for day in (3, 9, 17):
        book.entry(t, cid, 45, f"2026-10-{day:02d} 11:00")
    first = book.run("--date", "2026-12-01").stdout
    assert "3 invoices created" in first, first  # Oct, Nov, Dec
    before = book.q("SELECT count(*) FROM invoices")[0][0]
    again = book.run("--date", "2026-12-01").stdout
    assert "0 clients, 0 invoices created" in again, again
    assert book.q("SELECT count(*) FROM invoices")[0][0] == before
    assert book.q("SELECT count(*), count(DISTINCT entry_id) FROM invoice_line_entries") == [(3, 3)]
    assert book.q("SELECT count(*) FROM time_entries WHERE invoice_line_id IS NULL") == [(0,)]
    assert book.q("SELECT count(*) FROM billing_periods WHERE contract_id = %s", (kid,)) == [(3,)]


def test_dry_run_prints_and_writes_nothing(book):
    cid = book.client("Preview Ltd")
    kid = book.contract(cid, "per_asset", "2026-11-01", flat_fee="100.00")
    book.line(kid, "Endpoints", "15.00")
    book.assets(cid, 4, "2026-10-01")
    book.run("--date", "2026-11-01")
    book.assets(cid, 2, "2026-11-16")
    r = book.run("--date", "2026-12-01", "--dry-run")
    assert "dry run: 1 client, 1 invoice would be created, total 175.00; nothing written" in r.stdout
    assert "Preview Ltd: Per Asset, period from 2026-12-01" in r.stdout
    assert "Endpoints, 1 Nov 2026 – 30 Nov 2026: 5 × 15.00 = 75.00 [15 days × 4 assets, 15 days × 6 assets]" in r.stdout
    assert "(previous 100.00, change +75.00)" in r.stdout, r.stdout
    assert "changed assets #" in r.stdout
    assert len(book.invoices(cid)) == 1
    assert book.q("SELECT count(*) FROM billing_periods WHERE contract_id = %s", (kid,)) == [(1,)]


def test_f_kill_9_mid_run_then_rerun_bills_each_once(book):
    n = 400
    cids = [r[0] for r in book.q(
        "INSERT INTO clients (tenant_id, name) SELECT %s, 'C' || g FROM generate_series(1, %s) g"
        " RETURNING id", (book.tid, n))]
    book.q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate, flat_fee)"
           " SELECT %s, c, 'PAYG', 'pay_as_you_go', '2026-11-01', 95, 20 FROM unnest(%s::bigint[]) c",
           (book.tid, cids))
    book.q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, unit_price)"
           " SELECT tenant_id, id, 'Endpoints', 'assets', 15 FROM contracts WHERE tenant_id = %s",
           (book.tid,))
    book.q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
           " SELECT %s, 100000 + g, c, 'workstation', '', true, tstzrange('2026-10-01', NULL)"
           " FROM unnest(%s::bigint[]) c, generate_series(1, 3) g2,"
           " LATERAL (SELECT c * 10 + g2 AS g) x", (book.tid, cids))
    book.q("INSERT INTO tickets (tenant_id, number, subject, client_id)"
           " SELECT %s, 5000 + row_number() OVER (), 'Work', c FROM unnest(%s::bigint[]) c",
           (book.tid, cids))
    book.q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
           " SELECT t.tenant_id, t.id, t.client_id, %s, '2026-11-10 10:00+00', 45, 'billable'"
           " FROM tickets t WHERE t.tenant_id = %s", (book.tess, book.tid))
    p = subprocess.Popen([BIN, "--config", book.app.conf, "billing-run", "--date", "2026-12-01"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        made = book.q("SELECT count(*) FROM invoices")[0][0]
        if made >= 20:
            break
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10  # a statement under way commits, whole
    while batch_backends(book) and time.time() < deadline:
        time.sleep(0.05)
    killed_at = book.q("SELECT count(*) FROM invoices")[0][0]
    assert 20 <= killed_at < 2 * n, f"the run was not killed mid-way ({killed_at})"
    out = book.run("--date", "2026-12-01").stdout
    assert f"{2 * n - killed_at} invoices created" in out, (killed_at, out)
    per = book.q("SELECT count(*) FROM invoices GROUP BY contract_id, period_to")
    assert len(per) == 2 * n and all(c == 1 for (c,) in per)
    assert book.q("SELECT count(*), count(DISTINCT entry_id) FROM invoice_line_entries") == [(n, n)]
    # every December invoice: £20 fee + 3 × £15 + 0.75 h × £95 = £136.25
    assert book.q("SELECT DISTINCT t.total FROM invoices i JOIN invoice_totals t ON t.invoice_id = i.id"
                  " WHERE i.period_to = '2026-12-31'") == [(D("136.25"),)]
    assert "0 invoices created" in book.run("--date", "2026-12-01").stdout


def issue(book, inv, on="2026-12-01"):
    with psycopg.connect(book.app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(book.tid),))
        return c.execute("SELECT billing_issue(%s, %s, NULL)", (inv, on)).fetchone()[0]


def test_g_void_contract_credits_invoices_and_releases_time(book):
    cid = book.client(terms=14)
    kid = book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="95.00", flat_fee="40.00")
    t = book.ticket(cid)
    e1 = book.entry(t, cid, 60, "2026-10-05 10:00")
    e2 = book.entry(t, cid, 90, "2026-11-05 10:00")
    book.run("--date", "2026-12-01")
    invs = book.invoices(cid)
    assert [i[6] for i in invs] == [D("40.00"), D("135.00"), D("182.50")]
    assert issue(book, invs[0][0]) == "BC-0001"
    assert issue(book, invs[1][0]) == "BC-0002"
    assert book.q("SELECT due_on::text FROM invoices WHERE id = %s", (invs[1][0],)) == [("2026-12-15",)]
    book.q("INSERT INTO payments (tenant_id, invoice_id, amount, paid_on, method)"
           " VALUES (%s, %s, 35.00, '2026-12-05', 'bank_transfer')", (book.tid, invs[1][0]))
    book.user("ada@bill.test", "Ada", role="admin")
    r = book.app.run("apikey", "create", "--tenant", "bill", "--name", "void", "--role", "admin")
    key = re.search(r"td_\S+", r.stdout).group(0)
    r = book.app.post(f"/api/v1/contracts/{kid}/void", json={"reason": "signed by mistake"},
                      headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    notes = book.q("SELECT invoice_id, number, amount FROM credit_notes ORDER BY id")
    assert notes == [(invs[0][0], "CN-0001", D("40.00")), (invs[1][0], "CN-0002", D("135.00"))]
    after = book.invoices(cid)
    assert [(i[0], i[1], i[7]) for i in after] == [
        (invs[0][0], "void", D("0.00")), (invs[1][0], "void", D("-35.00"))]  # the draft is gone
    assert book.q("SELECT id, invoice_line_id FROM time_entries ORDER BY id") == [(e1, None), (e2, None)]
    assert book.q("SELECT count(*) FROM billing_periods WHERE contract_id = %s", (kid,)) == [(2,)]
    # released time bills again under a new contract
    book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="100.00", name="Again")
    book.run("--date", "2026-11-01")
    assert book.q("SELECT count(*) FROM time_entries WHERE invoice_line_id IS NULL") == [(1,)]


def test_g_billed_entry_stays_locked_outside_billing(book):
    cid = book.client()
    book.contract(cid, "pay_as_you_go", "2026-11-01", hourly_rate="95.00")
    e = book.entry(book.ticket(cid), cid, 60, "2026-11-05 10:00")
    book.run("--date", "2026-12-01")
    with pytest.raises(psycopg.errors.CheckViolation):
        book.q("UPDATE time_entries SET invoice_line_id = NULL WHERE id = %s", (e,))


def test_h_quarterly_contract_starting_mid_quarter_is_prorated(book):
    cid = book.client()
    book.contract(cid, "per_asset", "2026-02-15", billing_frequency="quarterly", flat_fee="300.00")
    book.run("--date", "2026-02-15")
    [first] = book.invoices(cid)
    [line] = book.lines(first[0])
    # 15 Feb – 30 Apr is 75 of the quarter's 89 days: 300 × 75 / 89 = 252.808…
    assert (line[2], line[3], line[5]) == ("75 of 89 days", D("0.8426966292"), D("252.81"))
    assert line[1] == "Per Asset, 15 Feb 2026 – 30 Apr 2026"
    book.run("--date", "2026-05-01")
    second = book.invoices(cid)[1]
    assert [(l[1], l[5]) for l in book.lines(second[0])] == [
        ("Per Asset, 1 May 2026 – 31 Jul 2026", D("300.00"))]


def test_h_contract_end_bills_a_closing_period(book):
    cid = book.client()
    kid = book.contract(cid, "pay_as_you_go", "2026-10-01", ends_on="2026-11-15",
                        hourly_rate="60.00", flat_fee="30.00")
    t = book.ticket(cid)
    book.entry(t, cid, 30, "2026-11-14 10:00")
    book.run("--date", "2027-01-01")
    invs = book.invoices(cid)
    got = [[(l[0], l[5]) for l in book.lines(i[0])] for i in invs]
    assert got == [[("flat_fee", D("30.00"))],
                   [("flat_fee", D("15.00"))],   # 15 of 30 days
                   [("time", D("30.00"))]]       # the closing period
    assert book.run("--date", "2027-03-01").stdout.count("0 invoices created") == 1
    assert len(book.invoices(cid)) == 3
    assert book.q("SELECT count(*) FROM billing_periods WHERE contract_id = %s", (kid,)) == [(3,)]


def test_i_vat_per_rate_rounded_to_the_penny(book):
    vat = book.tax("UK VAT 20%", "20", default=True)
    zero = book.tax("Zero-rated", "0")
    cid = book.client()
    kid = book.contract(cid, "per_asset", "2026-11-01")
    for name in ("Backup", "Antivirus", "Licence"):
        book.line(kid, name, "10.03", qty="1", tax=vat)
    book.line(kid, "Domain", "12.50", qty="1", tax=zero)
    book.run("--date", "2026-11-01")
    inv = one_invoice(book, cid)
    # 30.09 at 20% = 6.018 -> 6.02 (per rate, not 3 × 2.01 per line)
    assert inv[4:7] == (D("42.59"), D("6.02"), D("48.61"))
    assert sorted({(l[6], l[5]) for l in book.lines(inv[0])}) == [
        (D("0.0000"), D("12.50")), (D("20.0000"), D("10.03"))]


def test_failed_client_is_named_and_others_still_bill(book):
    good = book.client("Good Ltd")
    bad = book.client("Bad Ltd")
    book.contract(good, "per_asset", "2026-11-01", flat_fee="10.00")
    kid = book.contract(bad, "per_asset", "2026-11-01", flat_fee="10.00")
    # a period row of another contract's invoice makes the bad client fail
    book.q("CREATE FUNCTION fail_bad() RETURNS trigger LANGUAGE plpgsql AS $$"
           " BEGIN IF NEW.contract_id = %s THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
           % int(kid))
    book.q("CREATE TRIGGER fail_bad BEFORE INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION fail_bad()")
    r = book.run("--date", "2026-11-01", ok=False)
    assert r.returncode == 1
    assert "2 clients, 1 invoice created" in r.stdout
    assert f"1 client failed (see the log), the others were billed: client {bad}" in r.stdout
    assert len(book.invoices(good)) == 1 and book.invoices(bad) == []


def test_bad_arguments(book):
    r = book.run("--date", "2026-13-01", ok=False)
    assert r.returncode == 2 and "not a date" in r.stderr
    r = book.run("--client", "x1", ok=False)
    assert r.returncode == 2 and "not a client id" in r.stderr
    r = book.run("--bogus", ok=False)
    assert r.returncode == 2 and "usage: tallydesk billing-run" in r.stderr


def test_client_option_bills_only_that_client(book):
    a, b = book.client("A"), book.client("B")
    book.contract(a, "per_asset", "2026-11-01", flat_fee="10.00")
    book.contract(b, "per_asset", "2026-11-01", flat_fee="10.00")
    assert "1 client, 1 invoice created" in book.run("--date", "2026-11-01", "--client", str(a)).stdout
    assert len(book.invoices(a)) == 1 and book.invoices(b) == []


def test_h_contract_ended_after_billing_in_advance_gives_days_back(book):
    cid = book.client()
    kid = book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="60.00", flat_fee="30.00")
    book.line(kid, "Backup", "9.00", qty="2")
    t = book.ticket(cid)
    book.entry(t, cid, 30, "2026-11-10 10:00")
    book.entry(t, cid, 30, "2026-11-20 10:00")  # after the end: not billed
    book.run("--date", "2026-11-01")  # October and November billed in advance
    book.q("UPDATE contracts SET ends_on = '2026-11-15', state = 'ended' WHERE id = %s", (kid,))
    book.run("--date", "2026-12-01")
    last = book.invoices(cid)[-1]
    got = [(l[0], l[1], l[2], l[3], l[5]) for l in book.lines(last[0])]
    assert got == [
        ("flat_fee", "Pay As You Go, 16 Nov 2026 – 30 Nov 2026",
         "contract ended 15 Nov 2026: 15 of 30 days back", D("-0.5000000000"), D("-15.00")),
        ("fixed", "Backup, 16 Nov 2026 – 30 Nov 2026",
         "contract ended 15 Nov 2026: 15 of 30 days back", D("-1.0000000000"), D("-9.00")),
        ("time", "#1001 Printer on fire", "0.50 h (raw 0.50 h, 1 entry)", D("0.5000000000"), D("30.00"))]
    assert last[6] == D("6.00")
    assert "0 invoices created" in book.run("--date", "2027-02-01").stdout
    assert book.q("SELECT count(*) FROM time_entries WHERE invoice_line_id IS NULL") == [(1,)]


def test_a_second_run_waits_for_the_lock_and_two_hosts_bill_once(book):
    cid = book.client()
    book.contract(cid, "per_asset", "2026-11-01", flat_fee="10.00")
    with psycopg.connect(book.app.db_url, autocommit=True) as c:
        c.execute("SELECT pg_advisory_lock(7342108)")  # app/billing.c BILLING_LOCK
        out = book.run("--date", "2026-11-01").stdout
        assert "another run holds the lock; nothing to do" in out
    assert book.invoices(cid) == []
    # Without the lock (two hosts racing): the period key lets one bill.
    import threading
    conns = [psycopg.connect(book.app.db_url) for _ in range(2)]
    results = [None, None]
    try:
        for c in conns:
            c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(book.tid),))
        results[0] = conns[0].execute("SELECT billing_run_client(%s, '2026-11-01', false)",
                                      (cid,)).fetchone()[0]

        def second():
            results[1] = conns[1].execute("SELECT billing_run_client(%s, '2026-11-01', false)",
                                          (cid,)).fetchone()[0]
            conns[1].commit()
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        assert t.is_alive()  # waits on the first one's period row
        conns[0].commit()
        t.join(10)
    finally:
        for c in conns:
            c.close()
    assert results[0][0]["invoice_id"] is not None
    assert results[1] == []  # nothing was due any more, or it was skipped
    assert len(book.invoices(cid)) == 1


def test_billing_day_changed_never_bills_a_day_twice(book):
    cid = book.client()
    kid = book.contract(cid, "per_asset", "2026-11-01", flat_fee="300.00")
    book.run("--date", "2026-11-01")
    book.q("UPDATE contracts SET billing_day = 15 WHERE id = %s", (kid,))
    book.run("--date", "2026-12-20")
    got = [(i[2], i[3], i[6]) for i in book.invoices(cid)]
    # Nov in full; 1-14 Dec of the cycle 15 Nov - 14 Dec (14 of 30 days); then
    # from 15 Dec (each invoice also spans the usage before it, in arrears)
    assert got == [("2026-11-01", "2026-11-30", D("300.00")),
                   ("2026-11-01", "2026-12-14", D("140.00")),
                   ("2026-12-01", "2027-01-14", D("300.00"))]
    assert book.q("SELECT lower(covers)::text, upper(covers)::text FROM billing_periods"
                  " WHERE contract_id = %s ORDER BY starts_on", (kid,)) == [
        ("2026-11-01", "2026-12-01"), ("2026-12-01", "2026-12-15"), ("2026-12-15", "2027-01-15")]


def phases_setup(app):
    """A demo client on a per-asset contract from 1 October: £200 a month
    and £15 per endpoint, 100 endpoints; October and November billed."""
    from clientdata import seed
    tid = seed(app)
    q = app.sql
    cid = q("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Phases Ltd') RETURNING id", (tid,))[0][0]
    kid = q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, flat_fee)"
            " VALUES (%s, %s, 'Managed', 'per_asset', '2026-10-01', 200) RETURNING id", (tid, cid))[0][0]
    lid = q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, unit_price)"
            " VALUES (%s, %s, 'Managed endpoints', 'assets', 15) RETURNING id", (tid, kid))[0][0]
    q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
      " SELECT %s, g, %s, 'workstation', '', true, tstzrange('2026-09-01 00:00+01', NULL)"
      " FROM generate_series(700001, 700100) g", (tid, cid))
    r = app.run("billing-run", "--date", "2026-11-01", "--client", str(cid))
    assert r.returncode == 0 and "2 invoices created" in r.stdout, r.stdout + r.stderr
    return tid, cid, kid, lid


def run_dec(app, cid):
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert r.returncode == 0 and "1 invoice created" in r.stdout, r.stdout + r.stderr
    inv = app.sql("SELECT id FROM invoices WHERE client_id = %s AND period_to = '2026-12-31'", (cid,))[0][0]
    lines = app.sql("SELECT kind, description, breakdown, quantity, unit_price, amount"
                    " FROM invoice_lines WHERE invoice_id = %s ORDER BY position", (inv,))
    sub = app.sql("SELECT subtotal FROM invoice_totals WHERE invoice_id = %s", (inv,))[0][0]
    return inv, lines, sub


def test_contract_changed_mid_period_bills_its_two_phases(app):
    from clientdata import apikey
    tid, cid, kid, lid = phases_setup(app)
    h = apikey(app, "manager")
    # £18 per endpoint from 11 November (the November usage is billed in
    # arrears on 1 December); £260 a month from 11 December (in advance).
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}",
                 json={"unit_price": "18.00", "effective_from": "2026-11-11"}, headers=h)
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}",
                 json={"flat_fee": "260.00", "effective_from": "2026-12-11"}, headers=h)
    assert r.status_code == 200, r.text
    # the history: what was in force before each change
    assert app.sql("SELECT lower(valid)::text, upper(valid)::text, flat_fee,"
                   " lines -> 0 ->> 'unit_price' FROM contract_terms WHERE contract_id = %s"
                   " ORDER BY upper(valid)", (kid,)) == [
        (None, "2026-11-11", D("200.00"), "15.00"),
        ("2026-11-11", "2026-12-11", D("200.00"), "18.00")]
    inv, lines, sub = run_dec(app, cid)
    assert lines == [
        ("flat_fee", "Managed, 1 Dec 2026 – 10 Dec 2026", "10 of 31 days",
         D("0.3225806452"), D("200.00"), D("64.52")),
        ("flat_fee", "Managed, 11 Dec 2026 – 31 Dec 2026", "21 of 31 days",
         D("0.6774193548"), D("260.00"), D("176.13")),
        ("assets", "Managed endpoints, 1 Nov 2026 – 10 Nov 2026",
         "10 days × 100 assets (10 of 30 days)", D("33.3333333333"), D("15.00"), D("500.00")),
        ("assets", "Managed endpoints, 11 Nov 2026 – 30 Nov 2026",
         "20 days × 100 assets (20 of 30 days)", D("66.6666666667"), D("18.00"), D("1200.00"))]
    assert sub == D("1940.65")
    # where it came from: a count per day of each phase
    assert app.sql("SELECT count(*), sum(d.count) FROM invoice_line_days d JOIN invoice_lines l"
                   " ON l.id = d.line_id WHERE l.invoice_id = %s", (inv,)) == [(30, 3000)]
    # January bills the new terms alone
    r = app.run("billing-run", "--date", "2027-01-01", "--client", str(cid))
    assert "1 invoice created, total" in r.stdout, r.stdout
    jan = app.sql("SELECT kind, breakdown, unit_price, amount FROM invoice_lines l JOIN invoices i"
                  " ON i.id = l.invoice_id WHERE i.client_id = %s AND i.period_to = '2027-01-31'"
                  " ORDER BY l.position", (cid,))
    assert jan == [("flat_fee", "", D("260.00"), D("260.00")),
                   ("assets", "31 days × 100 assets", D("18.00"), D("1800.00"))]


def test_effective_from_is_checked_and_name_edits_keep_no_history(app):
    from clientdata import apikey
    tid, cid, kid, lid = phases_setup(app)
    h = apikey(app, "manager")
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}",
                 json={"unit_price": "18.00", "effective_from": "11/11/2026"}, headers=h)
    assert r.status_code == 422 and "effective_from" in r.json()["error"]["fields"], r.text
    r = app.post(f"/api/v1/contracts/{kid}/lines/{lid}",
                 json={"unit_price": "18.00", "effective_from": "2026-11-20"}, headers=h)
    assert r.status_code == 200, r.text
    r = app.post(f"/api/v1/contracts/{kid}",
                 json={"flat_fee": "250.00", "effective_from": "2026-11-10"}, headers=h)
    assert r.status_code == 422, r.text
    assert "2026-11-20" in r.json()["error"]["fields"]["effective_from"]
    # a change of name is no change of terms: no new phase
    r = app.post(f"/api/v1/contracts/{kid}", json={"name": "Managed IT"}, headers=h)
    assert r.status_code == 200, r.text
    assert app.sql("SELECT count(*) FROM contract_terms WHERE contract_id = %s", (kid,)) == [(1,)]
    inv, lines, sub = run_dec(app, cid)
    assert [(l[0], l[2], l[4], l[5]) for l in lines] == [
        ("flat_fee", "", D("200.00"), D("200.00")),
        ("assets", "19 days × 100 assets (19 of 30 days)", D("15.00"), D("950.00")),
        ("assets", "11 days × 100 assets (11 of 30 days)", D("18.00"), D("660.00"))]


def test_hourly_rate_changed_mid_period_bills_each_entry_at_its_days_rate(app):
    from clientdata import apikey, seed
    tid = seed(app)
    q = app.sql
    cid = q("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Hourly Ltd') RETURNING id", (tid,))[0][0]
    kid = q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate)"
            " VALUES (%s, %s, 'PAYG', 'pay_as_you_go', '2026-11-01', 95) RETURNING id", (tid, cid))[0][0]
    uid = q("INSERT INTO users (tenant_id, email, name, role) VALUES (%s, 'hr@demo.test', 'HR',"
            " 'technician') RETURNING id", (tid,))[0][0]
    tk = q("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 88001, 'Server', %s)"
           " RETURNING id", (tid, cid))[0][0]
    for at in ("2026-11-05 10:00", "2026-11-20 10:00"):
        q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
          " VALUES (%s, %s, %s, %s, %s::timestamp AT TIME ZONE 'Europe/London', 60, 'billable')",
          (tid, tk, cid, uid, at))
    assert app.run("billing-run", "--date", "2026-11-01", "--client", str(cid)).returncode == 0
    r = app.post(f"/api/v1/contracts/{kid}",
                 json={"hourly_rate": "110.00", "effective_from": "2026-11-15"}, headers=apikey(app, "manager"))
    assert r.status_code == 200, r.text
    r = app.run("billing-run", "--date", "2026-12-01", "--client", str(cid))
    assert "1 invoice created" in r.stdout, r.stdout + r.stderr
    got = q("SELECT l.kind, l.breakdown, l.unit_price, l.amount FROM invoice_lines l JOIN invoices i"
            " ON i.id = l.invoice_id WHERE i.client_id = %s ORDER BY l.position", (cid,))
    assert got == [("time", "1.00 h (raw 1.00 h, 1 entry)", D("95.00"), D("95.00")),
                   ("time", "1.00 h (raw 1.00 h, 1 entry)", D("110.00"), D("110.00"))]


def test_sources_are_checked_per_statement(book):
    """The source tables' row foreign keys became statement checks
    (sql/0018): same rules — a source needs its line and time entry,
    deleting a line deletes its sources, a billed entry is never deleted."""
    cid = book.client()
    book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="95.00")
    e = book.entry(book.ticket(cid), cid, 60, "2026-10-05 10:00")
    book.run("--date", "2026-11-01")
    [(line, inv)] = book.q("SELECT l.id, l.invoice_id FROM invoice_lines l"
                           " JOIN invoice_line_entries x ON x.line_id = l.id WHERE x.entry_id = %s", (e,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        book.q("INSERT INTO invoice_line_entries (tenant_id, line_id, entry_id, raw_minutes,"
               " billed_minutes) VALUES (%s, %s, 987654321, 1, 1)", (book.tid, line))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        book.q("INSERT INTO invoice_line_days (tenant_id, line_id, day, count)"
               " VALUES (%s, 987654321, '2026-10-01', 1)", (book.tid,))
    with psycopg.connect(book.app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(book.tid),))
        assert c.execute("SELECT billing_delete_draft(%s)", (inv,)).fetchone()[0] is True
    assert book.q("SELECT count(*) FROM invoice_line_entries") == [(0,)]
    book.run("--date", "2026-11-01")  # the period is billed again
    [(inv2,)] = book.q("SELECT invoice_id FROM invoice_lines l JOIN invoice_line_entries x"
                       " ON x.line_id = l.id WHERE x.entry_id = %s", (e,))
    assert issue(book, inv2, "2026-11-01") == "BC-0001"
    with psycopg.connect(book.app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(book.tid),))
        c.execute("SELECT billing_credit(%s, NULL, 'wrong', '2026-11-02', NULL)", (inv2,))
        c.execute("SELECT set_config('app.billing_release', 'on', false)")
        c.execute("UPDATE time_entries SET invoice_line_id = NULL WHERE id = %s", (e,))
    # released, but still the source of the credited invoice's line
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        book.q("DELETE FROM time_entries WHERE id = %s", (e,))


def test_dry_run_of_missed_periods_totals_what_the_run_bills(book):
    """Three periods due at once: the dry run computes them one after the
    other as if each was written, so each entry counts once there too."""
    cid = book.client()
    book.contract(cid, "pay_as_you_go", "2026-10-01", hourly_rate="95.00", flat_fee="10.00")
    t = book.ticket(cid)
    book.entry(t, cid, 45, "2026-10-03 11:00")
    book.entry(t, cid, 45, "2026-11-09 11:00")
    dry = book.run("--date", "2026-12-01", "--dry-run").stdout
    assert "3 invoices would be created, total 172.50" in dry, dry
    real = book.run("--date", "2026-12-01").stdout
    assert "3 invoices created, total 172.50" in real, real


# --- Two worker processes (--jobs, sql/0026) -------------------------------

def many_clients(book, n):
    """n pay-as-you-go clients from 1 November (£20 a month, 3 endpoints at
    £15, 45 minutes at £95 in November): two periods each by 1 December."""
    cids = [r[0] for r in book.q(
        "INSERT INTO clients (tenant_id, name) SELECT %s, 'Many ' || g FROM generate_series(1, %s) g"
        " RETURNING id", (book.tid, n))]
    book.q("INSERT INTO contracts (tenant_id, client_id, name, type, starts_on, hourly_rate, flat_fee)"
           " SELECT %s, c, 'PAYG', 'pay_as_you_go', '2026-11-01', 95, 20 FROM unnest(%s::bigint[]) c",
           (book.tid, cids))
    book.q("INSERT INTO contract_lines (tenant_id, contract_id, description, quantity_source, unit_price)"
           " SELECT tenant_id, id, 'Endpoints', 'assets', 15 FROM contracts WHERE tenant_id = %s",
           (book.tid,))
    book.q("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
           " SELECT %s, 200000 + c * 10 + g, c, 'workstation', '', true, tstzrange('2026-10-01', NULL)"
           " FROM unnest(%s::bigint[]) c, generate_series(1, 3) g", (book.tid, cids))
    book.q("INSERT INTO tickets (tenant_id, number, subject, client_id)"
           " SELECT %s, 7000 + row_number() OVER (), 'Work', c FROM unnest(%s::bigint[]) c",
           (book.tid, cids))
    book.q("INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id, started_at, minutes, kind)"
           " SELECT t.tenant_id, t.id, t.client_id, %s, '2026-11-10 10:00+00', 45, 'billable'"
           " FROM tickets t WHERE t.tenant_id = %s", (book.tess, book.tid))
    return cids


def billed_total(book):
    return book.q("SELECT coalesce(sum(t.total), 0) FROM invoices i"
                  " JOIN invoice_totals t ON t.invoice_id = i.id WHERE i.tenant_id = %s",
                  (book.tid,))[0][0]


def batch_backends(book):
    """Server sessions of billing-runs (the parent's and its workers')."""
    return book.q("SELECT count(*) FROM pg_stat_activity"
                  " WHERE application_name = 'tallydesk billing-run'")[0][0]


def test_two_jobs_bill_each_period_once_and_the_summary_adds_up(book):
    n = 90
    many_clients(book, n)
    dry = book.run("--date", "2026-12-01", "--dry-run", "--jobs", "2").stdout
    # every client's preview printed once, whole, whichever worker made it
    assert len(re.findall(r"^Many \d+: PAYG, period from 2026-12-01", dry, re.M)) == n, dry
    assert f"dry run: {n} clients, {2 * n} invoices would be created" in dry
    r = book.run("--date", "2026-12-01", "--jobs", "2")
    total = billed_total(book)
    # Nov: £20 in advance; Dec: £20 + 3 × £15 + 0.75 h × £95 = £136.25
    assert total == n * (D("20.00") + D("136.25"))
    assert f"billing-run: {n} clients, {2 * n} invoices created, total {total:,}" in r.stdout, r.stdout
    assert "would be created, total " + f"{total:,}" in dry
    per = book.q("SELECT count(*) FROM invoices WHERE tenant_id = %s GROUP BY contract_id, period_to",
                 (book.tid,))
    assert len(per) == 2 * n and all(c == 1 for (c,) in per)
    assert book.q("SELECT count(*), count(DISTINCT entry_id) FROM invoice_line_entries") == [(n, n)]
    assert book.q("SELECT count(*) FROM time_entries WHERE tenant_id = %s AND invoice_line_id IS NULL",
                  (book.tid,)) == [(0,)]
    again = book.run("--date", "2026-12-01", "--jobs", "2").stdout
    assert "0 clients, 0 invoices created" in again, again
    assert batch_backends(book) == 0  # the workers' sessions are gone too


def test_progress_is_logged_without_a_terminal(book):
    """Under systemd (no terminal) a log line per 1,000 clients, counted
    across the workers, and no progress bar."""
    many_clients(book, 1100)
    r = book.run("--date", "2026-12-01", "--jobs", "3")
    assert "1100 clients, 2200 invoices created" in r.stdout, r.stdout
    logged = re.findall(r"billing-run: (\d+)/1100 clients, (\d+) invoices", r.stderr)
    assert logged == [("1000", "2000")], r.stderr
    assert "\r" not in r.stderr
    assert "failed" not in r.stdout + r.stderr


def test_failed_client_in_a_parallel_run_is_named_and_others_bill(book):
    cids = many_clients(book, 60)
    bad = cids[37]
    book.q("CREATE FUNCTION fail_bad() RETURNS trigger LANGUAGE plpgsql AS $$"
           " BEGIN IF NEW.client_id = %s THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
           % int(bad))
    book.q("CREATE TRIGGER fail_bad BEFORE INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION fail_bad()")
    r = book.run("--date", "2026-12-01", "--jobs", "2", ok=False)
    assert r.returncode == 1
    assert "60 clients, 118 invoices created" in r.stdout, r.stdout
    assert f"1 client failed (see the log), the others were billed: client {bad}" in r.stdout
    assert f"client {bad}" in r.stderr and "boom" in r.stderr
    assert book.invoices(bad) == []
    book.q("DROP TRIGGER fail_bad ON invoices")
    again = book.run("--date", "2026-12-01", "--jobs", "2").stdout
    assert "1 client, 2 invoices created" in again, again


def test_killed_parallel_run_resumes_and_bills_each_once(book):
    n = 400
    many_clients(book, n)
    p = subprocess.Popen([BIN, "--config", book.app.conf, "billing-run", "--date", "2026-12-01",
                          "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        if book.q("SELECT count(*) FROM invoices")[0][0] >= 40:
            break
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    # the workers die with their parent; each client they were writing
    # is one statement, committed whole or not at all
    deadline = time.time() + 10
    while batch_backends(book) and time.time() < deadline:
        time.sleep(0.05)
    assert batch_backends(book) == 0
    killed_at = book.q("SELECT count(*) FROM invoices")[0][0]
    assert 40 <= killed_at < 2 * n, f"the run was not killed mid-way ({killed_at})"
    # no client half-billed: its two periods came in one transaction
    assert book.q("SELECT count(*) FROM contracts k WHERE k.tenant_id = %s AND"
                  " (SELECT count(*) FROM invoices i WHERE i.contract_id = k.id) = 1",
                  (book.tid,)) == [(0,)]
    out = book.run("--date", "2026-12-01", "--jobs", "2").stdout
    assert f"{2 * n - killed_at} invoices created" in out, (killed_at, out)
    per = book.q("SELECT count(*) FROM invoices GROUP BY contract_id, period_to")
    assert len(per) == 2 * n and all(c == 1 for (c,) in per)
    assert book.q("SELECT count(*), count(DISTINCT entry_id) FROM invoice_line_entries") == [(n, n)]
    assert billed_total(book) == n * (D("20.00") + D("136.25"))


def test_second_run_during_a_parallel_run_does_nothing(book):
    n = 150
    many_clients(book, n)
    # each invoice takes 50 ms: the parallel run lasts ~7 s, the second
    # run tries the lock for 3 s
    book.q("CREATE FUNCTION slow_invoice() RETURNS trigger LANGUAGE plpgsql AS $$"
           " BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$")
    book.q("CREATE TRIGGER slow_invoice BEFORE INSERT ON invoices"
           " FOR EACH ROW EXECUTE FUNCTION slow_invoice()")
    first = subprocess.Popen([BIN, "--config", book.app.conf, "billing-run", "--date", "2026-12-01",
                              "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and book.q("SELECT count(*) FROM invoices")[0][0] < 10:
        time.sleep(0.01)
    second = book.run("--date", "2026-12-01", "--jobs", "2")
    assert "another run holds the lock; nothing to do" in second.stdout, second.stdout
    assert first.poll() is None, "the first run ended before the second gave up"
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert f"{n} clients, {2 * n} invoices created" in out, out
    per = book.q("SELECT count(*) FROM invoices GROUP BY contract_id, period_to")
    assert len(per) == 2 * n and all(c == 1 for (c,) in per)


def test_jobs_option_is_checked(book):
    for bad in ("0", "17", "two", ""):
        r = book.run("--jobs", bad, ok=False)
        assert r.returncode == 2 and "--jobs" in r.stderr, (bad, r.stderr)
    cid = book.client()
    book.contract(cid, "per_asset", "2026-11-01", flat_fee="10.00")
    r = book.run("--date", "2026-11-01", "--jobs", "1")
    assert "1 client, 1 invoice created" in r.stdout, r.stdout
