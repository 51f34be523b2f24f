"""pytest hooks for running from cron: the per-suite run lock.

Registered by the plugin at configure time; the lock itself is plain Python in ``runlock.py``.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.run import RunState
from pytest_maintcheck.runlock import (
    EXIT_LOCKED,
    LockError,
    LockHeld,
    RunLock,
    command_line,
    suites_selected,
)


class RunLockHooks:
    """Takes the lock of every suite this run may select before any check runs."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(tryfirst=True)  # before xdist starts workers and pytest-html writes
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """A second run of the same suite and config exits 75 and writes nothing."""
        config = session.config
        if self.state.config_path is None or self.state.config is None:
            return
        if config.getoption("collectonly", False):
            return  # listing checks touches no system
        lock = RunLock(
            config=self.state.config_path.resolve(),
            suites=suites_selected(str(config.getoption("markexpr", "") or "")),
        )
        try:
            lock.acquire(command_line(), now=self.state.started_at)
        except LockHeld as held:
            self.state.discard_staging()  # pytest-html made it; nothing of this run stays
            pytest.exit(f"maintcheck: {held}", returncode=EXIT_LOCKED)
        except LockError as exc:
            raise pytest.UsageError(f"maintcheck: {exc}") from None
        config.add_cleanup(lock.release)  # after the records are written
