"""serve: pre-fork workers, crash restart, reload, drain, database outages."""
import os
import shutil
import signal
import threading
import time

import psycopg
import requests

from tdharness import SRC


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
    holder = psycopg.connect(app.db_url)
    holder.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", app.get("/", timeout=30)))
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
    results = load(app, "/", 3, during=lambda: os.kill(victim, signal.SIGKILL))
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
    assert "Reloaded-marker" not in app.get("/tickets").text
    placeholder = views / "placeholder.mustache"
    placeholder.write_text(placeholder.read_text().replace("{{section}}", "{{section}} Reloaded-marker", 1))
    old = set(app.worker_pids())
    results = load(app, "/healthz", 2, during=lambda: app.proc.send_signal(signal.SIGHUP))
    assert results and all(r == 200 for r in results), [r for r in results if r != 200][:5]
    assert wait_for(lambda: not (set(app.worker_pids()) & old))
    assert "Reloaded-marker" in app.get("/tickets").text


def test_sighup_with_a_broken_config_keeps_serving(app_factory):
    app = app_factory(workers=2)
    with open(app.conf, "a") as f:
        f.write("workers = nope\n")
    app.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in app.read_log())
    assert app.get("/healthz").status_code == 200


def test_sigterm_finishes_the_request_in_flight(app_factory):
    app = app_factory(workers=2)
    holder = psycopg.connect(app.db_url)
    holder.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", app.get("/", timeout=30)))
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
    assert app.get("/").status_code == 200
    cluster.stop()
    try:
        r = app.get("/")
        assert r.status_code == 503
        assert "database" in r.text.lower()
        h = app.get("/healthz")
        assert h.status_code == 503 and h.json()["database"] == "down"
        api = app.get("/api/v1/")
        assert api.status_code == 503 and api.json()["error"]["code"] == "unavailable"
    finally:
        cluster.start()
    assert app.get("/").status_code == 200
