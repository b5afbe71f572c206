"""Passive timer (beta): with it on, opening a ticket assigned to you starts
its timer, leaving the page pauses it (a beacon from views/static/timer.js)
and coming back resumes it."""
import time

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tdclient import submit_and_wait

PW = "correct horse battery"


def wait_sql(app, query, want, timeout=10):
    end = time.time() + timeout
    while True:
        got = app.sql(query)
        if got == want or time.time() > end:
            return got
        time.sleep(0.2)


def test_passive_timer_pauses_when_the_page_is_left(app, browser, shot):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("tess@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    tid = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    me = app.sql("SELECT id FROM users WHERE email = 'tess@demo.tallydesk.test'")[0][0]
    cid = app.sql("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Passive Ltd') RETURNING id", (tid,))[0][0]
    key = app.run("apikey", "create", "--tenant", "demo", "--name", "k", "--role", "admin").stdout.strip()
    t = requests.post(app.url + "/api/v1/tickets", json={"subject": "Slow laptop", "client_id": cid, "assignee_id": me},
                      headers={"Authorization": "Bearer " + key}, timeout=10).json()["ticket"]

    browser.get(app.url + "/time")
    browser.find_element(By.NAME, "passive_timer").click()
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/time/passive'] button"))
    assert "Passive timer on" in browser.page_source

    browser.get(f"{app.url}/tickets/{t['id']}")
    assert "Passive timer running" in browser.find_element(By.ID, "ticket-timer").text
    assert app.sql("SELECT passive, paused_at IS NULL FROM timers") == [(True, True)]
    shot("timer-passive")

    # leaving the page pauses it
    browser.get(app.url + "/clients")
    assert wait_sql(app, "SELECT paused_at IS NOT NULL FROM timers", [(True,)]) == [(True,)]
    browser.get(app.url + "/clients")
    assert "paused" in browser.find_element(By.ID, "timer").text

    # coming back resumes it, and a reload does not leave it paused
    browser.get(f"{app.url}/tickets/{t['id']}")
    browser.refresh()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "ticket-timer"))
    time.sleep(1)
    assert app.sql("SELECT paused_at IS NULL FROM timers") == [(True,)]
