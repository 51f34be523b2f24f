"""One table of defaults: a target built in code gets what the loader gives one it reads."""

from __future__ import annotations

from pathlib import Path

from pytest_maintcheck.config import (
    DEFAULT_THRESHOLDS,
    DEFAULTS,
    Backup,
    Config,
    Database,
    DatabaseMaintenanceTarget,
    HealthCheck,
    RestoreTest,
    load_config,
)

CONFIG = """\
version: 1
databases: {primary: {dsn: 'postgresql://maint@db/clinical'}}
healthChecks:
  - {service: api, type: api, endpoint: 'https://api.internal/health'}
  - {service: db, type: database, endpoint: primary}
  - {service: disk, type: storage, endpoint: /var/lib/postgresql}
databaseMaintenance: [{database: primary}]
"""


def _loaded(tmp_path: Path) -> Config:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path, environ={})


def test_a_health_check_built_in_code_takes_as_many_samples_as_a_loaded_one(
    tmp_path: Path,
) -> None:
    config = _loaded(tmp_path)
    api, db, disk = config.health_checks
    built = HealthCheck(service="api", type="api", endpoints=("https://api.internal/health",))
    assert built.samples == api.samples == 3  # the dataclass said 5, the loader 3
    assert (built.interval, built.timeout) == (api.interval, api.timeout)
    # one sample of a database or a disk says all there is to say
    assert db.samples == disk.samples == DEFAULTS.health_samples_for("database") == 1


def test_database_and_maintenance_defaults_agree_with_the_loader(tmp_path: Path) -> None:
    config = _loaded(tmp_path)
    loaded_db = config.databases["primary"]
    built_db = Database(name="primary", dsn="postgresql://maint@db/clinical")
    assert (loaded_db.connect_timeout, loaded_db.statement_timeout) == (
        built_db.connect_timeout,
        built_db.statement_timeout,
    )
    (loaded,) = config.database_maintenance
    built = DatabaseMaintenanceTarget(database="primary")
    for name in ("min_dead_tuples", "timeout", "repair_timeout", "lock_timeout"):
        assert getattr(loaded, name) == getattr(built, name), name


PHYSICAL = """\
version: 1
databases: {primary: {dsn: 'postgresql://maint@db/clinical'}}
backups:
  - name: cluster
    kind: pgbackrest
    stanza: main
    restoreTest: {expectTables: [patients]}
replication: [{database: primary}]
archiving: [{database: primary}]
"""


def test_physical_backup_and_replication_defaults_come_from_the_table(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(PHYSICAL, encoding="utf-8")
    config = load_config(path, environ={})
    (backup,) = config.backups
    built = Backup(name="cluster", kind="pgbackrest", stanza="main")
    assert backup.timeout == built.timeout == DEFAULTS.backup_tool_timeout
    assert backup.restore_test is not None
    assert backup.restore_test.max_duration == RestoreTest().max_duration
    (replication,) = config.replication
    table = DEFAULT_THRESHOLDS["replication"]
    assert replication.replay_lag is not None
    assert (replication.replay_lag.warn, replication.replay_lag.fail) == (30.0, 300.0)
    assert table["replayLag"] == {"warn": "30s", "fail": "5m"}
    (archiving,) = config.archiving
    assert archiving.archive_max_age is not None
    assert archiving.archive_max_age.fail == 900.0  # "15m", DEFAULT_THRESHOLDS["archiving"]
