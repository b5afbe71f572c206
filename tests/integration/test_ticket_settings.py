"""Settings → Tickets: tenant names for the four statuses, and team queues."""
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


def key(app, role="admin"):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    return {"Authorization": "Bearer " + r.stdout.strip()}


def ticket(app, h, cid, **kw):
    body = {"subject": "Laptop will not boot", "client_id": cid}
    body.update(kw)
    r = app.post("/api/v1/tickets", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["ticket"]


@pytest.fixture
def world(demo):
    h = key(demo)
    r = demo.post("/api/v1/clients", json={"name": "Acme Ltd"}, headers=h)
    assert r.status_code == 201, r.text
    return demo, h, r.json()["client"]["id"]


def test_rename_statuses_everywhere(world):
    app, h, cid = world
    t = ticket(app, h, cid)
    b = login(app)
    b.get("/settings/tickets")
    r = b.post("/settings/tickets", {"label_new": "Triage", "label_waiting": "With customer",
                                     "label_in_progress": "", "label_closed": "Closed"})
    assert r.status_code == 303, r.text[:500]
    page = b.get("/settings/tickets").text
    assert "Status names saved." in page and 'value="Triage"' in page
    # The queue, the board and the ticket page all say the tenant's names.
    assert "Triage" in b.get("/tickets").text
    board = b.get("/tickets/board").text
    assert "Triage" in board and "With customer" in board
    show = b.get(f"/tickets/{t['id']}").text
    assert "Triage" in show and ">With customer</option>" in show
    assert app.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["ticket"]["status_label"] == "Triage"
    # Only what they are called changes: the API keys stay.
    assert app.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["ticket"]["status"] == "new"
    audit = app.sql("SELECT before::text, after::text FROM audit_log WHERE action = 'ticket_status.rename'")
    assert len(audit) == 1 and "Triage" in audit[0][1] and "New" in audit[0][0]
    # Empty goes back to the default.
    b.get("/settings/tickets")
    b.post("/settings/tickets", {"label_new": ""})
    assert app.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["ticket"]["status_label"] == "New"


def test_status_names_validated_and_admin_only(world):
    app, h, cid = world
    r = app.post("/api/v1/settings/tickets", json={"label_new": "Open", "label_in_progress": "open"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"]["label_in_progress"] == "two statuses cannot share a name"
    r = app.post("/api/v1/settings/tickets", json={"label_new": "x" * 41}, headers=h)
    assert r.status_code == 422 and "40" in r.json()["error"]["fields"]["label_new"]
    assert app.sql("SELECT count(*) FROM ticket_status_labels")[0][0] == 0
    tech = key(app, "technician")
    assert app.post("/api/v1/settings/tickets", json={"label_new": "Mine"}, headers=tech).status_code == 403
    b = login(app, "tess")
    assert b.get("/settings/tickets").status_code == 403


def test_queues_route_filter_rename_and_delete(world):
    app, h, cid = world
    b = login(app)
    b.get("/settings/tickets")
    assert b.post("/settings/queues", {"name": "Service desk"}).status_code == 303
    b.get("/settings/tickets")
    assert b.post("/settings/queues", {"name": "Projects"}).status_code == 303
    r = app.post("/api/v1/settings/queues", json={"name": "service DESK"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"]["name"] == "there is a queue with this name already"

    # A ticket names a queue the tenant has, by form or API.
    r = app.post("/api/v1/tickets", json={"subject": "x", "client_id": cid, "queue": "Nope"}, headers=h)
    assert r.status_code == 422 and "queue" in r.json()["error"]["fields"]
    desk = ticket(app, h, cid, queue="Service desk")
    other = ticket(app, h, cid)
    assert desk["queue"] == "Service desk" and other["queue"] is None
    b.get(f"/tickets/{other['id']}")
    r = b.post(f"/tickets/{other['id']}", {"queue": "Projects"})
    assert r.status_code == 303
    assert app.get(f"/api/v1/tickets/{other['id']}", headers=h).json()["ticket"]["queue"] == "Projects"
    assert ">Projects</dd>" in b.get(f"/tickets/{other['id']}").text

    ids = lambda q: [t["id"] for t in app.get("/api/v1/tickets?" + q, headers=h).json()["tickets"]]
    assert ids("queue=Service+desk") == [desk["id"]]
    assert ids("queue=Projects") == [other["id"]]
    assert "Service desk" in b.get("/tickets").text  # the filter offers the queues

    # Renaming moves its tickets; deleting a queue with open tickets is refused.
    qid = app.sql("SELECT id FROM ticket_queues WHERE name = 'Service desk'")[0][0]
    b.get("/settings/tickets")
    assert b.post(f"/settings/queues/{qid}", {"name": "Helpdesk"}).status_code == 303
    assert ids("queue=Helpdesk") == [desk["id"]]
    r = app.post(f"/api/v1/settings/queues/{qid}/delete", json={}, headers=h)
    assert r.status_code == 409 and "1 open ticket is in Helpdesk" in r.json()["error"]["message"]
    app.post(f"/api/v1/tickets/{desk['id']}", json={"queue": ""}, headers=h)
    r = app.post(f"/api/v1/settings/queues/{qid}/delete", json={}, headers=h)
    assert r.status_code == 200
    assert app.sql("SELECT name FROM ticket_queues ORDER BY name") == [("Projects",)]
    actions = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE action LIKE 'ticket_queue.%%' ORDER BY id")]
    assert actions == ["ticket_queue.create", "ticket_queue.create", "ticket_queue.rename", "ticket_queue.delete"]
