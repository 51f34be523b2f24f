"""What long work is doing, on one status line, only when someone watches a terminal.

Probes call ``task(...)`` around slow work (the fleet probe, a restore) and ``advance()`` as
it goes; nothing is shown unless the plugin installed a sink because stdout is a TTY, so
cron, CI and piped output stay byte for byte the same. While a task runs, a daemon thread
redraws the line once a second, so the elapsed time moves even when nothing finishes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
Sink = Callable[[str | None], None]  # draws a status text; None clears it

REFRESH = 1.0  # seconds between redraws
_lock = threading.Lock()
_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Where status lines go (the plugin's terminal sink), or None: nowhere."""
    global _sink
    with _lock:
        _sink = sink


def elapsed_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Task:
    """One piece of long work: what it is, how far it got, since when."""

    what: str
    total: int | None = None
    limit: float | None = None  # seconds the work may take at most
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def advance(self, count: int = 1) -> None:
        self.done += count
        _draw(self)

    def line(self) -> str:
        parts = [self.what]
        if self.total is not None:
            parts.append(f"{self.done}/{self.total}")
        took = elapsed_text(time.monotonic() - self.started)
        parts.append(f"{took} of at most {elapsed_text(self.limit)}" if self.limit else took)
        return "maintcheck: " + ", ".join(parts)


@contextmanager
def task(what: str, total: int | None = None, limit: float | None = None) -> Iterator[Task]:
    """Show ``what`` while the block runs (and redraw it each second); clear it afterwards."""
    current = Task(what, total, limit)
    if _sink is None:
        yield current
        return
    stop = threading.Event()

    def redraw() -> None:
        while not stop.wait(REFRESH):
            _draw(current)

    ticker = threading.Thread(target=redraw, name="maintcheck-progress", daemon=True)
    _draw(current)
    ticker.start()
    try:
        yield current
    finally:
        stop.set()
        ticker.join(REFRESH + 1)
        with _lock:
            if _sink is not None:
                _sink(None)


def counted(job: Callable[[], Awaitable[T]], shown: Task) -> Callable[[], Awaitable[T]]:
    """The same async job, advancing ``shown`` when it ends (however it ends)."""

    async def run() -> T:
        try:
            return await job()
        finally:
            shown.advance()

    return run


def _draw(current: Task) -> None:
    with _lock:
        if _sink is not None:
            _sink(current.line())


class TerminalLine:
    """A sink drawing the status after what pytest wrote on its current line.

    Writes to its own duplicate of the terminal's descriptor, so pytest's output capture
    (which redirects fd 1 during a check) does not swallow it. The cursor is saved and
    restored, so pytest's next write lands where it would have; clearing erases only the
    status. ``room`` says how many columns are left on the line.
    """

    def __init__(self, fd: int, room: Callable[[], int]) -> None:
        self.fd, self.room = fd, room

    def __call__(self, text: str | None) -> None:
        if text is None:
            out = "\x1b[K"
        else:
            width = max(0, self.room() - 3)
            shown = text if len(text) <= width else text[: max(0, width - 1)] + "…"
            out = "\x1b[K\x1b7  " + shown + "\x1b8" if shown else "\x1b[K"
        with contextlib.suppress(OSError):  # a terminal gone away must not fail a check
            os.write(self.fd, out.encode("utf-8", "replace"))
