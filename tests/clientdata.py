import re
from tdclient import Browser

PW = "correct horse battery"


def seed(app):
    r = app.run("seed-demo", "--password", PW)
    assert r.returncode == 0, r.stderr
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    return tid


def login(app, email="admin@demo.tallydesk.test"):
    b = Browser(app)
    r = b.login(email, PW)
    assert r.status_code == 303, r.text[:500]
    return b


def client(app, tid, name, archived=False):
    return app.sql("INSERT INTO clients (tenant_id, name, archived_at) VALUES (%s, %s, %s) RETURNING id",
                   (tid, name, "2024-01-01" if archived else None))[0][0]


def other_tenant(app):
    tid = app.sql("INSERT INTO tenants (slug, name) VALUES ('rival', 'Rival') RETURNING id")[0][0]
    return tid


def apikey(app, role="admin"):
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "t" + role, "--role", role)
    assert r.returncode == 0, r.stderr
    m = re.search(r"td_\S+", r.stdout)
    return {"Authorization": f"Bearer {m.group(0)}"}
