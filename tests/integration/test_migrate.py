"""tallydesk migrate: order, once only, checksums, locking, rollback."""
import os
import shutil
import subprocess

import psycopg
import pytest

from tdharness import BIN, SRC, run_bin


@pytest.fixture
def sqldir(tmp_path):
    d = tmp_path / "sql"
    shutil.copytree(os.path.join(SRC, "sql"), d)
    return d


def conf_for(tmp_path, cluster, dbname, sqldir):
    conf = tmp_path / "m.conf"
    conf.write_text(f"database_url = {cluster.url(dbname)}\nsql_dir = {sqldir}\n")
    return str(conf)


def applied(cluster, dbname):
    with psycopg.connect(cluster.url(dbname)) as c:
        return [r[0] for r in c.execute("SELECT name FROM schema_migrations ORDER BY name")]


def test_migrate_applies_every_file_in_order_and_records_checksums(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    conf = conf_for(tmp_path, cluster, db, sqldir)
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 0, r.stderr
    files = sorted(f for f in os.listdir(sqldir) if f.endswith(".sql"))
    assert applied(cluster, db) == files
    for f in files:
        assert f"applied {f}" in r.stdout
    with psycopg.connect(cluster.url(db)) as c:
        sums = [r[0] for r in c.execute("SELECT checksum FROM schema_migrations")]
        assert all(len(s) == 64 for s in sums)
        c.execute("SELECT id, slug FROM tenants")  # the first migration's tables exist


def test_migrate_twice_changes_nothing(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    conf = conf_for(tmp_path, cluster, db, sqldir)
    assert run_bin("migrate", conf=conf).returncode == 0
    before = applied(cluster, db)
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 0
    assert "0 applied now" in r.stdout
    assert applied(cluster, db) == before


def test_an_edited_migration_is_refused(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    conf = conf_for(tmp_path, cluster, db, sqldir)
    assert run_bin("migrate", conf=conf).returncode == 0
    first = sorted(sqldir.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 1
    assert f"migration '{first.name}' was edited after it was applied" in r.stderr


def test_a_missing_applied_migration_is_refused(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    conf = conf_for(tmp_path, cluster, db, sqldir)
    assert run_bin("migrate", conf=conf).returncode == 0
    first = sorted(sqldir.glob("0001_*.sql"))[0]
    first.unlink()
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 1
    assert f"migration '{first.name}' was applied but its file is missing" in r.stderr


def test_a_new_migration_sorting_before_an_applied_one_is_refused(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    (sqldir / "9000_late.sql").write_text("CREATE TABLE late (id int);\n")
    conf = conf_for(tmp_path, cluster, db, sqldir)
    assert run_bin("migrate", conf=conf).returncode == 0
    (sqldir / "8999_early.sql").write_text("CREATE TABLE early (id int);\n")
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 1
    assert "'8999_early.sql' is new but sorts before '9000_late.sql'" in r.stderr


def test_a_failing_migration_is_rolled_back_whole(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    (sqldir / "9001_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    conf = conf_for(tmp_path, cluster, db, sqldir)
    r = run_bin("migrate", conf=conf)
    assert r.returncode == 1
    assert "migration '9001_broken.sql' failed" in r.stderr
    assert "no_such_function" in r.stderr
    assert "9001_broken.sql" not in applied(cluster, db)
    with psycopg.connect(cluster.url(db)) as c:
        assert c.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
    # The migrations before it stay applied.
    assert len(applied(cluster, db)) == len(list(sqldir.glob("*.sql"))) - 1


def test_concurrent_migrations_apply_each_file_once(tmp_path, cluster, sqldir):
    db = cluster.new_db()
    (sqldir / "9002_slow.sql").write_text(
        "SELECT pg_sleep(0.5);\nCREATE TABLE slow_one (id int);\n")
    conf = conf_for(tmp_path, cluster, db, sqldir)
    procs = [subprocess.Popen([BIN, "--config", conf, "migrate"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert sum(out.count("applied 9002_slow.sql") for out, _, _ in results) == 1
    assert applied(cluster, db).count("9002_slow.sql") == 1


def test_seed_demo_is_idempotent(tmp_path, cluster, dbname):
    conf = tmp_path / "s.conf"
    conf.write_text(f"database_url = {cluster.url(dbname)}\n")
    r1 = run_bin("seed-demo", "--password", "pw-one-two", conf=str(conf))
    assert r1.returncode == 0, r1.stderr
    r2 = run_bin("seed-demo", conf=str(conf))
    assert r2.returncode == 0, r2.stderr
    assert "0 users created now" in r2.stdout
    with psycopg.connect(cluster.url(dbname)) as c:
        assert c.execute("SELECT count(*) FROM tenants WHERE slug = 'demo'").fetchone()[0] == 1
        users = c.execute("SELECT email, role, password_hash FROM users ORDER BY id").fetchall()
    assert len(users) == 4
    assert users[0][0] == "admin@demo.tallydesk.test" and users[0][1] == "admin"
    assert all(u[2].startswith("$argon2id$") for u in users)


def test_the_audit_log_is_append_only(cluster, dbname):
    with psycopg.connect(cluster.url(dbname), autocommit=True) as c:
        tid = c.execute("INSERT INTO tenants (slug, name) VALUES ('a', 'A') RETURNING id").fetchone()[0]
        c.execute("INSERT INTO audit_log (tenant_id, actor, action) VALUES (%s, 'test', 'x')", (tid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("UPDATE audit_log SET action = 'y'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM audit_log")
        assert c.execute("SELECT action FROM audit_log").fetchone()[0] == "x"
