"""One run at a time per suite and config: an flock the kernel releases when the holder dies.

Two cron runs of the same suite against the same config would probe, restore and repair the
same systems at once. Each run takes one lock per suite its ``-m`` expression can select,
before any check runs; a second run finds it held, says who holds it, and exits with
``EXIT_LOCKED`` (75, EX_TEMPFAIL) without writing a run folder. The lock is an ``flock`` on a
file that is never removed: a killed run's lock goes with its process, so it never blocks the
next one; the file only keeps the last holder's description.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pytest_maintcheck.catalogue import SUITES

EXIT_LOCKED = 75  # EX_TEMPFAIL from sysexits.h: try again later
LOCK_DIR_ENV = "MAINTCHECK_LOCK_DIR"


class LockError(Exception):
    """The lock folder cannot be used (wrong owner, writable by others, not writable)."""


class LockHeld(Exception):
    """Another run holds the lock of a suite this run would run."""

    def __init__(self, suite: str, config: Path, holder: dict[str, object]) -> None:
        self.suite, self.config, self.holder = suite, config, holder
        super().__init__(describe_holder(suite, config, holder))


def describe_holder(suite: str, config: Path, holder: dict[str, object]) -> str:
    """Who holds the lock, in one line an operator can act on."""
    if not holder:
        who = "a run that has not yet said who it is"
    else:
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
            f"{holder.get('startedAt', '?')} ({holder.get('command', '?')})"
        )
    return (
        f"another run of the {suite} suite with {config} holds its lock: {who}; "
        "this run did nothing (exit 75). Wait for it to finish, or stop that process"
    )


def default_lock_dir() -> Path:
    """Where lock files live: the same folder for cron, systemd and a shell of one account.

    ``MAINTCHECK_LOCK_DIR`` overrides it; else ``/run/lock/maintcheck-<uid>`` where /run/lock
    is writable, else ``maintcheck-<uid>`` in the temporary folder.
    """
    given = os.environ.get(LOCK_DIR_ENV)
    if given:
        return Path(given)
    uid = os.geteuid()
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK | os.X_OK):
        return run_lock / f"maintcheck-{uid}"
    return Path(tempfile.gettempdir()) / f"maintcheck-{uid}"


def suites_selected(markexpr: str) -> list[str]:
    """The suites a ``-m`` expression can select (all three without one)."""
    if not markexpr.strip():
        return list(SUITES)
    from _pytest.mark.expression import Expression  # pytest's own parser of -m

    try:
        expression = Expression.compile(markexpr)
    except SyntaxError:  # pytest itself reports the bad expression; lock every suite meanwhile
        return list(SUITES)
    chosen = [suite for suite in SUITES if expression.evaluate(_named(suite))]
    return chosen or list(SUITES)  # "-m slow": no suite by name, so any check may run


def _named(suite: str) -> Callable[..., bool]:
    """A -m matcher for which only this suite's marker is present."""

    def match(name: str, /, **_kwargs: object) -> bool:
        return name == suite

    return match


@dataclass
class RunLock:
    """The held locks of one run, released by ``release`` or by the process ending."""

    config: Path
    suites: list[str]
    folder: Path = field(default_factory=default_lock_dir)
    _fds: list[int] = field(default_factory=list)

    def path_for(self, suite: str) -> Path:
        digest = hashlib.sha256(str(self.config).encode()).hexdigest()[:16]
        return self.folder / f"{suite}-{digest}.lock"

    def acquire(self, command: Iterable[str], now: datetime | None = None) -> None:
        """Take every suite's lock, or none: raise LockHeld naming the holder."""
        self._prepare_folder()
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "startedAt": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "command": " ".join(command)[:2000],
            "config": str(self.config),
        }
        try:
            for suite in sorted(self.suites):
                self._take(suite, holder)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())  # closing drops the flock

    def _take(self, suite: str, holder: dict[str, object]) -> None:
        path = self.path_for(suite)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open the run lock {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _read_holder(fd)
            os.close(fd)
            raise LockHeld(suite, self.config, found) from None
        self._fds.append(fd)
        data = json.dumps({**holder, "suite": suite}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def _prepare_folder(self) -> None:
        """A lock folder of our own that nobody else can write into (lock files are trusted)."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.folder.stat()
        except OSError as exc:
            raise LockError(
                f"cannot make the lock folder {self.folder}: {exc.strerror or exc}; "
                f"set {LOCK_DIR_ENV} to a folder of your own"
            ) from None
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise LockError(
                f"the lock folder {self.folder} is not yours alone (owner uid {info.st_uid}, "
                f"mode {stat.S_IMODE(info.st_mode):04o}); set {LOCK_DIR_ENV} to a folder of "
                "your own"
            )


def _read_holder(fd: int) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
        if isinstance(found, dict):
            return found
    return {}


def command_line() -> list[str]:
    """This process's command as an operator would recognise it."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else ["pytest"]
