"""The access review: every account of every source against the roster, privileges against
approvals, MFA, inactivity and password expiry; service accounts against their owners.

Severities (issue 5): enabled but terminated or not on the roster critical; privilege without
approval and missing MFA high; inactive medium; a password that never expires low.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from pytest_maintcheck.catalogue import SEVERITIES
from pytest_maintcheck.config import AccessReview
from pytest_maintcheck.errors import MeasurementError
from pytest_maintcheck.measuring import AccessReading
from pytest_maintcheck.probes import access
from pytest_maintcheck.redact import printable
from pytest_maintcheck.verdict import Assessment, Verdict, format_value


def judge_access_review(
    review: AccessReview, reading: AccessReading, now: dt.datetime, assessment: Assessment
) -> None:
    """Each account's issues, worst first; each account listed for sign-off with them."""
    roster = reading.roster
    if roster is None:
        assessment.could_not_measure("accessReview has no roster: accounts cannot be reviewed")
        return
    for problem in roster.problems:
        assessment.add_finding(Verdict.DEGRADED, f"roster: {problem}", "Correct the roster.")
    listed: list[dict[str, object]] = []
    ignored: list[str] = []
    found_issues: list[Issue] = []
    declared_seen: dict[str, bool] = {}  # declared service account -> enabled in some source
    every_source_read = True
    for source, found in reading.sources:
        if isinstance(found, MeasurementError):  # the other sources are still reviewed
            assessment.unreached(found.about(source.postgres or source.name))
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
