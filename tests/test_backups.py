"""Weekly backup checks end to end, on real pg_dump files from the sandbox cluster."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from check_runs import run_checks
from pytest_maintcheck.probes.restore import SCRATCH_PREFIX, find_client_tool
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase

NAME_TIME = "%Y%m%dT%H%M%SZ"


def seed_clinical(db: SandboxDatabase, patients: int = 500, pad: int = 0) -> None:
    """The demo's two tables with synthetic rows; ``pad`` adds a wide text column."""
    with db.connect() as conn:
        conn.execute(
            "CREATE TABLE patients (id serial PRIMARY KEY, mrn text UNIQUE NOT NULL, "
            "born date NOT NULL, note text)"
        )
        conn.execute(
            "CREATE TABLE encounters (id serial PRIMARY KEY, patient_id int REFERENCES patients, "
            "kind text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO patients (mrn, born, note) SELECT 'SYN-' || g, date '1950-01-01' + g, "
            "repeat(md5(g::text), %s) FROM generate_series(1, %s) g",
            (max(pad // 32, 0), patients),
        )
        conn.execute(
            "INSERT INTO encounters (patient_id, kind) SELECT 1 + g %% %s, 'ecg' "
            "FROM generate_series(1, %s) g",
            (patients, patients * 3),
        )


def pg_dump(db: SandboxDatabase, out: Path, *args: str) -> Path:
    """``pg_dump -Fc`` of ``db`` into ``out``; the password goes through the environment."""
    env = {**os.environ, "PGPASSWORD": db.password}
    subprocess.run(
        [str(find_client_tool("pg_dump")), "-Fc", f"--dbname={db.dsn}", f"--file={out}", *args],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


def stamped(folder: Path, prefix: str, when: datetime, suffix: str = ".dump") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{prefix}-{when.strftime(NAME_TIME)}{suffix}"


def write_manifest(folder: Path, *files: Path, name: str = "SHA256SUMS") -> Path:
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in files]
    (folder / name).write_text("".join(lines))
    return folder / name


def cut_bytes(path: Path, keep: float = 0.6) -> None:
    """Cut the tail off a file, as a full disk or an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def scratch_databases(cluster: PostgresCluster) -> list[str]:
    with cluster.connect() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
        ).fetchall()
    return [str(r[0]) for r in rows]


# ---------------------------------------------------------------------------- end to end

RESTORER = "restorer_t"
RESTORER_PASSWORD = "restorer-pass-5521"


@contextmanager
def restore_role(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A CREATEDB (not superuser) role, as a production restore account must be; its DSN."""
    pg_cluster.create_role(RESTORER, RESTORER_PASSWORD)
    with pg_cluster.connect() as conn:
        conn.execute(f"ALTER ROLE {RESTORER} CREATEDB")
    try:
        yield pg_cluster.dsn("postgres", user=RESTORER)
    finally:
        for name in scratch_databases(pg_cluster):  # never hide a leak: the tests assert on it
            pg_cluster.drop_database(name)
        pg_cluster.drop_role(RESTORER)


@pytest.fixture
def restorer(pg_cluster: PostgresCluster) -> Iterator[str]:
    with restore_role(pg_cluster) as dsn:
        yield dsn


@pytest.fixture
def restorer_env(pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The restore role's DSN, its password in PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
    with restore_role(pg_cluster) as dsn:
        yield dsn


@pytest.fixture
def clinical(pg_db: SandboxDatabase) -> SandboxDatabase:
    seed_clinical(pg_db)
    return pg_db


def backup_entry(location: Path, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "clinical-nightly",
        "kind": "pg_dump",
        "location": str(location),
        "pattern": "clinical-*.dump",
        "maxAge": "26h",
        "checksums": "SHA256SUMS",
        "restoreTest": {
            "target": "restore",
            "maxDuration": "10m",
            "expectTables": ["patients", "encounters"],
            "minRows": {"patients": 500},
        },
    }
    entry.update(extra)
    return entry


def run_weekly(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    backups: list[dict[str, Any]],
    restore_dsn: str,
    *args: str,
) -> tuple[pytest.RunResult, dict[str, dict[str, Any]], dict[str, Any]]:
    """Run the weekly backup checks; (result, results.json checks by name, maintenance log)."""
    cfg = {
        "version": 1,
        "system": "test",
        "databases": {"restore": {"dsn": restore_dsn}},
        "backups": backups,
    }
    monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
    run = run_checks(pytester, cfg, "test_weekly_backups.py", args=args)
    return run.result, run.by_name, run.record("maintenance-log.json")


def test_good_dump_restores_and_every_check_passes(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    clinical: SandboxDatabase,
    restorer: str,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    folder = tmp_path / "backups"
    older = pg_dump(clinical, stamped(folder, "clinical", now - timedelta(hours=25)))
    newest = pg_dump(clinical, stamped(folder, "clinical", now - timedelta(hours=1)))
    write_manifest(folder, older, newest)

    result, checks, log = run_weekly(pytester, monkeypatch, [backup_entry(folder)], restorer)

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 5, result.stdout.str()
    assert "failed" not in outcomes
    restore = checks["test_backup_restore[clinical-nightly]"]
    assert restore["verdict"] == "pass"
    details = restore["details"]["restore"]
    assert details["backup"] == newest.name
    assert details["restored"]
    assert details["scratchDropped"]
    assert details["scratchDatabase"].startswith("maintcheck_restore_clinical_nightly_")
    assert details["rows"] == {"patients": 500}
    assert restore["metrics"]["restoreDuration"] == details["restoreDuration"] > 0
    assert restore["requirements"][:3] == [
        "HIPAA 164.308(a)(7)(ii)(A) data backup plan",
        "HIPAA 164.308(a)(7)(ii)(B) disaster recovery plan",
        "HIPAA 164.308(a)(7)(ii)(D) testing and revision procedures",
    ]
    size = checks["test_backup_size[clinical-nightly]"]
    assert size["details"]["newest"]["name"] == newest.name
    assert size["details"]["previous"]["name"] == older.name
    assert size["metrics"]["backupSize"] == newest.stat().st_size
    assert any("restored " + newest.name in a for a in log["details"]["actions"])
    assert any("dropped scratch database" in a for a in log["details"]["actions"])
    assert scratch_databases(pg_cluster) == []


def test_dump_with_bytes_cut_off_fails_checksum_and_restore(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    clinical: SandboxDatabase,
    restorer: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "backups"
    dump = pg_dump(clinical, stamped(folder, "clinical", datetime.now(UTC)))
    write_manifest(folder, dump)
    cut_bytes(dump, keep=0.6)  # the table of contents survives: pg_restore --list still works
    listed = subprocess.run(
        [str(find_client_tool("pg_restore")), "--list", str(dump)], capture_output=True, check=False
    )
    assert listed.returncode == 0, "the cut must leave a dump that only a real restore catches"

    _result, checks, log = run_weekly(pytester, monkeypatch, [backup_entry(folder)], restorer)

    integrity = checks["test_backup_integrity[clinical-nightly]"]
    assert integrity["verdict"] == "violation"
    assert f"{dump.name} does not match its SHA-256" in integrity["message"]
    restore = checks["test_backup_restore[clinical-nightly]"]
    assert restore["verdict"] == "violation"
    assert "pg_restore failed" in restore["message"]
    assert restore["details"]["restore"]["scratchDropped"] is True
    assert any("does not match its SHA-256" in f for f in log["details"]["findings"])
    assert len(log["details"]["findings"]) == len(log["details"]["followUp"])
    assert scratch_databases(pg_cluster) == []


def test_dump_missing_an_expected_table_fails_the_sanity_check(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    clinical: SandboxDatabase,
    restorer: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "backups"
    dump = pg_dump(
        clinical, stamped(folder, "clinical", datetime.now(UTC)), "--exclude-table=encounters"
    )
    write_manifest(folder, dump)

    _result, checks, _ = run_weekly(pytester, monkeypatch, [backup_entry(folder)], restorer)

    restore = checks["test_backup_restore[clinical-nightly]"]
    assert restore["verdict"] == "violation", restore["message"]
    assert "expected tables missing after restore: encounters" in restore["message"]
    assert restore["details"]["restore"]["restored"] is True
    assert checks["test_backup_integrity[clinical-nightly]"]["verdict"] == "pass"
    assert scratch_databases(pg_cluster) == []


def test_too_few_rows_fails_the_sanity_check(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    clinical: SandboxDatabase,
    restorer: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "backups"
    write_manifest(folder, pg_dump(clinical, stamped(folder, "clinical", datetime.now(UTC))))
    entry = backup_entry(folder)
    entry["restoreTest"]["minRows"] = {"patients": 501}

    _, checks, _ = run_weekly(pytester, monkeypatch, [entry], restorer, "-k", "restore")

    restore = checks["test_backup_restore[clinical-nightly]"]
    assert "patients has 500 rows after restore, expected >= 501" in restore["message"]
    assert scratch_databases(pg_cluster) == []


def test_old_dump_fails_freshness(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    clinical: SandboxDatabase,
    restorer: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "backups"
    dump = pg_dump(clinical, stamped(folder, "clinical", datetime.now(UTC) - timedelta(days=3)))
    write_manifest(folder, dump)  # written just now: only the name says the dump is old

    result, checks, _ = run_weekly(pytester, monkeypatch, [backup_entry(folder)], restorer)

    fresh = checks["test_backup_freshness[clinical-nightly]"]
    assert fresh["verdict"] == "violation"
    assert fresh["severity"] == "critical"
    assert fresh["details"]["newest"]["timeFrom"] == "name"
    assert 71 * 3600 < fresh["metrics"]["maxAge"] < 73 * 3600
    result.stdout.fnmatch_lines(["*clinical-*.dump: newest backup age 3d (fail > 1.1d)*"])
    assert checks["test_backup_restore[clinical-nightly]"]["verdict"] == "pass"
    assert scratch_databases(pg_cluster) == []


def test_freshness_falls_back_to_mtime_and_no_backup_is_critical(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    restorer: str,
    tmp_path: Path,
) -> None:
    undated = tmp_path / "undated"
    undated.mkdir()
    latest = undated / "clinical-latest.dump"
    latest.write_bytes(b"PGDMP not really")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(latest, (two_days_ago, two_days_ago))
    empty = tmp_path / "empty"
    empty.mkdir()
    entries = [
        backup_entry(undated, name="undated", checksums=None, restoreTest=None),
        backup_entry(empty, name="empty", checksums=None, restoreTest=None),
    ]
    for e in entries:
        del e["checksums"], e["restoreTest"]

    _, checks, _ = run_weekly(pytester, monkeypatch, entries, restorer, "-k", "freshness")

    undated_result = checks["test_backup_freshness[undated]"]
    assert undated_result["verdict"] == "violation"
    assert undated_result["details"]["newest"]["timeFrom"] == "mtime"
    nothing = checks["test_backup_freshness[empty]"]
    assert nothing["verdict"] == "violation"
    assert nothing["severity"] == "critical"
    assert "no backup matching 'clinical-*.dump'" in nothing["message"]


def test_rotation_set_with_a_missing_weekly_slot_is_found(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    restorer: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "rotated"
    newest = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)  # a Friday, ISO week 11
    days = [newest - timedelta(days=d) for d in range(7)]  # daily slots, weeks 10-11
    weeks = [newest - timedelta(days=7 * w) for w in (2, 3)]  # week 09 and 08; 10 via dailies
    for when in days + weeks:
        stamped(folder, "clinical", when).write_bytes(b"PGDMP")
    # week 09 (Fri 2025-02-28) lost: the rotation job deleted the wrong file
    stamped(folder, "clinical", newest - timedelta(days=14)).unlink()
    extra = stamped(folder, "clinical", newest - timedelta(days=9))  # kept by no slot
    extra.write_bytes(b"PGDMP")
    entry = backup_entry(folder, rotation={"daily": 7, "weekly": 4}, maxAge="3650d")
    del entry["checksums"], entry["restoreTest"]

    _, checks, _ = run_weekly(pytester, monkeypatch, [entry], restorer, "-k", "rotation")

    rotation = checks["test_backup_rotation[clinical-nightly]"]
    assert rotation["verdict"] == "violation", rotation["message"]
    assert "rotation gap, no backup for: weekly 2025-W09" in rotation["message"]
    assert rotation["details"]["rotation"]["empty"] == ["weekly 2025-W09"]
    assert rotation["details"]["rotation"]["removable"] == [extra.name]
    assert extra.exists(), "the rotation check never deletes"


def test_config_archive_lists_and_a_cut_archive_is_corrupt(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    restorer: str,
    tmp_path: Path,
) -> None:
    import tarfile

    source = tmp_path / "etc"
    source.mkdir()
    for i in range(20):
        (source / f"app{i}.conf").write_bytes(os.urandom(4000).hex().encode())
    now = datetime.now(UTC)
    good_dir, cut_dir = tmp_path / "good", tmp_path / "cut"
    for folder in (good_dir, cut_dir):
        with tarfile.open(stamped(folder, "config", now, ".tar.gz"), "w:gz") as tar:
            tar.add(source, arcname="etc")
    cut_bytes(next(cut_dir.iterdir()), keep=0.7)
    entries = [
        {"name": name, "kind": "files", "location": str(folder), "pattern": "config-*.tar.gz"}
        for name, folder in (("good", good_dir), ("cut", cut_dir))
    ]

    _, checks, _ = run_weekly(pytester, monkeypatch, entries, restorer, "-k", "config")

    good = checks["test_config_backup[good]"]
    assert good["verdict"] == "pass"
    assert good["details"]["archive"]["members"] == 21
    cut = checks["test_config_backup[cut]"]
    assert cut["verdict"] == "violation"
    assert "cannot be listed, so it is corrupt" in cut["message"]


def test_shrunken_backup_and_a_full_backup_disk_are_found(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    restorer: str,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    folder = tmp_path / "sizes"
    stamped(folder, "clinical", now - timedelta(days=1)).write_bytes(b"x" * 10_000)
    stamped(folder, "clinical", now).write_bytes(b"x" * 3_000)  # lost 70%: data went missing
    halved, trimmed = tmp_path / "halved", tmp_path / "trimmed"
    stamped(halved, "clinical", now - timedelta(days=1)).write_bytes(b"x" * 10_000)
    stamped(halved, "clinical", now).write_bytes(b"x" * 5_000)
    stamped(trimmed, "clinical", now - timedelta(days=1)).write_bytes(b"x" * 10_000)
    stamped(trimmed, "clinical", now).write_bytes(b"x" * 7_500)
    huge = tmp_path / "huge"
    huge.mkdir()
    with stamped(huge, "clinical", now).open("wb") as f:
        f.truncate(2**40)  # sparse: a 1 TiB backup the disk has no room to repeat
    entries = [  # no sizeChange: the default {warn: 0.2, fail: 0.5} applies
        backup_entry(folder, name="sizes"),
        backup_entry(halved, name="halved"),
        backup_entry(trimmed, name="trimmed"),
        backup_entry(huge, name="huge"),
    ]
    for e in entries:
        del e["checksums"], e["restoreTest"]

    _, checks, _ = run_weekly(pytester, monkeypatch, entries, restorer, "-k", "size or storage")

    size = checks["test_backup_size[sizes]"]
    assert size["verdict"] == "violation"
    assert size["metrics"]["sizeChange"] == pytest.approx(0.7)
    assert "shrank against" in size["message"]
    assert checks["test_backup_size[halved]"]["verdict"] == "violation"  # a halved backup fails
    assert checks["test_backup_size[trimmed]"]["verdict"] == "degraded"  # lost 25%: past warn
    assert checks["test_backup_size[halved]"]["thresholds"]["sizeChange"]["fail"] == 0.5
    storage = checks["test_backup_storage[huge]"]
    assert storage["verdict"] == "violation"
    assert "free space" in storage["message"]
    assert checks["test_backup_storage[sizes]"]["verdict"] == "pass"
