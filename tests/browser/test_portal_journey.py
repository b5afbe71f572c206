"""A client contact in Chromium: asks for a sign-in link, signs in, raises a
ticket with an attachment, reads the desk's public reply (not its internal
note), replies, closes the ticket; on a phone-sized window too."""
import os
import re
import tempfile

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tdclient import Browser, submit_and_wait

PW = "correct horse battery"
LINK_RE = re.compile(r"(https?://\S+/link/[A-Za-z0-9_-]{43})")


def world(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    cl = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Acme') RETURNING id", (tid,))[0][0]
    app.sql("INSERT INTO contacts (tenant_id, client_id, name, email, is_portal) VALUES (%s, %s, 'Alice', 'alice@acme.test', true)",
            (tid, cl))
    app.sql("UPDATE tenants SET brand_colour = '#8a2be2', support_email = 'help@msp.test' WHERE id = %s", (tid,))
    return tid


def body(browser):
    return browser.find_element(By.TAG_NAME, "body").text


def test_portal_journey(app, browser, shot):
    world(app)
    browser.delete_all_cookies()
    browser.set_window_size(390, 844)  # a phone
    browser.get(app.url + "/portal/demo/login")
    assert "help@msp.test" in body(browser)
    # the email field has a label, and the page does not scroll sideways
    label = browser.find_element(By.CSS_SELECTOR, "label[for='portal-email']")
    assert label.text == "Email"
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot("portal-login-phone")
    browser.find_element(By.NAME, "email").send_keys("alice@acme.test")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    assert "a sign-in link is on its way" in body(browser)

    text = app.sql("SELECT body_text FROM outbox WHERE to_addr = 'alice@acme.test' ORDER BY id DESC LIMIT 1")[0][0]
    link = LINK_RE.search(text).group(1)
    browser.get(link)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    assert browser.current_url == app.url + "/portal/demo"
    assert "No requests yet" in body(browser)
    shot("portal-home-phone")

    browser.set_window_size(1280, 900)
    browser.find_element(By.LINK_TEXT, "New request").click()
    browser.find_element(By.NAME, "subject").send_keys("Printer on fire")
    browser.find_element(By.NAME, "description").send_keys("Smoke from tray 2")
    Select(browser.find_element(By.NAME, "priority")).select_by_visible_text("P2 High")
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(b"error log: tray 2 overheated\n")
        attachment = f.name
    try:
        browser.find_element(By.NAME, "file").send_keys(attachment)
        submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/tickets'] button[type='submit']"))
    finally:
        os.unlink(attachment)
    assert "Thank you: your request is T-" in body(browser)
    assert os.path.basename(attachment) in body(browser)
    tk = app.sql("SELECT id FROM tickets WHERE subject = 'Printer on fire'")[0][0]
    assert app.sql("SELECT source, priority FROM tickets WHERE id = %s", (tk,))[0] == ("portal", 2)

    # the desk answers publicly and notes something internally
    staff = Browser(app)
    staff.login("admin@demo.tallydesk.test", PW)
    staff.get(f"/tickets/{tk}")
    staff.post(f"/tickets/{tk}/comments", {"body": "An engineer is coming", "visibility": "public"})
    staff.post(f"/tickets/{tk}/comments", {"body": "Toner supplier is slow", "visibility": "internal"})
    app.sql("UPDATE tickets SET status = 'waiting' WHERE id = %s", (tk,))

    browser.refresh()
    page = body(browser)
    assert "An engineer is coming" in page and "Toner supplier" not in page
    browser.find_element(By.NAME, "body").send_keys("Thanks, the fire is out now")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/comments'] button[type='submit']"))
    assert "Your reply was sent" in body(browser)
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (tk,))[0][0] == "in_progress"
    shot("portal-ticket")

    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/close'] button[type='submit']"))
    assert "This request is closed" in body(browser)
    assert app.sql("SELECT status FROM tickets WHERE id = %s", (tk,))[0][0] == "closed"

    # the brand colour reaches the page through the stylesheet
    colour = browser.execute_script(
        "return getComputedStyle(document.documentElement).getPropertyValue('--portal-brand').trim()")
    assert colour == "#8a2be2"

    # the portal cookie is HttpOnly, and opens no staff page
    assert "td_portal" not in browser.execute_script("return document.cookie")
    browser.get(app.url + "/tickets")
    assert "/login" in browser.current_url

    # the used link explains itself
    browser.get(link)
    assert "used already" in body(browser)
    assert requests.get(link, timeout=20).status_code == 410

    # sign out
    browser.get(app.url + "/portal/demo")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/logout'] button[type='submit']"))
    assert browser.current_url == app.url + "/portal/demo/login"


def test_staff_portal_tab(app, browser, shot):
    world(app)
    cl = app.sql("SELECT id FROM clients WHERE name = 'Acme'")[0][0]
    browser.delete_all_cookies()
    browser.set_window_size(1280, 900)
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("admin@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    browser.get(app.url + f"/clients/{cl}")
    browser.find_element(By.LINK_TEXT, "Portal").click()
    assert browser.current_url.endswith(f"/clients/{cl}/portal")
    page = body(browser)
    assert "alice@acme.test" in page and "Portal user" in page and "never" in page
    shot("portal-staff-tab")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/link'] button"))
    assert "A sign-in link is on its way to alice@acme.test" in body(browser)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/revoke'] button"))
    assert "Portal access revoked" in body(browser) and "No access" in body(browser)
