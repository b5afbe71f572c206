"""Requests through nginx: pages, JSON twins, parsing, limits, errors."""
import http.client
import json
import os
import re

import pytest
import requests

from tdclient import Browser
from tdharness import SRC

PW = "correct horse battery"


@pytest.fixture
def signed_in(app):
    """The demo tenant's admin, signed in."""
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = Browser(app)
    assert b.login("admin@demo.tallydesk.test", PW).status_code == 303
    return b


def test_home_page_renders_the_layout_with_navigation(app, signed_in):
    r = signed_in.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    html = r.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    for label, href in [("Tickets", "/tickets"), ("Clients", "/clients"),
                        ("Contracts", "/contracts"), ("Invoices", "/invoices"),
                        ("Time", "/time"), ("Reports", "/reports"), ("Settings", "/settings")]:
        assert re.search(rf'href="{href}"[^>]*>.*?{label}', html, re.S), label
    assert "/static/app.css" in html
    assert r.headers["X-Request-Id"] in html


def test_home_page_shows_figures_from_the_database(app, signed_in):
    app.run("user", "invite", "--tenant", "demo", "--email", "a@b.test", "--role", "manager")
    app.run("user", "invite", "--tenant", "demo", "--email", "c@d.test", "--role", "manager")
    api = signed_in.get("/api/v1/", headers={"Accept": "application/json"}).json()
    stats = {s["label"]: s["value"] for s in api["stats"]}
    assert stats["Active users"] == 4 and stats["Pending invites"] == 2


def test_every_page_has_a_json_twin_with_the_same_model(app, signed_in):
    r = signed_in.get("/api/v1/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    model = r.json()
    assert model["title"] == "Home"
    assert {s["label"] for s in model["stats"]} >= {"Pending invites", "Active users"}
    r = signed_in.get("/invoices", headers={"Accept": "application/json"})
    assert r.json()["title"] == "Invoices" and "invoices" in r.json()


def test_healthz_reports_the_database(app):
    r = app.get("/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_unknown_path_is_a_404_page_and_a_json_404(app):
    r = app.get("/no/such/page")
    assert r.status_code == 404
    assert "text/html" in r.headers["Content-Type"]
    assert "404" in r.text
    r = app.get("/api/v1/no/such/thing")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and err["message"] and err["fields"] == {}


def test_wrong_method_is_405_with_allow(app):
    r = app.post("/healthz", data={"a": "b"})
    assert r.status_code == 405
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert "GET" in allow and "HEAD" in allow and "POST" not in allow
    r = app.get("/echo")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"


def test_head_answers_without_a_body(app):
    r = requests.head(app.url + "/login", timeout=10)
    assert r.status_code == 200
    assert r.text == ""


def test_a_path_with_markup_is_escaped_on_the_error_page(app):
    r = app.get("/%3Cscript%3Ealert(1)%3C/script%3E")
    assert r.status_code == 404
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;" in r.text


def test_query_and_form_are_percent_decoded(app):
    r = app.post("/echo?q=caf%C3%A9+au+lait&tag=a&tag=b",
                 data="name=Ren%C3%A9e%20%26%20Co&empty=&plus=1%2B1",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["q"] == "café au lait"
    assert body["form"] == {"name": "Renée & Co", "empty": "", "plus": "1+1"}


def test_multipart_upload_keeps_binary_files_intact(app):
    blob = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    r = app.post("/echo", data={"subject": "Printer jam ✓"},
                 files={"attachment": ("C:\\Users\\tess\\scan.pdf", blob, "application/pdf")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["form"]["subject"] == "Printer jam ✓"
    assert body["files"] == [{"field": "attachment", "filename": "scan.pdf",
                              "content_type": "application/pdf", "size": len(blob)}]


def test_json_bodies_are_parsed(app):
    r = app.post("/api/v1/echo", json={"subject": "Hi", "minutes": 15, "tags": ["a"]})
    assert r.status_code == 200
    assert r.json()["json"] == {"subject": "Hi", "minutes": 15, "tags": ["a"]}


def test_malformed_json_is_a_400_with_where_it_broke(app):
    r = app.post("/api/v1/echo", data='{"subject": "Hi",\n "minutes": }',
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "bad_request"
    assert "line 2" in err["message"]


def test_bad_percent_escape_is_a_400_with_a_message(app):
    r = app.post("/api/v1/echo", data="name=%zz",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert "name" in r.json()["error"]["message"]
    # requests would re-quote a bad escape; http.client sends it as it is.
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    conn.request("GET", "/?q=%4")
    resp = conn.getresponse()
    assert resp.status == 400
    assert "query string" in resp.read().decode()


def test_invalid_utf8_is_refused(app):
    r = app.post("/api/v1/echo", data=b"name=%C3%28",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert "utf-8" in r.json()["error"]["message"].lower()


def test_too_many_parameters_is_a_413(app):
    data = "&".join(f"p{i}=1" for i in range(1500))
    r = app.post("/api/v1/echo", data=data,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_broken_multipart_is_a_400(app):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue\r\n'
    r = app.post("/api/v1/echo", data=body,
                 headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 400
    assert r.json()["error"]["message"]


def test_a_body_over_our_limit_is_a_413_with_a_message(app_factory):
    app = app_factory(extra_conf="max_body = 64K\nmax_upload = 64K\n")
    r = app.post("/api/v1/echo", data=b"x=" + b"a" * 100_000,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert "limit is 65536" in r.json()["error"]["message"]
    assert app.get("/healthz").status_code == 200


def test_a_body_over_nginx_limit_is_refused_by_nginx(app):
    r = app.post("/echo", data=b"a" * (33 * 1024 * 1024),
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413


def test_static_assets_are_served_by_nginx_with_security_headers(app):
    r = app.get("/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/css")
    assert r.headers.get("Content-Encoding") == "gzip"
    assert "X-Request-Id" not in r.headers  # nginx answered, not the app
    with open(os.path.join(SRC, "views", "static", "app.css"), encoding="utf-8") as f:
        assert r.text == f.read()
    page = app.get("/login")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


def test_cookies_are_parsed(app):
    r = app.post("/api/v1/echo", json={}, cookies={"td_session": "abc", "theme": "dark"})
    assert r.json()["cookies"] == {"td_session": "abc", "theme": "dark"}


def test_garbage_cookies_do_not_break_the_page(app):
    r = app.get("/login", headers={"Cookie": "=;;; junk; a=1; ===="})
    assert r.status_code == 200


def test_hsts_is_sent_only_to_clients_on_tls(app):
    from tdharness import fcgi_request
    base = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/login", "HTTP_HOST": "psa.example",
            "CONTENT_LENGTH": "", "REMOTE_ADDR": "127.0.0.1"}
    headers, body = fcgi_request(app.socket, dict(base, HTTPS="on"))
    assert headers["Status"].startswith("200")
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    headers, _ = fcgi_request(app.socket, base)
    assert "Strict-Transport-Security" not in headers


def test_reports_page_lists_every_report_and_each_opens(app, signed_in):
    r = signed_in.get("/reports")
    assert r.status_code == 200
    for name, href in [("SLA hit rate", "/reports/sla"), ("Block hours", "/reports/blocks"),
                       ("Time", "/reports/time")]:
        assert name in r.text and f'href="{href}"' in r.text
        assert signed_in.get(href).status_code == 200
        csv = signed_in.get(href + ".csv")
        assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
