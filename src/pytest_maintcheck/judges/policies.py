"""Policy reviews: each policy document exists and was reviewed within its interval."""

from __future__ import annotations

import datetime as dt

from pytest_maintcheck.config import Policy
from pytest_maintcheck.probes.policies import PolicyStatus
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

DAY = 86400.0


def judge_policy(p: Policy, status: PolicyStatus, today: dt.date, assessment: Assessment) -> None:
    """Due within 30 days warns, overdue fails; a missing file or date never passes."""
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
