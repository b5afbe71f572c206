"""The binary's command line: modes, help, config validation."""
import os

from tdharness import SRC, run_bin


def test_help_lists_every_mode():
    r = run_bin("--help")
    assert r.returncode == 0
    for mode in ("serve", "migrate", "seed-demo", "version"):
        assert f"  {mode}" in r.stdout


def test_version_prints_the_version():
    r = run_bin("version")
    assert r.returncode == 0
    assert r.stdout.startswith("tallydesk ")


def test_unknown_mode_is_a_usage_error():
    r = run_bin("frobnicate")
    assert r.returncode == 2
    assert "unknown mode 'frobnicate'" in r.stderr
    assert "--help" in r.stderr


def test_unknown_flag_is_a_usage_error():
    r = run_bin("--verbose", "serve")
    assert r.returncode == 2
    assert "unknown option '--verbose'" in r.stderr


def test_no_mode_is_a_usage_error():
    assert run_bin().returncode == 2


def test_missing_config_value_is_a_usage_error():
    r = run_bin("migrate", "--config")
    assert r.returncode == 2
    assert "'--config'" in r.stderr


def test_an_explicit_config_that_does_not_exist_is_refused(tmp_path):
    r = run_bin("migrate", conf=str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert "cannot read config" in r.stderr and "nope.conf" in r.stderr


def test_a_bad_config_value_names_file_line_and_key(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("# ok\nworkers = lots\n")
    r = run_bin("migrate", conf=str(conf))
    assert r.returncode == 1
    assert f"{conf}:2: 'workers' must be a number from 1 to 256, not 'lots'" in r.stderr


def test_an_unknown_config_key_is_refused(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("databse_url = x\n")
    r = run_bin("migrate", conf=str(conf))
    assert r.returncode == 1
    assert "unknown key 'databse_url'" in r.stderr


def test_environment_overrides_are_validated_too(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("workers = 2\n")
    r = run_bin("migrate", conf=str(conf), env={"TALLYDESK_WORKERS": "0"})
    assert r.returncode == 1
    assert "environment TALLYDESK_WORKERS" in r.stderr


def test_migrate_against_an_unreachable_database_says_so(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text(f"database_url = host={tmp_path} port=1 dbname=none\n"
                    f"db_timeout = 1\nsql_dir = {SRC}/sql\n")
    r = run_bin("migrate", conf=str(conf))
    assert r.returncode == 1
    assert "cannot connect to the database" in r.stderr


def test_seed_demo_sample_data_once_and_only_when_asked(app):
    from tdclient import Browser
    assert app.run("seed-demo", "--password", "correct horse battery").returncode == 0
    assert app.sql("SELECT count(*) FROM clients") == [(0,)]
    r = app.run("seed-demo", "--password", "correct horse battery", "--sample-data")
    assert r.returncode == 0 and "sample clients, contracts, tickets and time added" in r.stdout
    again = app.run("seed-demo", "--password", "correct horse battery", "--sample-data")
    assert again.returncode == 0 and "sample" not in again.stdout
    assert app.sql("SELECT count(*) FROM clients") == [(3,)]
    assert app.sql("SELECT count(*) FROM tickets") == [(5,)]
    # Tickets take their client's contract tier; time counts toward Acme's block.
    tiers = dict(app.sql("SELECT t.number, s.name FROM tickets t JOIN sla_tiers s"
                         " ON s.tenant_id = t.tenant_id AND s.id = t.sla_tier_id"))
    assert tiers[1001] == "Gold" and tiers[1003] == "Silver" and tiers[1005] == "Bronze"
    # Tickets with a public staff reply have been answered.
    assert app.sql("SELECT number FROM tickets WHERE first_response_at IS NOT NULL ORDER BY number") == \
        [(1001,), (1003,), (1005,)]
    b = Browser(app)
    assert b.login("admin@demo.tallydesk.test", "correct horse battery").status_code == 303
    page = b.get("/tickets/" + str(app.sql("SELECT id FROM tickets WHERE number = 1001")[0][0])).text
    assert "of 10.0 h left this month" in page and "SLA · Gold" in page
    for path in ("/tickets", "/clients", "/contracts", "/time", "/reports/sla"):
        assert b.get(path).status_code == 200, path
    # A new ticket continues the numbering.
    h = {"Authorization": "Bearer " + app.run("apikey", "create", "--tenant", "demo", "--name", "k",
                                              "--role", "admin").stdout.strip()}
    cid = app.sql("SELECT id FROM clients WHERE name = 'Initech Design'")[0][0]
    r = app.post("/api/v1/tickets", json={"subject": "x", "client_id": cid}, headers=h)
    assert r.status_code == 201 and r.json()["ticket"]["ref"] == "T-1006"
