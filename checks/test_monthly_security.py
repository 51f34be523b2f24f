"""Monthly security review: certificates, access review, dependency advisories, policy reviews."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pytest

from pytest_maintcheck.catalogue import SEVERITIES
from pytest_maintcheck.config import AccessReview, Certificate, Config, Dependency, Policy
from pytest_maintcheck.probes import access, certificates, dependencies, policies
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value

pytestmark = pytest.mark.monthly

DAY = 86400.0
OLD_TLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}
MIN_EC_BITS = 256
MAX_SERVER_VALIDITY = Threshold("validityDays", warn=398)  # CA/Browser Forum limit since 2020
# an advisory's own severity (GitHub's database_specific.severity) as the finding's; a CVSS
# vector alone is not scored here, so such a finding keeps the check's severity
ADVISORY_SEVERITY = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "LOW": "low",
}


@pytest.mark.maintcheck("certificate")
def test_certificate(certificate: Certificate, assessment: Assessment) -> None:
    c, now = certificate, dt.datetime.now(dt.UTC)
    # a CertificateProbeError escapes: the plugin reports "could not measure" for it
    if c.host is not None:
        report = certificates.examine_endpoint(
            c.host, c.port, server_name=c.server_name, ca_file=c.ca_file, timeout=c.timeout
        )
    else:
        assert c.file is not None
        report = certificates.examine_file(c.file, server_name=c.server_name, ca_file=c.ca_file)
    leaf, earliest = report.leaf, report.earliest_expiry()
    assessment.details.update(
        source=report.source,
        tlsVersion=report.tls_version,
        presented=[x.to_json() for x in report.presented],
        verifiedChain=[x.subject for x in report.verified_chain],
        nameChecked=report.name_checked,
    )
    assessment.measure(
        c.thresholds.get("daysToExpiry"),
        round(earliest.days_to_expiry(now), 1),
        subject=f"{c.name} ({earliest.subject}, expires {earliest.not_after:%Y-%m-%d})",
        action=f"Renew {earliest.subject} and deploy it before {earliest.not_after:%Y-%m-%d}.",
    )
    if report.verify_error is not None:
        anchors = f"caFile {c.ca_file}" if c.ca_file else "the system trust store"
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: chain does not verify against {anchors}: {report.verify_error}",
            "Serve the full chain (leaf and intermediates) from a CA the clients trust.",
        )
    if report.name_matches is False:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: {report.name_checked} is not among the certificate's names "
            f"({', '.join(leaf.sans) or 'no subjectAltName'})",
            f"Reissue the certificate with {report.name_checked} in its subjectAltName.",
        )
    rsa = [x for x in report.presented if x.key_type in ("RSA", "DSA")]
    if rsa:
        weakest = min(rsa, key=lambda x: x.key_bits)
        assessment.measure(
            c.thresholds.get("minKeyBits"),
            weakest.key_bits,
            subject=f"{c.name} ({weakest.subject}, {weakest.key_type})",
            action="Reissue the certificate with an RSA key of 2048 bits or more, or EC P-256.",
        )
    for x in report.presented:
        if x.key_type == "EC" and x.key_bits < MIN_EC_BITS:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{c.name}: {x.subject} has an EC key of {x.key_bits} bits (< {MIN_EC_BITS})",
                "Reissue the certificate with EC P-256 or larger.",
            )
        if not x.self_signed and x.signature_hash in certificates.WEAK_HASHES:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{c.name}: {x.subject} is signed with {x.signature_hash.upper()}",
                "Reissue it signed with SHA-256 or stronger; clients reject SHA-1 and MD5.",
            )
    if report.tls_version in OLD_TLS:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: negotiated {report.tls_version}; TLS 1.2 or newer is required",
            "Disable TLS 1.0/1.1 on the server and enable TLS 1.2 and 1.3.",
        )
    if not leaf.is_ca:
        assessment.measure(
            MAX_SERVER_VALIDITY,
            round(leaf.validity_days),
            subject=f"{c.name} ({leaf.subject})",
            action="Issue server certificates valid for 398 days or less, renewed automatically.",
        )


@pytest.mark.maintcheck("access_review")
def test_access_review(
    access_review: AccessReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    review, now = access_review, dt.datetime.now(dt.UTC)
    if review.roster is None:
        assessment.could_not_measure("accessReview has no roster: accounts cannot be reviewed")
        return
    try:
        roster = access.read_roster(review.roster)
    except ProbeError as exc:
        assessment.could_not_measure(f"roster: {exc}")
        return
    for problem in roster.problems:
        assessment.add_finding(Verdict.DEGRADED, f"roster: {problem}", "Correct the roster.")
    listed: list[dict[str, object]] = []
    ignored: list[str] = []
    found_issues: list[Issue] = []
    for source in review.sources:
        try:
            if source.postgres is not None:
                db = maintcheck_config.database(source.postgres)
                found = access.postgres_accounts(
                    source.name,
                    db.dsn,
                    connect_timeout=db.connect_timeout,
                    statement_timeout=db.statement_timeout,
                )
            else:
                assert source.file is not None
                found = access.file_accounts(source.name, source.file)
        except ProbeError as exc:  # the other sources are still reviewed
            assessment.unreached(exc.about(source.postgres or source.name))
            continue
        ignored += [f"{source.name}: {text}" for text in found.ignored]
        for problem in found.problems:
            assessment.add_finding(Verdict.DEGRADED, f"{source.name}: {problem}", "Fix the export.")
        for account in found.accounts:
            issues = _account_issues(account, roster, review, now)
            found_issues += [
                Issue(
                    i.verdict, f"{source.name}: {account.username} {i.text}", i.action, i.severity
                )
                for i in issues
            ]
            status = roster.status.get(account.key, "not on roster")
            findings = [f"{i.text} [{i.severity}]" for i in issues]
            listed.append({**account.to_json(), "rosterStatus": status, "findings": findings})
    # worst first (verdict, then severity): the terminal summary shows a check's first finding
    for i in sorted(found_issues, key=lambda i: (-i.verdict.rank, -SEVERITIES.index(i.severity))):
        assessment.add_finding(i.verdict, i.text, i.action, severity=i.severity)
    assessment.details.update(
        accounts=listed,
        ignored=ignored,
        notes=["PostgreSQL keeps no last login and has no MFA: those rules apply to exports only"],
    )
    assessment.metrics.update(accounts=len(listed), enabled=sum(bool(a["enabled"]) for a in listed))


class Issue(NamedTuple):
    """One thing wrong with one account, and how bad it is (issue 5)."""

    verdict: Verdict
    text: str
    action: str
    severity: str  # low | medium | high | critical


def _account_issues(
    account: access.Account, roster: access.Roster, review: AccessReview, now: dt.datetime
) -> list[Issue]:
    """What is wrong with one account; disabled accounts have nothing wrong.

    Severities: enabled but terminated or not on the roster critical (issue 5); privilege
    without approval and missing MFA high (our judgement for MFA: the issue gives none);
    inactive medium; a password that never expires low (issue 5).
    """
    if not account.enabled:
        return []
    issues: list[Issue] = []
    status = roster.status.get(account.key)
    if status != "active":
        why = "is terminated on the roster" if status else "is not on the roster"
        issues.append(
            Issue(Verdict.VIOLATION, f"{why} but enabled", "Disable the account today.", "critical")
        )
    if account.kind == "file" and review.inactive is not None:
        if account.last_login is None:
            issues.append(
                Issue(
                    Verdict.DEGRADED,
                    "has no last login recorded",
                    "Confirm it is needed.",
                    "medium",
                )
            )
        else:
            idle = (now - account.last_login).total_seconds()
            verdict = review.inactive.judge(idle)
            if verdict is not Verdict.PASS:
                text = (
                    f"inactive for {format_value('inactive', idle)} ({review.inactive.describe()})"
                )
                issues.append(
                    Issue(verdict, text, "Disable the account or record why it stays.", "medium")
                )
    privileged = {r.casefold() for r in review.privileged_roles}
    held = [r for r in account.roles if r.casefold() in privileged]
    if account.superuser:
        held.insert(0, "SUPERUSER")
    approved = {access.normalize(u) for u in review.approved_privileged}
    if held and account.key not in approved:
        issues.append(
            Issue(
                Verdict.VIOLATION,
                f"holds {', '.join(held)} without approval",
                "Revoke the privilege or add the account to approvedPrivileged with sign-off.",
                "high",
            )
        )
    if review.require_mfa and account.kind == "file" and account.mfa is not True:
        text = "has no MFA" if account.mfa is False else "has no MFA status in the export"
        issues.append(Issue(Verdict.VIOLATION, text, "Enrol the user in MFA.", "high"))
    if account.password_never_expires:
        issues.append(
            Issue(
                Verdict.DEGRADED,
                "can log in with a password that never expires",
                "Set VALID UNTIL on the role, or use certificate/SSO authentication.",
                "low",
            )
        )
    return issues


@pytest.mark.maintcheck("dependencies")
def test_dependencies(dependency: Dependency, assessment: Assessment) -> None:
    d = dependency
    try:
        lock = dependencies.read_lockfile(d.lockfile)
        found = dependencies.load_advisories(d.advisories)
    except dependencies.DependencyProbeError as exc:
        assessment.could_not_measure(f"{d.name}: {exc}")
        return
    vulnerable = dependencies.vulnerabilities(lock.pins, found.items, d.ecosystem)
    assessment.metrics.update(
        packages=len(lock.pins), vulnerable=len({v.package for v in vulnerable})
    )
    assessment.details.update(
        lockfile=str(d.lockfile),
        format=lock.format,
        advisories=len(found.items),
        vulnerabilities=[v.to_json() for v in vulnerable],
        unpinned=lock.unpinned,
    )
    if not lock.pins:
        assessment.could_not_measure(f"{d.name}: no pinned packages found in {d.lockfile}")
    if not found.items:
        assessment.could_not_measure(f"{d.name}: no OSV advisories found in {d.advisories}")
    for v in vulnerable:
        severity = ADVISORY_SEVERITY.get((v.severity or "").upper())  # None: the check's own
        low = severity == "low"
        also = f" ({', '.join(v.aliases)})" if v.aliases else ""
        assessment.add_finding(
            Verdict.DEGRADED if low else Verdict.VIOLATION,
            f"{d.name}: {v.package} {v.version} is affected by {v.advisory}{also}, "
            f"severity {v.severity or 'not given'}: {v.summary or 'no summary'}",
            f"Upgrade {v.package} to {v.fixed} or later."
            if v.fixed
            else f"No fixed version is published: remove {v.package} or mitigate {v.advisory}.",
            severity=severity,
        )
    if lock.unpinned:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{d.name}: {len(lock.unpinned)} requirement(s) not pinned to one version cannot be "
            f"checked: {', '.join(lock.unpinned[:5])}",
            "Pin every requirement (pip-compile or uv lock) so it can be audited.",
        )
    for problem in found.problems:
        assessment.add_finding(Verdict.DEGRADED, f"{d.name}: {problem}", "Refresh the advisories.")


@pytest.mark.maintcheck("policies")
def test_policy(policy: Policy, assessment: Assessment) -> None:
    p, today = policy, dt.datetime.now(dt.UTC).date()
    status = policies.policy_status(p.file, p.last_reviewed)
    how = "record last_reviewed: in its front matter, or lastReviewed in the config"
    assessment.details.update(
        file=str(p.file),
        lastReviewed=status.last_reviewed.isoformat() if status.last_reviewed else None,
        dateFrom=status.source,
    )
    if not status.exists:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{p.name}: the policy file {p.file} does not exist",
            "Restore the policy document, or correct its path in the config.",
        )
    if status.last_reviewed is None:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{p.name}: no review date ({status.problem or 'none recorded'})",
            f"Review the policy and {how}.",
        )
        return
    due = status.last_reviewed + dt.timedelta(seconds=p.review_every)
    assessment.details["nextDue"] = due.isoformat()
    age = (today - status.last_reviewed).days * DAY
    if age < 0:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{p.name}: last review date {status.last_reviewed} is in the future",
            f"Correct the date and {how}.",
        )
        return
    assessment.measure(
        Threshold("reviewAge", warn=max(0.0, p.review_every - 30 * DAY), fail=p.review_every),
        age,
        subject=f"{p.name} (last reviewed {status.last_reviewed}, due {due})",
        action=f"Review {p.name}, circulate it, and {how}.",
    )
