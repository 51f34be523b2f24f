"""Restore a custom-format dump for real, into a scratch database that never outlives the check.

The restore runs the dump's code (functions called by indexes, constraints and materialized
views) with the restore role's rights, so that role must not be a superuser nor hold
pg_execute_server_program, pg_write_server_files or pg_read_server_files: such a target is
refused before anything is created.

The scratch database is named ``maintcheck_restore_<backup>_<runid>``, owned by the restore
role, and marked at creation with a comment naming the run, the runner (host, pid and the
pid's start time) and the time after which it is certainly abandoned. Only a database with
that marker, owned by the restore role, is ever dropped: a user database that merely starts
with the prefix is left alone. Every restore first drops the leftovers of earlier runs: at
once when their runner on this host is gone (a SIGKILLed run whose pg_restore may still be
writing: its sessions are terminated first), else after the deadline. The restore runs
``pg_restore --exit-on-error -j N`` with a bounded timeout; SIGTERM and SIGHUP unwind like
Ctrl-C (a KeyboardInterrupt, so pytest stops the run too), pg_restore is stopped and the
scratch database dropped in a ``finally`` with the signals held back. Passwords reach
pg_restore only through the environment libpq reads (PGPASSWORD, PGPASSFILE), never its argv.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_maintcheck import progress
from pytest_maintcheck.probes.postgres import ProbeError, connect, describe_pg_error
from pytest_maintcheck.redact import printable

SCRATCH_PREFIX = "maintcheck_restore_"
CUSTOM_FORMAT_MAGIC = b"PGDMP"
_RUN_TIME = "%Y%m%dt%H%M%S"
# the marker a scratch database gets at creation; nothing without it is ever dropped
_MARKER = re.compile(
    r"^maintcheck restore test of .*; run (?P<run>\S+); runner (?P<host>\S+) "
    r"pid (?P<pid>\d+) started (?P<started>\S+); drop after (?P<deadline>\S+)$",
    re.DOTALL,
)
# roles whose rights would let a dump's code reach the server's programs or files
_SERVER_ACCESS_ROLES = (
    "pg_execute_server_program",
    "pg_write_server_files",
    "pg_read_server_files",
)


class RestoreError(Exception):
    """The restore could not even be attempted; the message is safe to print."""


# ---------------------------------------------------------------------------- the runner


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (/proc), or "?" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else "?"


def runner_mark() -> str:
    """This process as a marker names it: host, pid, and the pid's start (pids are reused)."""
    pid = os.getpid()
    return f"runner {socket.gethostname() or '?'} pid {pid} started {_process_start(pid)}"


def runner_gone(host: str, pid: int, started: str) -> bool:
    """True when the run that made a scratch database provably ended: same host, and its pid
    is gone or now belongs to a process started at another time."""
    if host != (socket.gethostname() or "?"):
        return False  # another runner's host: only its deadline can tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return started != "?" and _process_start(pid) not in (started, "?")


# ---------------------------------------------------------------------------- tools


def find_client_tool(name: str) -> Path:
    """pg_config's bindir, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and os.access(Path(out) / name, os.X_OK):
                return Path(out) / name

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.parent.name)) or (0,)

    found = [p for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}") if os.access(p, os.X_OK)]
    if found:
        return max(found, key=version)
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise RestoreError(
        f"{name} not found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH): "
        "install the PostgreSQL client package"
    )


def is_custom_format(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(CUSTOM_FORMAT_MAGIC)) == CUSTOM_FORMAT_MAGIC


# ---------------------------------------------------------------------------- names


def new_run_id(now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)).strftime(_RUN_TIME)}_{secrets.token_hex(3)}"


def scratch_name(backup: str, run_id: str) -> str:
    """``maintcheck_restore_<backup>_<runid>``, lower case, within PostgreSQL's 63 bytes."""
    slug = re.sub(r"[^a-z0-9]+", "_", backup.lower()).strip("_") or "backup"
    room = 63 - len(SCRATCH_PREFIX) - len(run_id) - 1
    return f"{SCRATCH_PREFIX}{slug[:room].rstrip('_')}_{run_id}"


def dbname_of(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return str(params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE", ""))


def dsn_for(dsn: str, dbname: str) -> tuple[str, dict[str, str]]:
    """The DSN pointed at ``dbname``, and an env carrying a password that sat in the DSN."""
    params: dict[str, Any] = dict(conninfo_to_dict(dsn))
    params["dbname"] = dbname
    password = params.pop("password", None)
    return make_conninfo("", **params), ({"PGPASSWORD": str(password)} if password else {})


def server_of(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"{params.get('host', 'localhost')}:{params.get('port', '5432')}"


# ---------------------------------------------------------------------------- outcome


@dataclass
class RestoreOutcome:
    """What one restore test did and saw; plain values, ready for results.json."""

    backup: str
    server: str
    scratch: str = ""
    restored: bool = False
    duration: float | None = None  # pg_restore wall time, seconds
    total_duration: float | None = None  # create + restore + checks + drop
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None
    missing_tables: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # counted up to minRows
    short_tables: list[str] = field(default_factory=list)  # fewer rows than minRows
    dropped: bool = False
    drop_error: str | None = None
    leftovers_dropped: list[str] = field(default_factory=list)
    leftovers_failed: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # the prefix, but no marker: left alone
    refused: bool = False  # the restore role may run server programs: nothing was done
    skipped_extensions: list[str] = field(default_factory=list)
    performed: list[str] = field(default_factory=list)
    # the restore target could not be reached: nothing was tried, so nothing can be judged
    unreached: ProbeError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backup": self.backup,
            "server": self.server,
            "scratchDatabase": self.scratch,
            "restored": self.restored,
            "restoreDuration": self.duration,
            "totalDuration": self.total_duration,
            "timedOut": self.timed_out,
            "missingTables": self.missing_tables,
            "rows": self.rows,
            "scratchDropped": self.dropped,
            "leftoversDropped": self.leftovers_dropped,
            "notOurs": self.not_ours,
            "refused": self.refused,
            "skippedExtensions": self.skipped_extensions,
        }


# ---------------------------------------------------------------------------- signals


class RestoreInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP during a restore: unwinds like Ctrl-C, so the cleanup runs and pytest
    stops the run (a plain BaseException would fail one test and start the next restore)."""


@contextlib.contextmanager
def _interrupts_unwind() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into an exception while restoring (SIGINT already is one).

    A Python handler installed before (the run's own) is called first: it may raise its own
    exception, which unwinds the restore just the same. An ignored signal stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def raise_interrupted(signum: int, frame: FrameType | None) -> None:
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        raise RestoreInterrupted(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, raise_interrupted)
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back during cleanup; they arrive once it is done."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ---------------------------------------------------------------------------- database work


def _drop(conn: psycopg.Connection[Any], name: str, *, made_now: bool = False) -> None:
    """Drop a scratch database this tool made: prefix, marker and owner are checked first
    (``made_now``: this very restore created it, marked or not yet)."""
    if not name.startswith(SCRATCH_PREFIX):  # the one guard every drop passes
        raise RestoreError(f"refusing to drop {name}: not a scratch database")
    if not made_now:
        _check_marked(conn, name)
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _check_marked(conn: psycopg.Connection[Any], name: str) -> None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database'), datdba = (SELECT oid FROM pg_roles"
        " WHERE rolname = current_user) FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is not None and not (row[0] and _MARKER.match(str(row[0])) and row[1]):
        raise RestoreError(f"refusing to drop {name}: not marked as made by maintcheck")


def _abandoned(comment: str, now: datetime) -> str | None:
    """Why a marked scratch database's run is certainly over, or None while it may be alive."""
    marker = _MARKER.match(comment)
    if marker is None:
        return None
    if runner_gone(marker["host"], int(marker["pid"]), marker["started"]):
        return f"its runner (pid {marker['pid']} on {marker['host']}) is gone"
    with contextlib.suppress(ValueError):
        deadline = datetime.fromisoformat(marker["deadline"])
        if (deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)) < now:
            return f"past its deadline {marker['deadline']}"
    return None


def find_scratch_databases(conn: psycopg.Connection[Any]) -> list[tuple[str, str | None, bool]]:
    """(name, comment, owned by us) of every database named with the scratch prefix."""
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database'),"
        " datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        " FROM pg_database WHERE datname LIKE %s ORDER BY datname",
        (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    return [(str(r[0]), None if r[1] is None else str(r[1]), bool(r[2])) for r in rows]


def drop_leftovers(conn: psycopg.Connection[Any], outcome: RestoreOutcome) -> None:
    """Drop scratch databases of earlier runs that ended; a live run's is left alone, and a
    database without this tool's marker (or not owned by the restore role) is never touched."""
    now = datetime.now(UTC)
    for name, comment, ours in find_scratch_databases(conn):
        if not (ours and comment and _MARKER.match(comment)):
            outcome.not_ours.append(name)
            continue
        why = _abandoned(comment, now)
        if why is None:
            continue
        try:
            _drop(conn, name)
        except (psycopg.Error, RestoreError) as exc:
            shown = describe_pg_error(exc) if isinstance(exc, psycopg.Error) else str(exc)
            outcome.leftovers_failed.append(f"{name} ({shown})")
            continue
        outcome.leftovers_dropped.append(name)
        outcome.performed.append(f"dropped leftover scratch database {name} ({why})")


def privileged_restore_role(conn: psycopg.Connection[Any]) -> str | None:
    """Why the connected role may not restore a dump (its code would run with these rights)."""
    row = conn.execute(
        "SELECT current_user, rolsuper, pg_has_role(current_user, %s, 'MEMBER'),"
        " pg_has_role(current_user, %s, 'MEMBER'), pg_has_role(current_user, %s, 'MEMBER')"
        " FROM pg_roles WHERE rolname = current_user",
        _SERVER_ACCESS_ROLES,
    ).fetchone()
    if row is None:
        return None
    role = printable(str(row[0]), 64)
    if row[1]:
        return f"role {role} is a superuser"
    held = [r for r, has in zip(_SERVER_ACCESS_ROLES, row[2:], strict=True) if has]
    return f"role {role} is a member of {', '.join(held)}" if held else None


# the server's lines after an error message; they (and what follows) can quote row data
_SERVER_DETAIL = re.compile(r"^\s*(?:DETAIL|CONTEXT|HINT|QUERY|STATEMENT|LINE \d+):")
# a value the primary message quotes last: invalid input syntax for type date: "1990-13-45"
_QUOTED_VALUE = re.compile(r':\s+"(?:[^"]|"")*"\s*$')


def _restore_error(stderr: str) -> str:
    """pg_restore's error line, never a DETAIL/CONTEXT line or anything after one.

    Only pg_restore's own lines (``pg_restore: ...``) before the server's first detail line
    are candidates: the first ``pg_restore: error:`` one, else (an older or translated
    pg_restore) the last of them. The server's DETAIL and CONTEXT lines quote the failing row.
    """
    own: list[str] = []
    for line in stderr.splitlines():
        if _SERVER_DETAIL.match(line):
            break
        if line.startswith("pg_restore:"):
            own.append(line)
    errors = [ln for ln in own if ln.startswith("pg_restore: error:")]
    if not errors and not own:
        return "pg_restore printed no error line"
    text = errors[0] if errors else own[-1]
    text = re.split(r"\s(?:DETAIL|CONTEXT|HINT|LINE \d+):", text)[0]
    text = re.sub(r"=\(.*?\)", "=(…)", text)
    text = _QUOTED_VALUE.sub(': "…"', text)
    return printable(text.removeprefix("pg_restore: error: ").removeprefix("pg_restore: "), 300)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """pg_restore and its parallel workers: TERM, a bounded wait, then KILL the group."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


_TOC_EXTENSION = re.compile(r"^\d+; \d+ \d+ (?:EXTENSION - |COMMENT - EXTENSION )(\S+)")


def superuser_only_extensions(conn: psycopg.Connection[Any]) -> set[str]:
    """Extensions the connected role may not create (untrusted, and it is no superuser)."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row and row[0]:
        return set()
    rows = conn.execute(
        "SELECT e.name FROM pg_available_extensions e JOIN pg_available_extension_versions v "
        "ON v.name = e.name AND v.version = e.default_version WHERE v.superuser AND NOT v.trusted"
    ).fetchall()
    return {str(r[0]) for r in rows}


def toc_without_extensions(
    pg_restore: Path, dump: Path, skip: set[str], out: Path, timeout: float = 120.0
) -> list[str]:
    """Write a ``-L`` list of the dump minus CREATE/COMMENT of ``skip``; the skipped names."""
    try:
        listed = subprocess.run(
            [str(pg_restore), "--list", str(dump)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RestoreError(
            f"pg_restore --list {dump.name} did not finish within {timeout:g} s and was stopped"
        ) from None
    except OSError as exc:
        raise RestoreError(f"cannot run {pg_restore}: {exc.strerror or exc}") from None
    if listed.returncode != 0:
        return []  # the restore itself will fail and say why
    skipped: list[str] = []
    lines = []
    for line in listed.stdout.decode("utf-8", "replace").splitlines():
        match = _TOC_EXTENSION.match(line)
        if match and match.group(1) in skip:
            skipped.append(match.group(1))
            line = ";" + line
        lines.append(line)
    if skipped:
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sorted(set(skipped))


def run_pg_restore(
    pg_restore: Path,
    dump: Path,
    dsn: str,
    *,
    jobs: int,
    timeout: float,
    env: Mapping[str, str],
    extra_args: Sequence[str] = (),
) -> tuple[int | None, str, float]:
    """Run pg_restore in its own process group: (exit code or None on timeout, stderr, secs)."""
    argv = [
        str(pg_restore),
        "--exit-on-error",
        "--no-owner",  # the scratch database belongs to the restore role
        "--no-acl",  # grants name roles the restore server may not have
        f"--jobs={jobs}",
        f"--dbname={dsn}",
        *extra_args,
        str(dump),
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,  # we stop it ourselves, workers included
        )
    except OSError as exc:
        raise RestoreError(f"cannot run {pg_restore}: {exc.strerror or exc}") from None
    try:
        _, err = communicate_showing_progress(proc, timeout, f"restoring {dump.name}")
    except subprocess.TimeoutExpired:
        _stop(proc)
        return None, "", time.perf_counter() - started
    finally:
        _stop(proc)  # a no-op once it exited; on an interrupt it ends the restore first
    return proc.returncode, err.decode("utf-8", "replace"), time.perf_counter() - started


def _check_tables(
    conn: psycopg.Connection[Any],
    expect_tables: Sequence[str],
    min_rows: Sequence[tuple[str, int]],
    outcome: RestoreOutcome,
) -> None:
    wanted = {**dict.fromkeys(expect_tables, 0), **dict(min_rows)}
    for table, least in wanted.items():
        row = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            (table,),
        ).fetchone()
        if row is None:
            outcome.missing_tables.append(table)
            continue
        if least <= 0:
            continue
        ident = sql.Identifier(str(row[0]), str(row[1]))
        # counts at most `least` rows: cheap on a big table, enough to judge minRows
        query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(ident)
        counted = conn.execute(query, (least,)).fetchone()
        seen = int(counted[0]) if counted else 0
        outcome.rows[table] = seen
        if seen < least:
            outcome.short_tables.append(table)


# ---------------------------------------------------------------------------- the restore test


def restore_into_scratch(
    dump: Path,
    *,
    backup: str,
    target_dsn: str,
    source_dsn: str | None = None,
    jobs: int = 2,
    max_duration: float = 1800.0,
    expect_tables: Sequence[str] = (),
    min_rows: Sequence[tuple[str, int]] = (),
    connect_timeout: float = 10.0,
    statement_timeout: float = 60.0,
    pg_restore: Path | None = None,
    run_id: str | None = None,
) -> RestoreOutcome:
    """Restore ``dump`` into a new scratch database on the target's server, check it, drop it.

    Never raises for a failed restore: the outcome says what failed. The scratch database is
    dropped in every case, including a timeout, SIGINT, SIGTERM and SIGHUP.
    """
    outcome = RestoreOutcome(backup=dump.name, server=server_of(target_dsn))
    started = time.perf_counter()
    try:
        tool = pg_restore or find_client_tool("pg_restore")
        if not is_custom_format(dump):
            outcome.error = f"{dump.name} is not a custom-format dump (pg_dump -Fc)"
            return outcome
    except (RestoreError, OSError) as exc:
        outcome.error = str(exc) if isinstance(exc, RestoreError) else f"cannot read {dump}: {exc}"
        return outcome
    run = run_id or new_run_id()
    scratch = scratch_name(backup, run)
    forbidden = {dbname_of(target_dsn)} | ({dbname_of(source_dsn)} if source_dsn else set())
    if scratch in forbidden:  # cannot happen with the prefix; stated so a refactor keeps it
        raise RestoreError(f"refusing to restore into {scratch}: it is a configured database")
    timeout = max_duration + max(60.0, 0.2 * max_duration)
    deadline = datetime.now(UTC) + timedelta(seconds=timeout + statement_timeout * 3 + 300)
    try:
        with (
            connect(
                target_dsn,
                connect_timeout=connect_timeout,
                statement_timeout=statement_timeout,
                read_only=False,
            ) as admin,
            _interrupts_unwind(),
        ):
            why = privileged_restore_role(admin)
            if why is not None:
                outcome.refused = True
                outcome.error = (
                    f"refusing to restore as {why}: the dump's functions (a materialized view "
                    "calling COPY ... TO PROGRAM, say) would run on the server with those "
                    "rights; restore as a role with CREATEDB and nothing more"
                )
                return outcome
            drop_leftovers(admin, outcome)
            created = False
            try:
                with _signals_held():  # created and commented, or neither
                    admin.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                            sql.Identifier(scratch)
                        )
                    )
                    created = True
                    outcome.scratch = scratch
                    admin.execute(
                        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                            sql.Identifier(scratch),
                            sql.Literal(
                                f"maintcheck restore test of {printable(backup, 100)}; "
                                f"run {run}; {runner_mark()}; drop after {deadline.isoformat()}"
                            ),
                        )
                    )
                _restore_and_check(
                    tool, dump, target_dsn, scratch, jobs, timeout, outcome,
                    expect_tables, min_rows, connect_timeout, statement_timeout,
                    superuser_only_extensions(admin),
                )  # fmt: skip
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | RestoreInterrupted):
                    outcome.interrupted = True
                raise
            finally:
                if created:
                    with _signals_held():
                        _drop_scratch(admin, target_dsn, scratch, outcome, connect_timeout)
    except ProbeError as exc:
        outcome.error = outcome.error or str(exc)
        if not outcome.scratch:  # before CREATE DATABASE only connect() raises ProbeError
            outcome.unreached = exc
    except psycopg.Error as exc:
        outcome.error = outcome.error or describe_pg_error(exc)
    outcome.total_duration = round(time.perf_counter() - started, 3)
    return outcome


def _restore_and_check(
    tool: Path,
    dump: Path,
    target_dsn: str,
    scratch: str,
    jobs: int,
    timeout: float,
    outcome: RestoreOutcome,
    expect_tables: Sequence[str],
    min_rows: Sequence[tuple[str, int]],
    connect_timeout: float,
    statement_timeout: float,
    not_creatable: set[str],
) -> None:
    scratch_dsn, dsn_env = dsn_for(target_dsn, scratch)
    env = {
        **os.environ,
        **dsn_env,
        "PGCONNECT_TIMEOUT": str(max(2, round(connect_timeout))),
        "PGAPPNAME": f"pytest-maintcheck restore test {scratch}"[:63],
    }
    with tempfile.TemporaryDirectory(prefix="maintcheck-restore-") as tmp:
        toc = Path(tmp) / "restore.list"
        extra: list[str] = []
        try:
            if not_creatable:
                # e.g. pg_stat_statements: a least-privilege restore role cannot create it;
                # the data still restores, and the outcome names what a DR restore needs a
                # superuser for
                outcome.skipped_extensions = toc_without_extensions(tool, dump, not_creatable, toc)
                extra = [f"--use-list={toc}"] if outcome.skipped_extensions else []
            code, stderr, seconds = run_pg_restore(
                tool, dump, scratch_dsn, jobs=jobs, timeout=timeout, env=env, extra_args=extra
            )
        except RestoreError as exc:  # pg_restore could not be run, or --list hung
            outcome.error = str(exc)
            return
    outcome.duration = round(seconds, 3)
    if code is None:
        outcome.timed_out = True
        outcome.error = f"pg_restore did not finish within {timeout:.0f} s and was stopped"
        return
    if code != 0:
        outcome.error = f"pg_restore failed (exit {code}): {_restore_error(stderr)}"
        return
    outcome.restored = True
    outcome.performed.append(
        f"restored {dump.name} into scratch database {scratch} on {outcome.server} "
        f"in {seconds:.1f} s"
    )
    checking_dsn, _ = dsn_for(target_dsn, scratch)
    with connect(
        checking_dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout
    ) as conn:
        _check_tables(conn, expect_tables, min_rows, outcome)


def _drop_scratch(
    admin: psycopg.Connection[Any],
    target_dsn: str,
    scratch: str,
    outcome: RestoreOutcome,
    connect_timeout: float,
) -> None:
    """Drop on the admin connection; if that broke, on a new one."""
    for attempt in range(2):
        try:
            if attempt == 0 and not admin.closed:
                _drop(admin, scratch, made_now=True)
            else:
                with connect(target_dsn, connect_timeout=connect_timeout, read_only=False) as c:
                    _drop(c, scratch, made_now=True)
        except (psycopg.Error, ProbeError) as exc:
            outcome.drop_error = (
                describe_pg_error(exc) if isinstance(exc, psycopg.Error) else str(exc)
            )
            continue
        outcome.dropped, outcome.drop_error = True, None
        outcome.performed.append(f"dropped scratch database {scratch}")
        return


def communicate_showing_progress(
    proc: subprocess.Popen[bytes], timeout: float, what: str
) -> tuple[bytes, bytes]:
    """``proc.communicate(timeout)``, with the elapsed time on the status line while it runs."""
    with progress.task(what, limit=timeout):
        return proc.communicate(timeout=timeout)
