"""A technician sets up a client in the browser: client, contacts with
several roles, a site, assets; then sees the counts."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tdclient import submit_and_wait

PW = "correct horse battery"


def sign_in(app, browser):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("tess@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))


def form_submit(browser, action_suffix):
    form = [f for f in browser.find_elements(By.CSS_SELECTOR, "form[method='post']")
            if (f.get_attribute("action") or "").endswith(action_suffix)][0]
    submit_and_wait(browser, form.find_element(By.CSS_SELECTOR, "button[type='submit']"))


def test_set_up_a_client_with_contacts_site_and_assets(app, browser, shot):
    sign_in(app, browser)
    browser.get(app.url + "/clients/new")
    browser.find_element(By.NAME, "name").send_keys("Acme <Dental> Ltd")
    browser.find_element(By.NAME, "domain").send_keys("acme-dental.example")
    browser.find_element(By.NAME, "tags").send_keys("gold, dental")
    shot("client-new")
    form_submit(browser, "/clients")
    assert "Acme <Dental> Ltd" in browser.find_element(By.TAG_NAME, "h1").text
    client_url = browser.current_url.split("?")[0]

    browser.get(client_url + "/contacts")
    browser.find_element(By.NAME, "name").send_keys("Dana Dentist")
    browser.find_element(By.NAME, "email").send_keys("dana@acme-dental.example")
    for box in ("is_billing", "is_vip", "is_portal"):
        browser.find_element(By.NAME, box).click()
    form_submit(browser, "/contacts")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Dana Dentist" in body and "VIP" in body and "Billing" in body
    shot("client-contacts")

    browser.get(client_url + "/sites")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/sites'] input[name='name']").send_keys("Surgery")
    form_submit(browser, "/sites")
    assert "Surgery" in browser.find_element(By.TAG_NAME, "body").text

    for name, kind in (("RECEPTION-PC", "workstation"), ("XRAY-SRV", "server")):
        browser.get(client_url + "/assets")
        browser.find_element(By.CSS_SELECTOR, "#asset-name").send_keys(name)
        Select(browser.find_element(By.CSS_SELECTOR, "#asset-kind")).select_by_value(kind)
        Select(browser.find_element(By.CSS_SELECTOR, "#asset-site")).select_by_visible_text("Surgery")
        form_submit(browser, "/assets")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "RECEPTION-PC" in body and "XRAY-SRV" in body
    shot("client-assets")

    browser.get(client_url + "/asset-counts")
    assert browser.find_elements(By.CSS_SELECTOR, "svg")
    shot("client-asset-counts")
    browser.get(client_url)
    overview = browser.find_element(By.TAG_NAME, "main").text
    assert "acme-dental.example" in overview
    shot("client-overview")
    assert app.sql("SELECT count(*) FROM assets WHERE site_id IS NOT NULL")[0][0] == 2
