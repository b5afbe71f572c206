"""Every page is valid HTML (tidy, as cgit's t0010-validate-html does)."""
import shutil
import subprocess

import pytest

PAGES = ["/", "/tickets", "/clients", "/contracts", "/invoices", "/time", "/reports",
         "/settings", "/bench/list", "/no/such/page"]


@pytest.mark.parametrize("path", PAGES)
def test_page_is_valid_html(app, path):
    if not shutil.which("tidy"):
        pytest.skip("tidy is not installed (./dev test installs it)")
    html = app.get(path).text
    r = subprocess.run(["tidy", "-q", "-e", "--show-warnings", "yes", "-utf8",
                        "--drop-empty-elements", "no"],
                       input=html, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if "Error:" in l]
    assert not errors, "\n".join(errors)
    assert r.returncode in (0, 1), r.stderr  # 1 = warnings only
