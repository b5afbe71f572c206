from clientdata import *

J = {"Accept": "application/json"}


def test_contacts_flow(app):
    tid = seed(app)
    b = login(app)
    c = client(app, tid, "Acme")
    r = b.get(f"/clients/{c}/contacts")
    assert r.status_code == 200 and "No contacts yet" in r.text
    # add with roles
    r = b.post(f"/clients/{c}/contacts", {"name": "Sam Smith", "email": "Sam@Acme.test", "phone": "123",
                                         "job_title": "CTO", "is_billing": "1", "is_vip": "1"})
    assert r.status_code == 303, r.text[:2000]
    assert r.headers["Location"] == f"/clients/{c}/contacts"
    r = b.get(f"/clients/{c}/contacts")
    assert "Sam Smith" in r.text and ">Billing<" in r.text and ">VIP<" in r.text and "Contact Sam Smith added." in r.text
    # duplicate email case-insensitively
    r = b.post(f"/clients/{c}/contacts", {"name": "Other", "email": "sam@acme.TEST", "is_technical": "1"})
    assert r.status_code == 422
    assert "another contact of this client has this email address" in r.text
    assert 'value="Other"' in r.text
    assert 'id="contact-technical" type="checkbox" name="is_technical" value="1" checked' in r.text
    # portal without email
    r = b.post(f"/clients/{c}/contacts", {"name": "Nomail", "is_portal": "1"})
    assert r.status_code == 422 and "portal user needs an email" in r.text
    # bad email, empty name
    r = b.post(f"/clients/{c}/contacts", {"name": "", "email": "x y@z"})
    assert r.status_code == 422 and "enter a name" in r.text and "enter an email address" in r.text
    # portal grant
    r = b.post(f"/clients/{c}/contacts", {"name": "Pat Portal", "email": "pat@acme.test", "is_portal": "on"})
    assert r.status_code == 303
    rows = app.sql("SELECT id, portal_granted_at IS NOT NULL, is_portal FROM contacts WHERE name = 'Pat Portal'")
    pid = rows[0][0]
    assert rows[0][1] and rows[0][2]
    granted = app.sql("SELECT portal_granted_at FROM contacts WHERE id = %s", (pid,))[0][0]
    # edit keeps grant time
    r = b.get(f"/contacts/{pid}/edit")
    assert r.status_code == 200 and 'value="pat@acme.test"' in r.text
    r = b.post(f"/contacts/{pid}", {"name": "Pat Portal", "email": "pat@acme.test", "is_portal": "1", "job_title": "Ops"})
    assert r.status_code == 303
    assert app.sql("SELECT portal_granted_at FROM contacts WHERE id = %s", (pid,))[0][0] == granted
    # revoke
    r = b.post(f"/contacts/{pid}", {"name": "Pat Portal", "email": "pat@acme.test"})
    assert r.status_code == 303
    assert app.sql("SELECT portal_granted_at, is_portal FROM contacts WHERE id = %s", (pid,))[0] == (None, False)
    acts = [a for (a,) in app.sql("SELECT action FROM audit_log WHERE object_type = 'contact' ORDER BY id")]
    assert acts == ["contact.create", "contact.create", "contact.update", "contact.update", "contact.portal_revoke"], acts
    after = app.sql("SELECT after FROM audit_log WHERE action = 'contact.create' ORDER BY id LIMIT 1")[0][0]
    assert after["client_id"] == c and after["is_billing"] is True
    # update errors re-render form
    r = b.post(f"/contacts/{pid}", {"name": "Pat Portal", "email": "sam@acme.test", "is_portal": "1"})
    assert r.status_code == 422 and "another contact" in r.text and 'id="contact-portal" type="checkbox" name="is_portal" value="1" checked' in r.text
    # the same email of the contact itself is fine
    r = b.post(f"/contacts/{pid}", {"name": "Pat P", "email": "PAT@acme.test"})
    assert r.status_code == 303
    # billing contact delete clears FK
    sid = app.sql("SELECT id FROM contacts WHERE name = 'Sam Smith'")[0][0]
    app.sql("UPDATE clients SET billing_contact_id = %s WHERE id = %s", (sid, c))
    r = b.get(f"/clients/{c}/contacts")
    assert "Billing contact" in r.text
    r = b.post(f"/contacts/{sid}/delete")
    assert r.status_code == 303 and r.headers["Location"] == f"/clients/{c}/contacts"
    assert app.sql("SELECT billing_contact_id FROM clients WHERE id = %s", (c,))[0][0] is None
    assert app.sql("SELECT before->>'was_billing_contact' FROM audit_log WHERE action = 'contact.delete'")[0][0] == "true"


def test_contacts_json_and_isolation(app):
    tid = seed(app)
    h = apikey(app)
    c = client(app, tid, "Acme")
    arch = client(app, tid, "Old", archived=True)
    r = app.post(f"/api/v1/clients/{c}/contacts", json={"name": "Jo", "email": "jo@x.test", "is_portal": True}, headers=h)
    assert r.status_code == 201, r.text
    ct = r.json()["contact"]
    assert ct["is_portal"] is True and ct["portal_granted_at"] and ct["roles"] == [{"key": "portal", "label": "Portal user"}]
    assert ct["client_id"] == c
    r = app.get(f"/api/v1/clients/{c}/contacts", headers=h)
    assert r.status_code == 200 and [x["name"] for x in r.json()["contacts"]] == ["Jo"]
    r = app.post(f"/api/v1/clients/{c}/contacts", json={"name": "", "email": "jo@X.test"}, headers=h)
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"name", "email"}
    r = app.post(f"/api/v1/contacts/{ct['id']}", json={"name": "Jo B"}, headers=h)
    assert r.status_code == 200 and r.json()["contact"]["is_portal"] is True
    assert r.json()["contact"]["email"] == "jo@x.test"
    r = app.post(f"/api/v1/contacts/{ct['id']}", json={"email": ""}, headers=h)
    assert r.status_code == 422 and "email" in r.json()["error"]["fields"]
    r = app.post(f"/api/v1/contacts/{ct['id']}", json={"is_portal": False, "is_vip": True}, headers=h)
    assert r.status_code == 200 and r.json()["contact"]["is_portal"] is False
    assert [x["key"] for x in r.json()["contact"]["roles"]] == ["vip"]
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'contact.portal_revoke'")[0][0] == 1
    r = app.get(f"/api/v1/contacts/{ct['id']}/edit", headers=h)
    assert r.status_code == 200 and r.json()["contact"]["name"] == "Jo B"
    # archived client: 409
    r = app.post(f"/api/v1/clients/{arch}/contacts", json={"name": "X"}, headers=h)
    assert r.status_code == 409, r.text
    # other tenant
    rt = other_tenant(app)
    oc = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Theirs') RETURNING id", (rt,))[0][0]
    octt = app.sql("INSERT INTO contacts (tenant_id, client_id, name) VALUES (%s, %s, 'Them') RETURNING id", (rt, oc))[0][0]
    assert app.get(f"/api/v1/clients/{oc}/contacts", headers=h).status_code == 404
    assert app.post(f"/api/v1/clients/{oc}/contacts", json={"name": "X"}, headers=h).status_code == 404
    assert app.get(f"/api/v1/contacts/{octt}/edit", headers=h).status_code == 404
    assert app.post(f"/api/v1/contacts/{octt}", json={"name": "X"}, headers=h).status_code == 404
    assert app.post(f"/api/v1/contacts/{octt}/delete", headers=h).status_code == 404
    r = app.post(f"/api/v1/contacts/{ct['id']}/delete", headers=h)
    assert r.status_code == 200 and r.json()["deleted"]["id"] == ct["id"]


def test_archived_client_page_refuses(app):
    tid = seed(app)
    b = login(app)
    arch = client(app, tid, "Old", archived=True)
    r = b.get(f"/clients/{arch}/contacts")
    assert r.status_code == 200 and "Add a contact" not in r.text
    r = b.post(f"/clients/{arch}/contacts", {"name": "X"})
    assert r.status_code == 409 and "Old is archived" in r.text
