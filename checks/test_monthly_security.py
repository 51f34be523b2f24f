"""Monthly security review: certificates, access review, dependency advisories, policy reviews."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pytest

from pytest_maintcheck.catalogue import SEVERITIES
from pytest_maintcheck.config import AccessReview, Certificate, Config, Dependency, Policy
from pytest_maintcheck.probes import access, certificates, dependencies, policies
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.redact import printable
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value

pytestmark = pytest.mark.monthly

DAY = 86400.0
OLD_TLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}
MIN_EC_BITS = 256
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
    try:
        if c.host is not None:
            report = certificates.examine_endpoint(
                c.host,
                c.port,
                server_name=c.server_name,
                ca_file=c.ca_file,
                timeout=c.timeout,
                now=now,
            )
        else:
            assert c.file is not None
            report = certificates.examine_file(
                c.file, server_name=c.server_name, ca_file=c.ca_file, now=now
            )
    except certificates.CertificateProbeError as exc:
        assessment.unreached(exc.about(c.name))  # grouped with the target's other checks
        return
    judge_certificate(c, report, assessment, now)


def judge_certificate(
    c: Certificate,
    report: certificates.CertificateReport,
    assessment: Assessment,
    now: dt.datetime,
) -> None:
    """Every certificate rule, at ``now`` (a parameter so the rules can be tested at any date)."""
    leaf, earliest = report.leaf, report.earliest_expiry()
    assessment.details.update(
        source=report.source,
        tlsVersion=report.tls_version,
        presented=[x.to_json() for x in report.presented],
        verifiedChain=[x.subject for x in report.verified_chain],
        nameChecked=report.name_checked,
    )
    if report.verify_detail is not None:
        assessment.details["verifyDetail"] = report.verify_detail
    _judge_expiry(c, earliest, assessment, now)
    for x in certificates.not_yet_valid(report, now):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{c.name}: {x.subject} is not valid until {x.not_before:%Y-%m-%d %H:%M} UTC "
            f"({format_value('daysToExpiry', (x.not_before - now).total_seconds() / DAY)} from "
            "now); clients refuse it until then",
            "Serve the previous certificate until then, or reissue it with a notBefore in the "
            "past; check the clock of the CA that issued it.",
        )
    problem = report.problem
    if problem is not None:  # a non-blocking one (a CA without keyUsage) verifies for most clients
        assessment.add_finding(
            Verdict.VIOLATION if problem.blocking else Verdict.DEGRADED,
            f"{c.name}: {'chain does not verify: ' if problem.blocking else ''}{problem.text}",
            problem.action,
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
        _judge_lifetime(c, report, assessment)


def _judge_expiry(
    c: Certificate, earliest: certificates.CertInfo, assessment: Assessment, now: dt.datetime
) -> None:
    """Days to expiry against the fixed levels, each capped at a share of the certificate's own
    lifetime (a 24-hour certificate warns when 8 hours are left, not all its life)."""
    lifetime = earliest.validity_days
    left = earliest.days_to_expiry(now)
    if lifetime > 0:
        assessment.metrics["lifetimeLeft"] = round(left / lifetime, 3)
    threshold = certificates.expiry_threshold(
        c.thresholds.get("daysToExpiry"), c.thresholds.get("lifetimeLeft"), lifetime
    )
    assessment.measure(
        threshold,
        round(left, 2),  # hundredths: a 24-hour certificate is judged in hours
        subject=f"{c.name} ({earliest.subject}, expires {earliest.not_after:%Y-%m-%d %H:%M} UTC, "
        f"lifetime {format_value('daysToExpiry', lifetime)})",
        action=f"Renew {earliest.subject} and deploy it before {earliest.not_after:%Y-%m-%d}; "
        "if renewal is automated (ACME, step-ca), find out why it has not run.",
    )


def _judge_lifetime(
    c: Certificate, report: certificates.CertificateReport, assessment: Assessment
) -> None:
    """validityDays when the entry sets it (any CA); else, for a public CA only, the dated
    CA/Browser Forum limit in force on the certificate's issue date."""
    leaf = report.leaf
    public = certificates.counts_as_public(report, c.public_ca)
    kind = {True: "public", False: "private", None: "unknown: chain not verified"}[public]
    assessment.details["caKind"] = kind
    lifetime = round(leaf.validity_days, 1)
    configured = c.thresholds.get("validityDays")
    if configured is not None:
        assessment.measure(
            configured,
            lifetime,
            subject=f"{c.name} ({leaf.subject})",
            action="Issue server certificates for no longer than validityDays, renewed "
            "automatically.",
        )
        return
    rule = certificates.public_lifetime_rule(leaf.not_before) if public else None
    if rule is None:
        return
    assessment.details["lifetimeRule"] = (
        f"{rule.source}: at most {rule.max_days} days for certificates issued from {rule.since}"
    )
    assessment.measure(
        Threshold("validityDays", warn=rule.max_days),
        lifetime,
        subject=f"{c.name} ({leaf.subject}, public CA, issued {leaf.not_before:%Y-%m-%d}; "
        f"{rule.source} allows {rule.max_days} days from {rule.since})",
        action=f"Have it reissued for at most {rule.max_days} days and renew it automatically "
        "(ACME); if the CA is private, set publicCa: false or caFile.",
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
    declared_seen: dict[str, bool] = {}  # declared service account -> enabled in some source
    every_source_read = True
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
            every_source_read = False
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
            service = review.service_account(account.username)
            status = roster.status.get(account.key, "not on roster")
            entry = {**account.to_json(), "rosterStatus": status}
            if service is not None:
                seen = declared_seen.get(service.name, False)
                declared_seen[service.name] = seen or account.enabled
                entry["rosterStatus"] = "service account"
                entry["serviceAccount"] = {
                    "owner": service.owner,
                    "justification": printable(service.justification, 300),
                }
            entry["findings"] = [f"{i.text} [{i.severity}]" for i in issues]
            listed.append(entry)
    found_issues += _service_account_issues(review, roster, declared_seen, every_source_read)
    # worst first (verdict, then severity): the terminal summary shows a check's first finding
    for i in sorted(found_issues, key=lambda i: (-i.verdict.rank, -SEVERITIES.index(i.severity))):
        assessment.add_finding(i.verdict, i.text, i.action, severity=i.severity)
    assessment.details.update(
        accounts=listed,
        ignored=ignored,
        notes=[
            "PostgreSQL keeps no last login and has no MFA: those rules apply to exports only",
            "Declared service accounts are reviewed for an active owner and for privileges only",
        ],
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
    if review.service_account(account.username) is not None:
        return _privilege_issues(account, review)  # not a person: no roster, MFA or inactivity
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
    issues += _privilege_issues(account, review)
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


def _privilege_issues(account: access.Account, review: AccessReview) -> list[Issue]:
    """A privileged role or SUPERUSER held without approval (people and service accounts)."""
    privileged = {r.casefold() for r in review.privileged_roles}
    held = [r for r in account.roles if r.casefold() in privileged]
    if account.superuser:
        held.insert(0, "SUPERUSER")
    approved = {access.normalize(u) for u in review.approved_privileged}
    if not held or account.key in approved:
        return []
    return [
        Issue(
            Verdict.VIOLATION,
            f"holds {', '.join(held)} without approval",
            "Revoke the privilege or add the account to approvedPrivileged with sign-off.",
            "high",
        )
    ]


def _service_account_issues(
    review: AccessReview,
    roster: access.Roster,
    declared_seen: dict[str, bool],
    every_source_read: bool,
) -> list[Issue]:
    """Each enabled service account needs an owner who is an active person on the roster;
    a declaration that matches no account (every source read) is stale."""
    issues: list[Issue] = []
    for service in review.service_accounts:
        where = f"serviceAccounts: {service.name}"
        if service.name not in declared_seen:
            if every_source_read:
                issues.append(
                    Issue(
                        Verdict.DEGRADED,
                        f"{where} is declared but found in no source",
                        "Remove the declaration, or add the source that holds the account.",
                        "low",
                    )
                )
            continue
        if not declared_seen[service.name]:
            continue  # disabled everywhere: nothing to own
        owner_status = roster.status.get(access.normalize(service.owner))
        if review.service_account(service.owner) is not None:
            why = "another service account, not a person"
        elif owner_status != "active":
            why = "terminated on the roster" if owner_status else "not on the roster"
        else:
            continue
        issues.append(
            Issue(
                Verdict.VIOLATION,
                f"{where} is enabled and owned by {service.owner}, who is {why}",
                "Name an active person as its owner in serviceAccounts, or disable the account.",
                "high",
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
