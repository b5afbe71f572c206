"""Journeys through the sign-in and settings pages, as a person sees them."""
import re

import pytest
from tdclient import submit_and_wait
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

PW = "correct horse battery"


def sign_in(app, browser, email, password, workspace=None):
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    if workspace is not None:
        ws = browser.find_element(By.NAME, "workspace")
        ws.clear()
        ws.send_keys(workspace)
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))


def test_the_demo_credentials_sign_in(app, browser, shot):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/")
    assert "/login" in browser.current_url
    shot("sign-in")
    sign_in(app, browser, "admin@demo.tallydesk.test", "wrong password here")
    assert "not right" in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_element(By.NAME, "email").get_attribute("value") == "admin@demo.tallydesk.test"
    shot("sign-in-error")
    sign_in(app, browser, "admin@demo.tallydesk.test", PW)
    assert "Alex Admin" in browser.find_element(By.TAG_NAME, "body").text
    shot("home-signed-in")


def test_an_invite_accepted_in_the_browser_with_a_script_name_stays_text(app, browser, shot):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    link = app.run("user", "invite", "--tenant", "demo", "--email", "x@demo.tallydesk.test",
                   "--role", "technician").stdout.strip()
    nasty = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    browser.delete_all_cookies()
    browser.get(link)
    browser.find_element(By.NAME, "name").send_keys(nasty)
    browser.find_element(By.NAME, "password").send_keys("a long password")
    browser.find_element(By.NAME, "password2").send_keys("a long password")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    sign_in(app, browser, "admin@demo.tallydesk.test", PW)
    browser.get(app.url + "/settings/users")
    # No alert fired, and the name reads exactly as typed.
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert nasty in browser.find_element(By.TAG_NAME, "body").text
    shot("settings-users")


def test_security_page_shows_a_scannable_qr_code(app, browser, shot):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    sign_in(app, browser, "tess@demo.tallydesk.test", PW)
    browser.get(app.url + "/settings/security")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/settings/totp/start'] button"))
    svg = browser.find_element(By.CSS_SELECTOR, "svg[role='img']")
    assert svg.size["width"] >= 120
    body = browser.find_element(By.TAG_NAME, "body").text
    assert re.search(r"[A-Z2-7]{4} [A-Z2-7]{4}", body)
    shot("security-totp")
