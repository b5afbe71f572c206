"""asset_daily_counts through GET /clients/:id/asset-counts: the billing basis."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from clientdata import *

INF = None


def hist(app, tid, aid, rows):
    """Replaces the asset's history with rows (client, kind, category, counts, from, to)."""
    app.sql("DELETE FROM asset_history WHERE asset_id = %s", (aid,))
    for (c, kind, cat, counts, lo, hi) in rows:
        app.sql("INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category, counts, valid)"
                " VALUES (%s, %s, %s, %s, %s, %s, tstzrange(%s::timestamptz, %s::timestamptz))",
                (tid, aid, c, kind, cat, counts, lo, hi))


def mk(app, tid, c, name):
    return app.sql("INSERT INTO assets (tenant_id, client_id, name, kind) VALUES (%s, %s, %s, 'workstation') RETURNING id",
                   (tid, c, name))[0][0]


def series(app, h, c, q):
    r = app.get(f"/api/v1/clients/{c}/asset-counts?{q}", headers=h)
    assert r.status_code == 200, r.text
    return {x["day"]: x["count"] for x in r.json()["series"]}


def days(d1, d2):
    d = date.fromisoformat(d1)
    while d <= date.fromisoformat(d2):
        yield d.isoformat()
        d += timedelta(days=1)


def model(rows_by_asset, client, tz, d1, d2, kinds=None, cats=None):
    """An independent count: rows valid at the last microsecond of each local day."""
    out = {}
    z = ZoneInfo(tz)
    for day in days(d1, d2):
        d = date.fromisoformat(day) + timedelta(days=1)
        end = datetime(d.year, d.month, d.day, tzinfo=z).astimezone(timezone.utc) - timedelta(microseconds=1)
        n = 0
        for rows in rows_by_asset:
            for (c, kind, cat, counts, lo, hi) in rows:
                lo_t = datetime.fromisoformat(lo)
                hi_t = datetime.fromisoformat(hi) if hi else None
                if c == client and counts and lo_t <= end and (hi_t is None or end < hi_t) \
                        and (not kinds or kind in kinds) and (not cats or cat in cats):
                    n += 1
        out[day] = n
    return out


def test_mid_month_changes(app):
    tid = seed(app)
    h = apikey(app)
    A = client(app, tid, "Acme")
    B = client(app, tid, "Beta")
    # Europe/London: BST starts 2024-03-31 01:00 UTC.
    scen = {
        "added": [(A, "workstation", "Laptop", True, "2024-03-15 10:00+00", INF)],
        "archived": [(A, "workstation", "Laptop", True, "2024-02-01 00:00+00", "2024-03-20 09:00+00"),
                     (A, "workstation", "Laptop", False, "2024-03-20 09:00+00", INF)],
        "recat": [(A, "workstation", "Laptop", True, "2024-01-01 00:00+00", "2024-03-10 12:00+00"),
                  (A, "workstation", "Desktop", True, "2024-03-10 12:00+00", INF)],
        "moved": [(A, "server", "", True, "2024-01-01 00:00+00", "2024-03-12 15:00+00"),
                  (B, "server", "", True, "2024-03-12 15:00+00", INF)],
        # archived at local midnight: the 24th still counts, the 25th does not
        "midnight": [(A, "workstation", "Laptop", True, "2024-01-01 00:00+00", "2024-03-25 00:00+00"),
                     (A, "workstation", "Laptop", False, "2024-03-25 00:00+00", INF)],
        # 23:30 UTC on the 31st is 00:30 BST on 1 April: still counts on the 31st
        "dst_late": [(A, "workstation", "Laptop", True, "2024-01-01 00:00+00", "2024-03-31 23:30+00")],
        # 22:30 UTC on the 31st is 23:30 BST on the 31st: does not count on the 31st
        "dst_early": [(A, "workstation", "Laptop", True, "2024-01-01 00:00+00", "2024-03-31 22:30+00")],
        # not billable in the middle of the month
        "unbilled": [(A, "network", "Switch", True, "2024-01-01 00:00+00", "2024-03-05 08:00+00"),
                     (A, "network", "Switch", False, "2024-03-05 08:00+00", "2024-03-08 08:00+00"),
                     (A, "network", "Switch", True, "2024-03-08 08:00+00", INF)],
    }
    for name, rows in scen.items():
        hist(app, tid, mk(app, tid, A, name), rows)
    q = "from=2024-03-01&to=2024-04-01"
    got = series(app, h, A, q)
    want = model(scen.values(), A, "Europe/London", "2024-03-01", "2024-04-01")
    assert got == want
    # spot checks, by hand
    assert got["2024-03-14"] == 6   # all but "added" and "moved"
    assert got["2024-03-15"] == 7
    assert got["2024-03-11"] == 7 and got["2024-03-12"] == 6  # moved away on the 12th
    assert got["2024-03-19"] == 7 and got["2024-03-20"] == 6  # archived on the 20th
    assert got["2024-03-24"] == 6 and got["2024-03-25"] == 5  # archived at midnight
    assert got["2024-03-31"] == 4  # dst_late counts, dst_early does not
    assert got["2024-04-01"] == 3
    assert got["2024-03-05"] == 6 - 0 and got["2024-03-04"] == 7
    gotB = series(app, h, B, q)
    assert gotB == model(scen.values(), B, "Europe/London", "2024-03-01", "2024-04-01")
    assert gotB["2024-03-11"] == 0 and gotB["2024-03-12"] == 1 and gotB["2024-04-01"] == 1
    # category filter
    got = series(app, h, A, q + "&category=Laptop")
    assert got == model(scen.values(), A, "Europe/London", "2024-03-01", "2024-04-01", cats={"Laptop"})
    assert got["2024-03-09"] == 5 and got["2024-03-10"] == 4  # recat leaves Laptop on the 10th
    got = series(app, h, A, q + "&category=Desktop&category=Laptop")
    assert got == model(scen.values(), A, "Europe/London", "2024-03-01", "2024-04-01", cats={"Laptop", "Desktop"})
    got = series(app, h, A, q + "&kind=server&kind=network")
    assert got == model(scen.values(), A, "Europe/London", "2024-03-01", "2024-04-01", kinds={"server", "network"})
    assert got["2024-03-11"] == 2 and got["2024-03-12"] == 1 and got["2024-03-06"] == 1 and got["2024-03-08"] == 2
    # the tenant's time zone decides where days end
    app.sql("UPDATE tenants SET time_zone = 'America/New_York' WHERE id = %s", (tid,))
    got = series(app, h, A, q)
    assert got == model(scen.values(), A, "America/New_York", "2024-03-01", "2024-04-01")
    app.sql("UPDATE tenants SET time_zone = 'Asia/Tokyo' WHERE id = %s", (tid,))
    got = series(app, h, A, "from=2024-02-25&to=2024-04-03&category=Laptop&kind=workstation")
    assert got == model(scen.values(), A, "Asia/Tokyo", "2024-02-25", "2024-04-03", kinds={"workstation"}, cats={"Laptop"})
    # CSV
    r = app.get(f"/api/v1/clients/{A}/asset-counts?{q}&format=csv", headers=h)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.text.split("\r\n")
    assert lines[0] == "day,count" and lines[1].startswith("2024-03-01,") and len(lines) == 34


def test_through_the_app(app):
    """Changes made through the pages are what the counts see."""
    tid = seed(app)
    b = login(app)
    h = apikey(app)
    A = client(app, tid, "Acme")
    B = client(app, tid, "Beta")
    r = app.post(f"/api/v1/clients/{A}/assets", json={"name": "pc", "kind": "workstation", "category": "Laptop"}, headers=h)
    aid = r.json()["asset"]["id"]
    app.post(f"/api/v1/clients/{A}/assets", json={"name": "free", "kind": "workstation", "billable": False}, headers=h)
    j = app.get(f"/api/v1/clients/{A}/asset-counts", headers=h).json()
    today = j["filter"]["to"]
    assert j["filter"]["from"][:8] == today[:8] and j["filter"]["from"].endswith("-01")
    assert j["series"][-1] == {"day": today, "count": 1, "label": j["series"][-1]["label"]}
    assert j["today"]["billable"] == 1 and j["today"]["active"] == 2
    assert j["today"]["by_kind"] == [{"kind": "workstation", "label": "Workstation", "billable": 1, "active": 2}]
    cats = {x["category"]: (x["billable"], x["active"]) for x in j["today"]["by_category"]}
    assert cats == {"": (0, 1), "Laptop": (1, 1)}
    assert "chart_svg" not in j
    # recategorise: today's Laptop count goes to 0, Desktop to 1
    app.post(f"/api/v1/assets/{aid}", json={"category": "Desktop"}, headers=h)
    s = series(app, h, A, f"from={today}&to={today}&category=Laptop")
    assert s == {today: 0}
    s = series(app, h, A, f"from={today}&to={today}&category=Desktop")
    assert s == {today: 1}
    # move to B: A 0, B 1
    app.post(f"/api/v1/assets/{aid}", json={"client_id": B}, headers=h)
    assert series(app, h, A, f"from={today}&to={today}") == {today: 0}
    assert series(app, h, B, f"from={today}&to={today}") == {today: 1}
    # archive: B 0
    app.post(f"/api/v1/assets/{aid}", json={"archived": True}, headers=h)
    assert series(app, h, B, f"from={today}&to={today}") == {today: 0}
    # the page: svg, table
    r = b.get(f"/clients/{A}/asset-counts?from=2024-02-01&to=2024-02-29")
    assert r.status_code == 200
    assert r.text.count('class="chart-bar"') == 29 and "<svg class=\"chart\"" in r.text
    assert "1 Feb 2024" in r.text and "format=csv" in r.text


def test_validation(app):
    tid = seed(app)
    h = apikey(app)
    b = login(app)
    A = client(app, tid, "Acme")
    for q in ("from=2024-02-30", "from=2024-13-01", "from=24-01-01", "from=2024-03-02&to=2024-03-01",
              "from=2023-01-01&to=2024-12-31", "kind=Bad-Kind", "category=" + "x" * 101):
        r = app.get(f"/api/v1/clients/{A}/asset-counts?{q}", headers=h)
        assert r.status_code == 422, q
    r = app.get(f"/api/v1/clients/{A}/asset-counts?from=2024-01-01&to=2025-02-03", headers=h)
    assert r.status_code == 200 and len(r.json()["series"]) == 400
    r = app.get(f"/api/v1/clients/{A}/asset-counts?from=2024-01-01&to=2025-02-04", headers=h)
    assert r.status_code == 422
    r = b.get(f"/clients/{A}/asset-counts?from=2024-03-02&to=2024-03-01")
    assert r.status_code == 422 and "the end is before the start" in r.text
    r = app.get(f"/api/v1/clients/{A}/asset-counts?from=2024-02-28&to=2024-03-01&category=it's%20<b>", headers=h)
    assert r.status_code == 200 and len(r.json()["series"]) == 3
    r = b.get(f"/clients/{A}/asset-counts?from=2024-02-28&to=2024-03-01&category=it's%20<b>")
    assert r.status_code == 200 and "<b>" not in r.text
