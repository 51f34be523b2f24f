"""A throwaway local PostgreSQL cluster: one initdb, TCP on 127.0.0.1 only, removed on stop."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

SUPERUSER = "sandbox_admin"
_SERVER_BINARIES = ("initdb", "postgres")
# a postmaster that lost the race for its port says one of these
_PORT_TAKEN = re.compile(r"could not bind|address already in use|could not create any TCP/IP", re.I)


class SandboxError(RuntimeError):
    """A sandbox part could not be set up; the message says what to fix."""


class PostgresNotFoundError(SandboxError):
    """No PostgreSQL server binaries on this machine (distinct so callers may skip)."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _SERVER_BINARIES)


def find_bindir() -> Path:
    """pg_config's bindir if it holds a server, else the newest /usr/lib/postgresql/*/bin."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server_binaries(Path(out)):
            return Path(out)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server_binaries(p)]
    if candidates:
        return max(candidates, key=version)
    raise PostgresNotFoundError(
        "no PostgreSQL server binaries found: neither `pg_config --bindir` nor "
        "/usr/lib/postgresql/*/bin has initdb and postgres; install the server package "
        "(e.g. apt-get install postgresql) or pass bindir="
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just reported free (callers retry if someone else grabs it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account the server runs under when we are root."""

    name: str
    uid: int
    gid: int


def _unprivileged_account() -> _RunAs | None:
    """None unless root: PostgreSQL refuses to run as root, so borrow postgres or nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return _RunAs(name, pw.pw_uid, pw.pw_gid)
    raise SandboxError("running as root but neither a `postgres` nor a `nobody` account exists")


def _temp_base(run_as: _RunAs | None) -> str | None:
    """The temp root, or /tmp when the unprivileged account could not traverse $TMPDIR."""
    base = tempfile.gettempdir()
    if run_as is not None and not os.stat(base).st_mode & stat.S_IXOTH:
        return "/tmp"  # noqa: S108 - world-traversable on purpose; our dir inside is 0700
    return base


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(server log is empty)"


@dataclass
class SandboxDatabase:
    """A database in a sandbox cluster, with a DSN that never carries the password."""

    cluster: PostgresCluster
    name: str
    user: str
    password: str = field(repr=False)

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.name, user=self.user)

    def connect(self, **kwargs: Any) -> psycopg.Connection[TupleRow]:
        kwargs.setdefault("password", self.password)
        return self.cluster.connect(self.name, user=self.user, **kwargs)


class PostgresCluster:
    """initdb + postmaster in a temp dir, for tests and demos; one per test session."""

    def __init__(
        self,
        *,
        bindir: str | Path | None = None,
        superuser: str = SUPERUSER,
        startup_timeout: float = 60.0,
        shutdown_timeout: float = 15.0,
        track_io_timing: bool = True,
        settings: Mapping[str, str] | None = None,
        initdb_args: tuple[str, ...] = (),  # e.g. ("--data-checksums",)
    ) -> None:
        self._initdb_args = initdb_args
        self._bindir = Path(bindir) if bindir is not None else None
        self._superuser = superuser
        self._password = secrets.token_urlsafe(24)
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._settings: dict[str, str] = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",  # TCP only: no socket files to clean up or guard
            "fsync": "off",  # throwaway data: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_preload_libraries": "pg_stat_statements",
            "track_io_timing": "on" if track_io_timing else "off",
            "logging_collector": "off",  # stderr goes to our log file
        }
        self._settings.update(settings or {})
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._tmpdir: Path | None = None
        self._log_path: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as: _RunAs | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PostgresCluster:
        """initdb and start the server; on any failure everything made so far is removed."""
        if self._proc is not None:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)  # a crashed session must not leave a postmaster behind
        return self

    def _start(self) -> None:
        bindir = self._bindir or find_bindir()
        if not _has_server_binaries(bindir):
            raise PostgresNotFoundError(f"{bindir} has no executable initdb and postgres")
        self._bindir = bindir
        self._run_as = _unprivileged_account()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="maintcheck-pg-", dir=_temp_base(self._run_as)))
        self._log_path = self._tmpdir / "server.log"
        self._log_file = self._log_path.open("ab")
        pwfile = self._tmpdir / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            for p in (self._tmpdir, pwfile, self._log_path):
                os.chown(p, self._run_as.uid, self._run_as.gid)
        data = self._tmpdir / "data"
        self._run(
            [
                str(bindir / "initdb"),
                "-D", str(data),
                "-U", self._superuser,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                *self._initdb_args,
            ]
        )  # fmt: skip
        pwfile.unlink()
        for _attempt in range(5):
            self._port = free_port(self._host)
            self._launch(bindir, data)
            if self._wait_ready():
                return
            # lost the port to another process (e.g. a parallel xdist worker): try another
            self._reap()
        raise SandboxError(f"postgres could not bind a free port:\n{_tail(self._log_path)}")

    def _child_kwargs(self) -> dict[str, Any]:
        """Drop to the unprivileged account when root; as a normal user run directly."""
        assert self._tmpdir is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kw: dict[str, Any] = {"cwd": str(self._tmpdir), "env": env}
        if self._run_as is not None:
            env["HOME"] = str(self._tmpdir)
            env["USER"] = env["LOGNAME"] = self._run_as.name
            kw.update(user=self._run_as.uid, group=self._run_as.gid, extra_groups=[])
        return kw

    def _run(self, argv: list[str]) -> None:
        assert self._log_file is not None
        try:
            done = subprocess.run(
                argv,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                timeout=self._startup_timeout,
                check=False,
                **self._child_kwargs(),
            )
        except subprocess.TimeoutExpired as e:
            raise SandboxError(f"{argv[0]} timed out:\n{_tail(self._log_path)}") from e
        except OSError as e:
            raise SandboxError(f"could not run {argv[0]}: {e}") from e
        if done.returncode != 0:
            raise SandboxError(
                f"{Path(argv[0]).name} failed with exit code {done.returncode}:\n"
                f"{_tail(self._log_path)}"
            )

    def _launch(self, bindir: Path, data: Path) -> None:
        argv = [str(bindir / "postgres"), "-D", str(data), "-p", str(self._port)]
        for name, value in self._settings.items():
            argv += ["-c", f"{name}={value}"]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal must not kill it before cleanup
                **self._child_kwargs(),
            )
        except OSError as e:
            raise SandboxError(f"could not run {argv[0]}: {e}") from e

    def _wait_ready(self) -> bool:
        """True once a login works; False if the port was taken; SandboxError otherwise."""
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = _tail(self._log_path)
                if _PORT_TAKEN.search(log):
                    return False
                raise SandboxError(
                    f"postgres exited with code {self._proc.returncode} during startup:\n{log}"
                )
            try:
                with self.connect(connect_timeout=2):
                    return True
            except psycopg.OperationalError as e:
                last_error = str(e).strip()
            time.sleep(0.05)
        raise SandboxError(
            f"postgres not ready after {self._startup_timeout:.0f}s (last error: {last_error}):\n"
            f"{_tail(self._log_path)}"
        )

    def _reap(self) -> None:
        """Fast shutdown of the postmaster: SIGINT, bounded wait, then SIGKILL its group."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=self._shutdown_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # own session: pgid == pid
                proc.wait(timeout=self._shutdown_timeout)

    def stop(self) -> None:
        """Stop the server and delete its files; idempotent, safe after a failed start."""
        atexit.unregister(self.stop)
        self._reap()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._port = None

    # -- properties ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise SandboxError("the cluster is not running; call start() first")
        return self._port

    @property
    def superuser(self) -> str:
        return self._superuser

    @property
    def password(self) -> str:
        return self._password

    @property
    def data_dir(self) -> Path:
        if self._tmpdir is None:
            raise SandboxError("the cluster is not running; call start() first")
        return self._tmpdir / "data"

    @property
    def bindir(self) -> Path | None:
        return self._bindir

    @property
    def log_path(self) -> Path | None:
        return self._log_path if self._tmpdir is not None else None

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A postgresql:// URL without the password (it goes through PGPASSWORD or password=)."""
        u = quote(user or self._superuser, safe="")
        return f"postgresql://{u}@{self._host}:{self.port}/{quote(dbname, safe='')}"

    def connect(
        self,
        dbname: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> psycopg.Connection[TupleRow]:
        """An autocommit connection; as the superuser unless user= is given."""
        if user is None:
            user = self._superuser
            password = self._password if password is None else password
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("autocommit", True)
        if password is not None:
            kwargs["password"] = password
        return psycopg.connect(host=self._host, port=self.port, dbname=dbname, user=user, **kwargs)

    # -- helpers ---------------------------------------------------------------------------

    def create_database(self, name: str, owner: str | None = None) -> SandboxDatabase:
        """CREATE DATABASE; the returned handle logs in as the superuser."""
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
        with self.connect() as conn:
            conn.execute(query)
        return SandboxDatabase(self, name, self._superuser, self._password)

    def drop_database(self, name: str) -> None:
        """Terminate its sessions, then DROP DATABASE IF EXISTS ... WITH (FORCE)."""
        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def create_role(self, name: str, password: str, *grants: str) -> None:
        """A LOGIN role with a password and only the given role grants (e.g. pg_monitor)."""
        with self.connect() as conn:
            # utility statements cannot take bind parameters, hence a quoted literal
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            for grant in grants:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), sql.Identifier(name))
                )

    def drop_role(self, name: str) -> None:
        """DROP ROLE IF EXISTS, after dropping what it owns in the postgres database."""
        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if exists:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
