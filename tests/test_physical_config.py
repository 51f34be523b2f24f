"""The config of physical backups, replication and archiving: parsed, defaulted, refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_maintcheck.config import ConfigError, load_config, schema
from pytest_maintcheck.targets import TARGETS

HEAD = "version: 1\ndatabases:\n  primary: {dsn: 'postgresql://maint@db/clinical'}\n"


def _load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "maintcheck.yaml"
    path.write_text(HEAD + body)
    return load_config(path, environ={})


def _error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, body)
    return str(caught.value)


SPEC_SECTIONS = """\
backups:
  - name: cluster
    kind: pgbackrest
    stanza: clinical
    config: /etc/pgbackrest/pgbackrest.conf
    maxAge: 26h
    database: primary
    restoreTest: {maxDuration: 30m, targetTime: "2026-05-01T03:00:00Z", expectTables: [patients]}
  - {name: cluster-barman, kind: barman, server: clinical, maxAge: 26h}
replication:
  - database: primary
    standbys: [standby-a, standby-b]
    replayLag: {warn: 30s, fail: 5m}
    slotRetained: {warn: 5GB, fail: 20GB}
archiving:
  - {database: primary}
"""
PGBR = "backups:\n  - {name: c, kind: pgbackrest, stanza: s, "


def test_spec_names_load_with_defaults(tmp_path: Path) -> None:
    config = _load(tmp_path, SPEC_SECTIONS)
    pgbr, barman = config.backups
    assert pgbr.stanza == "clinical"
    assert pgbr.tool_config == Path("/etc/pgbackrest/pgbackrest.conf")
    assert pgbr.restore_test is not None
    assert pgbr.restore_test.target_time == datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    assert pgbr.restore_test.max_duration == 1800.0
    assert barman.server == "clinical"
    assert barman.restore_test is None
    (replication,) = config.replication
    assert replication.standbys == 2
    assert replication.standby_names == ("standby-a", "standby-b")
    assert replication.slot_retained is not None
    assert replication.slot_retained.fail == 20e9
    assert replication.replay_lag_bytes is not None  # a default: 1GB / 16GB
    (archiving,) = config.archiving
    assert archiving.archive_max_age is not None
    assert archiving.archive_max_age.fail == 900.0
    # file checks never see physical entries, physical checks never see file ones
    assert TARGETS["backup"].targets(config) == []
    assert [b.name for b in TARGETS["physical_backup"].targets(config)] == [
        "cluster",
        "cluster-barman",
    ]
    assert [b.name for b in TARGETS["restored_physical_backup"].targets(config)] == ["cluster"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("backups:\n  - {name: c, kind: pgbackrest}\n", "'stanza' is required"),
        ("backups:\n  - {name: c, kind: barman}\n", "'server' is required"),
        ("backups:\n  - {name: c, kind: pg_dump, location: /x}\n", "'pattern' is required"),
        (
            "backups:\n  - {name: c, kind: pgbackrest, stanza: s, stanzza: t}\n",
            "did you mean 'stanza'",
        ),
        (
            PGBR + "restoreTest: {target: primary}}\n",
            "target is for pg_dump",
        ),
        (
            PGBR + "restoreTest: {targetTime: '2026-05-01 03:00'}}\n",
            "a time with its zone",
        ),
        (
            "backups:\n  - {name: c, kind: pg_dump, location: /x, pattern: '*', database: primary,"
            " restoreTest: {targetTime: latest}}\n",
            "targetTime is for physical backups",
        ),
        ("replication:\n  - {database: primry}\n", "did you mean 'primary'"),
        (
            "replication:\n  - {database: primary, slotRetained: {warn: 5GB, fail: 1GB}}\n",
            "must not be above",
        ),
        ("archiving:\n  - {database: primary, archiveMaxAge: soon}\n", "duration"),
        ("archiving:\n  - {database: primary, maxAge: 15m}\n", "unknown key"),
    ],
)
def test_faults_are_one_clear_message(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in _error(tmp_path, body)


def test_every_new_key_has_a_description() -> None:
    defs = schema()["$defs"]
    for name in ("replication", "archiving"):
        assert schema()["properties"][name]["description"]
        for key, spec in defs[name]["properties"].items():
            assert key == "severity" or spec.get("description"), (name, key)
    backup = defs["backup"]["properties"]
    for key in ("stanza", "config", "server", "timeout"):
        assert backup[key]["description"], key
    for key in ("targetTime", "dbname", "user", "scratchDir"):
        assert backup["restoreTest"]["properties"][key]["description"], key
