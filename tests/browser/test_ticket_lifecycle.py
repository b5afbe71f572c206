"""A technician works one ticket through its life in the browser: create it,
reply in public and internally, attach and download a file, assign it and
start it, close it past the no-time guard, then reopen it."""
import os
import re
import tempfile

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tdclient import submit_and_wait

PW = "correct horse battery"
TECH = "Tess Technician"


def sign_in(app, browser):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("tess@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))


def form(browser, action_suffix):
    return [f for f in browser.find_elements(By.CSS_SELECTOR, "form[method='post']")
            if (f.get_attribute("action") or "").endswith(action_suffix)][0]


def timeline(browser):
    return browser.find_elements(By.CSS_SELECTOR, "ol.timeline > li")


def session(browser):
    """A requests session carrying the browser's cookies."""
    s = requests.Session()
    for c in browser.get_cookies():
        s.cookies.set(c["name"], c["value"], path=c.get("path", "/"))
    return s


def reply(browser, text, visibility):
    box = browser.find_element(By.ID, "reply-body")
    box.clear()
    box.send_keys(text)
    submit_and_wait(browser, browser.find_element(
        By.CSS_SELECTOR, f"form[action$='/comments'] button[value='{visibility}']"))


def test_ticket_lifecycle(app, browser, shot):
    sign_in(app, browser)

    # a client, through the UI
    browser.get(app.url + "/clients/new")
    browser.find_element(By.NAME, "name").send_keys("Lifecycle Widgets")
    submit_and_wait(browser, form(browser, "/clients").find_element(By.CSS_SELECTOR, "button[type='submit']"))
    assert "Lifecycle Widgets" in browser.find_element(By.TAG_NAME, "h1").text

    # a ticket: pick the client first, then fill in the ticket
    browser.get(app.url + "/tickets/new")
    Select(browser.find_element(By.ID, "pick-client")).select_by_visible_text("Lifecycle Widgets")
    submit_and_wait(browser, browser.find_element(
        By.CSS_SELECTOR, "form[action$='/tickets/new'] button[type='submit']"))
    browser.find_element(By.ID, "t-subject").send_keys("Printer on fire")
    browser.find_element(By.ID, "t-description").send_keys("Smoke from tray 2.")
    shot("ticket-new")
    submit_and_wait(browser, form(browser, "/tickets").find_element(By.CSS_SELECTOR, "button[type='submit']"))
    m = re.search(r"/tickets/(\d+)", browser.current_url)
    assert m, browser.current_url
    tid = int(m.group(1))
    ticket_url = f"{app.url}/tickets/{tid}"
    assert "Printer on fire" in browser.find_element(By.TAG_NAME, "h1").text
    assert "created the ticket" in browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    # a files-only reply is allowed, so the message box is not required
    assert browser.find_element(By.ID, "reply-body").get_attribute("required") is None

    # a public reply lands on its own anchor
    reply(browser, "We are on our way with an extinguisher.", "public")
    m = re.search(r"#comment-(\d+)$", browser.current_url)
    assert m, browser.current_url
    li = browser.find_element(By.ID, "comment-" + m.group(1))
    assert "extinguisher" in li.text and "Internal" not in li.text
    assert "timeline-internal" not in li.get_attribute("class")

    # an internal note, marked as such
    reply(browser, "Tray 2 was stuffed with receipts.", "internal")
    m = re.search(r"#comment-(\d+)$", browser.current_url)
    assert m, browser.current_url
    li = browser.find_element(By.ID, "comment-" + m.group(1))
    assert "receipts" in li.text and "Internal" in li.text
    assert "timeline-internal" in li.get_attribute("class")
    texts = [x.text for x in timeline(browser)]
    assert any("extinguisher" in t for t in texts) and any("receipts" in t for t in texts)
    shot("ticket-replies")

    # a file, attached with an empty message, downloads byte-identical
    data = os.urandom(4096 + 123)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fire-log.bin")
        with open(path, "wb") as f:
            f.write(data)
        browser.find_element(By.ID, "reply-body").clear()
        browser.find_element(By.ID, "reply-file").send_keys(path)
        submit_and_wait(browser, browser.find_element(
            By.CSS_SELECTOR, "form[action$='/comments'] button[value='internal']"))
    link = browser.find_element(By.LINK_TEXT, "fire-log.bin")
    href = link.get_attribute("href")
    assert re.search(r"/attachments/\d+$", href), href
    s = session(browser)
    r = s.get(href, allow_redirects=False, timeout=10)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Disposition"].startswith("attachment;")
    shot("ticket-attachment")

    # a file attached without a comment is a timeline item of its own
    csrf = browser.find_element(By.CSS_SELECTOR, "form[action$='/comments'] input[name='csrf']")
    r = s.post(f"{ticket_url}/attachments", data={"csrf": csrf.get_attribute("value")},
               files={"file": ("loose-notes.txt", b"just a file\n", "text/plain")},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text[:2000]
    aid = app.sql("SELECT id FROM ticket_attachments WHERE ticket_id = %s AND comment_id IS NULL", (tid,))[0][0]
    browser.get(ticket_url)
    item = browser.find_element(By.ID, f"attachment-{aid}")
    assert "attached a file" in item.text and "loose-notes.txt" in item.text and TECH in item.text
    assert item.find_element(By.TAG_NAME, "a").get_attribute("href").endswith(f"/attachments/{aid}")
    assert timeline(browser)[-1].get_attribute("id") == f"attachment-{aid}"

    # assign to myself and start it, via the side form
    edit = form(browser, f"/tickets/{tid}")
    Select(edit.find_element(By.NAME, "assignee_id")).select_by_visible_text(TECH)
    Select(edit.find_element(By.NAME, "status")).select_by_visible_text("In progress")
    submit_and_wait(browser, edit.find_element(By.CSS_SELECTOR, "button[type='submit']"))
    assert "In progress" in browser.find_element(By.CSS_SELECTOR, ".ticket-badges").text
    facts = browser.find_element(By.CSS_SELECTOR, ".ticket-facts").text
    assert TECH in facts
    shot("ticket-in-progress")

    # close: the guard asks about time first
    submit_and_wait(browser, form(browser, f"/tickets/{tid}/close").find_element(
        By.CSS_SELECTOR, "button[type='submit']"))
    prompt = browser.find_element(By.CSS_SELECTOR, ".ticket-prompt")
    assert "No time logged" in prompt.text
    shot("ticket-close-prompt")
    submit_and_wait(browser, prompt.find_element(By.XPATH, ".//button[normalize-space()='Close without time']"))
    assert "Closed" in browser.find_element(By.CSS_SELECTOR, ".ticket-badges").text
    assert not browser.find_elements(By.ID, "reply-body")
    assert not browser.find_elements(By.CSS_SELECTOR, "form[action$='/comments']")
    assert "read-only" in browser.find_element(By.CSS_SELECTOR, ".ticket-side").text
    assert "without time" in browser.find_element(By.CSS_SELECTOR, ".ticket-facts").text
    shot("ticket-closed")

    # reopen: back to in progress, with the reply form again
    submit_and_wait(browser, form(browser, f"/tickets/{tid}/reopen").find_element(
        By.CSS_SELECTOR, "button[type='submit']"))
    assert "In progress" in browser.find_element(By.CSS_SELECTOR, ".ticket-badges").text
    assert browser.find_elements(By.ID, "reply-body")
    shot("ticket-reopened")
    assert app.sql("SELECT status, assignee_id IS NOT NULL FROM tickets WHERE id = %s", (tid,))[0] == \
        ("in_progress", True)
