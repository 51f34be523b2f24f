"""Which config entries a check is parametrized over: one table, fixture name to targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_maintcheck.config import Config


@dataclass(frozen=True)
class TargetKind:
    """A fixture name a check asks for, the config entries behind it, and their ids."""

    section: str
    targets: Callable[[Config], Sequence[Any]]
    ident: Callable[[Any], str]


def _replicated(config: Config) -> Sequence[Any]:
    return [h for h in config.health_checks if h.type == "api" and len(h.endpoints) > 1]


TARGETS: dict[str, TargetKind] = {
    "health_check": TargetKind("healthChecks", lambda c: c.health_checks, lambda t: t.service),
    "replicated_service": TargetKind(
        "healthChecks (with several endpoints)", _replicated, lambda t: t.service
    ),
    "maintained_database": TargetKind(
        "databaseMaintenance", lambda c: c.database_maintenance, lambda t: t.database
    ),
    "backup": TargetKind(
        "backups (kind: pg_dump or files)",
        lambda c: [b for b in c.backups if not b.physical],
        lambda t: t.name,
    ),
    "physical_backup": TargetKind(
        "backups (kind: pgbackrest or barman)",
        lambda c: [b for b in c.backups if b.physical],
        lambda t: t.name,
    ),
    "restored_physical_backup": TargetKind(
        "backups (kind: pgbackrest or barman, with restoreTest)",
        lambda c: [b for b in c.backups if b.physical and b.restore_test],
        lambda t: t.name,
    ),
    "replication_target": TargetKind("replication", lambda c: c.replication, lambda t: t.database),
    "archiving_target": TargetKind("archiving", lambda c: c.archiving, lambda t: t.database),
    "pg_dump_backup": TargetKind(
        "backups (kind: pg_dump with restoreTest)",
        lambda c: [b for b in c.backups if b.kind == "pg_dump" and b.restore_test],
        lambda t: t.name,
    ),
    "files_backup": TargetKind(
        "backups (kind: files)",
        lambda c: [b for b in c.backups if b.kind == "files"],
        lambda t: t.name,
    ),
    "checksummed_backup": TargetKind(
        "backups (with checksums)",
        lambda c: [b for b in c.backups if b.checksums],
        lambda t: t.name,
    ),
    "rotated_backup": TargetKind(
        "backups (with rotation)",
        lambda c: [b for b in c.backups if b.rotation],
        lambda t: t.name,
    ),
    "certificate": TargetKind("certificates", lambda c: c.certificates, lambda t: t.name),
    "access_review": TargetKind(
        "accessReview",
        lambda c: [c.access_review] if c.access_review else [],
        lambda _t: "access-review",
    ),
    "auth_monitoring": TargetKind(
        "securityMonitoring.authLog",
        lambda c: (
            [c.security_monitoring]
            if c.security_monitoring and c.security_monitoring.auth_log
            else []
        ),
        lambda t: t.auth_log.name,
    ),
    "session_policy": TargetKind(
        "securityMonitoring.sessions",
        lambda c: (
            [c.security_monitoring.sessions]
            if c.security_monitoring and c.security_monitoring.sessions
            else []
        ),
        lambda t: t.database,
    ),
    "dependency": TargetKind("dependencies", lambda c: c.dependencies, lambda t: t.name),
    "policy": TargetKind("policies", lambda c: c.policies, lambda t: t.name),
}
