"""Backup probes on their own: scratch database safety, signals, manifests, archives, rotation."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg import sql

from pytest_maintcheck.probes.backups import (
    check_archive,
    check_rotation,
    list_backups,
    read_manifest,
    size_change,
    time_in_name,
    verify_checksums,
)
from pytest_maintcheck.probes.restore import (
    SCRATCH_PREFIX,
    restore_into_scratch,
    runner_mark,
    scratch_name,
)
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from test_backups import (
    RESTORER,
    RESTORER_PASSWORD,
    cut_bytes,
    pg_dump,
    restorer_env,
    scratch_databases,
    seed_clinical,
    stamped,
    write_manifest,
)

__all__ = ["restorer_env"]  # the fixture, used by name


@pytest.fixture
def small_dump(pg_db: SandboxDatabase, tmp_path: Path) -> Path:
    seed_clinical(pg_db, patients=50)
    return pg_dump(pg_db, tmp_path / "clinical.dump")


@pytest.fixture(scope="module")
def big_dump(pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dump whose restore takes a few seconds: time to interrupt it in the middle."""
    db = pg_cluster.create_database(f"big_{uuid.uuid4().hex[:8]}")
    try:
        seed_clinical(db, patients=200_000, pad=1024)
        return pg_dump(db, tmp_path_factory.mktemp("big") / "big.dump")
    finally:
        pg_cluster.drop_database(db.name)


# ---------------------------------------------------------------------------- scratch safety


def test_scratch_name_says_what_it_is_and_fits() -> None:
    name = scratch_name("Clinical Nightly/" + "x" * 80, "20250301t020000_abcdef")
    assert name.startswith("maintcheck_restore_clinical_nightly_x")
    assert name.endswith("_20250301t020000_abcdef")
    assert len(name.encode()) <= 63


def _marked(pg_cluster: PostgresCluster, name: str, marker: str | None) -> None:
    """A database as the restore role makes it, with ``marker`` as its comment."""
    with pg_cluster.connect(user=RESTORER, password=RESTORER_PASSWORD) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if marker is not None:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(marker)
                )
            )


def _dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftovers_of_ended_runs_are_dropped_and_others_kept(
    pg_cluster: PostgresCluster, small_dump: Path, restorer_env: str
) -> None:
    host = socket.gethostname()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    run = "20200101t020000_0badc0"
    dead_runner = scratch_name("nightly", run)  # its runner pid is gone: dropped at once
    overdue = scratch_name("other", "20200101t020000_0verd0")  # another host, past deadline
    live = scratch_name("other", "20200101t020000_a11ve0")  # this very process: alive
    unmarked = SCRATCH_PREFIX + "ward_reports"  # a user's database that shares the prefix
    _marked(
        pg_cluster,
        dead_runner,
        f"maintcheck restore test of nightly; run {run}; runner {host} pid {_dead_pid()} "
        f"started 1; drop after {later}",
    )
    _marked(
        pg_cluster,
        overdue,
        "maintcheck restore test of other; run x; runner elsewhere pid 1 started 1; "
        "drop after 2020-01-01T03:00:00+00:00",
    )
    _marked(
        pg_cluster,
        live,
        f"maintcheck restore test of other; run y; {runner_mark()}; drop after {later}",
    )
    _marked(pg_cluster, unmarked, "monthly ward reports, keep")  # fmt: skip
    outcome = restore_into_scratch(small_dump, backup="nightly", target_dsn=restorer_env)
    assert outcome.restored, outcome.error
    assert outcome.leftovers_dropped == [dead_runner, overdue]
    assert any(
        a.startswith(f"dropped leftover scratch database {dead_runner} (its runner (pid ")
        for a in outcome.performed
    )
    assert outcome.not_ours == [unmarked]
    assert sorted(scratch_databases(pg_cluster)) == sorted([live, unmarked])


def test_a_user_database_with_the_prefix_is_never_dropped(
    pg_cluster: PostgresCluster, small_dump: Path, restorer_env: str
) -> None:
    """Even one owned by the restore role with an expired deadline: no marker, no drop."""
    user_db = scratch_name("ward", "20200101t020000_abcdef")  # looks exactly like ours
    _marked(pg_cluster, user_db, "maintcheck restore test; drop after 2020-01-01T03:00:00")
    with pg_cluster.connect(user=RESTORER, password=RESTORER_PASSWORD, dbname=user_db) as conn:
        conn.execute("CREATE TABLE reports (id int)")
    outcome = restore_into_scratch(small_dump, backup="nightly", target_dsn=restorer_env)
    assert outcome.restored, outcome.error
    assert outcome.leftovers_dropped == []
    assert outcome.not_ours == [user_db]
    assert scratch_databases(pg_cluster) == [user_db]


def test_restore_never_touches_the_source_database(
    pg_cluster: PostgresCluster, small_dump: Path, restorer_env: str
) -> None:
    source = pg_cluster.create_database(f"src_{uuid.uuid4().hex[:8]}")  # target = source here
    target = pg_cluster.dsn(source.name, user=RESTORER)
    try:
        outcome = restore_into_scratch(
            small_dump, backup="nightly", target_dsn=target, source_dsn=source.dsn
        )
        with source.connect() as conn:  # empty: had the restore gone here, tables would be
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert tables.fetchone() == (0,)
    finally:
        pg_cluster.drop_database(source.name)
    assert outcome.restored, outcome.error
    assert outcome.scratch not in (source.name, "postgres")
    assert scratch_databases(pg_cluster) == []


def test_role_without_createdb_is_told_so(
    pg_cluster: PostgresCluster, small_dump: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_cluster.create_role(RESTORER, RESTORER_PASSWORD)  # no CREATEDB
    try:
        monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
        dsn = pg_cluster.dsn("postgres", user=RESTORER)
        outcome = restore_into_scratch(small_dump, backup="nightly", target_dsn=dsn)
    finally:
        pg_cluster.drop_role(RESTORER)
    assert not outcome.restored
    assert outcome.error is not None
    assert "missing privilege: permission denied to create database" in outcome.error
    assert RESTORER_PASSWORD not in outcome.error
    assert scratch_databases(pg_cluster) == []


def test_untrusted_extension_is_skipped_for_a_least_privilege_restore_role(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_clinical(pg_db, patients=20)
    with pg_db.connect() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    dump = pg_dump(pg_db, tmp_path / "with-extension.dump")
    pg_cluster.create_role(RESTORER, RESTORER_PASSWORD)
    try:
        with pg_cluster.connect() as conn:
            conn.execute(f"ALTER ROLE {RESTORER} CREATEDB")
        monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
        outcome = restore_into_scratch(
            dump,
            backup="nightly",
            target_dsn=pg_cluster.dsn("postgres", user=RESTORER),
            expect_tables=["patients"],
        )
    finally:
        pg_cluster.drop_role(RESTORER)
    assert outcome.restored, outcome.error
    assert outcome.skipped_extensions == ["pg_stat_statements"]
    assert outcome.missing_tables == []
    assert scratch_databases(pg_cluster) == []


def test_a_file_that_is_not_a_custom_dump_is_refused_before_any_database_is_made(
    pg_cluster: PostgresCluster, tmp_path: Path, restorer_env: str
) -> None:
    plain = tmp_path / "clinical.sql"
    plain.write_text("CREATE TABLE patients (id int);\n")
    outcome = restore_into_scratch(plain, backup="nightly", target_dsn=restorer_env)
    assert outcome.error == "clinical.sql is not a custom-format dump (pg_dump -Fc)"
    assert outcome.scratch == ""


_RESTORE_SCRIPT = """
import sys
from pathlib import Path
from pytest_maintcheck.probes.restore import restore_into_scratch
outcome = restore_into_scratch(Path(sys.argv[1]), backup="sig", target_dsn=sys.argv[2], jobs=2)
print("finished", outcome.restored, flush=True)
"""


def _restore_is_running(cluster: PostgresCluster) -> bool:
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
            ("pytest-maintcheck restore%",),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_restore_drops_its_scratch_database(
    pg_cluster: PostgresCluster, big_dump: Path, restorer_env: str, signum: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RESTORE_SCRIPT, str(big_dump), restorer_env],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 60
        while not _restore_is_running(pg_cluster):  # pg_restore connected: mid-restore
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "pg_restore never connected"
            time.sleep(0.02)
        assert len(scratch_databases(pg_cluster)) == 1
        proc.send_signal(signum)
        out, _err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert b"finished" not in out, "the restore was meant to be interrupted, not to finish"
    assert scratch_databases(pg_cluster) == []
    assert not _restore_is_running(pg_cluster), "pg_restore workers outlived the interrupt"


# ---------------------------------------------------------------------------- files


def test_time_in_name_reads_common_stamps() -> None:
    want = datetime(2025, 3, 1, 2, 30, tzinfo=UTC)
    assert time_in_name("clinical-20250301T023000Z.dump") == want
    assert time_in_name("clinical-2025-03-01_02-30.dump") == want
    assert time_in_name("clinical-2025-03-01.dump") == datetime(2025, 3, 1, tzinfo=UTC)
    assert time_in_name("clinical-latest.dump") is None
    assert time_in_name("clinical-99999999.dump") is None  # not a date: mtime is used


def test_manifest_findings_unlisted_missing_and_mismatched(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    a = stamped(tmp_path, "clinical", now)
    b = stamped(tmp_path, "clinical", now - timedelta(days=1))
    gone = stamped(tmp_path, "clinical", now - timedelta(days=2))
    for f in (a, b, gone):
        f.write_bytes(os.urandom(1000))
    manifest = write_manifest(tmp_path, a, b, gone)
    with manifest.open("a") as m:
        m.write("not a checksum line\n")
    unlisted = stamped(tmp_path, "clinical", now - timedelta(days=3))
    unlisted.write_bytes(b"x")
    gone.unlink()
    b.write_bytes(os.urandom(1000))  # overwritten after the manifest: mismatch

    result = verify_checksums(
        list_backups(tmp_path, "clinical-*.dump"), read_manifest(manifest), "clinical-*.dump"
    )
    assert result.verified == [a.name]
    assert result.mismatched == [b.name]
    assert result.unlisted == [unlisted.name]
    assert result.missing == [gone.name]
    assert result.bad_lines == [4]


def test_size_change_against_the_previous_backup(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    stamped(tmp_path, "c", now - timedelta(days=1)).write_bytes(b"x" * 1000)
    stamped(tmp_path, "c", now).write_bytes(b"x" * 400)
    newest, previous = list_backups(tmp_path, "c-*.dump")
    assert size_change(newest, previous) == pytest.approx(0.6)


def _config_archive(path: Path, files: int = 5) -> Path:
    src = path.parent / f"src-{path.name}"
    src.mkdir()
    for i in range(files):
        (src / f"f{i}.conf").write_bytes(os.urandom(2000))
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="etc")
    return path


def test_archive_with_its_gzip_trailer_cut_is_corrupt(tmp_path: Path) -> None:
    good = _config_archive(tmp_path / "good.tar.gz")
    assert check_archive(good).error is None
    data = good.read_bytes()
    trailer_cut = tmp_path / "trailer.tar.gz"
    trailer_cut.write_bytes(data[:-4])  # only the ISIZE field is gone: every member still lists
    with tarfile.open(trailer_cut) as tar:
        assert len(tar.getmembers()) == 6
    assert check_archive(trailer_cut).error is not None


def test_archive_checks_tar_plain_zip_and_empty(tmp_path: Path) -> None:
    import zipfile

    plain = tmp_path / "a.tar"
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("x.conf")
        tar.addfile(info)
    assert check_archive(plain).members == 1
    zipped = tmp_path / "a.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("x.conf", "a=1")
    assert check_archive(zipped).format == "zip"
    empty = tmp_path / "empty.tar.gz"
    with gzip.open(empty, "wb") as g:
        g.write(b"\0" * 1024)
    assert check_archive(empty).error == "the archive is empty"
    cut = _config_archive(tmp_path / "cut.tar.gz", files=10)
    cut_bytes(cut, keep=0.5)
    assert check_archive(cut).error


# ---------------------------------------------------------------------------- rotation


def _set(tmp_path: Path, *when: datetime) -> Iterator[Path]:
    for w in when:
        f = stamped(tmp_path, "c", w)
        f.write_bytes(b"PGDMP")
        yield f


def test_young_system_reports_the_slots_it_cannot_fill_yet(tmp_path: Path) -> None:
    newest = datetime(2025, 3, 14, 2, tzinfo=UTC)
    list(_set(tmp_path, *(newest - timedelta(days=d) for d in range(3))))
    result = check_rotation(list_backups(tmp_path, "c-*.dump"), daily=7, weekly=4, monthly=2)
    assert result.empty == []
    assert [f"{s.kind} {s.label}" for s in result.not_yet] == [
        "daily 2025-03-11", "daily 2025-03-10", "daily 2025-03-09", "daily 2025-03-08",
        "weekly 2025-W10", "weekly 2025-W09", "weekly 2025-W08", "monthly 2025-02",
    ]  # fmt: skip
    assert result.removable == []


def test_gap_in_the_daily_set_and_backups_past_the_policy(tmp_path: Path) -> None:
    newest = datetime(2025, 3, 14, 2, tzinfo=UTC)
    made = list(_set(tmp_path, *(newest - timedelta(days=d) for d in (0, 1, 3, 40, 41))))
    result = check_rotation(list_backups(tmp_path, "c-*.dump"), daily=4, weekly=0, monthly=2)
    assert [f"{s.kind} {s.label}" for s in result.empty] == ["daily 2025-03-12"]
    # 2025-02-02 is February's keeper; 2025-02-01 is past the policy
    assert result.removable == [made[4].name]
    assert made[4].exists()
