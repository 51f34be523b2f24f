"""What a PostgreSQL configuration review reads, in one read-only session of six statements.

Settings come from pg_settings (readable by any role). Two things need more than that, and
are reported as "not readable" with the grant that would make them so, never guessed:
- the pg_hba rules (``pg_hba_file_rules``: superuser unless granted, see HBA_GRANT);
- which roles still hold an md5 password hash (``pg_authid.rolpassword``: superuser only;
  a SECURITY DEFINER function that returns only role names is the least-privileged way, see
  MD5_FUNCTION).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable

SETTINGS = (
    "ssl",
    "ssl_min_protocol_version",
    "password_encryption",
    "log_connections",
    "log_disconnections",
    "log_statement",
    "shared_preload_libraries",
    "data_checksums",
    "server_version",
    "server_version_num",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "autovacuum_max_workers",
    "effective_cache_size",
    "max_connections",
    "pgaudit.log",
)
HBA_GRANT = (
    "GRANT SELECT ON pg_hba_file_rules TO {role}; "
    "GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO {role};"
)
MD5_FUNCTION = "public.maintcheck_md5_roles()"
MD5_FUNCTION_SQL = (
    "CREATE FUNCTION public.maintcheck_md5_roles() RETURNS SETOF name LANGUAGE sql "
    "SECURITY DEFINER SET search_path = pg_catalog AS "
    "$$ SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' $$; "
    "REVOKE ALL ON FUNCTION public.maintcheck_md5_roles() FROM PUBLIC; "
    "GRANT EXECUTE ON FUNCTION public.maintcheck_md5_roles() TO {role};"
)
STATEMENTS = 6
_UNITS = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    unit: str | None = None

    @property
    def bytes(self) -> int | None:
        """A memory setting in bytes (shared_buffers is counted in 8kB pages, work_mem in kB)."""
        if self.unit not in _UNITS or not self.value.lstrip("-").isdigit():
            return None
        return int(self.value) * _UNITS[self.unit]

    @property
    def on(self) -> bool:
        return self.value == "on"


@dataclass(frozen=True)
class HbaRule:
    line: int
    type: str
    databases: tuple[str, ...]
    users: tuple[str, ...]
    address: str | None
    netmask: str | None
    method: str | None
    error: str | None

    @property
    def open_to_all(self) -> bool:
        """Any client address: ``all``, 0.0.0.0/0 or ::/0."""
        if self.address == "all":
            return True
        anywhere = ("0.0.0.0", "::")  # noqa: S104 (an address read, not bound)
        return self.address in anywhere and self.netmask in anywhere

    def describe(self) -> str:
        where = (
            f" {self.address}{'/' + self.netmask if self.netmask else ''}" if self.address else ""
        )
        return (f"pg_hba.conf line {self.line}: {self.type} {','.join(self.databases)} "
                f"{','.join(self.users)}{where} {self.method}")  # fmt: skip


@dataclass
class ReviewSnapshot:
    """One database's settings and the facts the review judges."""

    user: str
    dbname: str = ""
    settings: dict[str, Setting] = field(default_factory=dict)
    hba: list[HbaRule] | None = None  # None: not readable by this role
    hba_error: str | None = None
    md5_roles: list[str] | None = None  # None: not readable by this role
    superusers: list[str] = field(default_factory=list)
    public_create: bool = False
    pgaudit_version: str | None = None

    def get(self, name: str) -> str | None:
        s = self.settings.get(name)
        return s.value if s else None

    @property
    def server_version_num(self) -> int:
        return int(self.get("server_version_num") or 0)

    @property
    def preloaded(self) -> list[str]:
        return [x.strip() for x in (self.get("shared_preload_libraries") or "").split(",") if x]

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "settings": {k: v.value for k, v in sorted(self.settings.items())},
            "hbaRules": None if self.hba is None else [r.describe() for r in self.hba],
            "md5Roles": self.md5_roles,
            "superusers": self.superusers,
            "publicSchemaCreate": self.public_create,
            "pgaudit": self.pgaudit_version,
        }


def _text(value: object) -> str:
    return printable(str(value), 200) if value is not None else ""


def _read(conn: psycopg.Connection[Any]) -> ReviewSnapshot:
    who = conn.execute("SELECT current_user, current_database()").fetchone()
    assert who is not None
    snap = ReviewSnapshot(user=_text(who[0]), dbname=_text(who[1]))
    for name, value, unit in conn.execute(
        "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
    ).fetchall():
        snap.settings[str(name)] = Setting(str(name), _text(value), unit and str(unit))
    row = conn.execute(
        "SELECT array(SELECT rolname::text FROM pg_roles WHERE rolsuper ORDER BY 1),"
        " EXISTS (SELECT 1 FROM pg_namespace n,"
        "   aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a"
        "   WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'),"
        " (SELECT extversion FROM pg_extension WHERE extname = 'pgaudit'),"
        " to_regprocedure(%s) IS NOT NULL",
        (MD5_FUNCTION,),
    ).fetchone()
    assert row is not None
    snap.superusers = [_text(r) for r in row[0]]
    snap.public_create, snap.pgaudit_version = bool(row[1]), row[2] and _text(row[2])
    snap.md5_roles = _md5_roles(conn, has_function=bool(row[3]))
    snap.hba, snap.hba_error = _hba(conn)
    return snap


def _md5_roles(conn: psycopg.Connection[Any], *, has_function: bool) -> list[str] | None:
    query = (
        f"SELECT r::text FROM {MD5_FUNCTION} r ORDER BY 1"  # noqa: S608 (a constant)
        if has_function
        else "SELECT rolname::text FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1"
    )
    try:
        return [_text(r[0]) for r in conn.execute(query).fetchall()]
    except psycopg.errors.InsufficientPrivilege:
        return None


def _hba(conn: psycopg.Connection[Any]) -> tuple[list[HbaRule] | None, str | None]:
    try:
        rows = conn.execute(
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, error"
            " FROM pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        return None, describe_pg_error(exc)
    return [
        HbaRule(
            int(r[0] or 0),
            _text(r[1]),
            tuple(_text(x) for x in r[2] or ()),
            tuple(_text(x) for x in r[3] or ()),
            r[4] and _text(r[4]),
            r[5] and _text(r[5]),
            r[6] and _text(r[6]),
            r[7] and _text(r[7]),
        )
        for r in rows
    ], None


def review_snapshot(
    dsn: str, *, connect_timeout: float, statement_timeout: float
) -> ReviewSnapshot:
    """Read everything the review needs; ProbeError when the database cannot be read."""

    def work() -> ReviewSnapshot:
        with connect(dsn, connect_timeout=connect_timeout,
                     statement_timeout=statement_timeout) as conn:  # fmt: skip
            try:
                return _read(conn)
            except psycopg.Error as exc:
                raise ProbeError(describe_pg_error(exc)) from None

    bound = session_bound(connect_timeout, statement_timeout, STATEMENTS)
    return run_bounded(bound, "configuration review", work)
