"""The authentication log: failed logins, guessed passwords and unusual access, in one pass.

The log is JSON lines (``timestamp``, ``username``, ``sourceIp``, ``outcome``), read one line
at a time so a log of millions of lines is scanned in bounded memory: what is kept grows with
the number of distinct accounts and sources (capped at ``max_tracked`` each), never with lines.

Source addresses never leave this module: a source is named by an opaque label, the log line
where it first appeared in the window, which an operator can open to find the address. Only
usernames (shown through ``printable``) and counts reach a finding, and a username reaches a
failed-login finding only when it is a known account (``AccountNames``): people type
passwords into the username field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from pytest_maintcheck.errors import MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable

SUCCESS = frozenset({"success", "succeeded", "ok", "accepted", "allowed"})
FAILURE = frozenset({"failure", "failed", "fail", "denied", "rejected", "invalid"})
MAX_TRACKED = 100_000
MAX_RUN_SOURCES = 100
# a login record is a few hundred bytes; a longer line is garbage (a NUL-filled tail after a
# crash) and is skipped without being held in memory
MAX_LINE_BYTES = 64 * 1024


# the variable that keys the hash of unknown usernames (a name, not a secret)
USERNAME_SECRET_ENV = "MAINTCHECK_USERNAME_SECRET"  # noqa: S105


@dataclass(frozen=True)
class AccountNames:
    """How a username from the log is shown: a known account by name, anything else (a typo,
    a password typed into the username field, a scan for "admin") as a short keyed hash that
    is the same in every run with the same key, so an operator can follow it across runs."""

    known: frozenset[str]  # casefolded usernames from the roster and access-review sources
    key: bytes

    def shown(self, username: str) -> str:
        if username.strip().casefold() in self.known:
            return f"account {printable(username, 64)!r}"
        return f"unknown account #{self.digest(username)}"

    def digest(self, username: str) -> str:
        raw = username.encode("utf-8", "surrogatepass")
        return hmac.new(self.key, raw, hashlib.sha256).hexdigest()[:8]


def username_key(environ: Mapping[str, str], system: str) -> bytes:
    """The secret in MAINTCHECK_USERNAME_SECRET; without it the config's system name, which
    keeps labels stable but lets someone who knows the name test guesses against them."""
    secret = environ.get(USERNAME_SECRET_ENV, "")
    return secret.encode() if secret else f"maintcheck:{system}".encode()


class AuthLogError(MeasurementError):
    """The log could not be read at all; the message is safe to print."""


@dataclass(frozen=True)
class LoginEvent:
    at: datetime  # aware, UTC
    username: str
    source: str
    success: bool


def parse_line(line: str) -> LoginEvent | None:
    """One log line as an event, or None when it is not a well-formed login record."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line of deeply nested brackets
        return None
    if not isinstance(record, dict):
        return None
    stamp, user = record.get("timestamp"), record.get("username")
    source, outcome = record.get("sourceIp"), record.get("outcome")
    if not (isinstance(stamp, str) and isinstance(user, str) and user):
        return None
    if not (isinstance(source, str) and isinstance(outcome, str)):
        return None
    try:
        at = datetime.fromisoformat(stamp)  # 3.11 reads both "Z" and "+02:00"
        # a stamp without an offset is taken as UTC, the convention of audit logs
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        return None
    verdict = outcome.strip().lower()
    if verdict in SUCCESS:
        return LoginEvent(at, user, source, True)
    if verdict in FAILURE:
        return LoginEvent(at, user, source, False)
    return None


def bounded_lines(handle: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """Each line of a binary file, or None for a line longer than ``limit`` bytes: that one
    is skipped in pieces of ``limit``, so a log ending in 400 MB of NULs costs no memory."""
    while line := handle.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):  # the rest of the overlong line, unkept
            line = handle.readline(limit)
        yield None


def read_events(path: Path, stats: ScanStats) -> Iterator[tuple[int, LoginEvent]]:
    """(line number, event) for every line that parses; the rest are counted in ``stats``."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AuthLogError(
            f"cannot read the authentication log {path}: {exc.strerror}",
            cause=cause_of_os_error(exc),
            where=printable(path, 200),
        ) from None
    with handle:
        for number, raw in enumerate(bounded_lines(handle), start=1):
            line = raw.decode("utf-8", errors="replace") if raw is not None else None
            if line is not None and not line.strip():
                continue
            stats.lines += 1
            event = parse_line(line) if line is not None else None
            if event is None:
                stats.unparseable += 1
                stats.overlong += raw is None
                stats.first_unparseable = stats.first_unparseable or number
                continue
            yield number, event


@dataclass
class ScanStats:
    lines: int = 0
    unparseable: int = 0
    first_unparseable: int | None = None
    out_of_order: int = 0  # lines older than the line before: burst detection assumes order
    future: int = 0  # stamped after "now": clock skew, not counted
    untracked: int = 0  # events past the max_tracked cap of distinct accounts/sources
    overlong: int = 0  # lines over MAX_LINE_BYTES: skipped unread, counted as unparseable


@dataclass
class Burst:
    """A success that ended a run of consecutive failures on one account."""

    username: str
    failures: int
    sources: int
    span_seconds: float
    succeeded_at: datetime


@dataclass
class FailedLogins:
    stats: ScanStats = field(default_factory=ScanStats)
    attempts: int = 0
    failures: int = 0
    per_account: dict[str, int] = field(default_factory=dict)
    # source label ("line N") -> failures; labels only, the address stays in the log
    per_source: dict[str, int] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.failures / self.attempts if self.attempts else None


@dataclass
class _Run:
    failures: int = 0
    started: datetime | None = None
    sources: set[str] = field(default_factory=set)


def _window_start(now: datetime, window: float) -> datetime:
    return now.astimezone(UTC) - timedelta(seconds=window)


def _in_window(event: LoginEvent, start: datetime, now: datetime, stats: ScanStats) -> bool | None:
    """True inside the window, False before it, None after now (skew: skipped, counted)."""
    if event.at > now:
        stats.future += 1
        return None
    return event.at >= start


def scan_failed_logins(
    path: Path,
    *,
    now: datetime,
    window: float,
    burst: int,
    max_tracked: int = MAX_TRACKED,
) -> FailedLogins:
    """Failures per account and per source in the window, and successes after ``burst``
    consecutive failures on the same account (a likely guessed password)."""
    result = FailedLogins()
    stats = result.stats
    start = _window_start(now, window)
    runs: dict[str, _Run] = {}
    labels: dict[str, str] = {}  # address -> opaque label, never returned
    previous: datetime | None = None
    for number, event in read_events(path, stats):
        if previous is not None and event.at < previous:
            stats.out_of_order += 1
        previous = event.at if previous is None else max(previous, event.at)
        if not _in_window(event, start, now, stats):
            continue
        result.attempts += 1
        user = event.username
        if event.success:
            run = runs.pop(user, None)
            if run is not None and run.failures >= burst and run.started is not None:
                result.bursts.append(
                    Burst(
                        user,
                        run.failures,
                        len(run.sources),
                        (event.at - run.started).total_seconds(),
                        event.at,
                    )
                )
            continue
        result.failures += 1
        label = labels.get(event.source)
        if label is None and len(labels) < max_tracked:
            label = labels[event.source] = f"line {number}"
        if user not in result.per_account and len(result.per_account) >= max_tracked:
            stats.untracked += 1
            continue
        result.per_account[user] = result.per_account.get(user, 0) + 1
        if label is None:
            stats.untracked += 1
        else:
            result.per_source[label] = result.per_source.get(label, 0) + 1
        run = runs.setdefault(user, _Run())
        run.failures += 1
        run.started = run.started or event.at
        if len(run.sources) < MAX_RUN_SOURCES:  # "from N sources" without unbounded growth
            run.sources.add(label or "untracked")
    return result


@dataclass
class UnusualLogin:
    username: str
    count: int
    first_line: int  # where to look in the log
    latest: datetime


@dataclass
class AccessPatterns:
    stats: ScanStats = field(default_factory=ScanStats)
    logins: int = 0
    accounts_without_history: int = 0
    new_sources: list[UnusualLogin] = field(default_factory=list)
    off_hours: list[UnusualLogin] = field(default_factory=list)


@dataclass(frozen=True)
class OffHoursWindow:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, start: str, end: str, timezone: str) -> OffHoursWindow:
        return cls(time.fromisoformat(start), time.fromisoformat(end), ZoneInfo(timezone))

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps past midnight


def _tally(found: dict[str, UnusualLogin], user: str, number: int, at: datetime) -> None:
    seen = found.get(user)
    if seen is None:
        found[user] = UnusualLogin(user, 1, number, at)
    else:
        seen.count += 1
        seen.latest = max(seen.latest, at)


def scan_access_patterns(
    path: Path,
    *,
    now: datetime,
    window: float,
    off_hours: OffHoursWindow | None = None,
    max_tracked: int = MAX_TRACKED,
) -> AccessPatterns:
    """Successful logins in the window from a source the account never logged in from before
    the window, and successful logins during off hours."""
    result = AccessPatterns()
    stats = result.stats
    start = _window_start(now, window)
    # only successful logins make a source "known": failures from it prove nothing
    known: dict[str, set[str]] = {}
    tracked = 0
    # (user, source) -> (first line, time) for successes in the window; judged at the end,
    # because a log that is not strictly ordered may show history after the window's lines
    candidates: dict[tuple[str, str], tuple[int, datetime, int]] = {}
    odd_hours: dict[str, UnusualLogin] = {}
    for number, event in read_events(path, stats):
        placed = _in_window(event, start, now, stats)
        if placed is None or not event.success:
            continue
        user, source = event.username, event.source
        if not placed:
            sources = known.setdefault(user, set())
            if source not in sources:
                if tracked >= max_tracked:
                    stats.untracked += 1
                    continue
                sources.add(source)
                tracked += 1
            continue
        result.logins += 1
        if off_hours is not None and off_hours.contains(event.at):
            _tally(odd_hours, user, number, event.at)
        key = (user, source)
        seen = candidates.get(key)
        if seen is not None:
            candidates[key] = (seen[0], max(seen[1], event.at), seen[2] + 1)
        elif len(candidates) < max_tracked:
            candidates[key] = (number, event.at, 1)
        else:
            stats.untracked += 1
    newcomers: dict[str, UnusualLogin] = {}
    users_in_window = {user for user, _ in candidates}
    result.accounts_without_history = len(users_in_window - known.keys())
    for (user, source), (number, at, count) in sorted(candidates.items(), key=_by_line):
        history = known.get(user)
        # an account with no history before the window has nothing to compare against
        if history is None or source in history:
            continue
        earlier = newcomers.get(user)
        if earlier is None:
            newcomers[user] = UnusualLogin(user, count, number, at)
        else:
            earlier.count += count
            earlier.latest = max(earlier.latest, at)
    result.new_sources = list(newcomers.values())
    result.off_hours = list(odd_hours.values())
    return result


def _by_line(item: tuple[tuple[str, str], tuple[int, datetime, int]]) -> int:
    return item[1][0]


def write_events(path: Path, events: Iterable[LoginEvent]) -> None:
    """Write events as the log format expects (the demo and the tests use it)."""
    with path.open("a", encoding="utf-8") as handle:
        for e in events:
            handle.write(
                json.dumps(
                    {
                        "timestamp": e.at.isoformat().replace("+00:00", "Z"),
                        "username": e.username,
                        "sourceIp": e.source,
                        "outcome": "success" if e.success else "failure",
                    }
                )
                + "\n"
            )
