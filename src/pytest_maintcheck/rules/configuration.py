"""PostgreSQL configuration review: each finding names the setting, its value, the expected
value and how to change it. The expected values are the ConfigReview entry's (secure
defaults, overridable per database)."""

from __future__ import annotations

from typing import NamedTuple

from pytest_maintcheck.config_operations import LOG_STATEMENT_LEVELS, TLS_VERSIONS, ConfigReview
from pytest_maintcheck.probes.pg_config_review import (
    HBA_GRANT,
    MD5_FUNCTION_SQL,
    HbaRule,
    ReviewSnapshot,
)
from pytest_maintcheck.verdict import Assessment, Verdict

RELOAD = "then SELECT pg_reload_conf()"


class Expectation(NamedTuple):
    setting: str
    value: str | None
    expected: str
    ok: bool
    how: str
    severity: str


def expectations(review: ConfigReview, snap: ReviewSnapshot) -> list[Expectation]:
    """Every setting the review compares, with whether it meets the expectation."""
    out: list[Expectation] = []

    def add(setting: str, expected: str, ok: bool, how: str, severity: str) -> None:
        out.append(Expectation(setting, snap.get(setting), expected, ok, how, severity))

    if review.ssl:
        add(
            "ssl",
            "on",
            snap.get("ssl") == "on",
            "set ssl_cert_file and ssl_key_file, ALTER SYSTEM SET ssl = on, " + RELOAD,
            "high",
        )
        tls = snap.get("ssl_min_protocol_version") or ""
        wanted = review.ssl_min_protocol_version
        add(
            "ssl_min_protocol_version",
            f"{wanted} or newer",
            tls in TLS_VERSIONS and TLS_VERSIONS.index(tls) >= TLS_VERSIONS.index(wanted),
            f"ALTER SYSTEM SET ssl_min_protocol_version = '{wanted}', {RELOAD}",
            "high",
        )
    add(
        "password_encryption",
        review.password_encryption,
        snap.get("password_encryption") == review.password_encryption,
        f"ALTER SYSTEM SET password_encryption = '{review.password_encryption}', {RELOAD}; "
        "then set each role's password again",
        "high",
    )
    if review.log_connections:
        add(
            "log_connections",
            "on",
            snap.get("log_connections") == "on",
            f"ALTER SYSTEM SET log_connections = on, {RELOAD}",
            "medium",
        )
    if review.log_disconnections:
        add(
            "log_disconnections",
            "on",
            snap.get("log_disconnections") == "on",
            f"ALTER SYSTEM SET log_disconnections = on, {RELOAD}",
            "medium",
        )
    logged = snap.get("log_statement") or "none"
    least = review.log_statement
    add(
        "log_statement",
        f"{least} or more",
        logged in LOG_STATEMENT_LEVELS
        and LOG_STATEMENT_LEVELS.index(logged) >= LOG_STATEMENT_LEVELS.index(least),
        f"ALTER SYSTEM SET log_statement = '{least}', {RELOAD}",
        "medium",
    )
    if review.data_checksums:
        add(
            "data_checksums",
            "on",
            snap.get("data_checksums") == "on",
            "stop the cluster and run pg_checksums --enable -D <data directory> in a "
            "maintenance window (or initdb --data-checksums for a new cluster)",
            "medium",
        )
    return out


def judge_configuration(review: ConfigReview, snap: ReviewSnapshot, assessment: Assessment) -> None:
    db = review.database
    assessment.details.update(database=db, review=snap.to_json())
    checked = expectations(review, snap)
    for e in checked:
        if e.value is None:  # hidden from roles without pg_read_all_settings
            assessment.add_finding(
                Verdict.DEGRADED,
                f"{db}: {e.setting} is not readable by {snap.user}, expected {e.expected}",
                f"Grant the read: GRANT pg_read_all_settings TO {snap.user} (or pg_monitor).",
                severity="medium",
            )
        elif not e.ok:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{db}: {e.setting} = {e.value}, expected {e.expected}",
                f"Change it: {e.how}.",
                severity=e.severity,
            )
    assessment.metrics.update(
        settingsChecked=len(checked), settingsWrong=sum(not e.ok for e in checked)
    )
    _judge_md5_roles(review, snap, assessment)
    _judge_hba(review, snap, assessment)
    _judge_pgaudit(review, snap, assessment)
    _judge_superusers(review, snap, assessment)
    if snap.public_create and not review.public_schema_create:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{db}: CREATE on schema public is granted to PUBLIC, expected not granted "
            "(any role can create objects that others' queries may pick up)",
            f"Change it: in {db} run REVOKE CREATE ON SCHEMA public FROM PUBLIC.",
            severity="medium",
        )


def _judge_md5_roles(review: ConfigReview, snap: ReviewSnapshot, assessment: Assessment) -> None:
    if review.password_encryption != "scram-sha-256":  # noqa: S105 (a hash method)
        return
    if snap.md5_roles is None:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{review.database}: cannot tell which roles still hold an md5 password hash: "
            f"pg_authid.rolpassword is readable by superusers only, and {snap.user} is not one",
            f"As a superuser, in database {snap.dbname}, create a function that returns only "
            "role names: " + MD5_FUNCTION_SQL.format(role=snap.user),
            severity="medium",
        )
        return
    if snap.md5_roles:
        shown = ", ".join(snap.md5_roles[:10]) + (" ..." if len(snap.md5_roles) > 10 else "")
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{review.database}: {len(snap.md5_roles)} role(s) still hold an md5 password "
            f"hash ({shown}), expected scram-sha-256",
            "Change it: with password_encryption = 'scram-sha-256', set each role's password "
            "again (\\password NAME in psql), then replace md5 by scram-sha-256 in pg_hba.conf.",
            severity="high",
        )


def hba_problems(rules: list[HbaRule]) -> list[tuple[Verdict, HbaRule, str, str]]:
    """(verdict, rule, what is wrong, expected) for every pg_hba rule at fault."""
    found: list[tuple[Verdict, HbaRule, str, str]] = []
    for rule in rules:
        if rule.error:
            found.append((Verdict.DEGRADED, rule, f"is not loaded: {rule.error}", "a valid rule"))
            continue
        method = rule.method or ""
        if method == "trust":
            found.append((Verdict.VIOLATION, rule, "lets anyone in without a password",
                          "scram-sha-256, cert or peer"))  # fmt: skip
        elif method == "password":
            verdict = Verdict.DEGRADED if rule.type == "hostssl" else Verdict.VIOLATION
            found.append((verdict, rule, "sends passwords in clear text", "scram-sha-256"))
        elif method == "md5":
            found.append((Verdict.DEGRADED, rule, "accepts md5 password hashes", "scram-sha-256"))
        if rule.type in ("host", "hostnossl") and rule.open_to_all and method != "reject":
            found.append((Verdict.VIOLATION, rule, "is open to every address without TLS",
                          "hostssl, or a narrower address"))  # fmt: skip
    return found


def _judge_hba(review: ConfigReview, snap: ReviewSnapshot, assessment: Assessment) -> None:
    if snap.hba is None:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{review.database}: pg_hba rules not reviewed: {snap.user} may not read "
            f"pg_hba_file_rules ({snap.hba_error})",
            f"As a superuser, in database {snap.dbname}: " + HBA_GRANT.format(role=snap.user),
            severity="medium",
        )
        return
    for verdict, rule, what, expected in hba_problems(snap.hba):
        assessment.add_finding(
            verdict,
            f"{review.database}: {rule.describe()} {what}, expected {expected}",
            f"Change it: edit pg_hba.conf line {rule.line} to {expected}, {RELOAD}.",
            severity="high" if verdict is Verdict.VIOLATION else "medium",
        )


def _judge_pgaudit(review: ConfigReview, snap: ReviewSnapshot, assessment: Assessment) -> None:
    if not review.require_pgaudit:
        return
    db, loaded = review.database, "pgaudit" in snap.preloaded
    if not loaded:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{db}: shared_preload_libraries = '{','.join(snap.preloaded)}', expected it to "
            "include pgaudit (requirePgaudit)",
            "Change it: install pgaudit, add it to shared_preload_libraries and restart, then "
            f"CREATE EXTENSION pgaudit in {db} and set pgaudit.log (e.g. 'ddl, role').",
            severity="high",
        )
        return
    if snap.pgaudit_version is None:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{db}: pgaudit is preloaded but not created in {db}, expected the extension",
            f"Change it: CREATE EXTENSION pgaudit in {db}.",
            severity="high",
        )
    audit_log = snap.get("pgaudit.log") or "none"
    if audit_log == "none":
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{db}: pgaudit.log = {audit_log}, expected the classes to audit (e.g. 'ddl, role')",
            f"Change it: ALTER SYSTEM SET pgaudit.log = 'ddl, role', {RELOAD}.",
            severity="high",
        )


def _judge_superusers(review: ConfigReview, snap: ReviewSnapshot, assessment: Assessment) -> None:
    approved = set(review.approved_superusers)
    extra = [r for r in snap.superusers if r not in approved]
    assessment.metrics["superusers"] = len(snap.superusers)
    if extra:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{review.database}: superuser role(s) {', '.join(extra)} not in approvedSuperusers "
            f"({', '.join(sorted(approved)) or 'none'})",
            f"Change it: ALTER ROLE {extra[0]} NOSUPERUSER (each role named), or add it to "
            "approvedSuperusers with a recorded sign-off.",
            severity="high",
        )
