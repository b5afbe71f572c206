"""Settings → Email: the support address and how inbound mail is handled."""
from tdclient import Browser

PW = "correct horse battery"


def login(app, who="admin"):
    b = Browser(app)
    assert b.login(f"{who}@demo.tallydesk.test", PW).status_code == 303
    return b


def test_admin_sets_how_mail_is_handled(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = login(app)
    page = b.get("/settings/mail")
    assert page.status_code == 200 and "Support address" in page.text
    assert 'name="verify_sender" value="1" aria-describedby="m-verify-hint" checked' in page.text
    r = b.post("/settings/mail", {"support_address": "help@msp.test", "acknowledge": "1",
                                  "closed_reply": "new_ticket", "rate_limit": "12",
                                  "trusted_authserv_id": "mx.msp.test"})
    assert r.status_code == 303
    assert app.sql("SELECT support_address, acknowledge, create_contacts, closed_reply, rate_limit,"
                   " trusted_authserv_id, verify_sender FROM mail_settings") == \
        [("help@msp.test", True, False, "new_ticket", 12, "mx.msp.test", False)]
    page = b.get("/settings/mail").text
    assert "Email settings saved." in page and 'value="help@msp.test"' in page
    assert 'aria-describedby="m-verify-hint" checked' not in page
    audit = app.sql("SELECT before::text, after::text FROM audit_log WHERE action = 'mail_settings.update'")
    assert len(audit) == 1 and "help@msp.test" in audit[0][1]
    # Bad input changes nothing and says what is wrong.
    b.get("/settings/mail")
    r = b.post("/settings/mail", {"support_address": "not an address", "rate_limit": "0",
                                  "closed_reply": "ignore"})
    assert r.status_code == 422
    for msg in ("enter an address such as", "enter a number from 1 to 100000", "choose reopen or new_ticket"):
        assert msg in r.text
    assert app.sql("SELECT support_address, rate_limit FROM mail_settings") == [("help@msp.test", 12)]
    # Technicians may not.
    assert login(app, "tess").get("/settings/mail").status_code == 403
