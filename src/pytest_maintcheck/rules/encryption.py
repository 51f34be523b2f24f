"""Encryption in transit (every endpoint and connection of the config uses TLS, unless exempt
with a justification) and at rest (backups declared encrypted are)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pytest_maintcheck.config import Config, redact_dsn, redact_url
from pytest_maintcheck.config_operations import AtRest, Encryption
from pytest_maintcheck.probes.encryption import (
    SAFE_SSLMODES,
    ConnectionTls,
    FileEnvelope,
    Repository,
)
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.verdict import Assessment, Verdict


@dataclass(frozen=True)
class Channel:
    """One thing the config connects to: a URL or a libpq DSN, under its config name."""

    target: str  # the name an exemption uses: a service, databases key, host or pooler
    where: str  # e.g. "healthChecks clinical-api"
    url: str | None = None
    dsn: str | None = None
    connect_timeout: float = 10.0


def channels(config: Config) -> list[Channel]:
    """Every endpoint and connection in the config."""
    found: list[Channel] = []
    for h in config.health_checks:
        if h.type in ("api", "authentication"):
            found += [Channel(h.service, f"healthChecks {h.service}", url=u) for u in h.endpoints]
    for host in config.hosts:
        if host.node_exporter:
            found.append(Channel(host.name, f"hosts {host.name}", url=host.node_exporter))
    for name, db in config.databases.items():
        found.append(Channel(name, f"databases {name}", dsn=db.dsn,
                             connect_timeout=db.connect_timeout))  # fmt: skip
    for p in config.pooling:
        found.append(Channel(p.name, f"pooling {p.name}", dsn=p.dsn,
                             connect_timeout=p.connect_timeout))  # fmt: skip
    return found


def judge_in_transit(
    policy: Encryption,
    found: Sequence[Channel],
    measure: Callable[[Channel], ConnectionTls],
    assessment: Assessment,
) -> None:
    """URLs by scheme; connections by a real connection (``measure``) and their sslmode."""
    checked: list[dict[str, object]] = []
    unused = {e.target for e in policy.exempt}
    for channel in found:
        exemption = policy.exemption(channel.target)
        unused.discard(channel.target)
        problem, verdict, shown = _problem(channel, measure)
        checked.append({"target": channel.where, "endpoint": shown, "problem": problem})
        if problem is None:
            continue
        if exemption is not None:
            assessment.notes.append(
                f"{channel.where}: {problem}; exempt: {exemption.justification}"
            )
            continue
        assessment.add_finding(verdict, f"{channel.where}: {shown} {problem}", _fix(channel))
    for target in sorted(unused):
        assessment.add_finding(
            Verdict.DEGRADED,
            f"encryption.exempt names {target!r}, which is no endpoint or connection of the config",
            "Remove the stale exemption, or correct its target.",
        )
    assessment.details["channels"] = checked
    assessment.metrics.update(
        channels=len(checked), unencrypted=sum(1 for c in checked if c["problem"] is not None)
    )


def _problem(
    channel: Channel, measure: Callable[[Channel], ConnectionTls]
) -> tuple[str | None, Verdict, str]:
    if channel.url is not None:
        shown = redact_url(channel.url)
        if urlsplit(channel.url).scheme != "https":
            return "is plain HTTP, without TLS", Verdict.VIOLATION, shown
        return None, Verdict.PASS, shown
    assert channel.dsn is not None
    shown = redact_dsn(channel.dsn)
    try:
        tls = measure(channel)
    except ProbeError as exc:
        return f"could not be checked: {exc}", Verdict.VIOLATION, shown
    if not tls.in_use:
        return "connected without TLS", Verdict.VIOLATION, shown
    if tls.sslmode not in SAFE_SSLMODES:
        return (
            f"uses TLS, but sslmode={tls.sslmode} would fall back to plain text",
            Verdict.DEGRADED,
            shown,
        )
    return None, Verdict.PASS, shown


def _fix(channel: Channel) -> str:
    if channel.url is not None:
        return (
            f"Serve {channel.where} over HTTPS and change its URL, or add an encryption.exempt "
            "entry with a justification."
        )
    return (
        f"Turn ssl on at the server and set sslmode=verify-full (with sslrootcert) in "
        f"{channel.where}'s DSN, or add an encryption.exempt entry with a justification."
    )


def judge_backup_files(
    store: AtRest, files: Sequence[FileEnvelope], assessment: Assessment
) -> None:
    accepted = ("age", "gpg") if store.envelope == "any" else (store.envelope,)
    assessment.details["files"] = [{"file": str(f.path), "envelope": f.kind} for f in files]
    assessment.metrics.update(files=len(files))
    if not files:
        assessment.could_not_measure(f"{store.name}: no backup file found to check")
        return
    wrong = [f for f in files if f.kind not in accepted]
    assessment.metrics["unencrypted"] = len(wrong)
    for f in wrong[:10]:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{store.name}: {f.path.name} is {f.what}, expected {' or '.join(accepted)} encryption",
            f"Encrypt the backups of {store.name} (e.g. pg_dump ... | age -r RECIPIENT > "
            "file.age) and re-encrypt or remove the plain copies.",
        )
    if len(wrong) > 10:
        assessment.notes.append(f"+{len(wrong) - 10} more unencrypted files")


def judge_repositories(
    store: AtRest, repositories: Sequence[Repository], assessment: Assessment
) -> None:
    assessment.details["repositories"] = [r.__dict__ for r in repositories]
    for r in repositories:
        if r.cipher in ("", "none"):
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{store.name}: pgBackRest {r.name} has {r.name}-cipher-type = "
                f"{r.cipher or 'none'}, expected aes-256-cbc",
                f"Set {r.name}-cipher-type=aes-256-cbc and {r.name}-cipher-pass in [{r.section}] "
                "(a new repository: existing backups cannot be encrypted in place).",
            )
