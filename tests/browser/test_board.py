"""A technician moves tickets across the kanban board: with the keyboard
([ and ]) and by dragging, and the move survives a reload."""
import psycopg
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys  # noqa: F401
from selenium.webdriver.support.ui import WebDriverWait

from tdclient import submit_and_wait

PW = "correct horse battery"


def sign_in(app, browser):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    browser.delete_all_cookies()
    browser.get(app.url + "/login")
    browser.find_element(By.NAME, "email").send_keys("tess@demo.tallydesk.test")
    browser.find_element(By.NAME, "password").send_keys(PW)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type='submit']"))


def make_tickets(app, subjects):
    tenant = app.sql("SELECT id FROM tenants WHERE slug = 'demo'")[0][0]
    with psycopg.connect(app.db_url, autocommit=True) as c:
        c.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        cl = c.execute("INSERT INTO clients (tenant_id, name) VALUES (%s, 'Board Co') RETURNING id",
                       (tenant,)).fetchone()[0]
        out = []
        for i, s in enumerate(subjects):
            out.append(c.execute(
                "INSERT INTO tickets (tenant_id, number, subject, client_id)"
                " VALUES (%s, %s, %s, %s) RETURNING id", (tenant, 5001 + i, s, cl)).fetchone()[0])
        return out


def column_of(browser, tid):
    card = browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{tid}']")
    return card.find_element(By.XPATH, "./ancestor::section[contains(@class,'board-col')]").get_attribute("data-status")


def wait_moved(browser, tid, status):
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f".board-card[data-id='{tid}']").get_attribute("data-moved") == status
        or d.find_element(By.CSS_SELECTOR, ".board-message").text)
    assert browser.find_element(By.CSS_SELECTOR, ".board-message").text == ""


def test_move_cards_on_the_board(app, browser, shot):
    sign_in(app, browser)
    a, b = make_tickets(app, ["Keyboard mover", "Dragged card"])
    browser.get(app.url + "/tickets/board")
    assert column_of(browser, a) == "new" and column_of(browser, b) == "new"
    # the no-JS forms are hidden once the script runs
    assert not browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{a}'] .board-move").is_displayed()

    # keyboard: focus the card and press ]
    card = browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{a}']")
    browser.execute_script("arguments[0].focus()", card)
    card.send_keys("]")
    wait_moved(browser, a, "in_progress")

    # drag and drop: chromedriver does not run HTML5 DnD for ActionChains,
    # so the page gets the same events a real drag sends.
    browser.execute_script("""
        var card = arguments[0], col = arguments[1], dt = new DataTransfer();
        var box = col.getBoundingClientRect();
        function fire(el, type) {
          el.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt,
                                                clientX: box.left + 10, clientY: box.bottom - 5}));
        }
        fire(card, 'dragstart'); fire(col, 'dragover'); fire(col, 'drop'); fire(card, 'dragend');
    """, browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{b}']"),
        browser.find_element(By.CSS_SELECTOR, ".board-col[data-status='in_progress'] .board-cards"))
    wait_moved(browser, b, "in_progress")
    shot("board-moved")

    browser.get(app.url + "/tickets/board")
    assert column_of(browser, a) == "in_progress" and column_of(browser, b) == "in_progress"
    order = [e.get_attribute("data-id") for e in
             browser.find_elements(By.CSS_SELECTOR, ".board-col[data-status='in_progress'] .board-card")]
    assert order.index(str(a)) < order.index(str(b))
    rows = dict(app.sql("SELECT id, status FROM tickets WHERE id = ANY(%s)", ([a, b],)))
    assert rows == {a: "in_progress", b: "in_progress"}
    assert app.sql("SELECT count(*) FROM audit_log WHERE action = 'ticket.update'")[0][0] == 2

    # moving into Closed is refused in the page, and nothing is sent
    card = browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{a}']")
    browser.execute_script("arguments[0].focus()", card)
    card.send_keys("]")
    card = browser.find_element(By.CSS_SELECTOR, f".board-card[data-id='{a}']")
    browser.execute_script("arguments[0].focus()", card)
    card.send_keys("]")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, ".board-message").text)
    assert "close guard" in browser.find_element(By.CSS_SELECTOR, ".board-message").text
    assert column_of(browser, a) == "waiting"
