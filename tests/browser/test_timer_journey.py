"""A technician starts a timer on a ticket, sees it ticking in the top bar
on another page, stops it from the ticket header and finds the entry on
the ticket's Time section and in its timeline."""
import re
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tdclient import submit_and_wait

PW = "correct horse battery"


def sign_in(app, browser):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("tess@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))


def test_timer_journey(app, browser, shot):
    sign_in(app, browser)
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Timer Widgets') RETURNING id", (tid,))[0][0]
    r = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin")
    import requests
    t = requests.post(app.url + "/api/v1/tickets", json={"subject": "Server down", "client_id": cid},
                      headers={"Authorization": "Bearer " + r.stdout.strip()}, timeout=10).json()["ticket"]
    browser.get(f"{app.url}/tickets/{t['id']}")
    # no timer yet: the bar is empty and the header offers Start
    assert browser.find_element(By.ID, "timer").text == ""
    submit_and_wait(browser, browser.find_element(By.ID, "timer-start"))
    assert "Timer started on " + t["ref"] in browser.page_source

    # another page: the indicator is there and ticks
    browser.get(app.url + "/clients")
    ind = browser.find_element(By.ID, "timer")
    assert t["ref"] in ind.text
    clock = ind.find_element(By.CSS_SELECTOR, ".timer-clock")
    first = clock.text
    assert re.fullmatch(r"\d+:\d\d:\d\d", first), first
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.CSS_SELECTOR, ".timer-clock").text != first)
    shot("timer-nav")

    # back to the ticket through the indicator, stop with notes as internal
    app.sql("UPDATE timers SET started_at = now() - interval '25 minutes'")
    ind.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith(f"/tickets/{t['id']}"))
    browser.find_element(By.ID, "timer-stop-open").click()
    Select(browser.find_element(By.ID, "stop-kind")).select_by_visible_text("Internal")
    browser.find_element(By.ID, "stop-description").send_keys("Restarted the web service")
    browser.find_element(By.ID, "stop-service").send_keys("REMOTE")
    shot("timer-stop-form")
    submit_and_wait(browser, browser.find_element(By.ID, "timer-stop"))

    # 25 minutes and the seconds the browser took: whole minutes begun
    (minutes,) = app.sql("SELECT minutes FROM time_entries")[0]
    assert minutes in (26, 27), minutes
    hmm = f"0:{minutes}"
    assert f"Logged {hmm} of Internal time on {t['ref']}" in browser.page_source
    assert browser.find_element(By.ID, "timer").text == ""
    time_panel = browser.find_element(By.ID, "time")
    assert "Restarted the web service" in time_panel.text and hmm in time_panel.text
    assert "Tess Technician" in time_panel.text and "Internal" in time_panel.text
    assert f"logged {hmm} Internal time" in browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert browser.find_elements(By.ID, "timer-start")
    shot("timer-entry")
    assert app.sql("SELECT minutes, kind, description, service, status FROM time_entries") == [
        (minutes, "internal", "Restarted the web service", "REMOTE", "committed")]

    # a second ticket: starting there while a timer runs asks to stop and
    # commit the running one first, then starts here
    t2 = requests.post(app.url + "/api/v1/tickets", json={"subject": "Printer jam", "client_id": cid},
                       headers={"Authorization": "Bearer " + r.stdout.strip()}, timeout=10).json()["ticket"]
    submit_and_wait(browser, browser.find_element(By.ID, "timer-start"))
    browser.get(f"{app.url}/tickets/{t2['id']}")
    assert "Your timer runs on " + t["ref"] in browser.find_element(By.ID, "ticket-timer").text
    submit_and_wait(browser, browser.find_element(By.ID, "timer-start"))
    assert "Your timer is running on" in browser.page_source
    button = browser.find_element(By.ID, "timer-stop-commit")
    assert button.text == "Stop, commit and start on " + t2["ref"]
    shot("timer-conflict")
    submit_and_wait(browser, button)
    assert browser.current_url.endswith(f"/tickets/{t2['id']}")
    assert t2["ref"] in browser.find_element(By.ID, "timer").text
    assert browser.find_element(By.ID, "timer-stop-open")
    assert app.sql("SELECT ticket_id FROM timers") == [(t2["id"],)]
    assert app.sql("SELECT count(*) FROM time_entries WHERE ticket_id = %s", (t["id"],)) == [(2,)]
