"""A real point-in-time recovery of a physical backup into a scratch data directory.

The restore tool (``pgbackrest restore``, ``barman recover``) writes the newest backup set (or
the one a ``targetTime`` needs) into a new folder ``maintcheck-pitr-<backup>-<runid>``; a
throwaway PostgreSQL is started on it as an unprivileged account, reachable only through a Unix
socket inside that 0700 folder (a restored clinical database is never on the network), with
archiving off. Recovery replays the archived WAL; the recovery time runs from the start of the
restore to the server accepting queries, and is judged against ``maxDuration``. Then the
``expectTables`` / ``minRows`` queries of the dump restore test run on it. The outcome is
judged by pytest_maintcheck.judges.physical (judge_physical_restore).

The server is always stopped and the folder removed, also on SIGINT/SIGTERM/SIGHUP. Each folder
carries an owner file with its run's pid, host and deadline: the next run stops and removes
what a crashed run left behind. The source cluster is never touched and the repository is
only read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from pytest_maintcheck import progress
from pytest_maintcheck.config import Backup, RestoreTest
from pytest_maintcheck.probes.local_server import (
    LocalServer,
    ServerError,
    bindir_for,
    child_kwargs,
    give_to,
    run_as_account,
    wait_until,
)
from pytest_maintcheck.probes.physical import (
    BackupSet,
    Catalog,
    stop_group,
    tool_error,
)
from pytest_maintcheck.probes.restore import (
    RestoreInterrupted,
    RestoreOutcome,
    _check_tables,
    _interrupts_unwind,
    _signals_held,
    new_run_id,
)
from pytest_maintcheck.redact import printable
from pytest_maintcheck.sandbox.postgres import _temp_base, free_port
from pytest_maintcheck.units import format_size

SCRATCH_PREFIX = "maintcheck-pitr-"
OWNER_FILE = "maintcheck-owner.json"
SHORT_SOCKET_PREFIX = "/tmp/maintcheck-pitr-sock-"  # noqa: S108 - a 0700 folder of our own
ROOM_MARGIN = 1.1  # the restored copy plus WAL replayed into it
_HBA = (
    "# maintcheck scratch restore: the Unix socket in this 0700 folder only\nlocal all all trust\n"
)


@dataclass
class PhysicalRestoreOutcome(RestoreOutcome):
    """RestoreOutcome (the dump restore test's record) plus what a recovery adds."""

    label: str = ""
    target: str = "latest"
    recovered_to: str | None = None  # the last replayed transaction's time
    replayed_segment: int | None = None  # WAL segment number recovery replayed up to
    archive_end: str | None = None  # the repository's newest archived segment
    room_needed: int | None = None
    room_free: int | None = None
    log_tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out.update(
            backupSet=self.label,
            recoveryTarget=self.target,
            recoveredTo=self.recovered_to,
            replayedSegment=self.replayed_segment,
            archiveEnd=self.archive_end,
            scratchDirectory=self.scratch,
            scratchRemoved=self.dropped,
            roomNeeded=self.room_needed,
            roomFree=self.room_free,
        )
        for key in ("scratchDatabase", "scratchDropped", "skippedExtensions"):
            out.pop(key, None)
        return out


RestoreCommand = Callable[[BackupSet, Path, Path], Sequence[str]]


def choose_set(catalog: Catalog, target_time: datetime | None) -> tuple[BackupSet | None, str]:
    """The set to restore: the newest, or the newest that ended before ``target_time``."""
    if not catalog.backups:
        return None, f"{catalog.tool} {catalog.name} has no backup to restore"
    if target_time is None:
        return catalog.backups[-1], ""
    fitting = [b for b in catalog.backups if b.stopped <= target_time]
    if not fitting:
        oldest = catalog.backups[0]
        return None, (
            f"recovery target {target_time.isoformat()} is before the oldest backup "
            f"{oldest.label} ended ({oldest.stopped.isoformat()}): no backup can recover to it"
        )
    return fitting[-1], ""


# ---------------------------------------------------------------------------- leftovers


def socket_dir(scratch: Path, run_id: str) -> Path:
    """The Unix socket folder: in the scratch folder, or in /tmp when that path is too long
    for a socket name (sun_path holds 107 bytes: <dir>/.s.PGSQL.<port>)."""
    inside = scratch / "sock"
    if len(str(inside)) + len("/.s.PGSQL.65535") < 100:
        return inside
    return Path(f"{SHORT_SOCKET_PREFIX}{run_id}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(owner: dict[str, Any], now: datetime) -> bool:
    """Past its deadline, or its run (on this host) is gone."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        if datetime.fromisoformat(str(owner["deadline"])) < now:
            return True
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return not _alive(owner["pid"])
    return False


def _stop_postmaster(data: Path) -> None:
    """Stop the postmaster of a leftover data directory, if one still runs on it."""
    try:
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError, IndexError):
        return
    if str(data).encode() not in cmdline:  # a reused pid: not ours to stop
        return
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        for _ in range(50):
            if not _alive(pid):
                return
            time.sleep(0.1)


def sweep_leftovers(root: Path, outcome: RestoreOutcome, now: datetime | None = None) -> None:
    """Stop and remove scratch folders of crashed runs; a live run's is left alone."""
    now = now or datetime.now(UTC)
    try:
        candidates = sorted(p for p in root.iterdir() if p.name.startswith(SCRATCH_PREFIX))
    except OSError:
        return
    for folder in candidates:
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not made by us (or not yet): never removed blindly
        if not isinstance(owner, dict) or not _abandoned(owner, now):
            continue
        _stop_postmaster(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)
        sockets = str(owner.get("socketDir", ""))
        if sockets.startswith(SHORT_SOCKET_PREFIX):  # ours: a fixed prefix in /tmp
            shutil.rmtree(sockets, ignore_errors=True)
        if folder.exists():
            outcome.leftovers_failed.append(str(folder))
        else:
            outcome.leftovers_dropped.append(str(folder))
            outcome.performed.append(f"removed leftover scratch restore {folder} of a crashed run")


# ---------------------------------------------------------------------------- the restore test


def give_tree(run_as: Any, *roots: Path) -> None:
    """chown every file under ``roots`` to the server's account (a no-op when not root)."""
    if run_as is None:
        return
    for root in roots:
        if not root.exists():
            continue
        give_to(run_as, root)
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(Path(folder) / name, run_as.uid, run_as.gid)


def free_room(root: Path) -> int:
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize


def restore_physical(
    backup: Backup,
    catalog: Catalog,
    test: RestoreTest,
    restore_command: RestoreCommand,
    *,
    user: str = "postgres",
    dbname: str = "postgres",
    run_id: str | None = None,
    now: datetime | None = None,
    tool_as_server_account: bool = True,
) -> PhysicalRestoreOutcome:
    """Restore, recover, check and remove a scratch copy; the outcome says what happened.

    Never raises for a failed restore or recovery. The scratch server and folder are removed
    in every case, including a timeout, SIGINT, SIGTERM and SIGHUP.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    target = test.target_time.isoformat() if test.target_time else "latest"
    outcome = PhysicalRestoreOutcome(backup=backup.name, server="scratch", target=target)
    chosen, why = choose_set(catalog, test.target_time)
    if chosen is None:
        outcome.error = why
        return outcome
    if test.target_time is not None and test.target_time > now:
        outcome.error = f"recovery target {target} is in the future"
        return outcome
    outcome.label = outcome.backup = chosen.label
    outcome.archive_end = catalog.archive_max
    run_as = run_as_account()
    root = test.scratch_dir or Path(_temp_base(run_as) or "/tmp")  # noqa: S108
    if not root.is_dir():
        outcome.error = f"scratch folder {root} does not exist"
        return outcome
    sweep_leftovers(root, outcome, now)
    outcome.room_needed = int((chosen.size or 0) * ROOM_MARGIN)
    outcome.room_free = free_room(root)
    if outcome.room_free < outcome.room_needed:
        outcome.error = (
            f"not enough room in {root} for the restored copy: {format_size(outcome.room_free)} "
            f"free, {format_size(outcome.room_needed)} needed"
        )
        return outcome
    slug = re.sub(r"[^a-z0-9]+", "-", backup.name.lower()).strip("-")[:40] or "backup"
    run_id = run_id or new_run_id(now)
    scratch = root / f"{SCRATCH_PREFIX}{slug}-{run_id}"
    sockets = socket_dir(scratch, run_id)
    deadline = now + timedelta(seconds=test.max_duration * 1.5 + 600)
    limit = test.max_duration + max(60.0, 0.2 * test.max_duration)
    server: LocalServer | None = None
    try:
        with _interrupts_unwind():
            with _signals_held():  # the folder exists with its owner file, or not at all
                scratch.mkdir(mode=0o700)
                (scratch / OWNER_FILE).write_text(
                    json.dumps(
                        {"pid": os.getpid(), "host": socket.gethostname(),
                         "socketDir": str(sockets), "deadline": deadline.isoformat(),
                         "backup": backup.name}
                    )
                )  # fmt: skip
                outcome.scratch = str(scratch)
            for sub in ("lock", "log", "tablespaces"):
                (scratch / sub).mkdir(mode=0o700)
            sockets.mkdir(mode=0o700)
            give_to(
                run_as, scratch, sockets, *(scratch / s for s in ("lock", "log", "tablespaces"))
            )
            data = scratch / "data"
            argv = restore_command(chosen, data, scratch)
            tool_user = run_as if tool_as_server_account else None
            if not _run_restore(argv, scratch, tool_user, limit, started, outcome):
                return outcome
            if not tool_as_server_account:  # the server must own what the tool wrote
                give_tree(run_as, data, scratch / "tablespaces")
            server = _start_server(catalog, data, scratch, sockets, run_as, outcome)
            if server is None:
                return outcome
            conninfo = {"host": str(sockets), "port": server.port, "user": user}
            if not _wait_recovered(server, conninfo, dbname, limit, started, outcome):
                return outcome
            outcome.duration = round(time.monotonic() - started, 3)
            outcome.restored = True
            outcome.performed.append(
                f"restored {chosen.label} and recovered to {target} in a scratch server "
                f"in {outcome.duration:.1f} s"
            )
            _check(conninfo, dbname, test, outcome)
    except (KeyboardInterrupt, RestoreInterrupted):
        outcome.interrupted = True
        raise
    finally:
        with _signals_held():
            if server is not None:
                outcome.log_tail = server.log_tail(5).splitlines()
                server.stop()
            if outcome.scratch:
                shutil.rmtree(scratch, ignore_errors=True)
                shutil.rmtree(sockets, ignore_errors=True)
                outcome.dropped = not scratch.exists()
                if outcome.dropped:
                    outcome.performed.append(f"removed scratch restore {scratch}")
                else:
                    outcome.drop_error = f"{scratch} could not be removed"
        outcome.total_duration = round(time.monotonic() - started, 3)
    return outcome


def _run_restore(
    argv: Sequence[str],
    scratch: Path,
    run_as: Any,
    limit: float,
    started: float,
    outcome: PhysicalRestoreOutcome,
) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
            **child_kwargs(run_as, scratch, env),
        )  # fmt: skip
    except OSError as exc:
        outcome.error = f"cannot run {argv[0]}: {exc.strerror or exc}"
        return False
    try:
        with progress.task(f"restoring {outcome.label}", limit=limit):
            _, err = proc.communicate(timeout=max(1.0, limit - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        outcome.timed_out = True
        outcome.error = f"{Path(argv[0]).name} restore did not finish within {limit:.0f} s"
        return False
    finally:
        stop_group(proc)
    if proc.returncode != 0:
        outcome.error = f"{Path(argv[0]).name} restore failed (exit {proc.returncode}): " + (
            tool_error(err)
        )
        return False
    return True


def _start_server(
    catalog: Catalog,
    data: Path,
    scratch: Path,
    sockets: Path,
    run_as: Any,
    outcome: PhysicalRestoreOutcome,
) -> LocalServer | None:
    hba = scratch / "pg_hba.conf"
    hba.write_text(_HBA)
    conf = data / "postgresql.conf"
    if not conf.exists():  # Debian keeps it in /etc: the restored directory has none
        conf.write_text("")
    give_to(run_as, hba, conf)
    settings = {
        "listen_addresses": "",  # never on the network: the socket below only
        "unix_socket_directories": str(sockets),
        "unix_socket_permissions": "0700",
        "hba_file": str(hba),
        "ident_file": str(hba),
        "archive_mode": "off",
        "hot_standby": "off",  # no connection until recovery has finished
        "primary_conninfo": "",
        "primary_slot_name": "",
        "synchronous_standby_names": "",
        "ssl": "off",
        "logging_collector": "off",
        "log_destination": "stderr",
        "cluster_name": "maintcheck-restore-test",
    }
    try:
        server = LocalServer(
            data=data, port=free_port(), settings=settings, log_path=scratch / "server.log",
            bindir=bindir_for(catalog.pg_version), run_as=run_as,
        )  # fmt: skip
        server.start()
    except ServerError as exc:
        outcome.error = str(exc)
        return None
    return server


def _connect(conninfo: dict[str, Any], dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        **conninfo, dbname=dbname, connect_timeout=5, autocommit=True,
        application_name="pytest-maintcheck restore test",
    )  # fmt: skip


def _wait_recovered(
    server: LocalServer,
    conninfo: dict[str, Any],
    dbname: str,
    limit: float,
    started: float,
    outcome: PhysicalRestoreOutcome,
) -> bool:
    """Until the server accepts a query outside recovery; False with the reason otherwise."""
    last: list[str] = []

    def ready() -> bool:
        try:
            with _connect(conninfo, dbname) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp(), "
                    "(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint "
                    "/ (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
                ).fetchone()
        except psycopg.OperationalError as exc:
            last[:] = [str(exc).strip().splitlines()[-1] if str(exc).strip() else "refused"]
            return False
        if row is None or row[0]:
            return False
        outcome.recovered_to = row[1].isoformat() if row[1] else None
        outcome.replayed_segment = int(row[2]) if row[2] is not None else None
        return True

    with progress.task(f"recovering {outcome.label}", limit=limit):
        if wait_until(started + limit, ready, server, step=0.2):
            return True
    if server.exited:
        outcome.error = "the restored server stopped during recovery: " + _server_reason(server)
    else:
        outcome.timed_out = True
        outcome.error = f"the restored server did not finish recovery within {limit:.0f} s" + (
            f" (last: {printable(last[0], 200)})" if last else ""
        )
    return False


def _server_reason(server: LocalServer) -> str:
    """The FATAL/PANIC line of the server log, e.g. recovery ended before the target."""
    lines = server.log_tail(40).splitlines()
    bad = [ln for ln in lines if re.search(r"\b(FATAL|PANIC)\b", ln)]
    return printable((bad or lines or ["no server log"])[-1], 300)


def _check(
    conninfo: dict[str, Any], dbname: str, test: RestoreTest, outcome: PhysicalRestoreOutcome
) -> None:
    try:
        with _connect(conninfo, dbname) as conn:
            conn.execute("SET statement_timeout = '60s'")
            _check_tables(conn, test.expect_tables, test.min_rows, outcome)
    except psycopg.Error as exc:
        outcome.error = f"the restored database {dbname} could not be queried: " + printable(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 300
        )
