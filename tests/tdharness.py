"""tdharness: real PostgreSQL, the real binary and real nginx for the tests.

One throwaway PostgreSQL cluster per test run (initdb in a temp dir, unix
socket only), a template database migrated once with `tallydesk migrate`,
and for each test a fresh database cloned from it, `tallydesk serve` on a
private FastCGI socket and nginx with the project's own config on a free
loopback port.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
import requests

SRC = os.environ.get("TALLYDESK_SRC") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TALLYDESK_BIN") or os.path.join(SRC, "var", "build-asan", "tallydesk")
SHARED = os.path.join(os.path.dirname(SRC), "shared")
PGBIN = "/usr/lib/postgresql/15/bin"
IS_ROOT = os.geteuid() == 0
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg(cmd):
    """Runs cmd as the postgres user when we are root (initdb refuses root)."""
    if IS_ROOT:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class Cluster:
    """A private PostgreSQL 15 cluster in a temp dir, reachable by socket only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tdpg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "run")
        self.port = free_port()
        os.mkdir(self.sock)
        if IS_ROOT:
            pw = pwd.getpwnam("postgres")
            for d in (self.dir, self.sock):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        subprocess.run(_as_pg([f"{PGBIN}/initdb", "-D", self.data, "-U", "postgres",
                               "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL, cwd="/")
        self.start()
        self.counter = 0

    def start(self):
        opts = (f"-k {self.sock} -c listen_addresses='' -p {self.port} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_pg([f"{PGBIN}/pg_ctl", "-D", self.data, "-l",
                               os.path.join(self.dir, "postgres.log"), "-w", "-o", opts,
                               "start"]), check=True, stdout=subprocess.DEVNULL, cwd="/")

    def stop(self, mode="fast"):
        subprocess.run(_as_pg([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                               "stop"]), check=True, stdout=subprocess.DEVNULL, cwd="/")

    def url(self, dbname, user="postgres"):
        return f"host={self.sock} port={self.port} user={user} dbname={dbname}"

    def admin(self, sql):
        with psycopg.connect(self.url("postgres"), autocommit=True) as c:
            c.execute(sql)

    def new_db(self, template=None):
        self.counter += 1
        name = f"t{os.getpid()}_{self.counter}"
        tmpl = f" TEMPLATE {template}" if template else ""
        self.admin(f'CREATE DATABASE "{name}"{tmpl}')
        return name

    def destroy(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_bin(*args, conf=None, env=None, check=False, timeout=60, input=None):
    """Runs the tallydesk binary; returns CompletedProcess with text output."""
    cmd = [BIN]
    if conf:
        cmd += ["--config", conf]
    cmd += list(args)
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, check=check,
                          timeout=timeout, input=input)


def sanitizer_report(text):
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 2000]
    return None


class App:
    """tallydesk serve + nginx for one test, on a database of its own."""

    def __init__(self, cluster, dbname, workers=2, extra_conf="", views_dir=None):
        self.cluster = cluster
        self.dbname = dbname
        self.db_url = cluster.url(dbname)  # as the owner, for test setup and checks
        self.app_db_url = cluster.url(dbname, "tallydesk_app")  # what the app uses
        self.dir = tempfile.mkdtemp(prefix="tdapp-")
        self.socket = os.path.join(self.dir, "fcgi.sock")
        self.conf = os.path.join(self.dir, "tallydesk.conf")
        self.log_path = os.path.join(self.dir, "tallydesk.log")
        self.views_dir = views_dir or os.path.join(SRC, "views")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.write_conf(extra_conf)
        self.proc = None
        self.nginx_dir = os.path.join(self.dir, "nginx")

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write(f"database_url = {self.app_db_url}\n"
                    f"migrate_database_url = {self.db_url}\n"
                    f"socket = {self.socket}\n"
                    f"socket_mode = 0660\n"
                    f"workers = {self.workers}\n"
                    f"views_dir = {self.views_dir}\n"
                    f"sql_dir = {os.path.join(SRC, 'sql')}\n"
                    f"secure_cookies = off\n"
                    f"base_url = {self.url}\n"
                    f"db_timeout = 2\n"
                    # Cheap hashing keeps the tests fast; production uses the defaults.
                    f"argon2_t = 1\nargon2_m = 4096\n"
                    f"default_workspace = demo\n" + extra)

    def start(self):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
        self.proc = subprocess.Popen([BIN, "--config", self.conf, "serve"],
                                     stdout=self.log, stderr=self.log, env=env,
                                     start_new_session=True)
        deadline = time.time() + 20
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tallydesk serve did not start:\n" + self.read_log())
            time.sleep(0.02)
        subprocess.run([os.path.join(SRC, "nginx", "mkconf"), self.nginx_dir,
                        str(self.port), self.socket, os.path.join(SRC, "views", "static")],
                       check=True)
        subprocess.run(["nginx", "-c", os.path.join(self.nginx_dir, "nginx.conf")],
                       check=True, stderr=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, path="/healthz", timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                if requests.get(self.url + path, timeout=2).status_code in (200, 503):
                    return
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise RuntimeError("tallydesk did not answer through nginx:\n" + self.read_log())
            time.sleep(0.05)

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def worker_pids(self):
        """PIDs of the master's live children (its workers)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return sorted(int(x) for x in out.split())

    def get(self, path, **kw):
        kw.setdefault("timeout", 20)
        kw.setdefault("allow_redirects", False)
        return requests.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", 20)
        kw.setdefault("allow_redirects", False)
        return requests.post(self.url + path, **kw)

    def run(self, *args, **kw):
        """Runs a tallydesk mode against this app's config."""
        return run_bin(*args, conf=self.conf, **kw)

    def sql(self, query, params=None):
        with psycopg.connect(self.db_url, autocommit=True) as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description else None

    def stop(self):
        pid_file = os.path.join(self.nginx_dir, "nginx.pid")
        if os.path.exists(pid_file):
            subprocess.run(["nginx", "-c", os.path.join(self.nginx_dir, "nginx.conf"),
                            "-s", "stop"], stderr=subprocess.DEVNULL)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self.log.close()
        report = sanitizer_report(self.read_log())
        shutil.rmtree(self.dir, ignore_errors=True)
        return report


def fcgi_request(socket_path, params, body=b""):
    """Sends one FastCGI request straight to the socket (no nginx); returns
    (headers dict, body bytes). For what nginx would never send us."""
    import struct

    def record(kind, content):
        return struct.pack("!BBHHBx", 1, kind, 1, len(content), 0) + content

    def pair(k, v):
        k, v = k.encode(), v.encode()
        def n(x):
            return bytes([len(x)]) if len(x) < 128 else struct.pack("!I", len(x) | 0x80000000)
        return n(k) + n(v) + k + v

    env = b"".join(pair(k, v) for k, v in params.items())
    msg = record(1, struct.pack("!HB5x", 1, 0)) + record(4, env) + record(4, b"")
    if body:
        msg += record(5, body)
    msg += record(5, b"")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(socket_path)
    s.sendall(msg)
    out = b""
    while True:
        head = s.recv(8, socket.MSG_WAITALL)
        if len(head) < 8:
            break
        _, kind, _, clen, plen = struct.unpack("!BBHHB", head[:7])
        content = s.recv(clen, socket.MSG_WAITALL) if clen else b""
        if plen:
            s.recv(plen, socket.MSG_WAITALL)
        if kind == 6:
            out += content
        if kind == 3:
            break
    s.close()
    raw_headers, _, payload = out.partition(b"\r\n\r\n")
    headers = {}
    for line in raw_headers.decode().split("\r\n"):
        k, _, v = line.partition(":")
        headers.setdefault(k.strip(), v.strip())
    return headers, payload
