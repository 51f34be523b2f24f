"""Whether connections use TLS and backup files are encrypted.

- A PostgreSQL or PgBouncer connection: libpq's own answer (``ssl_in_use``) on a real
  connection made with the configured DSN, and the DSN's ``sslmode`` (libpq's default,
  ``prefer``, silently falls back to plain text).
- A file: its first bytes. age (``age-encryption.org/v1``, or its armor), OpenPGP (gpg's
  armor, or a binary packet that starts an encrypted message), else plain (named when known:
  pg_dump custom format, gzip ...).
- A pgBackRest config: every repository's ``repoN-cipher-type``.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.probes.postgres import ProbeError, describe_pg_error, run_bounded

SAFE_SSLMODES = ("require", "verify-ca", "verify-full")
# OpenPGP packet tags that begin an encrypted message: PKESK, SKESK, SED, SEIPD, AEAD
_OPENPGP_ENCRYPTED_TAGS = {1, 3, 9, 18, 20}
_PLAIN_MAGIC = (
    (b"PGDMP", "a pg_dump custom-format archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"(\xb5/\xfd", "a zstd file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"--", "SQL text"),
)


@dataclass(frozen=True)
class ConnectionTls:
    in_use: bool
    sslmode: str  # as the DSN or PGSSLMODE gives it; "prefer" when neither does


def connection_tls(dsn: str, *, connect_timeout: float) -> ConnectionTls:
    """Connect as the checks would (no startup options: PgBouncer refuses them) and ask libpq."""

    def work() -> bool:
        try:
            with psycopg.connect(
                dsn, connect_timeout=max(1, round(connect_timeout)), autocommit=True
            ) as conn:
                return bool(conn.pgconn.ssl_in_use)
        except psycopg.Error as exc:
            raise ProbeError(
                f"cannot connect to {redact_dsn(dsn)}: {describe_pg_error(exc)}"
            ) from None

    in_use = run_bounded(connect_timeout + 5, f"connection to {redact_dsn(dsn)}", work)
    return ConnectionTls(in_use, dsn_sslmode(dsn))


def dsn_sslmode(dsn: str) -> str:
    try:
        given = conninfo_to_dict(dsn).get("sslmode")
    except psycopg.ProgrammingError:
        given = None
    return str(given or os.environ.get("PGSSLMODE") or "prefer")


@dataclass(frozen=True)
class FileEnvelope:
    path: Path
    kind: str  # age | gpg | plain
    what: str  # what the first bytes say, for the finding


def file_envelope(path: Path) -> FileEnvelope:
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith((b"age-encryption.org/v1", b"-----BEGIN AGE ENCRYPTED FILE-----")):
        return FileEnvelope(path, "age", "age-encrypted")
    if head.startswith(b"-----BEGIN PGP MESSAGE-----") or _openpgp_encrypted(head):
        return FileEnvelope(path, "gpg", "OpenPGP-encrypted")
    what = next((name for magic, name in _PLAIN_MAGIC if head.startswith(magic)), None)
    return FileEnvelope(path, "plain", what or "not encrypted (no age or OpenPGP header)")


def _openpgp_encrypted(head: bytes) -> bool:
    """A binary OpenPGP message whose first packet starts encryption (RFC 4880 section 4.2)."""
    if not head or not head[0] & 0x80:
        return False
    first = head[0]
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag in _OPENPGP_ENCRYPTED_TAGS


@dataclass(frozen=True)
class Repository:
    name: str  # repo1, repo2 ...
    section: str
    cipher: str


_REPO_KEY = re.compile(r"^(repo\d+)-")


def pgbackrest_repositories(config: Path) -> list[Repository]:
    """Each repository in a pgbackrest.conf with its cipher type (``none`` when not set), read
    from [global] or else the first stanza section setting it; repo1 exists even when the file
    names none (its path has a default)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with config.open(encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ProbeError(f"cannot read {config}: {exc}") from None
    sections = ["global", *[x for x in parser.sections() if x != "global"]]
    sections = [x for x in sections if parser.has_section(x)]
    names = {
        m.group(1) for x in sections for key in parser.options(x) if (m := _REPO_KEY.match(key))
    }
    repos = []
    for name in sorted(names or {"repo1"}):
        where = next((x for x in sections if parser.has_option(x, f"{name}-cipher-type")), None)
        cipher = parser.get(where, f"{name}-cipher-type") if where else "none"
        repos.append(Repository(name, where or "global", cipher.strip()))
    return repos
