"""Real PgBouncer and node_exporter processes on 127.0.0.1, for the tests and the demo.

Debian's ``pgbouncer`` and ``prometheus-node-exporter`` packages (scripts/ensure-services
installs them). As root each runs as the unprivileged account the PostgreSQL sandbox uses
(PgBouncer refuses root); every file they read lives in a private temp folder removed on stop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from pytest_maintcheck.sandbox.api_server import port_is_open
from pytest_maintcheck.sandbox.postgres import (
    SandboxError,
    _RunAs,
    _tail,
    _temp_base,
    _unprivileged_account,
    free_port,
)

NODE_EXPORTER_BINARIES = ("prometheus-node-exporter", "node_exporter")
PGBOUNCER_BINARIES = ("pgbouncer", "/usr/sbin/pgbouncer")


class ServiceNotFoundError(SandboxError):
    """The program is not installed (distinct so the demo can say it skipped that part)."""


def find_program(names: Sequence[str]) -> str:
    for name in names:
        found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    raise ServiceNotFoundError(
        f"{names[0]} is not installed; run scripts/ensure-services (Debian: apt-get install "
        "pgbouncer prometheus-node-exporter)"
    )


class _Service:
    """A child process on a free 127.0.0.1 port, in its own temp folder, stopped on exit."""

    name = "service"
    startup_timeout = 20.0

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._run_as: _RunAs | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def argv(self) -> list[str]:
        raise NotImplementedError

    def write_files(self) -> None:
        """Write what the program reads into self.dir (before it starts)."""

    def _own(self, *paths: Path) -> None:
        if self._run_as is not None:
            for p in paths:
                os.chown(p, self._run_as.uid, self._run_as.gid)

    def start(self) -> Self:
        if self._proc is not None:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        return self

    def _start(self) -> None:
        self._run_as = _unprivileged_account()
        self.dir = Path(tempfile.mkdtemp(prefix=f"maintcheck-{self.name}-",
                                         dir=_temp_base(self._run_as)))  # fmt: skip
        self._own(self.dir)
        log_path = self.dir / "service.log"
        self._log = log_path.open("ab")
        for _attempt in range(5):
            self.port = free_port(self.host)
            self.write_files()
            kw: dict[str, Any] = {"cwd": str(self.dir)}
            if self._run_as is not None:
                kw.update(user=self._run_as.uid, group=self._run_as.gid, extra_groups=[])
            try:
                self._proc = subprocess.Popen(
                    self.argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **kw,
                )
            except OSError as exc:
                raise SandboxError(f"could not run {self.argv()[0]}: {exc}") from exc
            if self._wait_ready(log_path):
                return
            self._reap()  # the port was taken meanwhile: another one
        raise SandboxError(f"{self.name} could not bind a free port:\n{_tail(log_path)}")

    def _wait_ready(self, log_path: Path) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = _tail(log_path)
                if "address already in use" in log.lower():
                    return False
                raise SandboxError(f"{self.name} exited with code {self._proc.returncode}:\n{log}")
            if port_is_open(self.host, self.port, 0.2):
                return True
            time.sleep(0.05)
        raise SandboxError(f"{self.name} not listening after {self.startup_timeout:g}s")

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the process and remove its folder; idempotent."""
        atexit.unregister(self.stop)
        self._reap()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class NodeExporter(_Service):
    """prometheus-node-exporter with the cpu, loadavg, meminfo and filesystem collectors; over
    TLS when given a certificate and key (its --web.config.file)."""

    name = "node-exporter"

    def __init__(self, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        super().__init__()
        self.binary = find_program(NODE_EXPORTER_BINARIES)
        self.certfile, self.keyfile = certfile, keyfile

    def write_files(self) -> None:
        assert self.dir is not None
        if self.certfile is None or self.keyfile is None:
            return
        for source in (self.certfile, self.keyfile):
            copied = self.dir / source.name
            shutil.copyfile(source, copied)
            copied.chmod(0o600)
            self._own(copied)
        web = self.dir / "web.yml"
        web.write_text(
            "tls_server_config:\n"
            f"  cert_file: {self.dir / self.certfile.name}\n"
            f"  key_file: {self.dir / self.keyfile.name}\n"
        )
        self._own(web)

    def argv(self) -> list[str]:
        assert self.dir is not None
        argv = [
            self.binary,
            f"--web.listen-address={self.host}:{self.port}",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.loadavg",
            "--collector.meminfo",
            "--collector.filesystem",
            "--log.level=warn",
        ]
        if self.certfile is not None:
            argv.append(f"--web.config.file={self.dir / 'web.yml'}")
        return argv

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/metrics"


class PgBouncer(_Service):
    """PgBouncer in front of a sandbox cluster: the ``databases`` given (name -> libpq
    connection string), the ``users`` given (name -> password) in its auth_file, and the
    settings given on top of ours."""

    name = "pgbouncer"

    def __init__(
        self,
        databases: Mapping[str, str],
        users: Mapping[str, str],
        *,
        stats_users: Sequence[str] = (),
        admin_users: Sequence[str] = (),
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        super().__init__()
        self.binary = find_program(PGBOUNCER_BINARIES)
        self.databases, self.users = dict(databases), dict(users)
        self.settings: dict[str, str | int] = {
            "listen_addr": "127.0.0.1",
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "pool_mode": "transaction",
            "max_client_conn": 100,
            "default_pool_size": 5,
            "stats_users": ",".join(stats_users),
            "admin_users": ",".join(admin_users),
            "server_login_retry": 1,
        }
        self.settings.update(settings or {})

    def write_files(self) -> None:
        assert self.dir is not None
        userlist = self.dir / "userlist.txt"
        userlist.write_text(
            "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        )
        userlist.chmod(0o600)
        settings = {
            **self.settings,
            "listen_port": self.port,
            "auth_file": str(userlist),
            "logfile": str(self.dir / "pgbouncer.log"),
            "pidfile": str(self.dir / "pgbouncer.pid"),
        }
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            + "".join(f"{name} = {dsn}\n" for name, dsn in self.databases.items())
            + "\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        ini.chmod(0o600)
        self._own(userlist, ini)

    def argv(self) -> list[str]:
        assert self.dir is not None
        return [self.binary, str(self.dir / "pgbouncer.ini")]

    def dsn(self, user: str, dbname: str = "pgbouncer") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"


def server_files_dir(prefix: str) -> Path:
    """A private folder the sandbox servers' account can read (for TLS keys and configs);
    call hand_to_servers once its files are written. The caller removes it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_temp_base(_unprivileged_account())))


def hand_to_servers(directory: Path) -> None:
    """Give a folder and its files to the account the sandbox servers run as (when root):
    PostgreSQL accepts a TLS key only if its owner is the server's user (or root with 0640)."""
    run_as = _unprivileged_account()
    if run_as is None:
        return
    for path in (directory, *directory.rglob("*")):
        os.chown(path, run_as.uid, run_as.gid)
