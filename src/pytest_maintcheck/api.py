"""The public API for a site's own checks: declare one, measure, judge.

A test file kept beside ``maintcheck.yaml`` (run by ``maintcheck run`` or ``pytest``)::

    from pytest_maintcheck.api import Assessment, Metric, SiteTarget, site_check

    pacs_room = site_check(
        "pacs_archive_room",
        suite="daily",
        title="PACS archive room",
        severity="high",
        category="Contingency plan: data backup and recovery testing",   # a bundled category
        incident_type="availability",
        action="Move studies to the long-term tier or add storage to the archive.",
        metrics=[Metric("daysOfRoom", "days", higher_is_worse=False, label="room left")],
        thresholds={"daysOfRoom": {"warn": 30, "fail": 7}},
    )

    @pacs_room
    def test_pacs_archive_room(site_target: SiteTarget, assessment: Assessment) -> None:
        days = ...  # measure
        assessment.measure(site_target.thresholds.get("daysOfRoom"), days, subject=site_target.name)

The check then has a verdict, a record in results.json, a compliance entry, a report row, a
suite marker for ``-m daily``, and can be waived, exactly like a bundled check. Its targets
come from ``siteChecks.<key>.targets`` in the config; the fixtures of the bundled checks
(``assessment``, ``maintcheck_config``, ``maintcheck_apply``, ``health_check``, ...) are there
too. The bundled suite (``checks/`` in the repository) uses these same pieces.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pytest

from pytest_maintcheck.catalogue import (
    ACCESS_CONTROL,
    AUTOMATIC_LOGOFF,
    AVAILABILITY,
    CONTINGENCY,
    DATABASE,
    INCIDENT_TYPES,
    LOGIN_MONITORING,
    PATCHING,
    POLICY,
    SEVERITIES,
    SUITES,
    TRANSMISSION,
    Category,
    CheckSpec,
)
from pytest_maintcheck.config import Config, Database, MetricCheck, SiteTarget, Thresholds
from pytest_maintcheck.probes.metrics import read_json_number, read_sql_number, resolve_pointer
from pytest_maintcheck.probes.postgres import ProbeError, connect
from pytest_maintcheck.site import DeclarationError, InvalidDeclaration, declare
from pytest_maintcheck.units import UnitError, parse_duration, parse_size
from pytest_maintcheck.verdict import UNITS, Assessment, Finding, Metric, Threshold, Verdict

__all__ = [
    "ACCESS_CONTROL",
    "AUTOMATIC_LOGOFF",
    "AVAILABILITY",
    "CONTINGENCY",
    "DATABASE",
    "INCIDENT_TYPES",
    "LOGIN_MONITORING",
    "PATCHING",
    "POLICY",
    "SEVERITIES",
    "SUITES",
    "TRANSMISSION",
    "UNITS",
    "Assessment",
    "Category",
    "CheckSpec",
    "Config",
    "Database",
    "Finding",
    "Metric",
    "MetricCheck",
    "ProbeError",
    "SiteTarget",
    "Threshold",
    "Thresholds",
    "UnitError",
    "Verdict",
    "connect",
    "parse_duration",
    "parse_size",
    "read_json_number",
    "read_sql_number",
    "resolve_pointer",
    "site_check",
]


def site_check(
    key: str,
    *,
    suite: str | None = None,
    title: str | None = None,
    severity: str | None = None,
    category: Category | str | None = None,
    requirements: Sequence[str] = (),
    incident_type: str | None = None,
    action: str | None = None,
    runbook: Sequence[str] = (),
    metrics: Sequence[Metric] = (),
    thresholds: Mapping[str, object] | None = None,
) -> pytest.MarkDecorator:
    """Declare a site check; apply the result to its test function (or class, or module).

    Required: ``key`` (lower_snake_case, not a bundled check's), ``suite`` (daily, weekly,
    monthly), ``title``, ``severity`` (low, medium, high, critical; a target's ``severity:``
    overrides it), ``category`` (a bundled Category such as AVAILABILITY, a bundled category's
    name, or a new name with ``requirements``: the HIPAA/NIST clauses it evidences),
    ``incident_type`` (security, performance, availability) and ``action`` (what the on-call
    person does about a finding). Optional: ``runbook`` (the incident's steps after
    ``action``; default the standard recovery steps), ``metrics`` (what it measures, with
    unit and direction: the names ``siteChecks.<key>.targets[].thresholds`` may use) and
    ``thresholds`` (defaults for those metrics).

    A faulty declaration does not raise here: the run stops when collection ends, with a
    usage error (exit 4) naming this call's file and line.
    """
    caller = sys._getframe(1)
    location = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    try:
        declared: object = declare(
            key,
            location=location,
            suite=suite,
            title=title,
            severity=severity,
            category=category,
            requirements=requirements,
            incident_type=incident_type,
            action=action,
            runbook=runbook,
            metrics=metrics,
            thresholds=thresholds,
        )
    except DeclarationError as exc:
        declared = InvalidDeclaration(exc)
    return pytest.mark.maintcheck(declared)


# ---------------------------------------------------------------------------- weekly and metrics
# The measurements and judges of the bundled weekly and metric checks (issue 9): a site's own
# check may measure and judge the same way. Imported on first use, so a run that needs one
# check does not import every probe (see the daily and monthly checks' block for theirs).
if TYPE_CHECKING:
    from pytest_maintcheck.change_run import RollbackEvidence
    from pytest_maintcheck.config import Backup, HealthCheck
    from pytest_maintcheck.config_operations import ConfigReview, Pooler
    from pytest_maintcheck.judges.backups import (
        judge_backup_freshness,
        judge_backup_integrity,
        judge_backup_restore,
        judge_backup_rotation,
        judge_backup_size,
        judge_backup_storage,
        judge_config_backup,
    )
    from pytest_maintcheck.judges.database import (
        dead_tuple_repairs,
        invalid_index_repairs,
        judge_cache_hit,
        judge_connections,
        judge_database_size,
        judge_dead_tuples,
        judge_index_usage,
        judge_invalid_indexes,
        judge_slow_queries,
        judge_vacuum_age,
        judge_wraparound,
        statements_missing,
        vacuum_age_repairs,
    )
    from pytest_maintcheck.judges.load_balance import judge_load_balance
    from pytest_maintcheck.judges.metrics import judge_metric
    from pytest_maintcheck.probes.backups import BackupFile, list_backups, storage_room
    from pytest_maintcheck.probes.health import ServiceResult
    from pytest_maintcheck.probes.metrics import MetricReading, read_metric
    from pytest_maintcheck.probes.pg_measured import MeasuredDatabase
    from pytest_maintcheck.probes.weekly_measurements import (
        read_allocation,
        read_newest_archive,
        read_pooling,
        restore_newest,
        verify_manifest,
    )
    from pytest_maintcheck.rules.allocation import judge_allocation
    from pytest_maintcheck.rules.pooling import judge_pooler

_WEEKLY: dict[str, str] = {
    "Backup": "pytest_maintcheck.config",
    "BackupFile": "pytest_maintcheck.probes.backups",
    "ConfigReview": "pytest_maintcheck.config_operations",
    "HealthCheck": "pytest_maintcheck.config",
    "MeasuredDatabase": "pytest_maintcheck.probes.pg_measured",
    "MetricReading": "pytest_maintcheck.probes.metrics",
    "Pooler": "pytest_maintcheck.config_operations",
    "ServiceResult": "pytest_maintcheck.probes.health",
    "RollbackEvidence": "pytest_maintcheck.change_run",
    "dead_tuple_repairs": "pytest_maintcheck.judges.database",
    "invalid_index_repairs": "pytest_maintcheck.judges.database",
    "judge_allocation": "pytest_maintcheck.rules.allocation",
    "judge_backup_freshness": "pytest_maintcheck.judges.backups",
    "judge_backup_integrity": "pytest_maintcheck.judges.backups",
    "judge_backup_restore": "pytest_maintcheck.judges.backups",
    "judge_backup_rotation": "pytest_maintcheck.judges.backups",
    "judge_backup_size": "pytest_maintcheck.judges.backups",
    "judge_backup_storage": "pytest_maintcheck.judges.backups",
    "judge_cache_hit": "pytest_maintcheck.judges.database",
    "judge_config_backup": "pytest_maintcheck.judges.backups",
    "judge_connections": "pytest_maintcheck.judges.database",
    "judge_database_size": "pytest_maintcheck.judges.database",
    "judge_dead_tuples": "pytest_maintcheck.judges.database",
    "judge_index_usage": "pytest_maintcheck.judges.database",
    "judge_invalid_indexes": "pytest_maintcheck.judges.database",
    "judge_load_balance": "pytest_maintcheck.judges.load_balance",
    "judge_metric": "pytest_maintcheck.judges.metrics",
    "judge_pooler": "pytest_maintcheck.rules.pooling",
    "judge_slow_queries": "pytest_maintcheck.judges.database",
    "judge_vacuum_age": "pytest_maintcheck.judges.database",
    "judge_wraparound": "pytest_maintcheck.judges.database",
    "list_backups": "pytest_maintcheck.probes.backups",
    "read_allocation": "pytest_maintcheck.probes.weekly_measurements",
    "read_metric": "pytest_maintcheck.probes.metrics",
    "read_newest_archive": "pytest_maintcheck.probes.weekly_measurements",
    "read_pooling": "pytest_maintcheck.probes.weekly_measurements",
    "restore_newest": "pytest_maintcheck.probes.weekly_measurements",
    "statements_missing": "pytest_maintcheck.judges.database",
    "storage_room": "pytest_maintcheck.probes.backups",
    "vacuum_age_repairs": "pytest_maintcheck.judges.database",
    "verify_manifest": "pytest_maintcheck.probes.weekly_measurements",
}


# ------------------------------------------------------------------------------------------
# The daily and monthly checks (issue 9): each target's measurement and its judge. The bundled
# checks in checks/ import only these and the names above; a site check may use them too.
# Imported on first use, so a check module pays only for the probes it calls.
# ------------------------------------------------------------------------------------------

if TYPE_CHECKING:  # for type checkers; at run time __getattr__ below imports on first use
    from pytest_maintcheck.config import (
        AccessReview,
        Certificate,
        DatabaseMaintenanceTarget,
        Dependency,
        Policy,
        SecurityMonitoring,
        SessionPolicy,
    )
    from pytest_maintcheck.config_operations import (
        AtRest,
        Encryption,
        Host,
        SecurityPatches,
    )
    from pytest_maintcheck.history.capacity import (
        review_database,
        review_host,
        review_performance,
        review_storage,
    )
    from pytest_maintcheck.history.window import Window
    from pytest_maintcheck.judges.access import judge_access_review
    from pytest_maintcheck.judges.certificates import judge_certificate
    from pytest_maintcheck.judges.dependencies import judge_dependencies
    from pytest_maintcheck.judges.encryption import judge_at_rest
    from pytest_maintcheck.judges.health import judge_health
    from pytest_maintcheck.judges.patches import judge_patch_level, judge_postgres_release
    from pytest_maintcheck.judges.policies import judge_policy
    from pytest_maintcheck.judges.security import (
        judge_access_patterns,
        judge_failed_logins,
        judge_sessions,
    )
    from pytest_maintcheck.measuring import (
        access_of,
        access_patterns_of,
        at_rest_of,
        certificate_of,
        configuration_of,
        dependencies_of,
        failed_logins_of,
        patch_level_of,
        policy_of,
        sessions_of,
        tls_of,
    )
    from pytest_maintcheck.probes.host_resources import measure_host
    from pytest_maintcheck.rules.configuration import judge_configuration
    from pytest_maintcheck.rules.encryption import channels, judge_in_transit
    from pytest_maintcheck.rules.hosts import judge_host

_CHECKS_API: dict[str, str] = {
    "AccessReview": "pytest_maintcheck.config",
    "AtRest": "pytest_maintcheck.config_operations",
    "Certificate": "pytest_maintcheck.config",
    "ConfigReview": "pytest_maintcheck.config_operations",
    "DatabaseMaintenanceTarget": "pytest_maintcheck.config",
    "Dependency": "pytest_maintcheck.config",
    "Encryption": "pytest_maintcheck.config_operations",
    "HealthCheck": "pytest_maintcheck.config",
    "Host": "pytest_maintcheck.config_operations",
    "Policy": "pytest_maintcheck.config",
    "SecurityMonitoring": "pytest_maintcheck.config",
    "SecurityPatches": "pytest_maintcheck.config_operations",
    "ServiceResult": "pytest_maintcheck.probes.health",
    "SessionPolicy": "pytest_maintcheck.config",
    "Window": "pytest_maintcheck.history.window",
    "access_of": "pytest_maintcheck.measuring",
    "access_patterns_of": "pytest_maintcheck.measuring",
    "at_rest_of": "pytest_maintcheck.measuring",
    "certificate_of": "pytest_maintcheck.measuring",
    "channels": "pytest_maintcheck.rules.encryption",
    "configuration_of": "pytest_maintcheck.measuring",
    "dependencies_of": "pytest_maintcheck.measuring",
    "failed_logins_of": "pytest_maintcheck.measuring",
    "judge_access_patterns": "pytest_maintcheck.judges.security",
    "judge_access_review": "pytest_maintcheck.judges.access",
    "judge_at_rest": "pytest_maintcheck.judges.encryption",
    "judge_certificate": "pytest_maintcheck.judges.certificates",
    "judge_configuration": "pytest_maintcheck.rules.configuration",
    "judge_dependencies": "pytest_maintcheck.judges.dependencies",
    "judge_failed_logins": "pytest_maintcheck.judges.security",
    "judge_health": "pytest_maintcheck.judges.health",
    "judge_host": "pytest_maintcheck.rules.hosts",
    "judge_in_transit": "pytest_maintcheck.rules.encryption",
    "judge_patch_level": "pytest_maintcheck.judges.patches",
    "judge_policy": "pytest_maintcheck.judges.policies",
    "judge_postgres_release": "pytest_maintcheck.judges.patches",
    "judge_sessions": "pytest_maintcheck.judges.security",
    "measure_host": "pytest_maintcheck.probes.host_resources",
    "patch_level_of": "pytest_maintcheck.measuring",
    "policy_of": "pytest_maintcheck.measuring",
    "review_database": "pytest_maintcheck.history.capacity",
    "review_host": "pytest_maintcheck.history.capacity",
    "review_performance": "pytest_maintcheck.history.capacity",
    "review_storage": "pytest_maintcheck.history.capacity",
    "sessions_of": "pytest_maintcheck.measuring",
    "tls_of": "pytest_maintcheck.measuring",
}
__all__ += [  # the keys of _CHECKS_API (a test says so), listed for type checkers
    "AccessReview",
    "AtRest",
    "Certificate",
    "DatabaseMaintenanceTarget",
    "Dependency",
    "Encryption",
    "Host",
    "Policy",
    "SecurityMonitoring",
    "SecurityPatches",
    "SessionPolicy",
    "Window",
    "access_of",
    "access_patterns_of",
    "at_rest_of",
    "certificate_of",
    "channels",
    "configuration_of",
    "dependencies_of",
    "failed_logins_of",
    "judge_access_patterns",
    "judge_access_review",
    "judge_at_rest",
    "judge_certificate",
    "judge_configuration",
    "judge_dependencies",
    "judge_failed_logins",
    "judge_health",
    "judge_host",
    "judge_in_transit",
    "judge_patch_level",
    "judge_policy",
    "judge_postgres_release",
    "judge_sessions",
    "measure_host",
    "patch_level_of",
    "policy_of",
    "review_database",
    "review_host",
    "review_performance",
    "review_storage",
    "sessions_of",
    "tls_of",
]


def __getattr__(name: str) -> object:
    """A name of the checks' blocks above, imported from its module when first asked for."""
    module = _WEEKLY.get(name) or _CHECKS_API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ += [
    "Backup",
    "BackupFile",
    "ConfigReview",
    "HealthCheck",
    "MeasuredDatabase",
    "MetricReading",
    "Pooler",
    "RollbackEvidence",
    "ServiceResult",
    "dead_tuple_repairs",
    "invalid_index_repairs",
    "judge_allocation",
    "judge_backup_freshness",
    "judge_backup_integrity",
    "judge_backup_restore",
    "judge_backup_rotation",
    "judge_backup_size",
    "judge_backup_storage",
    "judge_cache_hit",
    "judge_config_backup",
    "judge_connections",
    "judge_database_size",
    "judge_dead_tuples",
    "judge_index_usage",
    "judge_invalid_indexes",
    "judge_load_balance",
    "judge_metric",
    "judge_pooler",
    "judge_slow_queries",
    "judge_vacuum_age",
    "judge_wraparound",
    "list_backups",
    "read_allocation",
    "read_metric",
    "read_newest_archive",
    "read_pooling",
    "restore_newest",
    "statements_missing",
    "storage_room",
    "vacuum_age_repairs",
    "verify_manifest",
]


# ---------------------------------------------------------------------------- replication, physical
# The measurements and judges of the daily WAL archiving and replication checks and of the
# weekly physical backup checks (pgBackRest, Barman; issue 9). Imported on first use, through
# the same lookup as the weekly block.
if TYPE_CHECKING:
    from pytest_maintcheck.config import ArchivingTarget, ReplicationTarget
    from pytest_maintcheck.judges.physical import (
        judge_physical_backup_freshness,
        judge_physical_backup_size,
        judge_physical_restore,
        judge_wal_continuity,
    )
    from pytest_maintcheck.judges.replication import judge_replication, judge_wal_archiving
    from pytest_maintcheck.probes.archiving import ArchiverStatus, measure_archiver
    from pytest_maintcheck.probes.physical import BackupSet, Catalog, ToolError
    from pytest_maintcheck.probes.physical_backends import (
        CatalogCache,
        archived_wal,
        restore_physical_backup,
        server_archiver,
    )
    from pytest_maintcheck.probes.physical_restore import PhysicalRestoreOutcome
    from pytest_maintcheck.probes.replication import ReplicationState, measure_replication

_PHYSICAL: dict[str, str] = {
    "ArchiverStatus": "pytest_maintcheck.probes.archiving",
    "ArchivingTarget": "pytest_maintcheck.config",
    "BackupSet": "pytest_maintcheck.probes.physical",
    "Catalog": "pytest_maintcheck.probes.physical",
    "CatalogCache": "pytest_maintcheck.probes.physical_backends",
    "PhysicalRestoreOutcome": "pytest_maintcheck.probes.physical_restore",
    "ReplicationState": "pytest_maintcheck.probes.replication",
    "ReplicationTarget": "pytest_maintcheck.config",
    "ToolError": "pytest_maintcheck.probes.physical",
    "archived_wal": "pytest_maintcheck.probes.physical_backends",
    "judge_physical_backup_freshness": "pytest_maintcheck.judges.physical",
    "judge_physical_backup_size": "pytest_maintcheck.judges.physical",
    "judge_physical_restore": "pytest_maintcheck.judges.physical",
    "judge_replication": "pytest_maintcheck.judges.replication",
    "judge_wal_archiving": "pytest_maintcheck.judges.replication",
    "judge_wal_continuity": "pytest_maintcheck.judges.physical",
    "measure_archiver": "pytest_maintcheck.probes.archiving",
    "measure_replication": "pytest_maintcheck.probes.replication",
    "restore_physical_backup": "pytest_maintcheck.probes.physical_backends",
    "server_archiver": "pytest_maintcheck.probes.physical_backends",
}
_WEEKLY.update(_PHYSICAL)  # __getattr__ looks names up there

__all__ += [
    "ArchiverStatus",
    "ArchivingTarget",
    "BackupSet",
    "Catalog",
    "CatalogCache",
    "PhysicalRestoreOutcome",
    "ReplicationState",
    "ReplicationTarget",
    "ToolError",
    "archived_wal",
    "judge_physical_backup_freshness",
    "judge_physical_backup_size",
    "judge_physical_restore",
    "judge_replication",
    "judge_wal_archiving",
    "judge_wal_continuity",
    "measure_archiver",
    "measure_replication",
    "restore_physical_backup",
    "server_archiver",
]
