"""A PostgreSQL server started on an existing data directory: a restored copy or a standby.

It runs as an unprivileged account when we are root (PostgreSQL refuses root: ``postgres``,
else ``nobody``), in its own session so a Ctrl-C in the terminal reaches us first, and is
always stopped with a bounded fast shutdown, then SIGKILL of its process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_maintcheck.sandbox.postgres import _RunAs, _unprivileged_account, find_bindir

_VERSION_DIR = Path("/usr/lib/postgresql")


class ServerError(Exception):
    """The server could not be started or stopped; the message is safe to print."""


def run_as_account() -> _RunAs | None:
    """The account PostgreSQL and its tools run as: None (ourselves) unless we are root."""
    return _unprivileged_account()


def child_kwargs(run_as: _RunAs | None, cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """subprocess arguments that drop to ``run_as`` (when root) with a clean environment."""
    child_env = dict(env)
    kw: dict[str, Any] = {"cwd": str(cwd), "env": child_env}
    if run_as is not None:
        child_env["HOME"] = str(cwd)
        child_env["USER"] = child_env["LOGNAME"] = run_as.name
        kw.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
    return kw


def give_to(run_as: _RunAs | None, *paths: Path) -> None:
    """chown each path to the account the server runs as (a no-op when not root)."""
    if run_as is None:
        return
    for path in paths:
        os.chown(path, run_as.uid, run_as.gid)


def bindir_for(major: str | None) -> Path:
    """The server binaries of PostgreSQL ``major`` (a data directory runs only on its own)."""
    if major:
        candidate = _VERSION_DIR / major / "bin"
        if os.access(candidate / "postgres", os.X_OK):
            return candidate
    found = find_bindir()
    if major and not re.match(rf"^{re.escape(major)}\b", _bindir_version(found)):
        raise ServerError(
            f"the backup is PostgreSQL {major} but only {_bindir_version(found) or found} "
            f"server binaries are installed: install postgresql-{major} on this host"
        )
    return found


def _bindir_version(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else ""


@dataclass
class LocalServer:
    """postgres -D ``data`` with ``settings`` as -c options; start(), then stop() always."""

    data: Path
    port: int
    settings: Mapping[str, str]
    log_path: Path
    bindir: Path
    run_as: _RunAs | None = None
    shutdown_timeout: float = 30.0
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        self._log = self.log_path.open("ab")
        give_to(self.run_as, self.log_path)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our cleanup stops it, not the terminal's Ctrl-C
                **child_kwargs(self.run_as, self.data.parent, env),
            )
        except OSError as exc:
            raise ServerError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None

    @property
    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Fast shutdown (SIGINT), a bounded wait, then SIGKILL of the group; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=self.shutdown_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=self.shutdown_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_until(deadline: float, ready: Any, server: LocalServer, step: float = 0.1) -> bool:
    """Call ``ready()`` until it is true, the server exits, or the monotonic deadline passes."""
    while time.monotonic() < deadline:
        if server.exited:
            return False
        if ready():
            return True
        time.sleep(step)
    return False
