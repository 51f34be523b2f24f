"""The site's own checks, kept beside maintcheck.yaml: declared once, targets in siteChecks."""

from __future__ import annotations

import shutil

from pytest_maintcheck.api import (
    Assessment,
    Metric,
    SiteTarget,
    UnitError,
    parse_size,
    site_check,
)

pacs_archive_room = site_check(
    "pacs_archive_room",
    suite="daily",
    title="PACS archive room",
    severity="high",
    category="Medical imaging archive capacity",
    requirements=[
        "HIPAA 164.310(d)(2)(iv) data backup and storage",
        "HIPAA 164.308(a)(7)(ii)(E) applications and data criticality analysis",
        "NIST SP 800-53 CP-2(2) capacity planning",
    ],
    incident_type="availability",
    action="Move older studies to the long-term tier or add storage before the archive fills.",
    metrics=[
        Metric("daysOfRoom", "days", higher_is_worse=False, label="room left"),
        Metric("usage", "ratio", label="archive space used"),
    ],
    thresholds={"daysOfRoom": {"warn": 30, "fail": 7}},  # used where the config gives none
)


@pacs_archive_room
def test_pacs_archive_room(site_target: SiteTarget, assessment: Assessment) -> None:
    """Free space on the archive against the studies written per day."""
    archive = site_target.path("path")
    assessment.details.update(path=str(archive))
    try:
        growth = parse_size(site_target.params.get("dailyGrowth", "0B"))
        disk = shutil.disk_usage(archive)
    except (OSError, UnitError) as exc:
        assessment.could_not_measure(f"{site_target.name}: cannot read {archive}: {exc}")
        return
    limits = site_target.thresholds
    assessment.measure(limits.get("usage"), disk.used / disk.total, subject=site_target.name)
    if growth > 0:
        days = round(disk.free / growth, 1)
        assessment.measure(limits.get("daysOfRoom"), days, subject=site_target.name)
