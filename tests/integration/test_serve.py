"""serve: pre-fork workers, crash restart, reload, drain, database outages."""
import os
import shutil
import signal
import threading
import time

import psycopg
import pytest
import requests

from tdclient import Browser
from tdharness import SRC

PW = "correct horse battery"


def signed_in(app):
    assert app.run("seed-demo", "--password", PW).returncode == 0
    b = Browser(app)
    assert b.login("admin@demo.tallydesk.test", PW).status_code == 303
    return b


def wait_for(cond, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def hammer(app, path, stop, results, lock):
    s = requests.Session()
    while not stop.is_set():
        try:
            code = s.get(app.url + path, timeout=10).status_code
        except requests.RequestException as e:
            code = str(e)
        with lock:
            results.append(code)


def load(app, path, seconds, during=None, threads=6):
    stop, lock, results = threading.Event(), threading.Lock(), []
    ts = [threading.Thread(target=hammer, args=(app, path, stop, results, lock))
          for _ in range(threads)]
    for t in ts:
        t.start()
    time.sleep(seconds / 2)
    if during:
        during()
    time.sleep(seconds / 2)
    stop.set()
    for t in ts:
        t.join()
    return results


def test_serve_runs_the_configured_number_of_workers(app_factory):
    app = app_factory(workers=3)
    assert wait_for(lambda: len(app.worker_pids()) == 3)
    # While one worker is stuck on a lock, the others still answer.
    b = signed_in(app)
    holder = psycopg.connect(app.db_url)
    holder.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", b.get("/", timeout=30)))
    t.start()
    time.sleep(0.3)
    try:
        for _ in range(5):
            assert app.get("/healthz", timeout=5).status_code == 200
    finally:
        holder.rollback()
        holder.close()
    t.join(30)
    assert box["r"].status_code == 200


def test_a_killed_worker_is_replaced_and_no_other_request_is_lost(app_factory):
    app = app_factory(workers=3)
    assert wait_for(lambda: len(app.worker_pids()) == 3)
    victim = app.worker_pids()[0]
    results = load(app, "/login", 3, during=lambda: os.kill(victim, signal.SIGKILL))
    failed = [r for r in results if r != 200]
    assert len(results) > 50
    # Only the request the killed worker held (if any) may fail.
    assert len(failed) <= 1, failed[:5]
    assert wait_for(lambda: len(app.worker_pids()) == 3 and victim not in app.worker_pids())
    assert "killed by signal 9; restarting" in app.read_log()


def test_sighup_reloads_templates_without_dropping_requests(app_factory, tmp_path):
    views = tmp_path / "views"
    shutil.copytree(os.path.join(SRC, "views"), views)
    app = app_factory(workers=2, views_dir=str(views))
    b = signed_in(app)
    assert "Reloaded-marker" not in b.get("/reports").text
    reports = views / "reports" / "index.mustache"
    reports.write_text(reports.read_text().replace("{{$content}}", "{{$content}}Reloaded-marker", 1))
    old = set(app.worker_pids())
    results = load(app, "/healthz", 2, during=lambda: app.proc.send_signal(signal.SIGHUP))
    assert results and all(r == 200 for r in results), [r for r in results if r != 200][:5]
    assert wait_for(lambda: not (set(app.worker_pids()) & old))
    assert "Reloaded-marker" in b.get("/reports").text


def test_sighup_with_a_broken_config_keeps_serving(app_factory):
    app = app_factory(workers=2)
    with open(app.conf, "a") as f:
        f.write("workers = nope\n")
    app.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in app.read_log())
    assert app.get("/healthz").status_code == 200


def test_sigterm_finishes_the_request_in_flight(app_factory):
    app = app_factory(workers=2)
    b = signed_in(app)
    holder = psycopg.connect(app.db_url)
    holder.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", b.get("/", timeout=30)))
    t.start()
    time.sleep(0.5)  # the request now waits on the lock inside a worker
    app.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert app.proc.poll() is None  # still draining
    holder.rollback()
    holder.close()
    t.join(30)
    assert box["r"].status_code == 200
    assert app.proc.wait(timeout=30) == 0
    assert not os.path.exists(app.socket)


def test_database_restart_gives_503_then_recovers(app_factory, cluster):
    app = app_factory(workers=1)
    b = signed_in(app)
    assert b.get("/").status_code == 200
    cluster.stop()
    try:
        r = b.get("/")
        assert r.status_code == 503
        assert "database" in r.text.lower()
        h = app.get("/healthz")
        assert h.status_code == 503 and h.json()["database"] == "down"
        api = b.get("/api/v1/", headers={"Accept": "application/json"})
        assert api.status_code == 503 and api.json()["error"]["code"] == "unavailable"
    finally:
        cluster.start()
    assert b.get("/").status_code == 200


def test_serve_accepts_on_a_socket_passed_by_systemd(cluster, dbname, tmp_path):
    """Socket activation: fd 3 with LISTEN_PID/LISTEN_FDS, as systemd passes it."""
    import socket as pysocket
    import subprocess
    from tdharness import BIN, App

    app = App(cluster, dbname, workers=2)
    path = str(tmp_path / "activated.sock")
    listener = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    os.chmod(path, 0o666)
    # The config names another socket: the inherited one must win.
    fd = listener.fileno()
    proc = subprocess.Popen(
        ["bash", "-c", f'exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --config "$1" serve',
         BIN, app.conf],
        pass_fds=[fd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        app.socket = path
        subprocess.run([os.path.join(SRC, "nginx", "mkconf"), app.nginx_dir, str(app.port),
                        path, os.path.join(SRC, "views", "static")], check=True)
        subprocess.run(["nginx", "-c", os.path.join(app.nginx_dir, "nginx.conf")], check=True)
        try:
            app.wait_ready()
        except RuntimeError:
            proc.terminate()
            raise AssertionError("server output:\n" + proc.communicate()[0])
        assert app.get("/healthz").json()["database"] == "ok"
        assert not os.path.exists(app.socket.replace("activated", "fcgi"))
    finally:
        subprocess.run(["nginx", "-c", os.path.join(app.nginx_dir, "nginx.conf"), "-s", "stop"])
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        listener.close()
    assert "using the socket systemd passed" in out
    assert proc.returncode == 0


def test_systemd_units_are_valid(tmp_path):
    import shutil
    import subprocess
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    svc = open(os.path.join(SRC, "systemd", "tallydesk.service.in")).read()
    svc = svc.replace("@bindir@", "/bin").replace("@sysconfdir@", "/etc").replace(
        "@pkgdatadir@", "/usr/share/tallydesk")
    svc = svc.replace("ExecStart=/bin/tallydesk", "ExecStart=/bin/true")
    (tmp_path / "tallydesk.service").write_text(svc)
    shutil.copy(os.path.join(SRC, "systemd", "tallydesk.socket"), tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / "tallydesk.socket"), str(tmp_path / "tallydesk.service")],
                       capture_output=True, text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if "tallydesk" in l and "Failed to" not in l and "not found" not in l]
    assert r.returncode == 0 or not problems, r.stdout + r.stderr
