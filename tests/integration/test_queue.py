"""The ticket queue: list filters, search, paging, bulk actions, saved
views, tenant isolation and moves on the board."""
import re
import shutil
import subprocess
from html.parser import HTMLParser

import psycopg
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


def walk_pages(b, path, pages=10):
    """Follows the API's next cursor from path; the ids in the order seen,
    and the cursors it was given."""
    seen, cursors, url = [], [], path
    for _ in range(pages):
        j = b.get("/api/v1" + url).json()
        seen += [r["id"] for r in j["tickets"]]
        if j["next"] is None:
            break
        cursors.append(j["next"])
        url = f"{path}&after={j['next']}"
    return seen, cursors


def tidy(html):
    if not shutil.which("tidy"):
        return
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8", "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if "Error:" in l]
    assert not errors, "\n".join(errors)


def tenant_id(app, slug="demo"):
    return app.sql("SELECT id FROM tenants WHERE slug = %s", (slug,))[0][0]


def user_id(app, who):
    return app.sql("SELECT id FROM users WHERE email = %s", (f"{who}@demo.tallydesk.test",))[0][0]


class Maker:
    """Inserts clients and tickets as the owner, numbered per tenant."""

    def __init__(self, app, slug="demo"):
        self.app = app
        self.tenant = tenant_id(app, slug)
        self.number = 1000

    def _conn(self):
        c = psycopg.connect(self.app.db_url, autocommit=True)
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(self.tenant),))
        return c

    def client(self, name):
        with self._conn() as c:
            return c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, %s) RETURNING id",
                             (self.tenant, name)).fetchone()[0]

    def ticket(self, client, subject, status="new", priority=3, assignee=None, tags=(),
               description="", type_="incident", age_min=0):
        self.number += 1
        with self._conn() as c:
            return c.execute(
                "INSERT INTO tickets (tenant_id, number, subject, description, client_id, status,"
                " priority, assignee_id, tags, type, closed_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " CASE WHEN %s = 'closed' THEN now() END, now() - make_interval(mins => %s))"
                " RETURNING id",
                (self.tenant, self.number, subject, description, client, status, priority,
                 assignee, list(tags), type_, status, age_min)).fetchone()[0]

    def comment(self, ticket, body):
        with self._conn() as c:
            c.execute("INSERT INTO ticket_comments (tenant_id, ticket_id, public, body)"
                      " VALUES (%s, %s, false, %s)", (self.tenant, ticket, body))


def ids(b, path):
    r = b.get("/api/v1" + path)
    assert r.status_code == 200, r.text[:2000]
    return [t["id"] for t in r.json()["tickets"]]


@pytest.fixture
def world(demo):
    m = Maker(demo)
    acme = m.client("Acme Queue")
    beta = m.client("Beta Queue")
    tess = user_id(demo, "tess")
    alex = user_id(demo, "admin")
    t = {
        "new": m.ticket(acme, "Printer jammed", tags=["printer"], priority=2, age_min=5),
        "prog": m.ticket(acme, "Server slow", status="in_progress", assignee=tess, priority=1, age_min=4),
        "wait": m.ticket(beta, "Waiting on vendor", status="waiting", assignee=alex, age_min=3),
        "closed": m.ticket(beta, "Old closed thing", status="closed", age_min=2),
        "proj": m.ticket(beta, "Office move", type_="project", tags=["move"], priority=4, age_min=1),
    }
    m.comment(t["wait"], "the flux capacitor zebrafish is broken")
    return demo, m, t, {"acme": acme, "beta": beta, "tess": tess, "alex": alex}


def test_default_shows_open_only_and_renders(world):
    app, m, t, x = world
    b = login(app)
    r = b.get("/tickets")
    assert r.status_code == 200, r.text[:3000]
    assert "Printer jammed" in r.text and "Old closed thing" not in r.text
    assert "T-1001" in r.text and "badge-p2" in r.text and "badge-in-progress" in r.text
    tidy(r.text)
    tidy(b.get("/tickets/board").text)
    got = ids(b, "/tickets")
    assert set(got) == {t["new"], t["prog"], t["wait"], t["proj"]}
    j = b.get("/api/v1/tickets").json()
    assert j["next"] is None and j["filter"]["status"] == ["new", "in_progress", "waiting"]
    row = [r for r in j["tickets"] if r["id"] == t["prog"]][0]
    assert row["client"] == "Acme Queue" and row["assignee"] == "Tess Technician"
    assert row["ref"] == "T-1002" and row["status"] == "in_progress" and row["priority"] == 1
    r = b.get("/tickets/mine"); assert r.status_code == 200 and "My work" in r.text
    assert ids(b, "/tickets/mine") == [t["wait"]]
    r = b.get("/tickets?status=bogus"); assert r.status_code == 422


def test_filters(world):
    app, m, t, x = world
    b = login(app)
    assert ids(b, "/tickets?status=closed") == [t["closed"]]
    assert set(ids(b, "/tickets?status=closed&status=new")) == {t["closed"], t["new"], t["proj"]}
    assert ids(b, "/tickets?assignee=me") == [t["wait"]]
    assert set(ids(b, "/tickets?assignee=unassigned")) == {t["new"], t["proj"]}
    assert ids(b, f"/tickets?assignee={x['tess']}") == [t["prog"]]
    assert set(ids(b, f"/tickets?client_id={x['acme']}")) == {t["new"], t["prog"]}
    # By part of a name, any case: every client whose name holds it.
    assert set(ids(b, "/tickets?client=acme")) == {t["new"], t["prog"]}
    assert set(ids(b, "/tickets?client=e")) == {t["new"], t["prog"], t["wait"], t["proj"]}
    # The form sends the shown name back with the id; a new name wins.
    assert set(ids(b, f"/tickets?client_id={x['acme']}&client=Acme+Queue")) == {t["new"], t["prog"]}
    assert set(ids(b, f"/tickets?client_id={x['acme']}&client=beta")) == {t["wait"], t["proj"]}
    # Typed text is text, not a pattern.
    r = b.get("/api/v1/tickets?client=%25")
    assert r.status_code == 422 and r.json()["error"]["fields"]["client"] == "no client's name contains “%”"
    assert ids(b, "/tickets?tag=printer") == [t["new"]]
    assert ids(b, "/tickets?priority=1") == [t["prog"]]
    assert ids(b, "/tickets?type=project") == [t["proj"]]
    assert ids(b, "/tickets?sort=priority") == [t["prog"], t["new"], t["wait"], t["proj"]]
    assert ids(b, "/tickets?sort=number") == [t["new"], t["prog"], t["wait"], t["proj"]]
    assert ids(b, "/tickets") == [t["proj"], t["wait"], t["prog"], t["new"]]


def test_search_finds_comment_words(world):
    app, m, t, x = world
    b = login(app)
    assert ids(b, "/tickets?q=zebrafish") == [t["wait"]]
    assert ids(b, "/tickets?q=printer") == [t["new"]]
    assert ids(b, "/tickets?q=nothinglikethis") == []


@pytest.mark.parametrize("sort", ["updated", "created", "priority", "number", "sla"])
def test_search_for_a_common_word_pages_in_order(demo, sort):
    """A word on most tickets fills a page from the first tickets in the
    page's order (the walk); the last, short page comes from collecting the
    matches. Every match once, in order, whatever the sort."""
    m = Maker(demo)
    c = m.client("Printers Galore")
    want = []
    for i in range(40):
        tid = m.ticket(c, f"Job {i}", priority=1 + i % 4, age_min=i // 2)
        if i % 8 == 7:
            continue                        # no toner here
        if i % 2:
            m.comment(tid, f"the toner ran out again ({i})")
        else:
            with m._conn() as conn:         # in the description instead
                conn.execute("UPDATE tickets SET description = 'replace the toner' WHERE id = %s", (tid,))
        want.append(tid)
    b = login(demo)
    full = [r["id"] for r in b.get(f"/api/v1/tickets?sort={sort}&limit=100").json()["tickets"]]
    expected = [i for i in full if i in set(want)]     # the unsearched order
    seen, _ = walk_pages(b, f"/tickets?q=toner&sort={sort}&limit=8")
    assert seen == expected and len(seen) == 35
    assert ids(b, "/tickets?q=toner+zebrafish") == []


@pytest.mark.parametrize("sort", ["updated", "created", "priority", "number"])
def test_keyset_pagination_each_once(demo, sort):
    m = Maker(demo)
    c = m.client("Pager Ltd")
    made = set()
    for i in range(23):
        # equal update times on purpose: ties must be broken by id
        made.add(m.ticket(c, f"Ticket {i}", priority=1 + i % 4, age_min=i // 3))
    b = login(demo)
    seen, _ = walk_pages(b, f"/tickets?sort={sort}&limit=5")
    assert len(seen) == len(set(seen)) == 23 and set(seen) == made
    r = b.get(f"/tickets?sort={sort}&limit=5")
    assert 'rel="next"' in r.text
    assert b.get("/tickets?after=garbage").status_code == 422


@pytest.mark.parametrize("sort", ["updated", "priority"])
def test_paging_when_the_database_writes_dates_its_own_way(cluster, app_factory, sort):
    """A database whose DateStyle is not ISO ('SQL, DMY' writes 24/11/2026):
    the app asks for ISO on its own connections, so the queue's cursor (an
    update time) and its next pages still work, each ticket once."""
    db = cluster.new_db(cluster.template)
    cluster.admin(f"ALTER DATABASE {db} SET datestyle = 'SQL, DMY'")
    app = app_factory(db)
    assert app.sql("SHOW datestyle") == [("SQL, DMY",)]
    assert app.run("seed-demo", "--password", PW).returncode == 0
    m = Maker(app)
    c = m.client("Styled Ltd")
    made = {m.ticket(c, f"Ticket {i}", priority=1 + i % 4, age_min=i // 3) for i in range(12)}
    b = login(app)
    seen, cursors = walk_pages(b, f"/tickets?sort={sort}&limit=5&client_id={c}")
    assert cursors and all("T" in k and k.endswith("Z") for k in cursors), cursors
    assert len(seen) == len(set(seen)) == 12 and set(seen) == made
    assert 'rel="next"' in b.get(f"/tickets?sort={sort}&limit=5").text


# Within one second, some within one millisecond; not in id order.
MICROSECONDS = [0, 999999, 123456, 123455, 123999, 500000, 123000, 1, 999998, 123457]


def tickets_a_microsecond_apart(app):
    """Ten tickets of a new client updated within the same second (priority
    1 or 2); the client and the orders the queue must list them in."""
    m = Maker(app)
    c = m.client("Microsecond Ltd")
    made = [m.ticket(c, f"Ticket {i}", priority=1 + i % 2) for i in range(len(MICROSECONDS))]
    # one statement, so one now() and one second for them all
    app.sql("UPDATE tickets t SET updated_at = date_trunc('second', now())"
            " - interval '2 hours 5 minutes' + v.us * interval '1 microsecond'"
            " FROM unnest(%s::bigint[], %s::int[]) v (id, us) WHERE t.id = v.id", (made, MICROSECONDS))
    want = {sort: [r[0] for r in app.sql(f"SELECT id FROM tickets WHERE client_id = %s ORDER BY {order}", (c,))]
            for sort, order in (("updated", "updated_at DESC, id DESC"),
                                ("priority", "priority, updated_at DESC, id DESC"))}
    return c, want


def assert_pages_in_order(b, c, want):
    """Each ticket once, in order, however small the pages."""
    wrong = {}
    for sort, order in want.items():
        for limit in (1, 2, 3, 4):
            seen, cursors = walk_pages(b, f"/tickets?sort={sort}&limit={limit}&client_id={c}", pages=20)
            if seen != order:
                wrong[sort, limit] = cursors
    assert not wrong, f"missed or repeated tickets by (sort, limit): {sorted(wrong)}; cursors: {wrong}"


def test_paging_tells_apart_tickets_a_microsecond_apart(demo):
    """The next page starts right after the last ticket shown, to the
    microsecond: tickets updated in the same second (or millisecond) are
    each listed once, in order, by update time and by priority. The times
    shown are still whole seconds, rounded as they always were."""
    c, want = tickets_a_microsecond_apart(demo)
    b = login(demo)
    assert_pages_in_order(b, c, want)
    _, cursors = walk_pages(b, f"/tickets?sort=updated&limit=3&client_id={c}")
    # the last of each page of three: .5, .123456 and .000001 past the second
    fractions = [re.fullmatch(r"\d+\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", k) for k in cursors]
    assert [f and f.group(1) for f in fractions] == [".5", ".123456", ".000001"], cursors
    shown = {t["id"]: (t["updated_at"], t["updated"])
             for t in b.get(f"/api/v1/tickets?client_id={c}").json()["tickets"]}
    iso = dict(demo.sql("SELECT id, to_char(to_timestamp(date_part('epoch', updated_at)::int8)"
                        " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                        " FROM tickets WHERE client_id = %s", (c,)))
    assert shown == {i: (iso[i], "2h ago") for i in iso}


def test_paging_when_the_database_writes_floats_short(cluster, app_factory):
    """A database whose extra_float_digits is 0 writes float8 to 15 digits,
    which would cut update times to about 10 µs: the app asks for exact
    floats on its own connections, so paging is the same."""
    db = cluster.new_db(cluster.template)
    cluster.admin(f"ALTER DATABASE {db} SET extra_float_digits = 0")
    app = app_factory(db)
    assert app.sql("SHOW extra_float_digits") == [("0",)]
    assert app.run("seed-demo", "--password", PW).returncode == 0
    c, want = tickets_a_microsecond_apart(app)
    assert_pages_in_order(login(app), c, want)


def test_ages_and_due_times_read_right(demo):
    """The list and the board say how long ago each ticket changed and when
    its SLA falls due, the same on the page and in the API."""
    m = Maker(demo)
    c = m.client("Clockwork Ltd")
    t = {"just now": m.ticket(c, "Fresh", age_min=0), "5m ago": m.ticket(c, "Recent", age_min=5),
         "3h ago": m.ticket(c, "Older", age_min=185), "2d ago": m.ticket(c, "Old", age_min=2 * 1440 + 10)}
    due = {t["just now"]: ("interval '2 hours 30 minutes'", "due in 2h"),
           t["5m ago"]: ("interval '40 minutes 30 seconds'", "due in 40m"),
           t["3h ago"]: ("- interval '3 days 1 hour'", "overdue 3d"),
           t["2d ago"]: ("- interval '5 hours 10 minutes'", "overdue 5h")}
    for tid, (when, _) in due.items():
        demo.sql(f"UPDATE tickets SET first_response_at = NULL, response_due_at = now() + {when},"
                 " resolution_due_at = now() + interval '30 days' WHERE id = %s", (tid,))
    want = {tid: (age, due[tid][1]) for age, tid in t.items()}
    b = login(demo)
    api = b.get(f"/api/v1/tickets?client_id={c}").json()["tickets"]
    assert {a["id"]: (a["updated"], a["sla_label"]) for a in api} == want
    rows = QueueRows(b.get(f"/tickets?client_id={c}").text).rows
    assert {r["id"]: (r["cells"][10], r["badges"][2][1]) for r in rows} == want
    board = b.get(f"/api/v1/tickets/board?client_id={c}").json()["columns"]
    cards = {k["id"]: (k["updated"], k["sla_label"]) for col in board for k in col["cards"]}
    assert cards == want


def test_bulk_assign_status_skips_closed(world):
    app, m, t, x = world
    b = login(app)
    b.get("/tickets")
    r = b.post("/tickets/bulk", {"action": "assign", "value": str(x["tess"]),
                                 "id": [t["new"], t["closed"], t["proj"]]})
    assert r.status_code == 303, r.text[:2000]
    rows = dict(app.sql("SELECT id, assignee_id FROM tickets WHERE id = ANY(%s)",
                        ([t["new"], t["closed"], t["proj"]],)))
    assert rows[t["new"]] == x["tess"] and rows[t["proj"]] == x["tess"] and rows[t["closed"]] is None
    r = b.get(r.headers["Location"])
    assert "skipped 1 closed" in r.text
    r = b.post("/tickets/bulk", {"action": "status", "value": "waiting", "id": [t["new"], t["closed"]]})
    assert r.status_code == 303
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["new"],))[0][0] == "waiting"
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["closed"],))[0][0] == "closed"
    r = b.post("/tickets/bulk", {"action": "status", "value": "closed", "id": [t["new"]]})
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["new"],))[0][0] == "waiting"
    r = b.post("/tickets/bulk", {"action": "priority", "value": "1", "id": [t["proj"]]})
    r = b.post("/tickets/bulk", {"action": "tag", "value": "urgent", "id": [t["proj"]]})
    assert app.sql("SELECT priority, tags FROM tickets WHERE id = %s", (t["proj"],))[0] == (1, ["move", "urgent"])
    n = app.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.update' AND object_id = %s",
                (t["proj"],))[0][0]
    assert n == 3
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.update' AND object_id = %s",
                   (t["closed"],))[0][0] == 0


def test_saved_views_per_user(world):
    app, m, t, x = world
    a = login(app)
    a.get("/tickets?assignee=me")
    r = a.post("/tickets/views", {"name": "Mine waiting", "query": "assignee=me&status=waiting"})
    assert r.status_code == 303, r.text[:2000]
    r = a.get("/tickets")
    assert "Mine waiting" in r.text and "/tickets?assignee=me&amp;status=waiting" in r.text
    vid = app.sql("SELECT id FROM saved_views WHERE name = 'Mine waiting'")[0][0]
    tess = login(app, "tess")
    r = tess.get("/tickets")
    assert "Mine waiting" not in r.text
    assert tess.get("/api/v1/tickets").json()["views"] == []
    r = tess.post(f"/tickets/views/{vid}/delete", {})
    assert r.status_code == 404
    assert app.sql("SELECT count(*) FROM saved_views")[0][0] == 1
    r = a.post(f"/tickets/views/{vid}/delete", {})
    assert r.status_code == 303
    assert app.sql("SELECT count(*) FROM saved_views")[0][0] == 0


def test_other_tenant_never_appears(world):
    app, m, t, x = world
    assert app.run("tenant", "create", "--slug", "rival", "--name", "Rival").returncode == 0
    rm = Maker(app, "rival")
    rc = rm.client("Rival Client")
    other = rm.ticket(rc, "Rival secret zebrafish")
    b = login(app)
    for path in ("/tickets", "/tickets?status=new&status=closed", "/tickets?q=zebrafish",
                 "/tickets?sort=number", "/tickets?q=Rival"):
        assert other not in ids(b, path)
    # Another tenant's client is not a client here, by id or by name.
    r = b.get(f"/api/v1/tickets?client_id={rc}")
    assert r.status_code == 422 and "Rival" not in r.text
    r = b.get("/api/v1/tickets?client=Rival")
    assert r.status_code == 422 and r.json()["error"]["fields"]["client"] == "no client's name contains “Rival”"
    r = b.get("/tickets/board")
    assert "Rival secret" not in r.text
    b.get("/tickets")
    r = b.post(f"/tickets/{other}/move", {"status": "waiting"})
    assert r.status_code == 404


def test_move_persists_audited_and_refuses_close(world):
    app, m, t, x = world
    b = login(app)
    r = b.get("/tickets/board")
    assert r.status_code == 200, r.text[:3000]
    assert 'data-status="in_progress"' in r.text and "Old closed thing" in r.text
    r = b.post(f"/tickets/{t['new']}/move", {"status": "in_progress"})
    assert r.status_code == 303, r.text[:2000]
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["new"],))[0][0] == "in_progress"
    a = app.sql("SELECT before->>'status', after->>'status' FROM audit_log"
                " WHERE action = 'ticket.update' AND object_id = %s", (t["new"],))
    assert a == [("new", "in_progress")]
    # JSON with a neighbour: lands before it
    r = b.post(f"/tickets/{t['wait']}/move", {"status": "in_progress", "before_id": str(t["prog"])},
               headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    j = r.json()["ticket"]
    assert j["id"] == t["wait"] and j["status"] == "in_progress"
    col = [c for c in b.get("/api/v1/tickets/board").json()["columns"] if c["status"] == "in_progress"][0]
    order = [c["id"] for c in col["cards"]]
    assert order.index(t["wait"]) < order.index(t["prog"])
    r = b.post(f"/tickets/{t['new']}/move", {"status": "closed"}, headers={"Accept": "application/json"})
    assert r.status_code == 409
    assert "close guard" in r.json()["error"]["message"]
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["new"],))[0][0] == "in_progress"
    r = b.post(f"/tickets/{t['closed']}/move", {"status": "new"}, headers={"Accept": "application/json"})
    assert r.status_code == 409


def test_bulk_and_move_reject_bad_input(world):
    app, m, t, x = world
    b = login(app)
    b.get("/tickets")
    js = {"Accept": "application/json"}
    r = b.post("/tickets/bulk", {"action": "status", "value": "closed", "id": [t["new"]]}, headers=js)
    assert r.status_code == 422 and "value" in r.json()["error"]["fields"]
    r = b.post("/tickets/bulk", {"action": "explode", "value": "1", "id": [t["new"]]}, headers=js)
    assert r.status_code == 422 and "action" in r.json()["error"]["fields"]
    r = b.post("/tickets/bulk", {"action": "assign", "value": "me"}, headers=js)
    assert r.status_code == 422 and "ids" in r.json()["error"]["fields"]
    # a browser is sent back to the list, never off-site
    r = b.post("/tickets/bulk", {"action": "priority", "value": "9", "id": [t["new"]],
                                 "return_to": "//evil.example/"})
    assert r.status_code == 303 and r.headers["Location"] == "/tickets"
    r = b.post("/tickets/bulk", {"action": "priority", "value": "2", "id": [t["proj"]],
                                 "return_to": "/tickets?type=project"})
    assert r.status_code == 303 and r.headers["Location"] == "/tickets?type=project"
    # JSON callers get the result
    r = b.post("/tickets/bulk", {"action": "assign", "value": "me", "id": [t["new"], t["closed"]]}, headers=js)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == [t["new"]] and r.json()["skipped"] == ["T-1004"]
    assert app.sql("SELECT assignee_id FROM tickets WHERE id = %s", (t["new"],))[0][0] == x["alex"]
    # neighbours must be cards of the target column
    r = b.post(f"/tickets/{t['new']}/move", {"status": "waiting", "before_id": str(t["prog"])}, headers=js)
    assert r.status_code == 422
    r = b.post(f"/tickets/{t['new']}/move", {"status": "nonsense"}, headers=js)
    assert r.status_code == 422
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (t["new"],))[0][0] == "new"


def test_sla_filter_sort_and_column(demo):
    """Tickets get clocks from their tier (sql/0008); the queue filters and sorts by them."""
    m = Maker(demo)
    acme = m.client("Acme SLA")
    with m._conn() as c:
        old = c.execute(
            "INSERT INTO tickets (tenant_id, number, subject, client_id, created_at)"
            " VALUES (%s, 1001, 'Server down for a month', %s, now() - interval '30 days')"
            " RETURNING id", (m.tenant, acme)).fetchone()[0]
        fresh = c.execute(
            "INSERT INTO tickets (tenant_id, number, subject, client_id)"
            " VALUES (%s, 1002, 'Printer jammed just now', %s) RETURNING id",
            (m.tenant, acme)).fetchone()[0]
    b = login(demo)
    assert ids(b, "/tickets?sla=breached") == [old]
    assert ids(b, "/tickets?sla=ok") == [fresh]
    assert ids(b, "/tickets?sla=paused") == []
    assert ids(b, "/tickets?sort=sla") == [old, fresh]
    # Keyset pages in SLA order: each ticket exactly once.
    r = b.get("/api/v1/tickets?sort=sla&limit=1").json()
    assert [t["id"] for t in r["tickets"]] == [old] and r["next"]
    r2 = b.get(f"/api/v1/tickets?sort=sla&limit=1&after={r['next']}").json()
    assert [t["id"] for t in r2["tickets"]] == [fresh]
    rows = {t["id"]: t for t in b.get("/api/v1/tickets").json()["tickets"]}
    assert rows[old]["sla_state"] == "breached" and rows[old]["sla_label"].startswith("overdue ")
    assert rows[fresh]["sla_state"] == "ok" and rows[fresh]["sla_label"].startswith("due in ")
    page = b.get("/tickets?sla=breached").text
    assert "overdue" in page and "Server down for a month" in page and "Printer jammed" not in page
    r = b.get("/api/v1/tickets?sla=late")
    assert r.status_code == 422 and "breached" in r.json()["error"]["fields"]["sla"]


def test_board_column_says_when_it_goes_on(demo):
    m = Maker(demo)
    acme = m.client("Acme Board")
    with m._conn() as c:
        c.execute("INSERT INTO tickets (tenant_id, number, subject, client_id, board_rank)"
                  " SELECT %s, 2000 + i, 'Card ' || i, %s, i FROM generate_series(1, 205) i",
                  (m.tenant, acme))
        c.execute("INSERT INTO tickets (tenant_id, number, subject, client_id, status)"
                  " VALUES (%s, 3000, 'Only one in progress', %s, 'in_progress')", (m.tenant, acme))
    b = login(demo)
    j = b.get("/api/v1/tickets/board").json()
    cols = {c["status"]: c for c in j["columns"]}
    assert len(cols["new"]["cards"]) == 200 and cols["new"]["more"] is True
    assert [c["subject"] for c in cols["new"]["cards"][:2]] == ["Card 1", "Card 2"]
    assert len(cols["in_progress"]["cards"]) == 1 and cols["in_progress"]["more"] is False
    page = b.get("/tickets/board").text
    assert "200+" in page and "more are in this column" in page


def test_people_queues_and_names_follow_changes_at_once(world):
    """Every worker keeps the people, queues, saved views and status names
    between requests (sql/0022); a change shows on the very next page, on
    whichever worker serves it."""
    app, m, t, x = world
    b = login(app)

    def pages(n=6):
        # more requests than workers, so every worker answers some
        return [b.get("/tickets").text for _ in range(n)] + \
               [b.get(f"/tickets/{t['new']}").text for _ in range(n)]

    assert all(">Tess Technician</option>" in p for p in pages())
    r = b.post(f"/settings/users/{x['tess']}/deactivate", {})
    assert r.status_code == 303, r.text[:500]
    assert not any(">Tess Technician</option>" in p for p in pages())

    b.get("/settings/tickets")
    assert b.post("/settings/queues", {"name": "Night shift"}).status_code == 303
    assert all("Night shift" in p for p in pages())
    b.get("/settings/tickets")
    r = b.post("/settings/tickets", {"label_new": "Triage", "label_waiting": "", "label_in_progress": "",
                                     "label_closed": ""})
    assert r.status_code == 303
    assert all("Triage" in p for p in pages())

    # renamed clients and people: the list and the board say the new names
    assert all("Acme Queue" in b.get("/tickets").text for _ in range(6))
    b.get(f"/clients/{x['acme']}/edit")
    r = b.post(f"/clients/{x['acme']}", {"name": "Acme Renamed"})
    assert r.status_code == 303, r.text[:500]
    lists = [b.get("/tickets").text for _ in range(6)] + [b.get("/tickets/board").text for _ in range(6)] + \
        [b.get(f"/tickets/{t['new']}").text for _ in range(6)]
    assert all("Acme Renamed" in p and "Acme Queue" not in p for p in lists)
    app.sql("UPDATE users SET name = 'Alex Admin-Smith' WHERE id = %s", (x["alex"],))
    rows = [row for _ in range(6) for row in b.get("/api/v1/tickets").json()["tickets"]]
    assert {row["assignee"] for row in rows if row["id"] == t["wait"]} == {"Alex Admin-Smith"}

    b.get("/tickets")
    assert b.post("/tickets/views", {"name": "Urgent ones", "query": "priority=1"}).status_code == 303
    assert all("Urgent ones" in p for p in [b.get("/tickets").text for _ in range(6)])
    # another person's page never shows my saved view, kept or not
    tess_back = app.sql("UPDATE users SET active = true WHERE id = %s RETURNING id", (x["tess"],))
    assert tess_back
    other = login(app, "tess")
    assert not any("Urgent ones" in other.get("/tickets").text for _ in range(6))


class QueueRows(HTMLParser):
    """The queue table's rows as a person reads them: each cell's text, the
    links, the badges (class and text), the tags and the time of each row."""

    def __init__(self, html):
        super().__init__()
        self.rows, self.row, self.cell, self.spans, self.in_body = [], None, None, [], False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self.in_body = True
        elif not self.in_body:
            return
        elif tag == "tr":
            self.row = {"id": None, "cells": [], "links": [], "badges": [], "tags": [], "time": None}
            self.rows.append(self.row)
        elif tag == "td":
            self.cell = []
        elif tag == "input" and a.get("name") == "id":
            self.row["id"] = int(a["value"])
        elif tag == "a":
            self.row["links"].append(a["href"])
        elif tag == "time":
            self.row["time"] = a["datetime"]
        elif tag == "span":
            self.spans.append((a.get("class", "").split(), len(self.cell)))

    def handle_endtag(self, tag):
        if not self.in_body:
            return
        if tag == "tbody":
            self.in_body = False
        elif tag == "td":
            self.row["cells"].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "span":
            cls, start = self.spans.pop()
            text = "".join(self.cell[start:])
            if "badge" in cls:
                self.row["badges"].append((cls, text))
            elif "tag" in cls:
                self.row["tags"].append(text)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_list_rows_show_what_the_api_says(demo):
    """The page's rows are read straight from the query (a row source, not
    json objects): each cell must say what GET /api/v1/tickets says of the
    same ticket - assigned or not, tags, SLA badges, a paused clock - with
    its text escaped."""
    m = Maker(demo)
    acme = m.client("Acme <Rows> & Sons")
    tess = user_id(demo, "tess")
    t = {
        "assigned": m.ticket(acme, 'Printer "jammed" <again> & again', status="in_progress",
                             assignee=tess, priority=1, tags=["printer", "<b>loud</b>"], age_min=90),
        "unassigned": m.ticket(acme, "Nobody's yet", priority=4, age_min=3),
        "paused": m.ticket(acme, "Waiting on the vendor", status="waiting", priority=2, age_min=1),
        "project": m.ticket(acme, "Office move", type_="project", tags=["move"], age_min=2000),
    }
    with m._conn() as c:
        t["breached"] = c.execute(
            "INSERT INTO tickets (tenant_id, number, subject, client_id, created_at)"
            " VALUES (%s, 1100, 'Down for a month', %s, now() - interval '30 days')"
            " RETURNING id", (m.tenant, acme)).fetchone()[0]
    demo.sql("UPDATE tickets SET sla_paused_at = now() WHERE id = %s", (t["paused"],))
    b = login(demo)

    def both():
        api = b.get("/api/v1/tickets").json()["tickets"]
        r = b.get("/tickets")
        assert r.status_code == 200
        return api, QueueRows(r.text).rows

    # A minute may turn between the two requests ("due in 5m", "3m ago"): retry then.
    for _ in range(3):
        api, rows = both()
        want = [(a["id"], a["updated"], a["sla_label"]) for a in api]
        if [(r["id"], r["cells"][10], r["badges"][2][1] if len(r["badges"]) > 2 else None)
                for r in rows] == want:
            break
    by_id = {a["id"]: a for a in api}
    assert set(by_id) == set(t.values())
    assert [r["id"] for r in rows] == [a["id"] for a in api], "the page lists the API's tickets in its order"
    # the situations this test is about are all there
    assert by_id[t["assigned"]]["assignee"] == "Tess Technician" and by_id[t["unassigned"]]["assignee"] is None
    assert by_id[t["assigned"]]["tags"] == ["printer", "<b>loud</b>"]
    assert by_id[t["paused"]]["sla_state"] == "paused" and by_id[t["paused"]]["sla_label"] == "paused"
    assert by_id[t["breached"]]["sla_label"].startswith("overdue ")
    assert by_id[t["unassigned"]]["sla_label"].startswith("due in ")
    for row in rows:
        a = by_id[row["id"]]
        c = row["cells"]
        assert c[1] == a["ref"] and c[2] == a["subject"] and c[3] == a["client"], (c, a)
        assert row["links"][:3] == [a["url"], a["url"], f"/clients/{a['client_id']}"]
        assert c[4] == (a["assignee"] if a["assignee"] is not None else "Unassigned")
        assert row["badges"][0] == (["badge", a["status_class"]], a["status_label"]), (row, a)
        assert row["badges"][1] == (["badge", a["priority_class"]], a["priority_label"])
        if a["sla_label"] is None:
            assert len(row["badges"]) == 2 and c[7] == ""
        else:
            assert row["badges"][2] == (["badge", a["sla_class"]], a["sla_label"]) and c[7] == a["sla_label"]
        assert row["tags"] == a["tags"]
        assert c[9] == a["type"] and c[10] == a["updated"] and row["time"] == a["updated_at"]
    page = b.get("/tickets").text
    assert "&lt;b&gt;loud&lt;/b&gt;" in page and "<b>loud</b>" not in page
    assert "Printer &quot;jammed&quot; &lt;again&gt; &amp; again" in page


def test_people_menus_mark_the_one_chosen(world):
    """The assignee menus list every active person once, and mark the
    ticket's assignee (ticket page) or the person filtered on (queue);
    the JSON twin says the same."""
    app, m, t, x = world
    b = login(app)
    people = dict(app.sql("SELECT id, name FROM users WHERE active AND tenant_id ="
                          " (SELECT tenant_id FROM tickets WHERE id = %s)", (t["prog"],)))

    def menu(html, select_id):
        body = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S).group(1)
        opts = re.findall(r'<option value="(\d+)"( selected)?>([^<]*)</option>', body)
        return {int(v): n for v, _, n in opts}, [int(v) for v, s, _ in opts if s]

    got, chosen = menu(b.get(f"/tickets/{t['prog']}").text, "e-assignee")
    assert got == people and chosen == [x["tess"]]
    got, chosen = menu(b.get(f"/tickets/{t['new']}").text, "e-assignee")
    assert got == people and chosen == []
    got, chosen = menu(b.get(f"/tickets?assignee={x['tess']}").text, "f-assignee")
    assert got == people and chosen == [x["tess"]]
    j = b.get(f"/api/v1/tickets?assignee={x['tess']}").json()
    assert {p["id"]: p["name"] for p in j["user_choices"]} == people
    assert [p["id"] for p in j["user_choices"] if p["selected"]] == [x["tess"]]
