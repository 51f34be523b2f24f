"""Every check of the product in one table: suite, severity, compliance clauses and runbook.

The report, the compliance records and the incident drafts all read this table, so a clause or
a runbook step is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("low", "medium", "high", "critical")
SUITES = ("daily", "weekly", "monthly")
INCIDENT_TYPES = ("security", "performance", "availability")  # IncidentResponse.type


@dataclass(frozen=True)
class Category:
    """A compliance category and the clauses its checks evidence."""

    name: str
    requirements: tuple[str, ...]


AVAILABILITY = Category(
    "Availability and system health monitoring",
    (
        "HIPAA 164.308(a)(1)(ii)(D) information system activity review",
        "HIPAA 164.308(a)(7)(ii)(E) applications and data criticality analysis",
        "NIST SP 800-53 SI-4",
        "NIST SP 800-53 CP-2",
    ),
)
TRANSMISSION = Category(
    "Transmission security",
    (
        "HIPAA 164.312(e)(1) transmission security",
        "NIST SP 800-53 SC-8",
        "NIST SP 800-53 SC-17",
    ),
)
DATABASE = Category(
    "Data integrity and database maintenance",
    (
        "HIPAA 164.312(c)(1) integrity",
        "HIPAA 164.308(a)(1)(ii)(B) risk management",
        "NIST SP 800-53 SI-4",
        "NIST SP 800-53 CP-2",
    ),
)
CONTINGENCY = Category(
    "Contingency plan: data backup and recovery testing",
    (
        "HIPAA 164.308(a)(7)(ii)(A) data backup plan",
        "HIPAA 164.308(a)(7)(ii)(B) disaster recovery plan",
        "HIPAA 164.308(a)(7)(ii)(D) testing and revision procedures",
        "NIST SP 800-53 CP-9",
        "NIST SP 800-53 CP-4",
        "NIST SP 800-53 CP-10",
    ),
)
LOGIN_MONITORING = Category(
    "Log-in monitoring and audit controls",
    (
        "HIPAA 164.308(a)(5)(ii)(C) log-in monitoring",
        "HIPAA 164.312(b) audit controls",
        "NIST SP 800-53 AC-7",
        "NIST SP 800-53 AU-6",
    ),
)
AUTOMATIC_LOGOFF = Category(
    "Automatic logoff and session management",
    ("HIPAA 164.312(a)(2)(iii) automatic logoff", "NIST SP 800-53 AC-12"),
)
ACCESS_CONTROL = Category(
    "Access control and termination procedures",
    (
        "HIPAA 164.308(a)(3)(ii)(C) termination procedures",
        "HIPAA 164.308(a)(4)(ii)(C) access establishment and modification",
        "HIPAA 164.312(a)(1) access control",
        "NIST SP 800-53 AC-2",
    ),
)
PATCHING = Category(
    "Security updates and vulnerability management",
    (
        "HIPAA 164.308(a)(1)(ii)(B) risk management",
        "HIPAA 164.308(a)(5)(ii)(B) protection from malicious software",
        "NIST SP 800-53 SI-2",
        "NIST SP 800-53 RA-5",
    ),
)
POLICY = Category(
    "Policy review and evaluation",
    (
        "HIPAA 164.308(a)(8) evaluation",
        "HIPAA 164.316(b)(2)(iii) updates",
        "NIST SP 800-53 PL-2",
    ),
)
CONFIGURATION = Category(
    "Secure configuration and audit logging",
    (
        "HIPAA 164.312(b) audit controls",
        "HIPAA 164.312(d) person or entity authentication",
        "HIPAA 164.312(e)(2)(ii) encryption",
        "NIST SP 800-53 CM-6",
        "NIST SP 800-53 CM-7",
        "NIST SP 800-53 AU-2",
        "NIST SP 800-53 AU-12",
        "NIST SP 800-53 IA-5",
    ),
)
ENCRYPTION = Category(
    "Encryption in transit and at rest",
    (
        "HIPAA 164.312(e)(2)(ii) encryption",
        "HIPAA 164.312(a)(2)(iv) encryption and decryption",
        "NIST SP 800-53 SC-8",
        "NIST SP 800-53 SC-28",
    ),
)
CAPACITY = Category(
    "Capacity planning and resource management",
    (
        "HIPAA 164.308(a)(7)(ii)(E) applications and data criticality analysis",
        "HIPAA 164.308(a)(1)(ii)(D) information system activity review",
        "NIST SP 800-53 CP-2(2) capacity planning",
        "NIST SP 800-53 SC-5 denial-of-service protection",
        "NIST SP 800-53 SI-4",
        "NIST SP 800-53 AU-4 audit log storage capacity",
    ),
)
CHANGE = Category(
    "Change management: rollback plan and impact assessment",
    (
        "HIPAA 164.308(a)(7)(ii)(B) disaster recovery plan",
        "HIPAA 164.308(a)(8) evaluation",
        "NIST SP 800-53 CM-3 configuration change control",
        "NIST SP 800-53 CM-4 impact analysis",
        "NIST SP 800-53 CP-10",
    ),
)


@dataclass(frozen=True)
class CheckSpec:
    """One check: where it runs, how bad its failure is, what it evidences, what to do."""

    key: str
    suite: str
    title: str
    severity: str
    category: Category
    incident_type: str  # security | performance | availability (IncidentResponse.type)
    action: str
    runbook: tuple[str, ...]


def _spec(
    key: str,
    suite: str,
    title: str,
    severity: str,
    category: Category,
    incident_type: str,
    action: str,
    *runbook: str,
) -> CheckSpec:
    return CheckSpec(key, suite, title, severity, category, incident_type, action, runbook)


_RECOVERY = (
    "Assess the incident: confirm the finding and who is affected",
    "Analyse impact on clinical users and patient data",
    "Agree a recovery plan and notify the team",
    "Implement the fix",
    "Verify: re-run the check and confirm it passes",
)
RECOVERY_STEPS = _RECOVERY  # a site check's runbook unless it declares its own

CHECKS: dict[str, CheckSpec] = {
    spec.key: spec
    for spec in (
        _spec(
            "health",
            "daily",
            "Service health",
            "high",
            AVAILABILITY,
            "availability",
            "Check the service's logs and dependencies, restart or fail over if it is down.",
            *_RECOVERY,
        ),
        _spec(
            "load_balance",
            "weekly",
            "Replica load balance",
            "medium",
            AVAILABILITY,
            "performance",
            "Compare the slow replica's resources and routing weight with the others.",
            *_RECOVERY,
        ),
        _spec(
            "dead_tuples",
            "weekly",
            "Dead tuples",
            "medium",
            DATABASE,
            "performance",
            "VACUUM (ANALYZE) the tables named, and check why autovacuum did not keep up.",
            *_RECOVERY,
        ),
        _spec(
            "vacuum_age",
            "weekly",
            "Vacuum and analyze age",
            "medium",
            DATABASE,
            "performance",
            "VACUUM (ANALYZE) the stale tables, and check autovacuum settings.",
            *_RECOVERY,
        ),
        _spec(
            "invalid_indexes",
            "weekly",
            "Invalid indexes",
            "high",
            DATABASE,
            "performance",
            "REINDEX INDEX CONCURRENTLY each invalid index (or drop and recreate it).",
            *_RECOVERY,
        ),
        _spec(
            "wraparound",
            "weekly",
            "Transaction ID wraparound",
            "critical",
            DATABASE,
            "availability",
            "VACUUM (FREEZE) the oldest tables before autovacuum_freeze_max_age is reached.",
            *_RECOVERY,
        ),
        _spec(
            "connections",
            "weekly",
            "Connections",
            "high",
            DATABASE,
            "performance",
            "Find the clients holding connections; end idle-in-transaction sessions; "
            "check the connection pool size.",
            *_RECOVERY,
        ),
        _spec(
            "database_size",
            "weekly",
            "Database size",
            "medium",
            DATABASE,
            "performance",
            "Plan storage growth; archive or partition the largest tables.",
            *_RECOVERY,
        ),
        _spec(
            "cache_hit",
            "weekly",
            "Cache efficiency",
            "low",
            DATABASE,
            "performance",
            "Review shared_buffers and the queries reading the most blocks.",
            *_RECOVERY,
        ),
        _spec(
            "slow_queries",
            "weekly",
            "Query performance",
            "medium",
            DATABASE,
            "performance",
            "EXPLAIN ANALYZE the slow statements (by queryid) and add indexes or rewrite.",
            *_RECOVERY,
        ),
        _spec(
            "index_usage",
            "weekly",
            "Unused and duplicate indexes",
            "low",
            DATABASE,
            "performance",
            "Drop indexes that are never scanned or duplicate another, after review.",
            *_RECOVERY,
        ),
        _spec(
            "backup_freshness",
            "weekly",
            "Backup freshness",
            "critical",
            CONTINGENCY,
            "availability",
            "Check the backup job's schedule and logs and take a backup now.",
            *_RECOVERY,
        ),
        _spec(
            "backup_integrity",
            "weekly",
            "Backup integrity",
            "high",
            CONTINGENCY,
            "availability",
            "Replace corrupt backups from a good copy and regenerate the checksum manifest.",
            *_RECOVERY,
        ),
        _spec(
            "backup_size",
            "weekly",
            "Backup size change",
            "high",
            CONTINGENCY,
            "availability",
            "Compare the backup's contents with the previous one; a shrunken dump lost data.",
            *_RECOVERY,
        ),
        _spec(
            "backup_restore",
            "weekly",
            "Backup restore test",
            "critical",
            CONTINGENCY,
            "availability",
            "Fix the backup job so the dump restores cleanly, and take a new backup.",
            *_RECOVERY,
        ),
        _spec(
            "config_backup",
            "weekly",
            "Configuration backups",
            "high",
            CONTINGENCY,
            "availability",
            "Re-run the configuration backup job and check the archive lists.",
            *_RECOVERY,
        ),
        _spec(
            "backup_storage",
            "weekly",
            "Backup storage",
            "high",
            CONTINGENCY,
            "availability",
            "Free or add space at the backup location before the next backup.",
            *_RECOVERY,
        ),
        _spec(
            "backup_rotation",
            "weekly",
            "Backup rotation",
            "medium",
            CONTINGENCY,
            "availability",
            "Fix the rotation job so every slot of the retention policy holds a backup.",
            *_RECOVERY,
        ),
        _spec(
            "physical_backup_freshness",
            "weekly",
            "Physical backup freshness",
            "critical",
            CONTINGENCY,
            "availability",
            "Check the pgBackRest/Barman schedule and log, and take a backup now.",
            *_RECOVERY,
        ),
        _spec(
            "physical_backup_size",
            "weekly",
            "Physical backup size change",
            "high",
            CONTINGENCY,
            "availability",
            "Compare the backup set with the previous one: a shrunken cluster lost data.",
            *_RECOVERY,
        ),
        _spec(
            "wal_continuity",
            "weekly",
            "WAL archive continuity",
            "critical",
            CONTINGENCY,
            "availability",
            "Find why segments are missing (archive_command, retention, storage); take a new "
            "full backup so point-in-time recovery starts after the gap.",
            *_RECOVERY,
        ),
        _spec(
            "physical_restore",
            "weekly",
            "Physical restore and point-in-time recovery test",
            "critical",
            CONTINGENCY,
            "availability",
            "Fix what stopped the restore or the recovery (backup, WAL archive, target time), "
            "or speed recovery up to meet the RTO.",
            *_RECOVERY,
        ),
        _spec(
            "wal_archiving",
            "daily",
            "WAL archiving",
            "critical",
            CONTINGENCY,
            "availability",
            "Fix archive_command (its error is in the server log) before pg_wal fills the disk.",
            *_RECOVERY,
        ),
        _spec(
            "replication",
            "daily",
            "Streaming replication",
            "high",
            CONTINGENCY,
            "availability",
            "Restart or rebuild the missing or lagging standby; drop slots no standby uses.",
            *_RECOVERY,
        ),
        _spec(
            "failed_logins",
            "daily",
            "Failed logins",
            "high",
            LOGIN_MONITORING,
            "security",
            "Review the accounts and sources named; lock or reset accounts under attack.",
            *_RECOVERY,
        ),
        _spec(
            "access_patterns",
            "daily",
            "Access patterns",
            "medium",
            LOGIN_MONITORING,
            "security",
            "Confirm the unusual logins with the account owners.",
            *_RECOVERY,
        ),
        _spec(
            "sessions",
            "daily",
            "Session management",
            "medium",
            AUTOMATIC_LOGOFF,
            "security",
            "End the sessions named and check the automatic logoff settings.",
            *_RECOVERY,
        ),
        _spec(
            "certificate",
            "monthly",
            "TLS certificate",
            "high",
            TRANSMISSION,
            "security",
            "Renew or replace the certificate and deploy the new chain.",
            *_RECOVERY,
        ),
        _spec(
            "access_review",
            "monthly",
            "Access review",
            "critical",
            ACCESS_CONTROL,
            "security",
            "Disable the accounts named and record the review sign-off.",
            *_RECOVERY,
        ),
        _spec(
            "dependencies",
            "monthly",
            "Dependency vulnerabilities",
            "high",
            PATCHING,
            "security",
            "Upgrade each vulnerable package to its fixed version and redeploy.",
            *_RECOVERY,
        ),
        _spec(
            "policies",
            "monthly",
            "Policy review",
            "medium",
            POLICY,
            "security",
            "Review the policy, record the review date, and circulate it.",
            *_RECOVERY,
        ),
        *(
            _spec(
                f"metric_{suite}",
                suite,
                f"Site metric ({suite})",
                "medium",
                AVAILABILITY,
                "performance",
                "Find out why the metric crossed its threshold (its source and recent changes) "
                "and bring it back in range.",
                *_RECOVERY,
            )
            for suite in SUITES
        ),
        _spec(
            "config_review",
            "monthly",
            "PostgreSQL configuration review",
            "high",
            CONFIGURATION,
            "security",
            "Change each setting named to its expected value (ALTER SYSTEM or postgresql.conf, "
            "pg_hba.conf) and reload.",
            *_RECOVERY,
        ),
        _spec(
            "postgres_version",
            "monthly",
            "PostgreSQL patch level",
            "high",
            PATCHING,
            "security",
            "Install the newest minor release of this PostgreSQL major and restart in a window.",
            *_RECOVERY,
        ),
        _spec(
            "security_patches",
            "monthly",
            "Security patches",
            "high",
            PATCHING,
            "security",
            "Install the fixed package versions (apt-get upgrade) and reboot if asked to.",
            *_RECOVERY,
        ),
        _spec(
            "encryption_in_transit",
            "monthly",
            "Encryption in transit",
            "high",
            ENCRYPTION,
            "security",
            "Serve the endpoint over TLS, or set sslmode=verify-full and ssl=on for databases; "
            "exempt only with a written justification.",
            *_RECOVERY,
        ),
        _spec(
            "encryption_at_rest",
            "monthly",
            "Encryption at rest",
            "high",
            ENCRYPTION,
            "security",
            "Encrypt the backups named (age or gpg, or repoN-cipher-type for pgBackRest).",
            *_RECOVERY,
        ),
        _spec(
            "host_resources",
            "daily",
            "Host resources",
            "high",
            CAPACITY,
            "performance",
            "Find what uses the CPU, memory or space named; free it or add capacity.",
            *_RECOVERY,
        ),
        _spec(
            "resource_allocation",
            "weekly",
            "PostgreSQL memory allocation",
            "medium",
            CAPACITY,
            "performance",
            "Size shared_buffers, work_mem and effective_cache_size to the host's memory.",
            *_RECOVERY,
        ),
        _spec(
            "connection_pooling",
            "weekly",
            "Connection pooling",
            "high",
            CAPACITY,
            "performance",
            "Raise the pool size or max_client_conn, or find the clients holding connections.",
            *_RECOVERY,
        ),
        _spec(
            "storage_capacity",
            "monthly",
            "Storage capacity projection",
            "high",
            CAPACITY,
            "availability",
            "Add space or archive data before the projected date; review the retention policy.",
            *_RECOVERY,
        ),
        _spec(
            "database_capacity",
            "monthly",
            "Database growth and performance trends",
            "medium",
            CAPACITY,
            "performance",
            "Plan storage for the database's growth and investigate the statements slowing down.",
            *_RECOVERY,
        ),
        _spec(
            "host_capacity",
            "monthly",
            "Host capacity projection",
            "high",
            CAPACITY,
            "availability",
            "Free space or grow the filesystem, or add memory, before the projected date.",
            *_RECOVERY,
        ),
        _spec(  # runs only in a change run, in every suite (change_hooks.py)
            "rollback_point",
            "daily",
            "Verified rollback point before a deploy",
            "critical",
            CHANGE,
            "availability",
            "Run the restore test (pytest -m weekly -k backup_restore) and deploy only once a "
            "recent backup of each database restores.",
            *_RECOVERY,
        ),
        _spec(
            "performance_trend",
            "monthly",
            "Service performance trend",
            "medium",
            CAPACITY,
            "performance",
            "Find what made the service slower than its baseline: deploys, data growth, load.",
            *_RECOVERY,
        ),
    )
}


def spec_for(key: str) -> CheckSpec:
    try:
        return CHECKS[key]
    except KeyError:
        raise KeyError(f"check {key!r} is not in the catalogue") from None


def finding_severity(check_severity: str) -> str:
    """The seed's ComplianceCheck findings know low/medium/high: a critical check is high there."""
    return "high" if check_severity == "critical" else check_severity
