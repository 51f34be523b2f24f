"""A primary that archives its WAL into a real pgBackRest repository, and a streaming standby.

For the tests and the demo: one temp folder holds the pgbackrest.conf, a posix repository, the
lock and log folders and the server's socket, all owned by the account the server runs as
(pgBackRest must run as the cluster's OS user). The archive_command can be made to fail for
real (a switch file it tests first), and the standby is a pg_basebackup copy on its own port.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

from pytest_maintcheck.probes.local_server import LocalServer, child_kwargs, give_to
from pytest_maintcheck.sandbox.postgres import (
    PostgresCluster,
    SandboxError,
    _temp_base,
    _unprivileged_account,
    free_port,
)

PGBACKREST = "pgbackrest"


class _Started:
    """A part started on entering and stopped on leaving, also when its start fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ArchivedPrimary(_Started):
    """PostgresCluster + pgBackRest stanza (+ standbys); ``with`` stops and removes it all."""

    def __init__(self, stanza: str = "clinical", *, backup: bool = True) -> None:
        self.stanza = stanza
        self.run_as = _unprivileged_account()
        self.root = Path(tempfile.mkdtemp(prefix="maintcheck-pgbr-", dir=_temp_base(self.run_as)))
        self.root.chmod(0o755)  # the server's account reaches its folders inside
        self.socket_dir, self.repo, self.work = (self.root / n for n in ("sock", "repo", "work"))
        for folder in (self.socket_dir, self.repo, self.work):
            folder.mkdir(mode=0o700)
            give_to(self.run_as, folder)
        self.config = self.root / "pgbackrest.conf"
        self.archive_switch = self.work / "archive-fails"  # present: archive_command fails
        self.standbys: list[LocalServer] = []
        self._standby_names: dict[int, str] = {}
        self._take_backup = backup
        archive = (
            f"test ! -e {self.archive_switch} && "
            f"{PGBACKREST} --config={self.config} --stanza={stanza} archive-push %p"
        )
        self.cluster = PostgresCluster(
            settings={
                "unix_socket_directories": str(self.socket_dir),
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": archive,
                "max_wal_senders": "10",
                "max_replication_slots": "10",
            }
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.cluster.start()
        self.config.write_text(self.config_text(), encoding="utf-8")
        self.config.chmod(0o644)
        self.pgbackrest("stanza-create")
        if self._take_backup:
            self.backup("full")

    def config_text(self, repo: Path | None = None) -> str:
        return (
            "[global]\n"
            f"repo1-path={repo or self.repo}\n"
            "repo1-retention-full=4\n"
            f"lock-path={self.work}/lock\n"
            f"log-path={self.work}/log\n"
            "log-level-file=off\n"
            "log-level-console=warn\n"
            "start-fast=y\n"
            "compress-type=lz4\n"
            "archive-timeout=30\n"
            f"\n[{self.stanza}]\n"
            f"pg1-path={self.cluster.data_dir}\n"
            f"pg1-socket-path={self.socket_dir}\n"
            f"pg1-port={self.cluster.port}\n"
            f"pg1-user={self.cluster.superuser}\n"
        )

    def stop(self) -> None:
        for standby in self.standbys:
            standby.stop()
        # a failing archive_command holds the shutdown for the archiver's retries (about 3 s)
        self.archive_switch.unlink(missing_ok=True)
        self.cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- pgBackRest --------------------------------------------------------------------------

    def pgbackrest(self, *args: str, timeout: float = 300.0) -> str:
        """Run pgbackrest as the cluster's account; SandboxError with its output on failure."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": self.cluster.password}
        argv = [PGBACKREST, f"--config={self.config}", f"--stanza={self.stanza}", *args]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False,
            **child_kwargs(self.run_as, self.work, env),
        )  # fmt: skip
        if done.returncode != 0:
            raise SandboxError(f"{' '.join(argv[3:])} failed ({done.returncode}): {done.stderr}")
        return str(done.stdout)

    def backup(self, kind: str = "full") -> None:
        self.pgbackrest(f"--type={kind}", "backup")

    def segment_files(self) -> list[Path]:
        """The archived WAL segments in the repository, oldest first."""
        return sorted(p for p in (self.repo / "archive").rglob("*") if _is_segment(p.name))

    # -- the database ------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return self.cluster.connect(dbname)

    def switch_wal(self) -> None:
        """Write something and close the current segment, so it is archived."""
        with self.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS maintcheck_wal_tick (at timestamptz)")
            conn.execute("INSERT INTO maintcheck_wal_tick VALUES (now())")
            conn.execute("SELECT pg_switch_wal()")

    def wait_archived(self, timeout: float = 30.0) -> None:
        """Until nothing waits in archive_status (.ready files)."""
        deadline = time.monotonic() + timeout
        with self.connect() as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
                ).fetchone()
                if row and row[0] == 0:
                    return
                time.sleep(0.2)
        raise SandboxError(f"WAL still waiting to be archived after {timeout:g}s")

    # -- standbys ----------------------------------------------------------------------------

    def add_standby(self, name: str = "standby1", slot: str | None = "standby1") -> LocalServer:
        """pg_basebackup of the primary, started as a streaming hot standby on its own port."""
        bindir = self.cluster.bindir
        assert bindir is not None
        home = self.root / f"standby-{name}"
        home.mkdir(mode=0o700)
        give_to(self.run_as, home)
        data = home / "data"
        if slot:
            with self.connect() as conn:
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": self.cluster.password}
        argv = [
            str(bindir / "pg_basebackup"), "-D", str(data), "-X", "stream", "--no-sync",
            "-h", self.cluster.host, "-p", str(self.cluster.port), "-U", self.cluster.superuser,
        ]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=300, check=False,
            **child_kwargs(self.run_as, home, env),
        )  # fmt: skip
        if done.returncode != 0:
            raise SandboxError(f"pg_basebackup failed: {done.stderr}")
        (data / "standby.signal").touch()
        give_to(self.run_as, data / "standby.signal")
        conninfo = psycopg.conninfo.make_conninfo(
            host=self.cluster.host, port=self.cluster.port, user=self.cluster.superuser,
            password=self.cluster.password, application_name=name,
        )  # fmt: skip
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "hot_standby": "on",
            "primary_conninfo": conninfo,
            "fsync": "off",
            "shared_preload_libraries": "",
            "logging_collector": "off",
        }
        if slot:
            settings["primary_slot_name"] = slot
        server = LocalServer(
            data=data, port=free_port(), settings=settings, log_path=home / "server.log",
            bindir=bindir, run_as=self.run_as,
        )  # fmt: skip
        self.standbys.append(server)
        self._standby_names[id(server)] = name
        self.start_standby(server)
        return server

    def start_standby(self, server: LocalServer, timeout: float = 60.0) -> None:
        """Start (again) and wait until it streams from the primary."""
        server.port = free_port()
        server.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.exited:
                raise SandboxError(f"standby exited during startup:\n{server.log_tail()}")
            with self.connect() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication "
                    "WHERE application_name = %s AND state = 'streaming'",
                    (self._standby_names[id(server)],),
                ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.2)
        raise SandboxError(f"standby not streaming after {timeout:g}s:\n{server.log_tail()}")

    def standby_dsn(self, server: LocalServer, user: str, dbname: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{server.port}/{dbname}"

    def create_monitor_role(self, name: str) -> str:
        """A LOGIN role with only pg_monitor; its password (replicated to standbys too)."""
        password = secrets.token_urlsafe(16)
        self.cluster.create_role(name, password, "pg_monitor")
        with self.connect() as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE postgres TO {}").format(
                sql.Identifier(name)))  # fmt: skip
        return password


def _is_segment(name: str) -> bool:
    """A WAL segment file as pgBackRest stores it: 24 hex digits, a dash, its checksum."""
    head = name.split("-", 1)[0]
    return len(head) == 24 and all(c in "0123456789ABCDEF" for c in head) and "-" in name


class BarmanPrimary(_Started):
    """A PostgresCluster archiving into a Barman server (archive_command copies into Barman's
    incoming folder, ``backup_method = postgres``); Barman runs as this user (barman_user)."""

    def __init__(self, server: str = "clinical") -> None:
        self.server = server
        self.run_as = _unprivileged_account()
        self.root = Path(tempfile.mkdtemp(prefix="maintcheck-barman-", dir=_temp_base(self.run_as)))
        self.root.chmod(0o755)
        self.home = self.root / "home"
        self.incoming = self.home / server / "incoming"
        self.incoming.mkdir(parents=True)
        give_to(self.run_as, self.incoming.parent, self.incoming)
        self.config = self.root / "barman.conf"
        self.cluster = PostgresCluster(
            settings={
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"cp %p {self.incoming}/%f",
                "max_wal_senders": "10",
            }
        )

    def start(self) -> None:
        import getpass

        self.cluster.start()
        passfile = self.root / "pgpass"
        passfile.write_text(
            f"{self.cluster.host}:{self.cluster.port}:*:{self.cluster.superuser}:"
            f"{self.cluster.password}\n"
        )
        passfile.chmod(0o600)
        where = (
            f"host={self.cluster.host} port={self.cluster.port} user={self.cluster.superuser} "
            f"passfile={passfile}"
        )
        self.config.write_text(
            "[barman]\n"
            f"barman_user = {getpass.getuser()}\n"
            f"barman_home = {self.home}\n"
            f"log_file = {self.root}/barman.log\n"
            "log_level = WARNING\n"
            f"\n[{self.server}]\n"
            "description = maintcheck sandbox\n"
            f"conninfo = {where} dbname=postgres\n"
            f"streaming_conninfo = {where}\n"
            "backup_method = postgres\n"
            "archiver = on\n"
            f"path_prefix = {self.cluster.bindir}\n",
            encoding="utf-8",
        )

    def stop(self) -> None:
        self.cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def barman(self, *args: str, timeout: float = 300.0) -> str:
        argv = ["barman", "-c", str(self.config), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise SandboxError(f"barman {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return str(done.stdout)

    def switch_wal(self) -> None:
        """Write, close the segment, and let Barman file it (what `barman cron` does)."""
        with self.cluster.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS maintcheck_wal_tick (at timestamptz)")
            conn.execute("INSERT INTO maintcheck_wal_tick VALUES (now())")
        self.barman("switch-wal", "--force", "--archive", "--archive-timeout", "60", self.server)

    def backup(self) -> None:
        self.barman("switch-wal", "--force", "--archive", "--archive-timeout", "60", self.server)
        self.barman("backup", "--wait", self.server)

    def wal_files(self) -> list[Path]:
        return sorted(p for p in (self.home / self.server / "wals").rglob("*") if len(p.name) == 24)
