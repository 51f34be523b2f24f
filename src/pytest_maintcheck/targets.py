"""Which config entries a check is parametrized over: one table, fixture name to targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_maintcheck.config import Config

NOT_CONFIGURED_ID = "not-configured"  # the placeholder id of a check whose section is absent


@dataclass(frozen=True)
class TargetKind:
    """A fixture name a check asks for, the config entries behind it, and their ids."""

    section: str
    targets: Callable[[Config], Sequence[Any]]
    ident: Callable[[Any], str]


def _replicated(config: Config) -> Sequence[Any]:
    return [h for h in config.health_checks if h.type == "api" and len(h.endpoints) > 1]


def _metrics_of(suite: str) -> Callable[[Config], Sequence[Any]]:
    """The metrics entries of one suite: ``-m daily`` runs only the daily ones."""
    return lambda config: [m for m in config.metrics if m.suite == suite]


TARGETS: dict[str, TargetKind] = {
    "health_check": TargetKind("healthChecks", lambda c: c.health_checks, lambda t: t.service),
    "storage_service": TargetKind(
        "healthChecks (type: storage)",
        lambda c: [h for h in c.health_checks if h.type == "storage"],
        lambda t: t.service,
    ),
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
    **{
        f"{suite}_metric": TargetKind(
            f"metrics (suite: {suite})",
            _metrics_of(suite),
            lambda t: t.name,
        )
        for suite in ("daily", "weekly", "monthly")
    },
    # issue 14: configuration review, patches, encryption, hosts, pooling
    "reviewed_database": TargetKind(
        "configReview", lambda c: c.config_review, lambda t: t.database
    ),
    "patched_database": TargetKind(
        "configReview (with securityPatches.minimumVersions)",
        lambda c: (
            c.config_review if c.security_patches and c.security_patches.minimum_versions else ()
        ),
        lambda t: t.database,
    ),
    "allocated_database": TargetKind(
        "configReview (with host)",
        lambda c: [r for r in c.config_review if r.host],
        lambda t: t.database,
    ),
    "patch_policy": TargetKind(
        "securityPatches",
        lambda c: [c.security_patches] if c.security_patches else [],
        lambda _t: "local-packages",
    ),
    "encryption_policy": TargetKind(
        "encryption", lambda c: [c.encryption] if c.encryption else [], lambda _t: "in-transit"
    ),
    "encrypted_store": TargetKind(
        "encryption.atRest",
        lambda c: c.encryption.at_rest if c.encryption else (),
        lambda t: t.name,
    ),
    "host": TargetKind("hosts", lambda c: c.hosts, lambda t: t.name),
    # issue 17: the databases a deploy needs a verified rollback point of
    "rollback_database": TargetKind(
        "changeManagement.rollbackPoint",
        lambda c: (
            c.change_management.rollback_point.databases
            if c.change_management and c.change_management.rollback_point
            else ()
        ),
        lambda t: str(t),
    ),
    "pooler": TargetKind("pooling", lambda c: c.pooling, lambda t: t.name),
}
