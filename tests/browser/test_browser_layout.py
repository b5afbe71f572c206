"""What a person sees: the layout, navigation, keyboard and small screens."""
import pytest
from tdclient import submit_and_wait
from selenium.webdriver.common.by import By

PW = "correct horse battery"


@pytest.fixture
def signed_in(app, browser):
    """Seeds the demo tenant and signs in through the sign-in form."""
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("admin@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))
    assert browser.current_url.rstrip("/") == app.url
    return app


def visible_text(browser):
    return browser.find_element(By.TAG_NAME, "body").text


def test_home_page_shows_navigation_and_figures(signed_in, app, browser, shot):
    browser.set_window_size(1280, 900)
    browser.get(app.url + "/")
    assert browser.title == "Home · tallydesk"
    nav = browser.find_element(By.CSS_SELECTOR, "nav[aria-label='Main']")
    labels = [a.text for a in nav.find_elements(By.TAG_NAME, "a") if a.text]
    for want in ("Tickets", "Clients", "Contracts", "Invoices", "Time", "Reports", "Settings"):
        assert want in labels
    assert nav.is_displayed()
    text = visible_text(browser)
    assert "active users" in text.lower() and "Alex Admin" in text
    # The stylesheet loaded: the page is not unstyled black-on-white Times.
    font = browser.execute_script("return getComputedStyle(document.body).fontFamily")
    assert "Times" not in font
    shot("home-desktop")


def test_navigation_leads_to_each_section(signed_in, app, browser, shot):
    browser.get(app.url + "/")
    browser.find_element(By.LINK_TEXT, "Invoices").click()
    assert browser.current_url.endswith("/invoices")
    h1 = browser.find_element(By.TAG_NAME, "h1").text
    assert "Invoices" in h1
    current = browser.find_element(By.CSS_SELECTOR, "nav [aria-current='page']")
    assert "Invoices" in current.text
    shot("invoices")


def test_slash_focuses_the_search_box(signed_in, app, browser):
    browser.get(app.url + "/")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    active = browser.switch_to.active_element
    assert active.get_attribute("name") == "q"


def test_a_phone_sized_screen_has_no_sideways_scroll(signed_in, app, browser, shot):
    browser.set_window_size(375, 800)
    try:
        browser.get(app.url + "/")
        width = browser.execute_script("return document.documentElement.clientWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width + 1, (scroll, width)
        nav = browser.find_element(By.CSS_SELECTOR, "nav[aria-label='Main']")
        assert nav.find_element(By.LINK_TEXT, "Tickets").is_displayed()
        shot("home-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_the_error_page_is_friendly(app, browser, shot):
    browser.get(app.url + "/no/such/page")
    text = visible_text(browser)
    assert "404" in text
    assert browser.find_element(By.CSS_SELECTOR, "a[href='/']")
    shot("error-404")


def test_the_benchmark_list_renders_fifty_rows(app, browser, shot):
    browser.get(app.url + "/bench/list")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert len(rows) == 50
    assert "Printer on floor 1 jams" in rows[0].text
    rows[0].find_element(By.XPATH, "..")  # inside the table body
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    shot("bench-list")
