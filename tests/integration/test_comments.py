"""Ticket comments and attachments: POST /tickets/:id/comments, attachments, edits, downloads."""
import os
import threading
import zlib
import struct
from urllib.parse import quote

from clientdata import PW, apikey, client, login, other_tenant, seed


def ticket(app, tid, number=1001, status="new"):
    cid = app.sql("SELECT id FROM clients WHERE tenant_id = %s ORDER BY id LIMIT 1", (tid,))
    cid = cid[0][0] if cid else client(app, tid, "Acme")
    closed = "now()" if status == "closed" else "NULL"
    return app.sql(
        "INSERT INTO tickets (tenant_id, number, subject, client_id, status, closed_at)"
        f" VALUES (%s, %s, 'Printer on fire', %s, %s, {closed}) RETURNING id",
        (tid, number, cid, status))[0][0]


def png_bytes():
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"\x00\xff\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def counts(app):
    return app.sql("SELECT (SELECT count(*) FROM ticket_comments), (SELECT count(*) FROM ticket_attachments),"
                   " (SELECT count(*) FROM blobs)")[0]


def test_public_and_internal_comments_in_order(app):
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    r = b.post(f"/tickets/{t}/comments", {"body": "We are on it", "visibility": "public"})
    assert r.status_code == 303, r.text[:1000]
    c1 = app.sql("SELECT max(id) FROM ticket_comments")[0][0]
    assert r.headers["Location"] == f"/tickets/{t}#comment-{c1}"
    r = b.post(f"/tickets/{t}/comments", {"body": "Toner is the culprit", "visibility": "internal"})
    assert r.status_code == 303
    rows = app.sql("SELECT body, public, author_user_id IS NOT NULL FROM ticket_comments"
                   " WHERE ticket_id = %s ORDER BY created_at, id", (t,))
    assert rows == [("We are on it", True, True), ("Toner is the culprit", False, True)]
    assert app.sql("SELECT first_response_at IS NOT NULL FROM tickets WHERE id = %s", (t,))[0][0]
    # API with JSON {body, public}
    key = apikey(app)
    r = app.post(f"/api/v1/tickets/{t}/comments", json={"body": "From the API", "public": True}, headers=key)
    assert r.status_code == 201, r.text
    j = r.json()["comment"]
    assert j["public"] is True and j["body"] == "From the API" and j["ticket_id"] == t
    assert j["author_user_id"] is None and j["attachments"] == []
    assert app.sql("SELECT author_label, author_user_id FROM ticket_comments WHERE id = %s",
                   (j["id"],))[0] == ("tadmin", None)
    # empty body without files
    r = app.post(f"/api/v1/tickets/{t}/comments", json={"body": "  "}, headers=key)
    assert r.status_code == 422
    after = app.sql("SELECT after FROM audit_log WHERE action = 'comment.create' ORDER BY id LIMIT 1")[0][0]
    assert after == {"ticket_id": t, "public": True, "attachments": []}
    assert "We are on it" not in str(app.sql("SELECT after FROM audit_log WHERE action = 'comment.create'"))


def test_attachments_download_byte_identical_and_sniffed(app):
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    blob = os.urandom(200 * 1024)
    text = "héllo wörld ✓\nline two\n".encode()
    png = png_bytes()
    files = [("file", ("data.bin", blob, "text/plain")),
             ("file", ("notes ü;x.txt", text, "application/pdf")),
             ("file", ("pic.html", png, "text/html"))]
    r = b.post(f"/tickets/{t}/comments", {"body": "", "visibility": "internal"}, files=files)
    assert r.status_code == 303, r.text[:1000]
    body = app.sql("SELECT body FROM ticket_comments WHERE ticket_id = %s", (t,))[0][0]
    assert body.startswith("Attached: data.bin")
    rows = app.sql("SELECT id, filename, content_type, size FROM ticket_attachments WHERE ticket_id = %s ORDER BY id", (t,))
    assert [(f, ct, s) for (_, f, ct, s) in rows] == [
        ("data.bin", "application/octet-stream", len(blob)),
        ("notes ü;x.txt", "text/plain; charset=utf-8", len(text)),
        ("pic.html", "image/png", len(png))]
    ids = [row[0] for row in rows]
    r = b.get(f"/attachments/{ids[0]}")
    assert r.status_code == 200 and r.content == blob
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="data.bin"')
    r = b.get(f"/attachments/{ids[1]}")
    assert r.status_code == 200 and r.content == text
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    cd = r.headers["Content-Disposition"]
    assert cd.startswith('inline; filename="notes _;x.txt"'), cd
    assert "filename*=UTF-8''" + quote("notes ü;x.txt", safe="") in cd
    r = b.get(f"/attachments/{ids[2]}")
    assert r.status_code == 200 and r.content == png
    assert r.headers["Content-Type"] == "image/png"
    assert "nosniff" in r.headers["X-Content-Type-Options"]
    assert r.headers["Content-Disposition"].startswith('inline; filename="pic.html"')
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert "private" in r.headers["Cache-Control"]
    # attachments without a comment, via the API; an SVG is never inline
    key = apikey(app)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    r = app.post(f"/api/v1/tickets/{t}/attachments", headers=key,
                 files=[("file", ("x.svg", svg, "image/png")), ("file", ("d.docx", b"PK\x03\x04rest", "text/plain"))])
    assert r.status_code == 201, r.text
    a = r.json()["attachments"]
    assert [x["content_type"] for x in a] == [
        "image/svg+xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]
    r = b.get(a[0]["url"])
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert app.sql("SELECT comment_id FROM ticket_attachments WHERE id = %s", (a[0]["id"],))[0][0] is None
    acts = [x for (x,) in app.sql("SELECT action FROM audit_log WHERE action LIKE 'attachment.%'")]
    assert acts == ["attachment.create", "attachment.create"]
    # The ticket page: the comment's three files under the comment; the two
    # sent alone in the ticket's own list and each an item of the timeline.
    j = app.get(f"/api/v1/tickets/{t}", headers=key).json()
    said = [x for x in j["timeline"] if x["is_comment"]]
    assert [f["filename"] for f in said[0]["attachments"]] == ["data.bin", "notes ü;x.txt", "pic.html"]
    assert [f["id"] for f in said[0]["attachments"]] == ids and said[0]["has_attachments"] is True
    alone = [x for x in j["timeline"] if x["is_attachment"]]
    assert [(x["filename"], x["size"], x["url"]) for x in alone] == \
        [(x["filename"], x["size"], x["url"]) for x in j["attachments"]] == \
        [("x.svg", len(svg), a[0]["url"]), ("d.docx", 8, a[1]["url"])]
    page = b.get(f"/tickets/{t}").text
    assert page.count(f'href="/attachments/{ids[0]}"') == 1 and f'href="{a[1]["url"]}"' in page
    # a long name is cut, keeping the extension
    long = "a" * 300 + ".pdf"
    r = b.post(f"/tickets/{t}/comments", {"body": "long", "visibility": "internal"},
               files=[("file", (long, b"%PDF-1.4 x", "text/plain"))])
    assert r.status_code == 303
    name, ct = app.sql("SELECT filename, content_type FROM ticket_attachments ORDER BY id DESC LIMIT 1")[0]
    assert len(name) == 255 and name.endswith(".pdf") and ct == "application/pdf"


def test_same_file_stored_once(app):
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    data = os.urandom(5000)
    for _ in range(2):
        r = b.post(f"/tickets/{t}/comments", {"body": "again", "visibility": "internal"},
                   files=[("file", ("same.bin", data, "application/octet-stream"))])
        assert r.status_code == 303
    assert app.sql("SELECT count(*) FROM ticket_attachments")[0][0] == 2
    assert app.sql("SELECT count(*), min(size) FROM blobs")[0] == (1, 5000)


def test_upload_over_max_upload_leaves_nothing(app_factory):
    app = app_factory(extra_conf="max_upload = 64K\nmax_body = 1M\n")
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    before = counts(app)
    r = b.post(f"/tickets/{t}/comments", {"body": "big one", "visibility": "public"},
               files=[("file", ("small.txt", b"ok", "text/plain")),
                      ("file", ("big.bin", os.urandom(65 * 1024), "application/octet-stream"))])
    assert r.status_code == 413
    assert counts(app) == before == (0, 0, 0)
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'comment.create'")[0][0] == 0


def test_closed_ticket_refuses(app):
    tid = seed(app)
    t = ticket(app, tid, status="closed")
    b = login(app)
    r = b.post(f"/tickets/{t}/comments", {"body": "hello", "visibility": "public"},
               files=[("file", ("a.txt", b"abc", "text/plain"))])
    assert r.status_code == 409 and "is closed" in r.text
    key = apikey(app)
    r = app.post(f"/api/v1/tickets/{t}/comments", json={"body": "x"}, headers=key)
    assert r.status_code == 409 and "is closed" in r.text
    assert counts(app) == (0, 0, 0)


def test_concurrent_comments_all_stored(app):
    tid = seed(app)
    t = ticket(app, tid)
    key = apikey(app)
    statuses = []

    def post(i):
        r = app.post(f"/api/v1/tickets/{t}/comments", json={"body": f"c{i}", "public": i % 2 == 0},
                     headers=key, timeout=60)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert statuses == [201] * 20
    assert sorted(b for (b,) in app.sql("SELECT body FROM ticket_comments WHERE ticket_id = %s", (t,))) == \
        sorted(f"c{i}" for i in range(20))
    assert app.sql("SELECT version FROM tickets WHERE id = %s", (t,))[0][0] == 21


def test_edit_keeps_history_and_author_rule(app):
    tid = seed(app)
    t = ticket(app, tid)
    tess = login(app, "tess@demo.tallydesk.test")
    r = tess.post(f"/tickets/{t}/comments", {"body": "first words", "visibility": "internal"})
    assert r.status_code == 303
    c = app.sql("SELECT id FROM ticket_comments")[0][0]
    r = tess.post(f"/comments/{c}", {"body": "second words"})
    assert r.status_code == 303 and r.headers["Location"] == f"/tickets/{t}#comment-{c}"
    r = tess.post(f"/comments/{c}", {"body": "third words"})
    assert r.status_code == 303
    assert app.sql("SELECT body, edited_at IS NOT NULL FROM ticket_comments WHERE id = %s", (c,))[0] == \
        ("third words", True)
    assert [b for (b,) in app.sql("SELECT old_body FROM ticket_comment_edits WHERE comment_id = %s ORDER BY id", (c,))] \
        == ["first words", "second words"]
    after = app.sql("SELECT after FROM audit_log WHERE action = 'comment.edit' ORDER BY id LIMIT 1")[0][0]
    assert after == {"ticket_id": t}
    # another technician may not edit it; an admin may
    tom = login(app, "tom@demo.tallydesk.test")
    r = tom.post(f"/comments/{c}", {"body": "hijacked"})
    assert r.status_code == 403
    admin = login(app)
    r = admin.post(f"/comments/{c}", {"body": "moderated"})
    assert r.status_code == 303
    assert app.sql("SELECT count(*) FROM ticket_comment_edits")[0][0] == 3
    # closed ticket: 409
    app.sql("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = %s", (t,))
    r = tess.post(f"/comments/{c}", {"body": "late"})
    assert r.status_code == 409
    assert app.sql("SELECT body FROM ticket_comments WHERE id = %s", (c,))[0][0] == "moderated"
    # unknown comment
    r = tess.post("/comments/999999", {"body": "x"})
    assert r.status_code == 404


def test_other_tenants_attachment_is_404(app):
    tid = seed(app)
    rival = other_tenant(app)
    rc = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Theirs') RETURNING id", (rival,))[0][0]
    rt = app.sql("INSERT INTO tickets (tenant_id, number, subject, client_id) VALUES (%s, 1001, 'x', %s)"
                 " RETURNING id", (rival, rc))[0][0]
    app.sql("INSERT INTO blobs (tenant_id, sha256, size, data) VALUES (%s, sha256('s'), 1, 's')", (rival,))
    aid = app.sql("INSERT INTO ticket_attachments (tenant_id, ticket_id, sha256, filename, content_type, size)"
                  " VALUES (%s, %s, sha256('s'), 's.txt', 'text/plain', 1) RETURNING id", (rival, rt))[0][0]
    b = login(app)
    assert b.get(f"/attachments/{aid}").status_code == 404
    assert b.get("/attachments/987654").status_code == 404
    # nor can one comment on or attach to their ticket
    r = b.post(f"/tickets/{rt}/comments", {"body": "hi", "visibility": "public"})
    assert r.status_code == 404
    assert tid != rival and PW


def test_reply_form_on_ticket_page_and_api_files(app):
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    r = b.get(f"/tickets/{t}")
    assert r.status_code == 200 and f'action="/tickets/{t}/comments"' in r.text
    r = b.post(f"/tickets/{t}/comments", {"body": "Seen <b>it</b>", "visibility": "public"},
               files=[("file", ("log.txt", b"line 1\n", "text/plain"))])
    assert r.status_code == 303
    aid = app.sql("SELECT id FROM ticket_attachments")[0][0]
    r = b.get(f"/tickets/{t}")
    assert r.status_code == 200
    assert "Seen &lt;b&gt;it&lt;/b&gt;" in r.text and f"/attachments/{aid}" in r.text
    # the API takes files with a comment too, and answers with them
    key = apikey(app)
    r = app.post(f"/api/v1/tickets/{t}/comments", headers=key, data={"body": "", "visibility": "public"},
                 files=[("file", ("shot.png", png_bytes(), "application/octet-stream"))])
    assert r.status_code == 201, r.text
    c = r.json()["comment"]
    assert c["body"] == "Attached: shot.png" and c["public"] is True
    assert [(a["filename"], a["content_type"]) for a in c["attachments"]] == [("shot.png", "image/png")]
    r = app.get(c["attachments"][0]["url"], headers=key)
    assert r.status_code == 200 and r.content == png_bytes()


def test_a_large_attachment_downloads_whole(app):
    """Responses leave as FastCGI records of 64 KB, sent 32 at a time: a
    file of several megabytes crosses many of those batches."""
    tid = seed(app)
    t = ticket(app, tid)
    b = login(app)
    blob = os.urandom(5 * 1024 * 1024 + 12345)
    r = b.post(f"/tickets/{t}/comments", {"body": "the log", "visibility": "internal"},
               files=[("file", ("big.log", blob, "application/octet-stream"))])
    assert r.status_code == 303, r.text[:1000]
    aid = app.sql("SELECT id FROM ticket_attachments WHERE ticket_id = %s", (t,))[0][0]
    r = b.get(f"/attachments/{aid}")
    assert r.status_code == 200 and len(r.content) == len(blob) and r.content == blob
    r = b.s.head(app.url + f"/attachments/{aid}", timeout=20)
    assert r.status_code == 200 and r.content == b"" and int(r.headers["Content-Length"]) == len(blob)
