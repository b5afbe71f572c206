"""Fixtures: one PostgreSQL cluster per run, a fresh database and server per test."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tdharness  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    if not os.path.exists(tdharness.BIN):
        pytest.exit(f"no tallydesk binary at {tdharness.BIN}: run ./dev test", 2)
    c = tdharness.Cluster()
    template = c.new_db()
    conf = os.path.join(c.dir, "migrate.conf")
    with open(conf, "w") as f:
        f.write(f"database_url = {c.url(template)}\n"
                f"sql_dir = {os.path.join(tdharness.SRC, 'sql')}\n")
    r = tdharness.run_bin("migrate", conf=conf)
    assert r.returncode == 0, r.stderr
    c.template = template
    yield c
    c.destroy()


@pytest.fixture
def dbname(cluster):
    """A fresh database cloned from the migrated template."""
    return cluster.new_db(cluster.template)


@pytest.fixture
def app_factory(cluster):
    """Starts App instances on demand; stops them and checks their logs after."""
    apps = []

    def make(dbname=None, **kw):
        a = tdharness.App(cluster, dbname or cluster.new_db(cluster.template), **kw)
        apps.append(a)
        return a.start()

    yield make
    reports = [r for r in (a.stop() for a in apps) if r]
    assert not reports, "sanitizer report in the server log:\n" + reports[0]


@pytest.fixture
def app(app_factory):
    """A running tallydesk + nginx on a fresh, migrated database."""
    return app_factory()


SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through chromedriver (selenium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not os.path.exists("/usr/bin/chromium") or not os.path.exists("/usr/bin/chromedriver"):
        pytest.skip("chromium and chromium-driver are not installed (./dev test installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--window-size=1280,900"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


@pytest.fixture
def shot(browser):
    """shot(name): saves a screenshot under tests/browser/screenshots/ (gitignored)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)

    def save(name):
        path = os.path.join(SCREENSHOTS, name + ".png")
        browser.save_screenshot(path)
        return path
    return save


from tdclient import submit_and_wait  # noqa: E402,F401  (kept for old imports)
