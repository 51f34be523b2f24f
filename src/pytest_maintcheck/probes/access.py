"""Accounts for the access review: PostgreSQL login roles and user exports, and the roster.

Sources:
- PostgreSQL: login roles from ``pg_roles`` (``rolcanlogin``), with ``rolsuper``,
  ``rolvaliduntil`` and every role they are a member of, directly or through other roles.
  Roles named ``pg_*`` are PostgreSQL's own predefined roles (they cannot log in) and are
  ignored. PostgreSQL records no last login and has no MFA, so those two rules do not apply to
  database roles; the review says so in its details.
- A user export, CSV (header ``username,role,enabled,lastLogin,mfa``) or JSON (a list of
  objects with those keys, or ``{"users": [...]}``). ``role`` may hold several roles separated
  by ``;`` or ``|`` (or be a JSON list).
- The roster: CSV ``username,status`` with status ``active`` or ``terminated``.

Usernames are compared case-insensitively. Nothing here judges; the check does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psycopg

from pytest_maintcheck.errors import cause_of_os_error
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable

_TRUE = {"true", "yes", "y", "1", "enabled", "active", "on", "t"}
_FALSE = {"false", "no", "n", "0", "disabled", "inactive", "off", "f", "locked", ""}
_ROLE_SPLIT = re.compile(r"[;|]")


@dataclass(frozen=True)
class Account:
    """One account as a source reports it."""

    source: str
    username: str
    enabled: bool
    roles: tuple[str, ...] = ()
    superuser: bool = False
    last_login: dt.datetime | None = None
    mfa: bool | None = None  # None: the source does not say
    password_never_expires: bool | None = None  # PostgreSQL only
    password_expires: dt.datetime | None = None
    kind: str = "file"  # file | postgres

    @property
    def key(self) -> str:
        return normalize(self.username)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "username": self.username,
            "enabled": self.enabled,
            "roles": list(self.roles),
            "superuser": self.superuser,
            "lastLogin": self.last_login.isoformat() if self.last_login else None,
            "mfa": self.mfa,
            "passwordExpires": (
                "never"
                if self.password_never_expires
                else (self.password_expires.isoformat() if self.password_expires else None)
            ),
        }


@dataclass
class SourceResult:
    """The accounts one source gave, and rows it could not read."""

    name: str
    accounts: list[Account] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def normalize(username: str) -> str:
    return username.strip().casefold()


# ---------------------------------------------------------------------------- PostgreSQL

_ROLES_SQL = """
WITH RECURSIVE member_of(member, roleid) AS (
    SELECT member, roleid FROM pg_auth_members
  UNION
    SELECT m.member, a.roleid FROM member_of m JOIN pg_auth_members a ON a.member = m.roleid
)
SELECT r.rolname, r.rolsuper,
       r.rolvaliduntil IS NULL OR NOT isfinite(r.rolvaliduntil) AS never_expires,
       CASE WHEN isfinite(r.rolvaliduntil) THEN r.rolvaliduntil END AS valid_until,
       COALESCE(ARRAY(SELECT g.rolname FROM member_of m JOIN pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid ORDER BY 1), '{}') AS member_of
FROM pg_roles r
WHERE r.rolcanlogin AND r.rolname NOT LIKE 'pg\\_%'
ORDER BY r.rolname
"""


def postgres_accounts(
    name: str, dsn: str, *, connect_timeout: float = 10.0, statement_timeout: float = 30.0
) -> SourceResult:
    """Login roles of the cluster behind dsn (pg_* roles ignored). Raises ProbeError."""
    result = SourceResult(name)
    bound = session_bound(connect_timeout, statement_timeout, 2)
    rows, predefined = run_bounded(
        bound, f"{name}: pg_roles", _read_roles, name, dsn, connect_timeout, statement_timeout
    )
    for rolname, rolsuper, never, valid_until, member_of in rows:
        result.accounts.append(
            Account(
                source=name,
                # a quoted role name may hold a newline or an escape code
                username=printable(rolname, 120),
                enabled=True,  # only login roles are read
                roles=tuple(printable(r, 120) for r in cast(list[str], member_of)),
                superuser=bool(rolsuper),
                password_never_expires=bool(never),
                password_expires=valid_until if isinstance(valid_until, dt.datetime) else None,
                kind="postgres",
            )
        )
    count = int(str(predefined[0])) if predefined else 0
    result.ignored.append(f"{count} predefined pg_* roles (PostgreSQL's own, cannot log in)")
    return result


def _read_roles(
    name: str, dsn: str, connect_timeout: float, statement_timeout: float
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
    try:
        with connect(
            dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout
        ) as conn:
            rows = conn.execute(_ROLES_SQL).fetchall()
            predefined = conn.execute(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pg\\_%'"
            ).fetchone()
    except psycopg.Error as exc:
        raise ProbeError(f"{name}: reading pg_roles failed: {describe_pg_error(exc)}") from None
    return rows, predefined


# ---------------------------------------------------------------------------- exports


def file_accounts(name: str, path: Path) -> SourceResult:
    """A CSV or JSON user export. Raises ProbeError when the file cannot be read at all."""
    text = _read(path)
    result = SourceResult(name)
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        except RecursionError:
            raise ProbeError(f"{path} is nested too deeply to be a user export") from None
        rows = loaded.get("users") if isinstance(loaded, dict) else loaded
        if not isinstance(rows, list):
            raise ProbeError(f"{path}: expected a list of users or {{'users': [...]}}")
    else:
        reader = csv.DictReader(io.StringIO(text))
        fields = {(f or "").strip() for f in _csv_header(reader, path)}
        if "username" not in fields:
            raise ProbeError(f"{path}: the CSV header has no 'username' column")
        rows = _csv_rows(reader, path)
    for i, row in enumerate(rows, start=1):
        try:
            result.accounts.append(_account(name, row))
        except ValueError as exc:
            result.problems.append(f"{path.name} record {i}: {printable(exc, 160)}")
    return result


def _csv_header(reader: csv.DictReader[str], path: Path) -> Sequence[str]:
    try:
        return reader.fieldnames or ()
    except csv.Error as exc:
        raise ProbeError(f"{path} is not readable CSV: {printable(exc, 100)}") from None


def _csv_rows(reader: csv.DictReader[str], path: Path) -> list[dict[str | Any, str | Any]]:
    """Every row; an unclosed quote (which swallows the rest of the file) is one clear error."""
    try:
        return list(reader)
    except csv.Error as exc:
        raise ProbeError(
            f"{path} is not readable CSV near line {reader.line_num}: {printable(exc, 100)}"
        ) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ProbeError(
            f"cannot read {path}: {exc.strerror or exc}",
            cause=cause_of_os_error(exc),
            where=printable(path, 200),
        ) from None
    except UnicodeDecodeError:
        raise ProbeError(f"{path} is not UTF-8 text") from None


def _account(source: str, row: object) -> Account:
    if not isinstance(row, dict):
        raise ValueError("not an object")
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    username = str(row.get("username") or "").strip()
    if not username:
        raise ValueError("no username")
    raw_roles = row.get("roles", row.get("role")) or ()
    if isinstance(raw_roles, str):
        raw_roles = _ROLE_SPLIT.split(raw_roles)
    if not isinstance(raw_roles, list | tuple):
        raise ValueError("role must be text or a list")
    roles = tuple(str(r).strip() for r in raw_roles if str(r).strip())
    enabled = _flag(row.get("enabled"), "enabled")
    mfa = None if row.get("mfa") in (None, "") else _flag(row.get("mfa"), "mfa")
    return Account(
        source=source,
        username=printable(username, 120),
        enabled=bool(enabled),
        roles=roles,
        last_login=_when(row.get("lastLogin")),
        mfa=mfa,
    )


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {printable(value, 20)!r}")


def _when(value: object) -> dt.datetime | None:
    if value in (None, "", "never"):
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"lastLogin is not an ISO 8601 date: {printable(value, 30)!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------- roster


@dataclass
class Roster:
    """username (normalized) -> active | terminated, and rows that made no sense."""

    status: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_roster(path: Path) -> Roster:
    text = _read(path)
    reader = csv.DictReader(io.StringIO(text))
    fields = {(f or "").strip() for f in _csv_header(reader, path)}
    if not {"username", "status"} <= fields:
        raise ProbeError(f"{path}: the roster needs the columns username,status")
    roster = Roster()
    for i, row in enumerate(_csv_rows(reader, path), start=2):
        row = {str(k).strip(): v for k, v in row.items() if k is not None}
        user = normalize(row.get("username") or "")
        status = (row.get("status") or "").strip().lower()
        if not user:
            continue
        if status not in ("active", "terminated"):
            roster.problems.append(
                f"{path.name} line {i}: status {printable(status, 20)!r} for {user} "
                "is neither active nor terminated (treated as terminated)"
            )
            status = "terminated"
        roster.status[user] = status
    return roster
