"""tdclient: a signed-in browser-like session for the HTTP tests."""
import base64
import hashlib
import hmac
import re
import struct
import time

import requests

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html):
    m = CSRF_RE.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Browser:
    """A requests.Session that reads the CSRF token from each page it loads."""

    def __init__(self, app):
        self.app = app
        self.s = requests.Session()
        self.csrf = None

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 20)
        r = self.s.get(self.app.url + path, **kw)
        m = CSRF_RE.search(r.text)
        if m:
            self.csrf = m.group(1)
        return r

    def post(self, path, data=None, csrf=True, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 20)
        data = dict(data or {})
        if csrf and "csrf" not in data:
            if self.csrf is None:
                self.get("/login")
            data["csrf"] = self.csrf
        r = self.s.post(self.app.url + path, data=data, **kw)
        m = CSRF_RE.search(r.text)
        if m:
            self.csrf = m.group(1)
        return r

    def login(self, email, password, workspace="demo"):
        self.get("/login")
        r = self.post("/login", {"workspace": workspace, "email": email,
                                 "password": password, "next": "/"})
        if r.status_code == 303 and r.headers["Location"] == "/":
            self.get("/")  # pick up the session's CSRF token
        return r


def totp_now(secret_b32, at=None, step_offset=0):
    key = base64.b32decode(secret_b32.replace(" ", "") + "=" * (-len(secret_b32.replace(" ", "")) % 8))
    counter = int((at or time.time()) // 30) + step_offset
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return f"{code:06d}"


def submit_and_wait(browser, button):
    """Clicks a submit button and waits until the next page has replaced this one.

    While the old page is being torn down chromedriver may answer with a
    generic WebDriverException ("Node ... does not belong to the document")
    instead of a stale-element error: both mean the old page is gone."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_):
        try:
            button.is_enabled()
            return False
        except WebDriverException:
            return True

    def loaded(d):
        try:
            return d.execute_script("return document.readyState") == "complete"
        except WebDriverException:
            return False

    button.click()
    WebDriverWait(browser, 15).until(gone)
    WebDriverWait(browser, 15).until(loaded)
