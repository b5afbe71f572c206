"""Every page is valid HTML (tidy, as cgit's t0010-validate-html does)."""
import shutil
import subprocess

import pytest

from tdclient import Browser

PAGES = ["/", "/tickets", "/clients", "/contracts", "/invoices", "/time", "/reports",
         "/settings", "/settings/users", "/settings/apikeys", "/settings/security",
         "/settings/audit", "/bench/list", "/no/such/page"]
ANONYMOUS = ["/login", "/login/forgot", "/reset/1.xyz", "/invite/1.xyz"]


def validate(html):
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8",
                        "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if "Error:" in l]
    assert not errors, "\n".join(errors)
    assert r.returncode in (0, 1), r.stderr  # 1 = warnings only


@pytest.fixture(scope="module")
def pages(cluster):
    """Every page's HTML, fetched once as the demo admin."""
    import tdharness
    app = tdharness.App(cluster, cluster.new_db(cluster.template)).start()
    try:
        assert app.run("seed-demo", "--password", "pw for html check").returncode == 0
        b = Browser(app)
        b.login("admin@demo.tallydesk.test", "pw for html check")
        out = {p: b.get(p).text for p in PAGES}
        out.update({p: Browser(app).get(p).text for p in ANONYMOUS})
        return out
    finally:
        app.stop()


@pytest.mark.parametrize("path", PAGES + ANONYMOUS)
def test_page_is_valid_html(pages, path):
    if not shutil.which("tidy"):
        pytest.skip("tidy is not installed (./dev test installs it)")
    validate(pages[path])
